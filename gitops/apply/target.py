"""What the apply commands act on: a cluster's rendered objects and its API client."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from gitops.cluster import Cluster
from gitops.errors import ClusterError, KustomizeError
from gitops.paths import sandbox_bin_dir
from gitops.stack import Stack


def render_objects(stack: Stack, cluster: Cluster) -> list[dict[str, Any]]:
    """The cluster's rendered objects, through gitops.render when it is installed, else by
    running `kustomize build` on clusters/<name> directly."""
    try:
        from gitops import render as render_mod  # type: ignore[attr-defined,unused-ignore]
    except ImportError:
        render_mod = None
    if render_mod is not None and hasattr(render_mod, "render_cluster"):
        rendered = render_mod.render_cluster(stack, cluster)
        return [dict(o.body) for o in rendered.objects]
    return _kustomize_build(cluster.path)


def _kustomize_binary() -> str:
    explicit = os.environ.get("STACKCTL_KUSTOMIZE")
    if explicit:
        return explicit
    built = sandbox_bin_dir() / "kustomize"
    if built.is_file():
        return str(built)
    found = shutil.which("kustomize")
    if found:
        return found
    raise KustomizeError(
        "no kustomize binary found (STACKCTL_KUSTOMIZE, the sandbox build, PATH).",
        hint="Run 'make kustomize', or set STACKCTL_KUSTOMIZE to a kustomize v5 binary.",
    )


def _kustomize_build(path: Path) -> list[dict[str, Any]]:
    from gitops.yamlio import load_all_safe

    cmd = [_kustomize_binary(), "build", str(path)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    except OSError as e:
        raise KustomizeError(f"cannot run {cmd[0]}: {e}") from e
    if proc.returncode != 0:
        first = next((ln for ln in proc.stderr.splitlines() if ln.strip()), "")
        raise KustomizeError(
            f"'{' '.join(cmd)}' failed with exit code {proc.returncode}: {first}.",
            hint="Fix the kustomization and run the command again.",
        )
    return [d for d in load_all_safe(proc.stdout, path=path) if isinstance(d, dict)]


def api_client_for(cluster: Cluster) -> Any:
    """An ApiClient for the cluster's kubeconfig and context."""
    path = cluster.kubeconfig_path()
    try:
        from gitops import kube  # type: ignore[attr-defined,unused-ignore]
    except ImportError:
        kube = None
    if kube is not None and hasattr(kube, "api_client"):
        return kube.api_client(path, cluster.context)
    from kubernetes import config
    from kubernetes.config.config_exception import ConfigException

    if not path.is_file():
        raise ClusterError(
            f"the kubeconfig {path} of cluster {cluster.name!r} does not exist.",
            hint="Set 'kubeconfig' in clusters/<name>/cluster.yaml or $KUBECONFIG.",
        )
    try:
        return config.new_client_from_config(  # type: ignore[no-untyped-call]
            str(path), context=cluster.context)
    except ConfigException as e:
        raise ClusterError(
            f"cannot use the kubeconfig {path} for cluster {cluster.name!r}: {e}.",
            hint="Check the file and the 'context' in cluster.yaml.",
        ) from e
