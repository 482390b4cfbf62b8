"""The merge report kept in the upgrade state, read back for --continue and --status."""

from __future__ import annotations

from typing import Any

from gitops.merge import Conflict, ConflictKind, MergeReport
from gitops.merge.references import RewrittenReference, UnresolvedReference
from gitops.merge.upstreamrefs import Candidate
from gitops.resource import ResourceId


def _conflict(d: dict[str, Any]) -> Conflict:
    resource = None
    if d.get("resource"):
        group, kind, namespace, name = str(d["resource"]).split("/", 3)
        resource = ResourceId(group=group, kind=kind, namespace=namespace, name=name)
    lines, hunk, values = d.get("lines"), d.get("hunk"), d.get("values")
    return Conflict(path=d["path"], kind=ConflictKind(d["kind"]), resource=resource,
                    field=d.get("field") or "", base=d.get("base"), ours=d.get("ours"),
                    theirs=d.get("theirs"),
                    lines=(int(lines[0]), int(lines[1])) if lines else None,
                    message=d.get("message") or "",
                    hunk=(int(hunk[0]), int(hunk[1])) if hunk else None,
                    values=(values["base"], values["ours"], values["theirs"])
                    if values else None)


def merge_report_from_dict(d: dict[str, Any]) -> MergeReport:
    """The MergeReport whose to_dict() gave `d` (counts and lists as they were)."""
    s = d.get("summary") or {}
    return MergeReport(
        conflicts=tuple(_conflict(c) for c in d.get("conflicts") or ()),
        merged=dict(s.get("files_merged") or {}),
        taken_upstream=int(s.get("taken_upstream") or 0),
        kept_local=int(s.get("kept_local") or 0),
        unchanged=int(s.get("unchanged") or 0),
        moves={m["from"]: m["to"] for m in d.get("moves") or ()},
        folder_moves={m["from"]: m["to"] for m in d.get("folder_moves") or ()},
        carried={m["from"]: m["to"] for m in d.get("carried") or ()},
        rewritten_references=tuple(
            RewrittenReference(file=r["file"], old=r["old"], new=r["new"],
                               old_target=r.get("oldTarget") or "",
                               new_target=r.get("newTarget") or "",
                               evidence_kind=r.get("evidenceKind") or "",
                               evidence=r.get("evidence") or "")
            for r in d.get("rewritten_references") or ()),
        unresolved_references=tuple(
            UnresolvedReference(file=r["file"], reference=r["reference"], target=r["target"],
                                candidates=tuple(Candidate(c["path"], c.get("score"),
                                                           c.get("why") or "")
                                                 for c in r.get("candidates") or ()))
            for r in d.get("unresolved_references") or ()),
        deleted=tuple(d.get("deleted") or ()),
    )
