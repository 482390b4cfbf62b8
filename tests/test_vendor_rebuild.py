"""A fresh clone may lack the vendor branch: stackctl rebuilds it from the lock."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pygit2
import pytest

from gitops import git
from gitops.errors import ConfigError, SourceError
from gitops.stack import load_stack
from gitops.vendor import (
    ensure_vendor_branch,
    import_release,
    pristine_commit,
    rebuild_vendor_branch,
    vendor_status,
)
from tests.fixtures.gitrepos import AUTHOR, release_folder, tarball

Releases = dict[str, dict[str, "str | bytes | tuple[str | bytes, int]"]]


def _squashed_clone(root: Path, dest: Path) -> Path:
    """A repository whose main holds the same files as `root`'s HEAD in one parentless
    commit: a clone that has neither the vendor branch nor the import commits."""
    src = pygit2.Repository(str(root))
    files = git.open_repo(root).read_tree(str(src.head.target))
    git.write_files(dest, files)
    repo = pygit2.init_repository(str(dest), initial_head="main")
    repo.index.add_all()
    repo.index.write()
    repo.create_commit("refs/heads/main", AUTHOR, AUTHOR, "squashed", repo.index.write_tree(), [])
    return dest


def test_deleted_vendor_branch_is_restored_at_the_locked_commit(
    tmp_path: Path, deploy_repo: Callable[..., Path], upstream_files: Releases
) -> None:
    root = deploy_repo(source=str(release_folder(tmp_path / "rf", upstream_files)))
    stack = load_stack(root)
    imported = import_release(stack, ref="v1.4")
    repo = git.open_repo(root)
    repo.delete_branch("vendor/mlstack")

    assert ensure_vendor_branch(stack) == imported.vendor_commit
    assert repo.branch_commit("vendor/mlstack") == imported.vendor_commit
    repo.delete_branch("vendor/mlstack")
    assert vendor_status(stack).branch_commit == imported.vendor_commit  # status restores it


def test_fresh_clone_without_the_import_commits_refetches_the_release(
    tmp_path: Path, deploy_repo: Callable[..., Path], upstream_files: Releases
) -> None:
    folder = release_folder(tmp_path / "rf", upstream_files)
    root = deploy_repo(source=str(folder))
    imported = import_release(load_stack(root), ref="v1.4")
    clone = _squashed_clone(root, tmp_path / "clone")
    stack = load_stack(clone)
    repo = git.open_repo(clone)
    assert repo.branch_commit("vendor/mlstack") is None
    assert not repo.has_commit(imported.vendor_commit)

    commit = ensure_vendor_branch(stack)

    info = repo.commit_info(commit)
    assert info.parents == ()
    assert info.subject == "vendor mlstack v1.4.1"
    assert info.trailers()["Vendor-Rebuilt-From"] == imported.vendor_commit
    assert info.trailers()["Vendor-Digest"] == imported.lock_entry.digest
    assert info.tree == git.open_repo(root).commit_info(imported.vendor_commit).tree
    assert repo.branch_commit("vendor/mlstack") == commit


def test_status_rebuilds_the_missing_branch_automatically(
    tmp_path: Path, deploy_repo: Callable[..., Path], upstream_files: Releases
) -> None:
    root = deploy_repo(source=str(release_folder(tmp_path / "rf", upstream_files)))
    import_release(load_stack(root), ref="v1.4")
    clone = _squashed_clone(root, tmp_path / "clone")
    st = vendor_status(load_stack(clone))
    assert st.pristine
    assert st.branch_commit is not None
    assert pristine_commit(load_stack(clone)) == st.branch_commit


def test_rebuild_refuses_when_the_refetched_release_has_another_digest(
    tmp_path: Path, deploy_repo: Callable[..., Path], upstream_files: Releases
) -> None:
    archive = tarball(tmp_path / "dl" / "mlstack-v1.4.1.tar.gz", upstream_files["v1.4.1"])
    root = deploy_repo(source=str(archive))
    imported = import_release(load_stack(root), ref="v1.4.1")
    changed = dict(upstream_files["v1.4.1"], VERSION="v1.4.1-rewritten\n")
    tarball(archive, changed)  # the upstream rewrote its release archive
    clone = _squashed_clone(root, tmp_path / "clone")

    with pytest.raises(SourceError) as e:
        ensure_vendor_branch(load_stack(clone))
    msg = str(e.value)
    assert "cannot rebuild vendor/mlstack" in msg
    # v1.4.1 pulls a remote base: the release as fetched is pinned by its upstream digest
    assert imported.lock_entry.upstream_digest is not None
    assert imported.lock_entry.upstream_digest in msg
    assert git.open_repo(clone).branch_commit("vendor/mlstack") is None


def test_refetch_is_forced_on_request_and_checks_the_digest(
    tmp_path: Path, deploy_repo: Callable[..., Path], upstream_files: Releases
) -> None:
    root = deploy_repo(source=str(release_folder(tmp_path / "rf", upstream_files)))
    stack = load_stack(root)
    imported = import_release(stack, ref="v1.3.0")
    commit = rebuild_vendor_branch(stack, refetch=True)
    assert commit != imported.vendor_commit
    repo = git.open_repo(root)
    assert repo.commit_info(commit).tree == repo.commit_info(imported.vendor_commit).tree


def test_rebuild_without_a_lock_says_to_import_first(
    tmp_path: Path, deploy_repo: Callable[..., Path], upstream_files: Releases
) -> None:
    root = deploy_repo(source=str(release_folder(tmp_path / "rf", upstream_files)))
    with pytest.raises(ConfigError, match="stackctl vendor import --ref REF"):
        ensure_vendor_branch(load_stack(root))


def test_next_import_in_a_fresh_clone_builds_on_the_rebuilt_branch(
    tmp_path: Path, deploy_repo: Callable[..., Path], upstream_files: Releases
) -> None:
    root = deploy_repo(source=str(release_folder(tmp_path / "rf", upstream_files)))
    import_release(load_stack(root), ref="v1.3.0")
    clone = _squashed_clone(root, tmp_path / "clone")
    result = import_release(load_stack(clone), ref="v1.4")
    repo = git.open_repo(clone)
    history = repo.log(result.vendor_commit)
    assert [c.subject for c in history] == ["vendor mlstack v1.4.1", "vendor mlstack v1.3.0"]


def test_import_in_a_fresh_clone_whose_old_release_is_gone_starts_the_branch_afresh(
    tmp_path: Path, deploy_repo: Callable[..., Path], upstream_files: Releases
) -> None:
    old = tarball(tmp_path / "old" / "mlstack-v1.3.0.tar.gz", upstream_files["v1.3.0"])
    root = deploy_repo(source=str(old))
    import_release(load_stack(root), ref="v1.3.0")
    clone = _squashed_clone(root, tmp_path / "clone")
    old.unlink()
    new = tarball(tmp_path / "new" / "mlstack-v1.4.1.tar.gz", upstream_files["v1.4.1"])
    messages: list[str] = []

    result = import_release(load_stack(clone), ref="v1.4.1", source=str(new),
                            progress=messages.append)

    assert git.open_repo(clone).commit_info(result.vendor_commit).parents == ()
    assert any("starts afresh" in m for m in messages)
    assert (clone / "vendor/mlstack/VERSION").read_text() == "v1.4.1\n"
