"""`settle`: what to do with the objects an apply kept (prune candidates of a protected kind:
Namespaces, CRDs, PVCs...), once they are no longer in the render.

Such an object still carries the cluster's ApplySet label, so drift lists it as extra for
ever, and the annotation that would let prune delete it cannot be added in git (the object
has left the render). `settle` either deletes it or releases it (removes the ApplySet
label: stackctl no longer claims it, drift no longer lists it), under the same lease and
with the same checks as prune: only live objects that carry this cluster's ApplySet label
and that the deployed revision does not hold; never a Namespace that still holds objects
of the deployed revision, nor a CRD whose custom resources the deployed revision holds
(deleting either deletes those objects).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from gitops.apply.lease import ClusterLease
from gitops.apply.options import Target
from gitops.errors import ApplyError
from gitops.inventory import PART_OF
from gitops.kinds import CRD
from gitops.kube import POLL, KubeApiError, poll, read_live
from gitops.resource import ResourceId

Obj = dict[str, Any]


class SettleAction(StrEnum):
    LIST = "list"  # change nothing: say what is kept and what settling would do
    DELETE = "delete"
    RELEASE = "release"


@dataclass(frozen=True)
class Kept:
    """A live object of the apply set that the deployed revision does not hold; `refused`
    says why it cannot be deleted (it may still be released)."""

    id: ResourceId
    api_version: str
    refused: str = ""
    done: str = ""  # "deleted", "released", "gone" once settled


@dataclass(frozen=True)
class SettleResult:
    cluster: str
    revision: int
    action: SettleAction
    objects: tuple[Kept, ...]

    @property
    def refused(self) -> tuple[Kept, ...]:
        return tuple(k for k in self.objects if k.refused and not k.done)


def _matches(rid: ResourceId, pattern: str) -> bool:
    """`Kind/name`, `Kind/namespace/name` or `group/Kind/...` as `stackctl drift` prints."""
    text = str(rid)
    return pattern in (text, f"{rid.kind}/{rid.name}",
                       f"{rid.kind}/{rid.namespace}/{rid.name}") or text.endswith(pattern)


def kept_objects(target: Target, *, concurrency: int = 8) -> tuple[int, list[Kept], list[Obj]]:
    """(deployed revision, its kept objects with the checks' verdicts, its manifests)."""
    records = target.records
    revisions = records.revisions()
    deployed = revisions.deployed
    if deployed is None:
        raise ApplyError(f"cluster {target.cluster!r} has no deployed revision.",
                         hint=f"Run 'stackctl apply --cluster {target.cluster}' first.")
    current = records.manifests(deployed.revision)
    # Every kind the set ever held: a kind that left the render keeps its objects too.
    kinds: dict[tuple[str, str], Obj] = {}
    for r in revisions:
        for o in records.manifests(r.revision):
            kinds.setdefault((str(o.get("apiVersion")), str(o.get("kind"))), o)
    live = read_live(target.kube, list(kinds.values()), label=target.member_label,
                     members=True, concurrency=concurrency)
    held = {ResourceId.of(o) for o in current}
    namespaces = {r.namespace for r in held if r.namespace}
    custom = {(r.group, r.kind) for r in held}
    kept = []
    for rid, item in sorted(live.members.items()):
        if rid in held:
            continue
        refused = ""
        if (rid.group, rid.kind) == ("", "Namespace") and rid.name in namespaces:
            refused = (f"namespace {rid.name} holds objects of revision {deployed.revision}: "
                       "deleting it would delete them")
        elif (rid.group, rid.kind) == CRD:
            spec = item.get("spec") or {}
            gk = (str(spec.get("group") or ""), str((spec.get("names") or {}).get("kind")))
            if gk in custom:
                refused = (f"revision {deployed.revision} holds custom resources of this "
                           "CRD: deleting it would delete them")
        kept.append(Kept(rid, str(item.get("apiVersion")), refused))
    return deployed.revision, kept, current


def settle(target: Target, *, action: SettleAction, only: Sequence[str] = (),
           break_lease: bool = False, concurrency: int = 8,
           timeout: float = 300.0) -> SettleResult:
    """List, delete or release the kept objects of the cluster (those matching `only`)."""
    revision, kept, _ = kept_objects(target, concurrency=concurrency)
    if only:
        unknown = [p for p in only if not any(_matches(k.id, p) for k in kept)]
        if unknown:
            raise ApplyError(
                f"no kept object of cluster {target.cluster!r} matches "
                f"{', '.join(unknown)}.",
                hint=f"Run 'stackctl settle --cluster {target.cluster}' to list them.")
        kept = [k for k in kept if any(_matches(k.id, p) for p in only)]
    if action is SettleAction.LIST or not kept:
        return SettleResult(target.cluster, revision, action, tuple(kept))
    if action is SettleAction.DELETE and any(k.refused for k in kept):
        return SettleResult(target.cluster, revision, action, tuple(kept))
    kube, done = target.kube, []
    with ClusterLease(kube, cluster=target.cluster, namespace=target.records_namespace,
                      break_lease=break_lease):
        # Checked again under the lease: an apply may have taken an object back meanwhile.
        still = {k.id for k in kept_objects(target, concurrency=concurrency)[1]}
        for k in kept:
            if k.id not in still:
                done.append(Kept(k.id, k.api_version, done="gone"))
            elif action is SettleAction.DELETE:
                existed = kube.delete(k.api_version, k.id.kind, k.id.namespace, k.id.name,
                                      propagation="Background")
                done.append(Kept(k.id, k.api_version, done="deleted" if existed else "gone"))
            else:
                info = kube.resource(k.api_version, k.id.kind)
                try:
                    kube.request("PATCH", kube.object_path(info, k.id.namespace, k.id.name),
                                 body={"metadata": {"labels": {PART_OF: None}}},
                                 content_type="application/merge-patch+json")
                except KubeApiError as e:
                    if e.code != 404:
                        raise
                    done.append(Kept(k.id, k.api_version, done="gone"))
                    continue
                done.append(Kept(k.id, k.api_version, done="released"))
    if action is SettleAction.DELETE:
        _wait_gone(target, [k for k in done if k.done == "deleted"], timeout)
    return SettleResult(target.cluster, revision, action, tuple(done))


def _wait_gone(target: Target, deleted: Sequence[Kept], timeout: float) -> None:
    """Wait until the deleted objects are gone, as `kubectl delete` does: a Namespace
    keeps its label while the namespace controller empties it."""
    left = list(deleted)

    def attempt() -> bool | None:
        nonlocal left
        left = [k for k in left if target.kube.get(k.api_version, k.id.kind, k.id.namespace,
                                                    k.id.name) is not None]
        return True if not left else None

    if left and not poll(attempt, deadline=time.monotonic() + timeout, backoff=POLL):
        names = ", ".join(str(k.id) for k in left)
        raise ApplyError(f"deleted, but still there after {int(timeout)} s: {names}.",
                         hint="A finalizer holds them (see their status); settle again once "
                              "they are gone, or give it more time with --timeout.")
