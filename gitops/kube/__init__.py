"""Everything stackctl says to a Kubernetes API server goes through this package.

    config      the one ApiClient factory (kubeconfig and context in)
    auth        why a 401: the kubeconfig, context, user and the likely cause
    client      `Kube`: discovery, raw requests, server-side apply and the other verbs
    errors      the one translation of the client's failures (the only module, with
                client, that names ApiException or urllib3), and which are transient
    poll        backoff, polling until a deadline, retrying transient failures
    live        `read_live`: the live versions of a set of objects, in few requests

It imports nothing of stackctl but gitops.errors, gitops.resource (and gitops.yamlio, to
read a refused kubeconfig's names): the apply engine,
the inventory, drift and plan all build on it.
"""

from __future__ import annotations

from gitops.kube.client import FIELD_MANAGER, Kube, ResourceInfo
from gitops.kube.config import api_client
from gitops.kube.errors import (
    KubeApiError,
    UnknownKindError,
    UnreachableError,
    translate,
    translating,
)
from gitops.kube.live import LiveState, read_live
from gitops.kube.poll import POLL, Backoff, poll, retrying

__all__ = [
    "FIELD_MANAGER",
    "POLL",
    "Backoff",
    "Kube",
    "KubeApiError",
    "LiveState",
    "ResourceInfo",
    "UnknownKindError",
    "UnreachableError",
    "api_client",
    "poll",
    "read_live",
    "retrying",
    "translate",
    "translating",
]
