"""The order in which an apply sends objects: phases (gitops.kinds), applied one after
another, and the custom kinds a set's own CRDs define."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from gitops.kinds import CRD, Phase, phase_of
from gitops.resource import ResourceId

__all__ = ["Phase", "crd_kinds", "crd_scopes", "group_by_phase", "phase_of"]


def group_by_phase(
    objects: Iterable[dict[str, Any]],
) -> list[tuple[Phase, list[dict[str, Any]]]]:
    """The non-empty phases in order, each with its objects sorted by identity."""
    buckets: dict[Phase, list[dict[str, Any]]] = {}
    for obj in objects:
        buckets.setdefault(phase_of(ResourceId.of(obj)), []).append(obj)
    return [
        (phase, sorted(buckets[phase], key=ResourceId.of))
        for phase in sorted(buckets)
    ]


def crd_scopes(objects: Sequence[dict[str, Any]]) -> dict[tuple[str, str], bool]:
    """(group, kind) -> namespaced, for every custom kind a CRD in `objects` defines."""
    scopes: dict[tuple[str, str], bool] = {}
    for obj in objects:
        rid = ResourceId.of(obj)
        if (rid.group, rid.kind) != CRD:
            continue
        spec = obj.get("spec") or {}
        kind = (spec.get("names") or {}).get("kind")
        if kind:
            scopes[(str(spec.get("group") or ""), str(kind))] = (
                spec.get("scope", "Namespaced") == "Namespaced")
    return scopes


def crd_kinds(objects: Sequence[dict[str, Any]]) -> set[tuple[str, str]]:
    """(group, kind) of every custom resource kind a CRD in `objects` defines."""
    return set(crd_scopes(objects))
