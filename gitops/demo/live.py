"""What the demo reads from, and changes on, the sandbox directly with the Kubernetes client:
the checks of each step, and the change made behind stackctl's back."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gitops.kube import api_client, translating


@dataclass(frozen=True)
class Workload:
    """A Deployment or StatefulSet as the demo checks it."""

    kind: str
    name: str
    replicas: int
    ready: int
    images: tuple[str, ...]
    pod_labels: dict[str, str]

    @property
    def healthy(self) -> bool:
        return self.ready == self.replicas


class Live:
    """A client for the sandbox's API server."""

    def __init__(self, kubeconfig: Path, context: str | None = None) -> None:
        from kubernetes import client as k

        self.api = api_client(kubeconfig, context)
        self.core = k.CoreV1Api(self.api)
        self.apps = k.AppsV1Api(self.api)

    def close(self) -> None:
        self.api.close()

    def _call(self, action: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        with translating(action):
            return fn(*args, **kwargs)

    def ready_nodes(self) -> list[str]:
        nodes = self._call("list Nodes", self.core.list_node).items
        return sorted(n.metadata.name for n in nodes
                      if any(c.type == "Ready" and c.status == "True"
                             for c in (n.status.conditions or [])))

    def workloads(self, namespace: str) -> dict[str, Workload]:
        """Deployments and StatefulSets of a namespace by 'Kind/name'."""
        out: dict[str, Workload] = {}
        deployments = self._call(f"list Deployments in {namespace}",
                                 self.apps.list_namespaced_deployment, namespace).items
        sets = self._call(f"list StatefulSets in {namespace}",
                          self.apps.list_namespaced_stateful_set, namespace).items
        for kind, items in (("Deployment", deployments), ("StatefulSet", sets)):
            for o in items:
                spec = o.spec.template.spec
                ready = (o.status.available_replicas if kind == "Deployment"
                         else o.status.ready_replicas) or 0
                out[f"{kind}/{o.metadata.name}"] = Workload(
                    kind=kind, name=o.metadata.name, replicas=o.spec.replicas or 0,
                    ready=ready, images=tuple(c.image for c in spec.containers),
                    pod_labels=dict(o.spec.template.metadata.labels or {}))
        return out

    def claims(self, namespace: str) -> dict[str, str]:
        """PersistentVolumeClaims of a namespace and their phase."""
        items = self._call(f"list PersistentVolumeClaims in {namespace}",
                           self.core.list_namespaced_persistent_volume_claim, namespace).items
        return {c.metadata.name: c.status.phase for c in items}

    def scale_by_hand(self, namespace: str, deployment: str, replicas: int, *,
                      manager: str) -> None:
        """What a colleague's `kubectl scale` does: a merge patch of spec.replicas under
        another field manager."""
        self._call(f"scale Deployment {namespace}/{deployment}",
                   self.apps.patch_namespaced_deployment, deployment, namespace,
                   {"spec": {"replicas": replicas}}, field_manager=manager,
                   _content_type="application/merge-patch+json")

    def replicas(self, namespace: str, deployment: str) -> int:
        d = self._call(f"read Deployment {namespace}/{deployment}",
                       self.apps.read_namespaced_deployment, deployment, namespace)
        return int(d.spec.replicas or 0)

    def container_limits(self, namespace: str, deployment: str, container: str
                         ) -> dict[str, str]:
        d = self._call(f"read Deployment {namespace}/{deployment}",
                       self.apps.read_namespaced_deployment, deployment, namespace)
        found = [c for c in d.spec.template.spec.containers if c.name == container]
        limits = found[0].resources.limits if found and found[0].resources else None
        return dict(limits or {})

    def profile_owner(self, name: str) -> str | None:
        """The owner of a Kubeflow Profile (a custom resource), None when there is none."""
        from gitops.kube import Kube

        with translating(f"read Profile {name}"):
            profile = Kube(self.api).get("kubeflow.org/v1", "Profile", "", name)
        if profile is None:
            return None
        return str(((profile.get("spec") or {}).get("owner") or {}).get("name"))

    def quotas(self, namespace: str) -> list[str]:
        items = self._call(f"list ResourceQuotas in {namespace}",
                           self.core.list_namespaced_resource_quota, namespace).items
        return sorted(q.metadata.name for q in items)
