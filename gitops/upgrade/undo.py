"""`stackctl upgrade --abort`: back to the original branch exactly as it was. The same undo
runs when a start fails or is interrupted after its first branch or working-tree change."""

from __future__ import annotations

from pathlib import Path

from gitops import git
from gitops.errors import GitError, MachineError, UpgradeError, UserError
from gitops.stack import Stack
from gitops.upgrade.common import (
    Progress,
    join,
    open_stack_repo,
    require_state,
    tree_paths,
)
from gitops.upgrade.state import (
    IMPORTING,
    STATE_FILE,
    UpgradeState,
    load_state,
    remove_state,
)


def undo(repo: git.Repo, stack: Stack, state: UpgradeState) -> None:
    """Back to the original branch with the working tree and index of its commit; the
    upgrade branch deleted, the vendor branch where it was, the state removed."""
    if state.phase == IMPORTING:
        # Stopped while importing: only the vendor branch may have moved. The branches and
        # the working tree (a dry run may start from a changed one) are left as they are.
        _vendor_branch_back(repo, state.vendor_branch, state.vendor_before)
        remove_state(stack.root)
        return
    current = repo.current_branch()
    if current == state.upgrade_branch:
        # Point HEAD's branch at the original commit first, so every later step compares
        # against the original tree (the branch is deleted at the end anyway).
        repo.set_branch(state.upgrade_branch, state.original_commit,
                        message="stackctl: upgrade aborted")
    if current in (state.upgrade_branch, state.original_branch):
        orig_tree = repo.commit_tree_id(state.original_commit)
        assert orig_tree is not None
        original = tree_paths(repo, orig_tree)
        touched: set[str] = set(repo.dirty_paths())
        # A file --resolve wrote where the merge had none is not in the index.
        touched |= {join(state.prefix, r.conflict.path) for r in state.conflicts}
        for tree in {state.merged_tree, str(state.extra.get("markedTree") or "")} - {""}:
            try:
                other = tree_paths(repo, tree)
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
    _vendor_branch_back(repo, state.vendor_branch, state.vendor_before)
    remove_state(stack.root)


def _vendor_branch_back(repo: git.Repo, branch: str, before: str | None) -> None:
    if before is not None and repo.branch_commit(branch) != before:
        repo.set_branch(branch, before, message="stackctl: vendor branch put back")


_ABORT = "run 'stackctl upgrade --abort'"


def _stopped(failure: BaseException | None) -> str:
    if failure is None:
        return "the upgrade stopped"
    if isinstance(failure, KeyboardInterrupt):
        return "the upgrade was interrupted"
    text = failure.message if isinstance(failure, UserError) else str(failure)
    return f"the upgrade stopped ({text.rstrip('.')})"


def _advice(stopped: str, undoing: BaseException, what: str) -> UserError:
    """The error of an undo that failed after `stopped`: what to fix, then --abort."""
    if isinstance(undoing, MachineError):
        return MachineError(f"{stopped}, and {what} failed too: {undoing.message}",
                            remedy=undoing.remedy, then=_ABORT)
    detail = undoing.message if isinstance(undoing, UserError) else str(undoing)
    return UpgradeError(f"{stopped}, and {what} failed too: {detail}.",
                        hint=f"Fix that, then {_ABORT}: {STATE_FILE} records what to put back.")


def put_vendor_back(repo: git.Repo, stack: Stack, vendor_before: str | None, *,
                    failure: BaseException | None) -> None:
    """After an upgrade that made no upgrade branch (a dry run, nothing to upgrade, or a
    `failure` before the merge was checked out): the vendor branch where it was, and the
    importing state removed. When that cannot be done, the state stays for --abort."""
    state = load_state(stack.root)
    if state is not None and state.phase != IMPORTING:
        return  # the merge's own undo failed and said so: --abort takes it from here
    try:
        _vendor_branch_back(repo, stack.vendor_branch, vendor_before)
    except (UserError, OSError) as e:
        raise _advice(_stopped(failure), e, f"putting {stack.vendor_branch} back") from e
    remove_state(stack.root)


def undo_or_advise(repo: git.Repo, stack: Stack, state: UpgradeState,
                   failure: BaseException) -> None:
    """undo() after `failure`; when the undo fails too, an error saying what to fix and
    that --abort then finishes it (the state is still there)."""
    try:
        undo(repo, stack, state)
    except (UserError, OSError) as e:
        raise _advice(_stopped(failure), e, "undoing it") from e


def _prune_empty(folder: Path, root: Path) -> None:
    while folder != root and folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
        folder = folder.parent


def abort_upgrade(stack: Stack, *, progress: Progress | None = None) -> UpgradeState:
    """Drop the upgrade in progress: the original branch checked out exactly as it was,
    the upgrade branch deleted, the vendor branch put back, the state removed."""
    say = progress or (lambda _m: None)
    repo, _ = open_stack_repo(stack)
    state = require_state(stack)
    current = repo.current_branch()
    if state.phase != IMPORTING and current not in (state.upgrade_branch,
                                                    state.original_branch):
        raise UpgradeError(
            f"HEAD is on {current or 'a detached commit'}, not on the upgrade branch "
            f"{state.upgrade_branch}; stackctl will not touch that working tree.",
            hint=f"Switch back (git switch {state.upgrade_branch}) and run 'stackctl upgrade "
            "--abort' again.")
    if state.phase == IMPORTING:
        say(f"putting {state.vendor_branch} back at {(state.vendor_before or '')[:12]}")
    else:
        say(f"restoring {state.original_branch} at {state.original_commit[:12]}")
    try:
        undo(repo, stack, state)
    except MachineError as e:  # a full disk, a stale lock file: fix it, then abort again
        raise e.then(f"{_ABORT} again") from e
    return state


def upgrade_status(stack: Stack) -> UpgradeState | None:
    """The upgrade in progress, or None."""
    return load_state(stack.root)
