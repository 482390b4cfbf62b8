"""The one factory for Kubernetes API clients, and the translation of the client's errors.

Every module that talks to a cluster gets its `kubernetes.client.ApiClient` from
`api_client()` and turns the client's exceptions into `ClusterError` with `cluster_error()`
(the Kubernetes `Status` stays on the error as `status`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gitops import kubeauth
from gitops.errors import ClusterError

__all__ = ["KubeApiError", "api_client", "cluster_error"]


class KubeApiError(ClusterError):
    """The API server answered with an error; `status` is its Kubernetes `Status` object
    (a dict, empty when the body was not one), `code` the HTTP status, `reason` the
    Status reason (`NotFound`, `AlreadyExists`, `Conflict`, ...)."""

    def __init__(self, message: str, *, status: dict[str, Any], code: int, reason: str,
                 hint: str | None = None) -> None:
        self.status = status
        self.code = code
        self.reason = reason
        super().__init__(message, hint=hint)


class UnreachableClusterError(ClusterError):
    """The API server could not be reached at all (connection refused, timeout, TLS)."""


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
    # One connection per concurrent request of the apply engine's bounded pool.
    configuration.connection_pool_maxsize = 16
    kubeauth.remember(configuration, path, context)  # for the message of a 401
    return client.ApiClient(configuration)


def _status_of(body: Any) -> dict[str, Any]:
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if isinstance(body, str) and body:
        try:
            parsed = json.loads(body)
        except ValueError:
            return {}
        return parsed if isinstance(parsed, dict) else {}
    return {}


def cluster_error(e: BaseException, action: str) -> ClusterError:
    """Translate an exception of the kubernetes client into a ClusterError.

    `action` says what was attempted ("create Namespace t-1"); the message starts with it.
    ApiException keeps its Status; urllib3 / socket errors become UnreachableClusterError.
    Use as `raise cluster_error(e, "...") from e`.
    """
    from kubernetes.client.exceptions import ApiException

    if isinstance(e, ApiException):
        status = _status_of(e.body)
        code = int(e.status or 0)
        reason = str(status.get("reason") or e.reason or "")
        detail = str(status.get("message") or e.reason or "no message")
        hint = None
        if code == 403:
            hint = "Check the credentials and RBAC of the kubeconfig's user."
        if code == 401:
            detail, hint = kubeauth.unauthorized(None)  # the exception has no client
        return KubeApiError(f"cannot {action}: the API server answered {code} {reason}: "
                            f"{detail}.", status=status, code=code, reason=reason, hint=hint)
    import urllib3.exceptions

    if isinstance(e, urllib3.exceptions.HTTPError | OSError):
        return UnreachableClusterError(
            f"cannot {action}: the API server is unreachable ({type(e).__name__}: {e}).",
            hint="Check that the cluster is running and the kubeconfig's server address; "
                 "for the local sandbox run 'stackctl sandbox status'.")
    return ClusterError(f"cannot {action}: {type(e).__name__}: {e}.")
