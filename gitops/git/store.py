"""The repository's object store after an operation that writes many objects (an upgrade
writes a whole release, its merged tree and snapshots): what it wrote is packed, and what
it wrote and dropped again is deleted, so that no run leaves thousands of loose objects
behind (git then warns to run `git gc` on every command).

    before = loose_objects(repo)
    ... write objects, move refs ...
    tidy(repo, before, created=[dropped commit, ...], keep=[objects still needed, ...])

Only objects that were not in the store before are touched. Those reachable from a ref, a
reflog entry, the index or `keep` go into one new pack; those reachable only from what the
operation `created` and dropped are deleted; any other new object (written meanwhile by
another process) is left as it is.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from pathlib import Path

import pygit2

from gitops.git.repo import Repo

_HEX = frozenset("0123456789abcdef")


def _objects_dir(repo: Repo) -> Path:
    return Path(repo.raw.path) / "objects"


def loose_objects(repo: Repo) -> set[str]:
    """The ids of the loose objects in the store."""
    out: set[str] = set()
    root = _objects_dir(repo)
    try:
        folders = list(os.scandir(root))
    except OSError:
        return out
    for d in folders:
        if len(d.name) == 2 and set(d.name) <= _HEX and d.is_dir():
            try:
                out.update(d.name + f.name for f in os.scandir(d.path) if len(f.name) == 38)
            except OSError:
                continue
    return out


def _closure(repo: Repo, roots: Iterable[str], within: set[str]) -> set[str]:
    """The objects of `within` reachable from `roots` (never leaving `within`: an object
    that was already in the store holds only objects that were too)."""
    seen: set[str] = set()
    todo = [r for r in roots if r in within]
    while todo:
        oid = todo.pop()
        if oid in seen:
            continue
        seen.add(oid)
        try:
            obj = repo.raw[oid]
        except (KeyError, ValueError):
            continue
        nxt: list[str] = []
        if isinstance(obj, pygit2.Commit):
            nxt = [str(obj.tree_id), *(str(p) for p in obj.parent_ids)]
        elif isinstance(obj, pygit2.Tree):
            nxt = [str(e.id) for e in obj]
        elif isinstance(obj, pygit2.Tag):
            nxt = [str(obj.target)]
        todo += [x for x in nxt if x in within and x not in seen]
    return seen


def _live_roots(repo: Repo) -> set[str]:
    roots: set[str] = set()
    for name in repo.raw.references:
        ref = repo.raw.references[name]
        try:
            roots.add(str(ref.resolve().target))
            roots.update(str(e.oid_new) for e in ref.log())
        except (KeyError, ValueError, pygit2.GitError):
            continue
    with contextlib.suppress(pygit2.GitError):
        roots.update(str(e.id) for e in repo.raw.index)
    return roots


def tidy(repo: Repo, before: set[str], *, created: Iterable[str] = (),
         keep: Iterable[str] = ()) -> tuple[int, int]:
    """Pack the loose objects written since `before` that are still reachable, delete
    those only the dropped `created` objects reached; (packed, deleted)."""
    new = loose_objects(repo) - before
    if not new:
        return 0, 0
    live = _closure(repo, [*_live_roots(repo), *keep], new)
    dead = _closure(repo, created, new) - live
    packed = 0
    if live:
        pb = pygit2.PackBuilder(repo.raw)
        pb.set_threads(os.cpu_count() or 1)  # delta search on every core
        for oid in sorted(live):
            pb.add(pygit2.Oid(hex=oid))
        pb.write(str(_objects_dir(repo) / "pack"))
        packed = len(live)
    root = _objects_dir(repo)
    for oid in live | dead:
        try:
            (root / oid[:2] / oid[2:]).unlink()
        except OSError:
            continue  # another process packed or removed it meanwhile
    for oid in {o[:2] for o in live | dead}:
        try:
            (root / oid).rmdir()
        except OSError:
            continue  # not empty: other objects live there
    return packed, len(dead)


__all__ = ["loose_objects", "tidy"]
