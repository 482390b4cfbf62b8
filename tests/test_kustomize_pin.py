"""stack.yaml's `kustomize:` pin: every render of the stack uses that release (and says
so), a binary of another release is refused with how to get the right one, and
`stackctl upgrade --kustomize VERSION` moves the pin as a planned change: every cluster
rendered with both releases, the differences reported, the new pin committed on a branch.

The second release (v5.5.0) is built by `make kustomize-pins` (sandbox/build.sh kustomize
v5.5.0, into ~/.cache/stackctl/kustomize/v5.5.0/); the tests that need it skip without it.
"""

from __future__ import annotations

import json
import os
import shutil
import tarfile
from collections.abc import Callable
from pathlib import Path

import pygit2
import pytest

from gitops.cli import main
from gitops.errors import KustomizeError
from gitops.kustomize import find_kustomize
from gitops.paths import cache_dir
from gitops.render import render_cluster
from gitops.stack import load_stack
from gitops.upgrade.tool import pinned_text
from tests.fixtures.gitrepos import commit_all, write_files
from tests.fixtures.kubeflow import require_kubeflow

OLD = "v5.5.0"
# Found before any fixture moves HOME or STACKCTL_CACHE.
_OLD_BINARY = cache_dir() / "kustomize" / OLD / "kustomize"

KUSTOMIZATION = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
CONFIGMAP = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  a: '1'\n"


@pytest.fixture
def pins(kustomize: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """Both releases where a pinned stack looks for them (the test's cache), and no
    $STACKCTL_KUSTOMIZE overriding the pin."""
    if not (_OLD_BINARY.is_file() and os.access(_OLD_BINARY, os.X_OK)):
        pytest.skip(f"kustomize {OLD} not built: run 'make kustomize-pins'")
    monkeypatch.delenv("STACKCTL_KUSTOMIZE")
    new = find_kustomize(kustomize).version
    out = {}
    for version, binary in ((OLD, _OLD_BINARY), (new, kustomize)):
        dest = cache_dir() / "kustomize" / version / "kustomize"
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(binary, dest)
        out[version] = dest
    return out


def _stack(root: Path, pin: str | None, extra: dict[str, str] | None = None) -> Path:
    stack = "name: mlstack\nsource: ../rf\nref: v1.0  # the release line\n" + (
        f"kustomize: {pin}\n" if pin else "")
    write_files(root, {"stack.yaml": stack,
                       "clusters/dev/kustomization.yaml": KUSTOMIZATION
                       + "resources:\n- settings.yaml\n",
                       "clusters/dev/settings.yaml": CONFIGMAP, **(extra or {})})
    commit_all(pygit2.init_repository(str(root), initial_head="main"), "a pinned stack")
    return root


def test_pinned_text_sets_the_pin_and_keeps_every_other_line() -> None:
    text = "name: x  # ours\nsource: ../rf\nref: v1.0\n"
    assert pinned_text(text, "v5.8.2") == "name: x  # ours\nsource: ../rf\nref: v1.0\n" \
        "kustomize: v5.8.2\n"
    assert pinned_text("name: x\nkustomize: v5.5.0  # pinned\nsource: s\n", "v5.8.2") == \
        "name: x\nkustomize: v5.8.2  # pinned\nsource: s\n"
    assert pinned_text("name: x\nsource: s", "v5.8.2") == "name: x\nsource: s\nkustomize: v5.8.2\n"


def test_a_pinned_stack_renders_with_that_release_and_says_so(
    tmp_path: Path, git_env: Path, pins: dict[str, Path],
) -> None:
    root = _stack(tmp_path / "deploy", OLD)
    r = render_cluster(load_stack(root), "dev")
    assert r.kustomize_version == OLD
    assert f"# kustomize: {OLD}\n" in r.text


def test_a_pin_no_binary_matches_is_refused_saying_how_to_build_it(
    tmp_path: Path, git_env: Path, pins: dict[str, Path], capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root = _stack(tmp_path / "deploy", "v5.4.3")
    with pytest.raises(KustomizeError) as e:
        render_cluster(load_stack(root), "dev")
    assert "stack.yaml pins kustomize v5.4.3, and no such binary was found" in str(e.value)
    assert "sandbox/build.sh kustomize v5.4.3" in str(e.value)
    monkeypatch.chdir(root)
    assert main(["render", "--all"]) == 2
    assert "sandbox/build.sh kustomize v5.4.3" in capsys.readouterr().err


def test_a_binary_given_explicitly_must_be_the_pinned_release(
    tmp_path: Path, git_env: Path, pins: dict[str, Path], monkeypatch: pytest.MonkeyPatch,
) -> None:
    root = _stack(tmp_path / "deploy", OLD)
    new = next(v for v in pins if v != OLD)
    monkeypatch.setenv("STACKCTL_KUSTOMIZE", str(pins[new]))
    with pytest.raises(KustomizeError, match=f"pins kustomize {OLD}, but .* is {new}"):
        render_cluster(load_stack(root), "dev")


def _user_namespace(root: Path, archive: Path) -> dict[str, str]:
    """Kubeflow v1.9.1's common/user-namespace/base as the stack's cluster."""
    out = {}
    with tarfile.open(archive) as tf:
        for m in tf.getmembers():
            if "/common/user-namespace/base/" in m.name and m.isfile():
                f = tf.extractfile(m)
                assert f is not None
                out["clusters/dev/" + m.name.rsplit("/", 1)[1]] = f.read().decode()
    return out


@pytest.mark.kubeflow
def test_upgrading_kustomize_renders_both_reports_the_difference_and_commits_the_pin(
    tmp_path: Path, git_env: Path, pins: dict[str, Path], monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str], kubeflow_archive: Callable[[str], Path],
) -> None:
    # Kubeflow v1.9.1's user profile: kustomize v5.5.0 names the Profile from the
    # ConfigMap's data; v5.8.2 leaves `$(profile-name)` (the difference).
    require_kubeflow("v1.9.1")
    new = next(v for v in pins if v != OLD)
    root = tmp_path / "deploy"
    files = _user_namespace(root, kubeflow_archive("v1.9.1"))
    _stack(root, OLD, files)
    monkeypatch.chdir(root)
    main_before = str(pygit2.Repository(str(root)).head.target)

    code = main(["upgrade", "--kustomize", new, "--format", "json"])
    out, err = capsys.readouterr()

    assert code == 0, err
    report = json.loads(out)
    assert (report["kind"], report["from"], report["to"], report["outcome"]) == (
        "kustomize", OLD, new, "committed")
    (dev,) = report["clusters"]
    assert dev["status"] == "changed"
    assert "- Profile.kubeflow.org/kubeflow-user-example-com" in dev["objects"]
    assert "+ Profile.kubeflow.org/$(profile-name)" in dev["objects"]
    repo = pygit2.Repository(str(root))
    assert repo.head.shorthand == f"upgrade/kustomize-{new}"
    assert str(repo.branches.local["main"].target) == main_before
    assert (root / "stack.yaml").read_text() == (
        f"name: mlstack\nsource: ../rf\nref: v1.0  # the release line\nkustomize: {new}\n")
    assert render_cluster(load_stack(root), "dev").kustomize_version == new
    # Asked again, there is nothing to do.
    assert main(["upgrade", "--kustomize", new]) == 0
    assert "already" in capsys.readouterr().out
