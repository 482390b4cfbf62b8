"""`stackctl apply`, `stackctl rollback`, `stackctl history`."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from gitops.errors import ExitCode

if TYPE_CHECKING:
    from gitops.apply import ApplyResult, ProgressEvent
    from gitops.cluster import Cluster
    from gitops.context import RunContext
    from gitops.errors import UserError
    from gitops.redact import Redactor
    from gitops.resource import ResourceId

_lock = threading.Lock()

# A wait line is printed when what is pending changes, else at most this often.
WAIT_REPEAT_SECONDS = 10.0
WAIT_LINES = 5  # pending objects listed under a wait line


class _Printer:
    """Every line the apply commands print goes through the run's redactor, which the
    engine has taught the secret values of the objects it applies: results on stdout,
    progress on stderr."""

    def __init__(self, redactor: Redactor) -> None:
        self.redactor = redactor

    def _safe(self, text: str) -> str:
        return self.redactor.text(text, pairs="=")

    def err(self, line: str) -> None:
        with _lock:
            click.echo(self._safe(line), err=True)

    def out(self, lines: list[str]) -> None:
        for line in lines:
            click.echo(self._safe(line))


class _Progress:
    """The progress display on stderr: one line per step, each phase with its object count,
    and what the health wait is waiting on (the pending objects and why), printed again when
    that changes or every WAIT_REPEAT_SECONDS."""

    def __init__(self, printer: _Printer, verbose: bool) -> None:
        self.echo = printer.err
        self.verbose = verbose
        self._last_wait: tuple[str, tuple[tuple[ResourceId, str], ...]] | None = None
        self._last_time = 0.0

    def __call__(self, e: ProgressEvent) -> None:
        if e.stage == "apply":
            if self.verbose:
                self.echo(f"  {e.message:<10} {e.id}")
            return
        if e.stage == "wait" and e.pending:
            self._wait(e)
            return
        self._last_wait = None
        prefix = {"wait": "…", "failed": "✗", "done": "✓"}.get(e.stage, "→")
        suffix = f" {e.id}" if e.id is not None and str(e.id) not in e.message else ""
        self.echo(f"{prefix} {e.message}{suffix}")

    def _wait(self, e: ProgressEvent) -> None:
        key = (e.phase, e.pending)
        now = time.monotonic()
        if key == self._last_wait and now - self._last_time < WAIT_REPEAT_SECONDS:
            return
        self._last_wait, self._last_time = key, now
        left = f" [{e.seconds_left}s left]" if e.seconds_left is not None else ""
        self.echo(f"… waiting for {e.phase}: {len(e.pending)} of {e.total} pending{left}")
        for rid, reason in e.pending[:WAIT_LINES]:
            self.echo(f"    {rid}: {reason}")
        if len(e.pending) > WAIT_LINES:
            self.echo(f"    and {len(e.pending) - WAIT_LINES} more")


def _load(cluster_name: str) -> tuple[RunContext, Cluster]:
    from gitops.cli._run import start_run
    from gitops.cluster import load_cluster

    run = start_run()
    return run, load_cluster(run.stack, cluster_name)


FORMATS = ("text", "json")


def _format_option(f: Any) -> Any:
    return click.option("--format", "fmt", type=click.Choice(FORMATS), default="text",
                        help="text for people; json for tools (every object, see "
                             "docs/apply.md).")(f)


def _failure_log(run: RunContext, result: ApplyResult) -> str:
    """Write every failed object (and its details) to .stackctl/logs/; the path, or ""
    when the apply did not fail."""
    from gitops.apply.report import failure_log_lines
    from gitops.paths import write_atomic
    from gitops.upgrade.state import ensure_state_dir

    if result.failure is None:
        return ""
    ensure_state_dir(run.stack.root)  # .stackctl/ with the .gitignore that ignores it
    path = run.stack.state_dir / "logs" / f"apply-{result.cluster}-r{result.revision}.log"
    text = "\n".join(run.redactor.text(line, pairs="=")
                     for line in failure_log_lines(result)) + "\n"
    write_atomic(path, text)
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _report(run: RunContext, printer: _Printer, result: ApplyResult, *, command: str,
            fmt: str = "text") -> int:
    """Print the result on stdout (text or JSON); a rejected or failed apply ends with one
    paragraph on stderr (an ApplyError through the error handler) and exit code 2."""
    from gitops.apply.jsonout import result_json
    from gitops.apply.report import (
        failed_error,
        rejected_error,
        rejection_lines,
        result_lines,
        stopped_error,
    )

    log = _failure_log(run, result)
    if fmt == "json":
        click.echo(result_json(result, run.redactor, command=command), nl=False)
    elif result.rejections:
        printer.out(rejection_lines(result.rejections))
    else:
        printer.out(result_lines(result, log_path=log))
    if result.rejections:
        raise rejected_error(result.rejections, dry_run=False, command=command)
    if result.stopped:
        raise stopped_error(result, command=command)
    if result.failure is not None:
        raise failed_error(result, command=command)
    return int(ExitCode.OK)


def _one_cluster(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> str:
    """--cluster given once: a repeated one used to apply the last alone, silently."""
    if len(value) > 1:
        raise click.BadParameter(
            f"given {len(value)} times ({', '.join(value)}); this command acts on one "
            "cluster: run it once per cluster (a CI matrix or a shell loop).",
            param=param)
    return value[0]


def _cluster_option(help: str) -> Callable[[Callable[..., int]], Callable[..., int]]:
    return click.option("--cluster", "cluster_name", required=True, metavar="NAME",
                        multiple=True, callback=_one_cluster, help=help)


@click.command("apply")
@_cluster_option("The cluster under clusters/ to render and apply.")
@click.option("--dry-run", is_flag=True,
              help="Print the creates, updates (field by field) and deletes; change nothing.")
@click.option("--timeout", metavar="DURATION",
              help="Bound on the health wait, e.g. 90s or 5m (default: cluster.yaml's).")
@click.option("--no-rollback", is_flag=True, help="Leave a failed apply as it is.")
@click.option("--no-prune", is_flag=True, help="Keep objects that left the render.")
@click.option("--force-conflicts", is_flag=True,
              help="Take over fields another field manager owns.")
@click.option("--allow-mass-prune", is_flag=True,
              help="Allow an empty render, or pruning more than half of the last revision.")
@click.option("--break-lease", is_flag=True,
              help="Take over a stale lease left by an apply that died.")
@click.option("--allow-dirty", is_flag=True,
              help="Apply although files the cluster renders have uncommitted changes (the "
                   "revision is recorded as dirty).")
@click.option("-v", "--verbose", is_flag=True, help="Print every object as it is applied.")
@_format_option
def apply(cluster_name: str, dry_run: bool, timeout: str | None, no_rollback: bool,
          no_prune: bool, force_conflicts: bool, allow_mass_prune: bool, break_lease: bool,
          allow_dirty: bool, verbose: bool, fmt: str) -> int:
    """Render a cluster and apply it through the Kubernetes API: validate everything with a
    server-side dry run, apply in order (CRDs, namespaces, RBAC, workloads, webhooks), wait
    for health, prune what left the render, and record a revision. A failed apply is rolled
    back to the previous revision (exit code 2).

    \b
    Example:
      stackctl apply --cluster dev --dry-run
      stackctl apply --cluster dev --timeout 10m
    """
    from dataclasses import replace

    from gitops.apply import ApplyOptions, calculate, execute
    from gitops.apply.report import change_set_lines, rejected_error, rejection_lines
    from gitops.apply.stop import Stop
    from gitops.cli._clusters import head_commit, render_cluster, target_for
    from gitops.cli._signals import stopping
    from gitops.cluster import parse_duration

    run, cluster = _load(cluster_name)
    printer = _Printer(run.redactor)
    policy = cluster.policy
    if timeout:
        policy = replace(policy, timeout=parse_duration(timeout, what="--timeout"))
    command = f"stackctl apply --cluster {cluster.name}"
    printer.err(f"→ rendering cluster {cluster.name}")
    rendered = render_cluster(run.stack, cluster, run.redactor)
    if rendered.dirty and not dry_run and not allow_dirty:
        raise _dirty_error(run, cluster, command)
    options = ApplyOptions(
        policy=policy, commit=head_commit(run.stack), rollback=not no_rollback,
        prune=policy.prune and not no_prune, force_conflicts=force_conflicts,
        allow_mass_prune=allow_mass_prune, break_lease=break_lease, dirty=rendered.dirty)
    objects = rendered.objects
    progress = _Progress(printer, verbose)
    target = target_for(cluster, lambda line: printer.err(f"→ {line}"))
    change_set = calculate(target, objects, options=options,
                           redactor=run.redactor, fields=dry_run, progress=progress)
    if dry_run:
        if fmt == "json":
            from gitops.apply.jsonout import change_set_json

            click.echo(change_set_json(change_set), nl=False)
        else:
            printer.out(rejection_lines(change_set.rejections))
        if change_set.rejections:
            raise rejected_error(change_set.rejections, dry_run=True, command=command)
        if fmt == "text":
            printer.out(change_set_lines(change_set))
        return int(ExitCode.OK)
    with stopping(Stop()) as stop:
        result = execute(change_set, options, progress, stop=stop)
    return _report(run, printer, result, command=command, fmt=fmt)


def _dirty_error(run: RunContext, cluster: Cluster, command: str) -> UserError:
    from gitops.errors import UserError
    from gitops.git import shown_dirty_paths

    shown = shown_dirty_paths(run.stack.root)
    return UserError(
        f"the working tree has uncommitted changes to files cluster {cluster.name!r} renders"
        + (f" (changed: {shown})" if shown else "") + ": the revision would not match any "
        "commit. Nothing was applied.",
        hint=f"Commit the changes and run '{command}' again, or give --allow-dirty to apply "
             "them as they are (the revision is then recorded as '<commit>-dirty').")


@click.command("rollback")
@_cluster_option("The cluster to roll back.")
@click.option("--to", "to", type=int, metavar="REVISION",
              help="The revision to go back to (default: the one before the current).")
@click.option("--timeout", metavar="DURATION", help="Bound on the health wait.")
@click.option("--break-lease", is_flag=True,
              help="Take over a stale lease left by an apply that died.")
@_format_option
def rollback(cluster_name: str, to: int | None, timeout: str | None, break_lease: bool,
             fmt: str) -> int:
    """Re-apply a recorded revision of a cluster as a new revision, deleting what the current
    revision added (protected kinds excepted).

    \b
    Example:
      stackctl history --cluster dev
      stackctl rollback --cluster dev --to 3
    """
    from dataclasses import replace

    from gitops.apply import ApplyOptions, rollback_to
    from gitops.apply.stop import Stop
    from gitops.cli._clusters import target_for
    from gitops.cli._signals import stopping
    from gitops.cluster import parse_duration

    run, cluster = _load(cluster_name)
    printer = _Printer(run.redactor)
    policy = cluster.policy
    if timeout:
        policy = replace(policy, timeout=parse_duration(timeout, what="--timeout"))
    with stopping(Stop()) as stop:
        result = rollback_to(
            target_for(cluster, lambda line: printer.err(f"→ {line}")), revision=to,
            options=ApplyOptions(policy=policy, break_lease=break_lease),
            redactor=run.redactor, progress=_Progress(printer, False), stop=stop,
        )
    return _report(run, printer, result, command=f"stackctl rollback --cluster {cluster.name}",
                   fmt=fmt)


@click.command("history")
@_cluster_option("The cluster whose revisions to list.")
@_format_option
def history(cluster_name: str, fmt: str) -> int:
    """List the recorded revisions of a cluster: revision, commit, time, status, objects.

    \b
    Example:
      stackctl history --cluster dev
    """
    from gitops.apply import history as load_history
    from gitops.apply.report import history_lines
    from gitops.cli._clusters import target_for

    run, cluster = _load(cluster_name)
    printer = _Printer(run.redactor)
    revisions = load_history(target_for(cluster, lambda line: printer.err(f"→ {line}")))
    if fmt == "json":
        from gitops.apply.jsonout import history_json

        click.echo(history_json(cluster.name, revisions), nl=False)
        return int(ExitCode.OK)
    if not revisions:
        click.echo(f"no revisions recorded for cluster {cluster.name} in namespace "
                   f"{cluster.records_namespace}")
        return int(ExitCode.OK)
    printer.out(history_lines(revisions))
    sys.stdout.flush()
    return int(ExitCode.OK)


@click.command("pin")
@_cluster_option("The cluster whose identity to pin.")
@click.option("--replace", is_flag=True,
              help="Pin the cluster now reached although cluster.yaml pins another (the "
                   "cluster was rebuilt).")
def pin(cluster_name: str, replace: bool) -> int:
    """Write the identity of the cluster the kubeconfig reaches (the uid of its kube-system
    namespace) into clusters/NAME/cluster.yaml; commit it. From then on apply, rollback,
    drift and plan --live refuse an API server that is another cluster.

    \b
    Example:
      stackctl pin --cluster eks-prod && git commit -m "pin eks-prod" clusters/eks-prod
    """
    from dataclasses import replace as with_

    from gitops.cli._clusters import connect
    from gitops.cluster import pin_identity

    run, cluster = _load(cluster_name)
    printer = _Printer(run.redactor)

    def quiet(line: str) -> None:
        return None  # the unpinned note: this command is what it advises

    _, where = connect(with_(cluster, identity=None) if replace else cluster, quiet)
    printer.err(f"→ cluster {cluster.name}: {where.describe()}")
    if cluster.identity == where.uid:
        click.echo(f"cluster {cluster.name} is already pinned to {where.uid}")
        return int(ExitCode.OK)
    path = pin_identity(cluster, where.uid)
    rel = path.relative_to(run.stack.root)
    click.echo(f"pinned cluster {cluster.name} to identity {where.uid} in {rel}; commit it "
               f"(git add {rel} && git commit)")
    return int(ExitCode.OK)


COMMANDS = [apply, rollback, history, pin]
