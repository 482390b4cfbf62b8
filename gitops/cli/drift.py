"""`stackctl drift`: live clusters against their last applied revision and git."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from gitops.cluster import Cluster
    from gitops.drift import DriftTarget
    from gitops.redact import Redactor
    from gitops.stack import Stack

FORMATS = ("text", "markdown", "json")


def _target(stack: Stack, cluster: Cluster, head: str, say: Callable[[str], None],
            redactor: Redactor) -> DriftTarget:
    from gitops.cli._clusters import connect, render_cluster
    from gitops.drift import DriftTarget
    from gitops.drift.model import TreeRender

    def connected() -> Any:
        return connect(cluster, say)[0]

    def render() -> TreeRender:
        tree = render_cluster(stack, cluster, redactor)
        return TreeRender(tree.objects, uncommitted=tree.dirty)

    return DriftTarget(name=cluster.name, connect=connected,
                       records_namespace=cluster.records_namespace, render=render,
                       head_commit=head, policy=cluster.policy)


@click.command("drift")
@click.option("--cluster", "clusters", multiple=True, metavar="NAME",
              help="Check this cluster (repeatable).")
@click.option("--all", "all_", is_flag=True,
              help="Check every cluster under clusters/ (the default without --cluster).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text",
              show_default=True, help="text for a terminal, markdown for an issue or a CI "
                                      "artifact, json for alerting (docs/drift.md).")
@click.option("--heal", is_flag=True,
              help="Re-apply the last revision to drifted clusters (taking back the fields "
                   "other managers changed), then check again.")
def drift(clusters: tuple[str, ...], all_: bool, fmt: str, heal: bool) -> int:
    """Compare each cluster's live objects with its last applied revision, field by field on
    the fields stackctl applied (managedFields), so server defaults and other controllers'
    fields are not drift. Reports objects missing, fields changed (and which field manager
    changed them), objects carrying stackctl's ApplySet label that the revision does not
    hold, and whether git's render differs from the last applied revision (merged but not
    rolled out). Secret values show as salted hashes, never in clear.
    Exit code 0 in sync, 1 drift, 2 when a cluster could not be checked (the others are
    still checked).

    \b
    Example:
      stackctl drift --all
      stackctl drift --cluster eks-prod --format markdown > drift.md
      stackctl drift --cluster dev --heal
    """
    from gitops.cli._clusters import head_commit
    from gitops.cli._run import start_run
    from gitops.cluster import select_clusters
    from gitops.drift import check_drift, render_json, render_markdown, render_text

    if all_ and clusters:
        raise click.UsageError("give --cluster NAME or --all, not both.")
    run = start_run()
    stack, redactor = run.stack, run.redactor
    head = head_commit(stack) or ""

    def say(msg: str) -> None:
        click.echo(redactor.text(f"→ {msg}"), err=True)

    targets = [_target(stack, c, head, say, redactor)
               for c in select_clusters(stack, clusters, all_=all_)]
    report = check_drift(targets, heal=heal, redactor=redactor, progress=say)
    out = {"json": render_json, "markdown": render_markdown}.get(fmt, render_text)(report)
    click.echo(out, nl=False)
    return int(report.exit_code)


COMMANDS = [drift]
