"""gitops.git.store.tidy: what an operation wrote is packed when still reachable and deleted when
only what it dropped reached it; objects it did not write are never touched."""

from __future__ import annotations

from pathlib import Path

import pygit2

from gitops import git
from gitops.git.store import loose_objects, tidy


def _repo(tmp_path: Path) -> git.Repo:
    raw = pygit2.init_repository(str(tmp_path / "r"), initial_head="main")
    return git.Repo(raw)


def test_reachable_new_objects_are_packed_and_dropped_ones_deleted(
    tmp_path: Path, git_env: Path,
) -> None:
    repo = _repo(tmp_path)
    first = repo.commit_files({"a.txt": (git.MODE_FILE, b"a\n")}, "first")
    repo.set_branch("main", first)
    before = loose_objects(repo)
    stranger = str(repo.raw.create_blob(b"written meanwhile by someone else\n"))
    kept = repo.commit_files({"a.txt": (git.MODE_FILE, b"a\n"),
                              "b.txt": (git.MODE_FILE, b"b\n")}, "second", parents=[first])
    repo.set_branch("main", kept)
    dropped_tree = repo.write_tree({"c.txt": (git.MODE_FILE, b"only in a dry run\n")})
    new = loose_objects(repo) - before
    assert len(new) == 6  # stranger; commit, tree, blob b; tree, blob c

    packed, deleted = tidy(repo, before, created=[dropped_tree])

    assert (packed, deleted) == (3, 2)
    assert loose_objects(repo) - before == {stranger}
    assert repo.read_tree(kept)["b.txt"][1] == b"b\n"  # from the pack now
    assert dropped_tree not in pygit2.Repository(repo.raw.path)  # a fresh view of the store


def test_nothing_new_is_nothing_to_do(tmp_path: Path, git_env: Path) -> None:
    repo = _repo(tmp_path)
    assert tidy(repo, loose_objects(repo)) == (0, 0)
