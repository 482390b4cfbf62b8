"""Reading the live versions of a set of objects: at most one LIST per kind and namespace.

A GET per object costs a round trip each (587 for Kubeflow); a LIST returns many objects in
one. Cluster-scoped kinds are listed once. Namespaced kinds:
- with an ApplySet membership label (drift): one LIST per kind across namespaces by the
  label, which returns the members wherever they are (and so the extra ones too); objects
  it does not return (deleted, or their label taken off) are looked for with one LIST per
  kind and namespace where they should be;
- without one (plan --live, whose render may hold objects not applied yet): one LIST per
  kind and namespace the set uses.
Namespaced kinds are never listed across namespaces without a selector: a cluster's
ConfigMaps or Secrets may be many.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from gitops.apply.ssa import Kube, UnknownKindError
from gitops.resource import ResourceId

Obj = dict[str, Any]


@dataclass
class LiveState:
    objects: dict[ResourceId, Obj] = field(default_factory=dict)  # live objects of the set
    members: dict[ResourceId, Obj] = field(default_factory=dict)  # carrying the label
    unserved: set[tuple[str, str]] = field(default_factory=set)  # (apiVersion, kind)
    requests: int = 0


def _labels(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return (obj.get("metadata") or {}).get("labels") or {}


def read_live(kube: Kube, objects: Iterable[Mapping[str, Any]], *,
              member_label: tuple[str, str] | None = None,
              concurrency: int = 8) -> LiveState:
    """The live versions of `objects` (by identity), and with `member_label` (label, value)
    every live object of their kinds that carries it."""
    objects_list = list(objects)
    wanted: dict[tuple[str, str], set[str]] = {}
    ids: dict[ResourceId, str] = {}  # -> the apiVersion the object is wanted in
    for obj in objects_list:
        rid = ResourceId.of(dict(obj))
        ids[rid] = str(obj.get("apiVersion"))
        wanted.setdefault((str(obj.get("apiVersion")), rid.kind), set()).add(rid.namespace)
    state = LiveState()
    versions = sorted({av for av, _ in wanted})
    selector = f"{member_label[0]}={member_label[1]}" if member_label is not None else None
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        # Discovery of each group version once, in parallel, before the LISTs.
        list(pool.map(lambda av: _discover(kube, av), versions))
        first: list[_Job] = []
        for (av, kind), namespaces in sorted(wanted.items()):
            try:
                info = kube.resource(av, kind)
            except UnknownKindError:
                state.unserved.add((av, kind))
                continue
            if not info.namespaced:
                first.append((av, kind, "", None))
            elif selector is not None:
                first.append((av, kind, "", selector))  # members, wherever they are
            else:
                first += [(av, kind, ns, None) for ns in sorted(namespaces)]
        _run(kube, pool, first, ids, member_label, state)
        # Objects the label did not find (deleted, or the label was taken off): one LIST
        # per kind and namespace where they should be.
        lost = sorted({(str(o.get("apiVersion")), rid.kind, rid.namespace)
                       for o in objects_list for rid in (ResourceId.of(dict(o)),)
                       if rid not in state.objects and rid.namespace
                       and (str(o.get("apiVersion")), rid.kind) not in state.unserved})
        if selector is not None and lost:
            _run(kube, pool, [(av, kind, ns, None) for av, kind, ns in lost], ids,
                 member_label, state)
    state.requests += len(versions)
    return state


_Job = tuple[str, str, str, str | None]


def _run(kube: Kube, pool: ThreadPoolExecutor, jobs: list[_Job], ids: Mapping[ResourceId, str],
         member_label: tuple[str, str] | None, state: LiveState) -> None:
    def one(job: _Job) -> list[Obj]:
        av, kind, ns, selector = job
        return kube.list(av, kind, namespace=ns, label_selector=selector)

    for (av, _, _, _), items in zip(jobs, pool.map(one, jobs), strict=True):
        state.requests += 1
        for item in items:
            rid = ResourceId.of(item)
            # A kind served in several versions is listed once per version the set uses:
            # each object is compared in the version it was applied in.
            if ids.get(rid) == av:
                state.objects[rid] = item
            if member_label is not None and \
                    _labels(item).get(member_label[0]) == member_label[1]:
                state.members[rid] = item


def _discover(kube: Kube, api_version: str) -> None:
    """Load the group version's resources into the Kube's discovery cache."""
    with contextlib.suppress(UnknownKindError):
        kube.resource(api_version, "\0")  # no kind has this name: only fills the cache
