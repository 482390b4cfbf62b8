"""`stackctl render`: each cluster's kustomization, rendered, normalised and written."""

from __future__ import annotations

from pathlib import Path

import click

from gitops.errors import ExitCode


@click.command("render")
@click.option("--cluster", "clusters", multiple=True, metavar="NAME",
              help="Render this cluster (repeatable).")
@click.option("--all", "all_clusters", is_flag=True,
              help="Render every cluster (the default when no --cluster is given).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              metavar="DIR", help="Output folder. Default: rendered/ in the deployment repo.")
@click.option("--split", is_flag=True,
              help="Write one file per object under DIR/<cluster>/ instead of DIR/<cluster>.yaml.")
@click.option("--ref", metavar="GITREF",
              help="Render the clusters as they are at this commit, branch or tag (read "
                   "from git; the working tree is not touched).")
@click.option("--no-cache", is_flag=True,
              help="Run kustomize even when the inputs are unchanged since a cached render.")
@click.option("--kustomize", "kustomize_bin", metavar="PATH",
              help="The kustomize binary (>= 5.0.0). Default: $STACKCTL_KUSTOMIZE, the "
                   "sandbox build ('make kustomize'), then kustomize on PATH.")
@click.option("--jobs", "-j", type=click.IntRange(min=1), metavar="N",
              help="Clusters rendered at once. Default: the number of cores.")
def render(clusters: tuple[str, ...], all_clusters: bool, out_dir: Path | None, split: bool,
           ref: str | None, no_cache: bool, kustomize_bin: str | None,
           jobs: int | None) -> int:
    """Run kustomize on clusters/<name> for each cluster and write one normalised,
    deterministic multi-document file per cluster: objects ordered by kind (Namespaces and
    CRDs first, webhooks last), namespace and name, with a header naming the cluster, the
    git commit and the kustomize version. Renders never reach the network: a kustomization
    with a remote base is refused. Unchanged inputs are served from a cache.
    Exit code 0 on success, 2 when a cluster fails to render.

    \b
    Example:
      stackctl render --all
      stackctl render --cluster eks-prod --out /tmp/manifests --split
      stackctl render --ref main --cluster microk8s-dev
    """
    from gitops.errors import ConfigError, UserError
    from gitops.kustomize import find_kustomize
    from gitops.render import render_each, write_rendered
    from gitops.stack import locate_stack

    stack = locate_stack()
    if clusters and all_clusters:
        raise click.UsageError("give either --cluster NAME ... or --all, not both.")
    k = find_kustomize(kustomize_bin, version=stack.kustomize)
    out = out_dir if out_dir is not None else stack.root / "rendered"
    # No --cluster: every cluster of the tree rendered (at --ref, the commit's clusters).
    results = render_each(stack, list(clusters), ref=ref, jobs=jobs, use_cache=not no_cache,
                          kustomize=k)
    if not results:
        raise ConfigError("there are no clusters to render (no clusters/<name>/"
                          f"kustomization.yaml{' at ' + ref if ref else ''}).",
                          hint="Create one, e.g. with 'stackctl init'.")
    failed = 0
    for name, r in results.items():
        if isinstance(r, UserError):
            failed += 1
            click.echo(f"error: {r}", err=True)
            continue
        for w in r.warnings:
            click.echo(f"warning: cluster {name}: {w}", err=True)
        written = write_rendered(r, out, split=split)
        where = written[0].parent if split and written else (out / name if split else written[0])
        click.echo(f"{name}: {len(r.objects)} objects -> {where}"
                   + (" (cached)" if r.cache_hit else ""))
    if failed:
        click.echo(f"{failed} of {len(results)} cluster(s) failed to render; their output "
                   "files were left as they were.", err=True)
        return int(ExitCode.ERROR)
    return int(ExitCode.OK)


COMMANDS = [render]
