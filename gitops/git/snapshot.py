"""A git commit's tree, exported through pygit2 into a temporary directory, so that
`render --ref` reads a commit without touching the working tree; and the commit a working
tree render comes from, for the output header. Both read only git objects and the working
tree, as the render needs (no `Repo`: nothing here writes)."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pygit2

from gitops.errors import GitError

_LINK = 0o120000
_SUBMODULE = 0o160000
_EXEC = 0o100755


@dataclass(frozen=True)
class Snapshot:
    commit: str  # the full commit id the ref resolved to
    root: Path  # the deployment repo's folder inside the exported tree


def _open(path: Path) -> pygit2.Repository:
    found = pygit2.discover_repository(str(path))
    if found is None:
        raise GitError(
            f"{path} is not inside a git repository, so --ref has nothing to read.",
            hint="Run 'stackctl render' without --ref to render the working tree, or run "
            "it inside the deployment repo's git checkout.")
    try:
        return pygit2.Repository(found)
    except pygit2.GitError as e:
        raise GitError(f"cannot open the git repository at {found}: {e}.") from e


def resolve_commit(repo: pygit2.Repository, ref: str) -> pygit2.Commit:
    try:
        obj = repo.revparse_single(ref)
        commit = obj.peel(pygit2.Commit)
    except (KeyError, ValueError, pygit2.GitError, pygit2.InvalidSpecError) as e:
        raise GitError(
            f"{ref!r} is not a branch, tag or commit of {repo.workdir or repo.path}.",
            hint="Give a ref that 'git rev-parse' resolves (fetch it first in a shallow "
            "clone).") from e
    assert isinstance(commit, pygit2.Commit)
    return commit


def _export(repo: pygit2.Repository, tree: pygit2.Tree, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    for entry in tree:
        target = dest / str(entry.name)
        if entry.filemode == _SUBMODULE:
            continue  # a submodule's content is not in this repository
        obj = repo[entry.id]
        if isinstance(obj, pygit2.Tree):
            _export(repo, obj, target)
            continue
        data: bytes = obj.read_raw()
        if entry.filemode == _LINK:
            target.symlink_to(data.decode("utf-8", "surrogateescape"))
        else:
            target.write_bytes(data)
            if entry.filemode == _EXEC:
                target.chmod(0o755)


@contextlib.contextmanager
def exported(stack_root: Path, ref: str) -> Iterator[Snapshot]:
    """The tree of `ref` in a temporary directory, removed on exit."""
    repo = _open(stack_root)
    commit = resolve_commit(repo, ref)
    workdir = Path(repo.workdir or stack_root).resolve()
    rel = os.path.relpath(stack_root.resolve(), workdir)
    tmp = Path(tempfile.mkdtemp(prefix="stackctl-ref-"))
    try:
        tree_dir = tmp / "tree"
        try:
            _export(repo, commit.tree, tree_dir)
        except (OSError, pygit2.GitError) as e:
            raise GitError(f"cannot export the tree of {ref} ({commit.id}) to {tmp}: {e}.",
                           hint="Check the free space of the temporary directory.") from e
        root = tree_dir if rel == "." else tree_dir / rel
        yield Snapshot(commit=str(commit.id), root=root)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def worktree_source(root: Path, contents: Sequence[tuple[Path, bytes | None]]) -> str | None:
    """'<commit>' when every input file equals HEAD's version, '<commit>+changes' when some
    input differs from HEAD (uncommitted or untracked), None outside git or before the
    first commit."""
    found = pygit2.discover_repository(str(root))
    if found is None:
        return None
    try:
        repo = pygit2.Repository(found)
        if repo.head_is_unborn or repo.workdir is None:
            return None
        head = repo.head.peel(pygit2.Commit)
    except pygit2.GitError:
        return None
    workdir = Path(repo.workdir).resolve()
    tree = head.tree
    for path, data in contents:
        try:
            rel = path.resolve().relative_to(workdir).as_posix()
            entry = tree[rel]
        except (ValueError, KeyError):
            return f"{head.id}+changes"
        if data is None or str(entry.id) != str(pygit2.hash(data)):
            return f"{head.id}+changes"
    return str(head.id)


def head_commit_of(worktree: Path) -> str | None:
    """The commit HEAD of the repository holding `worktree` points to; None outside git or
    before the first commit."""
    found = pygit2.discover_repository(str(worktree))
    if not found:
        return None
    try:
        repo = pygit2.Repository(found)
        return None if repo.head_is_unborn else str(repo.head.target)
    except pygit2.GitError:
        return None


def blobs_match(worktree: Path, commit: str, blobs: Mapping[str, str]) -> bool:
    """Whether the commit holds each {path in the repository: blob id} (false when a path is
    missing or another object is there): a render's inputs equal to HEAD's versions."""
    found = pygit2.discover_repository(str(worktree))
    if not found:
        return False
    try:
        tree = pygit2.Repository(found)[commit].peel(pygit2.Tree)
        for path, oid in blobs.items():
            try:
                if str(tree[path].id) != oid:
                    return False
            except KeyError:
                return False
    except (pygit2.GitError, KeyError, ValueError):
        return False
    return True
