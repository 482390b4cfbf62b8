"""The apply's order by dependency on the sandbox's real API server (issue 16, items 1-3):
CRDs whose CA bundle an injector fills, custom resources using a field their changed CRD
adds, mutating webhooks and the workloads they mutate, and what a failed wait reports."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from gitops.apply import Action, ProgressEvent
from gitops.apply.report import result_lines
from gitops.cluster import ApplyPolicy
from gitops.kube import Kube
from gitops.sandbox.egress import BACKEND_ANNOTATION
from gitops.sandbox.processes import free_port
from tests.integration.apply_helpers import api, apply, deployment, dry_run, ns

pytestmark = pytest.mark.integration
__all__ = ["api", "ns"]

POLICY = ApplyPolicy(timeout=90.0)
CRD_V1 = "apiextensions.k8s.io/v1"


def _schema(*fields: str) -> dict[str, Any]:
    return {"openAPIV3Schema": {"type": "object", "properties": {"spec": {
        "type": "object", "properties": {f: {"type": "string"} for f in fields}}}}}


def crd(group: str, *, fields: tuple[str, ...] = ("size",),
        conversion: dict[str, Any] | None = None,
        annotations: dict[str, str] | None = None) -> dict[str, Any]:
    versions = [{"name": "v1", "served": True, "storage": True, "schema": _schema(*fields)}]
    if conversion:
        versions.append({"name": "v1beta1", "served": True, "storage": False,
                         "schema": _schema(*fields)})
    spec: dict[str, Any] = {"group": group, "scope": "Namespaced",
                            "names": {"plural": "widgets", "singular": "widget",
                                      "kind": "Widget"}, "versions": versions}
    if conversion:
        spec["conversion"] = conversion
    return {"apiVersion": CRD_V1, "kind": "CustomResourceDefinition",
            "metadata": {"name": f"widgets.{group}", "annotations": annotations or {}},
            "spec": spec}


def widget(group: str, ns: str, version: str = "v1", **spec: str) -> dict[str, Any]:
    return {"apiVersion": f"{group}/{version}", "kind": "Widget",
            "metadata": {"name": "w1", "namespace": ns}, "spec": spec or {"size": "3"}}


def service(name: str, ns: str, app: str, annotations: dict[str, str] | None = None
            ) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": ns, "annotations": annotations or {}},
            "spec": {"selector": {"app": app}, "ports": [{"port": 443, "targetPort": 9443}]}}


def conversion(ns: str, ca_bundle: str) -> dict[str, Any]:
    return {"strategy": "Webhook", "webhook": {
        "conversionReviewVersions": ["v1"],
        "clientConfig": {"caBundle": ca_bundle, "service": {
            "namespace": ns, "name": "converter", "path": "/convert", "port": 443}}}}


@pytest.fixture
def group(ns: str, api: Any) -> Iterator[str]:
    name = f"{ns}.example.com"
    yield name
    Kube(api).delete(CRD_V1, "CustomResourceDefinition", "", f"widgets.{name}")


def test_a_crd_whose_ca_bundle_is_injected_does_not_hold_up_the_injector_of_its_render(
    api: Any, ns: str, group: str,
) -> None:
    # KServe's CRDs: caBundle "Cg==" (a newline) for cert-manager's cainjector to replace;
    # the API server keeps such a CRD unestablished (InvalidCABundle) until then.
    definition = crd(group, conversion=conversion(ns, "Cg=="), annotations={
        "cert-manager.io/inject-ca-from": f"{ns}/serving-cert"})
    objects = [widget(group, ns, "v1beta1", size="2"), definition,
               service("converter", ns, "converter"), deployment("converter", ns)]
    result = apply(api, ns, objects, policy=POLICY)
    assert result.ok, (result.rejections, result.failure)
    live = Kube(api).get(f"{group}/v1", "Widget", ns, "w1")
    assert live is not None and live["spec"] == {"size": "2"}
    # The placeholder was not applied: the bundle is the injector's (here the sandbox's).
    got = Kube(api).get(CRD_V1, "CustomResourceDefinition", "", f"widgets.{group}")
    assert got is not None
    bundle = got["spec"]["conversion"]["webhook"]["clientConfig"].get("caBundle", "")
    assert bundle != "Cg=="


def test_a_crd_that_cannot_be_established_fails_the_apply_at_once_with_its_reason(
    api: Any, ns: str, group: str,
) -> None:
    # The converter's Service names a backend of its own, so the sandbox's CA injector
    # leaves the bundle as it is, as a cluster without an injector does.
    Kube(api).create(service("converter", ns, "converter",
                             {BACKEND_ANNOTATION: f"127.0.0.1:{free_port()}"}))
    broken = base64.b64encode(b"not a certificate").decode()
    objects = [crd(group, conversion=conversion(ns, broken)), widget(group, ns)]
    result = apply(api, ns, objects, policy=ApplyPolicy(timeout=600.0))
    assert result.failure is not None
    assert result.health is not None and not result.health.timed_out
    assert "failed while waiting for CRDs to be established" in result.failure.summary
    (failed,) = result.failure.objects
    assert failed.id.name == f"widgets.{group}"
    assert "Established=False: InvalidCABundle" in failed.reason


def test_a_custom_resource_using_a_field_its_changed_crd_adds_applies_in_one_run(
    api: Any, ns: str, group: str,
) -> None:
    first = apply(api, ns, [crd(group), widget(group, ns)], policy=POLICY)
    assert first.ok, (first.rejections, first.failure)
    newer = [crd(group, fields=("size", "color")), widget(group, ns, size="3", color="red")]
    planned = dry_run(api, ns, newer, policy=POLICY)
    assert planned.ok, planned.rejections
    change = planned.by_id()[next(c.id for c in planned.changes if c.id.kind == "Widget")]
    assert (change.action, change.deferred) == (Action.UPDATE, True)
    result = apply(api, ns, newer, policy=POLICY)
    assert result.ok, (result.rejections, result.failure)
    live = Kube(api).get(f"{group}/v1", "Widget", ns, "w1")
    assert live is not None and live["spec"] == {"size": "3", "color": "red"}


class _Mutator(BaseHTTPRequestHandler):
    """A mutating webhook that labels every pod it admits `mutated: "yes"`."""

    def do_POST(self) -> None:
        review = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        patch = [{"op": "add", "path": "/metadata/labels/mutated", "value": "yes"}]
        body = json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                           "response": {"uid": review["request"]["uid"], "allowed": True,
                                        "patchType": "JSONPatch", "patch": base64.b64encode(
                                            json.dumps(patch).encode()).decode()}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def mutator(tmp_path: Path) -> Iterator[tuple[int, str]]:
    """(port, caBundle) of a mutating webhook server of its own on 127.0.0.1, with a CA
    of its own (the sandbox's CA injector leaves a Service with a backend alone)."""
    from gitops.sandbox.answer import Minter, serve
    from gitops.sandbox.certs import generate

    pki = generate(tmp_path / "pki")
    server = serve(Minter(pki, tmp_path), _Mutator)
    try:
        yield int(server.server_address[1]), base64.b64encode(pki.ca_cert.read_bytes()).decode()
    finally:
        server.shutdown()


def mutating(name: str, ns: str, ca_bundle: str, *, app: str, resources: list[str],
             failure: str = "Fail") -> dict[str, Any]:
    return {"apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "MutatingWebhookConfiguration", "metadata": {"name": name},
            "webhooks": [{
                "name": f"{name}.example.com", "admissionReviewVersions": ["v1"],
                "sideEffects": "None", "failurePolicy": failure, "timeoutSeconds": 5,
                "clientConfig": {"caBundle": ca_bundle, "service": {
                    "namespace": ns, "name": "hook", "port": 443, "path": "/mutate"}},
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}},
                "objectSelector": {"matchLabels": {"app": app}},
                "rules": [{"operations": ["CREATE"], "apiGroups": [""],
                           "apiVersions": ["v1"], "resources": resources}]}]}


def test_a_mutating_webhook_is_in_place_before_the_workloads_it_mutates(
    api: Any, ns: str, mutator: tuple[int, str],
) -> None:
    port, ca = mutator
    name = f"{ns}-mutator"
    objects = [deployment("web", ns), deployment("hook", ns, replicas=1),
               service("hook", ns, "hook", {BACKEND_ANNOTATION: f"127.0.0.1:{port}"}),
               mutating(name, ns, ca, app="web", resources=["pods"])]
    order: list[str] = []

    def seen(e: ProgressEvent) -> None:
        if e.stage == "phase":
            order.append(e.phase)

    try:
        result = apply(api, ns, objects, policy=POLICY, progress=seen)
        assert result.ok, (result.rejections, result.failure)
        assert order.index("mutating webhook configurations") < order.index(
            "workloads, services and the rest")
        pods = Kube(api).list("v1", "Pod", namespace=ns, label_selector="app=web")
        assert len(pods) == 2
        assert all(p["metadata"]["labels"].get("mutated") == "yes" for p in pods)
    finally:
        Kube(api).delete("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration",
                         "", name)


def test_a_failed_wait_lists_every_object_with_the_webhook_that_blocked_its_pods(
    api: Any, ns: str,
) -> None:
    closed = free_port()  # nothing listens: every call of the webhook fails
    name = f"{ns}-blocker"
    objects = [deployment(f"web-{i:02}", ns, replicas=1) for i in range(12)]
    for o in objects:
        o["spec"]["template"]["metadata"]["labels"]["blocked"] = "yes"
    hook = mutating(name, ns, "", app="x", resources=["pods"])
    hook["webhooks"][0]["objectSelector"] = {"matchLabels": {"blocked": "yes"}}
    objects += [service("hook", ns, "nothing", {BACKEND_ANNOTATION: f"127.0.0.1:{closed}"}),
                hook]
    try:
        result = apply(api, ns, objects, policy=ApplyPolicy(timeout=20.0), rollback=False)
        assert result.failure is not None
        failed = {o.id.name: o for o in result.failure.objects}
        assert set(failed) == {f"web-{i:02}" for i in range(12)}
        details = "\n".join(failed["web-00"].details)
        assert "FailedCreate" in details and "failed calling webhook" in details
        assert f"{name}.example.com" in details
        lines = result_lines(result, log_path=".stackctl/logs/x.log")
        assert "  and 2 more (all of them in .stackctl/logs/x.log)" in lines
    finally:
        Kube(api).delete("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration",
                         "", name)
