"""`stackctl sandbox up|down|status|env`: the local control plane."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import click

from gitops.errors import ExitCode

_state_dir = click.option(
    "--state-dir", type=click.Path(file_okay=False, path_type=Path), metavar="DIR",
    help="Where the sandbox keeps its certificates, data, logs and kubeconfig "
         "[default: ~/.cache/stackctl/sandbox-state/NAME].")
_name = click.option("--name", default="default", show_default=True, metavar="NAME",
                     help="Name of the sandbox (several can run side by side).")


@click.group("sandbox")
def sandbox() -> None:
    """A local Kubernetes control plane for trying stackctl and for its tests: etcd,
    kube-apiserver, kube-controller-manager, kube-scheduler and kwok (fake nodes that
    run pods) on 127.0.0.1, built by 'make sandbox'.

    \b
    Example:
      make sandbox && stackctl sandbox up
      eval "$(stackctl sandbox env)"
      stackctl sandbox status
      stackctl sandbox down
    """


def _echo(message: str) -> None:
    click.echo(f"  {message}", err=True)


@sandbox.command("up")
@_state_dir
@_name
@click.option("--storage-class", "storage_classes", multiple=True, metavar="NAME",
              help="Also create this StorageClass with a pool of volumes (repeatable); "
                   "'standard' always exists and is the default.")
@click.option("--api-port", type=click.IntRange(1, 65535), metavar="PORT",
              help="Serve the API on this port [default: a free one].")
@click.option("--timeout", type=click.FloatRange(min=1), default=180, show_default=True,
              metavar="SECONDS", help="How long start-up may take in all.")
def up_cmd(state_dir: Path | None, name: str, storage_classes: tuple[str, ...],
           api_port: int | None, timeout: float) -> int:
    """Start the sandbox and wait until it is ready.

    Ready means: etcd and the API server healthy, two kwok nodes Ready, and a smoke
    Deployment with 3 replicas Available. Prints the kubeconfig to use.

    \b
    Example:
      stackctl sandbox up --storage-class microk8s-hostpath --storage-class gp3
    """
    from gitops.sandbox import up

    click.echo("starting the sandbox control plane", err=True)
    info = up(state_dir, name=name, storage_classes=storage_classes, api_port=api_port,
              timeout=timeout, progress=_echo)
    click.echo(f"sandbox {info.name!r} is ready at {info.server} "
               f"(started in {info.seconds:.1f} s; state in {info.state_dir}).")
    click.echo("use it with:")
    click.echo(f"  export KUBECONFIG={shlex.quote(str(info.kubeconfig))}")
    click.echo("stop it with:")
    extra = f" --state-dir {shlex.quote(str(info.state_dir))}" if state_dir else ""
    extra += f" --name {shlex.quote(name)}" if name != "default" else ""
    click.echo(f"  stackctl sandbox down{extra}")
    return int(ExitCode.OK)


@sandbox.command("down")
@_state_dir
@_name
def down_cmd(state_dir: Path | None, name: str) -> int:
    """Stop every process the sandbox started.

    Each is stopped by its own pid (SIGTERM, then SIGKILL after 10 s); the logs stay.

    \b
    Example:
      stackctl sandbox down
    """
    from gitops.sandbox import down

    result = down(state_dir, name=name)
    if not result.recorded:
        click.echo(f"no sandbox is recorded in {result.state_dir}; nothing to stop.")
        return int(ExitCode.OK)
    for component, pid in result.stopped:
        click.echo(f"stopped {component} (pid {pid})")
    for component, pid in result.already_dead:
        click.echo(f"{component} (pid {pid}) was not running")
    click.echo(f"the sandbox is down; its logs stay in {result.state_dir / 'logs'}.")
    return int(ExitCode.OK)


@sandbox.command("status")
@_state_dir
@_name
def status_cmd(state_dir: Path | None, name: str) -> int:
    """Show the components' versions, pids and liveness.

    For a component that died it shows the end of its log. Exit code 0 when all five run,
    1 when some or all do not.

    \b
    Example:
      stackctl sandbox status
    """
    from gitops.sandbox import status

    st = status(state_dir, name=name)
    if not st.recorded:
        click.echo(f"sandbox {st.name!r}: not running (nothing recorded in {st.state_dir}).")
    else:
        state = "running" if st.running else "DEGRADED: some components are not running"
        if st.running and not st.ready:
            state = "starting (or its start-up was interrupted)"
        click.echo(f"sandbox {st.name!r}: {state}")
        click.echo(f"  server      {st.server}")
        click.echo(f"  kubeconfig  {st.kubeconfig}")
        click.echo(f"  state dir   {st.state_dir}")
    click.echo("")
    click.echo(f"  {'COMPONENT':<25} {'VERSION':<10} {'PID':>8}  STATE")
    for c in st.components:
        pid = str(c.pid) if c.pid else "-"
        what = "running" if c.alive else ("exited" if c.pid else "not started")
        click.echo(f"  {c.name:<25} {c.version:<10} {pid:>8}  {what}")
    for c in st.components:
        if c.log_tail:
            click.echo(f"\n{c.name} is not running; the end of {c.log}:")
            for line in c.log_tail.splitlines():
                click.echo(f"    {line}")
    return int(ExitCode.OK if st.running else ExitCode.FINDING)


@sandbox.command("env")
@_state_dir
@_name
@click.option("--shell", type=click.Choice(["sh", "fish"]), default="sh", show_default=True,
              help="Syntax of the exports.")
def env_cmd(state_dir: Path | None, name: str, shell: str) -> int:
    """Print shell exports for the sandbox's kubeconfig.

    \b
    Example:
      eval "$(stackctl sandbox env)"
    """
    from gitops.sandbox import env

    values: dict[str, Any] = env(state_dir, name=name)
    for key, value in values.items():
        if shell == "fish":
            click.echo(f"set -gx {key} {shlex.quote(str(value))};")
        else:
            click.echo(f"export {key}={shlex.quote(str(value))}")
    return int(ExitCode.OK)


COMMANDS = [sandbox]
