"""The render cache's key, from what git already knows.

A render's inputs are every file below each folder the kustomization graph reaches, the
files it references outside them, and the referenced paths that do not exist (`Reach`,
found by `kustomize.walk`). The key is a sha256 over the kustomize binary's identity and,
per input file, its path relative to the cluster folder and the git blob id of its content:

- in the working tree (`WorktreeInputs`), the blob id the git index vouches for when the
  file's stat data matches its entry (gitops.gitindex, git's own rule, racy git included),
  else the blob id of the content read from disk (changed, staged, untracked and ignored
  files, and every file outside git);
- at a commit (`CommitInputs`), the blob ids of the commit's tree, read through pygit2
  without exporting anything.

Both give the same key for the same content, so `render --ref` and working-tree renders
share entries. A file reached through a symbolic link is named with the link's target as
well, so retargeting a link is a change. Where the inputs cannot be named safely (a link
out of the repository at a commit, a special file), `Uncacheable` is raised and the render
runs without the cache.

The walk itself (parsing every kustomization) is skipped on a cached render: the reaches
of earlier walks are remembered per cluster folder (`remembered`), and a reach's key is
computed directly. This is exact: the walk reads only below the reached folders, the
referenced files and the missing paths, all of which the key covers, so an entry found
under a remembered reach is the render of inputs the walk would reach again.
"""

from __future__ import annotations

# Paths are plain strings here, and os.path/os.scandir the tools: this runs on every cached
# render, over every input file (ruff's PTH rules are off for that reason).
# ruff: noqa: PTH116, PTH118
import contextlib
import hashlib
import json
import os
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from gitops import gitindex
from gitops.paths import cache_dir, write_atomic

if TYPE_CHECKING:
    from gitops.git import Repo
    from gitops.kustomize import Inputs

FORMAT = 2  # bump when the key's layout changes
_KEEP_REACHES = 4  # reaches remembered per cluster folder (branches, an upgrade's sides)


class Uncacheable(Exception):
    """The inputs cannot be named safely for the cache: render them without it."""


@dataclass(frozen=True)
class Reach:
    """What a walk reached, relative to the cluster folder ('/'-separated): the outermost
    folders (every file below them is an input), referenced files outside them, and
    referenced paths that are neither a folder nor a file."""

    dirs: tuple[str, ...]
    files: tuple[str, ...] = ()
    probes: tuple[str, ...] = ()

    @classmethod
    def of(cls, inputs: Inputs) -> Reach:
        root = str(inputs.root)
        tops = outermost(str(d) for d in inputs.directories)
        extra = sorted(str(f) for f in inputs.extra if not _below(str(f), tops))

        def rel(p: str) -> str:
            return Path(os.path.relpath(p, root)).as_posix()

        return cls(dirs=tuple(rel(d) for d in tops), files=tuple(rel(f) for f in extra),
                   probes=tuple(rel(str(p)) for p in inputs.probes))

    def as_json(self) -> dict[str, list[str]]:
        return {"dirs": list(self.dirs), "files": list(self.files), "probes": list(self.probes)}


def outermost(dirs: Iterator[str] | Sequence[str]) -> list[str]:
    """The folders not below another one of them, sorted (as kustomize.walk lists files)."""
    tops: list[str] = []
    for d in sorted(dirs):
        if not _below(d, tops):
            tops.append(d)
    return tops


def _below(p: str, tops: Sequence[str]) -> bool:
    return any(p == t or p.startswith(t.rstrip("/") + "/") for t in tops)


@dataclass(frozen=True)
class Keyed:
    """A render's key, and what the `source` header line is computed from: (path in the
    repository, blob id) of each input inside it, and whether any input is outside it."""

    key: str
    reach: Reach
    in_repo: tuple[tuple[str, str], ...] = ()
    outside: bool = False


class _Hasher:
    def __init__(self, kustomize_id: str, flags: Sequence[str]) -> None:
        self.lines: list[str] = [f"stackctl-render-key/{FORMAT}\0{kustomize_id}\0"
                                 f"{' '.join(flags)}\n"]

    def add(self, kind: str, rel: str, ident: str = "") -> None:
        self.lines.append(f"{kind}\0{rel}\0{ident}\n")

    def digest(self) -> str:
        head, rest = self.lines[0], sorted(self.lines[1:])
        h = hashlib.sha256(head.encode("utf-8", "surrogateescape"))
        h.update("".join(rest).encode("utf-8", "surrogateescape"))
        return h.hexdigest()


# ---------------------------------------------------------------------------------------
# The working tree


class WorktreeInputs:
    """Input identities of a working tree (inside git or not)."""

    def __init__(self, start: Path) -> None:
        self.git = gitindex.find_git_dir(start)
        index = gitindex.read_index(self.git) if self.git is not None else None
        if index is not None and self.git is not None and gitindex.filters_possible(
                self.git, index):
            index = None
        self.index = index
        self.oid_size = index.oid_size if index is not None else 20
        top = str(self.git.worktree) if self.git is not None else None
        self.top = top
        self.real_top = os.path.realpath(top) if top is not None else None

    def label(self, root: Path) -> str:
        """The cluster folder as reaches are remembered: its path in the repository (shared
        by every worktree and by renders at a commit), else its absolute path."""
        r = str(root)
        if self.top is not None and (r == self.top or r.startswith(self.top + os.sep)):
            return Path(os.path.relpath(r, self.top)).as_posix()
        return r

    def key(self, root: Path, reach: Reach, *, kustomize_id: str,
            flags: Sequence[str]) -> Keyed:
        h = _Hasher(kustomize_id, flags)
        in_repo: list[tuple[str, str]] = []
        outside = False
        base = str(root)
        for rel in reach.dirs:
            h.add("d", rel)
        for rel, path, real in self._scan(base, reach.dirs):
            ident, repo_path = self._ident(rel, path, real)
            h.add("f", rel, ident)
            if repo_path is None:
                outside = True
            else:
                in_repo.append((repo_path, ident.split("@", 1)[0]))
        for rel in reach.files:
            path = os.path.normpath(os.path.join(base, rel))
            ident, repo_path = self._ident(rel, path, os.path.realpath(path))
            h.add("x", rel, ident)
            if repo_path is None:
                outside = True
            else:
                in_repo.append((repo_path, ident.split("@", 1)[0]))
        for rel in reach.probes:
            h.add("p", rel, _kind(os.path.normpath(os.path.join(base, rel))))
        return Keyed(key=h.digest(), reach=reach, in_repo=tuple(sorted(in_repo)),
                     outside=outside)

    def _scan(self, base: str, dirs: Sequence[str]) -> Iterator[tuple[str, str, str]]:
        """(path relative to `base`, path, real path) of every file below `dirs`, as
        kustomize.walk lists them: links followed, `.git` skipped, a folder reached twice
        through links listed once (per outermost folder)."""
        for d in dirs:
            top = os.path.normpath(os.path.join(base, d))
            seen: set[str] = set()
            stack = [(top, d, os.path.realpath(top))]
            while stack:
                path, rel, real = stack.pop()
                if real in seen:
                    continue
                seen.add(real)
                try:
                    entries = sorted(os.scandir(path), key=lambda e: e.name)
                except OSError:
                    continue
                subdirs = []
                for e in entries:
                    erel = e.name if rel == "." else f"{rel}/{e.name}"
                    link = e.is_symlink()
                    ereal = os.path.realpath(e.path) if link else f"{real}/{e.name}"
                    try:
                        is_dir = e.is_dir()
                    except OSError:
                        is_dir = False
                    if is_dir:
                        if e.name != ".git":
                            subdirs.append((e.path, erel, ereal))
                    else:
                        yield erel, e.path, ereal
                stack.extend(reversed(subdirs))

    def _ident(self, rel: str, path: str, real: str) -> tuple[str, str | None]:
        """(identity, path in the repository or None) of one input file."""
        try:
            st = os.stat(path)
        except OSError:
            st = None
        repo_path = None
        if self.real_top is not None and (real.startswith(self.real_top + os.sep)):
            repo_path = real[len(self.real_top) + 1:].replace(os.sep, "/")
        if st is None:
            ident = "-"  # dangling link or unreadable: its absence is part of the key
        elif not stat.S_ISREG(st.st_mode):
            raise Uncacheable(f"{path} is not a regular file")
        else:
            oid = None
            if self.index is not None and repo_path is not None:
                oid = self.index.blob_id(repo_path, st)
            if oid is None:
                try:
                    with open(path, "rb") as f:  # noqa: PTH123 (a str path, on the hot path)
                        oid = gitindex.blob_id(f.read(), self.oid_size)
                except OSError:
                    oid = "-"
            ident = oid
        logical = os.path.normpath(path)
        if logical != real:  # reached through a link: the target is part of the identity
            where = repo_path if repo_path is not None else real
            if self.top is None or not logical.startswith(self.top + os.sep) or \
                    logical[len(self.top) + 1:].replace(os.sep, "/") != where:
                ident = f"{ident}@{where}"
        return ident, repo_path

    def source(self, keyed: Keyed) -> str | None:
        """The `source` of the header: HEAD's commit, with '+changes' when an input differs
        from HEAD's version; None outside git or before the first commit. Remembered per
        (HEAD, inputs) so that a cached render needs no pygit2."""
        if self.git is None:
            return None
        head = gitindex.head_commit(self.git)
        if head is None:
            from gitops.git import head_commit_of

            head = head_commit_of(self.git.worktree)
            if head is None:
                return None
        if keyed.outside or not keyed.in_repo:
            return f"{head}+changes"
        h = hashlib.sha256(head.encode())
        for p, oid in keyed.in_repo:
            h.update(f"{p}\0{oid}\n".encode("utf-8", "surrogateescape"))
        memo = cache_root() / "heads" / f"{h.hexdigest()}.txt"
        try:
            same = memo.read_text(encoding="utf-8") == "same"
        except OSError:
            from gitops.git import blobs_match

            same = blobs_match(self.git.worktree, head, dict(keyed.in_repo))
            with contextlib.suppress(OSError):
                write_atomic(memo, "same" if same else "changed")
        return head if same else f"{head}+changes"


def _kind(path: str) -> str:
    try:
        st = os.stat(path)
    except OSError:
        return "-"
    return "d" if stat.S_ISDIR(st.st_mode) else "f" if stat.S_ISREG(st.st_mode) else "o"


# ---------------------------------------------------------------------------------------
# A commit


@dataclass
class CommitInputs:
    """Input identities of a cluster at a commit, read from git's objects. `cluster` is
    the cluster folder's path in the repository."""

    repo: Repo
    commit: str
    _trees: dict[str, dict[str, tuple[int, str]]] = field(default_factory=dict)
    _root: str = ""

    def __post_init__(self) -> None:
        tree = self.repo.commit_tree_id(self.commit)
        assert tree is not None
        self._root = tree

    def _entries(self, tree: str) -> dict[str, tuple[int, str]]:
        got = self._trees.get(tree)
        if got is None:
            got = self._trees[tree] = self.repo.tree_entries(tree)
        return got

    def resolve(self, path: str, hops: int = 0) -> tuple[int, str, str] | None:
        """(mode, id, path) of what `path` names in the commit, links followed; None when
        nothing is there. Raises Uncacheable for a link out of the repository."""
        from gitops.git import MODE_LINK, MODE_TREE

        parts = [p for p in path.split("/") if p and p != "."]
        tree, done = self._root, list[str]()
        if not parts:
            return MODE_TREE, tree, ""
        for i, name in enumerate(parts):
            if name == "..":
                raise Uncacheable(f"{path} leaves the repository")
            entry = self._entries(tree).get(name)
            if entry is None:
                return None
            mode, oid = entry
            if mode == MODE_LINK:
                if hops > 40:
                    return None  # a link loop: kustomize finds nothing there either
                target = self.repo.read_blob(oid).decode("utf-8", "surrogateescape")
                joined = os.path.normpath("/".join([*done, target, *parts[i + 1:]]))
                if target.startswith("/") or joined == ".." or joined.startswith("../"):
                    raise Uncacheable(f"the link {'/'.join([*done, name])} leaves the "
                                      "repository")
                return self.resolve(joined, hops + 1)
            done.append(name)
            if i == len(parts) - 1:
                return mode, oid, "/".join(done)
            if mode != MODE_TREE:
                return None
            tree = oid
        return None

    def label(self, cluster: str) -> str:
        return cluster

    def key(self, cluster: str, reach: Reach, *, kustomize_id: str,
            flags: Sequence[str]) -> Keyed:
        from gitops.git import MODE_LINK, MODE_TREE

        h = _Hasher(kustomize_id, flags)
        for rel in reach.dirs:
            h.add("d", rel)
            top = self._path(cluster, rel)
            found = self.resolve(top)
            if found is None or found[0] != MODE_TREE:
                continue
            seen: set[str] = set()
            stack = [(found[1], rel, found[2])]
            while stack:
                tree, drel, real = stack.pop()
                if real in seen:
                    continue
                seen.add(real)
                subdirs = []
                for name, (mode, oid) in sorted(self._entries(tree).items()):
                    erel = name if drel == "." else f"{drel}/{name}"
                    ereal = f"{real}/{name}" if real else name
                    if mode == MODE_LINK:
                        got = self.resolve(ereal)
                        if got is None:
                            h.add("f", erel, "-")
                            continue
                        mode, oid, ereal = got
                    if mode == MODE_TREE:
                        subdirs.append((oid, erel, ereal))
                    elif mode in (0o100644, 0o100755):
                        # Reached through a link: the target is part of the identity.
                        linked = ereal != self._path(cluster, erel)
                        h.add("f", erel, f"{oid}@{ereal}" if linked else oid)
                    # a submodule: `render --ref` exports nothing there
                stack.extend(reversed(subdirs))
        for rel in reach.files:
            wanted = self._path(cluster, rel)
            got = self.resolve(wanted)
            if got is None or got[0] in (MODE_TREE, MODE_LINK):
                h.add("x", rel, "-")
            else:
                h.add("x", rel, got[1] + (f"@{got[2]}" if got[2] != wanted else ""))
        for rel in reach.probes:
            got = self.resolve(self._path(cluster, rel))
            h.add("p", rel, "-" if got is None else "d" if got[0] == MODE_TREE else "f")
        return Keyed(key=h.digest(), reach=reach)

    @staticmethod
    def _path(cluster: str, rel: str) -> str:
        p = os.path.normpath(f"{cluster}/{rel}" if cluster else rel)
        if p == ".." or p.startswith("../") or p.startswith("/"):
            raise Uncacheable(f"{rel} is outside the repository")
        return "" if p == "." else p


# ---------------------------------------------------------------------------------------
# Remembered reaches


def cache_root() -> Path:
    return cache_dir() / "render"


def _reach_file(label: str) -> Path:
    return cache_root() / "reach" / f"{hashlib.sha256(label.encode()).hexdigest()[:40]}.json"


def remembered(label: str) -> list[Reach]:
    """The reaches of earlier walks from this cluster folder, most recent first."""
    try:
        data = json.loads(_reach_file(label).read_text(encoding="utf-8"))
        return [Reach(dirs=tuple(r["dirs"]), files=tuple(r["files"]),
                      probes=tuple(r["probes"])) for r in data["reaches"]]
    except (OSError, ValueError, KeyError, TypeError):
        return []  # none yet, or torn: the walk runs


def remember(label: str, reach: Reach) -> None:
    known = [r for r in remembered(label) if r != reach]
    data = {"label": label, "reaches": [r.as_json() for r in [reach, *known][:_KEEP_REACHES]]}
    with contextlib.suppress(OSError):  # a cache that cannot be written is a lost speed-up
        write_atomic(_reach_file(label), json.dumps(data))
