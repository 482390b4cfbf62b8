"""Runs the real `stackctl` CLI in a subprocess, the way a user would type it, streaming its
output line by line to the progress callback and keeping all of it in a log file."""

from __future__ import annotations

import os
import queue
import re
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from gitops.demo.events import CommandFinished, CommandStarted, OutputLine, Progress
from gitops.errors import UserError

DEFAULT_TIMEOUT = 600.0  # one command; an apply waits for health for at most its timeout

# A user's own per-cluster kubeconfig variables would point the demo's clusters elsewhere.
_CLUSTER_KUBECONFIG = re.compile(r"^STACKCTL_KUBECONFIG_")


class CommandTimeout(UserError):
    """A command of the demo ran longer than its bound and was killed."""


@dataclass(frozen=True)
class CommandResult:
    display: str
    exit_code: int
    stdout: str
    stderr: str
    output: str  # stdout and stderr interleaved as they arrived
    seconds: float
    log: Path

    def tail(self, lines: int = 12) -> str:
        return "\n".join(self.output.splitlines()[-lines:])


def command_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of the demo's commands: the user's, unbuffered, without variables
    that would send the demo's clusters to another API server."""
    env = {k: v for k, v in (base if base is not None else os.environ).items()
           if not _CLUSTER_KUBECONFIG.match(k) and k != "KUBECONFIG"}
    env["PYTHONUNBUFFERED"] = "1"
    return env


class Runner:
    """Runs `stackctl ARGS` (as `python -m gitops`, so the demo uses the same installation)
    in one folder, numbering the log files."""

    def __init__(self, *, logs: Path, progress: Progress, env: dict[str, str] | None = None,
                 python: str = sys.executable) -> None:
        self.logs = logs
        self.progress = progress
        self.env = env if env is not None else command_env()
        self.python = python
        self._count = 0

    def stackctl(self, *args: str, cwd: Path, timeout: float = DEFAULT_TIMEOUT
                 ) -> CommandResult:
        display = "stackctl " + shlex.join(args)
        return self.run([self.python, "-m", "gitops", *args], display=display, cwd=cwd,
                        timeout=timeout)

    def run(self, argv: Sequence[str], *, display: str, cwd: Path,
            timeout: float = DEFAULT_TIMEOUT) -> CommandResult:
        self._count += 1
        self.logs.mkdir(parents=True, exist_ok=True)
        slug = re.sub(r"[^a-z0-9]+", "-", display.lower()).strip("-")[:60]
        log = self.logs / f"{self._count:02d}-{slug}.log"
        self.progress(CommandStarted(display=display, cwd=str(cwd)))
        began = time.monotonic()
        lines: queue.Queue[tuple[str, str | None]] = queue.Queue()
        try:
            proc = subprocess.Popen(list(argv), cwd=cwd, env=self.env, text=True,
                                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, encoding="utf-8",
                                    errors="replace")
        except OSError as e:
            raise UserError(f"cannot run {display}: {e}.",
                            hint="Run 'make venv' to reinstall stackctl.") from e
        assert proc.stdout is not None and proc.stderr is not None
        readers = [threading.Thread(target=_pump, args=(stream, name, lines), daemon=True)
                   for stream, name in ((proc.stdout, "stdout"), (proc.stderr, "stderr"))]
        for t in readers:
            t.start()
        out: dict[str, list[str]] = {"stdout": [], "stderr": []}
        both: list[str] = []
        open_streams = 2
        try:
            with log.open("w", encoding="utf-8") as f:
                f.write(f"$ {display}\n# in {cwd}\n")
                while open_streams:
                    if time.monotonic() - began > timeout:
                        proc.kill()
                        proc.wait()
                        raise CommandTimeout(
                            f"'{display}' ran longer than {timeout:.0f} s and was stopped.",
                            hint=f"Its output so far is in {log}.")
                    try:
                        name, text = lines.get(timeout=0.2)
                    except queue.Empty:
                        continue
                    if text is None:
                        open_streams -= 1
                        continue
                    out[name].append(text)
                    both.append(text)
                    f.write(text + "\n")
                    self.progress(OutputLine(text=text, stream=name))
                code = proc.wait()
                f.write(f"# exit code {code}\n")
        except BaseException:
            # Ctrl-C or a timeout: the child is ours; do not leave it running.
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            raise
        seconds = time.monotonic() - began
        self.progress(CommandFinished(display=display, exit_code=code, seconds=seconds,
                                      log=str(log)))
        return CommandResult(display=display, exit_code=code, stdout=_join(out["stdout"]),
                             stderr=_join(out["stderr"]), output=_join(both),
                             seconds=seconds, log=log)


def _join(lines: list[str]) -> str:
    return "".join(line + "\n" for line in lines)


def _pump(stream: IO[str], name: str, into: queue.Queue[tuple[str, str | None]]) -> None:
    try:
        for line in stream:
            into.put((name, line.rstrip("\n")))
    finally:
        into.put((name, None))
