"""The kustomize binary: lookup order, version check, hermetic environment, error
translation, and the walk of the kustomization graph."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gitops.errors import KustomizeError
from gitops.kustomize import (
    KustomizeBuildError,
    find_kustomize,
    first_useful_line,
    hermetic_env,
    is_remote,
    walk,
)
from tests.fixtures.gitrepos import write_files


def _fake(path: Path, version_line: str) -> Path:
    """A stand-in binary that only answers `version` (lookup and version tests only)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\necho '{version_line}'\n")
    path.chmod(0o755)
    return path


@pytest.fixture
def no_kustomize(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An environment with no kustomize anywhere: empty PATH and sandbox bin dir."""
    monkeypatch.delenv("STACKCTL_KUSTOMIZE", raising=False)
    monkeypatch.setenv("STACKCTL_SANDBOX_BIN", str(tmp_path / "sandbox-bin"))
    monkeypatch.setenv("PATH", str(tmp_path / "path-bin"))
    return tmp_path


def test_lookup_prefers_flag_then_env_then_sandbox_then_path(
        no_kustomize: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    on_path = _fake(no_kustomize / "path-bin" / "kustomize", "v5.0.0")
    assert find_kustomize().path == on_path
    sandbox = _fake(no_kustomize / "sandbox-bin" / "kustomize", "v5.1.0")
    assert find_kustomize().path == sandbox
    env = _fake(no_kustomize / "env" / "kustomize", "v5.2.0")
    monkeypatch.setenv("STACKCTL_KUSTOMIZE", str(env))
    assert find_kustomize().path == env
    flag = _fake(no_kustomize / "flag" / "kustomize", "v5.3.1")
    found = find_kustomize(flag)
    assert (found.path, found.version) == (flag, "v5.3.1")


def test_missing_binary_says_how_to_get_one(no_kustomize: Path) -> None:
    with pytest.raises(KustomizeError) as e:
        find_kustomize()
    assert "make kustomize" in str(e.value)
    assert "--kustomize PATH" in str(e.value)


def test_a_kustomize_older_than_five_is_refused(no_kustomize: Path) -> None:
    old = _fake(no_kustomize / "old" / "kustomize",
                "{Version:kustomize/v4.5.7 GitCommit:56d82a8 BuildDate:2022-08-02}")
    with pytest.raises(KustomizeError) as e:
        find_kustomize(old)
    assert "4.5.7" in str(e.value) and "5.0.0" in str(e.value)


def test_a_binary_that_prints_no_version_is_refused(no_kustomize: Path) -> None:
    odd = _fake(no_kustomize / "odd" / "kustomize", "(devel)")
    with pytest.raises(KustomizeError, match="did not print a version"):
        find_kustomize(odd)


def test_real_binary_reports_its_version(kustomize: Path) -> None:
    k = find_kustomize()
    assert k.path == kustomize
    assert k.version.startswith("v5.")


def test_hermetic_environment_points_every_proxy_at_a_closed_port(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_PROXY", "*")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")
    env = hermetic_env()
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "https_proxy", "ALL_PROXY"):
        assert env[var] == "http://127.0.0.1:9"
    assert env["NO_PROXY"] == "" and env["GIT_TERMINAL_PROMPT"] == "0"
    assert env["GIT_ALLOW_PROTOCOL"] == "file"
    assert "AWS_SECRET_ACCESS_KEY" not in env


@pytest.mark.parametrize("ref", [
    "github.com/argoproj/argo-workflows/manifests/base/crds/minimal?ref=v3.7.3",
    "https://github.com/kubeflow/manifests//common/cert-manager?ref=v1.4.0",
    "git::https://example.com/org/repo.git//base",
    "git@github.com:org/repo.git/base",
    "ssh://git@gitlab.com/org/repo.git",
    "https://raw.githubusercontent.com/org/repo/main/deploy.yaml",
    "../base?ref=main",
])
def test_remote_references_are_recognised(ref: str, tmp_path: Path) -> None:
    assert is_remote(ref, tmp_path)


@pytest.mark.parametrize("ref", ["../base", "deploy.yaml", "v1.2/patch.yaml", "./app"])
def test_local_references_are_not_remote(ref: str, tmp_path: Path) -> None:
    assert not is_remote(ref, tmp_path)


def test_walk_follows_every_kind_of_reference_and_collects_remote_ones(tmp_path: Path) -> None:
    write_files(tmp_path, {
        "clusters/dev/kustomization.yaml": (
            "resources:\n- ../../overlays/app\n- github.com/org/repo/base?ref=v1\n"
            "components:\n- ../../components/mirror\n"
            "patches:\n- path: patch.yaml\n"
            "configMapGenerator:\n- name: cfg\n  files: [conf=files/app.conf]\n"
            "  envs: [vars.env]\n"),
        "clusters/dev/patch.yaml": "x",
        "clusters/dev/files/app.conf": "x",
        "clusters/dev/vars.env": "A=1\n",
        "overlays/app/kustomization.yaml": "bases:\n- ../../vendor/up/base\n",
        "vendor/up/base/kustomization.yaml": "resources: [deploy.yaml]\n",
        "vendor/up/base/deploy.yaml": "x",
        "vendor/up/unrelated/kustomization.yaml": "resources: []\n",
        "components/mirror/kustomization.yaml": "kind: Component\n",
        "components/mirror/.git/config": "ignored",
    })
    inputs = walk(tmp_path / "clusters" / "dev")
    rel = [r for r, _ in inputs.relative()]
    assert rel == sorted([
        "../../components/mirror/kustomization.yaml", "../../overlays/app/kustomization.yaml",
        "../../vendor/up/base/deploy.yaml", "../../vendor/up/base/kustomization.yaml",
        "files/app.conf", "kustomization.yaml", "patch.yaml", "vars.env",
    ])
    assert [(r.kustomization.name, r.field, r.url) for r in inputs.remote] == [
        ("kustomization.yaml", "resources", "github.com/org/repo/base?ref=v1")]


def test_walk_of_a_folder_without_kustomization_fails_clearly(tmp_path: Path) -> None:
    with pytest.raises(KustomizeError, match=r"has no kustomization\.yaml"):
        walk(tmp_path)


def test_first_useful_line_skips_warnings_and_kustomizes_directory_fallback() -> None:
    stderr = (
        "# Warning: 'bases' is deprecated. Please use 'resources' instead.\n"
        "Error: accumulating resources: accumulation err='accumulating resources from "
        "'missing.yaml': lstat /r/missing.yaml: no such file or directory': must build at "
        "directory: not a valid directory: lstat /r/missing.yaml: no such file or directory\n")
    assert first_useful_line(stderr) == (
        "accumulating resources: accumulating resources from 'missing.yaml': lstat "
        "/r/missing.yaml: no such file or directory")


def test_a_failed_build_names_the_command_exit_code_and_file(kustomize: Path,
                                                             tmp_path: Path) -> None:
    write_files(tmp_path, {
        "kustomization.yaml": "resources:\n- cm.yaml\n",
        "cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [x\n",
    })
    with pytest.raises(KustomizeBuildError) as e:
        find_kustomize().build(tmp_path, what="cluster dev", files=["kustomization.yaml",
                                                                     "cm.yaml"])
    err = e.value
    assert err.file == "cm.yaml"
    assert err.exit_code_of_command == 1
    assert err.command[-2:] == ("build", str(tmp_path))
    msg = str(err)
    assert "cluster dev" in msg and "MalformedYAMLError" in msg and "(file: cm.yaml)" in msg
    assert f"'{kustomize} build {tmp_path}' exited with code 1" in msg


def test_builds_run_without_network_variables_from_the_caller(
        kustomize: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A resource fetched over HTTP must fail through the dead proxy, not reach anything.
    monkeypatch.setenv("HTTPS_PROXY", "")
    write_files(tmp_path, {"kustomization.yaml":
                           "resources:\n- https://example.invalid/deploy.yaml\n"})
    with pytest.raises(KustomizeBuildError) as e:
        find_kustomize().build(tmp_path, what="cluster dev")
    assert "proxyconnect tcp: dial tcp 127.0.0.1:9" in str(e.value)
    assert e.value.file == "https://example.invalid/deploy.yaml"
    assert os.environ["HTTPS_PROXY"] == ""
