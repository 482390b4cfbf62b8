"""The demo's frame: one folder of its own, numbered steps that check their outcomes, the
sandbox always stopped at the end, and nothing left running."""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

from gitops.demo.events import Check, Note, Progress, StepFinished, StepStarted
from gitops.demo.live import Live
from gitops.demo.runner import CommandResult, Runner
from gitops.errors import DemoError, UserError

SANDBOX_NAME = "demo"
# The example clusters' storage classes (clusters/*/patches/storage.yaml).
STORAGE_CLASSES = ("microk8s-hostpath", "gp3")


@dataclass(frozen=True)
class DemoResult:
    workdir: Path
    repo: Path
    kept: bool
    seconds: float
    steps: tuple[tuple[int, str, float], ...]


@dataclass
class Demo:
    """State shared by the steps (gitops.demo.steps)."""

    project: Path  # the stackctl checkout: examples/, vendor/, overlays/, clusters/
    workdir: Path
    progress: Progress
    runner: Runner
    repo: Path = field(init=False)
    state_dir: Path = field(init=False)
    kubeconfig: Path | None = None
    context: str = f"stackctl-{SANDBOX_NAME}"
    sandbox_started: bool = False
    sandbox_pids: dict[str, int] = field(default_factory=dict)
    live: Live | None = None
    step_number: int = 0
    step_title: str = ""
    timings: list[tuple[int, str, float]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.repo = self.workdir / "platform"
        self.state_dir = self.workdir / "sandbox"

    # -- reporting -------------------------------------------------------------------

    def note(self, text: str) -> None:
        self.progress(Note(text))

    def passed(self, text: str) -> None:
        self.progress(Check(text))

    def fail(self, message: str, *, hint: str | None = None) -> NoReturn:
        raise DemoError(self.step_number, self.step_title, message, hint=hint)

    def check(self, ok: bool, text: str, *, failure: str, hint: str | None = None) -> None:
        """Report `text` as verified, or fail the step with `failure`."""
        if not ok:
            self.fail(failure, hint=hint)
        self.passed(text)

    @contextmanager
    def step(self, number: int, title: str, explain: str) -> Iterator[None]:
        self.step_number, self.step_title = number, title
        self.progress(StepStarted(number=number, title=title, explain=explain))
        began = time.monotonic()
        try:
            yield
        except DemoError:
            raise
        except UserError as e:  # a failure of a library the step used: name the step
            raise DemoError(number, title, str(e)) from e
        seconds = time.monotonic() - began
        self.timings.append((number, title, seconds))
        self.progress(StepFinished(number=number, title=title, seconds=seconds))

    # -- commands ----------------------------------------------------------------------

    def stackctl(self, *args: str, expect: int, why: str, cwd: Path | None = None,
                 timeout: float | None = None) -> CommandResult:
        """Run `stackctl ARGS` in the deployment repo; fail the step unless it exits with
        `expect` (`why` says what that code means here)."""
        kwargs = {"timeout": timeout} if timeout is not None else {}
        result = self.runner.stackctl(*args, cwd=cwd or self.repo, **kwargs)
        if result.exit_code != expect:
            last = next((line.strip() for line in reversed(result.output.splitlines())
                         if line.strip()), "(no output)")
            self.fail(f"'{result.display}' exited with code {result.exit_code}, expected "
                      f"{expect} ({why}). Its last line: {last!r}.",
                      hint=f"Its whole output is in {result.log}.")
        self.passed(f"exit code {expect}: {why}")
        return result

    def expect_text(self, result: CommandResult, pattern: str, what: str) -> re.Match[str]:
        """Fail unless the command's output matches `pattern` (a regular expression)."""
        m = re.search(pattern, result.output, re.MULTILINE)
        if m is None:
            self.fail(f"'{result.display}' did not report {what} (no match for "
                      f"{pattern!r} in its output).", hint=f"Its output is in {result.log}.")
        self.passed(what)
        return m

    def kube(self) -> Live:
        if self.live is None:
            if self.kubeconfig is None:
                self.fail("the sandbox is not running.")
            self.live = Live(self.kubeconfig, self.context)
        return self.live

    # -- the sandbox -----------------------------------------------------------------------

    def stop_sandbox(self) -> tuple[tuple[str, int], ...]:
        """Stop the sandbox if this demo started it; returns the (component, pid) stopped."""
        from gitops import sandbox as sb

        if self.live is not None:
            self.live.close()
            self.live = None
        if not self.sandbox_started:
            return ()
        result = sb.down(self.state_dir, name=SANDBOX_NAME)
        self.sandbox_started = False
        return result.stopped

    def stop_after_failure(self) -> None:
        """Stop the sandbox of a failed or interrupted run with Ctrl-C ignored meanwhile
        (a user presses it again when the first seems slow; cut short, the stop would leave
        a control plane half stopped). A failure to stop is reported, never raised: the
        step's own error must come through."""
        with _uninterrupted():
            started = self.sandbox_started
            if started:
                self.note("stopping the sandbox (Ctrl-C is ignored until it has stopped)")
            try:
                stopped = self.stop_sandbox()
            except Exception as e:
                self.note(f"could not stop the sandbox: {e}; run 'stackctl sandbox down "
                          f"--name {SANDBOX_NAME} --state-dir {self.state_dir}'")
                return
            if started:
                self.note(f"stopped the sandbox ({len(stopped)} processes)")


@contextmanager
def _uninterrupted() -> Iterator[None]:
    """SIGINT and SIGTERM ignored inside, the previous handlers back afterwards. Only the
    main thread sets handlers; elsewhere (a test runner's thread) the caller's stay."""
    signals = (signal.SIGINT, signal.SIGTERM)
    previous = [signal.getsignal(s) for s in signals]
    if threading.current_thread() is not threading.main_thread() or None in previous:
        yield  # None: a handler installed by C code, which could not be put back
        return
    for s in signals:
        signal.signal(s, signal.SIG_IGN)
    try:
        yield
    finally:
        for s, handler in zip(signals, previous, strict=True):
            signal.signal(s, handler)


def children(pid: int | None = None) -> list[tuple[int, str, str]]:
    """Processes whose parent is `pid` (default: this process): (pid, name, state). A zombie
    (state Z) counts: its parent has not collected it."""
    parent = os.getpid() if pid is None else pid
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[1]) == parent:
            out.append((int(entry.name), name, fields[0]))
    return sorted(out)
