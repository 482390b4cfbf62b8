"""Objects whose immutable fields change are re-created, and re-created back by the
automatic rollback and by `rollback --to`; those whose re-creation destroys data are
refused. On the sandbox's real API server, whose controller manager runs the garbage
collector (foreground and orphaning deletes) and the PV binder."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from gitops.apply import Action, ApplyOptions, Outcome, ProgressEvent, rollback_to
from gitops.apply.report import change_set_lines, history_lines
from gitops.cluster import ApplyPolicy
from gitops.kube import Kube
from gitops.redact import Redactor
from gitops.resource import ResourceId
from tests.integration.apply_helpers import (
    api,
    apply,
    configmap,
    deployment,
    dry_run,
    ns,
    revisions,
    target,
)

pytestmark = pytest.mark.integration
__all__ = ["api", "ns"]  # fixtures

OK = ApplyPolicy(timeout=90)
Obj = dict[str, Any]
RBAC = "rbac.authorization.k8s.io/v1"


def breaker(ns: str) -> Obj:
    """A Deployment that fails at once: its pods never become ready (the sandbox's failure
    label) and its progress deadline is 1 s, so the controller reports
    ProgressDeadlineExceeded and the health wait fails without waiting for the timeout."""
    d = deployment("breaker", ns, replicas=1, fail=True)
    d["spec"]["progressDeadlineSeconds"] = 1
    return d


def web(ns: str, tier: str) -> Obj:
    d = deployment("web", ns, replicas=2)
    d["spec"]["selector"]["matchLabels"]["tier"] = tier
    d["spec"]["template"]["metadata"]["labels"]["tier"] = tier
    return d


def statefulset(ns: str, selector: dict[str, str], **more: str) -> Obj:
    # The pods carry every label the selectors below ask for (and `more`).
    labels = {"app": "db", "tier": "data", "zone": "z1", **more}
    return {
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "db", "namespace": ns},
        "spec": {"replicas": 1, "serviceName": "db",
                 "selector": {"matchLabels": selector},
                 "template": {"metadata": {"labels": labels},
                              "spec": {"containers": [{"name": "db", "image": "db:1"}]}},
                 "volumeClaimTemplates": [{
                     "metadata": {"name": "data"},
                     "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "standard",
                              "resources": {"requests": {"storage": "1Gi"}}}}]},
    }


def job(ns: str, image: str) -> Obj:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "migrate",
                                                                  "namespace": ns},
            "spec": {"backoffLimit": 0, "template": {"spec": {
                "restartPolicy": "Never", "containers": [{"name": "m", "image": image}]}}}}


def role_binding(ns: str, role: str) -> Obj:
    return {"apiVersion": RBAC, "kind": "RoleBinding", "metadata": {"name": "rb",
                                                                    "namespace": ns},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                        "name": role},
            "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": ns}]}


def cluster_role_binding(ns: str, role: str) -> Obj:
    b = role_binding(ns, role)
    b["kind"] = "ClusterRoleBinding"
    b["metadata"] = {"name": f"{ns}-crb"}
    return b


_OCTET = random.randrange(1, 250)  # this session's cluster IPs: 10.100.<octet>.1..3


def service(ns: str, last: str) -> Obj:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "api",
                                                                "namespace": ns},
            "spec": {"clusterIP": f"10.100.{_OCTET}.{last}", "selector": {"app": "web"},
                     "ports": [{"port": 80, "targetPort": 8080}]}}


def _live(kube: Kube, av: str, kind: str, ns: str, name: str) -> Obj:
    got = kube.get(av, kind, ns, name)
    assert got is not None, (kind, name)
    return got


@dataclass(frozen=True)
class Case:
    """One kind: its three versions (A applied first, B replaces it, C replaces it in a
    revision that fails), the field that forces it, and how to read that field live."""

    name: str
    make: Callable[[str, str], Obj]  # (namespace, version) -> object
    versions: dict[str, str]
    forced: str
    read: Callable[[Obj], Any]


CASES = [
    Case("deployment-selector", web, {"A": "a", "B": "b", "C": "c"}, "spec.selector",
         lambda o: o["spec"]["selector"]["matchLabels"]["tier"]),
    Case("job-template", job, {"A": "job:1", "B": "job:2", "C": "job:3"}, "spec.template",
         lambda o: o["spec"]["template"]["spec"]["containers"][0]["image"]),
    Case("rolebinding-roleref", role_binding, {"A": "view", "B": "edit", "C": "admin"},
         "roleRef", lambda o: o["roleRef"]["name"]),
    Case("clusterrolebinding-roleref", cluster_role_binding,
         {"A": "view", "B": "edit", "C": "admin"}, "roleRef", lambda o: o["roleRef"]["name"]),
    Case("service-clusterip", service, {"A": "1", "B": "2", "C": "3"}, "spec.clusterIP",
         lambda o: o["spec"]["clusterIP"].rsplit(".", 1)[1]),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_an_immutable_change_is_replaced_then_replaced_back_by_a_failed_apply_and_rollback(
    api: Any, ns: str, case: Case,
) -> None:
    kube = Kube(api)

    def obj(version: str) -> Obj:
        return case.make(ns, case.versions[version])

    def live() -> Obj:
        o = obj("A")
        return _live(kube, o["apiVersion"], o["kind"], o["metadata"].get("namespace", ""),
                     o["metadata"]["name"])

    rid = ResourceId.of(obj("A"))
    try:
        assert apply(api, ns, [obj("A")], policy=OK, commit="a").ok
        first_uid = live()["metadata"]["uid"]

        # The dry run shows the replacement and what forces it; nothing changes.
        cs = dry_run(api, ns, [obj("B")], policy=OK)
        assert cs.ok, cs.rejections
        change = cs.by_id()[rid]
        assert change.action is Action.REPLACE
        assert change.note == f"{case.forced} cannot change on a live object"
        lines = change_set_lines(cs)
        assert lines[0] == f"-/+ {rid} (replace: {case.forced} cannot change on a live object)"
        assert "1 to replace" in lines[-1]
        assert live()["metadata"]["uid"] == first_uid

        events: list[ProgressEvent] = []
        second = apply(api, ns, [obj("B")], policy=OK, commit="b", progress=events.append)
        assert second.ok, (second.rejections, second.failure)
        [outcome] = second.objects
        assert (outcome.outcome, outcome.message) == (Outcome.REPLACED, change.note)
        assert case.read(live()) == case.versions["B"]
        assert live()["metadata"]["uid"] != first_uid
        assert any(e.stage == "replace" and e.id == rid for e in events)
        assert revisions(api, ns)[-1].replaced == (str(rid),)

        # A later revision re-creates it again and fails: the automatic rollback
        # re-creates it as revision 2 had it.
        failed = apply(api, ns, [obj("C"), breaker(ns)], policy=OK, commit="c")
        assert failed.failure is not None, failed.rejections
        assert {o.id: o.outcome for o in failed.objects}[rid] is Outcome.REPLACED
        rb = failed.rollback
        assert rb is not None and rb.healthy and not rb.error, rb
        assert rb.replaced == (rid,)
        assert case.read(live()) == case.versions["B"]
        assert kube.get("apps/v1", "Deployment", ns, "breaker") is None
        assert revisions(api, ns)[-1].replaced == (str(rid),)

        # rollback --to 1 re-creates it as revision 1 had it.
        back = rollback_to(target(api, ns), revision=1, options=ApplyOptions(policy=OK),
                           redactor=Redactor())
        assert back.ok, (back.rejections, back.failure)
        assert [o.outcome for o in back.objects] == [Outcome.REPLACED]
        assert case.read(live()) == case.versions["A"]
        history = history_lines(revisions(api, ns))
        assert f"{'':<9} replaced {rid}" in history
    finally:
        if not rid.namespace:
            kube.delete(obj("A")["apiVersion"], rid.kind, "", rid.name)


def test_a_statefulset_selector_change_keeps_its_pods_claims_and_volume(
    api: Any, ns: str,
) -> None:
    kube = Kube(api)
    rid = ResourceId("apps", "StatefulSet", ns, "db")

    def claim() -> tuple[str, str]:
        pvc = _live(kube, "v1", "PersistentVolumeClaim", ns, "data-db-0")
        assert pvc["status"]["phase"] == "Bound"
        return pvc["metadata"]["uid"], pvc["spec"]["volumeName"]

    def selector() -> dict[str, str]:
        sts = _live(kube, "apps/v1", "StatefulSet", ns, "db")
        return dict(sts["spec"]["selector"]["matchLabels"])

    assert apply(api, ns, [statefulset(ns, {"app": "db"})], policy=OK).ok
    bound = claim()
    pod_uid = _live(kube, "v1", "Pod", ns, "db-0")["metadata"]["uid"]

    second = apply(api, ns, [statefulset(ns, {"app": "db", "tier": "data"})], policy=OK)
    assert second.ok, (second.rejections, second.failure)
    assert [o.outcome for o in second.objects] == [Outcome.REPLACED]
    assert selector() == {"app": "db", "tier": "data"}
    assert claim() == bound  # the same claim, bound to the same volume
    pod = _live(kube, "v1", "Pod", ns, "db-0")
    assert pod["metadata"]["uid"] == pod_uid  # adopted, not re-created
    owner = _live(kube, "apps/v1", "StatefulSet", ns, "db")["metadata"]["uid"]
    assert [r["uid"] for r in pod["metadata"]["ownerReferences"]] == [owner]

    failed = apply(api, ns, [statefulset(ns, {"app": "db", "zone": "z1"}), breaker(ns)],
                   policy=OK)
    assert failed.failure is not None
    assert failed.rollback is not None and failed.rollback.healthy, failed.rollback
    assert failed.rollback.replaced == (rid,)
    assert selector() == {"app": "db", "tier": "data"}
    assert claim() == bound

    back = rollback_to(target(api, ns), revision=1, options=ApplyOptions(policy=OK),
                       redactor=Redactor())
    assert back.ok, (back.rejections, back.failure)
    assert selector() == {"app": "db"}
    assert claim() == bound
    assert _live(kube, "v1", "Pod", ns, "db-0")["metadata"]["uid"] == pod_uid


def test_a_statefulset_selector_that_would_orphan_its_pods_is_refused_with_the_way_forward(
    api: Any, ns: str,
) -> None:
    kube = Kube(api)
    assert apply(api, ns, [statefulset(ns, {"app": "db"})], policy=OK).ok
    uid = _live(kube, "apps/v1", "StatefulSet", ns, "db")["metadata"]["uid"]
    # Its pods have no `ring` label yet: the new selector would not match them.
    result = apply(api, ns, [statefulset(ns, {"app": "db", "ring": "blue"}, ring="blue")],
                   policy=OK)
    [rej] = result.rejections
    assert rej.reason == "Immutable" and rej.fields == ("spec.selector",)
    assert "does not match the labels of its pod(s) db-0" in rej.message
    assert "two steps" in rej.hint
    assert _live(kube, "apps/v1", "StatefulSet", ns, "db")["metadata"]["uid"] == uid
    assert len(revisions(api, ns)) == 1


def test_a_crd_scope_change_is_refused_and_the_cluster_is_unchanged(
    api: Any, ns: str,
) -> None:
    kube = Kube(api)
    group = f"{ns}.scope.test"

    def crd(scope: str) -> Obj:
        return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                "metadata": {"name": f"boards.{group}"},
                "spec": {"group": group, "scope": scope,
                         "names": {"plural": "boards", "singular": "board", "kind": "Board"},
                         "versions": [{"name": "v1", "served": True, "storage": True,
                                       "schema": {"openAPIV3Schema": {
                                           "type": "object",
                                           "x-kubernetes-preserve-unknown-fields": True}}}]}}

    board = {"apiVersion": f"{group}/v1", "kind": "Board",
             "metadata": {"name": "b1", "namespace": ns}, "spec": {"size": 3}}
    try:
        assert apply(api, ns, [crd("Namespaced"), board], policy=OK).ok
        cs = dry_run(api, ns, [crd("Cluster"), board], policy=OK)
        [rej] = cs.rejections
        assert (rej.reason, rej.fields) == ("Immutable", ("spec.scope",))
        assert "spec.scope: Namespaced -> Cluster" in rej.message
        assert "deletes every custom resource" in rej.hint
        result = apply(api, ns, [crd("Cluster"), board], policy=OK)
        assert [r.fields for r in result.rejections] == [("spec.scope",)]
        live = _live(kube, "apiextensions.k8s.io/v1", "CustomResourceDefinition", "",
                     f"boards.{group}")
        assert live["spec"]["scope"] == "Namespaced"
        assert _live(kube, f"{group}/v1", "Board", ns, "b1")["spec"] == {"size": 3}
        assert len(revisions(api, ns)) == 1
    finally:
        kube.delete("apiextensions.k8s.io/v1", "CustomResourceDefinition", "",
                    f"boards.{group}")


def test_a_claim_spec_change_is_refused_saying_the_data_would_be_lost_and_how_to_migrate(
    api: Any, ns: str,
) -> None:
    def pvc(mode: str) -> Obj:
        return {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                "metadata": {"name": "store", "namespace": ns},
                "spec": {"accessModes": [mode], "storageClassName": "standard",
                         "resources": {"requests": {"storage": "1Gi"}}}}

    assert apply(api, ns, [pvc("ReadWriteOnce")], policy=OK).ok
    result = apply(api, ns, [pvc("ReadWriteMany")], policy=OK)
    [rej] = result.rejections
    assert rej.reason == "Immutable" and rej.fields == ("spec.accessModes",)
    assert "the data on it" in rej.hint and "copy the data" in rej.hint
    live = _live(Kube(api), "v1", "PersistentVolumeClaim", ns, "store")
    assert live["spec"]["accessModes"] == ["ReadWriteOnce"]


def test_a_storage_class_whose_parameters_changed_is_replaced(api: Any, ns: str) -> None:
    kube = Kube(api)
    name = f"{ns}-fast"

    def sc(kind: str) -> Obj:
        return {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
                "metadata": {"name": name}, "provisioner": "example.com/disk",
                "parameters": {"type": kind}, "volumeBindingMode": "WaitForFirstConsumer"}

    try:
        assert apply(api, ns, [sc("ssd")], policy=OK).ok
        result = apply(api, ns, [sc("nvme")], policy=OK)
        assert result.ok, result.rejections
        [o] = result.objects
        assert o.outcome is Outcome.REPLACED and o.message.startswith("parameters")
        assert _live(kube, "storage.k8s.io/v1", "StorageClass", "", name)["parameters"] == {
            "type": "nvme"}
    finally:
        kube.delete("storage.k8s.io/v1", "StorageClass", "", name)


def test_the_replace_annotation_and_policy_decide(api: Any, ns: str) -> None:
    kube = Kube(api)
    never = web(ns, "a")
    never["metadata"]["annotations"] = {"stackctl.dev/replace": "never"}
    assert apply(api, ns, [never], policy=OK).ok
    changed = web(ns, "b")
    changed["metadata"]["annotations"] = {"stackctl.dev/replace": "never"}
    [rej] = apply(api, ns, [changed], policy=OK).rejections
    assert "annotated stackctl.dev/replace: never" in rej.hint

    # `always`: re-created on every change, even one the server would take in place.
    cm = configmap("settings", ns, mode="a")
    cm["metadata"]["annotations"] = {"stackctl.dev/replace": "always"}
    assert apply(api, ns, [cm], policy=OK, cluster="other").ok
    uid = _live(kube, "v1", "ConfigMap", ns, "settings")["metadata"]["uid"]
    cm2 = configmap("settings", ns, mode="b")
    cm2["metadata"]["annotations"] = {"stackctl.dev/replace": "always"}
    result = apply(api, ns, [cm2], policy=OK, cluster="other")
    assert [(o.outcome, o.message) for o in result.objects] == [
        (Outcome.REPLACED, "annotated stackctl.dev/replace: always")]
    live = _live(kube, "v1", "ConfigMap", ns, "settings")
    assert live["metadata"]["uid"] != uid and live["data"] == {"mode": "b"}
    again = apply(api, ns, [cm2], policy=OK, cluster="other")
    assert again.ok and not again.changed

    # cluster.yaml `apply.replace: never` refuses; the object's `always` still wins.
    strict = ApplyPolicy(timeout=90, replace="never")
    assert apply(api, ns, [deployment("api", ns)], policy=strict, cluster="strict").ok
    uid = _live(kube, "apps/v1", "Deployment", ns, "api")["metadata"]["uid"]
    moved = deployment("api", ns)
    moved["spec"]["selector"]["matchLabels"]["tier"] = "b"
    moved["spec"]["template"]["metadata"]["labels"]["tier"] = "b"
    [rej] = apply(api, ns, [moved], policy=strict, cluster="strict").rejections
    assert rej.fields == ("spec.selector",) and "apply.replace: never" in rej.hint
    assert _live(kube, "apps/v1", "Deployment", ns, "api")["metadata"]["uid"] == uid
    moved["metadata"]["annotations"] = {"stackctl.dev/replace": "always"}
    result = apply(api, ns, [moved], policy=strict, cluster="strict")
    assert [o.outcome for o in result.objects] == [Outcome.REPLACED], result.rejections
    assert _live(kube, "apps/v1", "Deployment", ns, "api")["metadata"]["uid"] != uid
