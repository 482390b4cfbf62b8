"""`stackctl vendor import|status|rebuild`: track an upstream release on a vendor branch."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from gitops.errors import ExitCode

if TYPE_CHECKING:
    from gitops.remote.pins import RemotePin
    from gitops.stack import Stack
    from gitops.vendor import RemoteBase, VendorStatus


def _progress(message: str) -> None:
    click.echo(f"  {message}", err=True)


def _stack(name: str | None) -> Stack:
    from dataclasses import replace

    from gitops.stack import load_stack, validate_name

    stack = load_stack()
    if name:
        stack = replace(stack, name=validate_name(name, what="--name"))
    return stack


def _warn_remote(bases: tuple[RemoteBase, ...]) -> None:
    if not bases:
        return
    click.echo(f"warning: {len(bases)} remote base(s) in the vendored kustomizations; a render "
               "needs them vendored too (renders never reach the network):", err=True)
    for b in bases:
        click.echo(f"  {b.file}: {b.field}: {b.url}", err=True)


def _pin_line(pin: RemotePin) -> str:
    what = (f"{pin.ref or 'HEAD'} ({(pin.commit or '')[:12]})" if pin.kind == "git"
            else f"sha256 {(pin.sha256 or '')[:12]}")
    n = len(pin.localized)
    return f"{pin.url} {what}, {n} entr{'y' if n == 1 else 'ies'}"


@click.group("vendor")
def vendor() -> None:
    """Track the upstream release vendored under vendor/NAME/ on the branch vendor/NAME.

    \b
    Examples:
      stackctl vendor import --ref v1.4        # highest v1.4.x, merged into this branch
      stackctl vendor status                   # local edits, newer tags, remote bases
      stackctl vendor rebuild                  # recreate vendor/NAME from stackctl.lock
    """


@vendor.command("import")
@click.option("--ref", metavar="REF",
              help="Tag, branch or commit; v1.4 picks the highest v1.4.x. Default: stack.yaml's.")
@click.option("--source", metavar="SRC", help="Import from this source instead of stack.yaml's.")
@click.option("--name", metavar="NAME", help="Vendor under this name instead of stack.yaml's.")
def import_(ref: str | None, source: str | None, name: str | None) -> int:
    """Import the upstream at REF pristine into vendor/NAME/: one commit on the branch
    vendor/NAME, merged into the current branch, with stackctl.lock updated. Remote bases
    its kustomizations pull are fetched (through stack.yaml's mirrors: and
    $STACKCTL_MIRRORS), vendored under vendor/NAME/_remotes/ and pinned in the lock.

    Refuses when the working tree has uncommitted changes, and when vendor/NAME/ has local
    edits (use 'stackctl upgrade --vendor REF' for those).

    \b
    Example:
      stackctl vendor import --ref v1.4 --source ../manifests-releases
    """
    from gitops.source import spec_for_stack
    from gitops.vendor import import_release

    stack = _stack(name)
    spec = spec_for_stack(source, root=stack.root, cwd=Path.cwd()) if source else None
    result = import_release(stack, ref=ref, source=spec, progress=_progress)
    entry = result.lock_entry
    asked = f" (asked for {entry.ref})" if entry.ref != entry.resolved else ""
    if result.unchanged:
        click.echo(f"{stack.name} {entry.resolved}{asked} is vendored already; nothing changed")
    else:
        click.echo(f"imported {stack.name} {entry.resolved}{asked} from {entry.source} "
                   f"[{entry.source_kind}]: {entry.files} files, {entry.digest}")
        click.echo(f"  {stack.vendor_branch} at {result.vendor_commit[:12]}; merged as "
                   f"{(result.merge_commit or '')[:12]}")
        if result.remotes:
            click.echo(f"  {len(result.remotes)} remote base(s) vendored under "
                       f"{stack.vendor_relpath}/_remotes/ and pinned in stackctl.lock:")
            for pin in result.remotes:
                click.echo(f"    {_pin_line(pin)}")
    _warn_remote(result.remote_bases)
    return int(ExitCode.OK)


def _status_json(st: VendorStatus) -> str:
    e = st.entry
    return json.dumps({
        "name": st.name, "path": st.path,
        "lock": e.to_yaml() if e else None,
        "pristine": st.pristine,
        "modified": list(st.modified), "added": list(st.added), "deleted": list(st.deleted),
        "newerTags": list(st.newer_tags),
        "remoteBases": [{"file": b.file, "field": b.field, "url": b.url}
                        for b in st.remote_bases],
        "sourceError": st.source_error, "vendorBranchCommit": st.branch_commit,
        "remotes": [{**r.pin.to_yaml(), "state": r.state, "detail": r.detail}
                    for r in st.remotes],
    }, indent=2)


@vendor.command("status")
@click.option("--name", metavar="NAME", help="The vendored upstream (default: stack.yaml's).")
@click.option("--offline", is_flag=True, help="Do not contact the source for newer tags.")
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
def status(name: str | None, offline: bool, as_json: bool) -> int:
    """Show what is vendored (from stackctl.lock), whether vendor/NAME/ still equals the
    pristine import (modified, added and deleted files), newer release tags of the source,
    each vendored remote base and whether its copy is intact, and kustomizations that still
    pull remote bases. Informational: exit 0 unless it fails.

    \b
    Example:
      stackctl vendor status --offline
    """
    from gitops.vendor import vendor_status

    stack = _stack(name)
    st = vendor_status(stack, check_source=not offline, progress=_progress)
    if as_json:
        click.echo(_status_json(st))
        return int(ExitCode.OK)
    e = st.entry
    if e is None:
        click.echo(f"nothing is vendored for {stack.name} yet; run "
                   "'stackctl vendor import --ref REF'")
        return int(ExitCode.OK)
    asked = f" (asked for {e.ref})" if e.ref != e.resolved else ""
    click.echo(f"{e.name}: {e.resolved}{asked} from {e.source} [{e.source_kind}], "
               f"imported {e.imported_at}")
    if e.commit:
        click.echo(f"  upstream commit {e.commit}")
    if e.archive_sha256:
        click.echo(f"  archive sha256 {e.archive_sha256}")
    click.echo(f"  {e.files} files, {e.digest}")
    click.echo(f"  {e.vendor_branch} at {(st.branch_commit or 'missing')[:12]}")
    if st.pristine:
        click.echo(f"{st.path}/: pristine (no local changes)")
    else:
        n = len(st.modified) + len(st.added) + len(st.deleted)
        click.echo(f"{st.path}/: {n} local change(s) since the import")
        for label, paths in (("modified", st.modified), ("added", st.added),
                             ("deleted", st.deleted)):
            for p in paths:
                click.echo(f"  {label + ':':10} {st.path}/{p}")
    if st.source_error:
        click.echo(f"newer releases: unknown ({st.source_error})")
    elif not offline:
        click.echo("newer releases: " + (", ".join(st.newer_tags) or "none"))
    if st.remotes:
        click.echo(f"remote bases vendored under {st.path}/_remotes/ (pinned in "
                   "stackctl.lock):")
        for r in st.remotes:
            state = r.state + (f" ({r.detail})" if r.state != "intact" else "")
            click.echo(f"  {_pin_line(r.pin)}: {state}")
    if st.remote_bases:
        click.echo("remote bases not vendored (a render refuses them):")
        for b in st.remote_bases:
            click.echo(f"  {b.file}: {b.field}: {b.url}")
    return int(ExitCode.OK)


@vendor.command("rebuild")
@click.option("--name", metavar="NAME", help="The vendored upstream (default: stack.yaml's).")
@click.option("--refetch", is_flag=True,
              help="Fetch the pinned release again even if its commit is still here.")
def rebuild(name: str | None, refetch: bool) -> int:
    """Recreate the branch vendor/NAME from stackctl.lock (a fresh clone lacks it): point it
    at the pinned import again, or fetch the pinned release and its remote bases and check
    them against the lock (a moved tag or a changed file is refused).

    \b
    Example:
      stackctl vendor rebuild --refetch
    """
    from gitops.vendor import rebuild_vendor_branch

    stack = _stack(name)
    commit = rebuild_vendor_branch(stack, refetch=refetch, progress=_progress)
    click.echo(f"{stack.vendor_branch} at {commit[:12]}")
    return int(ExitCode.OK)


COMMANDS = [vendor]
