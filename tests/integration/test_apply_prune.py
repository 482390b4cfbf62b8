"""Prune guards and health rules of stackctl apply, against the sandbox's API server."""

from __future__ import annotations

from typing import Any

import pytest

from gitops.apply.prune import PRUNE_ANNOTATION, MassPruneError
from gitops.cluster import ApplyPolicy
from gitops.kube import Kube
from tests.integration.apply_helpers import api, apply, configmap, ns

pytestmark = pytest.mark.integration
__all__ = ["api", "ns"]

OK = ApplyPolicy(timeout=60)


def run(api: Any, ns: str, objects: list[dict[str, Any]], *, policy: ApplyPolicy = OK,
        **kw: Any) -> Any:
    return apply(api, ns, objects, policy=policy, **kw)


def crd(group: str) -> dict[str, Any]:
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": f"gadgets.{group}"},
            "spec": {"group": group, "scope": "Namespaced",
                     "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget"},
                     "versions": [{"name": "v1", "served": True, "storage": True, "schema": {
                         "openAPIV3Schema": {"type": "object",
                                             "x-kubernetes-preserve-unknown-fields": True}}}]}}


def pv(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": name},
            "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                     "storageClassName": "manual-none", "hostPath": {"path": f"/tmp/{name}"}}}


def pvc(name: str, ns: str, **annotations: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": name, "namespace": ns, "annotations": annotations},
            "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "manual-none",
                     "resources": {"requests": {"storage": "1Gi"}}}}


def test_prune_never_deletes_namespaces_crds_pvcs_or_pvs_unless_annotated(
    api: Any, ns: str,
) -> None:
    kube = Kube(api)
    extra_ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": f"{ns}-x"}}
    protected = [extra_ns, crd(f"{ns}.example.com"), pv(f"{ns}-pv"), pvc("data", ns)]
    allowed = pvc("scratch", ns, **{PRUNE_ANNOTATION: "allow"})
    keep = [configmap(f"c{i}", ns) for i in range(6)]
    try:
        assert run(api, ns, [*protected, allowed, *keep], wait=False).ok
        result = run(api, ns, keep, wait=False)
        assert result.ok, result.failure
        outcomes = {(p.id.kind, p.id.name): p.outcome for p in result.prune}
        assert outcomes == {
            ("Namespace", f"{ns}-x"): "kept",
            ("CustomResourceDefinition", f"gadgets.{ns}.example.com"): "kept",
            ("PersistentVolume", f"{ns}-pv"): "kept",
            ("PersistentVolumeClaim", "data"): "kept",
            ("PersistentVolumeClaim", "scratch"): "deleted",
        }
        assert all(PRUNE_ANNOTATION in p.message for p in result.prune if p.outcome == "kept")
        assert kube.get("v1", "Namespace", "", f"{ns}-x") is not None
        assert kube.get("apiextensions.k8s.io/v1", "CustomResourceDefinition", "",
                        f"gadgets.{ns}.example.com") is not None
        assert kube.get("v1", "PersistentVolume", "", f"{ns}-pv") is not None
        assert kube.get("v1", "PersistentVolumeClaim", ns, "data") is not None
        gone = kube.get("v1", "PersistentVolumeClaim", ns, "scratch")
        assert gone is None or gone["metadata"].get("deletionTimestamp")
    finally:
        kube.delete("v1", "Namespace", "", f"{ns}-x")
        kube.delete("apiextensions.k8s.io/v1", "CustomResourceDefinition", "",
                    f"gadgets.{ns}.example.com")
        kube.delete("v1", "PersistentVolume", "", f"{ns}-pv")


def test_the_cluster_policy_can_let_prune_delete_a_protected_kind(api: Any, ns: str) -> None:
    kube = Kube(api)
    policy = ApplyPolicy(timeout=60, protected_kinds=("Namespace", "CustomResourceDefinition",
                                                      "PersistentVolume"))
    keep = [configmap(f"c{i}", ns) for i in range(4)]
    assert run(api, ns, [pvc("data", ns), *keep], policy=policy, wait=False).ok
    result = run(api, ns, keep, policy=policy, wait=False)
    assert [(p.id.name, p.outcome) for p in result.prune] == [("data", "deleted")]
    gone = kube.get("v1", "PersistentVolumeClaim", ns, "data")
    assert gone is None or gone["metadata"].get("deletionTimestamp")


def test_an_empty_render_and_a_prune_of_most_objects_are_refused_before_any_change(
    api: Any, ns: str,
) -> None:
    kube = Kube(api)
    objects = [configmap(f"c{i}", ns) for i in range(4)]
    assert run(api, ns, objects).ok
    changed = [configmap("c0", ns, k="changed")]
    with pytest.raises(MassPruneError, match="3 of the 4") as info:
        run(api, ns, changed)
    assert "--allow-mass-prune" in str(info.value)
    with pytest.raises(MassPruneError, match="empty set"):
        run(api, ns, [])
    live = kube.get("v1", "ConfigMap", ns, "c0")
    assert live is not None and live["data"] == {"k": "v"}  # nothing was applied either
    assert all(kube.get("v1", "ConfigMap", ns, f"c{i}") is not None for i in range(4))
    result = run(api, ns, changed, allow_mass_prune=True)
    assert result.ok and sum(p.outcome == "deleted" for p in result.prune) == 3


def test_health_waits_for_statefulsets_daemonsets_jobs_claims_and_ready_conditions(
    api: Any, ns: str,
) -> None:
    group = f"{ns}.example.com"
    labels = {"app": "db"}
    template = {"metadata": {"labels": labels},
                "spec": {"containers": [{"name": "c", "image": "registry.local/db:1"}]}}
    sts = {"apiVersion": "apps/v1", "kind": "StatefulSet",
           "metadata": {"name": "db", "namespace": ns},
           "spec": {"replicas": 2, "serviceName": "db", "selector": {"matchLabels": labels},
                    "template": template}}
    ds = {"apiVersion": "apps/v1", "kind": "DaemonSet",
          "metadata": {"name": "agent", "namespace": ns},
          "spec": {"selector": {"matchLabels": {"app": "agent"}},
                   "template": {**template, "metadata": {"labels": {"app": "agent"}}}}}
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "once", "namespace": ns},
           "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [
               {"name": "c", "image": "registry.local/job:1"}]}}}}
    claim = {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
             "metadata": {"name": "data", "namespace": ns},
             "spec": {"accessModes": ["ReadWriteOnce"],
                      "resources": {"requests": {"storage": "1Gi"}}}}
    definition = crd(group)

    def gadget(name: str, ready: str) -> dict[str, Any]:
        # No status subresource in this CRD: the status is applied with the object.
        return {"apiVersion": f"{group}/v1", "kind": "Gadget",
                "metadata": {"name": name, "namespace": ns},
                "status": {"conditions": [{"type": "Ready", "status": ready,
                                           "reason": "Testing", "message": "set by the test"}]}}

    kube = Kube(api)
    try:
        result = run(api, ns, [definition, sts, ds, job, claim, gadget("good", "True")])
        assert result.ok, result.failure
        assert result.health is not None
        reasons = {r.kind: s.reason for r, s in result.health.statuses}
        assert reasons["StatefulSet"] == "2 of 2 replicas ready"
        assert reasons["DaemonSet"].endswith("pods available")
        assert reasons["Job"] == "job complete"
        assert reasons["PersistentVolumeClaim"] == "bound"
        assert reasons["CustomResourceDefinition"] == "established"
        assert reasons["Gadget"] == "Ready condition is True"

        stuck = run(api, ns, [definition, sts, ds, job, claim, gadget("good", "True"),
                              gadget("bad", "False")], policy=ApplyPolicy(timeout=5))
        assert stuck.failure is not None and "within the timeout" in stuck.failure.summary
        [bad] = stuck.failure.objects
        assert (bad.id.kind, bad.id.name) == ("Gadget", "bad")
        assert "Ready condition is False: Testing set by the test" in bad.reason
        assert any("condition Ready=False" in d for d in bad.details)
        rb = stuck.rollback
        assert rb is not None and rb.healthy and [r.name for r in rb.deleted] == ["bad"]
    finally:
        kube.delete("apiextensions.k8s.io/v1", "CustomResourceDefinition", "",
                    f"gadgets.{group}")
