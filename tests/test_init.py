"""`stackctl init`: a deployment repo that the other commands accept."""

from __future__ import annotations

from pathlib import Path

import pygit2
import pytest

from gitops.cli import main
from gitops.cluster import list_clusters, load_cluster
from gitops.errors import ConfigError, SourceError
from gitops.scaffold import init_stack
from gitops.stack import load_stack
from gitops.vendor import import_release
from tests.fixtures.gitrepos import commit_all, release_folder, repo_status

Releases = dict[str, dict[str, "str | bytes | tuple[str | bytes, int]"]]


def test_init_scaffolds_a_committed_repo_that_imports_cleanly(
    tmp_path: Path, git_env: Path, upstream_files: Releases
) -> None:
    release_folder(tmp_path / "rf", upstream_files)
    result = init_stack(Path("platform"), name="mlstack", source="rf", ref="v1.4",
                        cwd=tmp_path)
    root = tmp_path / "platform"
    assert result.root == root and result.new_repo and result.commit
    assert result.source == str(tmp_path / "rf") and result.source_kind == "release-folder"
    assert sorted(result.created) == [
        ".gitignore", "clusters/dev/cluster.yaml", "clusters/dev/kustomization.yaml",
        "overlays/.gitkeep", "stack.yaml", "vendor/.gitkeep"]
    stack = load_stack(root)
    assert (stack.name, stack.source, stack.ref) == ("mlstack", str(tmp_path / "rf"), "v1.4")
    assert list_clusters(stack) == ["dev"]
    cluster = load_cluster(stack, "dev")  # the documented cluster.yaml is valid
    assert cluster.policy.prune is True
    assert ".stackctl/" in (root / ".gitignore").read_text().splitlines()
    repo = pygit2.Repository(str(root))
    assert repo.head.shorthand == "main"
    assert repo_status(root) == {}

    imported = import_release(stack, ref=None)  # stack.yaml's ref
    assert imported.resolved.name == "v1.4.1"
    assert repo_status(root) == {}


def test_cluster_yaml_documents_every_key(tmp_path: Path, git_env: Path,
                                          upstream_files: Releases) -> None:
    release_folder(tmp_path / "rf", upstream_files)
    init_stack(tmp_path / "p", name="mlstack", source=str(tmp_path / "rf"), cluster="edge")
    text = (tmp_path / "p/clusters/edge/cluster.yaml").read_text()
    for key in ("kubeconfig:", "context:", "recordsNamespace:", "wave:", "apply:", "timeout:",
                "prune:", "protectedKinds:", "concurrency:", "forceConflicts:", "replace:"):
        assert key in text
    stack_text = (tmp_path / "p/stack.yaml").read_text()
    assert "# ref:" in stack_text and "# mirrors:" in stack_text
    # Uncommenting the example gives a stack.yaml that loads, with the mirror in it.
    (tmp_path / "p/stack.yaml").write_text(stack_text.replace("# mirrors:", "mirrors:").replace(
        "#   https://github.com/", "  https://github.com/"))
    assert dict(load_stack(tmp_path / "p").mirrors) == {
        "https://github.com/": "file:///srv/mirrors/github.com/"}


def test_init_inside_an_existing_repo_does_not_commit(
    tmp_path: Path, git_env: Path, upstream_files: Releases
) -> None:
    release_folder(tmp_path / "mono/upstream", upstream_files)
    repo = pygit2.init_repository(str(tmp_path / "mono"), initial_head="main")
    commit_all(repo, "initial")
    head = repo.head.target
    result = init_stack(tmp_path / "mono" / "platform", name="mlstack",
                        source=str(tmp_path / "mono/upstream/"), cwd=tmp_path)
    assert not result.new_repo and result.commit is None
    assert result.source == str(tmp_path / "mono/upstream")
    assert pygit2.Repository(str(tmp_path / "mono")).head.target == head


def test_source_inside_the_new_repo_is_written_relative(
    tmp_path: Path, git_env: Path, upstream_files: Releases
) -> None:
    release_folder(tmp_path / "p/upstream/mlstack", upstream_files)
    result = init_stack(tmp_path / "p", name="mlstack", source="p/upstream/mlstack",
                        cwd=tmp_path)
    assert result.source == "upstream/mlstack"
    assert "source: upstream/mlstack\n" in (tmp_path / "p/stack.yaml").read_text()


def test_init_refuses_to_overwrite_stack_yaml(tmp_path: Path, git_env: Path) -> None:
    (tmp_path / "stack.yaml").write_text("name: x\nsource: y\n")
    with pytest.raises(ConfigError, match="does not overwrite it"):
        init_stack(tmp_path, name="mlstack", source="https://example.com/x.git")
    assert (tmp_path / "stack.yaml").read_text() == "name: x\nsource: y\n"


def test_init_checks_names_and_local_sources(tmp_path: Path, git_env: Path) -> None:
    with pytest.raises(ConfigError, match="invalid stack name 'Bad Name'"):
        init_stack(tmp_path / "a", name="Bad Name", source="https://example.com/x.git")
    with pytest.raises(SourceError, match="does not exist"):
        init_stack(tmp_path / "a", name="ok", source=str(tmp_path / "missing"))
    assert not (tmp_path / "a").exists()


def test_init_command_prints_next_steps_and_refuses_twice(
    tmp_path: Path, git_env: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    args = ["init", "demo", "--name", "kf", "--source", "https://github.com/kubeflow/manifests",
            "--cluster", "microk8s-dev"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "clusters/microk8s-dev/kustomization.yaml" in out
    assert "initialised a git repository; initial commit" in out
    assert "stackctl vendor import --ref REF" in out
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "does not overwrite it" in err and "Traceback" not in err
