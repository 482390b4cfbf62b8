"""gitops.git on real repositories: trees, commits, branches, checkout, dirtiness."""

from __future__ import annotations

from pathlib import Path

import pygit2
import pytest

from gitops import git
from gitops.errors import DirtyWorktreeError, GitError
from tests.fixtures.gitrepos import commit_all, repo_status, write_files


@pytest.fixture
def repo(tmp_path: Path, git_env: Path) -> git.Repo:
    root = tmp_path / "r"
    write_files(root, {"a.txt": "a\n", "dir/b.txt": "b\n", "run.sh": ("#!/bin/sh\n", 0o755)})
    commit_all(pygit2.init_repository(str(root), initial_head="main"), "initial")
    return git.open_repo(root)


def test_read_and_write_trees_round_trip_with_modes(repo: git.Repo) -> None:
    head = repo.head_commit()
    assert head is not None
    files = repo.read_tree(head)
    assert files == {"a.txt": (git.MODE_FILE, b"a\n"), "dir/b.txt": (git.MODE_FILE, b"b\n"),
                     "run.sh": (git.MODE_EXEC, b"#!/bin/sh\n")}
    assert repo.write_tree(files) == repo.commit_info(head).tree
    assert repo.read_tree(head, "dir") == {"b.txt": (git.MODE_FILE, b"b\n")}
    assert repo.read_tree(head, "missing") == {}


def test_replace_subtree_and_file_rewrite_only_that_path(repo: git.Repo) -> None:
    head = repo.head_commit() or ""
    base = repo.commit_info(head).tree
    sub = repo.write_tree({"x.yaml": (git.MODE_FILE, b"x")})
    new = repo.replace_subtree(base, "vendor/up", sub)
    new = repo.replace_file(new, "stackctl.lock", b"lock")
    files = repo.read_tree_id(new)
    assert files["vendor/up/x.yaml"] == (git.MODE_FILE, b"x")
    assert files["stackctl.lock"] == (git.MODE_FILE, b"lock")
    assert files["a.txt"] == (git.MODE_FILE, b"a\n")
    removed = repo.replace_subtree(new, "vendor/up", None)
    assert "vendor" not in {p.split("/")[0] for p in repo.read_tree_id(removed)}


def test_write_tree_refuses_unsafe_and_conflicting_paths(repo: git.Repo) -> None:
    with pytest.raises(GitError, match="refusing"):
        repo.write_tree({"../x": (git.MODE_FILE, b"")})
    with pytest.raises(GitError, match="both a file and a folder"):
        repo.write_tree({"a": (git.MODE_FILE, b""), "a/b": (git.MODE_FILE, b"")})


def test_commit_with_explicit_parents_branches_and_merge_base(repo: git.Repo) -> None:
    head = repo.head_commit() or ""
    side = repo.commit_files({"s": (git.MODE_FILE, b"1")}, "side", parents=[head],
                             branch="side")
    assert repo.branch_commit("side") == side
    merge = repo.create_commit(repo.commit_info(side).tree, "merge", [head, side])
    assert repo.commit_info(merge).parents == (head, side)
    assert repo.merge_base(merge, side) == side
    lonely = repo.commit_files({"z": (git.MODE_FILE, b"")}, "orphan")
    assert repo.merge_base(lonely, head) is None
    with pytest.raises(GitError, match="already exists"):
        repo.create_branch("side", head)
    repo.delete_branch("side")
    assert repo.branch_commit("side") is None


def test_commits_use_the_env_author_else_the_fallback(
    repo: git.Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    c = repo.commit_files({"f": (git.MODE_FILE, b"")}, "m")
    assert repo.commit_info(c).author == "Test Author <author@example.com>"
    for var in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL"):
        monkeypatch.delenv(var)
    c = repo.commit_files({"f": (git.MODE_FILE, b"")}, "m")
    assert repo.commit_info(c).author == "stackctl <stackctl@localhost>"
    repo.raw.config["user.name"] = "Repo User"
    repo.raw.config["user.email"] = "repo@example.com"
    c = repo.commit_files({"f": (git.MODE_FILE, b"")}, "m")
    assert repo.commit_info(c).author == "Repo User <repo@example.com>"


def test_dirty_paths_cover_edits_staged_files_and_untracked_files_under_a_folder(
    repo: git.Repo
) -> None:
    root = repo.root
    assert repo.dirty_paths() == [] and not repo.is_dirty()
    (root / "a.txt").write_text("changed\n")
    (root / "new.txt").write_text("untracked\n")
    (root / "vendor/up").mkdir(parents=True)
    (root / "vendor/up/x").write_text("x\n")
    assert repo.dirty_paths() == ["a.txt"]
    assert repo.dirty_paths(untracked_under=("vendor/up",)) == ["a.txt", "vendor/up/x"]
    with pytest.raises(DirtyWorktreeError, match=r"\(a.txt\)"):
        repo.require_clean(action="test")


def test_checkout_updates_the_working_tree_and_index_and_moves_the_branch(
    repo: git.Repo
) -> None:
    head = repo.head_commit() or ""
    files = repo.read_tree(head)
    del files["dir/b.txt"]
    files["c.txt"] = (git.MODE_FILE, b"c\n")
    files["a.txt"] = (git.MODE_FILE, b"a2\n")
    target = repo.create_commit(repo.write_tree(files), "next", [head])
    repo.checkout(target)
    root = repo.root
    assert (root / "c.txt").read_text() == "c\n"
    assert (root / "a.txt").read_text() == "a2\n"
    assert not (root / "dir").exists()
    assert repo.current_branch() == "main" and repo.head_commit() == target
    assert repo_status(root) == {}


def test_checkout_never_overwrites_local_changes(repo: git.Repo) -> None:
    head = repo.head_commit() or ""
    files = repo.read_tree(head)
    files["a.txt"] = (git.MODE_FILE, b"theirs\n")
    target = repo.create_commit(repo.write_tree(files), "next", [head])
    (repo.root / "a.txt").write_text("mine\n")
    with pytest.raises(GitError):
        repo.checkout(target)
    assert (repo.root / "a.txt").read_text() == "mine\n"
    assert repo.head_commit() == head


def test_digest_depends_on_paths_content_and_executable_bit_only() -> None:
    a = {"x": (git.MODE_FILE, b"1"), "y/z": (git.MODE_EXEC, b"2")}
    assert git.digest(a) == git.digest(dict(reversed(list(a.items()))))
    assert git.digest(a) != git.digest({**a, "x": (git.MODE_EXEC, b"1")})
    assert git.digest(a) != git.digest({**a, "x": (git.MODE_FILE, b"3")})
    assert git.digest(a) != git.digest({"x2": a["x"], "y/z": a["y/z"]})
    assert git.digest({}) == git.digest({})


def test_opening_outside_a_repository_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(GitError, match="not inside a git repository"):
        git.open_repo(tmp_path)


def test_tags_are_peeled_to_commits(repo: git.Repo) -> None:
    head = repo.head_commit() or ""
    repo.raw.create_tag("v1", pygit2.Oid(hex=head), pygit2.enums.ObjectType.COMMIT,
                        pygit2.Signature("a", "b@c"), "annotated")
    repo.raw.references.create("refs/tags/v2", pygit2.Oid(hex=head))
    assert repo.tags() == {"v1": head, "v2": head}


def test_checkout_branch_switches_head_and_files(repo: git.Repo) -> None:
    head = repo.head_commit() or ""
    files = repo.read_tree(head)
    files["only-on-side.txt"] = (git.MODE_FILE, b"side\n")
    repo.create_commit(repo.write_tree(files), "side", [head], branch="side")
    repo.checkout_branch("side")
    assert repo.current_branch() == "side"
    assert (repo.root / "only-on-side.txt").read_text() == "side\n"
    repo.checkout_branch("main")
    assert repo.current_branch() == "main" and repo.head_commit() == head
    assert not (repo.root / "only-on-side.txt").exists()
    assert repo_status(repo.root) == {}
    with pytest.raises(GitError, match="there is no branch nope"):
        repo.checkout_branch("nope")
