"""What the cluster commands (apply, rollback, history, pin, plan --live, drift) share: a
cluster's render, its apply target (connected, named, its identity checked), and the commit
the working tree is at."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gitops.apply import Target
    from gitops.cluster import Cluster
    from gitops.kube import Kube
    from gitops.kube.identity import Endpoint
    from gitops.redact import Redactor
    from gitops.stack import Stack


@dataclass(frozen=True)
class ClusterRender:
    objects: list[dict[str, Any]]
    source: str | None  # HEAD's commit, '+changes' appended when an input differs from it

    @property
    def dirty(self) -> bool:
        """An input of the render differs from HEAD's version (uncommitted or untracked)."""
        return bool(self.source and self.source.endswith("+changes"))


def render_cluster(stack: Stack, cluster: Cluster, redactor: Redactor) -> ClusterRender:
    """The cluster's rendered objects (through the render cache), as plain dicts. The run's
    `redactor` learns the values the render decrypted from SOPS files first: a value an
    encrypted patch put into a Deployment is a secret only the render can tell."""
    from gitops import render

    rendered = render.render_cluster(stack, cluster)
    redactor.learn_decrypted(rendered.secrets)
    return ClusterRender([dict(o.body) for o in rendered.objects], rendered.source)


def api_client_for(cluster: Cluster) -> Any:
    """An ApiClient for the cluster's kubeconfig and context."""
    from gitops.kube import api_client

    return api_client(cluster.kubeconfig_path(), cluster.context)


def connect(cluster: Cluster, say: Callable[[str], None]) -> tuple[Kube, Endpoint]:
    """A client for the cluster, after saying which API server and context it talks to and
    checking the cluster's identity against cluster.yaml's pin (refused when another)."""
    from gitops.kube import Kube
    from gitops.kube.identity import endpoint

    kube = Kube(api_client_for(cluster))
    where = endpoint(kube)
    say(f"cluster {cluster.name}: {where.describe()}")
    where.check(cluster.identity, cluster=cluster.name, file=cluster.config_file)
    if not cluster.identity:
        say(f"cluster {cluster.name}: {cluster.config_file.name} pins no identity (this "
            f"cluster's is {where.uid}): run 'stackctl pin --cluster {cluster.name}' and "
            "commit it, so that a kubeconfig reaching another cluster is refused")
    return kube, where


def target_for(cluster: Cluster, say: Callable[[str], None]) -> Target:
    from gitops.apply import Target

    kube, _ = connect(cluster, say)
    return Target(kube, cluster.name, cluster.records_namespace)


def head_commit(stack: Stack) -> str | None:
    """The commit HEAD is at, None outside git or before the first commit."""
    from gitops.errors import GitError
    from gitops.git import open_repo

    try:
        return open_repo(stack.root).head_commit()
    except GitError:
        return None
