"""Prune: delete what the previous revision applied and the new one no longer wants.

Safety rules, checked before anything is applied:
- an empty desired set is refused (a render that lost everything deletes everything: the
  classic `kubectl apply --prune` accident) unless --allow-mass-prune;
- deleting more than half of the previous inventory is refused unless --allow-mass-prune;
- protected kinds (the cluster policy's protectedKinds: Namespaces, CRDs, PVCs, PVs by
  default; deleting them deletes data) are kept unless the object carries the annotation
  `stackctl.dev/prune: allow`.
Only members are deleted, as kubectl's ApplySet prune does: an object that no longer
carries the set's `applyset.kubernetes.io/part-of` label was handed over to another tool
and is left in place. The label is read live just before the delete, which the API server
carries out only while the object is still the version read (a delete precondition).
Besides the previous revision's objects, the candidates include what revisions that did not
finish (an apply killed, stopped, or failed without a rollback) left live: they were
recorded, with everything they would create, before they changed anything.
Deletion uses propagationPolicy Background, as kubectl does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from gitops.apply.changeset import Action, Change
from gitops.apply.results import ObjectOutcome, Outcome
from gitops.errors import ApplyError
from gitops.kube import Kube, KubeApiError, LiveState, UnknownKindError
from gitops.resource import ResourceId

PRUNE_ANNOTATION = "stackctl.dev/prune"
RELEASED = ("no longer carries this apply set's label (another tool took it over): left "
            "in place")
_DELETE_ATTEMPTS = 5


class MassPruneError(ApplyError):
    """A prune would delete everything or most of the inventory."""


def is_protected(obj: dict[str, Any], protected_kinds: Iterable[str]) -> bool:
    kinds = set(protected_kinds)
    rid = ResourceId.of(obj)
    if rid.kind not in kinds and rid.group_kind not in kinds:
        return False
    ann = (obj.get("metadata") or {}).get("annotations") or {}
    return str(ann.get(PRUNE_ANNOTATION, "")).lower() != "allow"


def plan_prune(
    previous: Sequence[dict[str, Any]],
    desired: Iterable[ResourceId],
    *,
    protected_kinds: Iterable[str],
    allow_mass_prune: bool = False,
    desired_count: int | None = None,
) -> list[Change]:
    """The prune candidates (delete, or keep a protected kind): the objects of `previous`
    that are not desired, after checking the guards (raises MassPruneError)."""
    wanted = set(desired)
    count = len(wanted) if desired_count is None else desired_count
    if count == 0 and not allow_mass_prune:
        raise MassPruneError(
            "refusing to apply an empty set of objects: it would prune everything the last "
            f"revision applied ({len(previous)} objects).",
            hint="Check the render (an empty kustomization?). If you really mean to remove "
                 "everything, run again with --allow-mass-prune.",
        )
    protected = list(protected_kinds)
    actions: list[Change] = []
    seen: set[ResourceId] = set()
    for obj in previous:
        rid = ResourceId.of(obj)
        if rid in wanted or rid in seen:
            continue
        seen.add(rid)
        api_version = str(obj.get("apiVersion") or "")
        if is_protected(obj, protected):
            actions.append(Change(
                rid, api_version, Action.KEEP,
                f"protected kind {rid.kind}: delete or release it afterwards with 'stackctl "
                f"settle' (or annotate it {PRUNE_ANNOTATION}=allow before it leaves the "
                "render)",
            ))
        else:
            actions.append(Change(rid, api_version, Action.DELETE, "no longer in the render"))
    deletes = sum(1 for a in actions if a.action is Action.DELETE)
    total = len({ResourceId.of(o) for o in previous})
    if total and deletes * 2 > total and not allow_mass_prune:
        raise MassPruneError(
            f"refusing to prune {deletes} of the {total} objects of the last revision "
            "(more than half).",
            hint="Check the render for a missing component. If the removal is intended, run "
                 "again with --allow-mass-prune.",
        )
    return sorted(actions, key=lambda a: a.id)


def members_only(candidates: Sequence[Change], live: LiveState) -> list[Change]:
    """The candidates as the live objects say: one found live without the set's label
    left the set and is kept (RELEASED)."""
    return [replace(c, action=Action.KEEP, note=RELEASED)
            if c.action is Action.DELETE and c.id in live.objects and c.id not in live.members
            else c for c in candidates]


def leftovers(unfinished: Mapping[ResourceId, tuple[int, dict[str, Any]]],
              handled: Iterable[ResourceId], live: LiveState, *,
              protected_kinds: Iterable[str]) -> list[Change]:
    """Objects that revisions which did not finish applied (`unfinished`: id -> (revision,
    manifest)) and that are still live members, other than those `handled` (desired, or
    candidates already): delete, or keep a protected kind."""
    skip = set(handled)
    protected = list(protected_kinds)
    out: list[Change] = []
    for rid, (revision, obj) in sorted(unfinished.items()):
        if rid in skip or rid not in live.members:
            continue
        api_version = str(obj.get("apiVersion") or "")
        why = f"left by revision {revision}, which did not finish"
        if is_protected(obj, protected):
            out.append(Change(rid, api_version, Action.KEEP,
                              f"protected kind {rid.kind}, {why}: delete or release it "
                              "with 'stackctl settle'"))
        else:
            out.append(Change(rid, api_version, Action.DELETE, why))
    return out


def execute_prune(kube: Kube, candidates: Sequence[Change], *,
                  label: tuple[str, str]) -> list[ObjectOutcome]:
    """Delete the candidates to delete that are still members (`label`); the others are
    reported kept."""
    done: list[ObjectOutcome] = []
    for c in candidates:
        if c.action is not Action.DELETE:
            done.append(ObjectOutcome(c.id, Outcome.KEPT, c.note))
            continue
        outcome = delete_member(kube, c.api_version, c.id, label=label)
        done.append(ObjectOutcome(c.id, outcome, RELEASED if outcome is Outcome.KEPT
                                  else c.note))
    return done


def delete_member(kube: Kube, api_version: str, rid: ResourceId, *,
                  label: tuple[str, str]) -> Outcome:
    """Delete `rid` if it still carries the membership `label`: DELETED, GONE (absent), or
    KEPT (it left the set). The label is read just before, and the delete is conditional on
    that version (uid and resourceVersion): if the object changed in between, it is read
    again."""
    for attempt in range(_DELETE_ATTEMPTS):
        try:
            live = kube.get(api_version, rid.kind, rid.namespace, rid.name)
        except UnknownKindError:
            return Outcome.GONE  # its kind is no longer served (its CRD was deleted)
        if live is None:
            return Outcome.GONE
        meta = live.get("metadata") or {}
        if (meta.get("labels") or {}).get(label[0]) != label[1]:
            return Outcome.KEPT
        pre = {"uid": str(meta.get("uid") or "")}
        if attempt < _DELETE_ATTEMPTS - 1:
            # The last attempt: the uid alone (an object whose status a controller keeps
            # writing may never hold one resourceVersion long enough).
            pre["resourceVersion"] = str(meta.get("resourceVersion") or "")
        try:
            existed = kube.delete(api_version, rid.kind, rid.namespace, rid.name,
                                  propagation="Background", preconditions=pre)
        except KubeApiError as e:
            if e.code == 409:
                continue  # changed since it was read: read it again
            raise
        return Outcome.DELETED if existed else Outcome.GONE
    return Outcome.KEPT
