"""Starting, checking and stopping the sandbox's processes, each by its own pid.

A pid alone can be reused by another process after ours died, so every record also keeps the
process's start time from /proc/<pid>/stat: a pid is ours only while both match.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from gitops.errors import SandboxError


@dataclass(frozen=True)
class Proc:
    """One started component: what ran, its pid and start time, where it logs."""

    name: str
    pid: int
    start_time: int
    argv: tuple[str, ...]
    log: Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def check_port_free(port: int, what: str) -> None:
    """SandboxError when something already listens on 127.0.0.1:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError as e:
            if e.errno != errno.EADDRINUSE:
                raise SandboxError(f"cannot use port {port} for {what}: {e}.") from e
            raise SandboxError(
                f"port {port} on 127.0.0.1, wanted for {what}, is already in use.",
                hint=f"Stop what listens there (e.g. 'ss -ltnp | grep :{port}'), or choose "
                     "another port, or leave the port out to let the sandbox pick a free one.",
            ) from e


def _proc_start_time(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 22 (starttime); the command name (field 2) may hold spaces, so split after ')'.
    fields = stat[stat.rindex(")") + 2:].split()
    if fields[0] == "Z":  # a zombie has exited
        return None
    return int(fields[19])


def alive(pid: int, start_time: int) -> bool:
    """True while the process `pid` that started at `start_time` is running."""
    return pid > 0 and _proc_start_time(pid) == start_time


def _die_with_parent() -> None:
    """In the child before exec: ask Linux to SIGTERM it when its parent dies
    (prctl PR_SET_PDEATHSIG), so that a test run killed hard leaves no control plane."""
    import ctypes

    pr_set_pdeathsig = 1
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def start(name: str, argv: list[str], log: Path, *, env: dict[str, str] | None = None,
          die_with_parent: bool = False) -> Proc:
    """Start a component detached from our session (it outlives `stackctl sandbox up` and is
    not hit by the terminal's Ctrl-C), with stdout and stderr appended to `log`.
    `die_with_parent` ties its life to this process instead (the test fixture uses it)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        try:
            popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                     stderr=subprocess.STDOUT, start_new_session=True,
                                     env=env, close_fds=True,
                                     preexec_fn=_die_with_parent if die_with_parent else None)
        except OSError as e:
            raise SandboxError(f"cannot start {name} ({argv[0]}): {e}.",
                               hint="Run 'make sandbox' to rebuild the binaries.") from e
    started = None
    for _ in range(100):
        started = _proc_start_time(popen.pid)
        if started is not None or popen.poll() is not None:
            break
        time.sleep(0.01)
    # Keep the Popen object from reaping warnings: the child is tracked by pid from here on.
    popen.returncode = 0
    return Proc(name, popen.pid, started if started is not None else -1, tuple(argv), log)


def _reap(pid: int, wait: float = 0.0) -> None:
    """Collect our own child's exit status so that it leaves no zombie (others' children
    are reaped by their parent). A Go program's main thread shows as a zombie while its
    other threads still exit, and cannot be collected before they have: hence `wait`."""
    end = time.monotonic() + wait
    while True:
        try:
            done, _status = os.waitpid(pid, os.WNOHANG)
        except (ChildProcessError, OSError):
            return  # not our child, or already collected
        if done == pid or time.monotonic() >= end:
            return
        time.sleep(0.02)


def stop(proc: Proc, *, grace: float = 10.0) -> bool:
    """SIGTERM, then SIGKILL after `grace` seconds. Returns whether it was still running."""
    if not alive(proc.pid, proc.start_time):
        _reap(proc.pid, wait=2.0)
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not alive(proc.pid, proc.start_time):
            _reap(proc.pid, wait=2.0)
            return True
        _reap(proc.pid)
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(proc.pid, signal.SIGKILL)
    for _ in range(100):
        _reap(proc.pid)
        if not alive(proc.pid, proc.start_time):
            break
        time.sleep(0.05)
    _reap(proc.pid, wait=2.0)
    return True


def tail(log: Path, lines: int = 15) -> str:
    """The last lines of a log file ("" when it does not exist)."""
    try:
        data = log.read_bytes()[-16384:]
    except OSError:
        return ""
    return "\n".join(data.decode("utf-8", "replace").splitlines()[-lines:])
