"""`stackctl upgrade --vendor REF`: import a release onto the vendor branch and three-way
merge it into a new branch, never touching the current one. The other steps live beside it:
--resolve in resolve.py, --continue in finish.py, --abort and --status in undo.py.

base = the release stackctl.lock pins (on the vendor branch), theirs = the new release,
ours = the current branch. The merge commit's parents are the current branch's commit and
the new release's commit on the vendor branch, as `vendor import` does.
"""

from __future__ import annotations

import os
import sys
from dataclasses import replace

from gitops import git
from gitops.errors import ConfigError, DirtyWorktreeError, GitError, UpgradeError
from gitops.kustomize import find_kustomize
from gitops.lock import Lock, LockEntry, parse_lock, render_lock
from gitops.merge import Conflict, MergeReport, Redaction, TreeMerge, merge_trees
from gitops.redact import Redactor
from gitops.remote.pins import remote_changes
from gitops.secretvalues import learn_secret_values
from gitops.stack import LOCK_FILE, Stack
from gitops.upgrade.common import (
    Progress,
    UpgradeResult,
    join,
    merge_message,
    merge_stats,
    now,
    open_stack_repo,
    write_reports,
)
from gitops.upgrade.markers import add_markers
from gitops.upgrade.renders import SideRenders, summarise
from gitops.upgrade.report import ClusterSummary, UpgradeReport
from gitops.upgrade.state import (
    CONFLICTS,
    IMPORTING,
    REPORT_MD,
    STARTING,
    ConflictRecord,
    UpgradeState,
    load_state,
    remove_state,
    save_state,
)
from gitops.upgrade.undo import put_vendor_back, undo_or_advise
from gitops.vendor import import_release, pristine_commit
from gitops.yamlio import decode

# ------------------------------------------------------------------------------ helpers


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


def _lock_of(files: git.Files, stack: Stack) -> Lock:
    data = files.get(LOCK_FILE)
    if data is None:
        raise ConfigError(
            f"nothing is vendored for {stack.name!r}: the current branch has no {LOCK_FILE}, "
            "so there is no previous release to merge against.",
            hint="Import the release your vendor/ folder holds first ('stackctl vendor "
            "import --ref REF'), or write the lock for it.")
    return parse_lock(decode(data[1], path=stack.root / LOCK_FILE), path=stack.root / LOCK_FILE)


def _require_no_upgrade(stack: Stack) -> None:
    state = load_state(stack.root)
    if state is not None:
        where = (f"on the branch {state.upgrade_branch}" if state.phase != IMPORTING
                 else f"(it was stopped while importing onto {state.vendor_branch})")
        raise UpgradeError(
            f"an upgrade of {state.name} to {state.to_version} is already in progress {where}.",
            hint="See it with 'stackctl upgrade --status'; finish it with 'stackctl upgrade "
            "--continue' or drop it with 'stackctl upgrade --abort'.")


def _untracked_in_the_way(repo: git.Repo, head_files: git.Files, new_files: git.Files,
                          prefix: str) -> None:
    """Refuse when an untracked file sits where the merge adds a file (a checkout would
    have to overwrite it)."""
    root = repo.root
    clash = sorted(p for p in new_files if p not in head_files
                   and os.path.lexists(root / join(prefix, p)))
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
                  progress: Progress | None = None,
                  redactor: Redactor | None = None) -> UpgradeResult:
    """Import `ref` onto vendor/<name> and merge it with the current branch into the new
    branch `upgrade/<name>-<version>` (or `branch`). See docs/upgrade.md.

    Clean: the merge commit is made and checked out (outcome `committed`). Conflicts: the
    merged tree is checked out on the new branch with a marker above each conflict and the
    state saved (outcome `conflicts`). `dry_run` changes no branch and no file outside
    `.stackctl/` (the vendor branch is put back where it was). `redactor`: the run's
    (default: one from the stack's settings)."""
    say = progress or (lambda _m: None)
    redactor = redactor or Redactor.from_config(stack.root)
    repo, prefix = open_stack_repo(stack)
    _require_no_upgrade(stack)
    original = repo.current_branch()
    head = repo.head_commit()
    if original is None or head is None:
        raise GitError("HEAD is detached or the repository has no commit, so there is no "
                       "branch to upgrade.",
                       hint="Switch to your branch (git switch main) and run it again.")
    vrel = stack.vendor_relpath
    vpath = join(prefix, vrel)
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
    # On a failure (Ctrl-C, which reaches kustomize too, or an error of the merge) the error
    # is shown without waiting for the renders.
    with SideRenders(stack, kustomize, progress=progress) as sides:
        base_commit = pristine_commit(stack, progress=progress)
        vendor_before = repo.branch_commit(stack.vendor_branch)
        # Saved before the import moves the vendor branch: a run killed (or out of disk)
        # from here on leaves an upgrade that --status shows and --abort undoes.
        save_state(stack.root, UpgradeState(
            phase=IMPORTING, name=stack.name, prefix=prefix, original_branch=original,
            original_commit=head, upgrade_branch=branch or "", vendor_branch=stack.vendor_branch,
            vendor_before=vendor_before, base_commit=base_commit, vendor_commit="",
            merged_tree="", from_version=previous.resolved, to_version=ref, lock_text="",
            started_at=now()))
        restore_vendor = True
        try:
            imp = import_release(stack, ref=ref, source=source, merge=False,
                                 progress=progress)
            entry = imp.lock_entry
            upgrade_branch = branch or f"upgrade/{stack.name}-{entry.resolved}"
            if not dry_run and repo.branch_commit(upgrade_branch) is not None:
                raise UpgradeError(
                    f"the branch {upgrade_branch} already exists.",
                    hint=f"Delete it (git branch -D {upgrade_branch}) or name another with "
                    "--branch NAME.")
            # The current branch's clusters render while this thread merges: the before
            # side does not depend on the merge (and, the working tree being clean, renders
            # in place). Starting them before the import gains nothing on two cores (the
            # import is CPU-bound too) and would keep a mistyped ref waiting for kustomize.
            up_to_date = entry.digest == previous.digest  # nothing to render then
            before_renders = None if up_to_date else \
                sides.start("before", ours, commit=None if dry_run else head)
            base = _prefixed(repo.read_tree(base_commit, vpath), vrel)
            theirs = _prefixed(repo.read_tree(imp.vendor_commit, vpath), vrel)
            say(f"merging {previous.resolved} -> {entry.resolved} into {original}")
            # Conflict values are redacted as they are recorded: the redactor must know
            # the secret values of all three sides first.
            for side in (base, ours, theirs):
                learn_secret_values(redactor, {p: d for p, (_, d) in side.items()})
            tree = merge_trees({p: d for p, (_, d) in base.items()},
                               {p: d for p, (_, d) in ours.items()},
                               {p: d for p, (_, d) in theirs.items()},
                               vendor_prefix=vrel, redaction=Redaction(redactor=redactor))
            merged = _merged_files(tree, base, ours, theirs)
            lock_text = render_lock(lock.with_entry(entry))
            merged[LOCK_FILE] = (git.MODE_FILE, lock_text.encode())
            # The merged tree renders while this thread writes its git objects.
            after_renders = None if before_renders is None else sides.start("after", merged)
            merge_report = MergeReport.from_tree(tree)
            outcome = ("up-to-date" if up_to_date else "dry-run" if dry_run
                       else "conflicts" if tree.conflicts else "committed")
            head_tree = repo.commit_tree_id(head)
            assert head_tree is not None
            stack_tree = repo.write_tree(merged)
            full_tree = repo.replace_subtree(head_tree, prefix, stack_tree) if prefix \
                else stack_tree
            clusters: tuple[ClusterSummary, ...] = ()
            kversion = None
            if before_renders is not None and after_renders is not None:
                clusters = summarise(before_renders.result(), after_renders.result(),
                                     redactor=redactor)
                kversion = kustomize.version
            remotes = remote_changes(previous.remotes, entry.remotes)
            report = UpgradeReport(
                name=stack.name, from_version=previous.resolved, to_version=entry.resolved,
                original_branch=original,
                upgrade_branch=None if (dry_run or up_to_date) else upgrade_branch,
                outcome=outcome, merge=merge_report, clusters=clusters,
                kustomize_version=kversion, remotes=remotes)
            state = UpgradeState(
                phase=STARTING, name=stack.name, prefix=prefix, original_branch=original,
                original_commit=head, upgrade_branch=upgrade_branch,
                vendor_branch=stack.vendor_branch, vendor_before=vendor_before,
                base_commit=base_commit, vendor_commit=imp.vendor_commit,
                merged_tree=full_tree, from_version=previous.resolved,
                to_version=entry.resolved, lock_text=lock_text, started_at=now(),
                conflicts=_records(tree, base, ours, theirs),
                extra={"merge": merge_report.to_dict(), "kustomizeVersion": kversion,
                       "remotes": [r.to_dict() for r in remotes]},
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
            paths = write_reports(stack.root, report)
        finally:
            if restore_vendor:
                put_vendor_back(repo, stack, vendor_before, failure=sys.exc_info()[1])
    return UpgradeResult(
        outcome=outcome, report=report, original_branch=original,
        upgrade_branch=report.upgrade_branch, vendor_commit=imp.vendor_commit,
        merge_commit=merge_commit, lock_entry=entry, previous=previous, tree=tree,
        report_paths=paths)


def _commit_clean(repo: git.Repo, stack: Stack, state: UpgradeState, ours: git.Files,
                  merged: git.Files, entry: LockEntry, m: MergeReport, say: Progress) -> str:
    commit = repo.create_commit(state.merged_tree, merge_message(state, merge_stats(m, {}), entry),
                                [state.original_commit, state.vendor_commit])
    _untracked_in_the_way(repo, ours, merged, state.prefix)
    save_state(stack.root, state)  # from here an interrupted upgrade can be aborted
    try:
        repo.create_branch(state.upgrade_branch, commit)
        say(f"checking out {state.upgrade_branch}")
        repo.checkout(commit, branch=state.upgrade_branch)
    except BaseException as e:
        undo_or_advise(repo, stack, state, e)
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
            marked_tree = repo.replace_file(marked_tree, join(state.prefix, path),
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
    except BaseException as e:
        undo_or_advise(repo, stack, state, e)
        raise
