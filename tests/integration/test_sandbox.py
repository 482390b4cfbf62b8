"""The sandbox control plane does what the integration tier relies on: Deployments roll out
through kwok, CRDs work, namespaces get deleted, PVCs bind, the failure stage fails, the
delayed-ready stage delays."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from kubernetes import client as k
from kubernetes.client.exceptions import ApiException

from gitops.cli import main
from gitops.sandbox import FAIL_LABEL, READY_AFTER_LABEL, processes
from gitops.sandbox.state import Layout, State

pytestmark = pytest.mark.integration
T = TypeVar("T")


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 60) -> T:
    """Poll until probe() returns something; fail naming what never happened."""
    end = time.monotonic() + timeout
    while True:
        value = probe()
        if value is not None:
            return value
        if time.monotonic() > end:
            pytest.fail(f"gave up after {timeout:.0f} s waiting for {what}")
        time.sleep(0.25)


def deployment(name: str, *, replicas: int, pod_labels: dict[str, str] | None = None
               ) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": {**labels, **(pod_labels or {})}},
                              "spec": {"containers": [{"name": "main",
                                                       "image": "registry.local/app:1"}]}}},
    }


def test_a_deployment_with_three_replicas_becomes_available_through_kwok(
        kube_client: Any, namespace: str) -> None:
    apps = k.AppsV1Api(kube_client)
    apps.create_namespaced_deployment(namespace, deployment("web", replicas=3))

    def available() -> int | None:
        st = apps.read_namespaced_deployment_status("web", namespace).status
        return st.available_replicas if (st.available_replicas or 0) == 3 else None

    assert wait_for("3 available replicas", available) == 3
    pods = k.CoreV1Api(kube_client).list_namespaced_pod(namespace, label_selector="app=web")
    assert len(pods.items) == 3
    assert all(p.spec.node_name and p.spec.node_name.startswith("kwok-node-")
               for p in pods.items)


def test_a_crd_becomes_established_and_its_custom_resource_can_be_created_and_read(
        kube_client: Any, namespace: str) -> None:
    group = f"{namespace}.example.dev"  # unique per test run: CRDs are cluster-scoped
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {"group": group, "scope": "Namespaced",
                 "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                 "versions": [{"name": "v1", "served": True, "storage": True, "schema": {
                     "openAPIV3Schema": {"type": "object", "properties": {"spec": {
                         "type": "object",
                         "properties": {"size": {"type": "integer"}}}}}}}]},
    }
    ext = k.ApiextensionsV1Api(kube_client)
    ext.create_custom_resource_definition(crd)
    try:
        def established() -> bool | None:
            conds = ext.read_custom_resource_definition(f"widgets.{group}").status.conditions
            return True if any(c.type == "Established" and c.status == "True"
                               for c in conds or []) else None

        wait_for("the CRD to be Established", established)
        custom = k.CustomObjectsApi(kube_client)
        body = {"apiVersion": f"{group}/v1", "kind": "Widget",
                "metadata": {"name": "w1"}, "spec": {"size": 3}}
        # Discovery of a new CRD can lag Established by a moment on the first request.
        wait_for("the Widget to be created", lambda: _create_or_none(
            lambda: custom.create_namespaced_custom_object(group, "v1", namespace,
                                                           "widgets", body)), timeout=30)
        got = custom.get_namespaced_custom_object(group, "v1", namespace, "widgets", "w1")
        assert got["spec"] == {"size": 3}
        assert got["metadata"]["uid"]
    finally:
        ext.delete_custom_resource_definition(f"widgets.{group}")


def _create_or_none(create: Callable[[], Any]) -> Any:
    try:
        return create()
    except ApiException as e:
        if e.status == 404:
            return None
        raise


def test_deleting_a_namespace_with_workloads_completes(kube_client: Any) -> None:
    core, apps = k.CoreV1Api(kube_client), k.AppsV1Api(kube_client)
    name = f"doomed-{os.getpid()}-{int(time.time())}"
    core.create_namespace({"metadata": {"name": name}})
    apps.create_namespaced_deployment(name, deployment("web", replicas=2))
    core.create_namespaced_config_map(name, {"metadata": {"name": "c"}, "data": {"k": "v"}})
    wait_for("the pods to exist", lambda: core.list_namespaced_pod(name).items or None)
    core.delete_namespace(name)

    def gone() -> bool | None:
        try:
            core.read_namespace(name)
        except ApiException as e:
            if e.status == 404:
                return True
            raise
        return None

    # The namespace controller (in kube-controller-manager) empties it and drops the
    # finalizer; without it the namespace would stay Terminating forever.
    wait_for("the namespace to be deleted", gone, timeout=120)


def test_the_failure_stage_keeps_a_deployment_unavailable(
        kube_client: Any, namespace: str) -> None:
    apps, core = k.AppsV1Api(kube_client), k.CoreV1Api(kube_client)
    apps.create_namespaced_deployment(
        namespace, deployment("broken", replicas=2, pod_labels={FAIL_LABEL: "true"}))
    apps.create_namespaced_deployment(namespace, deployment("fine", replicas=1))

    def crashing_pods() -> list[Any] | None:
        pods = core.list_namespaced_pod(namespace, label_selector="app=broken").items
        done = [p for p in pods if p.status.phase == "Running" and p.status.container_statuses]
        return done if len(done) == 2 else None

    # kwok has processed both pods (the failure stage set their status) ...
    pods = wait_for("kwok to run the failing pods", crashing_pods)
    for pod in pods:
        (status,) = pod.status.container_statuses
        assert status.ready is False
        assert status.state.waiting.reason == "CrashLoopBackOff"
        assert status.restart_count > 0
        ready = {c.type: c.status for c in pod.status.conditions}
        assert ready["Ready"] == "False"
    # ... while a pod without the label, handled in the same kwok pass, went ready.
    wait_for("the unlabelled Deployment to be available", lambda: (
        apps.read_namespaced_deployment_status("fine", namespace).status.available_replicas
        or None))
    st = apps.read_namespaced_deployment_status("broken", namespace).status
    assert not st.available_replicas
    assert st.unavailable_replicas == 2
    # Pods of the failure stage stay this way: kwok matches them to no other stage.
    time.sleep(2)
    assert not apps.read_namespaced_deployment_status(
        "broken", namespace).status.available_replicas


def test_a_pod_labelled_ready_after_becomes_ready_only_after_that_delay(
        kube_client: Any, namespace: str) -> None:
    apps, core = k.AppsV1Api(kube_client), k.CoreV1Api(kube_client)
    apps.create_namespaced_deployment(
        namespace, deployment("later", replicas=1, pod_labels={READY_AFTER_LABEL: "1h"}))
    apps.create_namespaced_deployment(
        namespace, deployment("soon", replicas=1, pod_labels={READY_AFTER_LABEL: "1s"}))
    apps.create_namespaced_deployment(namespace, deployment("now", replicas=1))

    def available(name: str) -> Callable[[], int | None]:
        return lambda: (apps.read_namespaced_deployment_status(name, namespace)
                        .status.available_replicas or None)

    # A short delay passes, and so does no delay; an hour's does not (its pod was scheduled
    # in the same kwok pass as the others, and is still waiting).
    wait_for("the Deployment without the label to be available", available("now"))
    wait_for("the Deployment whose pods are ready after 1s to be available", available("soon"))
    (pod,) = core.list_namespaced_pod(namespace, label_selector="app=later").items
    assert pod.spec.node_name  # scheduled
    ready = {c.type: c.status for c in pod.status.conditions or []}
    assert ready.get("Ready") != "True"
    assert not apps.read_namespaced_deployment_status("later", namespace).status \
        .available_replicas


def test_a_statefulset_gets_its_claim_bound_and_its_pod_ready(
        kube_client: Any, namespace: str) -> None:
    apps, core = k.AppsV1Api(kube_client), k.CoreV1Api(kube_client)
    sts = {
        "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db"},
        "spec": {
            "serviceName": "db", "replicas": 1, "selector": {"matchLabels": {"app": "db"}},
            "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [{
                "name": "db", "image": "registry.local/db:1",
                "volumeMounts": [{"name": "data", "mountPath": "/var/lib/db"}]}]}},
            "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {
                "accessModes": ["ReadWriteOnce"], "storageClassName": "microk8s-hostpath",
                "resources": {"requests": {"storage": "10Gi"}}}}],
        },
    }
    apps.create_namespaced_stateful_set(namespace, sts)
    claim = wait_for("the claim to be Bound", lambda: next(
        (c for c in core.list_namespaced_persistent_volume_claim(namespace).items
         if c.status.phase == "Bound"), None))
    assert claim.metadata.name == "data-db-0"
    pv = core.read_persistent_volume(claim.spec.volume_name)
    assert pv.spec.storage_class_name == "microk8s-hostpath"
    wait_for("the StatefulSet's pod to be ready", lambda: (
        apps.read_namespaced_stateful_set_status("db", namespace).status.ready_replicas
        or None))


def test_a_claim_without_a_class_gets_the_default_standard_class(
        kube_client: Any, namespace: str) -> None:
    core = k.CoreV1Api(kube_client)
    core.create_namespaced_persistent_volume_claim(namespace, {
        "metadata": {"name": "plain"},
        "spec": {"accessModes": ["ReadWriteOnce"],
                 "resources": {"requests": {"storage": "1Gi"}}}})
    claim = wait_for("the claim to be Bound", lambda: next(
        (c for c in core.list_namespaced_persistent_volume_claim(namespace).items
         if c.status.phase == "Bound"), None))
    assert claim.spec.storage_class_name == "standard"


@pytest.mark.slow
def test_cli_lifecycle_status_reports_versions_and_down_leaves_no_process(
        sandbox: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Its own sandbox (the session's keeps running); sandbox= makes it run with that tier.
    state_dir = tmp_path / "sb"
    args = ["--state-dir", str(state_dir), "--name", "lifecycle"]
    assert main(["sandbox", "up", *args]) == 0
    out = capsys.readouterr().out
    assert f"export KUBECONFIG={state_dir / 'kubeconfig'}" in out
    state = State.load(Layout(state_dir))
    assert state is not None
    pids = [(p.pid, p.start_time) for p in state.procs]
    assert len(pids) == 6  # the five components and the webhook component

    assert main(["sandbox", "up", *args]) == 2  # a live sandbox is reported, not replaced
    assert "already running" in capsys.readouterr().err

    assert main(["sandbox", "status", *args]) == 0
    out = capsys.readouterr().out
    for line in ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler",
                 "kwok"):
        assert line in out
    assert out.count("v1.34.4") == 3 and "v3.6.4" in out and "v0.8.0" in out
    assert out.count("running") >= 5

    assert main(["sandbox", "env", *args]) == 0
    assert f"export KUBECONFIG={state_dir / 'kubeconfig'}" in capsys.readouterr().out

    assert main(["sandbox", "down", *args]) == 0
    assert "stopped kube-apiserver" in capsys.readouterr().out
    for pid, start_time in pids:  # gone, and reaped (not even a zombie is left)
        assert not processes.alive(pid, start_time)
        assert not _is_zombie(pid)
    assert main(["sandbox", "status", *args]) == 1


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] == "Z"


@pytest.mark.slow
def test_up_after_a_killed_run_cleans_the_stale_state_and_starts_fresh(
        sandbox: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from gitops import sandbox as sb

    state_dir = tmp_path / "sb"
    first = sb.up(state_dir, name="stale")
    for pid in first.pids.values():  # as if the machine or the test run had been killed
        os.kill(pid, signal.SIGKILL)
    def all_dead() -> Any:
        s = sb.status(state_dir)
        return None if any(c.alive for c in s.components) else s

    st = wait_for("the processes to die", all_dead)
    assert st.recorded and not st.running
    assert main(["sandbox", "status", "--state-dir", str(state_dir)]) == 1
    assert "is not running; the end of" in capsys.readouterr().out

    messages: list[str] = []
    second = sb.up(state_dir, name="stale", progress=messages.append)
    try:
        assert any("stale state dir" in m for m in messages)
        assert set(second.pids.values()).isdisjoint(first.pids.values())
        assert sb.status(state_dir).running
    finally:
        sb.down(state_dir)
    assert not sb.status(state_dir).recorded
