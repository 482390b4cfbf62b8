"""What the demo reports while it runs: one frozen value per thing that happens.

The core never prints; `gitops.demo.__main__` turns these into terminal output and the
integration test collects them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class StepStarted:
    number: int
    title: str
    explain: str  # what the step does, one or two sentences


@dataclass(frozen=True)
class CommandStarted:
    display: str  # the command line as a user would type it, e.g. "stackctl apply ..."
    cwd: str  # shown as a `cd` when it changes


@dataclass(frozen=True)
class OutputLine:
    text: str
    stream: str  # "stdout" or "stderr"


@dataclass(frozen=True)
class CommandFinished:
    display: str
    exit_code: int
    seconds: float
    log: str  # file holding the whole output


@dataclass(frozen=True)
class Check:
    """An expected outcome the demo verified (a failed one raises DemoError instead)."""

    text: str


@dataclass(frozen=True)
class Note:
    """What to look at, or what happened outside a command (a file edited, a commit)."""

    text: str


@dataclass(frozen=True)
class FileShown:
    """A file of the deployment repo worth reading (the merge report)."""

    path: str  # relative to the deployment repo
    text: str


@dataclass(frozen=True)
class StepFinished:
    number: int
    title: str
    seconds: float


Event = (StepStarted | CommandStarted | OutputLine | CommandFinished | Check | Note | FileShown
         | StepFinished)
Progress = Callable[[Event], None]
