"""`stackctl rollout`: apply many clusters, wave by wave, several at once within a wave."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import TYPE_CHECKING

import click

from gitops.errors import ExitCode

if TYPE_CHECKING:
    from gitops.context import RunContext
    from gitops.errors import ApplyError
    from gitops.redact import Redactor
    from gitops.rollout import RolloutResult

# A second SIGTERM exit code beside 130 (SIGINT): 128 + the signal's number, as shells do.
TERMINATED = 128 + signal.SIGTERM


@contextmanager
def _stopping_on_signals(stop: threading.Event) -> Iterator[list[int]]:
    """SIGINT and SIGTERM set `stop` (no new cluster starts; the running ones finish, each
    rolled back if it fails) instead of raising in the middle of the bookkeeping; yields
    the signals received."""
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received  # signals reach the main thread only (a test runner's thread)
        return

    def handler(signum: int, _frame: FrameType | None) -> None:
        received.append(signum)
        if not stop.is_set():
            stop.set()
            click.echo(f"\n{signal.Signals(signum).name}: stopping the rollout; the clusters "
                       "being applied finish (each rolled back if it fails).", err=True)

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield received
    finally:
        for s, h in old.items():
            signal.signal(s, h)


@click.command("rollout")
@click.option("--cluster", "clusters", multiple=True, metavar="NAME",
              help="A cluster to roll out (repeatable; default: every cluster).")
@click.option("--max-parallel", type=click.IntRange(min=1), metavar="N",
              help="Clusters applied at once within a wave (default: stack.yaml's "
                   "rollout.maxParallel, else 5).")
@click.option("--max-failures", type=click.IntRange(min=0), metavar="N",
              help="Failed clusters tolerated; one more stops the rollout (default: "
                   "stack.yaml's rollout.maxFailures, else 0).")
@click.option("--bake-time", metavar="DURATION",
              help="How long a wave must stay healthy before the next starts, e.g. 5m "
                   "(default: stack.yaml's rollout.bakeTime, else 0s).")
@click.option("--dry-run", is_flag=True,
              help="Print the waves and what each cluster would change; change nothing.")
@click.option("--resume", is_flag=True,
              help="Skip the clusters that already run this commit (their records say so) "
                   "and continue with the rest; without --cluster, the clusters of the last "
                   "rollout.")
@click.option("--allow-dirty", is_flag=True,
              help="Apply even when files the clusters render have uncommitted changes (each "
                   "revision is recorded as dirty).")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown"]),
              default="text", show_default=True, help="The result's format (stdout).")
def rollout(clusters: tuple[str, ...], max_parallel: int | None, max_failures: int | None,
            bake_time: str | None, dry_run: bool, resume: bool, allow_dirty: bool,
            fmt: str) -> int:
    """Apply the clusters wave by wave (cluster.yaml's `wave`, lower first), up to
    --max-parallel at once within a wave, each through the same apply as `stackctl apply`
    (dry run, ordered apply, health wait, prune, record; a failed cluster is rolled back).
    A wave starts when the one before is done and healthy and the bake time has passed;
    once more than --max-failures clusters failed, no new cluster starts. Progress goes to
    stderr, the result table per wave to stdout. Exit code 0 when every cluster runs this
    commit, 2 otherwise, 130 when interrupted (SIGINT; 143 for SIGTERM).

    \b
    Example:
      stackctl rollout --dry-run
      stackctl rollout --max-parallel 8 --max-failures 1
      stackctl rollout --resume                  # after a stopped rollout
      stackctl rollout --cluster eks-prod --format markdown >> "$GITHUB_STEP_SUMMARY"
    """
    from gitops.cli._rollout_view import FleetProgress
    from gitops.cli._run import start_run
    from gitops.cluster import parse_duration
    from gitops.rollout import load_settings
    from gitops.rollout import rollout as run_rollout

    run = start_run()
    settings = load_settings(run.stack.root).with_flags(
        max_parallel=max_parallel, max_failures=max_failures,
        bake_time=parse_duration(bake_time, what="--bake-time") if bake_time else None)
    stop = threading.Event()
    view = FleetProgress(run.redactor, sys.stderr, live=sys.stderr.isatty())
    try:
        with _stopping_on_signals(stop) as received:
            result = run_rollout(run.stack, clusters=clusters, settings=settings,
                                 redactor=run.redactor, stop=stop, progress=view,
                                 resume=resume, dry_run=dry_run, allow_dirty=allow_dirty)
    finally:
        view.close()
    _print(result, fmt, run.redactor)
    _log_crashes(result, run)
    if result.crashes:
        return int(ExitCode.INTERNAL)
    if received:
        click.echo(run.redactor.text(_interrupted(result), pairs="="), err=True)
        return TERMINATED if received[0] == signal.SIGTERM else int(ExitCode.INTERRUPTED)
    if not result.ok:
        raise _not_deployed(result)
    return int(ExitCode.OK)


def _interrupted(result: RolloutResult) -> str:
    left = [c.cluster for c in result.clusters if c.outcome == "not started"]
    return (f"interrupted: {len(left)} cluster(s) were not started; the ones being applied "
            "finished (see the table). Run 'stackctl rollout --resume' to continue with the "
            "clusters that do not run this commit.")


def _not_deployed(result: RolloutResult) -> ApplyError:
    from gitops.errors import ApplyError

    failed = [c.cluster for c in result.clusters if c.outcome == "failed"]
    left = [c.cluster for c in result.clusters if c.outcome == "not started"]
    if result.dry_run:
        return ApplyError(f"{len(failed)} cluster(s) could not be planned: {', '.join(failed)}.",
                          hint="The table above gives each one's reason; fix it and run the "
                               "dry run again.")
    what = f"{len(failed)} cluster(s) failed ({', '.join(failed)})"
    if left:
        what += f" and {len(left)} were not started ({result.stopped})"
    return ApplyError(
        f"the rollout did not reach every cluster: {what}. Each failed cluster was rolled "
        "back by its own apply (the table says to which revision).",
        hint="Fix the cause given in the table, then run 'stackctl rollout --resume' to "
             "continue from the first cluster that does not run this commit.")


def _print(result: RolloutResult, fmt: str, redactor: Redactor) -> None:
    from gitops.rollout import report as rep

    if fmt == "json":
        text = rep.to_json(result)
    elif fmt == "markdown":
        text = rep.markdown(result)
    else:
        text = "\n".join(rep.text_lines(result))
    click.echo(redactor.text(text, pairs="="))


def _log_crashes(result: RolloutResult, run: RunContext) -> None:
    """A bug met while applying a cluster: its traceback in a log, one line naming it."""
    from gitops.cli._errors import write_crash_log
    from gitops.cli._run import CommandRun

    holder = CommandRun(run.redactor)
    for e in result.crashes:
        try:
            where = str(write_crash_log(e, holder))
        except OSError:
            where = "(the log could not be written)"
        click.echo(f"error: stackctl failed unexpectedly ({type(e).__name__}). This is a bug; "
                   f"the traceback is in {where}. Please report it with that file.", err=True)


COMMANDS = [rollout]
