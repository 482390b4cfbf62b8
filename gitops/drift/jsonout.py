"""The drift report as JSON for alerting; the schema is documented in docs/drift.md
(`stackctl.dev/drift/v1`). Keys are always present (empty lists, zeros, nulls), and the
values are the redacted ones the other forms show, in full."""

from __future__ import annotations

import json
from typing import Any

from gitops.drift.model import (
    ClusterDrift,
    ClusterStatus,
    DriftReport,
    FieldDrift,
    Manager,
    ObjectDrift,
)
from gitops.plan.lines import scrub
from gitops.redact import Redactor
from gitops.resource import ResourceId
from gitops.scrub import count_marks

SCHEMA = "stackctl.dev/drift/v1"


def _id(rid: ResourceId) -> dict[str, str]:
    return {"group": rid.group, "kind": rid.kind, "namespace": rid.namespace, "name": rid.name}


def _manager(m: Manager) -> dict[str, str]:
    return {"manager": m.name, "operation": m.operation, "subresource": m.subresource,
            "time": m.time}


def _field(f: FieldDrift, r: Redactor) -> dict[str, Any]:
    return {"path": f.path, "action": f.action, "desired": scrub(f.desired, r),
            "live": scrub(f.live, r), "ownedByStackctl": f.owned_by_stackctl,
            "managers": [_manager(m) for m in f.managers],
            "changedBy": [m.name for m in f.changed_by]}


def _object(o: ObjectDrift, r: Redactor) -> dict[str, Any]:
    return {"state": o.state, "id": _id(o.id), "apiVersion": o.api_version, "note": o.note,
            "fields": [_field(f, r) for f in o.fields],
            "otherManagers": [_manager(m) for m in o.writers]}


def _cluster(c: ClusterDrift, r: Redactor) -> dict[str, Any]:
    rev = c.revision
    g = c.git
    h = c.heal
    return {
        "name": c.name,
        "status": c.status,
        "exitCode": int(c.exit_code),
        "error": c.error or None,
        "notes": list(c.notes),
        "revision": None if rev is None else {
            "number": rev.revision, "commit": rev.commit, "time": rev.time, "user": rev.user,
            "objects": rev.object_count},
        "checkedObjects": c.checked,
        "counts": c.counts,
        "objects": [_object(o, r) for o in c.objects],
        "git": {
            "state": g.state,
            "headCommit": g.head_commit or None,
            "error": g.error or None,
            "counts": {"added": len(g.diff.added), "removed": len(g.diff.removed),
                       "changed": len(g.diff.changed)} if g.diff else
                      {"added": 0, "removed": 0, "changed": 0},
            "objects": [{"action": x.action, "id": _id(x.id), "fieldCount": len(x.fields)}
                        for x in g.diff.objects] if g.diff else [],
        },
        "heal": None if h is None else {
            "revision": h.revision, "ok": h.ok, "error": h.error or None,
            "created": [_id(x) for x in h.created],
            "configured": [_id(x) for x in h.configured],
            "driftBefore": [_object(o, r) for o in h.drift_before],
        },
    }


def drift_data(report: DriftReport) -> dict[str, Any]:
    r = report.redactor
    statuses: tuple[ClusterStatus, ...] = ("in-sync", "drift", "error", "never-applied")
    return {
        "apiVersion": SCHEMA,
        "checkedAt": report.checked_at,
        "exitCode": int(report.exit_code),
        "heal": report.healed,
        "summary": {
            "clusters": {s: len(report.by_status(s)) for s in statuses},
            "objects": {k: sum(c.counts[k] for c in report.clusters)
                        for k in ("changed", "missing", "extra")},
            "notRolledOut": sum(1 for c in report.clusters if c.git.state == "differs"),
        },
        "clusters": [_cluster(c, r) for c in report.clusters],
    }


def render_json(report: DriftReport) -> str:
    data = drift_data(report)
    n, distinct = count_marks(json.dumps(data, ensure_ascii=False))
    data["redacted"] = {"values": n, "distinct": distinct}
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
