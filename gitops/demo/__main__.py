"""`python -m gitops.demo` (what `make demo` runs): the demo with its progress printed."""

from __future__ import annotations

import os
import re
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

import click

from gitops.demo.events import (
    Check,
    CommandFinished,
    CommandStarted,
    Event,
    FileShown,
    Note,
    OutputLine,
    StepFinished,
    StepStarted,
)
from gitops.errors import DemoError, ExitCode, UserError

RULE = "━" * 78
FILE_LINES = 80  # a file shown in full up to this many lines
# A poll line of the apply health wait: "… waiting for the rollout: 5 of 51 pending [29s left]"
_WAIT_POLL = re.compile(r"^(→ [\w-]+: heal: )?… waiting for .*: \d+ of \d+ pending")


class Printer:
    """Prints the events; long command output shows its first and last lines only."""

    def __init__(self, *, head: int, tail: int, steps: int = 8) -> None:
        self.head, self.tail, self.steps = head, tail, steps
        self.cwd = ""
        self.shown = 0
        self.hidden: list[str] = []
        self.wait_blocks: list[list[str]] = []

    def out(self, text: str = "") -> None:
        click.echo(text)
        sys.stdout.flush()

    def __call__(self, e: Event) -> None:
        if isinstance(e, StepStarted):
            self.out(f"\n{RULE}\nStep {e.number}/{self.steps}: {e.title}\n{RULE}")
            self.out(click.wrap_text(e.explain, width=90) + "\n")
        elif isinstance(e, CommandStarted):
            if e.cwd != self.cwd:
                self.out(f"$ cd {e.cwd}")
                self.cwd = e.cwd
            self.out(f"$ {e.display}")
            self.shown, self.hidden, self.wait_blocks = 0, [], []
        elif isinstance(e, OutputLine):
            if self.head == 0:
                self._line(e.text)
            else:
                self._collapsing(e.text)
        elif isinstance(e, CommandFinished):
            self._end_wait()
            self._flush_hidden(e.log)
            self.out(f"  └ exit code {e.exit_code} ({e.seconds:.1f} s)")
        elif isinstance(e, FileShown):
            self.out(f"\n$ cat {e.path}")
            lines = e.text.splitlines()
            limit = FILE_LINES if self.head else len(lines)
            for line in lines[:limit]:
                self.out(f"  │ {line}")
            if len(lines) > limit:
                self.out(f"  │ ... {len(lines) - limit} more lines in {e.path}")
        elif isinstance(e, Check):
            self.out(f"  ✓ {e.text}")
        elif isinstance(e, Note):
            first, *rest = e.text.splitlines() or [""]
            self.out(f"  → {first}")
            for line in rest:
                self.out(f"      {line}")
        elif isinstance(e, StepFinished):
            self.out(f"✓ step {e.number} ({e.title}) done in {e.seconds:.1f} s")

    def _line(self, text: str) -> None:
        if self.head == 0 or self.shown < self.head:
            self.out(f"  │ {text}")
            self.shown += 1
        else:
            self.hidden.append(text)

    def _collapsing(self, text: str) -> None:
        """An apply prints what it waits for on every poll: show the first and the last
        block of a run of such blocks, and how many were skipped between them."""
        if _WAIT_POLL.match(text):
            if self.wait_blocks:
                self.wait_blocks.append([text])
                return
            self.wait_blocks = [[text]]
            self._line(text)
            return
        if self.wait_blocks and text.startswith("    "):
            if len(self.wait_blocks) == 1:
                self._line(text)
            else:
                self.wait_blocks[-1].append(text)
            return
        self._end_wait()
        self._line(text)

    def _end_wait(self) -> None:
        blocks, self.wait_blocks = self.wait_blocks, []
        if len(blocks) < 2:
            return
        if len(blocks) > 2:
            self._line(f"… ({len(blocks) - 2} more progress updates)")
        for line in blocks[-1]:
            self._line(line)

    def _flush_hidden(self, log: str) -> None:
        if not self.hidden:
            return
        tail = self.hidden[-self.tail:] if self.tail else []
        skipped = len(self.hidden) - len(tail)
        if skipped:
            self.out(f"  │ ... {skipped} more lines (the whole output: {log})")
        for line in tail:
            self.out(f"  │ {line}")
        self.hidden = []


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--workdir", type=click.Path(path_type=Path), metavar="DIR",
              help="Work in DIR (kept afterwards) instead of a fresh temp folder.")
@click.option("--keep", is_flag=True, help="Keep the temp folder (the deployment repo, logs).")
@click.option("--full", is_flag=True, help="Print every line of every command's output.")
@click.option("--kubeflow", is_flag=True,
              help="The real stack instead: Kubeflow v1.8.1 installed and upgraded live to "
                   "v1.11.0 (docs/kubeflow-live.md).")
@click.option("--to", "last", metavar="VERSION",
              help="With --kubeflow: stop upgrading at this release (v1.9.1, v1.10.2).")
def main(workdir: Path | None, keep: bool, full: bool, kubeflow: bool,
         last: str | None) -> None:
    """Run stackctl's whole mission against the local sandbox: start it, create a deployment
    repo from the example stack, apply two clusters, upgrade v1.3.0 to v1.4.1 resolving a
    conflict, plan, roll out (with a deliberate failure and automatic rollback), detect and
    heal drift, and stop everything. Exit code 0 when every step did what it should, 2 when
    one did not (the step is named), 130 when interrupted (Ctrl-C), 143 on SIGTERM.

    \b
    Example:
      make demo                      # installs, builds the sandbox, runs this
      .venv/bin/python -m gitops.demo --keep
      make demo-kubeflow             # = python -m gitops.demo --kubeflow
    """
    from gitops.demo import run_demo

    _ctrl_c_ends_the_demo()
    if kubeflow:
        _kubeflow(workdir, keep, full, last)
        return
    printer = Printer(head=0 if full else 40, tail=0 if full else 15)
    with _ended_on_failure():  # the summary too: a Ctrl-C there is no traceback either
        result = run_demo(progress=printer, workdir=workdir, keep=keep)
        printer.out(f"\n{RULE}\nThe demo passed: 8 steps in {result.seconds:.0f} s.")
        for number, title, seconds in result.steps:
            printer.out(f"  {number}. {title:<28} {seconds:6.1f} s")
        if result.kept:
            printer.out(f"The deployment repo is in {result.repo}; the command logs in "
                        f"{result.workdir / 'logs'}.")
    sys.exit(int(ExitCode.OK))


class _Terminated(KeyboardInterrupt):
    """SIGTERM (a CI job cancelled, `kill`): the demo ends as on Ctrl-C, with exit 143. A
    KeyboardInterrupt, so every step's cleanup (the running command killed, the sandbox
    stopped) runs as for Ctrl-C."""


def _ctrl_c_ends_the_demo() -> None:
    """Ctrl-C (SIGINT) raises KeyboardInterrupt once, SIGTERM `_Terminated`, whatever this
    process inherited; the steps' cleanup stops the sandbox. For the life of the process (it
    is the entry point).

    Python turns SIGINT into KeyboardInterrupt only when it was not ignored at start-up, and
    a command started in the background by a shell without job control (`make test &` in a
    script, CI runners, nohup-style wrappers) inherits SIGINT ignored: the demo then ran to
    its end through a Ctrl-C. SIGTERM killed it outright, leaving the running stackctl and
    the sandbox's state file behind. `stackctl apply` and `rollout` install their handlers
    too. Later signals are ignored: the demo is already ending, and stopping the sandbox
    (bounded: SIGTERM, SIGKILL after 10 s) and the last message must not be cut short by a
    user pressing Ctrl-C again."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        for s in (signal.SIGINT, signal.SIGTERM):
            signal.signal(s, signal.SIG_IGN)
        raise _Terminated if signum == signal.SIGTERM else KeyboardInterrupt

    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, interrupt)


@contextmanager
def _ended_on_failure() -> Iterator[None]:
    """A demo's failure or Ctrl-C as one line and its exit code (the sandbox is stopped by
    then), never a traceback."""
    try:
        yield
    except _Terminated:
        click.echo("\nterminated (SIGTERM); the sandbox was stopped.", err=True)
        sys.exit(int(ExitCode.TERMINATED))
    except KeyboardInterrupt:
        click.echo("\ninterrupted; the sandbox was stopped.", err=True)
        sys.exit(int(ExitCode.INTERRUPTED))
    except DemoError as e:
        click.echo(f"\n✗ {e}", err=True)
        sys.exit(int(e.exit_code))
    except UserError as e:
        click.echo(f"\n✗ the demo could not run: {e}", err=True)
        sys.exit(int(e.exit_code))


def _kubeflow(workdir: Path | None, keep: bool, full: bool, last: str | None) -> None:
    from gitops.demo.kubeflow import run_kubeflow, steps_of
    from gitops.demo.kubeflow_repo import RELEASES
    from gitops.demo.remotes import REMOTE_BASES, remote_bases_present
    from gitops.paths import project_root

    archives = project_root().parent / "shared" / "upstream" / "kubeflow-manifests"
    archives = Path(os.environ.get("STACKCTL_KUBEFLOW_ARCHIVES") or archives)
    if last is not None and last not in RELEASES[1:]:
        raise click.UsageError(f"--to: one of {', '.join(RELEASES[1:])}")
    releases = RELEASES[:RELEASES.index(last) + 1] if last else RELEASES
    missing = [v for v in releases
               if not (archives / f"kubeflow-manifests-{v}.tar.gz").is_file()]
    if missing or not remote_bases_present():
        click.echo(f"✗ the Kubeflow demo needs the release archives {', '.join(releases)} in "
                   f"{archives} and the remote bases in {REMOTE_BASES} (set "
                   "STACKCTL_KUBEFLOW_ARCHIVES and STACKCTL_REMOTE_BASES to other folders).",
                   err=True)
        sys.exit(int(ExitCode.ERROR))
    printer = Printer(head=0 if full else 40, tail=0 if full else 15,
                      steps=steps_of(releases))
    with _ended_on_failure():
        result = run_kubeflow(progress=printer, archives=archives, workdir=workdir, keep=keep,
                              releases=releases, mirrors=os.environ.get("STACKCTL_MIRRORS"),
                              remote_bases=REMOTE_BASES)
        demo = result.demo
        printer.out(f"\n{RULE}\nThe Kubeflow demo passed: {len(demo.steps)} steps in "
                    f"{demo.seconds:.0f} s.")
        for number, title, seconds in demo.steps:
            printer.out(f"  {number:>2}. {title:<40} {seconds:6.1f} s")
        printer.out("Time per hop:")
        for what, seconds in result.times:
            printer.out(f"  {what:<44} {seconds:6.1f} s")
        if demo.kept:
            printer.out(f"The deployment repo is in {demo.repo}; the command logs in "
                        f"{demo.workdir / 'logs'}.")
    sys.exit(int(ExitCode.OK))


if __name__ == "__main__":
    main(prog_name="python -m gitops.demo")
