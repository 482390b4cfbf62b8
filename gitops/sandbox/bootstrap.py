"""Readiness checks of a starting sandbox, and the objects `up` creates in it: fake nodes,
storage classes, a pool of pre-provisioned PersistentVolumes, and the smoke Deployment."""

from __future__ import annotations

import json
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from gitops.errors import ClusterError, SandboxError
from gitops.kube.poll import Backoff, poll
from gitops.sandbox.certs import Pki

T = TypeVar("T")

NODE_COUNT = 2
# Per node: room for a few hundred pods in all (Kubeflow's example is ~100 pods) and requests
# far above what the example stacks ask for.
NODE_CAPACITY = {"cpu": "64", "memory": "256Gi", "pods": "250", "ephemeral-storage": "1Ti"}
DEFAULT_STORAGE_CLASS = "standard"
VOLUMES_PER_CLASS = 24
VOLUME_SIZE = "1Ti"  # the PV binder picks the smallest PV at least as big as the claim
SMOKE_NAMESPACE = "default"
SMOKE_NAME = "stackctl-sandbox-smoke"
POOL_LABEL = "sandbox.stackctl.dev/pool"


class Deadline:
    """One time budget for the whole start-up; every wait checks the processes too."""

    def __init__(self, seconds: float, check: Callable[[], None]) -> None:
        self.end = time.monotonic() + seconds
        self.seconds = seconds
        self.check = check

    def poll(self, what: str, probe: Callable[[], T | None], *, interval: float = 0.1,
             hint: str = "") -> T:
        """Call `probe` every `interval` seconds until it returns something other than None
        (gitops.kube.poll); the processes are checked before each call."""
        last = ""

        def attempt() -> T | None:
            nonlocal last
            self.check()
            try:
                return probe()
            except (ClusterError, OSError, urllib.error.URLError) as e:
                last = str(e)
                return None

        value = poll(attempt, deadline=self.end, backoff=Backoff(interval, 1.0, interval))
        if value is None:
            detail = f" (last answer: {last})" if last else ""
            raise SandboxError(
                f"the sandbox did not get ready within {self.seconds:.0f} s: still "
                f"waiting for {what}{detail}.",
                hint=hint or "Look at the component logs ('stackctl sandbox status' "
                             "shows where), or give it more time with --timeout.")
        return value


def _https_context(pki: Pki | None) -> ssl.SSLContext:
    if pki is None:  # the components' own self-signed health endpoints
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    ctx = ssl.create_default_context(cafile=str(pki.ca_cert))
    ctx.load_cert_chain(str(pki.admin_cert), str(pki.admin_key))
    return ctx


def http_ok(url: str, pki: Pki | None = None, *, insecure: bool = False) -> bool | None:
    """True when GET url answers 200 (None otherwise, for Deadline.poll)."""
    ctx = _https_context(None if insecure else pki) if url.startswith("https") else None
    # Straight to loopback: urlopen would send it to the machine's HTTPS_PROXY (docs/
    # sandbox.md, "Proxy variables").
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}),
                                         urllib.request.HTTPSHandler(context=ctx))
    try:
        with opener.open(url, timeout=3) as resp:
            body = resp.read()
            if resp.status != 200:
                return None
    except (urllib.error.URLError, OSError):
        return None
    if url.endswith("/health"):  # etcd answers 200 with {"health":"false"} while electing
        return True if json.loads(body or b"{}").get("health") == "true" else None
    return True


def _api(client: Any) -> tuple[Any, Any, Any]:
    from kubernetes import client as k

    return k.CoreV1Api(client), k.AppsV1Api(client), k.StorageV1Api(client)


def _call(action: str, fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
    """Call the client; None for 404, ClusterError for the rest (409 on create is fine)."""
    from gitops.kube import KubeApiError, translating

    try:
        with translating(action):
            return fn(*args, _request_timeout=10, **kw)
    except KubeApiError as e:
        if e.code == 404 or (e.code == 409 and action.startswith("create")):
            return None
        raise


def node_body(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {
            "name": name,
            # kwok manages nodes with this annotation (--manage-nodes-with-annotation-selector)
            "annotations": {"kwok.x-k8s.io/node": "fake",
                            "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {"type": "kwok", "kubernetes.io/hostname": name,
                       "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
                       "node-role.kubernetes.io/agent": ""},
        },
        # No taints: the example stack's pods carry no tolerations.
        "spec": {},
        "status": {"allocatable": dict(NODE_CAPACITY), "capacity": dict(NODE_CAPACITY),
                   "phase": "Running"},
    }


def storage_class_body(name: str, *, default: bool) -> dict[str, Any]:
    annotations = {"storageclass.kubernetes.io/is-default-class": "true"} if default else {}
    return {
        "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
        "metadata": {"name": name, "annotations": annotations,
                     "labels": {POOL_LABEL: "true"}},
        # No provisioner: claims bind to the pre-provisioned pool by the controller manager's
        # PV binder. Immediate binding, as there is no kubelet to wait for.
        "provisioner": "kubernetes.io/no-provisioner",
        "volumeBindingMode": "Immediate",
        "reclaimPolicy": "Retain",
    }


def volume_body(storage_class: str, index: int, volumes_dir: Path) -> dict[str, Any]:
    name = f"sandbox-{storage_class}-{index:03d}"
    return {
        "apiVersion": "v1", "kind": "PersistentVolume",
        "metadata": {"name": name, "labels": {POOL_LABEL: storage_class}},
        "spec": {
            "capacity": {"storage": VOLUME_SIZE},
            "accessModes": ["ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany"],
            "storageClassName": storage_class,
            # Retain: a released volume keeps its data-less claimRef; the pool is big enough
            # for a test session (a Delete policy would need a deleter plugin).
            "persistentVolumeReclaimPolicy": "Retain",
            # Never mounted (kwok runs no containers); a source is required by validation.
            "hostPath": {"path": str(volumes_dir / name), "type": "DirectoryOrCreate"},
        },
    }


def smoke_deployment() -> dict[str, Any]:
    labels = {"app": SMOKE_NAME}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": SMOKE_NAME, "namespace": SMOKE_NAMESPACE},
        "spec": {"replicas": 3, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels}, "spec": {
                     "containers": [{"name": "smoke", "image": "registry.local/smoke:1"}]}}},
    }


def create_objects(client: Any, *, storage_classes: list[str], volumes_dir: Path) -> None:
    """Nodes, storage classes (the first is the default) and the volume pool; idempotent."""
    core, _apps, storage = _api(client)
    for i in range(NODE_COUNT):
        _call("create Node", core.create_node, node_body(f"kwok-node-{i}"))
    for n, sc in enumerate(storage_classes):
        _call(f"create StorageClass {sc}", storage.create_storage_class,
              storage_class_body(sc, default=n == 0))
        for i in range(VOLUMES_PER_CLASS):
            _call(f"create PersistentVolume for {sc}", core.create_persistent_volume,
                  volume_body(sc, i, volumes_dir))


def default_service_account(client: Any) -> bool | None:
    core, _a, _s = _api(client)
    return True if _call("read ServiceAccount default/default",
                         core.read_namespaced_service_account, "default", "default") else None


def default_namespace(client: Any) -> bool | None:
    core, _a, _s = _api(client)
    return True if _call("read Namespace default", core.read_namespace, "default") else None


def nodes_ready(client: Any) -> bool | None:
    core, _a, _s = _api(client)
    nodes = _call("list Nodes", core.list_node, label_selector="type=kwok")
    items = nodes.items if nodes is not None else []
    if len(items) < NODE_COUNT:
        return None
    for node in items:
        conds = {c.type: c.status for c in (node.status.conditions or [])}
        if conds.get("Ready") != "True":
            return None
    return True


def start_smoke(client: Any) -> None:
    _core, apps, _s = _api(client)
    _call(f"delete Deployment {SMOKE_NAME}", apps.delete_namespaced_deployment,
          SMOKE_NAME, SMOKE_NAMESPACE)
    _call(f"create Deployment {SMOKE_NAME}", apps.create_namespaced_deployment,
          SMOKE_NAMESPACE, smoke_deployment())


def smoke_available(client: Any) -> bool | None:
    _core, apps, _s = _api(client)
    dep = _call(f"read Deployment {SMOKE_NAME}", apps.read_namespaced_deployment_status,
                SMOKE_NAME, SMOKE_NAMESPACE)
    if dep is None or dep.status is None:
        return None
    return True if (dep.status.available_replicas or 0) >= 3 else None


def delete_smoke(client: Any) -> None:
    _core, apps, _s = _api(client)
    _call(f"delete Deployment {SMOKE_NAME}", apps.delete_namespaced_deployment,
          SMOKE_NAME, SMOKE_NAMESPACE, propagation_policy="Background")
