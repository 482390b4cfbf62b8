"""`stackctl render` through the real entry point: files written, messages, exit codes."""

from __future__ import annotations

from pathlib import Path

import pygit2
import pytest

from gitops.cli import main
from tests.fixtures.gitrepos import commit_all, write_files
from tests.test_render import BASE


@pytest.fixture
def in_repo(tmp_path: Path, kustomize: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "deploy"
    write_files(root, BASE)
    write_files(root, {
        "clusters/prod/kustomization.yaml": "resources:\n- ../../vendor/mlstack/base\n"
                                            "commonLabels: {env: prod}\n",
    })
    monkeypatch.chdir(root)
    return root


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["render", *args])
    out, err = capsys.readouterr()
    return code, out, " ".join(err.split())


def test_render_writes_one_file_per_cluster_and_uses_the_cache_the_second_time(
        in_repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys)
    assert code == 0, err
    assert "dev: 9 objects -> " in out and "prod: 9 objects" in out
    dev = (in_repo / "rendered/dev.yaml").read_text()
    assert dev.startswith("# Rendered by stackctl: cluster dev\n")
    assert sorted(p.name for p in (in_repo / "rendered").iterdir()) == ["dev.yaml", "prod.yaml"]
    code, out, _ = _run(capsys, "--all")
    assert code == 0 and out.count("(cached)") == 2
    assert (in_repo / "rendered/dev.yaml").read_text() == dev


def test_warnings_are_shown_once_per_cluster(in_repo: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "--cluster", "prod", "--out", "out")
    assert code == 0
    assert err.count("warning: cluster prod: 'commonLabels' is deprecated") == 1


def test_split_writes_one_file_per_object_named_by_order_kind_namespace_name(
        in_repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "--cluster", "dev", "--split", "--out", "out")
    assert code == 0, err
    names = sorted(p.name for p in (in_repo / "out/dev").iterdir())
    assert names[:3] == ["001-Namespace-_-ml.yaml",
                         "002-CustomResourceDefinition-_-widgets.ml.example.com.yaml",
                         "009-ServiceAccount-ml-web.yaml"]
    assert "016-ClusterRole-_-ml_reader.yaml" in names
    assert names[-1] == "041-ValidatingWebhookConfiguration-_-ml-validate.yaml"
    text = (in_repo / "out/dev/029-Deployment-ml-web.yaml").read_text()
    assert text.startswith("# Rendered by stackctl: cluster dev\n") and "replicas: 2" in text
    # A re-render replaces the folder as a whole.
    (in_repo / "vendor/mlstack/base/webhook.yaml").write_text("")
    assert _run(capsys, "--cluster", "dev", "--split", "--out", "out")[0] == 0
    assert not any("Webhook" in p.name for p in (in_repo / "out/dev").iterdir())
    assert [p.name for p in (in_repo / "out").iterdir()] == ["dev"]


def test_a_failed_render_exits_2_and_leaves_the_previous_output_as_it_was(
        in_repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(capsys, "--cluster", "dev")[0] == 0
    before = (in_repo / "rendered/dev.yaml").read_text()
    (in_repo / "clusters/dev/replicas.yaml").write_text("kind: Deployment\nspec: [\n")
    code, _out, err = _run(capsys, "--cluster", "dev", "--no-cache")
    assert code == 2
    assert "kustomize failed for cluster dev" in err
    assert "(file: clusters/dev/replicas.yaml)" in err
    assert "build" in err and "exited with code 1" in err
    assert (in_repo / "rendered/dev.yaml").read_text() == before
    assert [p.name for p in (in_repo / "rendered").iterdir()] == ["dev.yaml"]


def test_one_failing_cluster_does_not_stop_the_others(in_repo: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    (in_repo / "clusters/dev/kustomization.yaml").write_text(
        "resources:\n- https://github.com/org/repo//base?ref=v1\n")
    code, out, err = _run(capsys, "--all")
    assert code == 2
    assert "prod: 9 objects" in out
    assert "cluster dev pulls remote bases" in err and "1 of 2 cluster(s) failed" in err
    assert not (in_repo / "rendered/dev.yaml").exists()


def test_unknown_cluster_and_missing_binary_are_errors_with_a_way_out(
        in_repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "--cluster", "nope")
    assert code == 2 and "no cluster named 'nope'" in err and "known here: dev, prod" in err
    code, _, err = _run(capsys, "--kustomize", str(in_repo / "no-such-kustomize"))
    assert code == 2 and "make kustomize" in err


def test_render_ref_renders_the_clusters_of_a_commit(in_repo: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    git = pygit2.init_repository(str(in_repo), initial_head="main")
    commit = commit_all(git, "two clusters")
    write_files(in_repo, {"clusters/late/kustomization.yaml": "resources: []\n"})
    code, _out, err = _run(capsys, "--ref", "main", "--out", "at-main")
    assert code == 0, err
    assert sorted(p.name for p in (in_repo / "at-main").iterdir()) == ["dev.yaml", "prod.yaml"]
    assert f"# source: git commit {commit}\n" in (in_repo / "at-main/dev.yaml").read_text()
    code, _, err = _run(capsys, "--ref", "no-such-branch")
    assert code == 2 and "'no-such-branch' is not a branch, tag or commit" in err
