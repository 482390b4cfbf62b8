"""`stackctl settle`: delete or release the objects an apply kept (protected kinds that left
the render), so that drift turns green."""

from __future__ import annotations

import json

import click

from gitops.errors import ExitCode


@click.command("settle")
@click.option("--cluster", "cluster_name", required=True, metavar="NAME")
@click.option("--delete", "delete", is_flag=True,
              help="Delete the kept objects (refused for a Namespace or CRD the deployed "
                   "revision still uses).")
@click.option("--release", "release", is_flag=True,
              help="Leave them in the cluster, no longer part of stackctl's apply set.")
@click.option("--break-lease", is_flag=True,
              help="Take over a stale lease left by an apply that died.")
@click.option("--timeout", metavar="DURATION",
              help="Bound on the wait until deleted objects are gone, e.g. 90s or 5m "
                   "(default: cluster.yaml's apply timeout).")
@click.option("--format", "fmt", type=click.Choice(("text", "json")), default="text")
@click.argument("objects", nargs=-1, metavar="[OBJECT]...")
def settle(cluster_name: str, delete: bool, release: bool, break_lease: bool,
           timeout: str | None, fmt: str, objects: tuple[str, ...]) -> int:
    """List the objects an apply kept when they left the render (Namespaces, CRDs, PVCs and
    other protected kinds still carrying stackctl's apply-set label), and delete or release
    them. Without --delete or --release nothing changes. OBJECT narrows it down, as drift
    prints it: Namespace/team-a, PersistentVolumeClaim/ml/data.

    \b
    Example:
      stackctl settle --cluster dev
      stackctl settle --cluster dev --release Namespace/legacy
      stackctl settle --cluster dev --delete
    """
    from gitops.apply.settle import SettleAction
    from gitops.apply.settle import settle as settle_objects
    from gitops.cli._clusters import target_for
    from gitops.cli.apply import _load
    from gitops.cluster import parse_duration
    from gitops.errors import ApplyError

    if delete and release:
        raise click.UsageError("choose one of --delete and --release")
    action = (SettleAction.DELETE if delete else SettleAction.RELEASE if release
              else SettleAction.LIST)
    _, cluster = _load(cluster_name)
    say = lambda line: click.echo(f"→ {line}", err=True)  # noqa: E731
    result = settle_objects(target_for(cluster, say), action=action, only=objects,
                            break_lease=break_lease, concurrency=cluster.policy.concurrency,
                            timeout=parse_duration(timeout, what="--timeout") if timeout
                            else cluster.policy.timeout)
    if fmt == "json":
        click.echo(json.dumps({
            "schema": "stackctl.dev/settle/v1", "cluster": result.cluster,
            "revision": result.revision, "action": str(result.action),
            "objects": [{"group": k.id.group, "kind": k.id.kind,
                         "namespace": k.id.namespace, "name": k.id.name,
                         "refused": k.refused, "done": k.done} for k in result.objects],
        }, indent=2))
    else:
        for k in result.objects:
            if k.done:
                click.echo(f"{k.done} {k.id}")
            else:
                note = f" (cannot be deleted: {k.refused})" if k.refused else ""
                click.echo(f"kept {k.id}{note}")
        if not result.objects:
            click.echo(f"nothing kept: every object of cluster {result.cluster} carrying "
                       f"stackctl's apply-set label is in revision {result.revision}")
        elif action is SettleAction.LIST:
            click.echo(f"{len(result.objects)} kept object(s); settle them with "
                       f"'stackctl settle --cluster {result.cluster} --delete' or "
                       "'--release'")
    if action is SettleAction.DELETE and result.refused:
        raise ApplyError(
            f"{len(result.refused)} kept object(s) cannot be deleted (listed above); "
            "nothing was deleted.",
            hint="Release them instead (--release), or name the others to delete "
                 f"('stackctl settle --cluster {result.cluster} --delete OBJECT...').")
    return int(ExitCode.OK)


COMMANDS = [settle]
