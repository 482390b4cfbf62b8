"""The upgrade report: the merge (what was taken, kept, merged, moved, rewritten, and every
conflict field by field) and what the upgrade does to each cluster (rendered before and
after with kustomize, compared object by object: compare.py).

`.stackctl/upgrade/report.md` is `to_markdown()`, `report.json` is `to_json()`; the
command prints `to_text()` (or either of the others with --format).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from gitops.diff import ImageChange, ObjectSetDiff
from gitops.merge import Conflict, ConflictKind, MergeReport
from gitops.plan.lines import flag_lines, header, image_line
from gitops.remote.pins import RemoteChange
from gitops.upgrade.probes import split_image
from gitops.upgrade.rewrites import RewriteEffect

REPORT_VERSION = 1
OBJECT_LINES = 200  # objects listed per cluster in the markdown and text forms

OUTCOMES = {
    "committed": "merged and committed",
    "conflicts": "conflicts to resolve",
    "dry-run": "dry run: nothing was changed",
    "up-to-date": "already vendored: nothing to upgrade",
}


@dataclass(frozen=True)
class ClusterSummary:
    """One cluster rendered before (the current branch) and after (the merged tree)."""

    name: str
    status: str  # changed | unchanged | added | removed | failed
    objects_before: int | None
    objects_after: int | None
    added: int = 0
    removed: int = 0
    changed: int = 0
    images: tuple[str, ...] = ()
    flagged: tuple[str, ...] = ()
    objects: tuple[str, ...] = ()  # `+ Deployment.apps/x -n ns`, one per changed object
    error: str | None = None  # why a side did not render (kustomize's message)
    error_side: str | None = None  # before | after

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "status": self.status,
            "objectsBefore": self.objects_before, "objectsAfter": self.objects_after,
            "added": self.added, "removed": self.removed, "changed": self.changed,
            "images": list(self.images), "flagged": list(self.flagged),
            "objects": list(self.objects), "error": self.error, "errorSide": self.error_side,
        }

    @classmethod
    def of_diff(cls, name: str, status: str, d: ObjectSetDiff, before: int | None,
                after: int | None) -> ClusterSummary:
        """The summary of a cluster's objects before and after (counts given apart: a
        failed or missing side has none)."""
        return cls(
            name=name, status=status, objects_before=before, objects_after=after,
            added=len(d.added), removed=len(d.removed), changed=len(d.changed),
            images=tuple(_image(i) for i in d.images),
            flagged=tuple(flag_lines(d.objects)),
            objects=tuple(header(c) for c in d.objects),
        )


def _image(i: ImageChange) -> str:
    """`Deployment.apps/x -n ns [c]: registry/repo v1 -> v2` when only the tag changed,
    else plan's `[c]: before -> after`."""
    if i.before and i.after:
        (rb, tb), (ra, ta) = split_image(i.before), split_image(i.after)
        if rb == ra and tb and ta:
            return f"{i.id} [{i.container}]: {rb} {tb} -> {ta}"
    return image_line(i)


@dataclass(frozen=True)
class UpgradeReport:
    name: str
    from_version: str
    to_version: str
    original_branch: str
    upgrade_branch: str | None
    outcome: str  # committed | conflicts | dry-run | up-to-date
    merge: MergeReport
    clusters: tuple[ClusterSummary, ...] = ()
    resolutions: dict[str, str] = field(default_factory=dict)  # address -> ours|theirs|marked
    kustomize_version: str | None = None
    commit: str | None = None
    rewrites: tuple[RewriteEffect, ...] = ()  # what each rewritten reference changes
    tool: bool = False  # an upgrade of kustomize itself (no merge; both sides one tree)
    stack_ref: tuple[str, str] | None = None  # stack.yaml's ref: old, new
    remotes: tuple[RemoteChange, ...] = ()  # remote bases added, removed, changed (a ref bump)

    @property
    def conflicts(self) -> tuple[Conflict, ...]:
        return self.merge.conflicts

    @property
    def open_conflicts(self) -> tuple[Conflict, ...]:
        return tuple(c for c in self.merge.conflicts if c.address not in self.resolutions)

    @property
    def failed_clusters(self) -> tuple[ClusterSummary, ...]:
        return tuple(c for c in self.clusters if c.status == "failed")

    @property
    def needs_attention(self) -> bool:
        """Open conflicts (references that no longer resolve and customizations without
        effect among them), or a cluster that fails to render: a person must look (exit
        code 1)."""
        return bool(self.open_conflicts or self.failed_clusters)

    # --- JSON ----------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": REPORT_VERSION,
            "name": self.name,
            "from": self.from_version,
            "to": self.to_version,
            "originalBranch": self.original_branch,
            "upgradeBranch": self.upgrade_branch,
            "outcome": self.outcome,
            "commit": self.commit,
            "openConflicts": [c.address for c in self.open_conflicts],
            "resolutions": dict(self.resolutions),
            "merge": self.merge.to_dict(),
            "kustomizeVersion": self.kustomize_version,
            "kind": "kustomize" if self.tool else "vendor",
            "stackRef": None if self.stack_ref is None else {
                "from": self.stack_ref[0], "to": self.stack_ref[1]},
            "rewrites": [r.to_dict() for r in self.rewrites],
            "clusters": [c.to_dict() for c in self.clusters],
            "remotes": [r.to_dict() for r in self.remotes],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"

    # --- markdown ------------------------------------------------------------------------

    def _outcome(self) -> str:
        if self.tool and self.outcome == "committed":
            return "committed"
        if self.tool and self.outcome == "up-to-date":
            return "already pinned: nothing to upgrade"
        return OUTCOMES.get(self.outcome, self.outcome)

    def _title(self) -> str:
        return f"Upgrade {self.name} {self.from_version} -> {self.to_version}"

    def _where(self) -> str:
        if self.upgrade_branch:
            return f"`{self.original_branch}` -> `{self.upgrade_branch}`"
        return f"`{self.original_branch}` (no branch created)"

    def to_markdown(self) -> str:
        lines = [f"# {self._title()}", "",
                 f"{self._where()}: **{self._outcome()}**"
                 + (f" (commit `{self.commit[:12]}`)" if self.commit else "") + ".", ""]
        if self.stack_ref:
            lines += [f"`stack.yaml` now tracks `ref: {self.stack_ref[1]}` (was "
                      f"`{self.stack_ref[0]}`).", ""]
        merge_md = "" if self.tool else self.merge.to_markdown(title="Merge")
        for ln in merge_md.splitlines():
            lines.append("#" + ln if ln.startswith("#") else ln)
        changing = [r for r in self.rewrites if r.added or r.removed or r.note]
        if changing:
            lines += ["", "### What the rewritten references change", "",
                      "Each rewritten reference's old target rendered from "
                      f"`{self.original_branch}` against its new target rendered from the "
                      "merged tree:", ""]
            for r in changing:
                where = ", ".join(r.clusters) or "no cluster"
                lines.append(f"- `{_esc(r.file)}`: `{_esc(r.old)}` -> `{_esc(r.new)}` "
                             f"(clusters: {where})" + (f": {_esc(r.note)}" if r.note else ""))
                lines += [f"  - `+ {_esc(o)}`" for o in r.added]
                lines += [f"  - `- {_esc(o)}`" for o in r.removed]
        if self.remotes:
            lines += ["", "## Remote bases", "",
                      "Vendored under `_remotes/` of the release and pinned in stackctl.lock.",
                      "", "| remote | change | before | after |", "|---|---|---|---|"]
            lines += [f"| `{_esc(r.url)}` | {r.change} | {_esc(r.before or '-')} | "
                      f"{_esc(r.after or '-')} |" for r in self.remotes]
        if self.resolutions:
            lines += ["", "### Resolved", "", "| conflict | resolution |", "|---|---|"]
            lines += [f"| `{_esc(a)}` | {r} |" for a, r in sorted(self.resolutions.items())]
        lines += ["", "## Clusters", ""]
        if not self.clusters:
            lines.append("No clusters (`clusters/<name>/kustomization.yaml`) to render.")
        else:
            k = f" with kustomize {self.kustomize_version}" if self.kustomize_version else ""
            said = (f"Each cluster of `{self.original_branch}` rendered with kustomize "
                    f"{self.from_version} (before) and {self.to_version} (after)." if self.tool
                    else f"Each cluster rendered before (`{self.original_branch}`) and after "
                    f"(the merged tree){k}.")
            lines += [said, "",
                      "| cluster | status | objects before | after | added | removed | "
                      "changed | image changes |",
                      "|---|---|---|---|---|---|---|---|"]
            for c in self.clusters:
                lines.append(
                    f"| {c.name} | {c.status} | {_n(c.objects_before)} | {_n(c.objects_after)} "
                    f"| {c.added} | {c.removed} | {c.changed} | {len(c.images)} |")
            for c in self.clusters:
                lines += self._cluster_markdown(c)
        return "\n".join(lines) + "\n"

    def _cluster_markdown(self, c: ClusterSummary) -> list[str]:
        if c.status == "failed":
            return ["", f"### {c.name}: fails to render {c.error_side}", "", "```",
                    *(c.error or "").splitlines(), "```"]
        if c.status == "unchanged":
            return []
        out = ["", f"### {c.name}", ""]
        if c.images:
            out += ["Images:", ""] + [f"- `{_esc(i)}`" for i in c.images] + [""]
        if c.flagged:
            out += ["Flagged for review (API and CRD versions, replacements):", ""]
            out += [f"- `{_esc(f)}`" for f in c.flagged] + [""]
        shown = c.objects[:OBJECT_LINES]
        out += ["```diff", *shown]
        if len(c.objects) > len(shown):
            out.append(f"… {len(c.objects) - len(shown)} more")
        out.append("```")
        return out

    # --- text ----------------------------------------------------------------------------

    def to_text(self) -> str:
        m = self.merge
        lines = [f"{self._title().lower()}: {self._where().replace('`', '')}: "
                 f"{self._outcome()}"
                 + (f" ({self.commit[:12]})" if self.commit else "")]
        if self.tool:
            lines.append(f"clusters (rendered from {self.original_branch} with kustomize "
                         f"{self.from_version} and {self.to_version}):")
            for cs in self.clusters:
                lines += _cluster_text(cs)
                # What a release changes is the point of this upgrade: every object shows.
                lines += [f"    {o}" for o in cs.objects[:OBJECT_LINES]]
            return "\n".join(lines) + "\n"
        if self.stack_ref:
            lines.append(f"stack.yaml: ref {self.stack_ref[0]} -> {self.stack_ref[1]}")
        merged = ", ".join(f"{k} {v}" for k, v in m.merged.items() if v)
        lines.append(
            f"merge: {m.taken_upstream} file(s) taken from upstream, {m.kept_local} kept "
            f"local, {sum(m.merged.values())} merged" + (f" ({merged})" if merged else "")
            + f", {len(m.moves)} moved, {len(m.deleted)} deleted, "
            f"{len(m.rewritten_references)} reference(s) rewritten, "
            f"{len(m.unresolved_references)} unresolved, {len(m.conflicts)} conflict(s)")
        if m.conflicts:
            lines.append("conflicts:")
            for c in m.conflicts:
                state = self.resolutions.get(c.address)
                lines.append(f"  {c.address}" + (f"  [resolved: {state}]" if state else ""))
                lines += describe_conflict(c, resolved=state is not None)
        if m.rewritten_references:
            effects = {(r.file, r.old): r for r in self.rewrites}
            lines.append("references rewritten (evidence):")
            for r in m.rewritten_references:
                lines.append(f"  {r.file}: {r.old} -> {r.new}")
                if r.evidence:
                    lines.append(f"    {r.evidence_kind}: {r.evidence}")
                e = effects.get((r.file, r.old))
                if e is not None and (e.added or e.removed or e.note):
                    where = ", ".join(e.clusters) or "no cluster"
                    lines.append(f"    in {where}: {e.note}" if e.note and not (
                        e.added or e.removed) else f"    in {where}: {len(e.added)} "
                        f"object(s) added, {len(e.removed)} removed")
                    lines += [f"      + {o}" for o in e.added]
                    lines += [f"      - {o}" for o in e.removed]
        if m.folder_moves:
            lines.append("folders moved by upstream:")
            lines += [f"  {a} -> {b}" for a, b in m.folder_moves.items()]
        if self.remotes:
            lines.append("remote bases:")
            lines += [f"  {r.change} {r}" for r in self.remotes]
        if self.clusters:
            k = f" with kustomize {self.kustomize_version}" if self.kustomize_version else ""
            lines.append(f"clusters (rendered before and after{k}):")
            for cs in self.clusters:
                lines += _cluster_text(cs)
        return "\n".join(lines) + "\n"


def _cluster_text(c: ClusterSummary) -> list[str]:
    if c.status == "failed":
        out = [f"  {c.name}: fails to render {c.error_side}:"]
        return out + [f"    {ln}" for ln in (c.error or "").splitlines()]
    if c.status == "unchanged":
        return [f"  {c.name}: unchanged ({_n(c.objects_after)} objects)"]
    out = [f"  {c.name}: {c.status}, {_n(c.objects_before)} -> {_n(c.objects_after)} objects: "
           f"{c.added} added, {c.removed} removed, {c.changed} changed, "
           f"{len(c.images)} image change(s)"]
    out += [f"    image {i}" for i in c.images]
    out += [f"    flagged {f}" for f in c.flagged]
    return out


def describe_conflict(c: Conflict, *, resolved: bool = False, indent: str = "    "
                      ) -> list[str]:
    """A conflict's lines under its address: the kind and the three sides; a hunk of a
    multi-line value line by line; a lost effect or an unresolved reference in words."""
    if c.kind == ConflictKind.NO_EFFECT:
        return [f"{indent}no-effect: {c.ours}", f"{indent}  before: {c.base}",
                f"{indent}  after:  {c.theirs}"]
    if c.kind == ConflictKind.UNRESOLVED_REFERENCE:
        return [f"{indent}unresolved-reference: {c.message}"]
    if c.hunk is not None:
        kept = "" if resolved else " (ours kept)"
        a, z = c.hunk
        where = f"line {a}" if a == z else f"lines {a}-{z}"
        out = [f"{indent}{c.kind} in {where} of the value{kept}:"]
        for side, value in (("base", c.base), ("ours", c.ours), ("theirs", c.theirs)):
            text = str(value).rstrip("\n")
            for ln in (text.split("\n") if text else ["(no lines)"]):
                out.append(f"{indent}  {side:<6} | {ln}")
        return out
    kept = " (kept)" if not resolved and c.kind != ConflictKind.DELETED_LOCALLY else ""
    b, o, t = _three(c.base, c.ours, c.theirs)
    return [f"{indent}{c.kind}: base {b}, ours {o}{kept}, theirs {t}"]


def _three(b: Any, o: Any, t: Any, width: int = 80) -> tuple[str, str, str]:
    """The three values shown, cut around where they differ when they are long and share
    a beginning (so that the difference is what shows, not the same first characters)."""
    texts = [_val(v, width=10**6) for v in (b, o, t)]
    if all(len(x) <= width for x in texts):
        return texts[0], texts[1], texts[2]
    plain = [x for x in texts if not x.startswith("<")]
    common = 0
    while plain and all(len(x) > common for x in plain) \
            and len({x[common] for x in plain}) == 1:
        common += 1
    start = max(0, common - 10)
    out = []
    for x in texts:
        if x.startswith("<"):
            out.append(x)
            continue
        cut = ("…" if start else "") + x[start:]
        out.append(cut if len(cut) <= width else cut[: width - 1] + "…")
    return out[0], out[1], out[2]


def _n(v: int | None) -> str:
    return "-" if v is None else str(v)


def _val(value: Any, width: int = 80) -> str:
    if isinstance(value, str) and value.startswith("<"):
        return value
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= width else text[: width - 1] + "…"


def _esc(text: str) -> str:
    return text.replace("|", "\\|").replace("`", "'")
