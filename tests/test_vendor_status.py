"""`vendor status`: local edits, newer tags and remote bases."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from pathlib import Path

import pygit2

from gitops.stack import load_stack
from gitops.vendor import find_remote_bases, import_release, vendor_status
from tests.fixtures.gitrepos import commit_all, git_upstream, release_folder
from tests.fixtures.remote_mirror import TINY_FOLDER

Releases = dict[str, dict[str, "str | bytes | tuple[str | bytes, int]"]]


def test_status_of_a_fresh_import_is_pristine_and_lists_newer_tags_without_rcs(
    tmp_path: Path, deploy_repo: Callable[..., Path], upstream_files: Releases
) -> None:
    git_upstream(tmp_path / "up", upstream_files)
    root = deploy_repo(source=str(tmp_path / "up"))
    import_release(load_stack(root), ref="v1.3.0")
    st = vendor_status(load_stack(root))
    assert st.pristine
    assert st.entry is not None and st.entry.resolved == "v1.3.0"
    assert st.newer_tags == ("v1.4.0", "v1.4.1")
    assert st.source_error is None


def test_status_finds_a_local_edit_an_added_and_a_deleted_file(
    tmp_path: Path, deploy_repo: Callable[..., Path], upstream_files: Releases
) -> None:
    root = deploy_repo(source=str(release_folder(tmp_path / "rf", upstream_files)))
    import_release(load_stack(root), ref="v1.4.0")
    v = root / "vendor" / "mlstack"
    (v / "webapp/deployment.yaml").write_text("edited: true\n")
    (v / "controller/extra.yaml").write_text("kind: ConfigMap\n")
    (v / "VERSION").unlink()
    (v / "kustomization.yaml").chmod(0o755)  # a mode change is a modification too

    st = vendor_status(load_stack(root), check_source=False)

    assert not st.pristine
    assert st.modified == ("kustomization.yaml", "webapp/deployment.yaml")
    assert st.added == ("controller/extra.yaml",)
    assert st.deleted == ("VERSION",)


def test_status_skips_a_fifo_and_a_socket_as_git_does_instead_of_blocking_on_them(
    tmp_path: Path, deploy_repo: Callable[..., Path], upstream_files: Releases
) -> None:
    root = deploy_repo(source=str(release_folder(tmp_path / "rf", upstream_files)))
    import_release(load_stack(root), ref="v1.4.0")
    v = root / "vendor" / "mlstack"
    os.mkfifo(v / "webapp" / "pipe")  # reading it would wait for a writer forever
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(v / "sock"))
        st = vendor_status(load_stack(root), check_source=False)
    assert st.pristine and st.added == ()


def test_status_shows_each_vendored_remote_and_whether_its_copy_is_intact(
    tmp_path: Path, deploy_repo: Callable[..., Path], upstream_files: Releases
) -> None:
    root = deploy_repo(source=str(release_folder(tmp_path / "rf", upstream_files)))
    import_release(load_stack(root), ref="v1.4.1")
    st = vendor_status(load_stack(root))
    assert st.remote_bases == ()
    assert [(r.pin.url, r.state) for r in st.remotes] == [
        ("https://github.com/argoproj/argo-workflows", "intact")]
    assert st.newer_tags == ()

    crd = root / "vendor/mlstack" / TINY_FOLDER / "manifests/base/crds/minimal" \
        / "argoproj.io_workflows.yaml"
    crd.write_text(crd.read_text() + "# edited\n")
    st = vendor_status(load_stack(root))
    assert [(r.state, r.detail) for r in st.remotes] == [
        ("modified", f"vendor/mlstack/{TINY_FOLDER}")]
    assert st.modified == (f"{TINY_FOLDER}/manifests/base/crds/minimal/"
                           "argoproj.io_workflows.yaml",)


def test_status_lists_a_remote_base_added_after_the_import_which_a_render_refuses(
    tmp_path: Path, deploy_repo: Callable[..., Path], upstream_files: Releases
) -> None:
    root = deploy_repo(source=str(release_folder(tmp_path / "rf", upstream_files)))
    import_release(load_stack(root), ref="v1.3.0")
    k = root / "vendor/mlstack/controller/kustomization.yaml"
    k.write_text(k.read_text() + "- https://github.com/org/repo//base?ref=v1\n")
    st = vendor_status(load_stack(root))
    assert [str(b) for b in st.remote_bases] == [
        "vendor/mlstack/controller/kustomization.yaml: resources: "
        "https://github.com/org/repo//base?ref=v1"]
    assert st.remotes == ()


def test_status_reports_an_unreachable_source_without_failing(
    tmp_path: Path, deploy_repo: Callable[..., Path], upstream_files: Releases
) -> None:
    folder = release_folder(tmp_path / "rf", upstream_files)
    root = deploy_repo(source=str(folder))
    import_release(load_stack(root), ref="v1.3.0")
    folder.rename(tmp_path / "gone")
    st = vendor_status(load_stack(root))
    assert st.pristine
    assert st.source_error is not None and "does not exist" in st.source_error


def test_status_with_nothing_vendored(
    tmp_path: Path, deploy_repo: Callable[..., Path], upstream_files: Releases
) -> None:
    root = deploy_repo(source=str(release_folder(tmp_path / "rf", upstream_files)))
    st = vendor_status(load_stack(root))
    assert st.entry is None and st.pristine


def test_remote_base_detection_covers_urls_hosts_and_ignores_local_folders() -> None:
    files = {
        "k/kustomization.yaml": (
            "resources:\n"
            "- https://github.com/org/repo//manifests?ref=v1\n"
            "- git@github.com:org/repo.git//base\n"
            "- github.com/org/repo/base?ref=v2\n"
            "- my.domain/local\n"
            "- ../other\n"
            "- deployment.yaml\n"
            "components:\n- gitlab.com/org/comp\n"
            "bases:\n- ssh://git.example.com/base\n"
        ),
        "k/my.domain/local/kustomization.yaml": "resources: []\n",
        "broken/kustomization.yaml": "resources: [\n",
    }
    bases = find_remote_bases(files, lambda p: files[p].encode(), base="vendor/x")
    assert [(b.field, b.url) for b in bases] == [
        ("resources", "https://github.com/org/repo//manifests?ref=v1"),
        ("resources", "git@github.com:org/repo.git//base"),
        ("resources", "github.com/org/repo/base?ref=v2"),
        ("components", "gitlab.com/org/comp"),
        ("bases", "ssh://git.example.com/base"),
    ]
    assert {b.file for b in bases} == {"vendor/x/k/kustomization.yaml"}


def test_status_ignores_gitignored_additions_but_still_compares_upstream_files(
    tmp_path: Path, deploy_repo: Callable[..., Path], upstream_files: Releases
) -> None:
    upstream_files["v1.3.0"]["params.env"] = "A=1\n"
    root = deploy_repo(source=str(release_folder(tmp_path / "rf", upstream_files)))
    (root / ".gitignore").write_text("*.env\n*.log\n")
    commit_all(pygit2.Repository(str(root)), "ignore env and log files")
    import_release(load_stack(root), ref="v1.3.0")
    v = root / "vendor" / "mlstack"
    assert (v / "params.env").read_text() == "A=1\n"
    (v / "debug.log").write_text("noise\n")
    assert vendor_status(load_stack(root), check_source=False).pristine
    (v / "params.env").write_text("A=2\n")
    assert vendor_status(load_stack(root), check_source=False).modified == ("params.env",)
