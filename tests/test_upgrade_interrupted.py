"""An upgrade interrupted by a kill, a full disk or a stale git lock file can always be
undone with `--abort` (issue 12, items 11 to 13).

The upgrade moves the vendor branch when it imports the release, then renders every cluster
before and after; a real `stackctl upgrade` process is held in a kustomize build at that
moment (tests/fixtures/interrupt.py), then killed with SIGKILL or left to run into a full
tmpfs. The state that lets `--abort` put the vendor branch back is written before the
branch moves.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pygit2
import pytest

from tests.fixtures.gitrepos import repo_status
from tests.fixtures.interrupt import held_kustomize, in_namespace, wait_until_held
from tests.test_upgrade import BRANCH, CLEAN_EDITS, make_repo, refs, run, snapshot

VENDOR = "vendor/mlstack"


@pytest.fixture
def clean(tmp_path: Path, deploy_repo: Callable[..., Path], kustomize: Path,
          monkeypatch: pytest.MonkeyPatch) -> Path:
    root = make_repo(tmp_path, deploy_repo, CLEAN_EDITS)
    monkeypatch.chdir(root)
    return root


def _tip(root: Path, branch: str) -> str | None:
    br = pygit2.Repository(str(root)).branches.local.get(branch)
    return str(br.target) if br is not None else None


def test_a_kill_after_the_vendor_branch_moved_leaves_an_upgrade_that_abort_undoes(
    clean: Path, tmp_path: Path, kustomize_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before, files, vendor_before = refs(clean), snapshot(clean), _tip(clean, VENDOR)
    hold = held_kustomize(tmp_path / "hold", kustomize_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "gitops", "upgrade", "--vendor", "v1.1"], cwd=clean,
        env={**os.environ, "STACKCTL_KUSTOMIZE": str(hold.wrapper)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until_held(hold, proc)
        assert _tip(clean, VENDOR) != vendor_before  # the moment the issue is about
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        hold.release()
    assert proc.returncode == -signal.SIGKILL

    code, out, err = run(capsys, "--status")
    assert code == 1, out + err
    assert "in progress" in out and "stackctl upgrade --abort" in out
    code, out, err = run(capsys, "--abort")
    assert code == 0, err
    assert refs(clean) == before  # the vendor branch is back where it was
    assert snapshot(clean) == files and repo_status(clean) == {}
    assert not (clean / ".stackctl/upgrade/state.json").exists()
    assert run(capsys, "--vendor", "v1.1")[0] == 0  # and the upgrade starts again


def test_a_full_disk_after_the_vendor_branch_moved_exits_2_and_abort_undoes_it(
    clean: Path, tmp_path: Path, kustomize_path: Path
) -> None:
    before = refs(clean)
    hold = held_kustomize(tmp_path / "hold", kustomize_path)
    out = tmp_path / "out"
    out.mkdir()
    q = shlex.quote
    py = f"{q(sys.executable)} -m gitops"
    script = f"""
set -u
M={q(str(tmp_path / "mnt"))}; O={q(str(out))}
mkdir -p "$M" && mount -t tmpfs -o size=8m tmpfs "$M"
cp -a {q(str(clean))} "$M/deploy" && cp -a {q(str(tmp_path / "rf"))} "$M/rf"
cd "$M/deploy"
{py} upgrade --vendor v1.1 >"$O/start.out" 2>"$O/start.err" &
pid=$!
while [ ! -e {q(str(hold.reached))} ]; do
  kill -0 $pid 2>/dev/null || break; sleep 0.05
done
dd if=/dev/zero of="$M/filler" bs=64k 2>/dev/null
rm -f {q(str(hold.flag))}
wait $pid; echo $? >"$O/start.code"
{py} upgrade --status >"$O/status.out" 2>&1; echo $? >"$O/status.code"
rm "$M/filler"
{py} upgrade --abort >"$O/abort.out" 2>&1; echo $? >"$O/abort.code"
cp -a "$M/deploy" "$O/after"
"""
    env = {**os.environ, "STACKCTL_KUSTOMIZE": str(hold.wrapper)}
    proc = in_namespace(script, env)
    hold.release()
    assert proc.returncode == 0, proc.stderr

    def read(name: str) -> str:
        return " ".join((out / name).read_text().split())

    assert read("start.code") == "2", read("start.err")
    err = read("start.err")
    assert "No space left on device" in err and "Traceback" not in err
    assert "stackctl upgrade --abort" in err
    assert read("status.code") == "1" and "in progress" in read("status.out")
    assert read("abort.code") == "0", read("abort.out")
    after = out / "after"
    assert refs(after) == before
    assert repo_status(after) == {}


def test_a_stale_branch_lock_makes_abort_exit_2_naming_the_lock_and_what_to_do(
    clean: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.fixtures.gitrepos import commit_all, write_files
    from tests.test_upgrade import CONFLICT_EDITS

    write_files(clean, CONFLICT_EDITS)
    commit_all(pygit2.Repository(str(clean)), "conflicting edits")
    before, files = refs(clean), snapshot(clean)
    assert run(capsys, "--vendor", "v1.1")[0] == 1
    lock = clean / ".git/refs/heads" / f"{BRANCH}.lock"
    lock.touch()  # as a kill in the middle of the abort's branch update leaves it
    code, _, err = run(capsys, "--abort")
    assert code == 2, err
    assert str(lock) in err and "Traceback" not in err
    assert "no git command is running" in err and "stackctl upgrade --abort" in err
    lock.unlink()
    code, _, err = run(capsys, "--abort")
    assert code == 0, err
    assert refs(clean) == before and snapshot(clean) == files


def test_a_stale_index_lock_stops_the_upgrade_with_advice_to_remove_it_and_abort(
    clean: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before, files = refs(clean), snapshot(clean)
    lock = clean / ".git/index.lock"
    lock.touch()
    code, _, err = run(capsys, "--vendor", "v1.1")
    assert code == 2, err
    assert str(lock) in err and "stackctl upgrade --abort" in err and "Traceback" not in err
    lock.unlink()
    code, out, _ = run(capsys, "--status")
    assert code == 1 and "in progress" in out  # the undo met the lock too: --abort finishes
    assert run(capsys, "--abort")[0] == 0
    assert refs(clean) == before and snapshot(clean) == files and repo_status(clean) == {}
