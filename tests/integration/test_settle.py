"""`stackctl settle` on the sandbox: the objects an apply kept (protected kinds that left the
render) deleted or released, with prune's checks, so that drift turns green (issue 16,
item 4)."""

from __future__ import annotations

from typing import Any

import pytest

from gitops.apply.settle import SettleAction, settle
from gitops.cluster import ApplyPolicy
from gitops.drift import check_cluster
from gitops.inventory import PART_OF
from gitops.kube import Kube
from gitops.redact import Redactor
from tests.integration.apply_helpers import api, apply, configmap, ns, target

pytestmark = pytest.mark.integration
__all__ = ["api", "ns"]

POLICY = ApplyPolicy(timeout=60)


def namespace(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def extras(api: Any, ns: str) -> list[str]:
    d = check_cluster(Kube(api), cluster=ns, records_namespace=ns, redactor=Redactor())
    return [f"{o.state} {o.id}" for o in d.objects]


def test_a_kept_namespace_is_settled_by_deleting_it_and_drift_turns_green(
    api: Any, ns: str,
) -> None:
    team = f"{ns[:40]}-team"
    # The test's own namespace stays in the render: drift reads the kinds the revision has.
    assert apply(api, ns, [namespace(ns), namespace(team), configmap("a", ns)],
                 policy=POLICY).ok
    second = apply(api, ns, [namespace(ns), configmap("a", ns)], policy=POLICY)
    assert [(p.id.name, p.outcome) for p in second.prune] == [(team, "kept")]
    assert extras(api, ns) == [f"extra Namespace/{team}"]

    listed = settle(target(api, ns), action=SettleAction.LIST)
    assert [(k.id.name, k.refused, k.done) for k in listed.objects] == [(team, "", "")]
    done = settle(target(api, ns), action=SettleAction.DELETE)
    assert [(k.id.name, k.done) for k in done.objects] == [(team, "deleted")]
    assert extras(api, ns) == []


def test_a_released_object_stays_without_the_apply_set_label(api: Any, ns: str) -> None:
    team = f"{ns[:40]}-keep"
    assert apply(api, ns, [namespace(ns), namespace(team), configmap("a", ns)],
                 policy=POLICY).ok
    assert apply(api, ns, [namespace(ns), configmap("a", ns)], policy=POLICY).ok
    try:
        done = settle(target(api, ns), action=SettleAction.RELEASE, only=[f"Namespace/{team}"])
        assert [(k.id.name, k.done) for k in done.objects] == [(team, "released")]
        live = Kube(api).get("v1", "Namespace", "", team)
        assert live is not None and PART_OF not in (live["metadata"].get("labels") or {})
        assert extras(api, ns) == []
    finally:
        Kube(api).delete("v1", "Namespace", "", team)


def test_a_kept_namespace_that_holds_objects_of_the_revision_is_not_deleted(
    api: Any, ns: str,
) -> None:
    team = f"{ns[:40]}-busy"
    assert apply(api, ns, [namespace(team), configmap("a", team)], policy=POLICY).ok
    assert apply(api, ns, [configmap("a", team)], policy=POLICY).ok
    try:
        result = settle(target(api, ns), action=SettleAction.DELETE)
        assert [(k.id.name, bool(k.refused), k.done) for k in result.objects] == [
            (team, True, "")]
        assert "holds objects of revision 2" in result.objects[0].refused
        assert Kube(api).get("v1", "Namespace", "", team) is not None
    finally:
        Kube(api).delete("v1", "Namespace", "", team)
