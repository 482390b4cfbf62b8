"""What the apply commands act on: a cluster's rendered objects and its API client."""

from __future__ import annotations

from typing import Any

from gitops import kube, render
from gitops.cluster import Cluster
from gitops.stack import Stack


def render_objects(stack: Stack, cluster: Cluster) -> list[dict[str, Any]]:
    """The cluster's rendered objects (through the render cache), as plain dicts."""
    rendered = render.render_cluster(stack, cluster)
    return [dict(o.body) for o in rendered.objects]


def api_client_for(cluster: Cluster) -> Any:
    """An ApiClient for the cluster's kubeconfig and context."""
    return kube.api_client(cluster.kubeconfig_path(), cluster.context)
