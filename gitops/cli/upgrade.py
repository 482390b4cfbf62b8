"""`stackctl upgrade`: merge a new upstream release with the local customizations, on a
branch of its own; resolve, continue, abort, status."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from gitops.errors import ExitCode

if TYPE_CHECKING:
    from gitops.upgrade import UpgradeResult, UpgradeState

FORMATS = ("text", "markdown", "json")


def _progress(message: str) -> None:
    click.echo(f"→ {message}", err=True)


def _print_result(result: UpgradeResult, fmt: str) -> int:
    report = result.report
    if fmt == "json":
        click.echo(report.to_json(), nl=False)
    elif fmt == "markdown":
        click.echo(report.to_markdown(), nl=False)
    else:
        click.echo(report.to_text(), nl=False)
    if result.report_paths:
        shown = ", ".join(str(p) for p in _relative(result.report_paths))
        click.echo(f"reports: {shown}", err=True)
    if result.outcome == "conflicts":
        click.echo(f"{len(result.open_conflicts)} conflict(s) to resolve on "
                   f"{result.upgrade_branch}: 'stackctl upgrade --resolve ADDRESS --ours' (or "
                   "--theirs, or --mark after editing the file), then 'stackctl upgrade "
                   "--continue'; 'stackctl upgrade --abort' drops the upgrade.", err=True)
    elif result.outcome == "committed":
        click.echo(f"committed {(result.merge_commit or '')[:12]} on {result.upgrade_branch} "
                   f"(checked out); {result.original_branch} is unchanged. Review with "
                   f"'stackctl plan --base {result.original_branch}'.", err=True)
    return int(result.exit_code)


def _relative(paths: tuple[Path, ...]) -> list[Path]:
    out = []
    for p in paths:
        try:
            out.append(p.relative_to(Path.cwd()))
        except ValueError:
            out.append(p)
    return out


def _print_status(state: UpgradeState | None) -> int:
    if state is None:
        click.echo("no upgrade in progress")
        return int(ExitCode.OK)
    if state.phase == "importing":
        click.echo(f"upgrade of {state.name} {state.from_version} -> {state.to_version} in "
                   f"progress (from {state.original_branch}), started {state.started_at}")
        click.echo(f"interrupted while importing {state.to_version} onto "
                   f"{state.vendor_branch}: run 'stackctl upgrade --abort' to put the vendor "
                   "branch back, then start again")
        return int(ExitCode.FINDING)
    click.echo(f"upgrade of {state.name} {state.from_version} -> {state.to_version} in "
               f"progress on {state.upgrade_branch} (from {state.original_branch}), "
               f"started {state.started_at}")
    if state.phase != "conflicts":
        click.echo("interrupted before the merged tree was checked out: run "
                   "'stackctl upgrade --abort', then start again")
        return int(ExitCode.FINDING)
    open_ = state.open_conflicts
    click.echo(f"conflicts: {len(state.conflicts)}, open: {len(open_)}")
    from gitops.upgrade.report import describe_conflict

    for r in state.conflicts:
        mark = f"resolved ({r.resolution})" if r.resolution else "open"
        click.echo(f"  #{r.id} {mark}: {r.address}")
        for line in describe_conflict(r.conflict, resolved=r.resolution is not None,
                                      indent="      "):
            click.echo(line)
    if open_:
        click.echo("next: 'stackctl upgrade --resolve ADDRESS --ours|--theirs|--mark'")
        return int(ExitCode.FINDING)
    click.echo("next: 'stackctl upgrade --continue' commits the merge")
    return int(ExitCode.OK)


@click.command("upgrade")
@click.option("--vendor", "ref", metavar="REF",
              help="Start an upgrade to this release: tag, branch or commit; v1.4 picks the "
                   "highest v1.4.x.")
@click.option("--kustomize", "kustomize_version", metavar="VERSION",
              help="Move the stack's kustomize pin (stack.yaml `kustomize:`) to VERSION: "
                   "every cluster rendered with both releases, the differences reported, "
                   "the new pin committed on upgrade/kustomize-VERSION.")
@click.option("--source", metavar="SRC", help="Read the release from this source instead of "
                                             "stack.yaml's.")
@click.option("--branch", metavar="NAME",
              help="Name of the upgrade branch. Default: upgrade/<name>-<version>.")
@click.option("--dry-run", is_flag=True,
              help="Print the report only: no branch, no commit, no file changed.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text",
              show_default=True, help="How to print the report.")
@click.option("--resolve", "address", metavar="ADDRESS",
              help="Settle the conflict at ADDRESS (PATH, PATH:RESOURCE or "
                   "PATH:RESOURCE:FIELD, as the report prints it), or #N, its number "
                   "in --status.")
@click.option("--ours", "choice", flag_value="ours", help="With --resolve: keep the local "
                                                          "value.")
@click.option("--theirs", "choice", flag_value="theirs",
              help="With --resolve: take the new release's value.")
@click.option("--mark", "choice", flag_value="mark",
              help="With --resolve: you edited the file yourself; mark it resolved.")
@click.option("--path", "new_path", metavar="NEW",
              help="With --resolve: the new path of an unresolved reference, written as the "
                   "file's other references are (relative to its folder).")
@click.option("--continue", "continue_", is_flag=True,
              help="Commit the resolved merge on the upgrade branch.")
@click.option("--abort", is_flag=True,
              help="Drop the upgrade: back to the original branch, exactly as it was.")
@click.option("--status", is_flag=True, help="Show the upgrade in progress.")
def upgrade(ref: str | None, kustomize_version: str | None, source: str | None,
            branch: str | None, dry_run: bool, fmt: str,
            address: str | None, choice: str | None, new_path: str | None, continue_: bool,
            abort: bool, status: bool) -> int:
    """Merge a new upstream release with your local edits and overlays, three-way and
    resource by resource, on a new branch: the current branch is never modified.

    Imports REF onto the branch vendor/NAME, creates upgrade/NAME-VERSION from the current
    branch and merges: files changed only upstream take upstream, local edits stay, files
    changed on both sides merge field by field, references to moved upstream paths in
    overlays/ and clusters/ are rewritten on evidence (upstream's own kustomizations, or
    content), else reported unresolved. Every cluster is rendered before and after, and
    every local customization that loses its effect is reported. A clean merge is
    committed (exit 0); conflicts are checked out with a marker comment above each, for
    --resolve and --continue (exit 1). Reports: .stackctl/upgrade/report.md and report.json.

    \b
    Examples:
      stackctl upgrade --vendor v1.4 --dry-run
      stackctl upgrade --vendor v1.4
      stackctl upgrade --kustomize v5.8.2 --dry-run
      stackctl upgrade --resolve vendor/x/app.yaml:apps/Deployment//web:spec.replicas --theirs
      stackctl upgrade --resolve 'clusters/c/kustomization.yaml::resources[../../vendor/x/a]' \
          --path ../../vendor/x/b
      stackctl upgrade --continue
      stackctl upgrade --abort
    """
    modes = [m for m, on in (("--vendor", ref is not None),
                             ("--kustomize", kustomize_version is not None),
                             ("--resolve", address is not None),
                             ("--continue", continue_), ("--abort", abort),
                             ("--status", status)) if on]
    if len(modes) != 1:
        raise click.UsageError(
            "give exactly one of --vendor REF, --kustomize VERSION, --resolve ADDRESS, "
            "--continue, --abort, "
            f"--status (got {', '.join(modes) or 'none'}).")
    if ref is None and kustomize_version is None and (source or branch or dry_run):
        raise click.UsageError("--source, --branch and --dry-run go with --vendor REF (and "
                               "--branch, --dry-run with --kustomize VERSION).")
    if kustomize_version is not None and source:
        raise click.UsageError("--source goes with --vendor REF.")
    if new_path is not None:
        if choice is not None:
            raise click.UsageError("--path NEW settles an unresolved reference by itself; "
                                   "give it without --ours, --theirs or --mark.")
        choice = "path"
    if (address is None) != (choice is None):
        raise click.UsageError("--resolve ADDRESS takes one of --ours, --theirs, --mark or "
                               "--path NEW, and they take --resolve.")

    from gitops.cli._run import start_run
    from gitops.upgrade import (
        abort_upgrade,
        continue_upgrade,
        resolve,
        start_upgrade,
        upgrade_status,
    )

    run = start_run()
    stack = run.stack
    if kustomize_version is not None:
        from gitops.upgrade.tool import upgrade_kustomize

        result = upgrade_kustomize(stack, version=kustomize_version, branch=branch,
                                   dry_run=dry_run, progress=_progress, redactor=run.redactor)
        return _print_result(result, fmt)
    if ref is not None:
        from gitops.source import spec_for_stack

        spec = spec_for_stack(source, root=stack.root, cwd=Path.cwd()) if source else None
        result = start_upgrade(stack, ref=ref, source=spec, branch=branch, dry_run=dry_run,
                               progress=_progress, redactor=run.redactor)
        return _print_result(result, fmt)
    if address is not None and choice is not None:
        res = resolve(stack, address=address, choice=choice, path=new_path)
        for r in res.resolved:
            click.echo(f"resolved {r.address} ({r.resolution})")
        if res.open:
            click.echo(f"{len(res.open)} conflict(s) still open:")
            for r in res.open:
                click.echo(f"  {r.address}")
        else:
            click.echo("no conflict left: run 'stackctl upgrade --continue'")
        return int(ExitCode.OK)
    if continue_:
        result = continue_upgrade(stack, progress=_progress, redactor=run.redactor)
        if result.outcome == "conflicts" and result.report_paths:
            # The renders of the resolved tree found customizations that lost their effect.
            return _print_result(result, fmt)
        if result.outcome == "conflicts":
            open_ = result.open_conflicts
            click.echo(f"error: {len(open_)} conflict(s) are still open; resolve each with "
                       "'stackctl upgrade --resolve ADDRESS --ours|--theirs|--mark':", err=True)
            for c in open_:
                click.echo(f"  {c.address}", err=True)
            return int(ExitCode.FINDING)
        return _print_result(result, fmt)
    if abort:
        state = abort_upgrade(stack, progress=_progress)
        if state.phase == "importing":
            click.echo(f"upgrade to {state.to_version} aborted: {state.vendor_branch} put "
                       f"back; {state.original_branch} was not changed")
            return int(ExitCode.OK)
        click.echo(f"upgrade to {state.to_version} aborted: back on {state.original_branch} "
                   f"at {state.original_commit[:12]}; {state.upgrade_branch} deleted")
        return int(ExitCode.OK)
    return _print_status(upgrade_status(stack))


COMMANDS = [upgrade]
