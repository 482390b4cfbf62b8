"""Unit tests of the apply engine's pure parts: order, health rules, prune safety,
the no-change test, revision chunking and the ApplySet id."""

from __future__ import annotations

from typing import Any

import pytest

from gitops.apply.compare import comparable, covers
from gitops.apply.order import Phase, group_by_phase, phase_of
from gitops.apply.prune import MassPruneError, plan_prune
from gitops.health import Health, status_of
from gitops.inventory import (
    applyset_id,
    cluster_applyset_id,
    decode_manifests,
    encode_manifests,
    split_chunks,
)
from gitops.resource import ResourceId


def obj(api_version: str, kind: str, name: str, namespace: str = "", **extra: Any
        ) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    return {"apiVersion": api_version, "kind": kind, "metadata": meta, **extra}


# -- order ------------------------------------------------------------------------------
def test_phases_put_crds_first_and_webhooks_last() -> None:
    objects = [
        obj("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration", "hook"),
        obj("apps/v1", "Deployment", "web", "app"),
        obj("rbac.authorization.k8s.io/v1", "RoleBinding", "rb", "app"),
        obj("v1", "ConfigMap", "cfg", "app"),
        obj("rbac.authorization.k8s.io/v1", "ClusterRole", "cr"),
        obj("v1", "Namespace", "app"),
        obj("apiextensions.k8s.io/v1", "CustomResourceDefinition", "widgets.example.com"),
        obj("example.com/v1", "Widget", "w", "app"),
        obj("storage.k8s.io/v1", "StorageClass", "fast"),
    ]
    phases = group_by_phase(objects)
    assert [p for p, _ in phases] == [Phase.CRDS, Phase.NAMESPACES, Phase.CLUSTER,
                                      Phase.CONFIG, Phase.RBAC, Phase.WORKLOADS,
                                      Phase.WEBHOOKS]
    assert [ResourceId.of(o).kind for o in dict(phases)[Phase.CLUSTER]] == [
        "ClusterRole", "StorageClass"]
    assert {ResourceId.of(o).kind for o in dict(phases)[Phase.WORKLOADS]} == {
        "Deployment", "Widget"}


def test_cluster_role_binding_goes_with_rbac_not_with_cluster_scoped_objects() -> None:
    rid = ResourceId("rbac.authorization.k8s.io", "ClusterRoleBinding", "", "x")
    assert phase_of(rid) is Phase.RBAC


# -- health -----------------------------------------------------------------------------
def deployment(replicas: int = 2, *, generation: int = 2, observed: int = 2, updated: int = 2,
               available: int = 2, total: int = 2, conditions: list[Any] | None = None
               ) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "a", "generation": generation},
        "spec": {"replicas": replicas},
        "status": {"observedGeneration": observed, "updatedReplicas": updated,
                   "availableReplicas": available, "replicas": total,
                   "conditions": conditions or []},
    }


def test_deployment_is_ready_when_every_replica_is_updated_and_available() -> None:
    assert status_of(deployment()).health is Health.READY


@pytest.mark.parametrize("kwargs,reason", [
    ({"observed": 1}, "observe"),
    ({"updated": 1}, "1 of 2 replicas updated"),
    ({"available": 1}, "1 of 2 updated replicas available"),
    ({"total": 3}, "old replicas"),
])
def test_deployment_is_in_progress_until_rolled_out(kwargs: dict[str, int], reason: str) -> None:
    st = status_of(deployment(**kwargs))
    assert st.health is Health.IN_PROGRESS
    assert reason in st.reason


def test_deployment_past_its_progress_deadline_has_failed() -> None:
    cond = {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
            "message": "ReplicaSet web-1 has timed out progressing."}
    st = status_of(deployment(available=0, conditions=[cond]))
    assert st.health is Health.FAILED
    assert "timed out progressing" in st.reason


def test_statefulset_waits_for_the_update_revision_to_become_current() -> None:
    sts = {"apiVersion": "apps/v1", "kind": "StatefulSet",
           "metadata": {"name": "db", "namespace": "a", "generation": 1},
           "spec": {"replicas": 1},
           "status": {"observedGeneration": 1, "updatedReplicas": 1, "readyReplicas": 1,
                      "currentRevision": "db-1", "updateRevision": "db-2"}}
    assert status_of(sts).health is Health.IN_PROGRESS
    sts["status"]["currentRevision"] = "db-2"
    assert status_of(sts).health is Health.READY


def test_daemonset_waits_for_every_scheduled_pod() -> None:
    ds = {"apiVersion": "apps/v1", "kind": "DaemonSet",
          "metadata": {"name": "agent", "namespace": "a", "generation": 1},
          "status": {"observedGeneration": 1, "desiredNumberScheduled": 3,
                     "updatedNumberScheduled": 3, "numberAvailable": 2}}
    assert status_of(ds).health is Health.IN_PROGRESS
    ds["status"]["numberAvailable"] = 3
    assert status_of(ds).ready


def test_job_is_ready_when_complete_and_failed_when_failed() -> None:
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j", "namespace": "a"},
           "status": {"conditions": [{"type": "Complete", "status": "True"}]}}
    assert status_of(job).ready
    job["status"]["conditions"] = [{"type": "Failed", "status": "True",
                                    "reason": "BackoffLimitExceeded"}]
    st = status_of(job)
    assert st.health is Health.FAILED and "BackoffLimitExceeded" in st.reason


def test_pvc_is_ready_only_when_bound() -> None:
    pvc = {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
           "metadata": {"name": "data", "namespace": "a"}, "status": {"phase": "Pending"}}
    assert status_of(pvc).health is Health.IN_PROGRESS
    pvc["status"]["phase"] = "Bound"
    assert status_of(pvc).ready


def test_crd_is_ready_when_established_and_failed_when_names_are_refused() -> None:
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": "w.example.com"}, "status": {"conditions": []}}
    assert status_of(crd).health is Health.IN_PROGRESS
    crd["status"]["conditions"] = [{"type": "Established", "status": "True"}]
    assert status_of(crd).ready
    crd["status"]["conditions"] = [{"type": "NamesAccepted", "status": "False",
                                    "message": "kind Widget is already in use"}]
    assert status_of(crd).health is Health.FAILED


def test_custom_resource_follows_its_ready_condition_and_is_ready_without_conditions() -> None:
    cr = {"apiVersion": "example.com/v1", "kind": "Widget",
          "metadata": {"name": "w", "namespace": "a"}}
    assert status_of(cr).ready
    cr["status"] = {"conditions": [{"type": "Ready", "status": "False", "reason": "Waiting"}]}
    st = status_of(cr)
    assert st.health is Health.IN_PROGRESS and "Waiting" in st.reason


def test_apiservice_is_ready_when_available() -> None:
    svc = {"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
           "metadata": {"name": "v1beta1.metrics.k8s.io"},
           "status": {"conditions": [{"type": "Available", "status": "False",
                                      "message": "endpoints not found"}]}}
    assert "endpoints not found" in status_of(svc).reason
    svc["status"]["conditions"][0]["status"] = "True"
    assert status_of(svc).ready


# -- prune safety ---------------------------------------------------------------------------
def inventory(n: int) -> list[dict[str, Any]]:
    return [obj("v1", "ConfigMap", f"cm{i}", "a") for i in range(n)]


def test_prune_deletes_objects_that_left_the_render() -> None:
    prev = inventory(4)
    desired = [ResourceId.of(o) for o in prev[:3]]
    actions = plan_prune(prev, desired, protected_kinds=["Namespace"])
    assert [(a.id.name, a.action) for a in actions] == [("cm3", "delete")]


def test_prune_keeps_protected_kinds_unless_annotated() -> None:
    prev = [*inventory(4), obj("v1", "Namespace", "data"),
            obj("v1", "PersistentVolumeClaim", "db", "a",
                ) | {"metadata": {"name": "db", "namespace": "a",
                                  "annotations": {"stackctl.dev/prune": "allow"}}}]
    desired = [ResourceId.of(o) for o in prev[:4]]
    actions = {a.id.name: a.action for a in plan_prune(
        prev, desired, protected_kinds=["Namespace", "PersistentVolumeClaim"])}
    assert actions == {"data": "keep", "db": "delete"}


def test_prune_refuses_an_empty_desired_set_without_the_flag() -> None:
    with pytest.raises(MassPruneError, match="empty set"):
        plan_prune(inventory(3), [], protected_kinds=[])
    assert len(plan_prune(inventory(3), [], protected_kinds=[], allow_mass_prune=True)) == 3


def test_prune_refuses_deleting_more_than_half_the_inventory_without_the_flag() -> None:
    prev = inventory(4)
    keep_one = [ResourceId.of(prev[0])]
    with pytest.raises(MassPruneError, match="3 of the 4"):
        plan_prune(prev, keep_one, protected_kinds=[])
    assert len(plan_prune(prev, keep_one, protected_kinds=[], allow_mass_prune=True)) == 3
    # exactly half is allowed
    assert len(plan_prune(prev, [ResourceId.of(o) for o in prev[:2]], protected_kinds=[])) == 2


# -- the no-change test and plans -----------------------------------------------------------
def test_desired_covered_by_live_with_server_defaults_and_stringified_numbers() -> None:
    desired = {"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": "w", "namespace": "a", "labels": {"x": "1"}},
               "spec": {"replicas": 2, "template": {"spec": {"containers": [
                   {"name": "c", "image": "i", "resources": {"limits": {"cpu": 1}}}]}}},
               "status": {}}
    live = {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "w", "namespace": "a", "labels": {"x": "1"}, "uid": "u"},
            "spec": {"replicas": 2, "strategy": {"type": "RollingUpdate"},
                     "template": {"spec": {"containers": [
                         {"name": "c", "image": "i", "imagePullPolicy": "IfNotPresent",
                          "resources": {"limits": {"cpu": "1"}}}]}}},
            "status": {"replicas": 2}}
    assert covers(live, comparable(desired))
    live["spec"]["template"]["spec"]["containers"][0]["image"] = "j"
    assert not covers(live, comparable(desired))


def test_secret_string_data_is_compared_as_data() -> None:
    desired = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
               "stringData": {"password": "hunter2"}}
    live = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
            "data": {"password": "aHVudGVyMg=="}, "type": "Opaque"}
    assert covers(live, comparable(desired))


def test_dry_run_lines_hide_secret_values_and_sensitive_keys_and_show_other_fields() -> None:
    from gitops.apply import Action, Change, ChangeSet, Target
    from gitops.apply.report import change_set_lines
    from gitops.diff import object_change
    from gitops.inventory import Revisions
    from gitops.kube import Kube
    from gitops.redact import Redactor

    redactor = Redactor(sensitive_patterns=["dsn$"])
    before = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
              "data": {"password": "b2xk"}}
    after = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
             "data": {"password": "bmV3", "token": "dG9r"}}
    cm_before = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
                 "data": {"k": "1", "DB_DSN": "postgres://app:old-pw@db/x"}}
    cm_after = {**cm_before, "data": {"k": "2", "DB_DSN": "postgres://app:new-pw@db/x"}}
    changes = tuple(
        Change(ResourceId.of(a), "v1", Action.UPDATE,
               diff=object_change(ResourceId.of(a), b, a, redactor=redactor))
        for b, a in ((before, after), (cm_before, cm_after)))
    cs = ChangeSet(Target(Kube(None), "c"), redactor, Revisions(), (after, cm_after), changes)
    lines = change_set_lines(cs)
    text = "\n".join(lines)
    for value in ("bmV3", "dG9r", "b2xk", "old-pw", "new-pw", "postgres"):
        assert value not in text
    assert '    ~ data.k: "1" -> "2"' in lines
    assert any(ln.startswith("    ~ data.password: <redacted sha256:") for ln in lines)
    assert any(ln.startswith("    ~ data.DB_DSN: <redacted sha256:") for ln in lines)
    assert lines[-1] == ("plan: 0 to create, 2 to update, 0 to delete, 0 unchanged (dry run: "
                         "nothing was changed)")


# -- records ----------------------------------------------------------------------------------
def test_manifests_round_trip_through_chunks_below_the_object_limit() -> None:
    import random

    rng = random.Random(7)
    objects = [{"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": f"cm{i}", "namespace": "a"},
                "data": {"blob": "".join(rng.choice("abcdefghij0123456789") for _ in range(4000))}}
               for i in range(600)]
    blob = encode_manifests(objects)
    chunks = split_chunks(blob)
    assert len(chunks) > 1
    assert all(len(c) * 4 / 3 < 1024 * 1024 - 16 * 1024 for c in chunks)
    assert decode_manifests(b"".join(chunks)) == objects


def test_applyset_id_matches_kubectl_for_its_documented_example() -> None:
    # kubectl's apply tests and the Kubernetes label reference use a Secret "my-set" in
    # namespace "test" as parent, with this id.
    assert applyset_id("my-set", "test", "Secret", "") == (
        "applyset-0eFHV8ySqp7XoShsGvyWFQD3s96yqwHmzc4e0HR1dsY-v1")
    assert cluster_applyset_id("dev", "stackctl-system") == applyset_id(
        "stackctl.dev.applyset", "stackctl-system", "Secret", "")


# -- the CLI's progress display ---------------------------------------------------------------
def test_progress_display_lists_pending_objects_once_per_change(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from gitops.apply.results import ProgressEvent, Stage
    from gitops.cli.apply import _Printer, _Progress
    from gitops.redact import Redactor

    web = ResourceId("apps", "Deployment", "a", "web")
    db = ResourceId("apps", "StatefulSet", "a", "db")
    show = _Progress(_Printer(Redactor()), verbose=False)
    show(ProgressEvent(Stage.PHASE, "applying 2 workloads, services and the rest",
                       phase="workloads, services and the rest", total=2))
    waiting = ProgressEvent(Stage.WAIT, "waiting", phase="the rollout", total=5,
                            pending=((web, "0 of 2 replicas updated"), (db, "0 of 1 ready")),
                            seconds_left=58)
    show(waiting)
    show(waiting)  # the same again: not repeated
    show(ProgressEvent(Stage.WAIT, "waiting", phase="the rollout", total=5,
                       pending=((web, "1 of 2 updated replicas available"),), seconds_left=57))
    assert capsys.readouterr().err.splitlines() == [
        "→ applying 2 workloads, services and the rest",
        "… waiting for the rollout: 2 of 5 pending [58s left]",
        "    Deployment.apps/web -n a: 0 of 2 replicas updated",
        "    StatefulSet.apps/db -n a: 0 of 1 ready",
        "… waiting for the rollout: 1 of 5 pending [57s left]",
        "    Deployment.apps/web -n a: 1 of 2 updated replicas available",
    ]


class _RenewalRefused:
    """A client whose lease GET answers (held by `holder`) and whose PUT fails, as an API
    server that stopped answering writes would: a narrow stand-in for the renewal loop."""

    def __init__(self, holder: str) -> None:
        self.holder = holder
        self.puts = 0

    def request(self, method: str, path: str, **kw: Any) -> dict[str, Any]:
        from gitops.kube import UnreachableError

        if method == "GET":
            return {"spec": {"holderIdentity": self.holder}}
        self.puts += 1
        raise UnreachableError("cannot reach the Kubernetes API server at https://x")


def test_a_lease_that_cannot_be_renewed_for_two_thirds_of_its_duration_is_lost() -> None:
    from gitops.apply.lease import ClusterLease

    lost: list[str] = []
    lease = ClusterLease(None, cluster="dev", namespace="ns", duration=3,  # type: ignore[arg-type]
                         on_lost=lost.append)
    client = _RenewalRefused(lease.holder)
    lease.kube = client  # type: ignore[assignment]
    lease._renew_loop()  # returns once the lease is lost
    assert client.puts >= 2
    assert lost == [lease.lost]
    assert lease.lost.startswith("lease ns/stackctl-dev could not be renewed for 2s")
    assert "another apply may take it over" in lease.lost


def test_a_lease_renewal_that_finds_another_holder_loses_the_lease() -> None:
    from gitops.apply.lease import ClusterLease

    lost: list[str] = []
    lease = ClusterLease(None, cluster="dev", namespace="ns", duration=3,  # type: ignore[arg-type]
                         on_lost=lost.append)
    lease.kube = _RenewalRefused("someone@elsewhere pid=1 run=x")  # type: ignore[assignment]
    lease._renew_loop()
    assert lost == ["lease ns/stackctl-dev is now held by someone@elsewhere pid=1 run=x"]
