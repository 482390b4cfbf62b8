"""Importing real Kubeflow manifests releases from ../shared (skipped when absent)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from gitops import git
from gitops.stack import load_stack
from gitops.vendor import import_release, vendor_status
from tests.fixtures.gitrepos import repo_status
from tests.fixtures.kubeflow import KUBEFLOW_DIR

pytestmark = [pytest.mark.kubeflow, pytest.mark.slow]


def test_import_of_the_kubeflow_v1_4_0_archive(
    kubeflow_archive: Callable[[str], Path], deploy_repo: Callable[..., Path]
) -> None:
    archive = kubeflow_archive("v1.4.0")
    root = deploy_repo(source=str(archive), name="kubeflow")
    stack = load_stack(root)

    result = import_release(stack, ref="v1.4.0")

    assert result.files == 1214
    assert result.lock_entry.source_kind == "archive"
    assert (root / "vendor/kubeflow/example/kustomization.yaml").is_file()
    assert (root / "vendor/kubeflow/apps").is_dir()
    assert repo_status(root) == {}
    repo = git.open_repo(root)
    vendored = repo.read_tree(result.vendor_commit, with_content=False)
    assert len(vendored) == 1214
    assert all(p.startswith("vendor/kubeflow/") for p in vendored)
    st = vendor_status(stack, check_source=False)
    assert st.pristine and st.remote_bases == ()


def test_import_from_the_folder_of_kubeflow_archives_resolves_v1_4_to_v1_4_1(
    kubeflow_archive: Callable[[str], Path], deploy_repo: Callable[..., Path]
) -> None:
    kubeflow_archive("v1.4.1")
    root = deploy_repo(source=str(KUBEFLOW_DIR), name="kubeflow")
    result = import_release(load_stack(root), ref="v1.4")
    assert result.resolved.name == "v1.4.1"
    assert result.lock_entry.source_kind == "archive-folder"
    assert result.files == 1215
    assert repo_status(root) == {}
    st = vendor_status(load_stack(root))
    assert st.newer_tags[:2] == ("v1.5.0", "v1.5.1") and st.newer_tags[-1] == "v1.11.0"


def test_kubeflow_v1_11_0_import_localizes_its_nine_remote_entries(
    kubeflow_archive: Callable[[str], Path], deploy_repo: Callable[..., Path]
) -> None:
    # Fetched from the mirror of ../shared's remote bases (tests/fixtures/remote_mirror.py);
    # tests/test_remote_kubeflow.py checks the lock, the render, rebuilds and tampering.
    archive = kubeflow_archive("v1.11.0")
    root = deploy_repo(source=str(archive), name="kubeflow")
    result = import_release(load_stack(root), ref="v1.11.0")
    assert result.remote_bases == ()
    localized = {(x.file, x.original) for p in result.remotes for x in p.localized}
    base = "vendor/kubeflow/applications/pipeline/upstream/third-party/argo/installs"
    minimal = "https://github.com/argoproj/argo-workflows/manifests/base/crds/minimal?ref=v3.7.3"
    assert {f for f, url in localized if url == minimal} == {
        f"{base}/cluster/kustomization.yaml",
        f"{base}/namespace/cluster-scoped/kustomization.yaml"}
    assert len(localized) == 9
