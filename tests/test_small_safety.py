"""The smaller promises of issue 12: files that may hold Secrets are private (0600), and a
duplicate object's error names the files that define it."""

from __future__ import annotations

import stat
from collections.abc import Callable
from pathlib import Path

import click
import pytest

from gitops.cli import main
from gitops.cli._errors import run_guarded
from tests.fixtures.gitrepos import write_files

KUST = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
CM = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: dupcm\ndata:\n  a: '1'\n"
SECRET = ("apiVersion: v1\nkind: Secret\nmetadata:\n  name: creds\n"
          "stringData:\n  password: split-secret-value\n")


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def test_render_split_writes_secret_files_readable_by_the_owner_only(
    tmp_path: Path, deploy_repo: Callable[..., Path], kustomize: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = deploy_repo(source=".")
    write_files(root, {"clusters/dev/kustomization.yaml": KUST + "resources:\n- s.yaml\n- c.yaml\n",
                       "clusters/dev/s.yaml": SECRET, "clusters/dev/c.yaml": CM})
    monkeypatch.chdir(root)
    assert main(["render", "--cluster", "dev", "--split", "--out", str(tmp_path / "out")]) == 0
    files = {p.name: p for p in (tmp_path / "out/dev").iterdir()}
    secret = next(p for n, p in files.items() if "Secret" in n)
    assert "split-secret-value" in secret.read_text()
    assert _mode(secret) == 0o600
    assert _mode(tmp_path / "out/dev") == 0o700


def test_a_crash_log_is_readable_by_the_owner_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("STACKCTL_CACHE", str(tmp_path))

    @click.group()
    def g() -> None:
        pass

    @g.command()
    def boom() -> None:
        raise ZeroDivisionError("division by zero")

    assert run_guarded(g, ["boom"]) == 3
    (log,) = (tmp_path / "logs").glob("crash-*.log")
    assert _mode(log) == 0o600
    assert _mode(tmp_path / "logs") == 0o700


@pytest.mark.parametrize("layout", ["two-overlays", "one-overlay"])
def test_a_duplicate_object_names_the_files_that_define_it(
    tmp_path: Path, deploy_repo: Callable[..., Path], kustomize: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], layout: str
) -> None:
    root = deploy_repo(source=".")
    if layout == "two-overlays":
        files = {"clusters/dev/kustomization.yaml":
                 KUST + "resources:\n- ../../overlays/a\n- ../../overlays/b\n",
                 "overlays/a/kustomization.yaml": KUST + "resources:\n- cm.yaml\n",
                 "overlays/b/kustomization.yaml": KUST + "resources:\n- cm.yaml\n",
                 "overlays/a/cm.yaml": CM, "overlays/b/cm.yaml": CM}
        want = ("overlays/a/cm.yaml", "overlays/b/cm.yaml")
    else:
        files = {"clusters/dev/kustomization.yaml": KUST + "resources:\n- ../../overlays/a\n",
                 "overlays/a/kustomization.yaml": KUST + "resources:\n- cm.yaml\n- cm2.yaml\n",
                 "overlays/a/cm.yaml": CM, "overlays/a/cm2.yaml": CM}
        want = ("overlays/a/cm.yaml", "overlays/a/cm2.yaml")
    write_files(root, files)
    monkeypatch.chdir(root)
    code = main(["render", "--cluster", "dev", "--out", str(tmp_path / "out")])
    err = " ".join(capsys.readouterr().err.split())
    assert code == 2
    assert "[noNs]" not in err and "../../" not in err, err
    assert "ConfigMap dupcm" in err and "twice" in err
    for f in want:
        assert f in err, err
