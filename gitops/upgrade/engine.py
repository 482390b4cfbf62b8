"""`stackctl upgrade`: import a release onto the vendor branch and three-way merge it into a
new branch, never touching the current one.

    start_upgrade     import, merge, render before/after; commit (clean) or check out the
                      merged tree with conflicts to resolve
    continue_upgrade  commit the resolved tree as the merge commit
    abort_upgrade     back to the original branch, exactly as it was
    upgrade_status    the upgrade in progress

base = the release stackctl.lock pins (on the vendor branch), theirs = the new release,
ours = the current branch. The merge commit's parents are the current branch's commit and
the new release's commit on the vendor branch, as `vendor import` does.
"""

from __future__ import annotations

import datetime as dt
import os
import textwrap
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

from gitops import git
from gitops.errors import ConfigError, DirtyWorktreeError, ExitCode, GitError, UpgradeError
from gitops.kustomize import find_kustomize
from gitops.lock import Lock, LockEntry, parse_lock, render_lock
from gitops.merge import Conflict, MergeReport, Redaction, TreeMerge, merge_trees
from gitops.plan import Plan, RefInfo
from gitops.stack import LOCK_FILE, Stack
from gitops.upgrade.markers import add_markers, remove_markers
from gitops.upgrade.renders import cluster_summaries, render_side, summarise
from gitops.upgrade.report import ClusterSummary, UpgradeReport
from gitops.upgrade.serial import merge_report_from_dict
from gitops.upgrade.state import (
    CONFLICTS,
    REPORT_JSON,
    REPORT_MD,
    STARTING,
    ConflictRecord,
    UpgradeState,
    ensure_state_dir,
    load_state,
    remove_state,
    save_state,
    write_atomic,
)
from gitops.vendor import import_release, pristine_commit

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
    plan: Plan | None = None  # before/after per cluster (None when nothing rendered)
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


# ------------------------------------------------------------------------------ helpers


def _open(stack: Stack) -> tuple[git.Repo, str]:
    repo = git.open_repo(stack.root)
    try:
        rel = stack.root.resolve().relative_to(repo.root)
    except ValueError as e:
        raise GitError(f"{stack.root} is not inside the repository {repo.root}") from e
    prefix = rel.as_posix()
    return repo, "" if prefix == "." else prefix


def _join(prefix: str, path: str) -> str:
    return f"{prefix}/{path}" if prefix else path


def _now() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _prefixed(files: git.Files, prefix: str) -> git.Files:
    return {f"{prefix}/{p}": v for p, v in files.items()}


def _merged_files(tree: TreeMerge, base: git.Files, ours: git.Files,
                  theirs: git.Files) -> git.Files:
    """The merged tree with file modes: upstream's mode where upstream's content or mode
    was taken, ours' otherwise (local files that followed a move keep their own)."""
    back = _origins(tree)
    out: git.Files = {}
    for p, data in tree.files.items():
        old = back.get(p, p)
        o = ours.get(p) or ours.get(old)
        t = theirs.get(p)
        b = base.get(old)
        if t is not None and (o is None or b is None or o[0] == b[0]):
            mode = t[0]
        elif o is not None:
            mode = o[0]
        else:
            mode = git.MODE_FILE
        out[p] = (mode, data)
    return out


def _origins(tree: TreeMerge) -> dict[str, str]:
    """Merged path -> the path ours' version came from: upstream's moves, and local edits
    carried into the new versioned folder upstream switched to."""
    back = {new: old for old, new in tree.moves.items()}
    back.update({new: old for old, new in tree.carried.items()})
    return back


def _records(tree: TreeMerge, base: git.Files, ours: git.Files,
             theirs: git.Files) -> tuple[ConflictRecord, ...]:
    back = _origins(tree)
    report = MergeReport.from_tree(tree)  # conflicts in report order: ids match the report
    out = []
    for n, c in enumerate(report.conflicts, 1):
        old = back.get(c.path, c.path)
        out.append(ConflictRecord(
            id=n, conflict=c,
            base_path=c.path if c.path in base else (old if old in base else None),
            ours_path=c.path if c.path in ours else (old if old in ours else None),
            theirs_path=c.path if c.path in theirs else None,
        ))
    return tuple(out)


def _message(state: UpgradeState, stats: str, entry: LockEntry) -> str:
    body = textwrap.fill(f"Merge {state.vendor_branch} ({state.name} {state.to_version}) "
                         f"into {state.original_branch} with 'stackctl upgrade': {stats}.",
                         width=72, break_long_words=False, break_on_hyphens=False)
    return (f"Upgrade {state.name} {state.from_version} -> {state.to_version}\n\n{body}\n\n"
            f"Vendor-Ref: {entry.ref}\nVendor-Resolved: {entry.resolved}\n"
            f"Vendor-Digest: {entry.digest}\nUpgrade-From: {state.from_version}\n")


def _stats(m: MergeReport, resolutions: dict[str, str]) -> str:
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


def _write_reports(root: Path, report: UpgradeReport) -> tuple[Path, ...]:
    ensure_state_dir(root)
    md, js = root / REPORT_MD, root / REPORT_JSON
    write_atomic(md, report.to_markdown())
    write_atomic(js, report.to_json())
    return md, js


def _lock_of(files: git.Files, stack: Stack) -> Lock:
    data = files.get(LOCK_FILE)
    if data is None:
        raise ConfigError(
            f"nothing is vendored for {stack.name!r}: the current branch has no {LOCK_FILE}, "
            "so there is no previous release to merge against.",
            hint="Import the release your vendor/ folder holds first ('stackctl vendor "
            "import --ref REF'), or write the lock for it.")
    return parse_lock(data[1].decode("utf-8"), path=stack.root / LOCK_FILE)


def _require_no_upgrade(stack: Stack) -> None:
    state = load_state(stack.root)
    if state is not None:
        raise UpgradeError(
            f"an upgrade of {state.name} to {state.to_version} is already in progress on "
            f"the branch {state.upgrade_branch}.",
            hint="See it with 'stackctl upgrade --status'; finish it with 'stackctl upgrade "
            "--continue' or drop it with 'stackctl upgrade --abort'.")


def _untracked_in_the_way(repo: git.Repo, head_files: git.Files, new_files: git.Files,
                          prefix: str) -> None:
    """Refuse when an untracked file sits where the merge adds a file (a checkout would
    have to overwrite it)."""
    root = repo.root
    clash = sorted(p for p in new_files if p not in head_files
                   and os.path.lexists(root / _join(prefix, p)))
    if clash:
        shown = ", ".join(clash[:10]) + (f" and {len(clash) - 10} more" if len(clash) > 10
                                         else "")
        raise DirtyWorktreeError(
            f"untracked files are in the way of the upgrade, which adds files at the same "
            f"paths: {shown}.",
            hint="Move them away or commit them, then run the upgrade again.")


# ------------------------------------------------------------------------------- start


def start_upgrade(stack: Stack, *, ref: str, source: str | None = None,
                  branch: str | None = None, dry_run: bool = False,
                  progress: Progress | None = None) -> UpgradeResult:
    """Import `ref` onto vendor/<name> and merge it with the current branch into the new
    branch `upgrade/<name>-<version>` (or `branch`). See docs/upgrade.md.

    Clean: the merge commit is made and checked out (outcome `committed`). Conflicts: the
    merged tree is checked out on the new branch with a marker above each conflict and the
    state saved (outcome `conflicts`). `dry_run` changes no branch and no file outside
    `.stackctl/` (the vendor branch is put back where it was)."""
    say = progress or (lambda _m: None)
    repo, prefix = _open(stack)
    _require_no_upgrade(stack)
    original = repo.current_branch()
    head = repo.head_commit()
    if original is None or head is None:
        raise GitError("HEAD is detached or the repository has no commit, so there is no "
                       "branch to upgrade.",
                       hint="Switch to your branch (git switch main) and run it again.")
    vrel = stack.vendor_relpath
    vpath = _join(prefix, vrel)
    if not dry_run:
        repo.require_clean(untracked_under=(vpath,), action="start an upgrade")
    ours = repo.read_tree(head, prefix)
    lock = _lock_of(ours, stack)
    previous = lock.get(stack.name)
    if previous is None:
        raise ConfigError(f"{LOCK_FILE} has no entry for {stack.name!r}.",
                          path=stack.root / LOCK_FILE,
                          hint="Import the release vendor/ holds first: 'stackctl vendor "
                          "import --ref REF'.")
    kustomize = find_kustomize()  # a missing binary stops the upgrade before any change
    base_commit = pristine_commit(stack, progress=progress)
    vendor_before = repo.branch_commit(stack.vendor_branch)
    restore_vendor = True
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="stackctl-render")
    try:
        imp = import_release(stack, ref=ref, source=source, merge=False, progress=progress)
        entry = imp.lock_entry
        upgrade_branch = branch or f"upgrade/{stack.name}-{entry.resolved}"
        if not dry_run and repo.branch_commit(upgrade_branch) is not None:
            raise UpgradeError(
                f"the branch {upgrade_branch} already exists.",
                hint=f"Delete it (git branch -D {upgrade_branch}) or name another with "
                "--branch NAME.")
        # The clusters of the current branch render (kustomize runs in other processes)
        # while this thread merges: the before side does not depend on the merge.
        before_renders = pool.submit(render_side, stack, ours, kustomize, label="before",
                                     progress=progress)
        base = _prefixed(repo.read_tree(base_commit, vpath), vrel)
        theirs = _prefixed(repo.read_tree(imp.vendor_commit, vpath), vrel)
        say(f"merging {previous.resolved} -> {entry.resolved} into {original}")
        tree = merge_trees({p: d for p, (_, d) in base.items()},
                           {p: d for p, (_, d) in ours.items()},
                           {p: d for p, (_, d) in theirs.items()},
                           vendor_prefix=vrel, redaction=Redaction())
        merged = _merged_files(tree, base, ours, theirs)
        lock_text = render_lock(lock.with_entry(entry))
        merged[LOCK_FILE] = (git.MODE_FILE, lock_text.encode())
        merge_report = MergeReport.from_tree(tree)
        up_to_date = entry.digest == previous.digest
        outcome = ("up-to-date" if up_to_date else "dry-run" if dry_run
                   else "conflicts" if tree.conflicts else "committed")
        head_tree = repo.commit_tree_id(head)
        assert head_tree is not None
        stack_tree = repo.write_tree(merged)
        full_tree = repo.replace_subtree(head_tree, prefix, stack_tree) if prefix \
            else stack_tree
        clusters: tuple[ClusterSummary, ...] = ()
        plan = None
        kversion = None
        if not up_to_date:
            after_renders = render_side(stack, merged, kustomize, label="after",
                                        progress=progress)
            clusters, plan = summarise(
                before_renders.result(), after_renders,
                base=RefInfo(ref=original, commit=head),
                head=RefInfo(ref=upgrade_branch, commit=full_tree))
            kversion = kustomize.version
        report = UpgradeReport(
            name=stack.name, from_version=previous.resolved, to_version=entry.resolved,
            original_branch=original,
            upgrade_branch=None if (dry_run or up_to_date) else upgrade_branch,
            outcome=outcome, merge=merge_report, clusters=clusters,
            kustomize_version=kversion)
        state = UpgradeState(
            phase=STARTING, name=stack.name, prefix=prefix, original_branch=original,
            original_commit=head, upgrade_branch=upgrade_branch,
            vendor_branch=stack.vendor_branch, vendor_before=vendor_before,
            base_commit=base_commit, vendor_commit=imp.vendor_commit, merged_tree=full_tree,
            from_version=previous.resolved, to_version=entry.resolved, lock_text=lock_text,
            started_at=_now(), conflicts=_records(tree, base, ours, theirs),
            extra={"merge": merge_report.to_dict(), "kustomizeVersion": kversion},
        )
        merge_commit = None
        if outcome == "committed":
            merge_commit = _commit_clean(repo, stack, state, ours, merged, entry,
                                         merge_report, say)
            report = replace(report, commit=merge_commit)
            restore_vendor = False
        elif outcome == "conflicts":
            _enter_conflicts(repo, stack, state, ours, merged, say)
            restore_vendor = False
        paths = _write_reports(stack.root, report)
    finally:
        pool.shutdown(wait=True)  # an interrupt reaches kustomize too: this is short
        if restore_vendor and vendor_before is not None \
                and repo.branch_commit(stack.vendor_branch) != vendor_before:
            repo.set_branch(stack.vendor_branch, vendor_before,
                            message="stackctl: vendor branch put back (upgrade not made)")
    return UpgradeResult(
        outcome=outcome, report=report, original_branch=original,
        upgrade_branch=report.upgrade_branch, vendor_commit=imp.vendor_commit,
        merge_commit=merge_commit, lock_entry=entry, previous=previous, tree=tree, plan=plan,
        report_paths=paths)


def _commit_clean(repo: git.Repo, stack: Stack, state: UpgradeState, ours: git.Files,
                  merged: git.Files, entry: LockEntry, m: MergeReport, say: Progress) -> str:
    commit = repo.create_commit(state.merged_tree, _message(state, _stats(m, {}), entry),
                                [state.original_commit, state.vendor_commit])
    _untracked_in_the_way(repo, ours, merged, state.prefix)
    save_state(stack.root, state)  # from here an interrupted upgrade can be aborted
    try:
        repo.create_branch(state.upgrade_branch, commit)
        say(f"checking out {state.upgrade_branch}")
        repo.checkout(commit, branch=state.upgrade_branch)
    except BaseException:
        _undo(repo, stack, state)
        raise
    remove_state(stack.root)
    return commit


def _enter_conflicts(repo: git.Repo, stack: Stack, state: UpgradeState, ours: git.Files,
                     merged: git.Files, say: Progress) -> None:
    by_file: dict[str, list[tuple[int, Conflict]]] = {}
    for r in state.conflicts:
        by_file.setdefault(r.conflict.path, []).append((r.id, r.conflict))
    marked_tree = state.merged_tree
    for path, items in by_file.items():
        if path not in merged:
            continue
        mode, data = merged[path]
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            continue
        new = add_markers(path, text, items, REPORT_MD)
        if new != text:
            marked_tree = repo.replace_file(marked_tree, _join(state.prefix, path),
                                            new.encode(), mode)
    snapshot = repo.create_commit(
        marked_tree, f"stackctl upgrade: {state.name} {state.to_version} merged with "
        "conflicts (working tree snapshot, on no branch)", [state.original_commit])
    _untracked_in_the_way(repo, ours, merged, state.prefix)
    state = replace(state, extra={**state.extra, "markedTree": marked_tree,
                                  "snapshot": snapshot})
    save_state(stack.root, state)
    try:
        repo.create_branch(state.upgrade_branch, state.original_commit)
        say(f"checking out {state.upgrade_branch} with {len(state.conflicts)} conflict(s) "
            "to resolve")
        # The merged tree goes to the working tree and the index; the branch stays at the
        # original commit until --continue makes the merge commit.
        repo.checkout(snapshot, branch=state.upgrade_branch)
        repo.set_branch(state.upgrade_branch, state.original_commit,
                        message="stackctl: upgrade in progress")
        save_state(stack.root, replace(state, phase=CONFLICTS))
    except BaseException:
        _undo(repo, stack, state)
        raise


# ------------------------------------------------------------------------ abort / undo


def _tree_paths(repo: git.Repo, tree: str) -> dict[str, tuple[int, bytes]]:
    return repo.read_tree_id(tree, with_content=False)


def _undo(repo: git.Repo, stack: Stack, state: UpgradeState) -> None:
    """Back to the original branch with the working tree and index of its commit; the
    upgrade branch deleted, the vendor branch where it was, the state removed."""
    current = repo.current_branch()
    if current == state.upgrade_branch:
        # Point HEAD's branch at the original commit first, so every later step compares
        # against the original tree (the branch is deleted at the end anyway).
        repo.set_branch(state.upgrade_branch, state.original_commit,
                        message="stackctl: upgrade aborted")
    if current in (state.upgrade_branch, state.original_branch):
        orig_tree = repo.commit_tree_id(state.original_commit)
        assert orig_tree is not None
        original = _tree_paths(repo, orig_tree)
        touched: set[str] = set(repo.dirty_paths())
        # A file --resolve wrote where the merge had none is not in the index.
        touched |= {_join(state.prefix, r.conflict.path) for r in state.conflicts}
        for tree in {state.merged_tree, str(state.extra.get("markedTree") or "")} - {""}:
            try:
                other = _tree_paths(repo, tree)
            except (GitError, KeyError):
                continue  # an object of an interrupted start that was never written
            touched |= {p for p in set(original) | set(other)
                        if original.get(p) != other.get(p)}
        full = repo.read_tree(state.original_commit) if touched else {}
        root = repo.root
        for p in sorted(touched):
            target = root / p
            if p in full:
                mode, data = full[p]
                if target.is_symlink() or target.exists():
                    if target.is_dir() and not target.is_symlink():
                        continue
                    target.unlink()
                git.write_files(root, {p: (mode, data)})
            elif target.is_symlink() or target.is_file():
                target.unlink()
                _prune_empty(target.parent, root)
        repo.reset_index(state.original_commit)
        repo.checkout(state.original_commit, branch=state.original_branch)
    if repo.branch_commit(state.upgrade_branch) is not None \
            and repo.current_branch() != state.upgrade_branch:
        repo.delete_branch(state.upgrade_branch)
    if state.vendor_before is not None:
        repo.set_branch(state.vendor_branch, state.vendor_before,
                        message="stackctl: vendor branch put back (upgrade aborted)")
    remove_state(stack.root)


def _prune_empty(folder: Path, root: Path) -> None:
    while folder != root and folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
        folder = folder.parent


def abort_upgrade(stack: Stack, *, progress: Progress | None = None) -> UpgradeState:
    """Drop the upgrade in progress: the original branch checked out exactly as it was,
    the upgrade branch deleted, the vendor branch put back, the state removed."""
    say = progress or (lambda _m: None)
    repo, _ = _open(stack)
    state = _require_state(stack)
    current = repo.current_branch()
    if current not in (state.upgrade_branch, state.original_branch):
        raise UpgradeError(
            f"HEAD is on {current or 'a detached commit'}, not on the upgrade branch "
            f"{state.upgrade_branch}; stackctl will not touch that working tree.",
            hint=f"Switch back (git switch {state.upgrade_branch}) and run 'stackctl upgrade "
            "--abort' again.")
    say(f"restoring {state.original_branch} at {state.original_commit[:12]}")
    _undo(repo, stack, state)
    return state


def _require_state(stack: Stack) -> UpgradeState:
    state = load_state(stack.root)
    if state is None:
        raise UpgradeError("no upgrade is in progress.",
                           hint="Start one with 'stackctl upgrade --vendor REF'.")
    return state


def upgrade_status(stack: Stack) -> UpgradeState | None:
    """The upgrade in progress, or None."""
    return load_state(stack.root)


# ---------------------------------------------------------------------------- continue


def continue_upgrade(stack: Stack, *, progress: Progress | None = None) -> UpgradeResult:
    """Commit the resolved merge on the upgrade branch (parents: the original commit and
    the new release on the vendor branch), with stackctl.lock updated. While conflicts are
    open nothing changes and the result lists them (outcome `conflicts`)."""
    say = progress or (lambda _m: None)
    repo, prefix = _open(stack)
    state = _require_state(stack)
    merge = merge_report_from_dict(state.extra.get("merge") or {})
    resolutions = {r.address: r.resolution for r in state.conflicts if r.resolution}
    entry = parse_lock(state.lock_text).get(state.name)
    assert entry is not None
    base_report = UpgradeReport(
        name=state.name, from_version=state.from_version, to_version=state.to_version,
        original_branch=state.original_branch, upgrade_branch=state.upgrade_branch,
        outcome="conflicts", merge=merge, resolutions=resolutions,
        kustomize_version=state.extra.get("kustomizeVersion"))

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
    kustomize = find_kustomize()
    root = repo.root
    # Markers left over (a manual edit marked with --mark) never reach the commit.
    for r in state.conflicts:
        conflicted = root / _join(prefix, r.conflict.path)
        if conflicted.is_file() and not conflicted.is_symlink():
            try:
                text = conflicted.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                continue
            clean = remove_markers(text)
            if clean != text:
                conflicted.write_text(clean, encoding="utf-8")
    (root / _join(prefix, LOCK_FILE)).write_text(state.lock_text, encoding="utf-8")
    tree = repo.commit_tree_id(state.original_commit)
    assert tree is not None
    original = _tree_paths(repo, tree)
    marked = str(state.extra.get("markedTree") or state.merged_tree)
    touched = set(repo.dirty_paths()) | {
        p for p, v in _tree_paths(repo, marked).items() if original.get(p) != v}
    touched.add(_join(prefix, LOCK_FILE))
    touched |= {_join(prefix, r.conflict.path) for r in state.conflicts}
    for p in sorted(touched):
        f = root / p
        if f.is_symlink():
            tree = repo.replace_file(tree, p, str(f.readlink()).encode(), git.MODE_LINK)
        elif f.is_file():
            tree = repo.replace_file(tree, p, f.read_bytes(), git.mode_of_path(f))
        elif not f.exists():
            tree = repo.replace_file(tree, p, None)
    commit = repo.create_commit(tree, _message(state, _stats(merge, resolutions), entry),
                                [state.original_commit, state.vendor_commit])
    before = repo.read_tree(state.original_commit, prefix)
    after = repo.read_tree(commit, prefix)
    clusters, plan, kversion = cluster_summaries(
        stack, before, after, base=RefInfo(ref=state.original_branch,
                                           commit=state.original_commit),
        head=RefInfo(ref=state.upgrade_branch, commit=commit), kustomize=kustomize,
        progress=progress)
    say(f"committing the merge on {state.upgrade_branch}")
    repo.set_branch(state.upgrade_branch, commit, message="stackctl: upgrade merged")
    repo.reset_index(commit)
    remove_state(stack.root)
    report = replace(base_report, outcome="committed", clusters=clusters,
                     kustomize_version=kversion, commit=commit)
    paths = _write_reports(stack.root, report)
    return replace(result(report, commit, paths), plan=plan)
