"""stackctl apply, rollback and history against the sandbox's real API server."""

from __future__ import annotations

import base64
import re
import threading
from typing import Any

import pytest

from gitops.apply import ApplyOptions, ProgressEvent, rollback_to
from gitops.apply.lease import ClusterLease, LeaseHeldError
from gitops.apply.report import change_set_lines, result_lines
from gitops.cluster import ApplyPolicy
from gitops.inventory import (
    ADDITIONAL_NS,
    APPLYSET_ID,
    GROUP_KINDS,
    PART_OF,
    TOOLING,
    cluster_applyset_id,
    parent_name,
)
from gitops.kube import Kube
from gitops.redact import Redactor
from gitops.resource import ResourceId
from tests.integration.apply_helpers import (
    FAIL_LABEL,
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

OK = ApplyPolicy(timeout=60)
SHORT = ApplyPolicy(timeout=8)


def run(api: Any, ns: str, objects: list[dict[str, Any]], *, policy: ApplyPolicy = OK,
        **kw: Any) -> Any:
    return apply(api, ns, objects, policy=policy, **kw)


def image_of(kube: Kube, ns: str, name: str) -> str:
    live = kube.get("apps/v1", "Deployment", ns, name)
    assert live is not None
    return str(live["spec"]["template"]["spec"]["containers"][0]["image"])


def test_apply_records_a_revision_and_an_applyset_kubectl_recognises(api: Any, ns: str) -> None:
    kube = Kube(api)
    result = run(api, ns, [configmap("a", ns), deployment("web", ns)], commit="abc123")
    assert result.ok, result.failure
    assert result.revision == 1
    assert {a.outcome for a in result.objects} == {"created"}

    set_id = cluster_applyset_id(ns, ns)
    parent = kube.get("v1", "Secret", ns, parent_name(ns))
    assert parent is not None
    assert parent["metadata"]["labels"][APPLYSET_ID] == set_id
    ann = parent["metadata"]["annotations"]
    assert ann[TOOLING].startswith("stackctl/v")
    assert ann[GROUP_KINDS] == "ConfigMap,Deployment.apps"
    assert ann[ADDITIONAL_NS] == ""
    live = kube.get("v1", "ConfigMap", ns, "a")
    assert live is not None and live["metadata"]["labels"][PART_OF] == set_id

    [rev] = revisions(api, ns)
    assert (rev.revision, rev.status, rev.commit, rev.object_count) == (1, "deployed",
                                                                        "abc123", 2)


def test_a_no_change_reapply_sends_nothing_and_records_no_revision(api: Any, ns: str) -> None:
    objects = [configmap("a", ns), deployment("web", ns)]
    assert run(api, ns, objects).ok
    again = run(api, ns, objects)
    assert again.ok and not again.changed
    assert again.revision == 1
    assert {a.outcome for a in again.objects} == {"unchanged"}
    assert len(revisions(api, ns)) == 1


def test_an_object_deleted_by_hand_is_recreated_by_the_next_apply(api: Any, ns: str) -> None:
    kube = Kube(api)
    objects = [configmap("a", ns), configmap("b", ns)]
    assert run(api, ns, objects).ok
    kube.delete("v1", "ConfigMap", ns, "b")
    result = run(api, ns, objects)
    assert result.ok
    assert {a.id.name: a.outcome for a in result.objects} == {"a": "unchanged", "b": "created"}
    assert kube.get("v1", "ConfigMap", ns, "b") is not None


def test_a_rollout_that_never_becomes_ready_is_rolled_back_to_the_previous_images(
    api: Any, ns: str,
) -> None:
    kube = Kube(api)
    assert run(api, ns, [configmap("cfg", ns), deployment("web", ns, "registry.local/web:1")],
               commit="good").ok
    broken = [configmap("cfg", ns, k="changed"), configmap("new", ns),
              deployment("web", ns, "registry.local/web:2", fail=True)]
    assert broken[2]["spec"]["template"]["metadata"]["labels"][FAIL_LABEL] == "true"
    events: list[ProgressEvent] = []
    result = run(api, ns, broken, policy=SHORT, commit="bad", progress=events.append)

    assert not result.ok
    assert result.failure is not None and result.failure.stage == "health"
    [bad] = result.failure.objects
    assert (bad.id.kind, bad.id.name) == ("Deployment", "web")
    assert any("not ready" in d.lower() or "CrashLoopBackOff" in d for d in bad.details), \
        bad.details
    rb = result.rollback
    assert rb is not None and rb.healthy and rb.to_revision == 1, rb
    assert [r.name for r in rb.deleted] == ["new"]
    assert image_of(kube, ns, "web") == "registry.local/web:1"
    live_cfg = kube.get("v1", "ConfigMap", ns, "cfg")
    assert live_cfg is not None and live_cfg["data"] == {"k": "v"}
    assert kube.get("v1", "ConfigMap", ns, "new") is None
    revs = revisions(api, ns)
    assert [(r.revision, r.status) for r in revs] == [
        (1, "superseded"), (2, "failed"), (3, "deployed")]
    assert "rollback to revision 1" in revs[2].description

    # The progress display is told what the wait is waiting on, and why.
    waits = [e for e in events if e.stage == "wait" and e.phase == "the rollout"]
    assert waits, [e.message for e in events]
    assert all(e.total == 3 for e in waits)
    web = ResourceId("apps", "Deployment", ns, "web")
    assert all(web in dict(e.pending) for e in waits)
    assert any(re.search(r"\d+ of 2 .*replicas", dict(e.pending)[web]) for e in waits), \
        [e.pending for e in waits]
    assert [e.phase for e in events if e.stage == "phase"] == [
        "service accounts, config maps and secrets", "workloads, services and the rest",
        "service accounts, config maps and secrets", "workloads, services and the rest"]


def test_a_rollback_that_fails_too_says_which_objects_and_why(api: Any, ns: str) -> None:
    kube = Kube(api)
    assert run(api, ns, [deployment("web", ns, "registry.local/web:1")], commit="good").ok
    # Someone else breaks the pod template with a field stackctl does not own: re-applying
    # revision 1 cannot take it back, so the rollback cannot become healthy either.
    kube.request("PATCH", f"/apis/apps/v1/namespaces/{ns}/deployments/web",
                 query={"fieldManager": "someone"},
                 body={"spec": {"template": {"metadata": {"labels": {FAIL_LABEL: "true"}}}}},
                 content_type="application/merge-patch+json")
    result = run(api, ns, [deployment("web", ns, "registry.local/web:2")], policy=SHORT,
                 commit="bad")

    assert not result.ok and result.failure is not None
    rb = result.rollback
    assert rb is not None and rb.to_revision == 1 and not rb.healthy and rb.error, rb
    assert rb.failure is not None
    [obj] = rb.failure.objects
    assert (obj.id.kind, obj.id.name) == ("Deployment", "web")
    assert obj.details, obj


def test_a_first_apply_with_nothing_to_roll_back_to_deletes_what_it_created(
    api: Any, ns: str,
) -> None:
    kube = Kube(api)
    result = run(api, ns, [configmap("cfg", ns), deployment("web", ns, fail=True)],
                 policy=SHORT)
    assert not result.ok
    rb = result.rollback
    assert rb is not None and rb.to_revision is None
    assert sorted(r.name for r in rb.deleted) == ["cfg", "web"]
    assert kube.get("v1", "ConfigMap", ns, "cfg") is None
    assert kube.get("apps/v1", "Deployment", ns, "web") is None
    assert [r.status for r in revisions(api, ns)] == ["failed"]


def test_no_rollback_leaves_the_failed_attempt_in_place(api: Any, ns: str) -> None:
    kube = Kube(api)
    result = run(api, ns, [deployment("web", ns, fail=True)], policy=SHORT, rollback=False)
    assert not result.ok and result.rollback is None
    assert kube.get("apps/v1", "Deployment", ns, "web") is not None


def test_an_object_the_server_rejects_stops_the_apply_before_anything_changes(
    api: Any, ns: str,
) -> None:
    kube = Kube(api)
    bad = deployment("web", ns)
    bad["spec"]["replicas"] = -3
    bad2 = configmap("Bad_Name", ns)
    result = run(api, ns, [configmap("fine", ns), bad, bad2])
    assert not result.ok
    assert sorted(r.id.name for r in result.rejections) == ["Bad_Name", "web"]
    web = next(r for r in result.rejections if r.id.name == "web")
    assert "spec.replicas" in web.fields
    assert "greater than or equal to 0" in web.message
    assert kube.get("v1", "ConfigMap", ns, "fine") is None
    assert not revisions(api, ns)


def test_an_immutable_field_change_is_refused_with_what_to_do_when_replacing_is_off(
    api: Any, ns: str,
) -> None:
    never = ApplyPolicy(timeout=60, replace="never")
    assert run(api, ns, [deployment("web", ns)], policy=never).ok
    changed = deployment("web", ns)
    changed["spec"]["selector"]["matchLabels"] = {"app": "web", "tier": "front"}
    changed["spec"]["template"]["metadata"]["labels"]["tier"] = "front"
    result = run(api, ns, [changed], policy=never)
    [rej] = result.rejections
    assert rej.reason == "Immutable"
    assert rej.fields == ("spec.selector",)
    assert "apply.replace: never" in rej.hint and "stackctl.dev/replace: always" in rej.hint


def test_a_field_changed_by_another_manager_is_reported_as_a_conflict(
    api: Any, ns: str,
) -> None:
    kube = Kube(api)
    assert run(api, ns, [configmap("shared", ns, k="ours")]).ok
    # Another tool takes the field over with its own server-side apply.
    kube.request("PATCH", f"/api/v1/namespaces/{ns}/configmaps/shared",
                 query={"fieldManager": "helm", "force": "true"},
                 body={"apiVersion": "v1", "kind": "ConfigMap",
                       "metadata": {"name": "shared", "namespace": ns}, "data": {"k": "theirs"}},
                 content_type="application/apply-patch+yaml")
    result = run(api, ns, [configmap("shared", ns, k="ours-again")])
    [rej] = result.rejections
    assert (rej.reason, rej.managers, rej.fields) == ("Conflict", ("helm",), (".data.k",))
    live = kube.get("v1", "ConfigMap", ns, "shared")
    assert live is not None and live["data"]["k"] == "theirs"

    forced = run(api, ns, [configmap("shared", ns, k="ours-again")], force_conflicts=True)
    assert forced.ok
    live = kube.get("v1", "ConfigMap", ns, "shared")
    assert live is not None and live["data"]["k"] == "ours-again"


def test_a_second_apply_while_one_is_running_is_refused_and_changes_nothing(
    api: Any, ns: str,
) -> None:
    kube = Kube(api)
    waiting = threading.Event()
    first: list[Any] = []

    def on_event(e: ProgressEvent) -> None:
        if e.stage == "wait":
            waiting.set()

    # The first apply waits for a rollout that never becomes ready (the failure stage).
    runner = threading.Thread(target=lambda: first.append(run(
        api, ns, [deployment("slow", ns, fail=True)], policy=SHORT, progress=on_event)))
    runner.start()
    try:
        assert waiting.wait(30), "the first apply never reached its health wait"
        with pytest.raises(LeaseHeldError, match="another apply is running") as info:
            run(api, ns, [configmap("second", ns)])
        assert "pid=" in str(info.value) and "ago" in str(info.value)
        assert kube.get("v1", "ConfigMap", ns, "second") is None
    finally:
        runner.join(60)
    assert first and not first[0].ok  # the first one went on to its own end
    assert run(api, ns, [configmap("second", ns)]).ok  # and released the lease


def test_a_second_concurrent_apply_is_refused_with_the_holder(api: Any, ns: str) -> None:
    kube = Kube(api)
    with ClusterLease(kube, cluster=ns, namespace=ns) as other, \
            pytest.raises(LeaseHeldError, match="held by") as info:
        run(api, ns, [configmap("a", ns)])
    assert other.holder in str(info.value)
    assert kube.get("v1", "ConfigMap", ns, "a") is None
    assert run(api, ns, [configmap("a", ns)]).ok  # released


def test_a_stale_lease_is_reported_and_taken_over_only_with_break_lease(
    api: Any, ns: str,
) -> None:
    kube = Kube(api)
    kube.request("POST", f"/apis/coordination.k8s.io/v1/namespaces/{ns}/leases", body={
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": f"stackctl-{ns}", "namespace": ns},
        "spec": {"holderIdentity": "ci@runner-7 pid=1 run=dead", "leaseDurationSeconds": 60,
                 "acquireTime": "2020-01-01T00:00:00.000000Z",
                 "renewTime": "2020-01-01T00:00:00.000000Z"},
    })
    with pytest.raises(LeaseHeldError, match="stale") as info:
        run(api, ns, [configmap("a", ns)])
    message = str(info.value)
    assert "ci@runner-7" in message and "--break-lease" in message
    assert re.search(r"acquired \d+h\d\dm ago", message), message
    result = run(api, ns, [configmap("a", ns)], break_lease=True)
    assert result.ok and result.lease_taken_over == "ci@runner-7 pid=1 run=dead"


def test_prune_deletes_what_left_the_render_but_keeps_protected_kinds(api: Any, ns: str) -> None:
    kube = Kube(api)
    pvc = {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
           "metadata": {"name": "data", "namespace": ns},
           "spec": {"accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": "1Gi"}}}}
    first = [configmap(f"c{i}", ns) for i in range(4)] + [pvc]
    assert run(api, ns, first, wait=False).ok
    result = run(api, ns, first[:3], wait=False)
    assert result.ok, result.failure
    assert {(p.id.name, p.outcome) for p in result.prune} == {("c3", "deleted"),
                                                             ("data", "kept")}
    assert kube.get("v1", "ConfigMap", ns, "c3") is None
    assert kube.get("v1", "PersistentVolumeClaim", ns, "data") is not None


def test_dry_run_plans_creates_field_updates_and_deletes_without_changing_anything(
    api: Any, ns: str,
) -> None:
    kube = Kube(api)
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": ns},
              "data": {"password": base64.b64encode(b"old-value").decode()}}
    assert run(api, ns, [configmap("a", ns), configmap("gone", ns), secret,
                         deployment("web", ns)]).ok
    new_secret = {**secret, "data": {"password": base64.b64encode(b"new-value").decode()}}
    plan = dry_run(api, ns, [configmap("a", ns), configmap("b", ns), new_secret,
                             deployment("web", ns, "registry.local/web:9")], policy=OK)
    assert plan.fields and plan.ok
    acts = {c.id.name: c for c in plan.changes}
    assert acts["b"].action == "create"
    assert acts["a"].action == "unchanged"
    web, s = acts["web"].diff, acts["s"].diff
    assert web is not None and s is not None
    assert [(f.path, f.action) for f in web.fields] == [
        ("spec.template.spec.containers[name=main].image", "changed")]
    lines = change_set_lines(plan)
    assert ("    ~ spec.template.spec.containers[name=main].image: registry.local/web:1 -> "
            "registry.local/web:9") in lines
    [line] = [ln for ln in lines if "data.password" in ln]
    assert re.fullmatch(r"    ~ data\.password: <redacted sha256:\w{8}> -> "
                        r"<redacted sha256:\w{8}>", line), line
    printed = repr(plan.changes) + "\n".join(lines)
    for value in (b"old-value", b"new-value"):
        assert value.decode() not in printed
        assert base64.b64encode(value).decode() not in printed
    assert [(c.id.name, c.action) for c in plan.prune] == [("gone", "delete")]
    assert kube.get("v1", "ConfigMap", ns, "b") is None
    assert image_of(kube, ns, "web") == "registry.local/web:1"
    assert len(revisions(api, ns)) == 1


def test_crds_and_their_custom_resources_apply_in_one_run(api: Any, ns: str) -> None:
    group = f"{ns}.example.com"
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": f"widgets.{group}"},
           "spec": {"group": group, "scope": "Namespaced",
                    "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                    "versions": [{"name": "v1", "served": True, "storage": True, "schema": {
                        "openAPIV3Schema": {"type": "object", "properties": {"spec": {
                            "type": "object", "properties": {"size": {"type": "integer"}}}}}}}]}}
    cr = {"apiVersion": f"{group}/v1", "kind": "Widget",
          "metadata": {"name": "w1", "namespace": ns}, "spec": {"size": 3}}
    established_at_cr_phase: list[bool] = []

    def on_event(e: ProgressEvent) -> None:
        if e.stage == "phase" and e.phase == "workloads, services and the rest":
            live = Kube(api).get("apiextensions.k8s.io/v1", "CustomResourceDefinition", "",
                                 f"widgets.{group}")
            conds = {c["type"]: c["status"] for c in (live or {}).get("status", {}).get(
                "conditions", [])}
            established_at_cr_phase.append(conds.get("Established") == "True")

    try:
        result = run(api, ns, [cr, crd], progress=on_event)
        assert result.ok, (result.rejections, result.failure)
        assert established_at_cr_phase == [True]
        assert Kube(api).get(f"{group}/v1", "Widget", ns, "w1") is not None
    finally:
        Kube(api).delete("apiextensions.k8s.io/v1", "CustomResourceDefinition", "",
                         f"widgets.{group}")


def test_a_rollback_leaves_a_crd_whose_storage_version_moved_as_the_failed_attempt_left_it(
    api: Any, ns: str,
) -> None:
    # The API server refuses to take a CRD back to versions without one it has stored
    # objects in ("v2 was previously a storage version"): the refusal of a protected kind
    # does not stop the rest of the rollback, and the result lists it as not restored.
    group = f"{ns}.example.com"

    def crd(*versions: str) -> dict[str, Any]:
        schema = {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields":
                                      True}}
        return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                "metadata": {"name": f"gizmos.{group}"},
                "spec": {"group": group, "scope": "Namespaced",
                         "names": {"plural": "gizmos", "singular": "gizmo", "kind": "Gizmo"},
                         "versions": [{"name": v, "served": True, "storage": v == versions[-1],
                                       "schema": schema} for v in versions]}}

    kube = Kube(api)
    try:
        assert run(api, ns, [crd("v1"), deployment("web", ns, "registry.local/web:1")],
                   commit="good").ok
        result = run(api, ns, [crd("v1", "v2"),
                               deployment("web", ns, "registry.local/web:2", fail=True)],
                     policy=SHORT, commit="bad")
        assert not result.ok
        rb = result.rollback
        assert rb is not None and rb.healthy and not rb.error, rb
        assert image_of(kube, ns, "web") == "registry.local/web:1"
        live = kube.get("apiextensions.k8s.io/v1", "CustomResourceDefinition", "",
                        f"gizmos.{group}")
        assert live is not None
        assert [v["name"] for v in live["spec"]["versions"]] == ["v1", "v2"]
        # Re-applied as a protected kind, refused, and listed as not restored.
        assert [o.id.name for o in rb.unrestored] == [f"gizmos.{group}"]
        assert "previously a storage version" in " ".join(rb.unrestored[0].details)
        assert "1 protected object(s) NOT restored" in result_lines(result)[-1]
    finally:
        kube.delete("apiextensions.k8s.io/v1", "CustomResourceDefinition", "", f"gizmos.{group}")


def test_rollback_command_restores_an_earlier_revision_and_history_shows_it(
    api: Any, ns: str,
) -> None:
    kube = Kube(api)
    assert run(api, ns, [configmap("a", ns), deployment("web", ns, "registry.local/web:1")],
               commit="c1").ok
    assert run(api, ns, [configmap("a", ns), configmap("b", ns),
                         deployment("web", ns, "registry.local/web:2")], commit="c2").ok
    result = rollback_to(target(api, ns), options=ApplyOptions(policy=OK), redactor=Redactor())
    assert result.ok, result.failure
    assert image_of(kube, ns, "web") == "registry.local/web:1"
    assert kube.get("v1", "ConfigMap", ns, "b") is None
    revs = revisions(api, ns)
    assert [(r.revision, r.status, r.commit) for r in revs] == [
        (1, "superseded", "c1"), (2, "rolled-back", "c2"), (3, "deployed", "c1")]
    back = rollback_to(target(api, ns), revision=2, options=ApplyOptions(policy=OK),
                       redactor=Redactor())
    assert back.ok and image_of(kube, ns, "web") == "registry.local/web:2"


def test_a_kind_applied_at_two_versions_is_unchanged_on_the_next_apply(
    api: Any, ns: str,
) -> None:
    group = f"{ns}.example.com"
    schema = {"openAPIV3Schema": {"type": "object",
                                  "x-kubernetes-preserve-unknown-fields": True}}
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": f"routes.{group}"},
           "spec": {"group": group, "scope": "Namespaced",
                    "names": {"plural": "routes", "singular": "route", "kind": "Route"},
                    "versions": [{"name": "v1alpha1", "served": True, "storage": True,
                                  "schema": schema},
                                 {"name": "v1", "served": True, "storage": False,
                                  "schema": schema}]}}
    routes = [{"apiVersion": f"{group}/{v}", "kind": "Route",
               "metadata": {"name": f"r-{v}", "namespace": ns}, "spec": {"to": v}}
              for v in ("v1alpha1", "v1")]
    try:
        assert run(api, ns, [crd, *routes]).ok
        again = run(api, ns, [crd, *routes])
        assert again.ok and not again.changed, [a for a in again.objects
                                                 if a.outcome != "unchanged"]
    finally:
        Kube(api).delete("apiextensions.k8s.io/v1", "CustomResourceDefinition", "",
                         f"routes.{group}")
