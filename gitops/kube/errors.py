"""The one translation of the Kubernetes client's failures into stackctl's errors.

This module (with gitops.kube.client, which calls it) is the only place that names the
client's `ApiException` or urllib3: everything else catches the `ClusterError` subclasses
below. The API server's answer keeps its Kubernetes `Status` on the error (`status`), as
lightkube's `ApiError` does.

    ClusterError
    ├── KubeApiError       the API server answered with an error Status (code, reason, causes)
    ├── UnreachableError   no answer: connection refused or reset, timeout, TLS failure
    └── UnknownKindError   discovery does not serve a kind (its CRD is missing)

Which failures are worth a second try is decided here too (`transient`): an apply that
meets a throttled or restarting API server must not turn a 429 into a rejection that rolls
the whole revision back.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import urllib3.exceptions

from gitops.errors import ClusterError
from gitops.kube.auth import unauthorized

__all__ = [
    "KubeApiError",
    "UnknownKindError",
    "UnreachableError",
    "answer_error",
    "client_failure",
    "translate",
    "translating",
]

# What to do about an answer, by HTTP status (or the first digit for a family).
_HINTS: dict[int, str] = {
    403: "Check the RBAC of the kubeconfig's user: it needs this verb on this resource.",
    429: "The API server is throttling requests (API Priority and Fairness); try again "
         "in a while.",
    5: "The API server failed to answer; check its health and run the command again: a "
       "rerun converges from wherever this one stopped.",
}
_UNREACHABLE_HINT = ("Check that the cluster is running and the kubeconfig points at it (for "
                     "the local sandbox: 'stackctl sandbox status'), then run the command "
                     "again: a rerun converges from wherever this one stopped.")


class KubeApiError(ClusterError):
    """The API server answered with an error; `status` is its Kubernetes `Status` object
    (a dict; only `message` and `code` when the body was not one), `code` the HTTP status,
    `retry_after` the seconds its Retry-After header asked for (None without one)."""

    def __init__(self, message: str, *, code: int, status: dict[str, Any],
                 hint: str | None = None, retry_after: float | None = None) -> None:
        self.code = code
        self.status = status
        self.retry_after = retry_after
        super().__init__(message, hint=hint)

    @property
    def reason(self) -> str:
        """The Status reason: NotFound, AlreadyExists, Conflict, Invalid, ..."""
        return str(self.status.get("reason") or "")

    @property
    def causes(self) -> list[dict[str, Any]]:
        return list((self.status.get("details") or {}).get("causes") or [])

    @property
    def server_message(self) -> str:
        return str(self.status.get("message") or self.reason or f"HTTP {self.code}")

    @property
    def field_manager_conflict(self) -> bool:
        """A server-side apply conflict with another field manager: not transient."""
        return self.code == 409 and any(
            "FieldManagerConflict" in (c.get("reason"), c.get("type")) for c in self.causes)


class UnreachableError(ClusterError):
    """The API server could not be reached at all (connection refused or reset, timeout,
    TLS). `lost` when a connection was made and then lost (reset, closed mid-answer): the
    server may be restarting, and a request that may be sent twice is worth a retry."""

    def __init__(self, message: str, *, hint: str | None = None, lost: bool = False) -> None:
        self.lost = lost
        super().__init__(message, hint=hint)


class UnknownKindError(ClusterError):
    """Discovery does not know an object's kind (its CRD is missing or not established)."""


def _status_of(body: Any, code: int) -> dict[str, Any]:
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    text = str(body or "")
    try:
        parsed = json.loads(text) if text else {}
    except ValueError:
        parsed = None
    if isinstance(parsed, dict) and parsed:
        return parsed
    return {"message": text.strip()[:500] or f"HTTP {code}", "code": code}


def _hint(code: int) -> str | None:
    if code >= 500:
        return _HINTS[5]
    return _HINTS.get(code)


def _retry_after(headers: Any) -> float | None:
    value = headers.get("Retry-After") if headers is not None else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except (TypeError, ValueError):
        return None  # an HTTP date: the caller's own backoff applies


def answer_error(code: int, body: Any, action: str, *, headers: Any = None,
                 configuration: Any = None) -> KubeApiError:
    """The error for an answer with an error status. `action` says what was attempted
    ("PATCH /api/v1/namespaces/x/configmaps/y", "create Namespace t-1"); `configuration`
    is the client's, which a 401's message names (gitops.kube.auth)."""
    status = _status_of(body, code)
    reason = str(status.get("reason") or "")
    detail = str(status.get("message") or "no message").rstrip(".")
    hint = _hint(code)
    if code == 401:  # say whose credentials, and why they are likely refused
        detail, hint = unauthorized(configuration)
    return KubeApiError(
        f"cannot {action}: the API server answered {code}{' ' + reason if reason else ''}: "
        f"{detail}.", code=code, status=status, hint=hint,
        retry_after=_retry_after(headers))


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:300] if text else type(e).__name__


def _lost(e: BaseException) -> bool:
    """A connection made, then lost: reset by the peer or closed before the answer ended
    (urllib3 wraps these in ProtocolError; MaxRetryError carries the last one as reason).
    A refused connection or a timeout is not: the server is not there (urllib3 already
    retried the connection)."""
    reason = getattr(e, "reason", None)
    if isinstance(e, urllib3.exceptions.MaxRetryError) and isinstance(reason, BaseException):
        e = reason
    return isinstance(e, urllib3.exceptions.ProtocolError | ConnectionResetError
                      | ConnectionAbortedError)


def client_failure(e: BaseException) -> bool:
    """Whether `e` is a failure of the kubernetes client or of the connection under it
    (what `translate` turns into a ClusterError), rather than a bug."""
    from kubernetes.client.exceptions import ApiException

    return isinstance(e, ApiException | urllib3.exceptions.HTTPError | OSError)


def translate(e: BaseException, action: str, *, server: str = "") -> ClusterError:
    """A failure of the kubernetes client (or of urllib3 under it) as a ClusterError.
    Use as `raise translate(e, "list Pods") from e`; `server` names the API server."""
    from kubernetes.client.exceptions import ApiException

    at = f" at {server}" if server else ""
    if isinstance(e, ApiException):
        if not e.status:  # the client's own wrapper of a TLS or request-building failure
            return UnreachableError(
                f"cannot talk to the Kubernetes API server{at} during {action}: "
                f"{_first_line(e)}.",
                hint="Check the kubeconfig's server address and certificates.")
        return answer_error(int(e.status), e.body or e.reason, action,
                            headers=getattr(e, "headers", None))
    if isinstance(e, urllib3.exceptions.HTTPError | OSError):
        return UnreachableError(
            f"cannot reach the Kubernetes API server{at} ({type(e).__name__}: "
            f"{_first_line(e)}) during {action}.", hint=_UNREACHABLE_HINT, lost=_lost(e))
    return ClusterError(f"cannot {action}: {type(e).__name__}: {e}.")


@contextmanager
def translating(action: str, *, server: str = "") -> Iterator[None]:
    """Calls of the kubernetes client's typed APIs (CoreV1Api, ...) inside this block raise
    ClusterError subclasses instead of the client's exceptions."""
    from kubernetes.client.exceptions import ApiException

    try:
        yield
    except (ApiException, urllib3.exceptions.HTTPError, OSError) as e:
        raise translate(e, action, server=server) from e


# --- what is worth a second try -------------------------------------------------------

# Verbs that may be sent twice with the same effect. A server-side apply PATCH is (the
# object converges on the applied configuration); a POST is not (the second create
# answers AlreadyExists) and a PUT carries a resourceVersion precondition.
IDEMPOTENT = frozenset({"GET", "HEAD", "DELETE", "APPLY"})


def transient(e: ClusterError, verb: str) -> bool:
    """Whether a failed request may succeed when sent again, as client-go's request retry
    decides (k8s.io/client-go/rest/request.go): the server asked for a retry (429, or a 5xx
    with Retry-After), a 5xx or a lost connection on a request that may be sent twice,
    or a 409 on a server-side apply that is not a field-manager conflict (the object
    changed under the apply: a new attempt applies to the new version)."""
    if isinstance(e, UnreachableError):
        return e.lost and verb in IDEMPOTENT
    if not isinstance(e, KubeApiError):
        return False
    if e.code == 429 or (e.code >= 500 and e.retry_after is not None):
        return True
    if e.code in (500, 502, 503, 504):
        return verb in IDEMPOTENT
    return e.code == 409 and verb == "APPLY" and not e.field_manager_conflict
