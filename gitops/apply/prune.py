"""Prune: delete what the previous revision applied and the new one no longer wants.

Safety rules, checked before anything is applied:
- an empty desired set is refused (a render that lost everything deletes everything: the
  classic `kubectl apply --prune` accident) unless --allow-mass-prune;
- deleting more than half of the previous inventory is refused unless --allow-mass-prune;
- protected kinds (the cluster policy's protectedKinds: Namespaces, CRDs, PVCs, PVs by
  default; deleting them deletes data) are kept unless the object carries the annotation
  `stackctl.dev/prune: allow`.
Deletion uses propagationPolicy Background, as kubectl does.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from gitops.apply.changeset import Action, Change
from gitops.apply.results import ObjectOutcome, Outcome
from gitops.errors import ApplyError
from gitops.kube import Kube
from gitops.resource import ResourceId

PRUNE_ANNOTATION = "stackctl.dev/prune"


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


def execute_prune(kube: Kube, candidates: Sequence[Change]) -> list[ObjectOutcome]:
    """Delete the candidates to delete; the protected ones are reported kept."""
    done: list[ObjectOutcome] = []
    for c in candidates:
        if c.action is not Action.DELETE:
            done.append(ObjectOutcome(c.id, Outcome.KEPT, c.note))
            continue
        existed = kube.delete(c.api_version, c.id.kind, c.id.namespace, c.id.name,
                              propagation="Background")
        done.append(ObjectOutcome(c.id, Outcome.DELETED if existed else Outcome.GONE, c.note))
    return done
