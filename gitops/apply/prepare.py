"""The desired set as the apply sends it, and which of its objects must wait for a CRD or
a Namespace of the same set."""

from __future__ import annotations

import json
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from gitops.apply.deps import drop_injected_ca
from gitops.apply.order import crd_kinds, crd_scopes
from gitops.apply.results import Rejection, rejection_from
from gitops.errors import ApplyError
from gitops.inventory import PART_OF
from gitops.kube import Kube, UnknownKindError
from gitops.redact import Redactor
from gitops.resource import ResourceId

Obj = dict[str, Any]
AGGREGATED = ("rbac.authorization.k8s.io", "ClusterRole")


def prepare(kube: Kube, objects: Sequence[Obj], applyset_id: str, redactor: Redactor
            ) -> tuple[list[Obj], list[Rejection]]:
    """Copies of the objects with the ApplySet membership label, the default namespace on
    namespaced objects that lack one (as kubectl does), and no namespace on cluster-scoped
    ones; plus rejections for kinds the cluster does not serve and no CRD of the set defines.
    Preparing a prepared set changes nothing."""
    scopes = crd_scopes(objects)
    # Discovery of every group/version at once, rather than one after another below.
    versions = sorted({str(o.get("apiVersion") or "") for o in objects} - {""})
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(kube.group_version, versions))
    out: list[Obj] = []
    rejections: list[Rejection] = []
    seen: dict[ResourceId, int] = {}
    for i, obj in enumerate(objects):
        o = json.loads(json.dumps(obj))  # a deep copy, several times faster than deepcopy
        meta = o.setdefault("metadata", {})
        if not o.get("apiVersion") or not o.get("kind") or not meta.get("name"):
            raise ApplyError(
                f"object #{i + 1} of the render has no apiVersion, kind or metadata.name "
                f"({o.get('kind') or '?'} {meta.get('name') or meta.get('generateName') or '?'}).",
                hint="Every object stackctl applies needs a fixed name; fix the manifest.",
            )
        meta["labels"] = {**(meta.get("labels") or {}), PART_OF: applyset_id}
        rid = ResourceId.of(o)
        drop_injected_ca(o)  # the injector's field (gitops.apply.deps)
        if (rid.group, rid.kind) == AGGREGATED and o.get("aggregationRule"):
            # The clusterrole-aggregation-controller owns .rules of an aggregated role:
            # applying them (often `rules: []`) would conflict with it on every re-apply.
            o.pop("rules", None)
        try:
            namespaced: bool | None = kube.resource(str(o["apiVersion"]), rid.kind).namespaced
        except UnknownKindError as e:
            namespaced = scopes.get((rid.group, rid.kind))
            if namespaced is None:
                rejections.append(rejection_from(rid, e, redactor))
        if namespaced and not meta.get("namespace"):
            meta["namespace"] = "default"
        elif namespaced is False and meta.get("namespace"):
            del meta["namespace"]
        rid = ResourceId.of(o)
        if rid in seen:
            raise ApplyError(
                f"{rid} appears twice in the render (objects #{seen[rid] + 1} and #{i + 1}).",
                hint="Each object must appear once; fix the kustomization.",
            )
        seen[rid] = i
        out.append(o)
    return out, rejections


def deferred(kube: Kube, desired: Sequence[Obj], todo: Sequence[Obj]) -> set[ResourceId]:
    """Objects of `todo` that cannot be dry-run yet: their kind comes from a CRD of this
    set that is not served yet or that this apply changes (the API server would check them
    against the CRD it has, not the new one: a field the new schema adds is "not declared
    in schema"), or their namespace is created by this set."""
    new_kinds = crd_kinds(desired)
    changing = crd_kinds(todo)
    set_namespaces = {ResourceId.of(o).name for o in desired
                      if (ResourceId.of(o).group, ResourceId.of(o).kind) == ("", "Namespace")}
    existing: set[str] = set()
    if set_namespaces:
        existing = {str((n.get("metadata") or {}).get("name"))
                    for n in kube.list("v1", "Namespace")}
    served: dict[tuple[str, str], bool] = {}  # one discovery request per kind, not object
    out: set[ResourceId] = set()
    for o in todo:
        rid = ResourceId.of(o)
        key = (str(o["apiVersion"]), rid.kind)
        if (rid.group, rid.kind) in new_kinds - changing and key not in served:
            served[key] = kube.knows(*key)
        needs_crd = (rid.group, rid.kind) in changing or (
            (rid.group, rid.kind) in new_kinds and not served[key])
        needs_ns = rid.namespace in set_namespaces and rid.namespace not in existing
        if needs_crd or needs_ns:
            out.add(rid)
    return out
