"""What the upgrade steps share: the result value, the repository and paths, the merge
commit's message, the reports."""

from __future__ import annotations

import datetime as dt
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gitops import git
from gitops.errors import ExitCode, UpgradeError
from gitops.lock import LockEntry
from gitops.merge import Conflict, MergeReport, TreeMerge
from gitops.paths import write_atomic
from gitops.stack import Stack
from gitops.upgrade.report import UpgradeReport
from gitops.upgrade.state import (
    REPORT_JSON,
    REPORT_MD,
    UpgradeState,
    ensure_state_dir,
    load_state,
)

Progress = Callable[[str], None]


@dataclass(frozen=True)
class UpgradeResult:
    """What an upgrade step did. `outcome`: committed, conflicts, dry-run or up-to-date."""

    outcome: str
    report: UpgradeReport
    original_branch: str
    upgrade_branch: str | None
    vendor_commit: str | None
    merge_commit: str | None
    lock_entry: LockEntry | None
    previous: LockEntry | None
    tree: TreeMerge | None = None  # the merge itself (start_upgrade only)
    report_paths: tuple[Path, ...] = ()

    @property
    def conflicts(self) -> tuple[Conflict, ...]:
        return self.report.conflicts

    @property
    def open_conflicts(self) -> tuple[Conflict, ...]:
        return self.report.open_conflicts

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.FINDING if self.report.needs_attention else ExitCode.OK



def open_stack_repo(stack: Stack) -> tuple[git.Repo, str]:
    return git.open_with_prefix(stack.root)


join = git.join_prefix


def now() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def merge_message(state: UpgradeState, stats: str, entry: LockEntry) -> str:
    body = textwrap.fill(f"Merge {state.vendor_branch} ({state.name} {state.to_version}) "
                         f"into {state.original_branch} with 'stackctl upgrade': {stats}.",
                         width=72, break_long_words=False, break_on_hyphens=False)
    return (f"Upgrade {state.name} {state.from_version} -> {state.to_version}\n\n{body}\n\n"
            f"Vendor-Ref: {entry.ref}\nVendor-Resolved: {entry.resolved}\n"
            f"Vendor-Digest: {entry.digest}\nUpgrade-From: {state.from_version}\n")


def merge_stats(m: MergeReport, resolutions: dict[str, str]) -> str:
    parts = [f"{m.taken_upstream} file(s) taken from upstream", f"{m.kept_local} kept local",
             f"{sum(m.merged.values())} merged", f"{len(m.moves)} moved",
             f"{len(m.rewritten_references)} reference(s) rewritten"]
    if resolutions:
        by: dict[str, int] = {}
        for r in resolutions.values():
            by[r] = by.get(r, 0) + 1
        parts.append(f"{len(resolutions)} conflict(s) resolved ("
                     + ", ".join(f"{k} {v}" for k, v in sorted(by.items())) + ")")
    return ", ".join(parts)


def write_reports(root: Path, report: UpgradeReport) -> tuple[Path, ...]:
    ensure_state_dir(root)
    md, js = root / REPORT_MD, root / REPORT_JSON
    write_atomic(md, report.to_markdown())
    write_atomic(js, report.to_json())
    return md, js


def require_state(stack: Stack) -> UpgradeState:
    state = load_state(stack.root)
    if state is None:
        raise UpgradeError("no upgrade is in progress.",
                           hint="Start one with 'stackctl upgrade --vendor REF'.")
    return state


def tree_paths(repo: git.Repo, tree: str) -> dict[str, tuple[int, bytes]]:
    return repo.read_tree_id(tree, with_content=False)
