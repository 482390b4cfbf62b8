"""The merge report: a model the upgrade report embeds, rendered as markdown for people
(`.stackctl/upgrade/report.md`) and JSON for tools (`report.json`, format in docs/merge.md).

Values come from Conflict objects, whose Secret data is already a salted hash.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from gitops.merge.conflict import Conflict, MergeKind
from gitops.merge.references import RewrittenReference, UnresolvedReference
from gitops.merge.tree import KEPT_LOCAL, SAME, TAKEN_UPSTREAM, TreeMerge
from gitops.merge.upstreamrefs import Candidate

REPORT_VERSION = 1
MAX_CELL = 80


@dataclass(frozen=True)
class MergeReport:
    conflicts: tuple[Conflict, ...]
    merged: dict[str, int]  # kind of merge -> files changed on both sides merged that way
    taken_upstream: int
    kept_local: int
    unchanged: int
    moves: dict[str, str]
    folder_moves: dict[str, str]
    rewritten_references: tuple[RewrittenReference, ...]
    unresolved_references: tuple[UnresolvedReference, ...]
    deleted: tuple[str, ...]
    carried: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_tree(cls, tree: TreeMerge, findings: tuple[Conflict, ...] = ()) -> MergeReport:
        """The report of a merge; `findings`: conflicts found after it (the upgrade's
        effect check), listed and settled like the merge's own."""
        merged = {str(k): 0 for k in MergeKind}
        for kind in tree.merged.values():
            merged[str(kind)] += 1
        return cls(
            conflicts=tuple(sorted((*tree.conflicts, *findings), key=_conflict_order)),
            merged=merged,
            taken_upstream=tree.outcomes.get(TAKEN_UPSTREAM, 0),
            kept_local=tree.outcomes.get(KEPT_LOCAL, 0),
            unchanged=tree.outcomes.get(SAME, 0),
            moves=dict(sorted(tree.moves.items())),
            folder_moves=_top_folders(tree.folder_moves),
            rewritten_references=tuple(tree.rewritten_references),
            unresolved_references=tuple(tree.unresolved_references),
            deleted=tuple(tree.deleted),
            carried=dict(sorted(tree.carried.items())),
        )

    @property
    def clean(self) -> bool:
        return not self.conflicts and not self.unresolved_references

    # --- JSON ----------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": REPORT_VERSION,
            "clean": self.clean,
            "summary": {
                "conflicts": len(self.conflicts),
                "files_merged": dict(self.merged),
                "taken_upstream": self.taken_upstream,
                "kept_local": self.kept_local,
                "unchanged": self.unchanged,
                "moves": len(self.moves),
                "folder_moves": len(self.folder_moves),
                "rewritten_references": len(self.rewritten_references),
                "unresolved_references": len(self.unresolved_references),
                "deleted": len(self.deleted),
            },
            "conflicts": [c.to_dict() for c in self.conflicts],
            "moves": [{"from": a, "to": b} for a, b in self.moves.items()],
            "folder_moves": [{"from": a, "to": b} for a, b in self.folder_moves.items()],
            "carried": [{"from": a, "to": b} for a, b in self.carried.items()],
            "rewritten_references": [
                {"file": r.file, "old": r.old, "new": r.new, "oldTarget": r.old_target,
                 "newTarget": r.new_target, "evidenceKind": r.evidence_kind,
                 "evidence": r.evidence} for r in self.rewritten_references],
            "unresolved_references": [
                {"file": r.file, "reference": r.reference, "target": r.target,
                 "candidates": [{"path": c.path, "score": c.score, "why": c.why}
                                for c in r.candidates]}
                for r in self.unresolved_references],
            "deleted": list(self.deleted),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"

    # --- markdown ------------------------------------------------------------------------

    def to_markdown(self, *, title: str = "Merge report") -> str:
        n = len(self.conflicts)
        lines = [f"# {title}", ""]
        if n:
            lines.append(f"**{n} conflict{'s' if n != 1 else ''} to resolve.** Each keeps the "
                         "local value (ours) in the merged tree until resolved.")
        else:
            lines.append("No conflicts.")
        if self.unresolved_references:
            u = len(self.unresolved_references)
            lines.append(f"**{u} reference{'s' if u != 1 else ''} no longer "
                         f"resolve{'s' if u == 1 else ''}.**")
        merged = ", ".join(f"{k} {v}" for k, v in self.merged.items() if v) or "none"
        lines += [
            "",
            "| files | count |",
            "|---|---|",
            f"| taken from upstream (changed only upstream) | {self.taken_upstream} |",
            f"| kept local (changed only locally) | {self.kept_local} |",
            f"| merged (changed on both sides) | {sum(self.merged.values())} ({merged}) |",
            f"| moved by upstream | {len(self.moves)} |",
            f"| deleted | {len(self.deleted)} |",
            f"| references rewritten | {len(self.rewritten_references)} |",
            f"| references unresolved | {len(self.unresolved_references)} |",
        ]
        if self.conflicts:
            lines += ["", "## Conflicts", "",
                      "| file | resource | field | kind | base | ours (kept) | theirs |",
                      "|---|---|---|---|---|---|---|"]
            for c in self.conflicts:
                lines.append(
                    f"| `{_esc(c.path)}` | {_code(c.resource_key)} | {_code(c.field)} "
                    f"| {c.kind} | {_cell(c.base)} | {_cell(c.ours)} | {_cell(c.theirs)} |")
            lines += ["", "Resolve each with `stackctl upgrade --resolve ADDRESS --ours` or "
                      "`--theirs`:", ""]
            lines += [f"- `{c.address}`" for c in self.conflicts]
        hunks = [c for c in self.conflicts if c.hunk is not None]
        if hunks:
            lines += ["", "## Conflicting lines of multi-line values", ""]
            for c in hunks:
                lines += [f"`{_esc(c.address)}`:", ""]
                for side, value in (("base", c.base), ("ours (kept)", c.ours),
                                    ("theirs", c.theirs)):
                    lines += [f"{side}:", "```text", *str(value).rstrip("\n").split("\n"),
                              "```"]
                lines.append("")
        if self.unresolved_references:
            lines += ["", "## References that no longer resolve", "",
                      "Upstream deleted the target and no new place has strong enough "
                      "evidence. Give the new path with `stackctl upgrade --resolve ADDRESS "
                      "--path NEW`, drop the entry with `--theirs`, or edit the file and "
                      "`--mark`.", "",
                      "| file | reference | resolves to | candidates |", "|---|---|---|---|"]
            lines += [f"| `{_esc(r.file)}` | `{_esc(r.reference)}` | `{_esc(r.target)}` | "
                      f"{_esc(candidates_text(r.candidates)) or 'none'} |"
                      for r in self.unresolved_references]
        if self.rewritten_references:
            lines += ["", "## References rewritten", "",
                      "| file | old | new | evidence |", "|---|---|---|---|"]
            lines += [f"| `{_esc(r.file)}` | `{_esc(r.old)}` | `{_esc(r.new)}` | "
                      f"{r.evidence_kind}: {_esc(r.evidence)} |"
                      for r in self.rewritten_references]
        if self.carried:
            lines += ["", "## Local edits carried to a new versioned folder", "",
                      "Upstream now uses the new folder and still ships the old one, which "
                      "keeps your edits too.", ""]
            lines += [f"- `{a}` -> `{b}`" for a, b in self.carried.items()]
        if self.folder_moves or self.moves:
            lines += ["", "## Moved by upstream", ""]
            lines += [f"- folder `{a}` -> `{b}`" for a, b in self.folder_moves.items()]
            lines += ["", f"<details><summary>{len(self.moves)} files</summary>", ""]
            lines += [f"- `{a}` -> `{b}`" for a, b in self.moves.items()]
            lines += ["", "</details>"]
        return "\n".join(lines) + "\n"


def candidates_text(candidates: tuple[Candidate, ...]) -> str:
    return "; ".join(c.path + (f" ({c.score:.2f})" if c.score is not None else "")
                     + (f": {c.why}" if c.why else "") for c in candidates)


def _conflict_order(c: Conflict) -> tuple[str, str, str]:
    return (c.path, c.resource_key, c.field)


def _top_folders(folders: dict[str, str]) -> dict[str, str]:
    """Only the outermost renamed folders (`apps` -> `applications`, not every subfolder)."""
    out: dict[str, str] = {}
    for old in sorted(folders):
        parent = next((p for p in out if old.startswith(p + "/")), None)
        if parent is not None and folders[old] == out[parent] + old[len(parent):]:
            continue
        out[old] = folders[old]
    return out


def _esc(text: str) -> str:
    return text.replace("|", "\\|")


def _code(text: str) -> str:
    return f"`{_esc(text)}`" if text else ""


def _cell(value: Any) -> str:
    text = value if isinstance(value, str) and value.startswith("<") else json.dumps(
        value, ensure_ascii=False, sort_keys=True)
    if len(text) > MAX_CELL:
        text = text[: MAX_CELL - 1] + "…"
    return f"`{_esc(text)}`"
