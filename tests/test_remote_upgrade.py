"""Remote bases across an upgrade, on a tiny upstream whose kustomizations pull a git base
(argo-workflows at a tag), a release file as a resource, and a settings file a generator
reads, all served by a mirror in tmp_path. v1.0.0 -> v1.1.0 bumps argo's ref v3.7.3 ->
v3.7.4: the report shows it as a change of the remote, the new copy replaces the old one,
local customizations are kept, and the cluster renders offline."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pygit2
import pytest

from gitops import git
from gitops.cli import main
from gitops.errors import ConfigError
from gitops.lock import read_lock
from gitops.render import render_cluster
from gitops.stack import load_stack
from gitops.upgrade import REPORT_JSON, REPORT_MD, start_upgrade
from gitops.vendor import import_release
from tests.fixtures.gitrepos import commit_all, release_folder, write_files
from tests.fixtures.remote_mirror import TINY_ARGO, tag

K = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
ARGO = "https://github.com/argoproj/argo-workflows"
SETTINGS = "https://raw.githubusercontent.com/org/settings/v1/settings.yaml"
JOBSET = "https://github.com/kubernetes-sigs/jobset/releases/download/v0.6.0/manifests.yaml"
V = "vendor/mlstack"
OLD = f"{V}/_remotes/git/github.com/argoproj/argo-workflows/v3.7.3"
NEW = f"{V}/_remotes/git/github.com/argoproj/argo-workflows/v3.7.4"
CRD = "manifests/base/crds/minimal/argoproj.io_workflows.yaml"


def _release(argo_ref: str, image: str) -> dict[str, str | bytes | tuple[str | bytes, int]]:
    return {
        "kustomization.yaml": K + "resources:\n- app\n- workflows\n",
        "app/kustomization.yaml": K + "resources:\n- deployment.yaml\n",
        "app/deployment.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n"
        f"  name: web\nspec:\n  replicas: 1\n  template:\n    spec:\n      containers:\n"
        f"      - name: web\n        image: reg/web:{image}\n",
        "workflows/kustomization.yaml": K + "resources:\n"
        "# the workflow CRDs, from upstream\n"
        f"- github.com/argoproj/argo-workflows/manifests/base/crds/minimal?ref={argo_ref}\n"
        f"- {JOBSET}  # jobset's release file\n"
        "configMapGenerator:\n- name: settings\n  files:\n"
        f"  - settings.yaml={SETTINGS}\n",
    }


RELEASES = {"v1.0.0": _release("v3.7.3", "1.0"), "v1.1.0": _release("v3.7.4", "1.1")}
JOBSET_FILE = (b"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: jobset-system\n")
SETTINGS_FILE = b"level: 1\n"


@pytest.fixture
def mirror(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """argo-workflows tagged v3.7.3 and v3.7.4 (the CRD gains a short name), jobset's
    release file and the settings file; two mirror prefixes from STACKCTL_MIRRORS."""
    root = tmp_path / "mirror"
    argo = root / "github.com/argoproj/argo-workflows.git"
    pygit2.init_repository(str(argo), bare=True, initial_head="main")
    commits = {"v3.7.3": tag(argo, "v3.7.3", TINY_ARGO)}
    bumped = dict(TINY_ARGO)
    bumped[CRD] = (git.MODE_FILE, TINY_ARGO[CRD][1].replace(
        b"plural: workflows}", b"plural: workflows, shortNames: [wf]}"))
    commits["v3.7.4"] = tag(argo, "v3.7.4", bumped)
    write_files(root, {"github.com/kubernetes-sigs/jobset/releases/download/v0.6.0/"
                       "manifests.yaml": JOBSET_FILE,
                       "raw/org/settings/v1/settings.yaml": SETTINGS_FILE})
    monkeypatch.setenv("STACKCTL_MIRRORS",
                       f"https://github.com/={(root / 'github.com').as_uri()}/ "
                       f"https://raw.githubusercontent.com/={(root / 'raw').as_uri()}/")
    return commits


@pytest.fixture
def repo(tmp_path: Path, deploy_repo: Callable[..., Path], mirror: dict[str, str]) -> Path:
    """v1.0.0 imported, a cluster on it, and local customizations committed: a label in
    the vendored CRD copy, and the web image pinned in the vendored app."""
    root = deploy_repo(source=str(release_folder(tmp_path / "rf", RELEASES)))
    import_release(load_stack(root), ref="v1.0.0")
    write_files(root, {"clusters/dev/kustomization.yaml":
                       K + "resources:\n- ../../vendor/mlstack\n"})
    crd = root / OLD / CRD
    crd.write_text(crd.read_text().replace("metadata:\n", "metadata:\n  labels: {team: ml}\n"))
    dep = root / V / "app/deployment.yaml"
    dep.write_text(dep.read_text().replace("replicas: 1", "replicas: 3  # local"))
    commit_all(pygit2.Repository(str(root)), "local customizations")
    return root


def test_import_localizes_a_git_base_a_resource_file_and_a_generator_file(
    repo: Path, mirror: dict[str, str],
) -> None:
    k = (repo / V / "workflows/kustomization.yaml").read_text()
    # entries rewritten in place: comments, order and layout kept
    assert k == (K + "resources:\n# the workflow CRDs, from upstream\n"
                 "- ../_remotes/git/github.com/argoproj/argo-workflows/v3.7.3/manifests/base/"
                 "crds/minimal\n"
                 "- ../_remotes/https/github.com/kubernetes-sigs/jobset/releases/download/"
                 "v0.6.0/manifests.yaml  # jobset's release file\n"
                 "configMapGenerator:\n- name: settings\n  files:\n"
                 "  - settings.yaml=_remotes/https/raw.githubusercontent.com/org/settings/v1/"
                 "settings.yaml\n")
    # the generator's file lives below the kustomization (kustomize's load restrictor)
    assert (repo / V / "workflows/_remotes/https/raw.githubusercontent.com/org/settings/v1/"
            "settings.yaml").read_bytes() == SETTINGS_FILE
    wrapper = repo / V / ("_remotes/https/github.com/kubernetes-sigs/jobset/releases/download/"
                          "v0.6.0/manifests.yaml")
    assert (wrapper / "manifests.yaml").read_bytes() == JOBSET_FILE
    assert "- manifests.yaml\n" in (wrapper / "kustomization.yaml").read_text()
    # only what the base needs, and the license
    assert sorted(git.read_worktree_files(repo / OLD)) == [
        "LICENSE", "manifests/base/crds/minimal/argoproj.io_workflows.yaml",
        "manifests/base/crds/minimal/kustomization.yaml"]
    entry = (read_lock(repo) or pytest.fail("no lock")).get("mlstack")
    assert entry is not None
    assert [(p.kind, p.url, p.ref) for p in entry.remotes] == [
        ("file", JOBSET, None), ("file", SETTINGS, None), ("git", ARGO, "v3.7.3")]
    settings = entry.remotes[1]
    assert settings.path is None and settings.localized[0].field == "configMapGenerator"


def test_upgrade_bumping_a_remote_ref_reports_the_change_and_keeps_customizations(
    repo: Path, mirror: dict[str, str], kustomize: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    result = start_upgrade(load_stack(repo), ref="v1.1.0")

    assert result.outcome == "committed", result.report.to_text()
    assert [(r.change, r.url, r.before, r.after) for r in result.report.remotes] == [
        ("changed", ARGO, f"v3.7.3 ({mirror['v3.7.3'][:12]})",
         f"v3.7.4 ({mirror['v3.7.4'][:12]})")]
    text = result.report.to_text()
    assert (f"remote bases:\n  changed {ARGO}: v3.7.3 ({mirror['v3.7.3'][:12]}) -> "
            f"v3.7.4 ({mirror['v3.7.4'][:12]})") in text
    assert "## Remote bases" in (repo / REPORT_MD).read_text()
    assert json.loads((repo / REPORT_JSON).read_text())["remotes"][0]["change"] == "changed"
    # the new copy replaced the old one, and the entry points at it
    assert not (repo / OLD).exists() and (repo / NEW / CRD).is_file()
    assert "argo-workflows/v3.7.4/manifests" in (repo / V / "workflows/kustomization.yaml"
                                                 ).read_text()
    entry = (read_lock(repo) or pytest.fail("no lock")).get("mlstack")
    assert entry is not None
    assert {(p.url, p.ref, p.commit) for p in entry.remotes if p.kind == "git"} == {
        (ARGO, "v3.7.4", mirror["v3.7.4"])}
    # customizations kept: the local label followed the vendored CRD to the new ref
    crd = (repo / NEW / CRD).read_text()
    assert "labels: {team: ml}" in crd and "shortNames: [wf]" in crd
    assert "replicas: 3  # local" in (repo / V / "app/deployment.yaml").read_text()
    # and the cluster renders offline from the merged tree
    objects = {(o.id.kind, o.id.name): o.body
               for o in render_cluster(load_stack(repo), "dev").objects}
    wf = objects["CustomResourceDefinition", "workflows.argoproj.io"]
    assert wf["metadata"]["labels"] == {"team": "ml"}
    assert wf["spec"]["names"]["shortNames"] == ["wf"]
    assert objects["Deployment", "web"]["spec"]["replicas"] == 3
    assert ("Namespace", "jobset-system") in objects

    monkeypatch.chdir(repo)
    # plan renders both commits from git: the vendored copies are in them
    assert main(["plan", "--base", "main", "--head", "HEAD", "--format", "json"]) == 1
    plan = json.loads(capsys.readouterr().out)
    assert "CustomResourceDefinition" in json.dumps(plan) and "shortNames" in json.dumps(plan)

    assert main(["vendor", "status", "--offline"]) == 0
    out = capsys.readouterr().out
    # the copy holds the local label: status tells it from the pinned content
    assert f"{ARGO} v3.7.4 ({mirror['v3.7.4'][:12]}), 1 entry: modified ({NEW})" in out
    assert f"{JOBSET} sha256 " in out and "1 entry: intact" in out


def test_stack_yaml_mirrors_serve_an_air_gapped_import_and_a_wrong_one_is_one_paragraph(
    tmp_path: Path, deploy_repo: Callable[..., Path], mirror: dict[str, str],
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("STACKCTL_MIRRORS")
    root = deploy_repo(source=str(release_folder(tmp_path / "rf", RELEASES)))
    gh, raw = (tmp_path / "mirror/github.com").as_uri(), (tmp_path / "mirror/raw").as_uri()
    stack_yaml = root / "stack.yaml"
    stack_yaml.write_text(stack_yaml.read_text() + "mirrors:\n"
                          f"  https://github.com/: {tmp_path.as_uri()}/empty/\n"
                          f"  https://raw.githubusercontent.com/: {raw}/\n")
    commit_all(pygit2.Repository(str(root)), "mirrors")
    monkeypatch.chdir(root)

    assert main(["vendor", "import", "--ref", "v1.0.0"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"cannot fetch the git repository {ARGO}, which {V}/workflows/kustomization.yaml " \
           f"pulls: it was tried through {tmp_path.as_uri()}/empty/argoproj/argo-workflows " \
           f"(the mirror https://github.com/ -> {tmp_path.as_uri()}/empty/)" in err
    assert "Traceback" not in err and not (root / V).exists()

    stack_yaml.write_text(stack_yaml.read_text().replace(f"{tmp_path.as_uri()}/empty/",
                                                         f"{gh}/"))
    commit_all(pygit2.Repository(str(root)), "the right mirror")
    assert main(["vendor", "import", "--ref", "v1.0.0"]) == 0, capsys.readouterr().err
    assert (root / OLD / CRD).is_file()


def test_mirrors_in_stack_yaml_must_map_strings_to_strings(
    tmp_path: Path, deploy_repo: Callable[..., Path],
) -> None:
    root = deploy_repo(source=str(tmp_path))
    (root / "stack.yaml").write_text("name: mlstack\nsource: x\nmirrors:\n"
                                     "  https://github.com/: [a]\n")
    with pytest.raises(ConfigError, match=r"stack.yaml: mirrors: every mirror maps a URL "
                                          r"prefix to a replacement prefix"):
        load_stack(root)
