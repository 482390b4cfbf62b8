"""The run context of a command, as the CLI builds it: loaded once per command, and
known to the error handler, which scrubs a failure's message with the same redactor."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from gitops.context import RunContext
    from gitops.redact import Redactor


@dataclass
class CommandRun:
    """Handed to click as the root context's object by `run_guarded`; a command that
    loads its run context leaves its redactor here for the error handler."""

    redactor: Redactor | None = None


def start_run() -> RunContext:
    """The command's run context (stack and redactor), registered for the error handler."""
    from gitops.context import RunContext

    run = RunContext.load()
    ctx = click.get_current_context(silent=True)
    holder = ctx.find_object(CommandRun) if ctx is not None else None
    if holder is not None:
        holder.redactor = run.redactor
    return run
