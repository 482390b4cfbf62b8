"""Which cluster a client talks to: the API server, the kubeconfig and context it was built
from, and the cluster's identity.

An API server's URL says little (a tunnel, a load balancer, `127.0.0.1:6443` on every
developer's machine); the UID of the `kube-system` namespace is created once with the
cluster and never changes (the identity kubeadm, Cluster API and several tools use).
cluster.yaml pins it (`identity:`), so that a command whose kubeconfig reaches another
cluster is refused, as Argo CD binds each application to one destination.

    endpoint(kube) -> Endpoint       server, kubeconfig, context, uid (one GET)
    Endpoint.check(pinned, ...)      raise IdentityMismatchError when it is another cluster
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gitops.errors import ClusterError
from gitops.kube.auth import source_of
from gitops.kube.client import Kube

IDENTITY_NAMESPACE = "kube-system"


class IdentityMismatchError(ClusterError):
    """The API server reached is another cluster than the one cluster.yaml pins."""


@dataclass(frozen=True)
class Endpoint:
    server: str
    kubeconfig: Path | None
    context: str | None
    uid: str  # the kube-system namespace's

    def describe(self) -> str:
        """'API server URL (context C of kubeconfig K)'."""
        where = []
        if self.context:
            where.append(f"context {self.context}")
        if self.kubeconfig is not None:
            where.append(f"kubeconfig {self.kubeconfig}")
        return f"API server {self.server}" + (f" ({' of '.join(where)})" if where else "")

    def check(self, pinned: str | None, *, cluster: str, file: Path) -> None:
        """Refuse when `pinned` (cluster.yaml `identity`) names another cluster."""
        if not pinned or pinned == self.uid:
            return
        raise IdentityMismatchError(
            f"cluster {cluster!r} is pinned to the cluster whose kube-system namespace has "
            f"uid {pinned} ({file}: identity), but {self.describe()} is another cluster "
            f"(uid {self.uid}). Nothing was read or changed on it.",
            hint=f"Point the kubeconfig or context at the cluster {cluster!r} "
                 "(cluster.yaml 'kubeconfig'/'context', $KUBECONFIG). If this cluster was "
                 f"rebuilt and is meant to be {cluster!r} now, run 'stackctl pin --cluster "
                 f"{cluster} --replace' and commit {file.name}.")


def endpoint(kube: Kube) -> Endpoint:
    """Where `kube` points, and the identity of the cluster there."""
    kubeconfig, context = source_of(kube.api.configuration)
    ns = kube.request("GET", f"/api/v1/namespaces/{IDENTITY_NAMESPACE}")
    uid = str((ns.get("metadata") or {}).get("uid") or "")
    return Endpoint(server=kube.host, kubeconfig=kubeconfig, context=context, uid=uid)
