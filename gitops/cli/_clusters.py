"""What the cluster commands (apply, rollback, history, plan --live, drift) share: a
cluster's render, its apply target, and the commit the working tree is at."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gitops.apply import Target
    from gitops.cluster import Cluster
    from gitops.redact import Redactor
    from gitops.stack import Stack


def render_objects(stack: Stack, cluster: Cluster, redactor: Redactor) -> list[dict[str, Any]]:
    """The cluster's rendered objects (through the render cache), as plain dicts. The run's
    `redactor` learns the values the render decrypted from SOPS files first: a value an
    encrypted patch put into a Deployment is a secret only the render can tell."""
    from gitops import render

    rendered = render.render_cluster(stack, cluster)
    redactor.learn_decrypted(rendered.secrets)
    return [dict(o.body) for o in rendered.objects]


def api_client_for(cluster: Cluster) -> Any:
    """An ApiClient for the cluster's kubeconfig and context."""
    from gitops.kube import api_client

    return api_client(cluster.kubeconfig_path(), cluster.context)


def target_for(cluster: Cluster) -> Target:
    from gitops.apply import Target
    from gitops.kube import Kube

    return Target(Kube(api_client_for(cluster)), cluster.name, cluster.records_namespace)


def head_commit(stack: Stack) -> str | None:
    """The commit HEAD is at, None outside git or before the first commit."""
    from gitops.errors import GitError
    from gitops.git import open_repo

    try:
        return open_repo(stack.root).head_commit()
    except GitError:
        return None
