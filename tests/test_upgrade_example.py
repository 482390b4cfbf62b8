"""`stackctl upgrade --vendor v1.4` on the repo's own example stack (docs/example-stack.md):
a copy of this repository's deployment (stack.yaml, stackctl.lock, vendor/, overlays/,
clusters/, and examples/upstream/mlstack as the source) as a fresh git repository whose only
branch is main, like a CI clone. The oracle is tests/test_example_stack.py's tables.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pygit2
import pytest

from gitops import git
from gitops.cli import main
from gitops.lock import read_lock
from gitops.stack import load_stack
from gitops.vendor import vendor_status
from gitops.yamlio import load_all_safe
from tests.fixtures.gitrepos import commit_all, repo_status
from tests.test_example_stack import (
    CLUSTERS,
    LOCAL_EDITS,
    LOCAL_FILES,
    OVERLAY_REWRITES,
    PLANNED_CONFLICT,
    REPLICAS,
    ROOT,
    UPGRADED_EDITS,
    UPGRADED_IMAGES,
    UPSTREAM,
    _fields,
    check_customizations,
    files,
    images,
    make_upgraded_repo,
)

BRANCH = "upgrade/mlstack-v1.4.1"
V = "vendor/mlstack"
ADDRESS = f"{V}/{PLANNED_CONFLICT[0]}:{PLANNED_CONFLICT[1]}:{PLANNED_CONFLICT[2]}"
# v1.4 drops usage-reporter: both clusters' registry mirrors of its image lose their effect.
LOST_MIRRORS = tuple(f"clusters/{c}/kustomization.yaml::images[name=ghcr.io/mlstack/"
                     "usage-reporter]" for c in ("eks-prod", "microk8s-dev"))

Build = Callable[[Path], list[dict[str, Any]]]


@pytest.fixture
def example(tmp_path: Path, git_env: Path, kustomize: Path,
            monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "platform"
    root.mkdir()
    for name in ("stack.yaml", "stackctl.lock", ".gitignore"):
        shutil.copyfile(ROOT / name, root / name)
    for top in ("vendor", "overlays", "clusters"):
        shutil.copytree(ROOT / top, root / top)
    shutil.copytree(UPSTREAM, root / "examples/upstream/mlstack")
    commit_all(pygit2.init_repository(str(root), initial_head="main"), "the example stack")
    monkeypatch.chdir(root)
    return root


@pytest.fixture
def build(kustomize: Path) -> Build:
    def run(path: Path) -> list[dict[str, Any]]:
        proc = subprocess.run([str(kustomize), "build", str(path)], capture_output=True,
                              text=True, check=False)
        assert proc.returncode == 0, f"kustomize build {path} failed:\n{proc.stderr}"
        return [d for d in load_all_safe(proc.stdout, path=path) if d]

    return run


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["upgrade", *args])
    out, err = capsys.readouterr()
    return code, out, " ".join(err.split())


def refs(root: Path) -> dict[str, str]:
    repo = pygit2.Repository(str(root))
    out = {name: str(repo.branches.local[name].target) for name in repo.branches.local}
    out["HEAD"] = repo.head.name
    return out


def tree_files(root: Path) -> dict[str, bytes]:
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root)
        if p.is_file() and rel.parts[0] not in (".git", ".stackctl"):
            out[rel.as_posix()] = p.read_bytes()
    return out


# ----------------------------------------------------------------------- the repo's lock


def test_the_repo_lock_pins_pristine_v1_3_0_and_status_shows_the_seven_local_edits(
    example: Path,
) -> None:
    lock = read_lock(ROOT)
    assert lock is not None
    entry = lock.get("mlstack")
    assert entry is not None
    assert (entry.source, entry.source_kind, entry.ref, entry.resolved) == (
        "examples/upstream/mlstack", "release-folder", "v1.3", "v1.3.0")
    pristine = git.read_worktree_files(UPSTREAM / "v1.3.0")
    assert entry.digest == git.digest(pristine) and entry.files == len(pristine) == 48
    # In a clone holding only main the vendor branch is rebuilt from the lock.
    st = vendor_status(load_stack(example), check_source=False)
    assert (len(st.modified), len(st.added), len(st.deleted)) == (5, 2, 0)
    assert set(st.modified) == set(LOCAL_EDITS) and set(st.added) == set(LOCAL_FILES)
    assert refs(example)["vendor/mlstack"]


# --------------------------------------------------------------------------- upgrade


def test_upgrade_to_v1_4_reports_exactly_the_planned_conflict(
    example: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main_before = refs(example)["main"]
    code, out, err = run(capsys, "--vendor", "v1.4", "--format", "json")
    assert code == 1, err
    data = json.loads(out)
    assert (data["from"], data["to"], data["upgradeBranch"]) == ("v1.3.0", "v1.4.1", BRANCH)
    path, resource, field, base, ours, theirs = PLANNED_CONFLICT
    conflicts = data["merge"]["conflicts"]
    assert [(c["path"], c["resource"], c["field"], c["base"], c["ours"], c["theirs"])
            for c in conflicts if c["kind"] != "no-effect"] == [
        (f"{V}/{path}", resource, field, base, ours, theirs)]
    lost = [c for c in conflicts if c["kind"] == "no-effect"]
    assert [c["address"] for c in lost] == list(LOST_MIRRORS)
    assert lost[0]["theirs"] == (
        "no container runs 123456789012.dkr.ecr.eu-west-1.amazonaws.com/mlstack/usage-reporter"
        " any more (Deployment/usage-reporter -n mlstack-prod no longer rendered: upstream "
        "dropped it?)")
    assert data["openConflicts"] == [*LOST_MIRRORS, ADDRESS]
    assert [(r["file"], r["old"], r["new"]) for r in data["merge"]["rewritten_references"]] == [
        ("overlays/internal-gateway/kustomization.yaml",
         "../../vendor/mlstack/common/gateway-1-9/ingress-gateway/base",
         "../../vendor/mlstack/common/gateway-1-11/ingress-gateway/base")]
    assert data["merge"]["unresolved_references"] == []
    clusters = {c["name"]: c for c in data["clusters"]}
    assert set(clusters) == set(CLUSTERS)
    assert all(c["status"] == "changed" and c["error"] is None for c in clusters.values())
    assert (clusters["microk8s-dev"]["objectsBefore"], clusters["eks-prod"]["objectsBefore"]) \
        == (48, 51)
    assert "Deployment.apps/model-registry -n mlstack-dev [rest]: (none) -> " \
        "ghcr.io/mlstack/model-registry:v1.4.0" in clusters["microk8s-dev"]["images"]
    assert refs(example)["main"] == main_before
    assert refs(example)["HEAD"] == f"refs/heads/{BRANCH}"


@pytest.mark.parametrize("choice", ["theirs", "ours"])
def test_resolving_and_continuing_gives_v1_4_1_with_every_customization(
    example: Path, build: Build, capsys: pytest.CaptureFixture[str],
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch, choice: str
) -> None:
    main_before = refs(example)["main"]
    assert run(capsys, "--vendor", "v1.4")[0] == 1
    code, _, err = run(capsys, "--resolve", ADDRESS, f"--{choice}")
    assert code == 0, err
    for lost in LOST_MIRRORS:  # the mirrors of the image v1.4 no longer ships stay
        code, _, err = run(capsys, "--resolve", lost, "--ours")
        assert code == 0, err
    code, out, err = run(capsys, "--continue")
    assert code == 0, err
    assert "microk8s-dev: changed, 48 -> 50 objects" in out
    assert "eks-prod: changed, 51 -> 53 objects" in out
    r = refs(example)
    repo = pygit2.Repository(str(example))
    commit = repo.head.peel(pygit2.Commit)
    assert [str(p) for p in commit.parent_ids] == [main_before, r["vendor/mlstack"]]
    assert repo_status(example) == {}
    entry = read_lock(example).get("mlstack")  # type: ignore[union-attr]
    assert entry is not None and (entry.resolved, entry.vendor_commit) == (
        "v1.4.1", r["vendor/mlstack"])
    # The files: v1.4.1 plus every local edit (the oracle), the moved path rewritten.
    expected = make_upgraded_repo(tmp_path_factory.mktemp("expected"))
    replicas = PLANNED_CONFLICT[4] if choice == "ours" else PLANNED_CONFLICT[5]
    deployment = expected / V / PLANNED_CONFLICT[0]
    deployment.write_text(deployment.read_text().replace(
        "replicas: 3", f"replicas: {replicas}"))
    assert files(example / V) == files(expected / V)
    for rel in sorted(files(expected / V)):
        if rel in UPGRADED_EDITS:  # the same fields and values (list order may differ)
            assert _fields(example / V, rel) == _fields(expected / V, rel), rel
        else:
            assert (example / V / rel).read_bytes() == (expected / V / rel).read_bytes(), rel
    for rel in OVERLAY_REWRITES:
        assert (example / rel).read_text() == (expected / rel).read_text()
    assert tree_files(example / "clusters") == tree_files(expected / "clusters")
    # And the clusters render with every customization.
    for cluster in CLUSTERS:
        monkeypatch.setitem(REPLICAS[cluster], "dashboard", replicas)
        objs = build(example / "clusters" / cluster)
        check_customizations(objs, cluster, release="v1.4.1")
        imgs = images(objs)
        for name, image in UPGRADED_IMAGES.items():
            assert imgs[name][0].endswith("/" + image), (name, imgs[name])
        assert "usage-reporter" not in imgs


def test_abort_restores_the_example_stack_exactly(
    example: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before, files_before = refs(example), tree_files(example)
    assert run(capsys, "--vendor", "v1.4")[0] == 1  # rebuilds vendor/mlstack from the lock
    assert tree_files(example) != files_before
    code, _, err = run(capsys, "--abort")
    assert code == 0, err
    after = refs(example)
    # The vendor branch stays as rebuilt from the lock (a clone of main had none).
    assert after.pop("vendor/mlstack") and after == before
    assert tree_files(example) == files_before == _committed(example)
    assert repo_status(example) == {}
    assert not (example / ".stackctl/upgrade/state.json").exists()


def _committed(root: Path) -> dict[str, bytes]:
    repo = git.open_repo(root)
    head = repo.head_commit()
    assert head is not None
    return {p: data for p, (_, data) in repo.read_tree(head).items()}


def test_dirty_example_stack_is_refused(example: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    target = example / "clusters/eks-prod/kustomization.yaml"
    target.write_text(target.read_text() + "# wip\n")
    before = refs(example)
    code, _, err = run(capsys, "--vendor", "v1.4")
    assert code == 2 and "clusters/eks-prod/kustomization.yaml" in err
    assert refs(example) == before
