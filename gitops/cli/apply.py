"""`stackctl apply`, `stackctl rollback`, `stackctl history`."""

from __future__ import annotations

import sys
import threading
import time
from typing import TYPE_CHECKING

import click

from gitops.errors import ExitCode

if TYPE_CHECKING:
    from gitops.apply.results import ApplyResult, ProgressEvent
    from gitops.cluster import Cluster
    from gitops.resource import ResourceId
    from gitops.stack import Stack

_lock = threading.Lock()

# A wait line is printed when what is pending changes, else at most this often.
WAIT_REPEAT_SECONDS = 10.0
WAIT_LINES = 5  # pending objects listed under a wait line


def _safe(text: str) -> str:
    """Every line printed by the apply commands goes through the run's redactor, which the
    engine has taught the secret values of the objects it applies."""
    from gitops.redact import run_redactor

    return run_redactor().text(text, pairs="=")


def _echo(line: str) -> None:
    with _lock:
        click.echo(_safe(line), err=True)


def _out(line: str = "") -> None:
    click.echo(_safe(line))


class _Progress:
    """The progress display on stderr: one line per step, each phase with its object count,
    and what the health wait is waiting on (the pending objects and why), printed again when
    that changes or every WAIT_REPEAT_SECONDS."""

    def __init__(self, verbose: bool) -> None:
        self.verbose = verbose
        self._last_wait: tuple[str, tuple[tuple[ResourceId, str], ...]] | None = None
        self._last_time = 0.0

    def __call__(self, e: ProgressEvent) -> None:
        if e.stage == "apply":
            if self.verbose:
                _echo(f"  {e.message:<10} {e.id}")
            return
        if e.stage == "wait" and e.pending:
            self._wait(e)
            return
        self._last_wait = None
        prefix = {"wait": "…", "failed": "✗", "done": "✓"}.get(e.stage, "→")
        suffix = f" {e.id}" if e.id is not None else ""
        _echo(f"{prefix} {e.message}{suffix}")

    def _wait(self, e: ProgressEvent) -> None:
        key = (e.phase, e.pending)
        now = time.monotonic()
        if key == self._last_wait and now - self._last_time < WAIT_REPEAT_SECONDS:
            return
        self._last_wait, self._last_time = key, now
        left = f" [{e.seconds_left}s left]" if e.seconds_left is not None else ""
        _echo(f"… waiting for {e.phase}: {len(e.pending)} of {e.total} pending{left}")
        for rid, reason in e.pending[:WAIT_LINES]:
            _echo(f"    {rid}: {reason}")
        if len(e.pending) > WAIT_LINES:
            _echo(f"    and {len(e.pending) - WAIT_LINES} more")


def _load(cluster_name: str) -> tuple[Stack, Cluster]:
    from gitops.cluster import load_cluster
    from gitops.stack import load_stack

    stack = load_stack()
    return stack, load_cluster(stack, cluster_name)


def _commit(stack: Stack) -> str | None:
    from gitops.errors import GitError
    from gitops.git import open_repo

    try:
        return open_repo(stack.root).head_commit()
    except GitError:
        return None


def _report(result: ApplyResult, *, command: str) -> int:
    """Print the result on stdout; a rejected or failed apply ends with one paragraph on
    stderr (an ApplyError through the error handler) and exit code 2."""
    from gitops.errors import ApplyError

    for r in result.rejections:
        _out(f"rejected: {r.describe()}")
    if result.rejections:
        conflicts = [r for r in result.rejections if r.reason == "Conflict"]
        what = "in the server-side dry run" if not result.dry_run else "in the dry run"
        hint = ("Fix the objects listed above in git (each line names the object, the "
                f"field and the server's message) and run '{command}' again.")
        if conflicts:
            hint += (f" {len(conflicts)} of them have fields owned by another field manager: "
                     "remove those fields from the render, or take them over with "
                     "--force-conflicts.")
        raise ApplyError(f"{len(result.rejections)} object(s) were rejected by the API server "
                         f"{what}; nothing was applied.", hint=hint)
    if result.dry_run:
        return _report_plan(result)
    for n in result.abandoned:
        _out(f"note: revision {n} had been left pending by an apply that stopped; "
             "marked failed")
    if result.lease_taken_over:
        _out(f"note: took over the stale lease held by {result.lease_taken_over}")
    created, configured = result.count("created"), result.count("configured")
    unchanged = result.count("unchanged")
    deleted = [p for p in result.prune if p.action == "deleted"]
    kept = [p for p in result.prune if p.action == "keep"]
    for p in kept:
        _out(f"kept {p.id}: {p.reason}")
    if result.failure is None:
        if not result.changed:
            _out(f"no changes: {unchanged} object(s) up to date; revision {result.revision} "
                 "is current")
        else:
            _out(f"revision {result.revision} deployed: {created} created, {configured} "
                 f"configured, {unchanged} unchanged, {len(deleted)} pruned")
        return int(ExitCode.OK)
    f = result.failure
    _out(f"apply of revision {result.revision} failed ({f.stage}): {f.summary}")
    for o in f.objects:
        _out(f"  {o.id}: {o.reason}")
        for line in o.details:
            _out(f"    {line}")
    rb = result.rollback
    if rb is None:
        outcome = "It was not rolled back (--no-rollback): the cluster is as the failed " \
                  "attempt left it."
    elif rb.error:
        outcome = (f"The automatic rollback failed too: {rb.error.rstrip('.')}; the objects "
                   "it failed on are listed above.")
        for o in rb.failure.objects if rb.failure else ():
            _out(f"  rollback: {o.id}: {o.reason}")
            for line in o.details:
                _out(f"    {line}")
    elif rb.to_revision is None:
        outcome = (f"There was no earlier revision to roll back to: the {len(rb.deleted)} "
                   "object(s) the attempt created were deleted"
                   + (f" ({len(rb.kept)} protected one(s) kept)" if rb.kept else "") + ".")
    else:
        state = "healthy" if rb.healthy else "NOT healthy"
        outcome = (f"It was rolled back to revision {rb.to_revision} (recorded as revision "
                   f"{rb.recorded_revision}; {rb.reapplied} re-applied, {len(rb.deleted)} "
                   f"deleted), which is {state}.")
        _out(f"rolled back to revision {rb.to_revision}: {state}")
    if f.stage == "health" and "timeout" in f.summary:
        hint = ("The objects and reasons are listed above; fix them in git, or give the "
                f"rollout more time with --timeout, and run '{command}' again.")
    else:
        hint = f"The objects and reasons are listed above; fix them and run '{command}' again."
    raise ApplyError(f"the apply of revision {result.revision} failed: {f.summary}. {outcome}",
                     hint=hint)


def _report_plan(result: ApplyResult) -> int:
    changes = [a for a in result.actions if a.action != "unchanged"]
    for a in changes:
        sign = "+" if a.action == "create" else "~"
        note = f" ({a.message})" if a.message else ""
        _out(f"{sign} {a.id}{note}")
        for c in a.changes:
            _out(f"    {c}")
    for p in result.prune:
        _out(f"- {p.id}" if p.action == "delete" else f"  keep {p.id}: {p.reason}")
    creates = sum(1 for a in changes if a.action == "create")
    updates = len(changes) - creates
    deletes = sum(1 for p in result.prune if p.action == "delete")
    _out(f"plan: {creates} to create, {updates} to update, {deletes} to delete, "
         f"{result.count('unchanged')} unchanged (dry run: nothing was changed)")
    return int(ExitCode.OK)


@click.command("apply")
@click.option("--cluster", "cluster_name", required=True, metavar="NAME",
              help="The cluster under clusters/ to render and apply.")
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
@click.option("-v", "--verbose", is_flag=True, help="Print every object as it is applied.")
def apply(cluster_name: str, dry_run: bool, timeout: str | None, no_rollback: bool,
          no_prune: bool, force_conflicts: bool, allow_mass_prune: bool, break_lease: bool,
          verbose: bool) -> int:
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

    from gitops.apply.engine import apply_objects
    from gitops.apply.target import api_client_for, render_objects
    from gitops.cluster import parse_duration

    stack, cluster = _load(cluster_name)
    policy = cluster.policy
    if timeout:
        policy = replace(policy, timeout=parse_duration(timeout, what="--timeout"))
    _echo(f"→ rendering cluster {cluster.name}")
    objects = render_objects(stack, cluster)
    client = api_client_for(cluster)
    result = apply_objects(
        client, objects, cluster=cluster.name, records_namespace=cluster.records_namespace,
        policy=policy, commit=_commit(stack), dry_run=dry_run, rollback=not no_rollback,
        prune=policy.prune and not no_prune, force_conflicts=force_conflicts,
        allow_mass_prune=allow_mass_prune, break_lease=break_lease,
        progress=_Progress(verbose),
    )
    return _report(result, command=f"stackctl apply --cluster {cluster.name}")


@click.command("rollback")
@click.option("--cluster", "cluster_name", required=True, metavar="NAME")
@click.option("--to", "to", type=int, metavar="REVISION",
              help="The revision to go back to (default: the one before the current).")
@click.option("--timeout", metavar="DURATION", help="Bound on the health wait.")
@click.option("--break-lease", is_flag=True,
              help="Take over a stale lease left by an apply that died.")
def rollback(cluster_name: str, to: int | None, timeout: str | None, break_lease: bool) -> int:
    """Re-apply a recorded revision of a cluster as a new revision, deleting what the current
    revision added (protected kinds excepted).

    \b
    Example:
      stackctl history --cluster dev
      stackctl rollback --cluster dev --to 3
    """
    from dataclasses import replace

    from gitops.apply.engine import rollback_to
    from gitops.apply.target import api_client_for
    from gitops.cluster import parse_duration

    _, cluster = _load(cluster_name)
    policy = cluster.policy
    if timeout:
        policy = replace(policy, timeout=parse_duration(timeout, what="--timeout"))
    result = rollback_to(
        api_client_for(cluster), cluster=cluster.name,
        records_namespace=cluster.records_namespace, revision=to, policy=policy,
        break_lease=break_lease, progress=_Progress(False),
    )
    return _report(result, command=f"stackctl rollback --cluster {cluster.name}")


@click.command("history")
@click.option("--cluster", "cluster_name", required=True, metavar="NAME")
def history(cluster_name: str) -> int:
    """List the recorded revisions of a cluster: revision, commit, time, status, objects.

    \b
    Example:
      stackctl history --cluster dev
    """
    from gitops.apply.engine import history as load_history
    from gitops.apply.target import api_client_for

    _, cluster = _load(cluster_name)
    revisions = load_history(api_client_for(cluster), cluster=cluster.name,
                             records_namespace=cluster.records_namespace)
    if not revisions:
        click.echo(f"no revisions recorded for cluster {cluster.name} in namespace "
                   f"{cluster.records_namespace}")
        return int(ExitCode.OK)
    _out(f"{'REVISION':<9} {'COMMIT':<13} {'TIME':<21} {'STATUS':<12} {'OBJECTS':>7}  "
         "DESCRIPTION")
    for r in revisions:
        _out(f"{r.revision:<9} {(r.commit or '-')[:12]:<13} {r.time:<21} {r.status:<12} "
             f"{r.object_count:>7}  {r.description}")
    sys.stdout.flush()
    return int(ExitCode.OK)


COMMANDS = [apply, rollback, history]
