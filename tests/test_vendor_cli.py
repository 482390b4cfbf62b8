"""`stackctl vendor ...` through the real entry point: messages and exit codes."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pygit2
import pytest

from gitops.cli import main
from tests.fixtures.gitrepos import commit_all, release_folder

Releases = dict[str, dict[str, "str | bytes | tuple[str | bytes, int]"]]


@pytest.fixture
def in_repo(tmp_path: Path, deploy_repo: Callable[..., Path], upstream_files: Releases,
            monkeypatch: pytest.MonkeyPatch) -> Path:
    release_folder(tmp_path / "rf", upstream_files)
    root = deploy_repo(source="../rf")
    monkeypatch.chdir(root)
    return root


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, " ".join(err.split())  # messages are wrapped at 100 columns


def test_vendor_import_prints_what_it_did_and_the_remote_bases_it_vendored(
    in_repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(capsys, "vendor", "import", "--ref", "v1.4")
    assert code == 0, err
    assert "imported mlstack v1.4.1 (asked for v1.4) from ../rf [release-folder]" in out
    assert "1 remote base(s) vendored under vendor/mlstack/_remotes/ and pinned" in out
    assert "https://github.com/argoproj/argo-workflows v3.7.3 (" in out
    assert "warning" not in err
    assert (in_repo / "vendor/mlstack/VERSION").read_text() == "v1.4.1\n"


def test_vendor_status_lists_local_changes_and_exits_0(
    in_repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(capsys, "vendor", "import", "--ref", "v1.3.0")[0] == 0
    (in_repo / "vendor/mlstack/VERSION").write_text("mine\n")
    code, out, err = _run(capsys, "vendor", "status")
    assert code == 0, err
    assert "mlstack: v1.3.0 from ../rf [release-folder]" in out
    assert "vendor/mlstack/: 1 local change(s) since the import" in out
    assert "modified:  vendor/mlstack/VERSION" in out
    assert "newer releases: v1.4.0, v1.4.1" in out
    code, out, _ = _run(capsys, "vendor", "status", "--json", "--offline")
    data = json.loads(out)
    assert data["modified"] == ["VERSION"] and data["lock"]["resolved"] == "v1.3.0"


def test_vendor_import_with_a_source_option_relative_to_the_cwd(
    in_repo: Path, tmp_path: Path, upstream_files: Releases,
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    release_folder(in_repo / "upstream", upstream_files)
    commit_all(pygit2.Repository(str(in_repo)), "keep releases in the repo")
    monkeypatch.chdir(in_repo / "overlays")
    code, out, err = _run(capsys, "vendor", "import", "--ref", "v1.3.0",
                          "--source", "../upstream")
    assert code == 0, err
    assert "from upstream [release-folder]" in out
    assert "source: upstream\n" in (in_repo / "stackctl.lock").read_text()


def test_missing_ref_exits_2_with_the_nearest_tags(
    in_repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _run(capsys, "vendor", "import", "--ref", "v2.0")
    assert code == 2
    assert "error: ref 'v2.0' does not resolve in " in err
    assert "Nearest tags: v1.3.0, v1.4.0, v1.4.1, v1.5.0-rc.1." in err
    assert "Traceback" not in err


def test_unreachable_git_source_exits_2(
    in_repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = (tmp_path / "nowhere.git").as_uri()
    code, _, err = _run(capsys, "vendor", "import", "--ref", "v1.4", "--source", missing)
    assert code == 2
    assert f"cannot read the git source {missing}" in err
    assert "Traceback" not in err


def test_missing_local_source_exits_2(
    in_repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _run(capsys, "vendor", "import", "--ref", "v1.4", "--source", "../nope")
    assert code == 2
    assert "does not exist" in err and "Traceback" not in err


def test_dirty_working_tree_exits_2_naming_the_file(
    in_repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (in_repo / "stack.yaml").write_text("name: mlstack\nsource: ../rf\nref: v1.4\n")
    code, _, err = _run(capsys, "vendor", "import")
    assert code == 2
    assert "uncommitted changes (stack.yaml)" in err
    assert "Traceback" not in err


def test_malformed_stack_yaml_exits_2_with_file_and_line(
    in_repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (in_repo / "stack.yaml").write_text("name: mlstack\nsource: ../rf\nreff: v1.4\n")
    code, _, err = _run(capsys, "vendor", "import", "--ref", "v1.4")
    assert code == 2
    assert "stack.yaml:3: unknown key 'reff'" in err
    assert "Traceback" not in err
    (in_repo / "stack.yaml").write_text("name: mlstack\nsource: [../rf\n")
    code, _, err = _run(capsys, "vendor", "status")
    assert code == 2 and "invalid YAML" in err


def test_vendor_rebuild_command(in_repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(capsys, "vendor", "import", "--ref", "v1.4")[0] == 0
    pygit2.Repository(str(in_repo)).references.delete("refs/heads/vendor/mlstack")
    code, out, err = _run(capsys, "vendor", "rebuild")
    assert code == 0, err
    assert out.startswith("vendor/mlstack at ")
    assert pygit2.Repository(str(in_repo)).references.get("refs/heads/vendor/mlstack")


def test_vendor_help_shows_examples(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "vendor", "import", "--help")
    assert code == 0
    assert "stackctl vendor import --ref v1.4" in out
