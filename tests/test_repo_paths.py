"""Paths read from stackctl.lock and cluster.yaml stay inside the repository (issue 12,
item 10): relative values may not climb out of it, the lock's path is never absolute, and a
link on the way may not lead out either. stack.yaml's `source` is the one path meant to
point elsewhere (the upstream), and is read as untrusted content (test_untrusted_upstream).
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pygit2
import pytest

from gitops.cli import main
from tests.fixtures.gitrepos import commit_all, release_folder, write_files

Releases = dict[str, dict[str, "str | bytes | tuple[str | bytes, int]"]]
KUST = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
CM = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\n"


@pytest.fixture
def imported(tmp_path: Path, deploy_repo: Callable[..., Path], upstream_files: Releases,
             monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Path:
    release_folder(tmp_path / "rf", upstream_files)
    root = deploy_repo(source="../rf")
    monkeypatch.chdir(root)
    assert main(["vendor", "import", "--ref", "v1.3.0"]) == 0
    capsys.readouterr()
    return root


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, " ".join(err.split())


def _edit_lock(root: Path, key: str, value: str) -> None:
    lock = root / "stackctl.lock"
    text = re.sub(rf"^(\s*){key}: .*$", rf"\g<1>{key}: {value}", lock.read_text(), flags=re.M)
    lock.write_text(text)


@pytest.mark.parametrize("value", ["../../../../../etc/ssl", "/etc/ssl", "vendor/../../up"])
def test_a_lock_path_outside_the_repository_is_refused_naming_the_file_and_line(
    imported: Path, capsys: pytest.CaptureFixture[str], value: str
) -> None:
    _edit_lock(imported, "path", value)
    code, out, err = _run(capsys, "vendor", "status", "--offline")
    assert code == 2, out
    assert re.search(r"stackctl\.lock:\d+: ", err), err
    assert f"vendor[0].path {value!r}" in err and "inside the repository" in err
    assert "pristine" not in out


def test_a_lock_path_through_a_link_out_of_the_repository_is_refused(
    imported: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outside = tmp_path / "elsewhere"
    shutil.copytree(imported / "vendor", outside)
    shutil.rmtree(imported / "vendor")
    (imported / "vendor").symlink_to(outside)
    code, out, err = _run(capsys, "vendor", "status", "--offline")
    assert code == 2, out
    assert "vendor/mlstack" in err and str(outside) in err and "outside the repository" in err


def test_a_lock_vendor_branch_outside_vendor_is_refused_and_main_never_moves(
    imported: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = pygit2.Repository(str(imported))
    main_before = str(repo.branches.local["main"].target)
    _edit_lock(imported, "vendorBranch", "main")
    commit_all(repo, "a lock that names main as the vendor branch")
    main_before = str(repo.branches.local["main"].target)
    code, _, err = _run(capsys, "vendor", "rebuild", "--refetch")
    assert code == 2
    assert "vendorBranch 'main'" in err and "vendor/mlstack" in err
    assert str(repo.branches.local["main"].target) == main_before


def _cluster(root: Path, cluster_yaml: str | None) -> None:
    files = {"clusters/dev/kustomization.yaml": KUST + "resources:\n- cm.yaml\n",
             "clusters/dev/cm.yaml": CM}
    if cluster_yaml is not None:
        files["clusters/dev/cluster.yaml"] = cluster_yaml
    write_files(root, files)


def test_a_relative_kubeconfig_that_climbs_out_of_the_repository_is_refused(
    tmp_path: Path, deploy_repo: Callable[..., Path], monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str]
) -> None:
    root = deploy_repo(source=".")
    _cluster(root, "kubeconfig: ../../../../../../../../etc/passwd\n")
    monkeypatch.chdir(root)
    code, _, err = _run(capsys, "history", "--cluster", "dev")
    assert code == 2
    assert re.search(r"clusters/dev/cluster\.yaml:1: ", err), err
    assert "'kubeconfig'" in err and "inside the repository" in err
    assert "cannot use" not in err  # the file was never opened as a kubeconfig


def test_an_absolute_or_home_kubeconfig_stays_allowed(
    tmp_path: Path, deploy_repo: Callable[..., Path]
) -> None:
    from gitops.cluster import load_cluster
    from gitops.stack import load_stack

    root = deploy_repo(source=".")
    _cluster(root, f"kubeconfig: {tmp_path / 'kube.yaml'}\n")
    assert load_cluster(load_stack(root), "dev").kubeconfig == tmp_path / "kube.yaml"
    _cluster(root, "kubeconfig: ~/.kube/config\n")
    assert load_cluster(load_stack(root), "dev").kubeconfig == Path("~/.kube/config").expanduser()


def test_a_cluster_yaml_that_is_a_link_out_of_the_repository_is_refused(
    tmp_path: Path, deploy_repo: Callable[..., Path], monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str]
) -> None:
    root = deploy_repo(source=".")
    _cluster(root, None)
    (tmp_path / "foreign.yaml").write_text("kubeconfig: /somewhere/else\n")
    (root / "clusters/dev/cluster.yaml").symlink_to(tmp_path / "foreign.yaml")
    monkeypatch.chdir(root)
    code, _, err = _run(capsys, "history", "--cluster", "dev")
    assert code == 2
    assert "clusters/dev/cluster.yaml" in err and "outside the repository" in err


def test_a_cluster_folder_that_is_a_link_out_of_the_repository_does_not_render(
    tmp_path: Path, deploy_repo: Callable[..., Path], kustomize: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = deploy_repo(source=".")
    write_files(tmp_path / "foreign", {"kustomization.yaml": KUST + "resources:\n- cm.yaml\n",
                                       "cm.yaml": CM})
    (root / "clusters").mkdir()
    (root / "clusters/dev").symlink_to(tmp_path / "foreign")
    monkeypatch.chdir(root)
    code, _, err = _run(capsys, "render", "--cluster", "dev", "--out", str(tmp_path / "out"))
    assert code == 2
    assert "clusters/dev" in err and "outside the repository" in err
