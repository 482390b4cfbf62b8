"""`stackctl plan`: what a change does to each cluster, between two git commits."""

from __future__ import annotations

import click

from gitops.errors import ExitCode

FORMATS = ("text", "markdown", "json")


@click.command("plan")
@click.option("--base", required=True, metavar="REF",
              help="The commit to compare against: a branch, tag or commit (e.g. main).")
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
def plan(base: str, head: str, clusters: tuple[str, ...], fmt: str,
         max_bytes: int | None) -> int:
    """Render every cluster at two commits (without a checkout) and show, per cluster, the
    objects added, removed and changed, field by field, with image changes and API or CRD
    version changes called out. Secret values are shown as salted hashes, never in clear.
    Exit code 0 when nothing changes, 1 when something does, 2 on errors.

    \b
    Example:
      stackctl plan --base main
      stackctl plan --base main --head upgrade/mlstack-v1.4.1 --format markdown > plan.md
      stackctl plan --base v1 --cluster eks-prod --format json
    """
    from gitops.plan import (
        DEFAULT_MAX_BYTES,
        make_plan,
        render_json,
        render_markdown,
        render_text,
    )
    from gitops.redact import Redactor, set_run_redactor
    from gitops.stack import load_stack

    stack = load_stack()
    redactor = set_run_redactor(Redactor.from_config(stack.root))
    result = make_plan(
        stack, base=base, head=head, clusters=clusters, redactor=redactor,
        progress=lambda msg: click.echo(f"→ {msg}", err=True),
    )
    if fmt == "markdown":
        out = render_markdown(result, max_bytes=max_bytes or DEFAULT_MAX_BYTES)
    elif fmt == "json":
        out = render_json(result, max_bytes=max_bytes)
    else:
        out = render_text(result, max_bytes=max_bytes)
    click.echo(out, nl=False)
    return int(ExitCode.FINDING if result.changed else ExitCode.OK)


COMMANDS = [plan]
