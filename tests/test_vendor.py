"""Vendor import: the vendor branch, the merge commit, the lock, on real repositories."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pygit2
import pytest

from gitops import git
from gitops.errors import DirtyWorktreeError, SourceError, VendorEditedError
from gitops.lock import read_lock
from gitops.stack import load_stack
from gitops.vendor import import_release
from tests.fixtures.gitrepos import (
    archive_folder,
    commit_all,
    git_upstream,
    release_folder,
    repo_status,
    tarball,
    zipball,
)
from tests.fixtures.remote_mirror import TINY_FOLDER, TINY_VENDORED, Mirror, vendored_form

Releases = dict[str, dict[str, "str | bytes | tuple[str | bytes, int]"]]


def _vendored(root: Path, name: str = "mlstack") -> dict[str, bytes]:
    base = root / "vendor" / name
    return {p.relative_to(base).as_posix(): p.read_bytes()
            for p in sorted(base.rglob("*")) if p.is_file()}


def _expected(files: dict[str, str | bytes | tuple[str | bytes, int]]) -> dict[str, bytes]:
    """The release as vendored: v1.4.1's remote base localized (tests/fixtures/
    remote_mirror.py)."""
    out = {}
    for rel, spec in files.items():
        data = spec[0] if isinstance(spec, tuple) else spec
        out[rel] = data.encode() if isinstance(data, str) else data
    return vendored_form(out)


def test_import_from_a_git_repo_writes_the_release_merges_and_leaves_a_clean_tree(
    tmp_path: Path, deploy_repo: Callable[..., Path], upstream_files: Releases
) -> None:
    tags = git_upstream(tmp_path / "upstream", upstream_files)
    root = deploy_repo(source=str(tmp_path / "upstream"))
    head_before = pygit2.Repository(str(root)).head.target

    result = import_release(load_stack(root), ref="v1.4")

    assert result.resolved.name == "v1.4.1"
    assert result.resolved.commit == tags["v1.4.1"]
    assert _vendored(root) == _expected(upstream_files["v1.4.1"])
    assert (root / "vendor/mlstack/hack/gen.sh").stat().st_mode & 0o111
    assert repo_status(root) == {}
    repo = pygit2.Repository(str(root))
    merge = repo.head.peel(pygit2.Commit)
    assert str(merge.id) == result.merge_commit
    assert [str(p) for p in merge.parent_ids] == [str(head_before), result.vendor_commit]
    assert repo.head.shorthand == "main"
    # the rest of the tree is untouched and the lock is in the same commit
    assert {e.name for e in merge.tree} == {"README.md", "overlays", "stack.yaml", "vendor",
                                            "stackctl.lock"}


def test_lock_records_source_ref_resolution_digest_and_vendor_commit(
    tmp_path: Path, deploy_repo: Callable[..., Path], upstream_files: Releases
) -> None:
    tags = git_upstream(tmp_path / "upstream", upstream_files)
    root = deploy_repo(source="../upstream")
    result = import_release(load_stack(root), ref="v1.4")

    lock = read_lock(root)
    assert lock is not None
    entry = lock.get("mlstack")
    assert entry is not None
    assert entry.source == "../upstream"
    assert entry.source_kind == "git"
    assert (entry.ref, entry.resolved, entry.resolved_kind) == ("v1.4", "v1.4.1", "tag")
    assert entry.commit == tags["v1.4.1"]
    assert entry.archive_sha256 is None
    assert entry.digest == git.digest(git.read_worktree_files(root / "vendor/mlstack"))
    assert entry.digest.startswith("sha256:")
    assert entry.files == len(upstream_files["v1.4.1"]) + len(TINY_VENDORED)
    assert entry.path == "vendor/mlstack"
    assert entry.vendor_branch == "vendor/mlstack"
    assert entry.vendor_commit == result.vendor_commit
    assert entry.imported_at.endswith("Z")
    text = (root / "stackctl.lock").read_text()
    for key in ("name:", "source:", "sourceKind:", "ref:", "resolved:", "resolvedKind:",
                "commit:", "archiveSha256:", "digest:", "files:", "path:", "importedAt:",
                "vendorBranch:", "vendorCommit:"):
        assert key in text


def test_vendor_branch_has_one_commit_per_release_with_trailers_and_only_vendor_files(
    tmp_path: Path, deploy_repo: Callable[..., Path], upstream_files: Releases
) -> None:
    tags = git_upstream(tmp_path / "upstream", upstream_files)
    root = deploy_repo(source=str(tmp_path / "upstream"))
    stack = load_stack(root)
    first = import_release(stack, ref="v1.3.0")
    second = import_release(stack, ref="v1.4")

    repo = git.open_repo(root)
    history = repo.log(repo.branch_commit("vendor/mlstack") or "")
    assert [c.id for c in history] == [second.vendor_commit, first.vendor_commit]
    assert [c.subject for c in history] == ["vendor mlstack v1.4.1", "vendor mlstack v1.3.0"]
    trailers = history[0].trailers()
    assert trailers["Vendor-Source"] == str(tmp_path / "upstream")
    assert trailers["Vendor-Ref"] == "v1.4"
    assert trailers["Vendor-Resolved"] == "v1.4.1"
    assert trailers["Vendor-Commit"] == tags["v1.4.1"]
    assert trailers["Vendor-Digest"] == second.lock_entry.digest
    for c in history:
        paths = repo.read_tree(c.id, with_content=False)
        assert paths and all(p.startswith("vendor/mlstack/") for p in paths)
    # the current branch has both merges; the second merge's parents: first merge, import
    merge = repo.commit_info(second.merge_commit or "")
    assert merge.parents == (first.merge_commit, second.vendor_commit)
    assert _vendored(root) == _expected(upstream_files["v1.4.1"])


def test_upgrading_an_untouched_import_removes_files_upstream_deleted(
    tmp_path: Path, deploy_repo: Callable[..., Path], upstream_files: Releases
) -> None:
    git_upstream(tmp_path / "upstream", upstream_files)
    root = deploy_repo(source=str(tmp_path / "upstream"))
    stack = load_stack(root)
    import_release(stack, ref="v1.4.1")
    assert (root / "vendor/mlstack/workflows/local.yaml").exists()
    import_release(stack, ref="v1.4.0")
    assert not (root / "vendor/mlstack/workflows").exists()
    assert repo_status(root) == {}


def test_reimporting_the_same_release_changes_nothing(
    tmp_path: Path, deploy_repo: Callable[..., Path], upstream_files: Releases
) -> None:
    git_upstream(tmp_path / "upstream", upstream_files)
    root = deploy_repo(source=str(tmp_path / "upstream"))
    stack = load_stack(root)
    first = import_release(stack, ref="v1.4")
    again = import_release(stack, ref="v1.4.1")
    assert again.unchanged and again.merge_commit is None
    assert again.vendor_commit == first.vendor_commit
    assert pygit2.Repository(str(root)).head.target == pygit2.Oid(hex=first.merge_commit)


def test_import_without_merge_only_moves_the_vendor_branch(
    tmp_path: Path, deploy_repo: Callable[..., Path], upstream_files: Releases
) -> None:
    git_upstream(tmp_path / "upstream", upstream_files)
    root = deploy_repo(source=str(tmp_path / "upstream"))
    stack = load_stack(root)
    first = import_release(stack, ref="v1.3.0")
    head = pygit2.Repository(str(root)).head.target
    (root / "vendor/mlstack/VERSION").write_text("local edit\n")  # ignored with merge=False

    result = import_release(stack, ref="v1.4", merge=False)

    repo = git.open_repo(root)
    assert result.merge_commit is None
    assert repo.head_commit() == str(head)
    assert repo.branch_commit("vendor/mlstack") == result.vendor_commit
    assert repo.commit_info(result.vendor_commit).parents == (first.vendor_commit,)
    assert result.lock_entry.resolved == "v1.4.1"
    assert result.lock_entry.vendor_commit == result.vendor_commit
    lock = read_lock(root)
    assert lock is not None and lock.get("mlstack") == first.lock_entry


def test_import_from_a_single_archive_strips_its_top_folder(
    tmp_path: Path, deploy_repo: Callable[..., Path], upstream_files: Releases
) -> None:
    archive = tarball(tmp_path / "dl" / "mlstack-v1.4.1.tar.gz", upstream_files["v1.4.1"],
                      top="mlstack-1.4.1")
    root = deploy_repo(source=str(archive))
    result = import_release(load_stack(root), ref="v1.4")
    assert result.resolved.name == "v1.4.1"
    assert _vendored(root) == _expected(upstream_files["v1.4.1"])
    assert (root / "vendor/mlstack/hack/gen.sh").stat().st_mode & 0o111
    entry = result.lock_entry
    assert entry.source_kind == "archive" and entry.commit is None
    assert entry.archive_sha256 is not None and len(entry.archive_sha256) == 64
    assert repo_status(root) == {}


def test_import_from_a_zip_without_a_tag_in_its_name_takes_the_ref_as_label(
    tmp_path: Path, deploy_repo: Callable[..., Path], upstream_files: Releases
) -> None:
    archive = zipball(tmp_path / "manifests.zip", upstream_files["v1.3.0"], top=None)
    root = deploy_repo(source=str(archive))
    result = import_release(load_stack(root), ref="v1.3.0")
    assert (result.resolved.name, result.resolved.how) == ("v1.3.0", "release")
    assert _vendored(root) == _expected(upstream_files["v1.3.0"])
    assert (root / "vendor/mlstack/hack/gen.sh").stat().st_mode & 0o111


def test_import_from_a_folder_of_archives_resolves_the_highest_patch(
    tmp_path: Path, deploy_repo: Callable[..., Path], upstream_files: Releases
) -> None:
    folder = archive_folder(tmp_path / "releases", upstream_files)
    root = deploy_repo(source=str(folder))
    result = import_release(load_stack(root), ref="v1.4")
    assert result.resolved.name == "v1.4.1"
    assert result.lock_entry.source_kind == "archive-folder"
    assert result.resolved.location == str(folder / "mlstack-v1.4.1.tar.gz")
    assert _vendored(root) == _expected(upstream_files["v1.4.1"])


def test_import_from_a_folder_of_release_folders(
    tmp_path: Path, deploy_repo: Callable[..., Path], upstream_files: Releases
) -> None:
    folder = release_folder(tmp_path / "upstream" / "mlstack", upstream_files)
    root = deploy_repo(source=str(folder))
    result = import_release(load_stack(root), ref="1.4")
    assert result.resolved.name == "v1.4.1"
    assert result.lock_entry.source_kind == "release-folder"
    assert result.lock_entry.archive_sha256 is None
    assert _vendored(root) == _expected(upstream_files["v1.4.1"])
    assert (root / "vendor/mlstack/hack/gen.sh").stat().st_mode & 0o111


def test_the_same_release_has_the_same_digest_from_every_source_kind(
    tmp_path: Path, deploy_repo: Callable[..., Path], upstream_files: Releases
) -> None:
    sources = [
        str(release_folder(tmp_path / "rf", upstream_files)),
        str(archive_folder(tmp_path / "af", upstream_files, ext=".zip")),
    ]
    git_upstream(tmp_path / "gitsrc", upstream_files)
    sources.append(str(tmp_path / "gitsrc"))
    digests = set()
    for i, src in enumerate(sources):
        root = deploy_repo(source=src, subdir=f"d{i}")
        digests.add(import_release(load_stack(root), ref="v1.4").lock_entry.digest)
    assert len(digests) == 1


def test_import_vendors_the_remote_base_a_kustomization_pulls_and_pins_it(
    tmp_path: Path, deploy_repo: Callable[..., Path], upstream_files: Releases,
    tiny_remote_mirror: Mirror,
) -> None:
    root = deploy_repo(source=str(release_folder(tmp_path / "rf", upstream_files)))
    result = import_release(load_stack(root), ref="v1.4.1")
    assert result.remote_bases == ()  # nothing left that a render would refuse
    [pin] = result.remotes
    assert (pin.url, pin.kind, pin.ref) == ("https://github.com/argoproj/argo-workflows",
                                            "git", "v3.7.3")
    assert pin.commit == tiny_remote_mirror.commits["argoproj/argo-workflows@v3.7.3"]
    assert pin.path == "vendor/mlstack/" + TINY_FOLDER
    assert pin.digest == git.digest(git.read_worktree_files(root / pin.path))
    assert [(x.file, x.field, x.original, x.local) for x in pin.localized] == [(
        "vendor/mlstack/workflows/kustomization.yaml", "resources",
        "github.com/argoproj/argo-workflows/manifests/base/crds/minimal?ref=v3.7.3",
        f"../{TINY_FOLDER}/manifests/base/crds/minimal")]
    assert result.lock_entry.remotes == result.remotes
    assert result.lock_entry.upstream_digest == git.digest(
        git.read_worktree_files(tmp_path / "rf" / "v1.4.1"))
    trailers = git.open_repo(root).commit_info(result.vendor_commit).message
    assert (f"Vendor-Remote: https://github.com/argoproj/argo-workflows v3.7.3 "
            f"{pin.commit}") in trailers


def test_import_refuses_a_dirty_working_tree_and_names_the_files(
    tmp_path: Path, deploy_repo: Callable[..., Path], upstream_files: Releases
) -> None:
    root = deploy_repo(source=str(release_folder(tmp_path / "rf", upstream_files)))
    (root / "README.md").write_text("changed\n")
    (root / "notes.txt").write_text("untracked outside vendor/ is fine\n")
    with pytest.raises(DirtyWorktreeError, match=r"uncommitted changes \(README.md\)"):
        import_release(load_stack(root), ref="v1.4")


def test_import_refuses_untracked_files_inside_the_vendored_folder(
    tmp_path: Path, deploy_repo: Callable[..., Path], upstream_files: Releases
) -> None:
    root = deploy_repo(source=str(release_folder(tmp_path / "rf", upstream_files)))
    (root / "vendor/mlstack").mkdir(parents=True)
    (root / "vendor/mlstack/mine.yaml").write_text("a: 1\n")
    with pytest.raises(DirtyWorktreeError, match=r"vendor/mlstack/mine\.yaml"):
        import_release(load_stack(root), ref="v1.4")


def test_import_refuses_committed_local_edits_and_points_to_upgrade(
    tmp_path: Path, deploy_repo: Callable[..., Path], upstream_files: Releases
) -> None:
    root = deploy_repo(source=str(release_folder(tmp_path / "rf", upstream_files)))
    stack = load_stack(root)
    import_release(stack, ref="v1.3.0")
    (root / "vendor/mlstack/VERSION").write_text("patched\n")
    commit_all(pygit2.Repository(str(root)), "local edit")
    with pytest.raises(VendorEditedError, match="stackctl upgrade --vendor REF"):
        import_release(stack, ref="v1.4")


def test_import_of_a_missing_ref_lists_the_nearest_tags(
    tmp_path: Path, deploy_repo: Callable[..., Path], upstream_files: Releases
) -> None:
    root = deploy_repo(source=str(release_folder(tmp_path / "rf", upstream_files)))
    with pytest.raises(SourceError, match=r"'v1.6' does not resolve.*Nearest tags: .*v1.4.1"):
        import_release(load_stack(root), ref="v1.6")
    assert git.open_repo(root).branch_commit("vendor/mlstack") is None


def test_import_in_a_stack_below_the_repository_root(
    tmp_path: Path, git_env: Path, upstream_files: Releases
) -> None:
    repo_root = tmp_path / "mono"
    (repo_root / "platform").mkdir(parents=True)
    (repo_root / "platform/stack.yaml").write_text("name: mlstack\nsource: ../../rf\n")
    release_folder(tmp_path / "rf", upstream_files)
    commit_all(pygit2.init_repository(str(repo_root), initial_head="main"), "initial")

    result = import_release(load_stack(repo_root / "platform"), ref="v1.4")

    assert _vendored(repo_root / "platform") == _expected(upstream_files["v1.4.1"])
    assert (repo_root / "platform/stackctl.lock").is_file()
    assert repo_status(repo_root) == {}
    paths = git.open_repo(repo_root).read_tree(result.vendor_commit, with_content=False)
    assert all(p.startswith("platform/vendor/mlstack/") for p in paths)


def test_import_from_a_file_url_of_a_bare_repository(
    tmp_path: Path, deploy_repo: Callable[..., Path], upstream_files: Releases
) -> None:
    tags = git_upstream(tmp_path / "up.git", upstream_files, bare=True)
    url = (tmp_path / "up.git").as_uri()
    root = deploy_repo(source=url)
    result = import_release(load_stack(root), ref="v1.4")
    assert result.lock_entry.commit == tags["v1.4.1"]
    assert result.lock_entry.source == url
    assert _vendored(root) == _expected(upstream_files["v1.4.1"])


def test_import_into_a_repository_without_commits(
    tmp_path: Path, git_env: Path, upstream_files: Releases
) -> None:
    release_folder(tmp_path / "rf", upstream_files)
    root = tmp_path / "fresh"
    root.mkdir()
    (root / "stack.yaml").write_text("name: mlstack\nsource: ../rf\n")
    pygit2.init_repository(str(root), initial_head="main")

    result = import_release(load_stack(root), ref="v1.3")

    repo = git.open_repo(root)
    assert repo.current_branch() == "main"
    assert repo.commit_info(result.merge_commit or "").parents == (result.vendor_commit,)
    assert _vendored(root) == _expected(upstream_files["v1.3.0"])
    assert repo_status(root) == {"stack.yaml": pygit2.enums.FileStatus.WT_NEW}
