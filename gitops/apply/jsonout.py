"""The apply commands' results as JSON (`--format json`), for tools: an apply's or a
rollback's result, a dry run's change set, the history of revisions. The schema is
documented in docs/apply.md (`stackctl.dev/apply/v1`); keys are always present (empty
lists, nulls), every object is listed (the terminal shows the first ones), and every text
from the API server went through the run's redactor."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from gitops.apply.changeset import ChangeSet
from gitops.apply.results import ApplyResult, Failure, ObjectFailure, Rejection
from gitops.inventory import RevisionInfo
from gitops.redact import Redactor
from gitops.resource import ResourceId

SCHEMA = "stackctl.dev/apply/v1"


def _id(rid: ResourceId) -> dict[str, str]:
    return {"group": rid.group, "kind": rid.kind, "namespace": rid.namespace,
            "name": rid.name}


def _text(r: Redactor, text: str) -> str:
    return r.text(text, pairs="=")


def _rejection(x: Rejection, r: Redactor) -> dict[str, Any]:
    return {**_id(x.id), "reason": x.reason, "message": _text(r, x.message),
            "fields": list(x.fields), "managers": list(x.managers), "hint": x.hint}


def _object_failure(o: ObjectFailure, r: Redactor) -> dict[str, Any]:
    return {**_id(o.id), "reason": _text(r, o.reason),
            "details": [_text(r, d) for d in o.details]}


def _failure(f: Failure | None, r: Redactor) -> dict[str, Any] | None:
    if f is None:
        return None
    return {"stage": str(f.stage), "summary": _text(r, f.summary),
            "objects": [_object_failure(o, r) for o in f.objects]}


def result_json(result: ApplyResult, redactor: Redactor, *, command: str) -> str:
    """An apply's (or rollback's) result."""
    rb = result.rollback
    doc: dict[str, Any] = {
        "schema": SCHEMA, "command": command, "cluster": result.cluster,
        "revision": result.revision, "changed": result.changed, "ok": result.ok,
        "objects": [{**_id(o.id), "outcome": str(o.outcome),
                     "message": _text(redactor, o.message)} for o in result.objects],
        "prune": [{**_id(o.id), "outcome": str(o.outcome), "message": o.message}
                  for o in result.prune],
        "rejections": [_rejection(x, redactor) for x in result.rejections],
        "failure": _failure(result.failure, redactor),
        "rollback": None if rb is None else {
            "toRevision": rb.to_revision, "recordedRevision": rb.recorded_revision,
            "reapplied": rb.reapplied, "deleted": [_id(i) for i in rb.deleted],
            "kept": [_id(i) for i in rb.kept], "healthy": rb.healthy,
            "error": _text(redactor, rb.error), "failure": _failure(rb.failure, redactor)},
        "abandoned": list(result.abandoned),
        "leaseTakenOver": result.lease_taken_over,
    }
    return json.dumps(doc, indent=2) + "\n"


def change_set_json(cs: ChangeSet) -> str:
    """A dry run's change set: each change with its field changes (redacted)."""
    r = cs.redactor
    changes = []
    for c in cs.changes:
        # FieldChange values are redacted when the diff is made (gitops.diff).
        fields = [{"path": f.path, "action": str(f.action), "before": f.before,
                   "after": f.after}
                  for f in (c.diff.fields if c.diff is not None else ())]
        changes.append({**_id(c.id), "apiVersion": c.api_version, "action": str(c.action),
                        "note": c.note, "deferred": c.deferred, "fields": fields})
    doc = {"schema": SCHEMA, "command": "apply --dry-run", "cluster": cs.target.cluster,
           "ok": cs.ok, "changes": changes,
           "rejections": [_rejection(x, r) for x in cs.rejections]}
    return json.dumps(doc, indent=2, default=str) + "\n"


def history_json(cluster: str, revisions: Sequence[RevisionInfo]) -> str:
    doc = {"schema": SCHEMA, "command": "history", "cluster": cluster,
           "revisions": [{"revision": x.revision, "commit": x.commit, "time": x.time,
                          "status": str(x.status), "objects": x.object_count,
                          "description": x.description} for x in revisions]}
    return json.dumps(doc, indent=2) + "\n"
