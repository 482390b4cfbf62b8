"""Upstream sources: kind detection, ref resolution, reading releases."""

from __future__ import annotations

from pathlib import Path

import pytest

from gitops import git
from gitops.errors import SourceError
from gitops.source import (
    archive_tag,
    match_release,
    nearest_tags,
    open_source,
    sort_tags,
)
from tests.fixtures.gitrepos import (
    archive_folder,
    git_upstream,
    release_folder,
    tarball,
    write_files,
    zipball,
)

TAGS = ["v1.3.0", "v1.4.0", "v1.4.1", "v1.4.2-rc.1", "v1.5.0-rc.1", "v1.10.0", "latest"]
Releases = dict[str, dict[str, "str | bytes | tuple[str | bytes, int]"]]


@pytest.mark.parametrize(("ref", "want"), [
    ("v1.4", "v1.4.1"),
    ("1.4", "v1.4.1"),
    ("v1", "v1.10.0"),
    ("v1.4.0", "v1.4.0"),
    ("1.4.0", "v1.4.0"),
    ("v1.5", None),  # only a release candidate
    ("v1.5.0-rc.1", "v1.5.0-rc.1"),
    ("v1.4.2-rc.1", "v1.4.2-rc.1"),
    ("v2", None),
    ("latest", None),
])
def test_version_prefix_picks_the_highest_release_skipping_pre_releases(
    ref: str, want: str | None
) -> None:
    assert match_release(ref, TAGS) == want


def test_tags_sort_by_semantic_version_with_pre_releases_first() -> None:
    assert sort_tags(["v1.10.0", "v1.9.0", "v1.10.0-rc.2", "v1.10.0-rc.10", "main"]) == [
        "main", "v1.9.0", "v1.10.0-rc.2", "v1.10.0-rc.10", "v1.10.0"]


def test_nearest_tags_prefer_the_same_major_version() -> None:
    assert nearest_tags("v1.6", ["v0.9.0", "v1.3.0", "v1.4.1", "v2.0.0"]) == ["v1.3.0", "v1.4.1"]
    assert nearest_tags("relase-1", ["release-1", "other"]) == ["release-1"]


@pytest.mark.parametrize(("name", "tag"), [
    ("kubeflow-manifests-v1.4.0.tar.gz", "v1.4.0"),
    ("mlstack-1.5.0-rc.1.tgz", "1.5.0-rc.1"),
    ("x-v2.zip", "v2"),
    ("pkg-nightly.tar.gz", "nightly"),
    ("manifests.tar.gz", None),
])
def test_archive_names_carry_the_tag_after_the_name(name: str, tag: str | None) -> None:
    assert archive_tag(name) == tag


def test_git_source_resolves_tags_branches_and_commits(
    tmp_path: Path, git_env: Path, upstream_files: Releases
) -> None:
    tags = git_upstream(tmp_path / "up", upstream_files, annotated=True)
    src = open_source(str(tmp_path / "up"))
    assert src.kind == "git"
    assert src.tags() == ["v1.3.0", "v1.4.0", "v1.4.1", "v1.5.0-rc.1"]
    assert src.branches() == ["main"]
    r = src.resolve("v1.4")
    assert (r.name, r.how, r.commit) == ("v1.4.1", "tag", tags["v1.4.1"])
    assert src.resolve("main").commit == tags["v1.5.0-rc.1"]
    short = tags["v1.3.0"][:10]
    r = src.resolve(short)
    assert (r.name, r.how, r.commit) == (tags["v1.3.0"], "commit", tags["v1.3.0"])
    assert src.files(r)["VERSION"] == b"v1.3.0\n"
    assert src.newer_tags("v1.3.0") == ["v1.4.0", "v1.4.1"]


def test_exact_tag_wins_over_a_version_prefix(tmp_path: Path, git_env: Path) -> None:
    git_upstream(tmp_path / "up", {"v1.4.0": {"a": "0"}, "v1.4": {"a": "exact"},
                                   "v1.4.1": {"a": "1"}})
    src = open_source(str(tmp_path / "up"))
    assert src.resolve("v1.4").name == "v1.4"
    assert src.resolve("1.4").name == "v1.4.1"


def test_git_source_over_file_url_is_fetched_into_the_cache(
    tmp_path: Path, git_env: Path, upstream_files: Releases
) -> None:
    tags = git_upstream(tmp_path / "up.git", upstream_files, bare=True)
    src = open_source((tmp_path / "up.git").as_uri())
    assert src.kind == "git"
    r = src.resolve("v1.4")
    assert r.commit == tags["v1.4.1"]
    assert src.files(r)["VERSION"] == b"v1.4.1\n"
    assert list((git_env / "cache" / "sources").glob("*.git"))


def test_bare_local_repository_is_a_git_source(
    tmp_path: Path, git_env: Path, upstream_files: Releases
) -> None:
    git_upstream(tmp_path / "up.git", upstream_files, bare=True)
    src = open_source(str(tmp_path / "up.git"))
    assert src.kind == "git" and src.resolve("v1.3").name == "v1.3.0"


def test_unreachable_git_url_is_a_source_error(tmp_path: Path, git_env: Path) -> None:
    src = open_source((tmp_path / "missing.git").as_uri())
    with pytest.raises(SourceError, match="cannot read the git source file://"):
        src.tags()


def test_kinds_are_detected_from_the_source_string(
    tmp_path: Path, upstream_files: Releases
) -> None:
    assert open_source(str(tarball(tmp_path / "a-v1.0.0.tar.gz", {"x": "1"}))).kind == "archive"
    assert open_source(str(zipball(tmp_path / "b.zip", {"x": "1"}))).kind == "archive"
    folder = archive_folder(tmp_path / "af", upstream_files)
    assert open_source(str(folder)).kind == "archive-folder"
    rf = release_folder(tmp_path / "rf", upstream_files)
    assert open_source(str(rf)).kind == "release-folder"
    assert open_source("https://github.com/kubeflow/manifests").kind == "git"
    assert open_source("git@github.com:kubeflow/manifests.git").kind == "git"


def test_bad_sources_say_what_a_source_can_be(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="does not exist"):
        open_source(str(tmp_path / "nope"))
    write_files(tmp_path, {"notes.txt": "x", "empty/.keep": ""})
    with pytest.raises(SourceError, match=r"not a \.tar\.gz, \.tgz or \.zip"):
        open_source(str(tmp_path / "notes.txt"))
    (tmp_path / "empty2").mkdir()
    with pytest.raises(SourceError, match="holds no releases"):
        open_source(str(tmp_path / "empty2"))


def test_archive_with_several_top_level_folders_is_not_stripped(tmp_path: Path) -> None:
    archive = tarball(tmp_path / "k-v1.0.0.tar.gz", {"apps/a.yaml": "a", "common/b.yaml": "b"},
                      top=None)
    src = open_source(str(archive))
    assert sorted(src.files(src.resolve("v1.0.0"))) == ["apps/a.yaml", "common/b.yaml"]


def test_archive_with_an_escaping_path_is_refused(tmp_path: Path) -> None:
    archive = tarball(tmp_path / "evil-v1.0.0.tar.gz", {"../../etc/x": "boom"}, top=None)
    src = open_source(str(archive))
    with pytest.raises(SourceError, match="unsafe path"):
        src.files(src.resolve("v1.0.0"))


def test_corrupt_archive_is_a_source_error(tmp_path: Path) -> None:
    bad = tmp_path / "x-v1.0.0.tar.gz"
    bad.write_bytes(b"not gzip")
    src = open_source(str(bad))
    with pytest.raises(SourceError, match="cannot read the archive"):
        src.files(src.resolve("v1.0.0"))


def test_single_archive_refuses_a_ref_its_name_does_not_match(tmp_path: Path) -> None:
    src = open_source(str(tarball(tmp_path / "m-v1.4.1.tar.gz", {"x": "1"})))
    assert src.resolve("v1.4").name == "v1.4.1"
    with pytest.raises(SourceError, match=r"Nearest tags: v1\.4\.1"):
        src.resolve("v1.5")


def test_a_release_folder_keeps_its_files_modes(tmp_path: Path, upstream_files: Releases) -> None:
    src = open_source(str(release_folder(tmp_path / "rf", upstream_files)))
    tree = src.tree(src.resolve("v1.3"))
    assert tree["VERSION"] == (git.MODE_FILE, b"v1.3.0\n")
    assert tree["hack/gen.sh"][0] == git.MODE_EXEC
