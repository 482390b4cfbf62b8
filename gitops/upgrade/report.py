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
from gitops.merge import Conflict, MergeReport
from gitops.plan.lines import flag_lines, header, image_line
from gitops.remote.pins import RemoteChange

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


def _split_image(ref: str) -> tuple[str, str]:
    """(repository, tag or digest) of an image reference."""
    if "@" in ref:
        repo, digest = ref.split("@", 1)
        return repo, "@" + digest
    head, sep, tag = ref.rpartition(":")
    if sep and "/" not in tag:
        return head, tag
    return ref, ""


def _image(i: ImageChange) -> str:
    """`Deployment.apps/x -n ns [c]: registry/repo v1 -> v2` when only the tag changed,
    else plan's `[c]: before -> after`."""
    if i.before and i.after:
        (rb, tb), (ra, ta) = _split_image(i.before), _split_image(i.after)
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
        """Open conflicts, references that no longer resolve, or a cluster that fails to
        render: a person must look (exit code 1)."""
        return bool(self.open_conflicts or self.merge.unresolved_references
                    or self.failed_clusters)

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
            "clusters": [c.to_dict() for c in self.clusters],
            "remotes": [r.to_dict() for r in self.remotes],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"

    # --- markdown ------------------------------------------------------------------------

    def _title(self) -> str:
        return f"Upgrade {self.name} {self.from_version} -> {self.to_version}"

    def _where(self) -> str:
        if self.upgrade_branch:
            return f"`{self.original_branch}` -> `{self.upgrade_branch}`"
        return f"`{self.original_branch}` (no branch created)"

    def to_markdown(self) -> str:
        lines = [f"# {self._title()}", "",
                 f"{self._where()}: **{OUTCOMES.get(self.outcome, self.outcome)}**"
                 + (f" (commit `{self.commit[:12]}`)" if self.commit else "") + ".", ""]
        merge_md = self.merge.to_markdown(title="Merge")
        for ln in merge_md.splitlines():
            lines.append("#" + ln if ln.startswith("#") else ln)
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
            lines += [f"Each cluster rendered before (`{self.original_branch}`) and after "
                      f"(the merged tree){k}.", "",
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
                 f"{OUTCOMES.get(self.outcome, self.outcome)}"
                 + (f" ({self.commit[:12]})" if self.commit else "")]
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
                kept = " (kept)" if not state and c.kind != "deleted-locally" else ""
                lines.append(f"    {c.kind}: base {_val(c.base)}, ours {_val(c.ours)}{kept}, "
                             f"theirs {_val(c.theirs)}")
        if m.unresolved_references:
            lines.append("references that no longer resolve:")
            lines += [f"  {r.file}: {r.reference} (-> {r.target})"
                      for r in m.unresolved_references]
        if m.rewritten_references:
            lines.append("references rewritten:")
            lines += [f"  {r.file}: {r.old} -> {r.new}" for r in m.rewritten_references]
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


def _n(v: int | None) -> str:
    return "-" if v is None else str(v)


def _val(value: Any) -> str:
    if isinstance(value, str) and value.startswith("<"):
        return value
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= 80 else text[:79] + "…"


def _esc(text: str) -> str:
    return text.replace("|", "\\|").replace("`", "'")
