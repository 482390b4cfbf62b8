"""The API server stopped in the middle of an apply: a clear error, and a rerun converges.

This test stops and restarts the kube-apiserver process, so it starts a sandbox of its own
(gitops.sandbox, as the session fixture does) rather than disturbing the session's one.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gitops.apply import ProgressEvent
from gitops.cluster import ApplyPolicy
from gitops.kube import Kube, UnreachableError
from gitops.sandbox import SandboxInfo, processes
from gitops.sandbox import down as sandbox_down
from gitops.sandbox import up as sandbox_up
from gitops.sandbox.state import Layout, State
from tests.integration.apply_helpers import apply, configmap, deployment, revisions

pytestmark = pytest.mark.integration


@pytest.fixture
def own_sandbox(tmp_path: Path) -> Iterator[SandboxInfo]:
    if os.environ.get("STACKCTL_SKIP_INTEGRATION") == "1":
        pytest.skip("STACKCTL_SKIP_INTEGRATION=1: the integration tier is switched off")
    if os.environ.get("STACKCTL_TEST_KUBECONFIG"):
        pytest.skip("stops an API server: needs a sandbox of its own, not "
                    "$STACKCTL_TEST_KUBECONFIG's cluster")
    state_dir = tmp_path / "sandbox"
    info = sandbox_up(state_dir, name="outage", die_with_caller=True)
    try:
        yield info
    finally:
        sandbox_down(state_dir)


def stop_apiserver(state_dir: Path) -> processes.Proc:
    state = State.load(Layout(state_dir))
    assert state is not None
    [proc] = [p for p in state.procs if p.name == "kube-apiserver"]
    assert processes.stop(proc)
    return proc


def restart_apiserver(state_dir: Path, old: processes.Proc) -> None:
    """The same command line again (same port, certificates and etcd data); recorded in the
    state file so that the fixture's `down` stops it."""
    layout = Layout(state_dir)
    new = processes.start(old.name, list(old.argv), old.log, die_with_parent=True)
    state = State.load(layout)
    assert state is not None
    state.procs = [new if p.name == old.name else p for p in state.procs]
    state.save(layout)


def wait_reachable(kube: Kube, seconds: float = 90) -> None:
    end = time.monotonic() + seconds
    while True:
        try:
            kube.request("GET", "/api/v1/namespaces/default")
            return
        except UnreachableError:
            if time.monotonic() > end:
                raise
            time.sleep(0.5)


def test_the_api_server_stopped_mid_apply_gives_a_clear_error_and_a_rerun_converges(
    own_sandbox: SandboxInfo,
) -> None:
    from gitops.kube import api_client

    api = api_client(own_sandbox.kubeconfig)
    kube = Kube(api)
    ns = "outage"
    kube.request("POST", "/api/v1/namespaces", body={
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    objects = [configmap("cfg", ns), deployment("web", ns, replicas=1),
               {"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": "web", "namespace": ns},
                "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}}]
    policy = ApplyPolicy(timeout=60)
    stopped: list[processes.Proc] = []

    def stop_before_workloads(event: ProgressEvent) -> None:
        if event.stage == "phase" and event.phase == "workloads, services and the rest":
            stopped.append(stop_apiserver(own_sandbox.state_dir))

    with pytest.raises(UnreachableError) as info:
        apply(api, ns, objects, cluster="outage", policy=policy,
              progress=stop_before_workloads)
    assert stopped, "the apply never reached the workloads phase"
    message = str(info.value)
    assert f"cannot reach the Kubernetes API server at {own_sandbox.server}" in message
    assert "run the command again: a rerun converges" in message

    restart_apiserver(own_sandbox.state_dir, stopped[0])
    wait_reachable(kube)
    assert kube.get("v1", "ConfigMap", ns, "cfg") is not None  # applied before the stop
    assert kube.get("apps/v1", "Deployment", ns, "web") is None
    [pending] = revisions(api, ns, "outage")
    assert (pending.revision, pending.status) == (1, "pending")

    # The rerun's render no longer holds the ConfigMap: what the interrupted revision
    # created is pruned (it was recorded, pending, before anything was applied).
    rerun = apply(api, ns, objects[1:], cluster="outage", policy=policy)
    assert rerun.ok, (rerun.rejections, rerun.failure)
    assert rerun.abandoned == (1,)
    assert {o.id.name: o.outcome for o in rerun.objects if o.id.kind != "Service"} == {
        "web": "created"}
    assert [(o.id.name, o.outcome) for o in rerun.prune] == [("cfg", "deleted")]
    assert kube.get("v1", "ConfigMap", ns, "cfg") is None
    assert kube.get("apps/v1", "Deployment", ns, "web") is not None
    assert kube.get("v1", "Service", ns, "web") is not None
    assert [(r.revision, r.status) for r in revisions(api, ns, "outage")] == [
        (1, "failed"), (2, "deployed")]
