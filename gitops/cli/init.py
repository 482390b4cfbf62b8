"""`stackctl init`: scaffold a deployment repo."""

from __future__ import annotations

from pathlib import Path

import click

from gitops.errors import ExitCode


@click.command("init")
@click.argument("directory", default=".", type=click.Path(path_type=Path))
@click.option("--name", required=True, metavar="NAME",
              help="Short name of the upstream; it is vendored under vendor/NAME/.")
@click.option("--source", required=True, metavar="SRC",
              help="Git URL or repository, .tar.gz/.zip archive, or a folder of releases.")
@click.option("--ref", metavar="REF", help="Release to track, e.g. v1.4 (highest v1.4.x).")
@click.option("--cluster", default="dev", show_default=True, metavar="NAME",
              help="Name of the first cluster under clusters/.")
def init(directory: Path, name: str, source: str, ref: str | None, cluster: str) -> int:
    """Scaffold a deployment repo in DIRECTORY (default: here): stack.yaml, vendor/,
    overlays/, clusters/CLUSTER/ with a kustomization.yaml and a documented cluster.yaml,
    and a .gitignore. Outside a git repository it also runs git init and commits.

    \b
    Example:
      stackctl init my-platform --name kubeflow \\
          --source https://github.com/kubeflow/manifests --ref v1.9
    """
    from gitops.scaffold import init_stack

    result = init_stack(directory, name=name, source=source, ref=ref, cluster=cluster)
    click.echo(f"created a deployment repo in {result.root}")
    for rel in result.created:
        click.echo(f"  {rel}")
    if result.new_repo:
        click.echo(f"initialised a git repository; initial commit {result.commit[:12]}"
                   if result.commit else "initialised a git repository")
    else:
        click.echo("the folder is inside a git repository already: commit these files")
    ref_hint = "" if ref else " --ref REF"
    click.echo(f"next: cd {result.root} && stackctl vendor import{ref_hint}")
    return int(ExitCode.OK)


COMMANDS = [init]
