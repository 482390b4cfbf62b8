"""`stackctl upgrade --continue`: the resolved merge committed on the upgrade branch."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from gitops import git
from gitops.errors import UpgradeError
from gitops.git.store import loose_objects, tidy
from gitops.kustomize import find_kustomize
from gitops.lock import parse_lock
from gitops.merge import Conflict
from gitops.redact import Redactor
from gitops.remote.pins import RemoteChange
from gitops.stack import LOCK_FILE, Stack
from gitops.upgrade.common import (
    Progress,
    UpgradeResult,
    join,
    merge_message,
    merge_stats,
    open_stack_repo,
    require_state,
    tree_paths,
    write_reports,
)
from gitops.upgrade.effects import lost_effects
from gitops.upgrade.markers import add_markers, remove_markers
from gitops.upgrade.renders import render_both, summarise
from gitops.upgrade.report import ClusterSummary, UpgradeReport
from gitops.upgrade.rewrites import RewriteEffect
from gitops.upgrade.serial import merge_report_from_dict
from gitops.upgrade.state import (
    CONFLICTS,
    REPORT_MD,
    ConflictRecord,
    UpgradeState,
    remove_state,
    save_state,
)


def continue_upgrade(stack: Stack, *, progress: Progress | None = None,
                     redactor: Redactor | None = None) -> UpgradeResult:
    """Commit the resolved merge on the upgrade branch (parents: the original commit and
    the new release on the vendor branch), with stackctl.lock updated. While conflicts are
    open nothing changes and the result lists them (outcome `conflicts`). `redactor`: the
    run's (default: one from the stack's settings)."""
    say = progress or (lambda _m: None)
    repo, prefix = open_stack_repo(stack)
    state = require_state(stack)
    merge = merge_report_from_dict(state.extra.get("merge") or {})
    resolutions = {r.address: r.resolution for r in state.conflicts if r.resolution}
    entry = parse_lock(state.lock_text).get(state.name)
    assert entry is not None
    base_report = UpgradeReport(
        name=state.name, from_version=state.from_version, to_version=state.to_version,
        original_branch=state.original_branch, upgrade_branch=state.upgrade_branch,
        outcome="conflicts", merge=merge, resolutions=resolutions,
        kustomize_version=state.extra.get("kustomizeVersion"),
        rewrites=tuple(RewriteEffect.from_dict(r) for r in state.extra.get("rewrites") or ()),
        stack_ref=tuple(state.extra["stackRef"]) if state.extra.get("stackRef") else None,
        remotes=tuple(RemoteChange.from_dict(r) for r in state.extra.get("remotes") or ()))

    def result(report: UpgradeReport, commit: str | None = None,
               paths: tuple[Path, ...] = ()) -> UpgradeResult:
        return UpgradeResult(outcome=report.outcome, report=report,
                             original_branch=state.original_branch,
                             upgrade_branch=state.upgrade_branch,
                             vendor_commit=state.vendor_commit, merge_commit=commit,
                             lock_entry=entry, previous=None, report_paths=paths)

    if state.phase != CONFLICTS:
        raise UpgradeError(
            "the upgrade was interrupted before its merged tree was checked out.",
            hint="Run 'stackctl upgrade --abort', then start it again.")
    if repo.current_branch() != state.upgrade_branch:
        raise UpgradeError(
            f"HEAD is not on the upgrade branch {state.upgrade_branch}.",
            hint=f"Switch back (git switch {state.upgrade_branch}) and run 'stackctl upgrade "
            "--continue' again.")
    moved = repo.branch_commit(state.upgrade_branch)
    if moved != state.original_commit:
        raise UpgradeError(
            f"the branch {state.upgrade_branch} moved since the upgrade started (a commit was "
            "made on it); stackctl makes the merge commit itself, on top of "
            f"{state.original_commit[:12]}.",
            hint=f"Undo that commit, keeping its changes (git reset --soft "
            f"{state.original_commit[:12]}), then run 'stackctl upgrade --continue' again.")
    if state.open_conflicts:
        return result(base_report)
    kustomize = find_kustomize(version=stack.kustomize)
    loose_before = loose_objects(repo)
    root = repo.root
    # Markers left over (a manual edit marked with --mark) never reach the commit.
    for r in state.conflicts:
        conflicted = root / join(prefix, r.conflict.path)
        if conflicted.is_file() and not conflicted.is_symlink():
            try:
                text = conflicted.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                continue
            clean = remove_markers(text)
            if clean != text:
                conflicted.write_text(clean, encoding="utf-8")
    (root / join(prefix, LOCK_FILE)).write_text(state.lock_text, encoding="utf-8")
    tree = repo.commit_tree_id(state.original_commit)
    assert tree is not None
    original = tree_paths(repo, tree)
    marked = str(state.extra.get("markedTree") or state.merged_tree)
    touched = set(repo.dirty_paths()) | {
        p for p, v in tree_paths(repo, marked).items() if original.get(p) != v}
    touched.add(join(prefix, LOCK_FILE))
    touched |= {join(prefix, r.conflict.path) for r in state.conflicts}
    for p in sorted(touched):
        f = root / p
        if f.is_symlink():
            tree = repo.replace_file(tree, p, str(f.readlink()).encode(), git.MODE_LINK)
        elif f.is_file():
            tree = repo.replace_file(tree, p, f.read_bytes(), git.mode_of_path(f))
        elif not f.exists():
            tree = repo.replace_file(tree, p, None)
    commit = repo.create_commit(tree, merge_message(state, merge_stats(merge, resolutions), entry),
                                [state.original_commit, state.vendor_commit])
    before = repo.read_tree(state.original_commit, prefix)
    after = repo.read_tree(commit, prefix)
    b_res, a_res, kversion = render_both(stack, before, after, kustomize=kustomize,
                                         progress=progress)
    clusters = summarise(b_res, a_res, redactor=redactor or Redactor.from_config(stack.root))
    # A cluster that did not render after the merge (a reference not resolved yet) had no
    # effect check: its customizations are checked now, and one that lost its effect
    # stops the commit like any other finding.
    vrel = stack.vendor_relpath
    base = {f"{vrel}/{p}": v for p, v in repo.read_tree(state.base_commit,
                                                         join(prefix, vrel)).items()}
    unchecked = set(state.extra.get("unchecked") or ())
    settled = {r.address for r in state.conflicts}
    findings = tuple(f for f in lost_effects(
        base, before, vrel, {n: r for n, r in b_res.items() if n in unchecked},
        {n: r for n, r in a_res.items() if n in unchecked}, merge.moves)
        if f.address not in settled) if unchecked else ()
    if findings:
        return _reopen(stack, state, findings, base_report, clusters, kversion, result)
    say(f"committing the merge on {state.upgrade_branch}")
    repo.set_branch(state.upgrade_branch, commit, message="stackctl: upgrade merged")
    repo.reset_index(commit)
    remove_state(stack.root)
    tidy(repo, loose_before)
    report = replace(base_report, outcome="committed", clusters=clusters,
                     kustomize_version=kversion, commit=commit)
    paths = write_reports(stack.root, report)
    return result(report, commit, paths)


def _reopen(stack: Stack, state: UpgradeState, findings: tuple[Conflict, ...],
            base_report: UpgradeReport, clusters: tuple[ClusterSummary, ...],
            kversion: str, result: Callable[..., UpgradeResult]) -> UpgradeResult:
    """New `no-effect` findings: added to the upgrade as open conflicts, with markers;
    nothing is committed."""
    repo, prefix = open_stack_repo(stack)
    first = max((r.id for r in state.conflicts), default=0) + 1
    records = tuple(ConflictRecord(id=first + i, conflict=c, base_path=None,
                                   ours_path=c.path, theirs_path=None)
                    for i, c in enumerate(findings))
    for r in records:
        target = repo.root / join(prefix, r.conflict.path)
        if target.is_file():
            text = target.read_text(encoding="utf-8")
            target.write_text(add_markers(r.conflict.path, text, [(r.id, r.conflict)],
                                          REPORT_MD), encoding="utf-8")
    state = state.with_conflicts((*state.conflicts, *records))
    merge_dict = dict(state.extra.get("merge") or {})
    merge_dict["conflicts"] = [*merge_dict.get("conflicts", []),
                               *(c.to_dict() for c in findings)]
    state = replace(state, extra={**state.extra, "merge": merge_dict})
    save_state(stack.root, state)
    merge = merge_report_from_dict(merge_dict)
    report = replace(base_report, merge=merge, clusters=clusters, kustomize_version=kversion)
    return result(report, None, write_reports(stack.root, report))
