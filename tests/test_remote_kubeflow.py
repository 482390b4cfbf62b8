"""Kubeflow v1.11.0, whose kustomizations pull four remote sources, imported through a
mirror of ../shared/upstream/remote-bases (tests/fixtures/remote_mirror.py), rendered offline,
rebuilt byte for byte from the lock, and refused from a tampered mirror."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest

from gitops import git, rendercache
from gitops.cli import main
from gitops.errors import RemoteError
from gitops.kustomize import BUILD_FLAGS, walk
from gitops.lock import parse_lock, read_lock
from gitops.remote.pins import remote_changes
from gitops.render import render_path
from gitops.source import read_archive
from gitops.stack import load_stack
from gitops.vendor import import_release, rebuild_vendor_branch, vendor_status
from tests.fixtures.gitrepos import repo_status
from tests.fixtures.kubeflow import KUBEFLOW_DIR
from tests.fixtures.remote_mirror import (
    FILE_REMOTES,
    REMOTE_BASES,
    Mirror,
    build_mirror,
    require_remote_bases,
    tag,
)

pytestmark = [pytest.mark.kubeflow, pytest.mark.slow]

V = "vendor/kubeflow"
ARGO = "https://github.com/argoproj/argo-workflows"
LWS = "https://github.com/kubernetes-sigs/lws"
JOBSET = "https://github.com/kubernetes-sigs/jobset/releases/download/{}/manifests.yaml"


@pytest.fixture
def imported(kubeflow_archive: Callable[[str], Path], deploy_repo: Callable[..., Path]
             ) -> Path:
    """A deployment repo with Kubeflow v1.11.0 imported through the mirror (autouse
    STACKCTL_MIRRORS)."""
    kubeflow_archive("v1.11.0")
    require_remote_bases()
    root = deploy_repo(source=str(KUBEFLOW_DIR), name="kubeflow")
    import_release(load_stack(root), ref="v1.11.0")
    return root


@pytest.fixture
def own_mirror(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Mirror:
    """A mirror of this test's own, to tamper with."""
    require_remote_bases()
    mirror = build_mirror(tmp_path / "own-mirror")
    monkeypatch.setenv("STACKCTL_MIRRORS", mirror.env)
    return mirror


def _sha256(name: str) -> str:
    return hashlib.sha256((REMOTE_BASES / name).read_bytes()).hexdigest()


def test_v1_11_0_imports_through_the_mirror_with_each_remote_vendored_and_pinned(
    imported: Path, remote_mirror: Mirror,
) -> None:
    entry = (read_lock(imported) or parse_lock("")).get("kubeflow")
    assert entry is not None
    pins = {(p.kind, p.url, p.ref): p for p in entry.remotes}
    assert set(pins) == {
        ("git", ARGO, "v3.7.3"), ("git", LWS, "v0.7.0"),
        ("file", JOBSET.format("v0.10.1"), None), ("file", JOBSET.format("v0.6.0"), None)}
    argo, lws = pins["git", ARGO, "v3.7.3"], pins["git", LWS, "v0.7.0"]
    assert argo.commit == remote_mirror.commits["argoproj/argo-workflows@v3.7.3"]
    assert lws.commit == remote_mirror.commits["kubernetes-sigs/lws@v0.7.0"]
    assert argo.path == f"{V}/_remotes/git/github.com/argoproj/argo-workflows/v3.7.3"
    assert lws.path == f"{V}/_remotes/git/github.com/kubernetes-sigs/lws/v0.7.0"
    for name in FILE_REMOTES:
        version = name.split("-")[1]
        pin = pins["file", JOBSET.format(version), None]
        assert pin.sha256 == _sha256(name)
        assert pin.path == (f"{V}/_remotes/https/github.com/kubernetes-sigs/jobset/releases/"
                            f"download/{version}/manifests.yaml")
        assert (imported / pin.path / "manifests.yaml").read_bytes() == \
            (REMOTE_BASES / name).read_bytes()
    for pin in entry.remotes:  # the digest of what was vendored, as the working tree holds it
        assert pin.path is not None
        assert pin.digest == git.digest(git.read_worktree_files(imported / pin.path))
    # the nine entries of the README's four URLs, each rewritten to its copy
    assert sorted((len(p.localized), p.url) for p in entry.remotes) == [
        (1, JOBSET.format("v0.10.1")), (1, LWS), (2, JOBSET.format("v0.6.0")), (5, ARGO)]
    for pin in entry.remotes:
        for loc in pin.localized:
            text = (imported / loc.file).read_text()
            assert loc.original not in text and f"- {loc.local}\n" in text
            target = (imported / loc.file).parent / loc.local
            assert target.resolve().is_relative_to((imported / pin.path).resolve())
    # argo is vendored as the folders the four paths need, not the whole repository
    assert 0 < argo.files < len(read_archive(REMOTE_BASES / "argo-workflows-v3.7.3.tar.gz"))
    # the release as fetched, and the localized tree the lock's digest pins
    archive = read_archive(KUBEFLOW_DIR / "kubeflow-manifests-v1.11.0.tar.gz")
    assert entry.upstream_digest == git.digest(archive)
    assert entry.digest == git.digest(git.read_worktree_files(imported / V))
    assert entry.files == len(archive) + sum(p.files for p in entry.remotes)
    assert repo_status(imported) == {}
    st = vendor_status(load_stack(imported), check_source=False)
    assert st.pristine and st.remote_bases == ()
    assert {r.state for r in st.remotes} == {"intact"}


def test_v1_11_0_example_renders_offline_from_the_vendored_tree(
    imported: Path, kustomize: Path,
) -> None:
    example = imported / V / "example"
    assert walk(example).remote == ()  # nothing left for the network
    r = render_path(example, name="kubeflow")  # kustomize runs with every proxy dead
    assert len(r.objects) == 653  # as the remote-bases README measured with the real URLs
    kinds = {(o.id.kind, o.id.name) for o in r.objects}
    assert ("CustomResourceDefinition", "workflows.argoproj.io") in kinds
    assert ("Deployment", "workflow-controller") in kinds
    assert ("CustomResourceDefinition", "jobsets.jobset.x-k8s.io") in kinds
    # lws (a `//` URL) is not in example; the trainer's kustomization that pulls it renders
    lws = render_path(imported / V / "applications/trainer/upstream/third-party/"
                      "leaderworkerset", name="lws")
    assert ("CustomResourceDefinition", "leaderworkersets.leaderworkerset.x-k8s.io") in {
        (o.id.kind, o.id.name) for o in lws.objects}
    # the render cache key covers the vendored remotes: an edit there is another key
    crd = next((imported / V / "_remotes/git/github.com/argoproj/argo-workflows/v3.7.3")
               .rglob("argoproj.io_workflows.yaml"))
    assert crd in walk(example).files
    crd.write_text(crd.read_text() + "# local\n")
    assert _key(example, r.kustomize_version) != r.key


def _key(path: Path, version: str) -> str:
    contents = rendercache.read_inputs(walk(path).relative())
    return rendercache.cache_key(contents, version=version, flags=BUILD_FLAGS)


def test_vendor_rebuild_reproduces_the_same_tree_from_the_lock(imported: Path) -> None:
    stack = load_stack(imported)
    entry = (read_lock(imported) or parse_lock("")).get("kubeflow")
    assert entry is not None
    repo = git.open_repo(imported)
    rebuilt = rebuild_vendor_branch(stack, refetch=True)
    assert rebuilt != entry.vendor_commit
    assert repo.commit_info(rebuilt).tree == repo.commit_info(entry.vendor_commit).tree
    assert repo.commit_info(rebuilt).trailers()["Vendor-Rebuilt-From"] == entry.vendor_commit


def test_a_moved_tag_in_the_mirror_is_refused_by_rebuild_and_by_a_new_import(
    kubeflow_archive: Callable[[str], Path], deploy_repo: Callable[..., Path],
    own_mirror: Mirror, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    kubeflow_archive("v1.11.0")
    root = deploy_repo(source=str(KUBEFLOW_DIR), name="kubeflow")
    stack = load_stack(root)
    import_release(stack, ref="v1.11.0")
    pinned = own_mirror.commits["argoproj/argo-workflows@v3.7.3"]
    argo = own_mirror.github / "argoproj/argo-workflows.git"
    files = read_archive(REMOTE_BASES / "argo-workflows-v3.7.3.tar.gz")
    files["manifests/base/crds/minimal/kustomization.yaml"] = (git.MODE_FILE, b"resources: []\n")
    moved = tag(argo, "v3.7.3", files, message="force-pushed")

    with pytest.raises(RemoteError) as e:
        rebuild_vendor_branch(stack, refetch=True)
    msg = str(e.value)
    assert f"the tag or branch v3.7.3 of {ARGO} moved" in msg
    assert pinned in msg and moved in msg and str(argo.as_uri()) in msg
    with pytest.raises(RemoteError, match="moved"):  # the lock's pins hold for imports too
        import_release(stack, ref="v1.11.0")

    # the command: one paragraph, exit 2, no traceback
    monkeypatch.chdir(root)
    assert main(["vendor", "rebuild", "--refetch"]) == 2
    err = capsys.readouterr().err
    assert "moved" in err and "Traceback" not in err


def test_a_changed_file_in_the_mirror_is_refused_with_a_checksum_mismatch(
    kubeflow_archive: Callable[[str], Path], deploy_repo: Callable[..., Path],
    own_mirror: Mirror,
) -> None:
    kubeflow_archive("v1.11.0")
    root = deploy_repo(source=str(KUBEFLOW_DIR), name="kubeflow")
    stack = load_stack(root)
    import_release(stack, ref="v1.11.0")
    served = own_mirror.github / FILE_REMOTES["jobset-v0.10.1-manifests.yaml"]
    served.write_bytes(served.read_bytes() + b"# changed after the import\n")

    with pytest.raises(RemoteError) as e:
        rebuild_vendor_branch(stack, refetch=True)
    msg = str(e.value)
    assert f"checksum mismatch for {JOBSET.format('v0.10.1')}" in msg
    assert _sha256("jobset-v0.10.1-manifests.yaml") in msg
    assert hashlib.sha256(served.read_bytes()).hexdigest() in msg


def test_from_v1_10_2_the_import_of_v1_11_0_adds_three_remotes_and_keeps_jobset_v0_6_0(
    kubeflow_archive: Callable[[str], Path], deploy_repo: Callable[..., Path],
) -> None:
    # What the upgrade report's remote section is computed from (the full upgrade with
    # customizations is tests/test_upgrade_kubeflow.py's v1.10.2-to-v1.11.0 scenario).
    kubeflow_archive("v1.10.2")
    kubeflow_archive("v1.11.0")
    require_remote_bases()
    root = deploy_repo(source=str(KUBEFLOW_DIR), name="kubeflow")
    stack = load_stack(root)
    before = import_release(stack, ref="v1.10.2").lock_entry
    assert [(p.url, len(p.localized)) for p in before.remotes] == [(JOBSET.format("v0.6.0"), 2)]
    after = import_release(stack, ref="v1.11.0", merge=False).lock_entry
    changes = remote_changes(before.remotes, after.remotes)
    assert [(c.change, c.url) for c in changes] == [
        ("added", ARGO), ("added", JOBSET.format("v0.10.1")), ("added", LWS)]
