"""The sandbox runs a real stack's webhooks (issue 16, item 5): started on a machine whose
proxy variables name a proxy that answers nothing, it still calls the webhooks of its own
Services (never the proxy), and webhooks that fail closed (`failurePolicy: Fail`, no
backend: kwok's pods run nothing) are answered by the sandbox's webhook component, so the
pods they admit are created, as on a cluster whose backends run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gitops.cluster import ApplyPolicy
from gitops.kube import Kube, api_client
from gitops.sandbox.processes import free_port
from tests.integration.apply_helpers import apply, configmap, deployment

pytestmark = pytest.mark.integration

NS = "istio-like"
ADMISSION = "admissionregistration.k8s.io/v1"


def _webhook(kind: str, name: str, resources: list[str]) -> dict[str, Any]:
    # As Istio ships them: an empty caBundle (istiod fills it in), failing closed.
    return {"apiVersion": ADMISSION, "kind": kind, "metadata": {"name": name},
            "webhooks": [{
                "name": f"{name}.example.com", "admissionReviewVersions": ["v1"],
                "sideEffects": "None", "failurePolicy": "Fail", "timeoutSeconds": 5,
                "clientConfig": {"caBundle": "", "service": {
                    "namespace": NS, "name": "istiod", "port": 443, "path": "/inject"}},
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": NS}},
                "rules": [{"operations": ["CREATE", "UPDATE"], "apiGroups": [""],
                           "apiVersions": ["v1"], "resources": resources}]}]}


@pytest.fixture
def behind_a_dead_proxy(sandbox: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                        ) -> Iterator[Any]:
    """A sandbox of its own (`sandbox` only ties it to the tier), started with every proxy
    variable naming a port where nothing listens, and NO_PROXY naming loopback only, as a
    machine behind a proxy has it (the client reaches the sandbox; a Service's name, which
    the API server calls for a webhook, is not in it)."""
    from gitops import sandbox as sb

    dead = f"http://127.0.0.1:{free_port()}"
    for var in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY"):
        monkeypatch.setenv(var, dead)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    state_dir = tmp_path / "sb"
    info = sb.up(state_dir, name="behind-proxy", die_with_caller=True)
    client = api_client(info.kubeconfig)
    try:
        yield client
    finally:
        client.close()
        sb.down(state_dir)


@pytest.mark.slow
def test_a_sandbox_behind_a_proxy_answers_the_webhooks_that_fail_closed(
    behind_a_dead_proxy: Any,
) -> None:
    api = behind_a_dead_proxy
    Kube(api).create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    objects = [
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "istiod", "namespace": NS},
         "spec": {"selector": {"app": "istiod"}, "ports": [{"port": 443,
                                                             "targetPort": 15017}]}},
        deployment("istiod", NS, replicas=1),
        _webhook("MutatingWebhookConfiguration", "sidecar-injector", ["pods"]),
        _webhook("ValidatingWebhookConfiguration", "istio-validator", ["configmaps"]),
        deployment("web", NS),
    ]
    result = apply(api, NS, objects, policy=ApplyPolicy(timeout=120.0))
    assert result.ok, (result.rejections, result.failure)
    pods = Kube(api).list("v1", "Pod", namespace=NS, label_selector="app=web")
    assert len(pods) == 2
    # Both webhooks are called from here on (the validating one on a ConfigMap write).
    again = apply(api, NS, [*objects, configmap("mesh", NS)],
                  policy=ApplyPolicy(timeout=120.0))
    assert again.ok, (again.rejections, again.failure)
    assert Kube(api).get("v1", "ConfigMap", NS, "mesh") is not None
