"""A CRD whose new spec retires the version its objects are stored at: the apply migrates
storage (gitops.apply.migrate) before the CRD drops it; on the sandbox's API server."""

from __future__ import annotations

import time
from typing import Any

import pytest

from gitops.apply import Action, ProgressEvent
from gitops.apply.report import change_set_lines
from gitops.cluster import ApplyPolicy
from gitops.kube import Kube, KubeApiError, poll
from gitops.plan.live import plan_of
from gitops.plan.model import RefInfo
from gitops.plan.text import render_text
from tests.integration.apply_helpers import api, apply, dry_run, ns, revisions

pytestmark = pytest.mark.integration
__all__ = ["api", "ns"]  # fixtures

OK = ApplyPolicy(timeout=60)
CRD_API = "apiextensions.k8s.io/v1"
Obj = dict[str, Any]


def crd(group: str, *versions: str) -> Obj:
    """Widgets served at `versions`, the last one stored; `size` an integer in each."""
    schema = {"openAPIV3Schema": {"type": "object", "properties": {"spec": {
        "type": "object", "properties": {"size": {"type": "integer"}}}}}}
    return {"apiVersion": CRD_API, "kind": "CustomResourceDefinition",
            "metadata": {"name": f"widgets.{group}"},
            "spec": {"group": group, "scope": "Namespaced",
                     "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                     "versions": [{"name": v, "served": True, "storage": v == versions[-1],
                                   "schema": schema} for v in versions]}}


def widget(group: str, version: str, ns: str, name: str, size: int) -> Obj:
    return {"apiVersion": f"{group}/{version}", "kind": "Widget",
            "metadata": {"name": name, "namespace": ns}, "spec": {"size": size}}


def stored(kube: Kube, group: str) -> tuple[list[str], list[str]]:
    live = kube.get(CRD_API, "CustomResourceDefinition", "", f"widgets.{group}")
    assert live is not None
    return ([v["name"] for v in live["spec"]["versions"]],
            list(live["status"]["storedVersions"]))


def frozen(kube: Kube, obj: Obj, *, enforced: bool) -> bool:
    """Wait until the admission policy that freezes `obj` is (or is no longer) enforced:
    the API server loads policies and their bindings asynchronously."""
    def check() -> bool | None:
        try:
            kube.apply(obj, dry_run=True)
            refused = False
        except KubeApiError as e:
            if "frozen widgets cannot be updated" not in e.server_message:
                raise
            refused = True
        return True if refused == enforced else None
    return poll(check, deadline=time.monotonic() + 60) is not None


def test_a_retired_storage_version_is_migrated_and_the_objects_survive(
    api: Any, ns: str,
) -> None:
    kube = Kube(api)
    group = f"{ns}.migrate.test"
    try:
        assert apply(api, ns, [crd(group, "v1alpha1"),
                               widget(group, "v1alpha1", ns, "w1", 1),
                               widget(group, "v1alpha1", ns, "w2", 2)], policy=OK).ok
        # One the render does not hold (made by a person or a controller): migrated too.
        kube.apply(widget(group, "v1alpha1", ns, "w3", 3))
        assert stored(kube, group) == (["v1alpha1"], ["v1alpha1"])

        upgraded = [crd(group, "v1beta1"), widget(group, "v1beta1", ns, "w1", 1),
                    widget(group, "v1beta1", ns, "w2", 2)]
        # The dry run and plan --live say a migration will run; nothing changes.
        cs = dry_run(api, ns, upgraded, policy=OK)
        assert cs.ok, cs.rejections
        [m] = cs.migrations
        assert (m.retired, m.storage, m.objects) == (("v1alpha1",), "v1beta1", 3)
        note = ("storage migration: 3 Widget object(s) stored at v1alpha1 are rewritten at "
                "v1beta1 before the CRD drops v1alpha1")
        change = cs.by_id()[m.id]
        assert (change.action, change.note) == (Action.UPDATE, note)
        assert f"~ {m.id} ({note})" in change_set_lines(cs)
        text = render_text(plan_of(cs, head=RefInfo("HEAD", "0" * 40)))
        assert f"note: {m.id}: {note}" in text
        assert stored(kube, group) == (["v1alpha1"], ["v1alpha1"])

        events: list[ProgressEvent] = []
        result = apply(api, ns, upgraded, policy=OK, progress=events.append)
        assert result.ok, (result.rejections, result.failure)
        assert stored(kube, group) == (["v1beta1"], ["v1beta1"])
        items = kube.list(f"{group}/v1beta1", "Widget", namespace=ns)
        assert sorted((w["metadata"]["name"], w["spec"]["size"]) for w in items) == [
            ("w1", 1), ("w2", 2), ("w3", 3)]
        # No field manager's entry names the retired version: server-side apply of the
        # objects keeps working (it converts to each entry's version).
        assert {e["apiVersion"] for w in items for e in w["metadata"]["managedFields"]} \
            == {f"{group}/v1beta1"}
        kube.apply(widget(group, "v1beta1", ns, "w3", 4))
        said = [e.message for e in events if e.stage == "migrate"]
        assert said[0].startswith(f"migrating storage of {m.id}: rewriting 3 Widget")
        assert said[-1].endswith("status.storedVersions is [v1beta1]")
        assert revisions(api, ns)[-1].status == "deployed"
    finally:
        kube.delete(CRD_API, "CustomResourceDefinition", "", f"widgets.{group}")


def test_a_migration_that_fails_stops_before_the_crd_loses_the_version(
    api: Any, ns: str,
) -> None:
    kube = Kube(api)
    group = f"{ns}.migrate.test"
    # An admission policy that refuses every update of one widget: its rewrite fails.
    policy = {"apiVersion": "admissionregistration.k8s.io/v1",
              "kind": "ValidatingAdmissionPolicy", "metadata": {"name": f"{ns}-frozen"},
              "spec": {"failurePolicy": "Fail", "matchConstraints": {"resourceRules": [{
                  "apiGroups": [group], "apiVersions": ["*"], "operations": ["UPDATE"],
                  "resources": ["widgets"]}]},
                  "validations": [{"expression": "object.metadata.name != 'frozen'",
                                   "message": "frozen widgets cannot be updated"}]}}
    binding = {"apiVersion": "admissionregistration.k8s.io/v1",
               "kind": "ValidatingAdmissionPolicyBinding",
               "metadata": {"name": f"{ns}-frozen"},
               "spec": {"policyName": f"{ns}-frozen", "validationActions": ["Deny"]}}
    try:
        assert apply(api, ns, [crd(group, "v1alpha1"),
                               widget(group, "v1alpha1", ns, "frozen", 1)], policy=OK).ok
        kube.apply(policy)
        kube.apply(binding)
        assert frozen(kube, widget(group, "v1alpha1", ns, "frozen", 1), enforced=True)
        result = apply(api, ns, [crd(group, "v1beta1"),
                                 widget(group, "v1beta1", ns, "frozen", 1)], policy=OK)
        assert result.failure is not None, result.rejections
        [failed] = result.failure.objects
        assert failed.reason == "MigrationFailed"
        assert "frozen widgets cannot be updated" in failed.details[0]
        # The CRD still lists the retired version (not served), which still counts as
        # stored: nothing stored at it became unreadable.
        versions, storage = stored(kube, group)
        assert "v1alpha1" in versions and "v1alpha1" in storage
        assert kube.get(f"{group}/v1beta1", "Widget", ns, "frozen") is not None
        # The rollback cannot take the CRD back (v1beta1 is stored now): its wait says at
        # once that the widget of the previous revision is at a version no longer served,
        # rather than "not found yet" until the timeout (60 s).
        assert result.rollback is not None and result.rollback.failure is not None
        [unread] = result.rollback.failure.objects
        assert unread.reason == (f"the cluster does not serve Widget at {group}/v1alpha1 (its "
                                 "CRD no longer lists that version as served)")
        assert unread.details == ()

        # Once the obstacle is gone, the next apply migrates.
        kube.delete("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicyBinding", "",
                    f"{ns}-frozen")
        kube.delete("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicy", "",
                    f"{ns}-frozen")
        assert frozen(kube, widget(group, "v1beta1", ns, "frozen", 1), enforced=False)
        again = apply(api, ns, [crd(group, "v1beta1"),
                                widget(group, "v1beta1", ns, "frozen", 1)], policy=OK)
        assert again.ok, (again.rejections, again.failure)
        assert stored(kube, group) == (["v1beta1"], ["v1beta1"])
    finally:
        for kind, name in (("ValidatingAdmissionPolicyBinding", f"{ns}-frozen"),
                           ("ValidatingAdmissionPolicy", f"{ns}-frozen")):
            kube.delete("admissionregistration.k8s.io/v1", kind, "", name)
        kube.delete(CRD_API, "CustomResourceDefinition", "", f"widgets.{group}")
