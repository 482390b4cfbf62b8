"""`stackctl plan`: what a change does to each cluster, between two git commits."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import click

from gitops.errors import ExitCode

if TYPE_CHECKING:
    from gitops.plan import Plan
    from gitops.redact import Redactor
    from gitops.stack import Stack

FORMATS = ("text", "markdown", "json")


@click.command("plan")
@click.option("--base", metavar="REF",
              help="The commit to compare against: a branch, tag or commit (e.g. main).")
@click.option("--live", is_flag=True,
              help="Compare the working tree's render with the live cluster (one --cluster) "
                   "instead of a commit, through server-side dry-run applies.")
@click.option("--head", default="HEAD", show_default=True, metavar="REF",
              help="The commit whose changes are planned (committed state, not the working "
                   "tree).")
@click.option("--cluster", "clusters", multiple=True, metavar="NAME",
              help="Only this cluster (repeatable). Default: every cluster at either commit.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text",
              show_default=True, help="text for a terminal, markdown for a pull-request "
                                      "comment, json for tools.")
@click.option("--max-bytes", type=click.IntRange(min=1024), metavar="N",
              help="Size budget of the output; the biggest diffs are summarised to fit. "
                   "Default: 65536 for markdown (a GitHub comment), no limit otherwise.")
def plan(base: str | None, live: bool, head: str, clusters: tuple[str, ...], fmt: str,
         max_bytes: int | None) -> int:
    """Render every cluster at two commits (without a checkout) and show, per cluster, the
    objects added, removed and changed, field by field, with image changes and API or CRD
    version changes called out. Secret values are shown as salted hashes, never in clear.
    With --live, the working tree's render of one cluster is compared with that live
    cluster instead: each object is dry-run applied on the server, so defaulted fields and
    webhook mutations are not changes; objects of the last applied revision that the render
    lost show as removed (they would be pruned).
    Exit code 0 when nothing changes, 1 when something does, 2 on errors and when a check
    fails (a Secret added in clear where stack.yaml says `secrets: {require: sops}`; the
    plan is printed all the same).

    \b
    Example:
      stackctl plan --base main
      stackctl plan --live --cluster dev
      stackctl plan --base main --head upgrade/mlstack-v1.4.1 --format markdown > plan.md
      stackctl plan --base v1 --cluster eks-prod --format json
    """
    from gitops.cli._run import start_run
    from gitops.plan import (
        DEFAULT_MAX_BYTES,
        make_plan,
        render_json,
        render_markdown,
        render_text,
    )

    if live == (base is not None):
        raise click.UsageError("give either --base REF or --live.")
    if live and (len(clusters) != 1 or head != "HEAD"):
        raise click.UsageError("--live compares the working tree with one cluster: give "
                               "exactly one --cluster NAME (and no --head).")
    run = start_run()
    stack, redactor = run.stack, run.redactor
    progress = lambda msg: click.echo(f"→ {msg}", err=True)  # noqa: E731
    if live:
        result = _live(stack, clusters[0], redactor=redactor, progress=progress)
    else:
        assert base is not None
        result = make_plan(stack, base=base, head=head, clusters=clusters, redactor=redactor,
                           progress=progress)
    if fmt == "markdown":
        out = render_markdown(result, max_bytes=max_bytes or DEFAULT_MAX_BYTES)
    elif fmt == "json":
        out = render_json(result, max_bytes=max_bytes)
    else:
        out = render_text(result, max_bytes=max_bytes)
    click.echo(out, nl=False)
    if result.failed_checks:
        for check in result.failed_checks:
            click.echo(f"error: {check}.", err=True)
        return int(ExitCode.ERROR)
    return int(ExitCode.FINDING if result.changed else ExitCode.OK)


def _live(stack: Stack, name: str, *, redactor: Redactor, progress: Callable[[str], None]
          ) -> Plan:
    from gitops.apply import ApplyOptions
    from gitops.cli._clusters import head_commit, render_cluster, target_for
    from gitops.cluster import load_cluster
    from gitops.plan import RefInfo
    from gitops.plan.live import live_plan

    cluster = load_cluster(stack, name)
    progress(f"rendering cluster {cluster.name}")
    objects = render_cluster(stack, cluster, redactor).objects
    # What `stackctl apply --cluster NAME` would do, with the cluster's policy.
    return live_plan(target=target_for(cluster, progress), objects=objects,
                     head=RefInfo(ref="working tree", commit=head_commit(stack) or "-"),
                     options=ApplyOptions(policy=cluster.policy), redactor=redactor,
                     progress=progress)


COMMANDS = [plan]
