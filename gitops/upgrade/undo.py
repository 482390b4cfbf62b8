"""`stackctl upgrade --abort`: back to the original branch exactly as it was. The same undo
runs when a start fails or is interrupted after its first branch or working-tree change."""

from __future__ import annotations

from pathlib import Path

from gitops import git
from gitops.errors import GitError, UpgradeError
from gitops.stack import Stack
from gitops.upgrade.common import (
    Progress,
    join,
    open_stack_repo,
    require_state,
    tree_paths,
)
from gitops.upgrade.state import UpgradeState, load_state, remove_state


def undo(repo: git.Repo, stack: Stack, state: UpgradeState) -> None:
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
    repo, _ = open_stack_repo(stack)
    state = require_state(stack)
    current = repo.current_branch()
    if current not in (state.upgrade_branch, state.original_branch):
        raise UpgradeError(
            f"HEAD is on {current or 'a detached commit'}, not on the upgrade branch "
            f"{state.upgrade_branch}; stackctl will not touch that working tree.",
            hint=f"Switch back (git switch {state.upgrade_branch}) and run 'stackctl upgrade "
            "--abort' again.")
    say(f"restoring {state.original_branch} at {state.original_commit[:12]}")
    undo(repo, stack, state)
    return state


def upgrade_status(stack: Stack) -> UpgradeState | None:
    """The upgrade in progress, or None."""
    return load_state(stack.root)
