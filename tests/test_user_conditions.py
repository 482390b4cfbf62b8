"""What the user or the machine caused is exit 2 with a message naming the file and what
to do, never exit 3 (issue 12, item 13): configuration files that are not UTF-8 or nest
5,000 levels deep, a read-only repository, a full disk. (A disk that fills up in the middle
of an upgrade: tests/test_upgrade_interrupted.py.)
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from gitops.cli import main
from tests.fixtures.interrupt import in_namespace
from tests.test_upgrade import CLEAN_EDITS, make_repo

KUST = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
LATIN1 = "description: caf\xe9 cr\xe8me\n".encode("latin-1")
DEEP = ("description: " + "[" * 5000 + "]" * 5000 + "\n").encode()
# (file, command that reads it first)
FILES = [
    ("stack.yaml", ("vendor", "status", "--offline")),
    ("clusters/dev/cluster.yaml", ("history", "--cluster", "dev")),
    ("stackctl.lock", ("vendor", "status", "--offline")),
]


@pytest.fixture
def repo(tmp_path: Path, deploy_repo: Callable[..., Path], monkeypatch: pytest.MonkeyPatch,
         capsys: pytest.CaptureFixture[str]) -> Path:
    from tests.fixtures.gitrepos import UPSTREAM_RELEASES, release_folder, write_files

    release_folder(tmp_path / "rf", UPSTREAM_RELEASES)
    root = deploy_repo(source="../rf")
    write_files(root, {"clusters/dev/kustomization.yaml": KUST + "resources: []\n",
                       "clusters/dev/cluster.yaml": "wave: 1\n"})
    monkeypatch.chdir(root)
    assert main(["vendor", "import", "--ref", "v1.3.0"]) == 0
    capsys.readouterr()
    return root


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(list(args))
    return code, " ".join(capsys.readouterr().err.split())


def _spoil(path: Path, bad: bytes) -> None:
    """The file with `bad` inserted as its second line (the lock keeps its header line)."""
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:1]) + bad + b"".join(lines[1:]))


@pytest.mark.parametrize(("name", "command"), FILES)
def test_a_configuration_file_that_is_not_utf8_exits_2_naming_it(
    repo: Path, capsys: pytest.CaptureFixture[str], name: str, command: tuple[str, ...]
) -> None:
    _spoil(repo / name, LATIN1)
    code, err = _run(capsys, *command)
    assert code == 2, err
    assert f"{repo / name}" in err and "UTF-8" in err and "line 2" in err
    assert "Traceback" not in err and "bug" not in err


@pytest.mark.parametrize(("name", "command"), FILES)
def test_a_configuration_file_nested_5000_deep_exits_2_naming_it(
    repo: Path, capsys: pytest.CaptureFixture[str], name: str, command: tuple[str, ...]
) -> None:
    target = repo / name
    if name == "stackctl.lock":
        target.write_bytes(target.read_bytes() + DEEP)
    else:
        _spoil(target, DEEP)
    code, err = _run(capsys, *command)
    assert code == 2, err
    assert str(target) in err and "nested" in err
    assert "Traceback" not in err and "bug" not in err


def _upgrade_repo(tmp_path: Path, deploy_repo: Callable[..., Path]) -> Path:
    return make_repo(tmp_path, deploy_repo, CLEAN_EDITS)


def _script(tmp_path: Path, root: Path, setup: str, *commands: str) -> str:
    """Copy the repo and its upstream into a fresh mount at M (made by `setup`), run each
    stackctl command there, and record its exit code and stderr in tmp_path/out."""
    q = shlex.quote
    py = f"{q(sys.executable)} -m gitops"
    lines = ["set -u", f"M={q(str(tmp_path / 'mnt'))}; O={q(str(tmp_path / 'out'))}",
             'mkdir -p "$M" "$O"', setup,
             'cd "$M/deploy"']
    for i, cmd in enumerate(commands):
        lines.append(f'{py} {cmd} >"$O/{i}.out" 2>"$O/{i}.err"; echo $? >"$O/{i}.code"')
    return "\n".join(lines) + "\n"


def _results(tmp_path: Path, n: int) -> list[tuple[str, str]]:
    out = tmp_path / "out"
    return [((out / f"{i}.code").read_text().strip(),
             " ".join((out / f"{i}.err").read_text().split())) for i in range(n)]


def test_a_read_only_repository_exits_2_naming_the_file_and_what_to_do(
    tmp_path: Path, deploy_repo: Callable[..., Path], kustomize: Path
) -> None:
    root = _upgrade_repo(tmp_path, deploy_repo)
    q = shlex.quote
    setup = (f'cp -a {q(str(root))} "$M/deploy" && cp -a {q(str(tmp_path / "rf"))} "$M/rf" '
             '&& mount --bind "$M" "$M" && mount -o remount,bind,ro "$M"')
    proc = in_namespace(_script(tmp_path, root, setup, "upgrade --vendor v1.1",
                                "vendor rebuild --refetch"), dict(os.environ))
    assert proc.returncode == 0, proc.stderr
    for code, err in _results(tmp_path, 2):
        assert code == "2", err
        assert "Read-only file system" in err and str(tmp_path / "mnt/deploy") in err
        assert "writable clone" in err and "Traceback" not in err


def test_a_full_disk_before_an_upgrade_exits_2_naming_the_file(
    tmp_path: Path, deploy_repo: Callable[..., Path], kustomize: Path
) -> None:
    root = _upgrade_repo(tmp_path, deploy_repo)
    q = shlex.quote
    setup = (f'mount -t tmpfs -o size=8m tmpfs "$M" && cp -a {q(str(root))} "$M/deploy" '
             f'&& cp -a {q(str(tmp_path / "rf"))} "$M/rf" '
             '&& (dd if=/dev/zero of="$M/filler" bs=64k 2>/dev/null; true)')
    proc = in_namespace(_script(tmp_path, root, setup, "upgrade --vendor v1.1",
                                "upgrade --status"), dict(os.environ))
    assert proc.returncode == 0, proc.stderr
    (code, err), (status_code, _) = _results(tmp_path, 2)
    assert code == "2", err
    assert "No space left on device" in err and str(tmp_path / "mnt/deploy") in err
    assert "Free some space" in err and "Traceback" not in err
    assert status_code == "0"  # nothing was changed, so nothing is left to abort
