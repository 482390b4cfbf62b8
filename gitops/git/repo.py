"""`Repo`: a git repository through pygit2, with plain-value methods."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pygit2
from pygit2.enums import CheckoutStrategy, FileStatus, ObjectType

from gitops.errors import DirtyWorktreeError, GitError
from gitops.git.base import CommitInfo, signature, translated
from gitops.git.files import MODE_EXEC, MODE_FILE, MODE_LINK, MODE_TREE, Files


class Repo:
    """A git repository, through pygit2, with plain-value methods."""

    def __init__(self, raw: pygit2.Repository) -> None:
        self.raw = raw

    # -- where -----------------------------------------------------------------------------
    @property
    def workdir(self) -> Path | None:
        return Path(self.raw.workdir) if self.raw.workdir else None

    @property
    def root(self) -> Path:
        """The work tree root; raises GitError for a bare repository."""
        if self.workdir is None:
            raise GitError(f"{self.raw.path} is a bare repository; it has no working tree")
        return self.workdir.resolve()

    @property
    def is_bare(self) -> bool:
        return bool(self.raw.is_bare)

    # -- refs ------------------------------------------------------------------------------
    def current_branch(self) -> str | None:
        """The checked-out branch's short name (also for an unborn branch); None if detached."""
        if self.raw.head_is_detached:
            return None
        target = self.raw.references["HEAD"].target
        name = str(target)
        return name.removeprefix("refs/heads/")

    def head_commit(self) -> str | None:
        """The commit HEAD points to, or None in a repository without commits."""
        if self.raw.head_is_unborn:
            return None
        return str(self.raw.head.target)

    def branch_commit(self, branch: str) -> str | None:
        ref = self.raw.references.get(f"refs/heads/{branch}")
        if ref is None:
            return None
        return str(ref.resolve().target)

    def branches(self) -> dict[str, str]:
        """Local branches: name -> commit id."""
        out: dict[str, str] = {}
        for name in self.raw.branches.local:
            br = self.raw.branches.local[name]
            out[name] = str(br.target)
        return out

    def tags(self) -> dict[str, str]:
        """Tags: name -> the commit id they point to (annotated tags peeled)."""
        out: dict[str, str] = {}
        for ref in self.raw.references.iterator():
            if not ref.name.startswith("refs/tags/"):
                continue
            try:
                commit = ref.peel(pygit2.Commit)
            except (pygit2.GitError, ValueError, pygit2.InvalidSpecError):
                continue  # a tag of a tree or blob is not a release
            out[ref.name.removeprefix("refs/tags/")] = str(commit.id)
        return out

    def set_branch(self, branch: str, commit: str, *, message: str = "stackctl") -> None:
        """Create or move a branch (without touching HEAD or the working tree)."""
        with translated(f"cannot set branch {branch}", git_dir=self.raw.path):
            self.raw.create_reference_direct(
                f"refs/heads/{branch}", pygit2.Oid(hex=commit), True, message=message
            )

    def create_branch(self, branch: str, commit: str) -> None:
        """Create a branch; GitError if it exists."""
        if self.branch_commit(branch) is not None:
            raise GitError(f"branch {branch} already exists.",
                           hint="Choose another name or delete the branch first.")
        self.set_branch(branch, commit)

    def delete_branch(self, branch: str) -> None:
        with translated(f"cannot delete branch {branch}", git_dir=self.raw.path):
            self.raw.references.delete(f"refs/heads/{branch}")

    def resolve(self, rev: str) -> str:
        """A commit id for a revision (branch, tag, commit id or prefix, HEAD~1...)."""
        try:
            obj = self.raw.revparse_single(rev)
            return str(obj.peel(pygit2.Commit).id)
        except (pygit2.GitError, KeyError, ValueError, pygit2.InvalidSpecError) as e:
            raise GitError(f"no commit {rev!r} in {self.raw.path}") from e

    def has_commit(self, commit: str) -> bool:
        try:
            obj = self.raw.get(commit)
        except (ValueError, pygit2.GitError):
            return False
        return obj is not None and obj.type == ObjectType.COMMIT

    def commit_info(self, commit: str) -> CommitInfo:
        c = self._commit(commit)
        return CommitInfo(
            id=str(c.id), message=c.message, parents=tuple(str(p) for p in c.parent_ids),
            tree=str(c.tree_id), author=f"{c.author.name} <{c.author.email}>",
            time=int(c.commit_time),
        )

    def log(self, commit: str) -> list[CommitInfo]:
        """The first-parent history from `commit` back, newest first."""
        out: list[CommitInfo] = []
        current: str | None = commit
        while current is not None:
            info = self.commit_info(current)
            out.append(info)
            current = info.parents[0] if info.parents else None
        return out

    def merge_base(self, a: str, b: str) -> str | None:
        with translated(f"cannot find the merge base of {a} and {b}", git_dir=self.raw.path):
            base = self.raw.merge_base(pygit2.Oid(hex=self.resolve(a)),
                                       pygit2.Oid(hex=self.resolve(b)))
        return str(base) if base is not None else None

    # -- trees -----------------------------------------------------------------------------
    def _commit(self, commit: str) -> pygit2.Commit:
        try:
            obj = self.raw.get(commit) if len(commit) == 40 else None
            if obj is None:
                obj = self.raw.revparse_single(commit)
            c = obj.peel(pygit2.Commit)
        except (pygit2.GitError, KeyError, ValueError, pygit2.InvalidSpecError) as e:
            raise GitError(f"no commit {commit!r} in {self.raw.path}") from e
        return c

    def _subtree(self, tree: pygit2.Tree, prefix: str) -> pygit2.Tree | None:
        if not prefix:
            return tree
        try:
            entry = tree[prefix]
        except KeyError:
            return None
        obj = self.raw[entry.id]
        return obj if isinstance(obj, pygit2.Tree) else None

    def commit_tree_id(self, commit: str, prefix: str = "") -> str | None:
        """The id of a commit's tree, or of its subtree at `prefix` (None if absent)."""
        sub = self._subtree(self._commit(commit).tree, prefix.strip("/"))
        return str(sub.id) if sub is not None else None

    def read_tree(self, commit: str, prefix: str = "", *, with_content: bool = True) -> Files:
        """A commit's files (or those under `prefix`, relative to it) as
        {path: (mode, bytes)}. With with_content=False the bytes are the blob ids (hex,
        ASCII), which is enough to compare trees quickly."""
        sub = self._subtree(self._commit(commit).tree, prefix.strip("/"))
        out: Files = {}
        if sub is not None:
            self._walk(sub, "", out, with_content)
        return out

    def read_blob(self, blob_id: str) -> bytes:
        """The content of a blob, by the id read_tree(with_content=False) gives."""
        with translated(f"cannot read the blob {blob_id} in {self.raw.path}"):
            obj = self.raw[blob_id]
        if not isinstance(obj, pygit2.Blob):
            raise GitError(f"{blob_id} is not a blob in {self.raw.path}")
        data: bytes = obj.read_raw()
        return data

    def tree_entries(self, tree_id: str) -> dict[str, tuple[int, str]]:
        """One level of a tree: name -> (mode, object id)."""
        with translated(f"cannot read the tree {tree_id}"):
            tree = self.raw[tree_id]
            if not isinstance(tree, pygit2.Tree):
                raise GitError(f"{tree_id} is not a tree")
            return {str(e.name): (int(e.filemode), str(e.id)) for e in tree}

    def read_tree_id(self, tree_id: str, *, with_content: bool = True) -> Files:
        out: Files = {}
        tree = self.raw[tree_id]
        if not isinstance(tree, pygit2.Tree):
            raise GitError(f"{tree_id} is not a tree")
        self._walk(tree, "", out, with_content)
        return out

    def _walk(self, tree: pygit2.Tree, base: str, out: Files, with_content: bool) -> None:
        for entry in tree:
            path = f"{base}{entry.name}"
            mode = int(entry.filemode)
            if mode == MODE_TREE:
                sub = self.raw[entry.id]
                assert isinstance(sub, pygit2.Tree)
                self._walk(sub, path + "/", out, with_content)
            elif mode in (MODE_FILE, MODE_EXEC, MODE_LINK):
                data = self.raw[entry.id].read_raw() if with_content else str(entry.id).encode()
                out[path] = (mode, data)
            # submodules (commit entries) are not files of the tree; they are skipped

    def blob_size(self, blob_id: str) -> int:
        """A blob's size, read from its object header without loading its content."""
        with translated(f"cannot read the object {blob_id}", git_dir=self.raw.path):
            return int(self.raw.odb.read_header(pygit2.Oid(hex=blob_id))[1])

    def write_tree(self, files: Mapping[str, tuple[int, bytes]]) -> str:
        """Write blobs and trees for {path: (mode, bytes)}; return the root tree id."""
        nested: dict[str, Any] = {}
        for path, (mode, data) in files.items():
            parts = [p for p in path.split("/") if p]
            if not parts or any(p in (".", "..", ".git") for p in parts):
                raise GitError(f"refusing to write the path {path!r} into a git tree")
            node = nested
            for part in parts[:-1]:
                child = node.setdefault(part, {})
                if not isinstance(child, dict):
                    raise GitError(f"{path!r} is both a file and a folder")
                node = child
            if isinstance(node.get(parts[-1]), dict):
                raise GitError(f"{path!r} is both a file and a folder")
            node[parts[-1]] = (mode, data)
        with translated("cannot write a tree", git_dir=self.raw.path):
            return str(self._write_nested(nested))

    def _write_nested(self, node: dict[str, Any]) -> pygit2.Oid:
        tb = self.raw.TreeBuilder()
        for name, value in node.items():
            if isinstance(value, dict):
                tb.insert(name, self._write_nested(value), MODE_TREE)
            else:
                mode, data = value
                tb.insert(name, self.raw.create_blob(data), mode)
        oid: pygit2.Oid = tb.write()
        return oid

    def replace_subtree(self, base_tree: str | None, prefix: str, subtree: str | None) -> str:
        """A tree equal to `base_tree` with the folder `prefix` replaced by the tree
        `subtree` (None removes it). Only the trees along `prefix` are rewritten."""
        parts = [p for p in prefix.split("/") if p]
        if not parts:
            raise GitError("an empty path cannot be replaced")
        with translated(f"cannot replace {prefix} in a tree", git_dir=self.raw.path):
            base = self.raw[base_tree] if base_tree else None
            new = self._replace(base, parts, pygit2.Oid(hex=subtree) if subtree else None)
        if new is None:  # everything was removed: an empty tree
            return str(self.raw.TreeBuilder().write())
        return str(new)

    def _replace(self, tree: Any, parts: list[str], leaf: pygit2.Oid | None) -> pygit2.Oid | None:
        tb = self.raw.TreeBuilder(tree) if tree is not None else self.raw.TreeBuilder()
        name = parts[0]
        if len(parts) == 1:
            new: pygit2.Oid | None = leaf
        else:
            existing = tb.get(name)
            child = (self.raw[existing.id]
                     if existing is not None and int(existing.filemode) == MODE_TREE else None)
            new = self._replace(child, parts[1:], leaf)
        if tb.get(name) is not None:
            tb.remove(name)
        if new is not None:
            tb.insert(name, new, MODE_TREE)
        if len(tb) == 0:
            return None
        oid: pygit2.Oid = tb.write()
        return oid

    def replace_file(self, base_tree: str, path: str, data: bytes | None,
                     mode: int = MODE_FILE) -> str:
        """A tree equal to `base_tree` with one file written (or removed when data is None)."""
        parts = [p for p in path.split("/") if p]
        with translated(f"cannot write {path} into a tree", git_dir=self.raw.path):
            return str(self._replace_file(self.raw[base_tree], parts, data, mode))

    def _replace_file(self, tree: Any, parts: list[str], data: bytes | None, mode: int) -> Any:
        tb = self.raw.TreeBuilder(tree) if tree is not None else self.raw.TreeBuilder()
        name = parts[0]
        existing = tb.get(name)
        if len(parts) == 1:
            if existing is not None:
                tb.remove(name)
            if data is not None:
                tb.insert(name, self.raw.create_blob(data), mode)
        else:
            child = (self.raw[existing.id]
                     if existing is not None and int(existing.filemode) == MODE_TREE else None)
            sub = self._replace_file(child, parts[1:], data, mode)
            if existing is not None:
                tb.remove(name)
            sub_tree = self.raw[sub] if sub is not None else None
            if isinstance(sub_tree, pygit2.Tree) and len(sub_tree) > 0:
                tb.insert(name, sub, MODE_TREE)
        return tb.write()

    # -- commits ---------------------------------------------------------------------------
    def create_commit(self, tree: str, message: str, parents: list[str] | tuple[str, ...],
                      *, branch: str | None = None) -> str:
        """Create a commit with explicit parents. With `branch`, the branch is created or
        moved to it (HEAD and the working tree are not touched)."""
        author = signature(self.raw, kind="AUTHOR")
        committer = signature(self.raw, kind="COMMITTER")
        with translated("cannot create a commit", git_dir=self.raw.path):
            oid = self.raw.create_commit(
                None, author, committer, message, pygit2.Oid(hex=tree),
                [pygit2.Oid(hex=p) for p in parents],
            )
        if branch is not None:
            self.set_branch(branch, str(oid), message=message.split("\n", 1)[0])
        return str(oid)

    def commit_files(self, files: Mapping[str, tuple[int, bytes]], message: str,
                     *, parents: list[str] | None = None, branch: str | None = None) -> str:
        """Write `files` as a tree and commit it."""
        return self.create_commit(self.write_tree(files), message, parents or [], branch=branch)

    # -- working tree ----------------------------------------------------------------------
    def dirty_paths(self, *, untracked_under: tuple[str, ...] = ()) -> list[str]:
        """Tracked files whose working tree or index content differs from HEAD, plus
        untracked files under any of the `untracked_under` folders."""
        prefixes = tuple(p.rstrip("/") + "/" for p in untracked_under)
        with translated("cannot read the status of the working tree", git_dir=self.raw.path):
            status = self.raw.status(untracked_files="all" if prefixes else "no")
        out = []
        for path, flags in status.items():
            if flags == FileStatus.CURRENT or flags & FileStatus.IGNORED:
                continue
            if flags == FileStatus.WT_NEW and not path.startswith(prefixes):
                continue
            out.append(path)
        return sorted(out)

    def is_dirty(self) -> bool:
        return bool(self.dirty_paths())

    def require_clean(self, *, untracked_under: tuple[str, ...] = (), action: str) -> None:
        """DirtyWorktreeError naming the files when the working tree is not clean."""
        dirty = self.dirty_paths(untracked_under=untracked_under)
        if dirty:
            shown = ", ".join(dirty[:10]) + (f" and {len(dirty) - 10} more"
                                             if len(dirty) > 10 else "")
            raise DirtyWorktreeError(
                f"the working tree of {self.root} has uncommitted changes ({shown}), "
                f"so stackctl will not {action}.",
                hint="Commit or discard them (git commit / git checkout -- FILE) and run the "
                "command again.",
            )

    def checkout(self, commit: str, *, branch: str | None = None) -> None:
        """Update the working tree and index to `commit` (safely: files with local
        changes are never overwritten), then point `branch` (created or moved; default:
        the current branch) and HEAD at it."""
        target = self._commit(commit)
        with translated(f"cannot check out {commit}", git_dir=self.raw.path):
            strategy = CheckoutStrategy.SAFE | CheckoutStrategy.RECREATE_MISSING
            # The baseline is HEAD's tree (libgit2's default), so files deleted in the
            # target are removed and files changed locally make the checkout fail.
            checkout_tree: Any = self.raw.checkout_tree  # untyped in pygit2
            checkout_tree(target.tree, strategy=strategy)
        name = branch or self.current_branch()
        if name is None:
            with translated(f"cannot detach HEAD at {commit}", git_dir=self.raw.path):
                self.raw.set_head(target.id)
            return
        self.set_branch(name, str(target.id), message=f"stackctl: {target.message[:60]}")
        with translated(f"cannot switch HEAD to {name}", git_dir=self.raw.path):
            self.raw.set_head(f"refs/heads/{name}")

    def checkout_branch(self, branch: str) -> str:
        """Switch to an existing branch, updating the working tree and index (safely)."""
        commit = self.branch_commit(branch)
        if commit is None:
            raise GitError(f"there is no branch {branch}.",
                           hint="List the branches with 'git branch'.")
        self.checkout(commit, branch=branch)
        return commit

    def reset_index(self, commit: str) -> None:
        """Make the index equal a commit's tree (HEAD and the working tree stay), as
        `git reset --mixed` does without moving the branch."""
        target = self._commit(commit)
        with translated("cannot reset the index", git_dir=self.raw.path):
            index = self.raw.index
            index.read_tree(target.tree)
            index.write()

    def add_and_commit_all(self, message: str) -> str:
        """Stage every file of the working tree (respecting .gitignore) and commit it on
        the current branch. Used by `stackctl init` for the initial commit."""
        with translated("cannot commit the working tree", git_dir=self.raw.path):
            index = self.raw.index
            index.add_all()
            index.write()
            tree = str(index.write_tree())
        parents = [h] if (h := self.head_commit()) else []
        commit = self.create_commit(tree, message, parents)
        name = self.current_branch() or "main"
        self.set_branch(name, commit, message=message.split("\n", 1)[0])
        with translated(f"cannot switch HEAD to {name}", git_dir=self.raw.path):
            self.raw.set_head(f"refs/heads/{name}")
        return commit

    def is_ignored(self, path: str) -> bool:
        return bool(self.raw.path_is_ignored(path))
