"""up, down, status and env of the local control plane."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from gitops.errors import SandboxError
from gitops.sandbox import bootstrap, certs, components, kubeconfig, processes
from gitops.sandbox.binaries import COMPONENTS, find_binaries, version_of
from gitops.sandbox.stages import STAGES_YAML
from gitops.sandbox.state import Layout, State, default_state_dir

Progress = Callable[[str], None]

DEFAULT_TIMEOUT = 180.0  # start-up of all five on a busy 2-core machine takes ~15-40 s


@dataclass(frozen=True)
class SandboxInfo:
    """A sandbox that `up` started and found ready."""

    name: str
    state_dir: Path
    kubeconfig: Path
    server: str
    pids: dict[str, int]
    seconds: float


@dataclass(frozen=True)
class ComponentStatus:
    name: str
    version: str
    pid: int | None
    alive: bool
    log: Path
    log_tail: str  # set when the component is not running


@dataclass(frozen=True)
class SandboxStatus:
    name: str
    state_dir: Path
    kubeconfig: Path
    server: str
    ready: bool
    recorded: bool  # False: no sandbox was started from this state dir
    components: tuple[ComponentStatus, ...]

    @property
    def running(self) -> bool:
        return self.recorded and all(c.alive for c in self.components)


@dataclass(frozen=True)
class DownResult:
    state_dir: Path
    stopped: tuple[tuple[str, int], ...]  # (component, pid) that were running
    already_dead: tuple[tuple[str, int], ...]
    recorded: bool


def _resolve(state_dir: Path | None, name: str) -> Layout:
    return Layout((state_dir or default_state_dir(name)).expanduser().absolute())


def _noop(_: str) -> None:
    return None


# What a fresh `up` removes from a state dir (never anything else, in case --state-dir
# names a folder that holds other files).
_OURS = ("state.json", "state.tmp", "kubeconfig", "pki", "etcd-data", "logs",
         "kwok-stages.yaml", "volumes", "egress.sock", "egress-selector.yaml", "webhooks")


def _clean(layout: Layout) -> None:
    for entry in _OURS:
        path = layout.root / entry
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def _died_message(proc: processes.Proc) -> SandboxError:
    tail = processes.tail(proc.log)
    hint = f"The whole log is {proc.log}."
    if re.search(r"address already in use|bind: address", tail):
        hint = ("Another process took one of its ports; run 'stackctl sandbox up' again "
                "(it picks new free ports). " + hint)
    return SandboxError(
        f"{proc.name} (pid {proc.pid}) exited during start-up. The end of its log:\n\n"
        + "\n".join(f"    {line}" for line in tail.splitlines()) + "\n\n"
        + "Everything the sandbox had started was stopped.", hint=hint)


def _refuse_if_running(layout: Layout, progress: Progress) -> None:
    old = State.load(layout)
    if old is None:
        return
    live = [p for p in old.procs if processes.alive(p.pid, p.start_time)]
    if live:
        pids = ", ".join(f"{p.name} {p.pid}" for p in live)
        dead = [p.name for p in old.procs if p not in live]
        if dead:
            raise SandboxError(
                f"a sandbox from {layout.root} is partly running (pids: {pids}); "
                f"{', '.join(dead)} died ('stackctl sandbox status' shows their logs).",
                hint=f"Stop the rest with 'stackctl sandbox down --state-dir {layout.root}' "
                     "and run 'stackctl sandbox up' again.")
        raise SandboxError(
            f"a sandbox is already running from {layout.root} (pids: {pids}).",
            hint=f"Use it (export KUBECONFIG={old.kubeconfig}), or stop it first with "
                 f"'stackctl sandbox down --state-dir {layout.root}'.")
    for p in old.procs:
        processes.stop(p)  # reaps our own dead children (zombies) when `up` ran in-process
    progress(f"found a stale state dir from a run that was killed ({len(old.procs)} "
             "processes, none running); cleaning it up")


def up(state_dir: Path | None = None, *, name: str = "default",
       storage_classes: tuple[str, ...] = (), api_port: int | None = None,
       timeout: float = DEFAULT_TIMEOUT, bin_dir: Path | None = None,
       progress: Progress | None = None, die_with_caller: bool = False) -> SandboxInfo:
    """Start etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok on
    loopback, create fake nodes, storage classes and a volume pool, and wait until a smoke
    Deployment is Available. On any failure everything started is stopped again.

    With `die_with_caller` the processes get SIGTERM when the calling process dies (Linux),
    so a test session killed by a timeout leaves nothing running."""
    say = progress or _noop
    began = time.monotonic()
    bins = find_binaries(bin_dir)
    layout = _resolve(state_dir, name)
    layout.root.mkdir(parents=True, exist_ok=True)
    _refuse_if_running(layout, say)
    _clean(layout)
    for d in (layout.logs, layout.etcd_data, layout.volumes):
        d.mkdir(parents=True)
    layout.etcd_data.chmod(0o700)  # etcd 3.6 refuses a data dir others can read

    if api_port is not None:
        processes.check_port_free(api_port, "kube-apiserver (--api-port)")
    ports = components.Ports(etcd_client=processes.free_port(),
                             etcd_peer=processes.free_port(),
                             apiserver=api_port or processes.free_port(),
                             controller_manager=processes.free_port(),
                             scheduler=processes.free_port())
    classes = [bootstrap.DEFAULT_STORAGE_CLASS,
               *[c for c in dict.fromkeys(storage_classes)
                 if c != bootstrap.DEFAULT_STORAGE_CLASS]]
    say("generating the CA, serving and admin certificates and the service-account keys")
    pki = certs.generate(layout.pki)
    server = f"https://127.0.0.1:{ports.apiserver}"
    kubeconfig.write(layout.kubeconfig, server=server, pki=pki, name=name)
    layout.stages.write_text(STAGES_YAML, encoding="utf-8")
    state = State(name=name, server=server, kubeconfig=str(layout.kubeconfig),
                  bin_dir=str(bins["etcd"].parent), ports=ports.named(),
                  storage_classes=classes)
    state.save(layout)

    def check() -> None:
        for p in state.procs:
            if not processes.alive(p.pid, p.start_time):
                raise _died_message(p)

    def launch(component: str, argv: list[str]) -> None:
        for what, port in ports.named().items():
            if what.startswith(component):
                processes.check_port_free(port, what)
        say(f"starting {component}")
        state.procs.append(processes.start(component, argv, layout.log(component),
                                           env=components.environment(os.environ),
                                           die_with_parent=die_with_caller))
        state.save(layout)

    deadline = bootstrap.Deadline(timeout, check)
    try:
        launch("etcd", components.etcd(bins["etcd"], data_dir=layout.etcd_data, ports=ports))
        deadline.poll("etcd /health", lambda: bootstrap.http_ok(
            f"http://127.0.0.1:{ports.etcd_client}/health"))
        egress = _start_webhooks(layout.root, launch, deadline)
        launch("kube-apiserver", components.apiserver(bins["kube-apiserver"], pki=pki,
                                                      ports=ports, egress_config=egress))
        deadline.poll("kube-apiserver /readyz", lambda: bootstrap.http_ok(
            f"{server}/readyz", pki), interval=0.25)
        from gitops.kube import api_client

        client = api_client(layout.kubeconfig)
        deadline.poll("the default namespace", lambda: bootstrap.default_namespace(client))
        launch("kube-controller-manager", components.controller_manager(
            bins["kube-controller-manager"], kubeconfig=layout.kubeconfig, pki=pki,
            ports=ports))
        launch("kube-scheduler", components.scheduler(
            bins["kube-scheduler"], kubeconfig=layout.kubeconfig, ports=ports))
        launch("kwok", components.kwok(bins["kwok"], kubeconfig=layout.kubeconfig,
                                       stages=layout.stages))
        say(f"creating {bootstrap.NODE_COUNT} fake nodes, storage classes "
            f"{', '.join(classes)} and {bootstrap.VOLUMES_PER_CLASS} volumes for each")
        bootstrap.create_objects(client, storage_classes=classes,
                                 volumes_dir=layout.volumes)
        deadline.poll("kube-controller-manager /healthz", lambda: bootstrap.http_ok(
            f"https://127.0.0.1:{ports.controller_manager}/healthz", insecure=True),
            interval=0.25)
        deadline.poll("kube-scheduler /healthz", lambda: bootstrap.http_ok(
            f"https://127.0.0.1:{ports.scheduler}/healthz", insecure=True), interval=0.25)
        deadline.poll("the default ServiceAccount (made by the controller manager)",
                      lambda: bootstrap.default_service_account(client), interval=0.25)
        deadline.poll("the kwok nodes to be Ready", lambda: bootstrap.nodes_ready(client),
                      interval=0.25)
        say("waiting for a smoke Deployment with 3 replicas to become Available")
        bootstrap.start_smoke(client)
        deadline.poll("the smoke Deployment to have 3 available replicas",
                      lambda: bootstrap.smoke_available(client), interval=0.25)
        bootstrap.delete_smoke(client)
        client.close()
    except BaseException:
        for p in reversed(state.procs):
            processes.stop(p)
        with contextlib.suppress(OSError):
            layout.state_file.unlink()
        raise
    state.ready = True
    state.save(layout)
    return SandboxInfo(name=name, state_dir=layout.root, kubeconfig=layout.kubeconfig,
                       server=server, pids={p.name: p.pid for p in state.procs},
                       seconds=time.monotonic() - began)


def _start_webhooks(root: Path, launch: Callable[[str, list[str]], None],
                    deadline: bootstrap.Deadline) -> Path:
    """Start the webhook component (gitops/sandbox/webhooks.py) and wait for its egress
    socket; the API server's egress selector configuration, which names that socket."""
    from gitops.sandbox import webhooks

    config = webhooks.write_egress_config(root)
    launch("webhooks", webhooks.command(root))
    deadline.poll("the webhook component's egress socket",
                  lambda: True if webhooks.socket_path(root).exists() else None,
                  interval=0.1)
    return config


def down(state_dir: Path | None = None, *, name: str = "default") -> DownResult:
    """Stop every process the state file records, by pid (SIGTERM, then SIGKILL)."""
    layout = _resolve(state_dir, name)
    state = State.load(layout)
    if state is None:
        return DownResult(layout.root, (), (), recorded=False)
    stopped: list[tuple[str, int]] = []
    dead: list[tuple[str, int]] = []
    for p in reversed(state.procs):
        (stopped if processes.stop(p) else dead).append((p.name, p.pid))
    layout.state_file.unlink()
    return DownResult(layout.root, tuple(stopped), tuple(dead), recorded=True)


def status(state_dir: Path | None = None, *, name: str = "default",
           bin_dir: Path | None = None) -> SandboxStatus:
    """Versions, pids and liveness of the components; the log tail of any that died."""
    layout = _resolve(state_dir, name)
    state = State.load(layout)
    recorded = state is not None
    if state is not None:
        bins = {c: Path(state.bin_dir) / c for c in COMPONENTS}
    else:
        try:
            bins = find_binaries(bin_dir)
        except SandboxError:
            bins = {}
    with ThreadPoolExecutor(max_workers=len(COMPONENTS)) as pool:
        versions = dict(zip(bins, pool.map(version_of, bins.values()), strict=True))
    procs = {p.name: p for p in (state.procs if state else [])}
    rows = []
    for c in COMPONENTS:
        p = procs.get(c)
        is_alive = p is not None and processes.alive(p.pid, p.start_time)
        log = layout.log(c)
        rows.append(ComponentStatus(
            name=c, version=versions.get(c, "missing"), pid=p.pid if p else None,
            alive=is_alive,
            log=log, log_tail="" if is_alive or not recorded else processes.tail(log)))
    return SandboxStatus(
        name=state.name if state else name, state_dir=layout.root,
        kubeconfig=layout.kubeconfig, server=state.server if state else "",
        ready=bool(state and state.ready), recorded=recorded, components=tuple(rows))


def env(state_dir: Path | None = None, *, name: str = "default") -> dict[str, str]:
    """The environment variables that point tools at a running sandbox."""
    layout = _resolve(state_dir, name)
    state = State.load(layout)
    if state is None:
        raise SandboxError(
            f"no sandbox was started from {layout.root}.",
            hint="Start one with 'stackctl sandbox up' (same --name/--state-dir).")
    return {"KUBECONFIG": state.kubeconfig, "STACKCTL_SANDBOX_STATE": str(layout.root)}
