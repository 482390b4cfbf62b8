"""Reading the live versions of a set of objects, with as few requests as it takes.

The one reader of live state: the apply's change calculation, its health wait and the drift
check all go through `read_live`. A GET per object costs a round trip each (587 for
Kubeflow); a LIST returns many objects in one:
- with the ApplySet membership label: one LIST per kind across namespaces by the label,
  which returns the set's members wherever they are; a kind with one or two objects is
  read with a GET each instead, unless every member of the kind is wanted (`members`);
- objects the label did not find (never applied, deleted, or the label taken off) are
  looked for where they should be only when asked (`find_unlabelled`, for drift): one LIST
  per kind and namespace, a GET each for cluster-scoped ones;
- without a label: a GET each.
Namespaced kinds are never listed across namespaces without a selector: a cluster's
ConfigMaps or Secrets may be many. A kind served at two versions (Istio's v1alpha3 and
v1beta1 VirtualServices) is read once per version the set uses, and each object is kept
as read at the version it is wanted in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from gitops.kube.client import Kube
from gitops.kube.errors import UnknownKindError
from gitops.resource import ResourceId

Obj = dict[str, Any]
SMALL_KIND = 2  # objects of one kind read with a GET each rather than a LIST


@dataclass
class LiveState:
    objects: dict[ResourceId, Obj] = field(default_factory=dict)  # live objects of the set
    members: dict[ResourceId, Obj] = field(default_factory=dict)  # carrying the label
    unserved: set[tuple[str, str]] = field(default_factory=set)  # (apiVersion, kind)


@dataclass(frozen=True)
class _Job:
    api_version: str
    kind: str
    namespace: str = ""
    selector: str | None = None
    name: str | None = None  # a GET of this object, else a LIST


def _labels(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return (obj.get("metadata") or {}).get("labels") or {}


def read_live(kube: Kube, objects: Iterable[Mapping[str, Any]], *,
              label: tuple[str, str] | None = None, members: bool = False,
              find_unlabelled: bool = False, concurrency: int = 8,
              kinds: Iterable[tuple[str, str]] = ()) -> LiveState:
    """The live versions of `objects` (by identity); with `members`, also every live
    object of their kinds that carries `label` (label, value), and of `kinds` ((apiVersion,
    kind) pairs: an ApplySet parent's other group-kinds)."""
    by_kind: dict[tuple[str, str], list[ResourceId]] = {}
    ids: dict[ResourceId, str] = {}  # -> the apiVersion the object is wanted in
    for obj in objects:
        rid = ResourceId.of(dict(obj))
        api_version = str(obj.get("apiVersion"))
        ids[rid] = api_version
        by_kind.setdefault((api_version, rid.kind), []).append(rid)
    state = LiveState()
    selector = f"{label[0]}={label[1]}" if label is not None else None
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        # Discovery of each group version once, in parallel, before the reads.
        list(pool.map(kube.group_version, sorted({av for av, _ in by_kind})))
        jobs: list[_Job] = []
        for (av, kind), rids in sorted(by_kind.items()):
            try:
                kube.resource(av, kind)
            except UnknownKindError:
                state.unserved.add((av, kind))
                continue
            if selector is None or (len(rids) <= SMALL_KIND and not members):
                jobs += [_Job(av, kind, r.namespace, name=r.name) for r in rids]
            else:
                jobs.append(_Job(av, kind, selector=selector))
        if selector is not None and members:
            listed = {(j.api_version, j.kind) for j in jobs}
            for av, kind in sorted(set(kinds) - set(by_kind) - listed):
                try:
                    kube.resource(av, kind)
                except UnknownKindError:
                    continue
                jobs.append(_Job(av, kind, selector=selector))
        _run(kube, pool, jobs, ids, label, state)
        if find_unlabelled and selector is not None:
            lost = [(ids[r], r) for r in ids if r not in state.objects
                    and (ids[r], r.kind) not in state.unserved]
            again = sorted({_Job(av, r.kind, r.namespace) for av, r in lost if r.namespace},
                           key=repr)
            again += [_Job(av, r.kind, name=r.name) for av, r in sorted(lost)
                      if not r.namespace]
            _run(kube, pool, again, ids, label, state)
    return state


def _run(kube: Kube, pool: ThreadPoolExecutor, jobs: list[_Job], ids: Mapping[ResourceId, str],
         label: tuple[str, str] | None, state: LiveState) -> None:
    def one(job: _Job) -> list[Obj]:
        if job.name is not None:
            got = kube.get(job.api_version, job.kind, job.namespace, job.name)
            return [got] if got is not None else []
        return kube.list(job.api_version, job.kind, namespace=job.namespace,
                         label_selector=job.selector)

    for job, items in zip(jobs, pool.map(one, jobs), strict=True):
        for item in items:
            rid = ResourceId.of(item)
            if ids.get(rid) == job.api_version:
                state.objects[rid] = item
            if label is not None and _labels(item).get(label[0]) == label[1]:
                state.members[rid] = item
