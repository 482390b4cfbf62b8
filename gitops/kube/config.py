"""The one factory for Kubernetes API clients: a kubeconfig file and context in, a
`kubernetes.client.ApiClient` out (the kubeconfig's errors as ClusterError)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gitops.errors import ClusterError
from gitops.kube.auth import remember

# One connection per concurrent request of the apply engine's bounded pool.
POOL_SIZE = 16


def api_client(kubeconfig: Path, context: str | None = None) -> Any:
    """A `kubernetes.client.ApiClient` for `context` (default: the current one) of the
    kubeconfig file. Raises ClusterError when the file is missing or unusable."""
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    path = Path(kubeconfig).expanduser()
    if not path.is_file():
        raise ClusterError(
            f"the kubeconfig {path} does not exist.",
            hint="Point stackctl at an existing kubeconfig (cluster.yaml 'kubeconfig', "
                 "$KUBECONFIG), or start the local sandbox with 'stackctl sandbox up'.",
        )
    configuration = client.Configuration()
    try:
        config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=str(path), context=context, client_configuration=configuration,
            persist_config=False)
    except (ConfigException, OSError, ValueError, TypeError) as e:
        where = f"context {context!r} of " if context else ""
        raise ClusterError(
            f"cannot use {where}the kubeconfig {path}: {e}.",
            hint="Check the file and the context name ('kubectl config get-contexts').",
        ) from e
    configuration.connection_pool_maxsize = POOL_SIZE
    remember(configuration, path, context)  # for the message of a 401
    return client.ApiClient(configuration)
