"""Turns every outcome of a command into a message and a documented exit code."""

from __future__ import annotations

import datetime as dt
import os
import textwrap
import traceback
from pathlib import Path

import click

from gitops.cli._run import CommandRun
from gitops.cli._signals import Terminated, terminable
from gitops.errors import ExitCode, StackctlError, UserError


def _log_dir() -> Path:
    from gitops.paths import cache_dir

    return cache_dir() / "logs"


def _paragraph(text: str) -> str:
    return "\n".join(
        textwrap.fill(p, width=100, break_long_words=False, break_on_hyphens=False)
        if len(p) > 100 and "\n" not in p else p
        for p in text.split("\n\n")
    )


def _scrub(message: str, run: CommandRun) -> str:
    """Secret values the run has seen never reach the terminal (an API server may quote a
    rejected Secret's value: argo-cd#16193): scrubbed with the command's redactor."""
    from gitops.redact import scrub_message

    return scrub_message(message, run.redactor)


def write_crash_log(exc: BaseException, run: CommandRun) -> Path:
    log_dir = _log_dir()
    # A traceback may quote what a run held (paths, values): the owner's alone.
    log_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    log_dir.chmod(0o700)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    path = log_dir / f"crash-{stamp}-{os.getpid()}.log"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(_scrub("".join(traceback.format_exception(exc)), run))
    return path


def run_guarded(group: click.Group, args: list[str]) -> int:
    """Run the click group; never let a traceback reach the user."""
    run = CommandRun()
    try:
        with terminable():
            rv = group.main(args=args, prog_name="stackctl", standalone_mode=False, obj=run)
    except click.exceptions.Exit as e:
        return int(e.exit_code)
    except (click.exceptions.Abort, KeyboardInterrupt) as e:
        # click turns a KeyboardInterrupt (and so Terminated) into Abort, from it.
        if isinstance(e, Terminated) or isinstance(e.__cause__, Terminated):
            click.echo("terminated (SIGTERM); nothing further was changed.", err=True)
            return int(ExitCode.TERMINATED)
        click.echo("\ninterrupted; nothing further was changed.", err=True)
        return int(ExitCode.INTERRUPTED)
    except click.UsageError as e:
        cmd = e.ctx.command_path if e.ctx is not None else "stackctl"
        click.echo(
            f"error: {e.format_message()} Run '{cmd} --help' for the options and an example.",
            err=True,
        )
        return int(ExitCode.ERROR)
    except click.ClickException as e:
        click.echo(f"error: {e.format_message()}", err=True)
        return int(ExitCode.ERROR)
    except UserError as e:
        click.echo(_paragraph(f"error: {_scrub(str(e), run)}"), err=True)
        return int(e.exit_code)
    except StackctlError as e:
        click.echo(_paragraph(f"error: {_scrub(str(e), run)}"), err=True)
        return int(e.exit_code)
    except BrokenPipeError:
        return int(ExitCode.OK)
    except OSError as e:
        # A full disk, a read-only file system or a missing permission met where it was not
        # translated: the machine's condition (exit 2), not a bug.
        from gitops.oserrors import refusal

        doing = f"use {e.filename}" if e.filename else "complete the command"
        refused = refusal(e, action=doing)
        if refused is None:
            return _crash(e, run)
        click.echo(_paragraph(f"error: {_scrub(str(refused), run)}"), err=True)
        return int(refused.exit_code)
    except Exception as e:
        return _crash(e, run)
    if rv is None:
        return int(ExitCode.OK)
    return int(rv)


def _crash(e: BaseException, run: CommandRun) -> int:
    """A bug: one line for the user, the traceback in a log."""
    try:
        where = str(write_crash_log(e, run))
    except OSError:
        where = "(the log could not be written)"
    click.echo(
        f"error: stackctl failed unexpectedly ({type(e).__name__}: {_scrub(str(e), run)}). "
        "This is a bug; "
        f"the traceback is in {where}. Please report it with that file.",
        err=True,
    )
    return int(ExitCode.INTERNAL)
