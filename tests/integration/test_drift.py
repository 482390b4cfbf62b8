"""Drift checks against the sandbox's real API server: objects applied by the apply engine,
then changed behind stackctl's back by other field managers."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from gitops.cluster import ApplyPolicy
from gitops.drift import (
    ClusterDrift,
    DriftReport,
    DriftTarget,
    check_cluster,
    check_drift,
    render_json,
    render_markdown,
    render_text,
)
from gitops.errors import ExitCode
from gitops.inventory import PART_OF, cluster_applyset_id
from gitops.kube import Kube
from gitops.redact import Redactor
from tests.integration.apply_helpers import api, apply, configmap, deployment, ns, team_fixture

pytestmark = pytest.mark.integration
__all__ = ["api", "ns"]

POLICY = ApplyPolicy(timeout=60)


def applied(api: Any, ns: str, objects: list[dict[str, Any]]) -> Kube:
    result = apply(api, ns, objects, policy=POLICY)
    assert result.ok, (result.rejections, result.failure)
    return Kube(api)


def check(kube: Kube, ns: str, redactor: Redactor | None = None) -> ClusterDrift:
    return check_cluster(kube, cluster=ns, records_namespace=ns, redactor=redactor or Redactor())


def merge_patch(kube: Kube, path: str, body: dict[str, Any], manager: str) -> None:
    kube.request("PATCH", path, query={"fieldManager": manager}, body=body,
                 content_type="application/merge-patch+json")


def ssa(kube: Kube, obj: dict[str, Any], manager: str, *, force: bool = True) -> None:
    info = kube.info_of(obj)
    meta = obj["metadata"]
    kube.request("PATCH", kube.object_path(info, meta.get("namespace", ""), meta["name"]),
                 query={"fieldManager": manager, "force": str(force).lower()},
                 body=json.dumps(obj), content_type="application/apply-patch+yaml")


def fields_of(d: ClusterDrift, name: str) -> dict[str, Any]:
    [obj] = [o for o in d.objects if o.id.name == name]
    return {f.path: f for f in obj.fields}


def test_a_change_by_another_field_manager_is_drift_and_names_that_manager(
        api: Any, ns: str) -> None:
    kube = applied(api, ns, [deployment("web", ns, replicas=2), configmap("settings", ns)])
    assert check(kube, ns).status == "in-sync"

    merge_patch(kube, f"/apis/apps/v1/namespaces/{ns}/deployments/web",
                {"spec": {"replicas": 5}}, "intruder")
    ssa(kube, {"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": "settings", "namespace": ns}, "data": {"k": "other"}},
        "ops-tool")

    d = check(kube, ns)
    assert d.status == "drift" and d.exit_code == ExitCode.FINDING
    assert [(o.id.name, o.state) for o in d.objects] == [("settings", "changed"),
                                                         ("web", "changed")]
    replicas = fields_of(d, "web")["spec.replicas"]
    assert (replicas.desired, replicas.live, replicas.action) == (2, 5, "changed")
    assert [m.name for m in replicas.changed_by] == ["intruder"]
    assert replicas.changed_by[0].operation == "Update"
    data = fields_of(d, "settings")["data.k"]
    assert (data.desired, data.live) == ("v", "other")
    assert [(m.name, m.operation) for m in data.changed_by] == [("ops-tool", "Apply")]
    assert "changed by intruder (Update" in render_text(DriftReport((d,), Redactor(), "t"))


def test_fields_the_server_defaults_are_not_drift(api: Any, ns: str) -> None:
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": ns},
               "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}}
    kube = applied(api, ns, [deployment("web", ns), service])
    live = kube.get("apps/v1", "Deployment", ns, "web")
    svc = kube.get("v1", "Service", ns, "web")
    assert live is not None and svc is not None
    # The server filled in fields the render does not have ...
    assert live["spec"]["revisionHistoryLimit"] == 10
    assert live["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"]
    assert svc["spec"]["ports"][0]["protocol"] == "TCP" and svc["spec"]["clusterIP"]
    # ... and none of them is drift.
    d = check(kube, ns)
    assert (d.status, d.objects, d.checked) == ("in-sync", (), 2)


def test_a_field_set_by_another_manager_that_stackctl_does_not_own_is_not_drift(
        api: Any, ns: str) -> None:
    kube = applied(api, ns, [deployment("web", ns)])
    ssa(kube, {"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": "web", "namespace": ns,
                            "annotations": {"sidecar.example.com/injected": "true"}},
               "spec": {"template": {"spec": {"containers": [
                   {"name": "main", "env": [{"name": "INJECTED", "value": "1"}]}]}}}},
        "sidecar-injector", force=False)
    merge_patch(kube, f"/apis/apps/v1/namespaces/{ns}/deployments/web",
                {"metadata": {"labels": {"team": "ml"}}}, "labeller")
    live = kube.get("apps/v1", "Deployment", ns, "web")
    assert live is not None
    managers = {e["manager"] for e in live["metadata"]["managedFields"]}
    assert {"stackctl", "sidecar-injector", "labeller"} <= managers
    assert live["spec"]["template"]["spec"]["containers"][0]["env"][0]["name"] == "INJECTED"
    d = check(kube, ns)
    assert (d.status, d.objects) == ("in-sync", ())


def test_a_deleted_object_is_missing(api: Any, ns: str) -> None:
    kube = applied(api, ns, [configmap("a", ns), configmap("b", ns)])
    kube.delete("v1", "ConfigMap", ns, "b")
    d = check(kube, ns)
    assert [(o.id.name, o.state) for o in d.objects] == [("b", "missing")]
    assert d.exit_code == ExitCode.FINDING


def test_an_extra_object_with_stackctls_applyset_label_is_reported(api: Any, ns: str) -> None:
    kube = applied(api, ns, [configmap("a", ns)])
    stray = configmap("stray", ns)
    stray["metadata"]["labels"] = {PART_OF: cluster_applyset_id(ns, ns)}
    kube.create(stray)
    kube.create(configmap("unrelated", ns))  # no label: not stackctl's business
    d = check(kube, ns)
    assert [(o.id.name, o.state) for o in d.objects] == [("stray", "extra")]
    text = render_text(DriftReport((d,), Redactor(), "t"))
    assert "? ConfigMap/stray -n " in text and "not in revision 1" in text


def test_heal_fixes_changed_and_deleted_objects_and_a_second_check_is_clean(
        api: Any, ns: str) -> None:
    kube = applied(api, ns, [deployment("web", ns, replicas=2), configmap("a", ns),
                             configmap("b", ns)])
    ssa(kube, {"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": "web", "namespace": ns}, "spec": {"replicas": 4}},
        "autoscaler")
    merge_patch(kube, f"/api/v1/namespaces/{ns}/configmaps/a", {"data": {"k": "edited"}},
                "kubectl-edit")
    kube.delete("v1", "ConfigMap", ns, "b")
    target = DriftTarget(ns, connect=lambda: api, records_namespace=ns, policy=POLICY)

    healed = check_drift([target], heal=True, redactor=Redactor())
    [c] = healed.clusters
    assert c.heal is not None and c.heal.ok, c.heal
    assert [r.name for r in c.heal.created] == ["b"]
    assert sorted(r.name for r in c.heal.configured) == ["a", "web"]
    assert sorted((o.id.name, o.state) for o in c.heal.drift_before) == [
        ("a", "changed"), ("b", "missing"), ("web", "changed")]
    assert (c.status, healed.exit_code) == ("in-sync", ExitCode.OK)
    assert "heal: healed" in render_text(healed)

    live = kube.get("apps/v1", "Deployment", ns, "web")
    assert live is not None and live["spec"]["replicas"] == 2
    cm = kube.get("v1", "ConfigMap", ns, "a")
    assert cm is not None and cm["data"] == {"k": "v"}
    again = check_drift([target], redactor=Redactor())
    assert (again.clusters[0].status, again.exit_code) == ("in-sync", ExitCode.OK)


def test_a_secret_changed_behind_stackctls_back_is_reported_without_its_value(
        api: Any, ns: str) -> None:
    old, new = "0ld-s3cret-value-7431", "n3w-s3cret-value-9822"
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "namespace": ns},
              "stringData": {"password": old, "user": "app"}}
    kube = applied(api, ns, [secret])
    assert check(kube, ns).status == "in-sync"
    merge_patch(kube, f"/api/v1/namespaces/{ns}/secrets/db",
                {"data": {"password": base64.b64encode(new.encode()).decode()}}, "kubectl-edit")

    d = check(kube, ns)
    field = fields_of(d, "db")["data.password"]
    assert field.action == "changed" and [m.name for m in field.changed_by] == ["kubectl-edit"]
    assert field.desired.startswith("<redacted sha256:") and field.live.startswith("<redacted")
    assert field.desired != field.live
    report = DriftReport((d,), Redactor(), "t")
    outputs = render_text(report) + render_markdown(report) + render_json(report)
    assert "data.password" in outputs
    for value in (old, new):
        for form in (value, base64.b64encode(value.encode()).decode()):
            assert form not in outputs


def unreachable_kubeconfig(kubeconfig: Path, tmp_path: Path) -> Path:
    """A copy of the sandbox's kubeconfig pointing at a port nothing listens on."""
    config = yaml.safe_load(kubeconfig.read_text())
    for c in config["clusters"]:
        c["cluster"]["server"] = "https://127.0.0.1:9"
    out = tmp_path / "unreachable.yaml"
    out.write_text(yaml.safe_dump(config))
    return out


def test_an_unreachable_cluster_exits_2_with_its_reason_and_the_others_are_still_checked(
        api: Any, ns: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    from gitops.kube import api_client

    sandbox = team_fixture(request, "sandbox")
    applied(api, ns, [configmap("a", ns)])
    bad = unreachable_kubeconfig(Path(sandbox.kubeconfig), tmp_path)
    report = check_drift([
        DriftTarget("gone", connect=lambda: api_client(bad), records_namespace=ns),
        DriftTarget(ns, connect=lambda: api, records_namespace=ns),
        DriftTarget("never", connect=lambda: api, records_namespace=ns),
    ], redactor=Redactor())
    gone, ok, never = report.clusters
    assert gone.status == "error" and "cannot reach the Kubernetes API server" in gone.error
    assert ok.status == "in-sync"
    assert never.status == "never-applied" and "was never applied" in never.error
    assert report.exit_code == ExitCode.ERROR
    text = render_text(report)
    assert "cluster gone: could not check: cannot reach the Kubernetes API server" in text
    assert "cluster never: never applied: cluster 'never' was never applied" in text
    data = json.loads(render_json(report))
    assert [c["status"] for c in data["clusters"]] == ["error", "in-sync", "never-applied"]
    assert data["exitCode"] == 2 and data["apiVersion"] == "stackctl.dev/drift/v1"


def test_an_object_another_applyset_applied_last_is_a_note_not_drift(
        api: Any, ns: str) -> None:
    # The example's two clusters on one API server both apply the same CRDs: each apply
    # moves the part-of label to its own set.
    shared = configmap("shared", ns)
    kube = applied(api, ns, [shared, configmap("mine", ns)])
    other = apply(api, ns, [configmap("shared", ns)], cluster=f"{ns}-other", policy=POLICY)
    assert other.ok, (other.rejections, other.failure)

    d = check(kube, ns)
    assert d.status == "in-sync", [(o.id, o.fields) for o in d.objects]
    assert any("shared" in n and "another ApplySet" in n for n in d.notes), d.notes

    # A real change to the shared object is still drift.
    merge_patch(kube, f"/api/v1/namespaces/{ns}/configmaps/shared", {"data": {"k": "x"}},
                "intruder")
    d = check(kube, ns)
    assert [(o.id.name, o.state) for o in d.objects] == [("shared", "changed")]
    assert not any(PART_OF in f for f in fields_of(d, "shared")), fields_of(d, "shared")
