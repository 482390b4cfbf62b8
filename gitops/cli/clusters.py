"""`stackctl clusters`: the clusters and their waves, for people and for CI fan-out."""

from __future__ import annotations

import click

from gitops.errors import ExitCode


@click.command("clusters")
@click.option("--cluster", "clusters", multiple=True, metavar="NAME",
              help="Only this cluster (repeatable; default: every cluster).")
@click.option("--format", "fmt",
              type=click.Choice(["text", "json", "github-matrix", "gitlab"]),
              default="text", show_default=True,
              help="github-matrix: lines for $GITHUB_OUTPUT (a matrix per wave: wave1, "
                   "wave2, ...; waves, max-parallel, bake-seconds); gitlab: a child pipeline "
                   "with a stage per wave.")
@click.option("--include", "include", metavar="PATH",
              default="pipelines/gitlab/stackctl-cluster.gitlab-ci.yml", show_default=True,
              help="With --format gitlab: the file that defines the jobs' template "
                   "(.stackctl-cluster, .stackctl-bake).")
def clusters(clusters: tuple[str, ...], fmt: str, include: str) -> int:
    """List the clusters in rollout order (cluster.yaml's `wave`, then the name), so that
    a CI system can apply each on its own runner: a GitHub Actions matrix per wave, waves
    as dependent jobs; or a GitLab child pipeline with a stage per wave.

    \b
    Example:
      stackctl clusters
      stackctl clusters --format github-matrix >> "$GITHUB_OUTPUT"
      stackctl clusters --format gitlab > rollout-pipeline.yml
    """
    from gitops.cluster import select_clusters
    from gitops.git import head_commit_of
    from gitops.rollout import fanout, load_settings, plan_waves
    from gitops.stack import load_stack

    stack = load_stack()
    waves = plan_waves(select_clusters(stack, list(clusters), all_=not clusters))
    settings = load_settings(stack.root)
    if fmt == "json":
        click.echo(fanout.to_json(waves, settings))
    elif fmt == "github-matrix":
        click.echo("\n".join(fanout.github_outputs(waves, settings)))
    elif fmt == "gitlab":
        click.echo(fanout.gitlab_pipeline(waves, settings, include=include,
                                          commit=head_commit_of(stack.root)), nl=False)
    else:
        click.echo("\n".join(fanout.text_lines(waves)))
    return int(ExitCode.OK)


COMMANDS = [clusters]
