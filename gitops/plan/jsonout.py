"""The plan as JSON for tools; the schema is documented in docs/plan.md (`stackctl.dev/plan/v1`).

Keys are stable and always present (empty lists, zeros and nulls rather than missing keys).
Values are the redacted values the other forms show, in full (not shortened).
"""

from __future__ import annotations

import json
from typing import Any

from gitops.diff import ImageChange, ObjectChange
from gitops.immutable import Recreate, recreate_of
from gitops.plan.budget import Elision, fit
from gitops.plan.lines import scrub
from gitops.plan.model import ClusterPlan, ClusterStatus, Plan
from gitops.redact import Redactor
from gitops.resource import ResourceId
from gitops.scrub import count_marks

SCHEMA = "stackctl.dev/plan/v1"


def _id(rid: ResourceId) -> dict[str, str]:
    return {"group": rid.group, "kind": rid.kind, "namespace": rid.namespace, "name": rid.name}


def _image(i: ImageChange) -> dict[str, Any]:
    return {"object": _id(i.id), "location": i.location, "container": i.container,
            "before": i.before, "after": i.after}


def _object(c: ObjectChange, elided: bool, r: Redactor) -> dict[str, Any]:
    crd = c.crd_versions
    return {
        "action": c.action,
        "id": _id(c.id),
        "apiVersion": {"before": c.api_version_before, "after": c.api_version_after},
        "apiVersionChanged": c.api_version_changed,
        "crdVersions": None if crd is None else {
            "before": list(crd.before), "after": list(crd.after),
            "added": list(crd.added), "removed": list(crd.removed),
            "storageBefore": crd.storage_before, "storageAfter": crd.storage_after,
        },
        "replace": None if not c.replace else {
            "fields": list(c.replace),
            "refused": recreate_of(c.id) is Recreate.REFUSE,
        },
        "images": [_image(i) for i in c.images],
        "fieldCount": len(c.fields),
        "fieldsElided": elided,
        "fields": [] if elided else [
            {"path": f.path, "action": f.action, "before": scrub(f.before, r),
             "after": scrub(f.after, r)} for f in c.fields
        ],
    }


def _cluster(plan: Plan, cp: ClusterPlan, el: Elision) -> dict[str, Any]:
    collapsed = el.details or cp.name in el.clusters
    notes = {"notes": list(cp.notes)} if cp.notes else {}  # plan --live's kept objects
    return notes | {
        "name": cp.name,
        "status": cp.status,
        "counts": cp.counts,
        "objectsElided": collapsed and bool(cp.diff.objects),
        "images": [] if collapsed else [_image(i) for i in cp.diff.images],
        "objects": [] if collapsed else [
            _object(c, el.object_elided(cp.name, c.id), plan.redactor) for c in cp.diff.objects
        ],
    }


def plan_data(plan: Plan, el: Elision | None = None) -> dict[str, Any]:
    el = el or Elision()
    objs = fields = clusters = 0
    for cp in plan.clusters:
        if el.details or cp.name in el.clusters:
            clusters += 1 if cp.diff.objects else 0
            continue
        for c in cp.diff.changed:
            if el.object_elided(cp.name, c.id):
                objs += 1
                fields += len(c.fields)
    statuses: tuple[ClusterStatus, ...] = ("changed", "unchanged", "added", "removed")
    return {
        "apiVersion": SCHEMA,
        "base": {"ref": plan.base.ref, "commit": plan.base.commit},
        "head": {"ref": plan.head.ref, "commit": plan.head.commit},
        "changed": plan.changed,
        "summary": {
            "clusters": {s: len(plan.by_status(s)) for s in statuses},
            "objects": {k: sum(cp.counts[k] for cp in plan.clusters)
                        for k in ("added", "removed", "changed", "unchanged")},
            "images": sum(cp.counts["images"] for cp in plan.clusters),
        },
        "elided": {"objects": objs, "fieldChanges": fields, "clusters": clusters},
        "failedChecks": list(plan.failed_checks),
        "clusters": [_cluster(plan, cp, el) for cp in plan.clusters],
    }


def render_json(plan: Plan, *, max_bytes: int | None = None) -> str:
    """The plan as indented JSON; within max_bytes when given (no limit by default)."""
    def render(p: Plan, el: Elision) -> str:
        data = plan_data(p, el)
        n, distinct = count_marks(json.dumps(data, ensure_ascii=False))
        data["redacted"] = {"values": n, "distinct": distinct}
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"

    return fit(plan, render, max_bytes)
