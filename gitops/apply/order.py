"""The order in which an apply sends objects: phases, applied one after another.

The order follows what the API server needs (a CRD before its custom resources, a Namespace
before what lives in it, RBAC before the workloads whose ServiceAccounts use it) and what
Helm and kapp do with admission webhooks: register them last, so that a webhook whose
backend is not running yet cannot block the objects it would admit.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from enum import IntEnum
from typing import Any

from gitops.resource import ResourceId


class Phase(IntEnum):
    CRDS = 0
    NAMESPACES = 1
    CLUSTER = 2
    CONFIG = 3
    RBAC = 4
    WORKLOADS = 5
    WEBHOOKS = 6

    @property
    def label(self) -> str:
        return _LABELS[self]


_LABELS = {
    Phase.CRDS: "custom resource definitions",
    Phase.NAMESPACES: "namespaces",
    Phase.CLUSTER: "cluster-scoped objects",
    Phase.CONFIG: "service accounts, config maps and secrets",
    Phase.RBAC: "RBAC",
    Phase.WORKLOADS: "workloads, services and the rest",
    Phase.WEBHOOKS: "webhook configurations",
}

_BY_GROUP_KIND: dict[tuple[str, str], Phase] = {
    ("apiextensions.k8s.io", "CustomResourceDefinition"): Phase.CRDS,
    ("", "Namespace"): Phase.NAMESPACES,
    ("", "ServiceAccount"): Phase.CONFIG,
    ("", "ConfigMap"): Phase.CONFIG,
    ("", "Secret"): Phase.CONFIG,
    ("", "LimitRange"): Phase.CONFIG,
    ("", "ResourceQuota"): Phase.CONFIG,
    ("rbac.authorization.k8s.io", "Role"): Phase.RBAC,
    ("rbac.authorization.k8s.io", "RoleBinding"): Phase.RBAC,
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): Phase.RBAC,
    ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"): Phase.WEBHOOKS,
    ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"): Phase.WEBHOOKS,
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy"): Phase.WEBHOOKS,
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding"): Phase.WEBHOOKS,
}


def phase_of(rid: ResourceId) -> Phase:
    """The phase of an object. A cluster-scoped object not named above (ClusterRole,
    StorageClass, PriorityClass, IngressClass...) goes with the cluster phase; every other
    namespaced object (workloads, Services, custom resources) with the workloads."""
    known = _BY_GROUP_KIND.get((rid.group, rid.kind))
    if known is not None:
        return known
    return Phase.CLUSTER if not rid.namespace else Phase.WORKLOADS


def group_by_phase(
    objects: Iterable[dict[str, Any]],
) -> list[tuple[Phase, list[dict[str, Any]]]]:
    """The non-empty phases in order, each with its objects sorted by identity."""
    buckets: dict[Phase, list[dict[str, Any]]] = {}
    for obj in objects:
        buckets.setdefault(phase_of(ResourceId.of(obj)), []).append(obj)
    return [
        (phase, sorted(buckets[phase], key=ResourceId.of))
        for phase in sorted(buckets)
    ]


def crd_kinds(objects: Sequence[dict[str, Any]]) -> set[tuple[str, str]]:
    """(group, kind) of every custom resource kind a CRD in `objects` defines."""
    kinds: set[tuple[str, str]] = set()
    for obj in objects:
        rid = ResourceId.of(obj)
        if (rid.group, rid.kind) != ("apiextensions.k8s.io", "CustomResourceDefinition"):
            continue
        spec = obj.get("spec") or {}
        kind = (spec.get("names") or {}).get("kind")
        if kind:
            kinds.add((str(spec.get("group") or ""), str(kind)))
    return kinds
