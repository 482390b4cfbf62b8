"""`stackctl apply`, `stackctl rollback`, `stackctl history`."""

from __future__ import annotations

import sys
import threading
from typing import TYPE_CHECKING, Any

import click

from gitops.errors import ExitCode

if TYPE_CHECKING:
    from gitops.apply.results import ApplyResult, ProgressEvent
    from gitops.cluster import Cluster
    from gitops.stack import Stack

_lock = threading.Lock()


def _echo(line: str) -> None:
    with _lock:
        click.echo(line, err=True)


def _progress(verbose: bool) -> Any:
    counts = {"created": 0, "configured": 0}

    def on_event(e: ProgressEvent) -> None:
        if e.stage == "apply":
            counts[e.message] = counts.get(e.message, 0) + 1
            if verbose:
                _echo(f"  {e.message:<10} {e.id}")
            return
        prefix = {"wait": "…", "failed": "✗", "done": "✓"}.get(e.stage, "→")
        suffix = f" {e.id}" if e.id is not None else ""
        _echo(f"{prefix} {e.message}{suffix}")

    return on_event


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


def _report(result: ApplyResult) -> int:
    out = click.echo
    for r in result.rejections:
        out(f"rejected: {r.describe()}")
    if result.rejections:
        out(f"\n{len(result.rejections)} object(s) rejected by the API server; nothing was "
            "applied. Fix them and run the command again.")
        return int(ExitCode.ERROR)
    if result.dry_run:
        return _report_plan(result)
    for n in result.abandoned:
        out(f"note: revision {n} had been left pending by an apply that stopped; marked failed")
    if result.lease_taken_over:
        out(f"note: took over the stale lease held by {result.lease_taken_over}")
    created, configured = result.count("created"), result.count("configured")
    unchanged = result.count("unchanged")
    deleted = [p for p in result.prune if p.action == "deleted"]
    kept = [p for p in result.prune if p.action == "keep"]
    for p in kept:
        out(f"kept {p.id}: {p.reason}")
    if result.failure is None:
        if not result.changed:
            out(f"no changes: {unchanged} object(s) up to date; revision {result.revision} is "
                "current")
        else:
            out(f"revision {result.revision} deployed: {created} created, {configured} "
                f"configured, {unchanged} unchanged, {len(deleted)} pruned")
        return int(ExitCode.OK)
    f = result.failure
    out(f"apply of revision {result.revision} failed ({f.stage}): {f.summary}")
    for o in f.objects:
        out(f"  {o.id}: {o.reason}")
        for line in o.details:
            out(f"    {line}")
    rb = result.rollback
    if rb is None:
        out("no rollback (--no-rollback): the cluster is left as the failed attempt left it")
    elif rb.error:
        out(f"rollback FAILED: {rb.error}")
    elif rb.to_revision is None:
        out(f"rolled back: nothing to roll back to; deleted {len(rb.deleted)} object(s) the "
            "failed attempt created" + (f", kept {len(rb.kept)} protected" if rb.kept else ""))
    else:
        state = "healthy" if rb.healthy else "NOT healthy"
        out(f"rolled back to revision {rb.to_revision} (recorded as revision "
            f"{rb.recorded_revision}): {rb.reapplied} re-applied, {len(rb.deleted)} deleted; "
            f"{state}")
    return int(ExitCode.ERROR)


def _report_plan(result: ApplyResult) -> int:
    out = click.echo
    changes = [a for a in result.actions if a.action != "unchanged"]
    for a in changes:
        sign = "+" if a.action == "create" else "~"
        note = f" ({a.message})" if a.message else ""
        out(f"{sign} {a.id}{note}")
        for c in a.changes:
            out(f"    {c}")
    for p in result.prune:
        out(f"- {p.id}" if p.action == "delete" else f"  keep {p.id}: {p.reason}")
    creates = sum(1 for a in changes if a.action == "create")
    updates = len(changes) - creates
    deletes = sum(1 for p in result.prune if p.action == "delete")
    out(f"plan: {creates} to create, {updates} to update, {deletes} to delete, "
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
        progress=_progress(verbose),
    )
    return _report(result)


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
        break_lease=break_lease, progress=_progress(False),
    )
    return _report(result)


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
    click.echo(f"{'REVISION':<9} {'COMMIT':<13} {'TIME':<21} {'STATUS':<12} {'OBJECTS':>7}  "
               "DESCRIPTION")
    for r in revisions:
        click.echo(f"{r.revision:<9} {(r.commit or '-')[:12]:<13} {r.time:<21} {r.status:<12} "
                   f"{r.object_count:>7}  {r.description}")
    sys.stdout.flush()
    return int(ExitCode.OK)


COMMANDS = [apply, rollback, history]
