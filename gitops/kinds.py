"""What stackctl knows of Kubernetes kinds, in one place: the order kinds are installed in
(the render's output order and the apply's phases) and the keys that identify the entries
of their lists (plans, drift and the three-way merge match list entries by them).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from enum import IntEnum
from typing import Any

from gitops.resource import ResourceId


class Phase(IntEnum):
    """The apply's phases, applied one after another: what the API server needs first (a
    CRD before its custom resources, a Namespace before what lives in it, RBAC before the
    workloads whose ServiceAccounts use it), and admission webhooks last, as Helm and kapp
    register them, so that a webhook whose backend is not running yet cannot block the
    objects it would admit."""

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

CUSTOM = None  # the place of every kind not listed (custom resources) in the order below

# The one kind order: (kind, group, apply phase). The render writes objects in this order
# (Helm's InstallOrder, which follows kubectl's dependency order, with CRDs moved up beside
# Namespaces so custom resources after them can be applied); kinds not listed (custom
# resources) come at CUSTOM, after the built-in ones; webhooks and API services last, so
# that nothing is admitted through a webhook whose backend is not there yet. The phase
# applies to the kind in that group; a kind without one goes with the cluster-scoped
# objects or the workloads, by its scope.
KIND_ORDER: tuple[tuple[str, str, Phase | None] | None, ...] = (
    ("Namespace", "", Phase.NAMESPACES),
    ("CustomResourceDefinition", "apiextensions.k8s.io", Phase.CRDS),
    ("PriorityClass", "scheduling.k8s.io", None),
    ("NetworkPolicy", "networking.k8s.io", None),
    ("ResourceQuota", "", Phase.CONFIG),
    ("LimitRange", "", Phase.CONFIG),
    ("PodSecurityPolicy", "policy", None),
    ("PodDisruptionBudget", "policy", None),
    ("ServiceAccount", "", Phase.CONFIG),
    ("Secret", "", Phase.CONFIG),
    ("SecretList", "", None),
    ("ConfigMap", "", Phase.CONFIG),
    ("StorageClass", "storage.k8s.io", None),
    ("PersistentVolume", "", None),
    ("PersistentVolumeClaim", "", None),
    ("ClusterRole", "rbac.authorization.k8s.io", None),
    ("ClusterRoleList", "rbac.authorization.k8s.io", None),
    ("ClusterRoleBinding", "rbac.authorization.k8s.io", Phase.RBAC),
    ("ClusterRoleBindingList", "rbac.authorization.k8s.io", None),
    ("Role", "rbac.authorization.k8s.io", Phase.RBAC),
    ("RoleList", "rbac.authorization.k8s.io", None),
    ("RoleBinding", "rbac.authorization.k8s.io", Phase.RBAC),
    ("RoleBindingList", "rbac.authorization.k8s.io", None),
    ("Service", "", None),
    ("DaemonSet", "apps", None),
    ("Pod", "", None),
    ("ReplicationController", "", None),
    ("ReplicaSet", "apps", None),
    ("Deployment", "apps", None),
    ("HorizontalPodAutoscaler", "autoscaling", None),
    ("StatefulSet", "apps", None),
    ("Job", "batch", None),
    ("CronJob", "batch", None),
    ("IngressClass", "networking.k8s.io", None),
    ("Ingress", "networking.k8s.io", None),
    CUSTOM,
    ("APIService", "apiregistration.k8s.io", None),
    ("ValidatingAdmissionPolicy", "admissionregistration.k8s.io", Phase.WEBHOOKS),
    ("ValidatingAdmissionPolicyBinding", "admissionregistration.k8s.io", Phase.WEBHOOKS),
    ("MutatingWebhookConfiguration", "admissionregistration.k8s.io", Phase.WEBHOOKS),
    ("ValidatingWebhookConfiguration", "admissionregistration.k8s.io", Phase.WEBHOOKS),
)

_RANK = {row[0]: i + 1 for i, row in enumerate(KIND_ORDER) if row is not None}
_CUSTOM_RANK = KIND_ORDER.index(CUSTOM) + 1
_PHASE = {(group, kind): phase for row in KIND_ORDER if row is not None
          for kind, group, phase in (row,) if phase is not None}
CRD = ("apiextensions.k8s.io", "CustomResourceDefinition")


def kind_rank(kind: str) -> int:
    """The position of a kind in the render's output order (custom kinds share one)."""
    return _RANK.get(kind, _CUSTOM_RANK)


def phase_of(rid: ResourceId) -> Phase:
    """The apply phase of an object. A cluster-scoped object without a phase of its own
    (ClusterRole, StorageClass, PriorityClass, IngressClass...) goes with the cluster
    phase; every other namespaced object (workloads, Services, custom resources) with the
    workloads."""
    known = _PHASE.get((rid.group, rid.kind))
    if known is not None:
        return known
    return Phase.CLUSTER if not rid.namespace else Phase.WORKLOADS


# --- list keys ----------------------------------------------------------------------------

# The fields that identify an entry of a list, by the list's field name: the
# patchMergeKey / listMapKeys of the k8s.io/api types (core/v1 PodSpec, Container,
# ObjectMeta, ServiceSpec; admissionregistration/v1 webhooks), plus CRD `versions` and
# printer columns by name. Ports are keyed as the API server keys them (`+listMapKey`):
# container ports by containerPort and protocol, Service ports by port and protocol.
LIST_KEYS: Mapping[str, tuple[str, ...]] = {
    "containers": ("name",),
    "initContainers": ("name",),
    "ephemeralContainers": ("name",),
    "env": ("name",),
    "volumes": ("name",),
    "volumeMounts": ("mountPath",),
    "volumeDevices": ("devicePath",),
    "imagePullSecrets": ("name",),
    "hostAliases": ("ip",),
    "topologySpreadConstraints": ("topologyKey",),
    "resourceClaims": ("name",),
    "schedulingGates": ("name",),
    "ownerReferences": ("uid",),
    "conditions": ("type",),
    "webhooks": ("name",),
    "versions": ("name",),
    "additionalPrinterColumns": ("name",),
    "volumeClaimTemplates": ("metadata.name",),
}
CONTAINER_PORT_KEY = ("containerPort", "protocol")
SERVICE_PORT_KEY = ("port", "protocol")
# Values a key field takes when an entry leaves it out (the API server's defaults).
KEY_DEFAULTS: Mapping[str, str] = {"protocol": "TCP"}
# Lists Kubernetes replaces whole (no patch strategy): RBAC rules, command lines, selectors.
ATOMIC_LISTS = frozenset({
    "rules", "args", "command", "clusterRoleSelectors", "subjects", "matchExpressions",
    "nodeSelectorTerms", "required", "enum", "accessModes",
})
# Lists that are sets of whole entries: tolerations have no key, finalizers are a set.
SET_LISTS = frozenset({"tolerations", "finalizers"})
DEFAULT_KEY = ("name",)  # any other list whose every entry has a distinct name


def _field(item: Mapping[str, Any], dotted: str) -> Any:
    node: Any = item
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return KEY_DEFAULTS.get(dotted)
        node = node[part]
    return node


def key_of(fields: Sequence[str], item: Any) -> tuple[tuple[str, Any], ...] | None:
    """((field, value), ...) of an entry for the key `fields`, with the defaults of
    KEY_DEFAULTS; None when the entry lacks one or one is not a plain value."""
    if not isinstance(item, Mapping):
        return None
    out = []
    for f in fields:
        value = _field(item, f)
        if value is None or isinstance(value, Mapping | list | bool):
            return None
        out.append((f, value))
    return tuple(out)


def key_fields(name: str, items: Sequence[Any]) -> tuple[str, ...] | None:
    """The key of the list `name` (holding `items`) in LIST_KEYS, ports by what their
    entries hold; None for a list not listed there."""
    if name == "ports":
        container = any(isinstance(i, Mapping) and "containerPort" in i for i in items)
        return CONTAINER_PORT_KEY if container else SERVICE_PORT_KEY
    return LIST_KEYS.get(name)


def list_key(name: str, items: Sequence[Any]) -> tuple[str, ...] | None:
    """The fields that identify the entries of the list `name` holding `items`, or None
    when the list is matched as a whole (atomic), as a set of entries, or by position.
    Every entry must have every field (a default counts) and the keys must be distinct."""
    if name in ATOMIC_LISTS or name in SET_LISTS or not items:
        return None
    fields = key_fields(name, items) or DEFAULT_KEY
    keys: list[Hashable] = []
    for item in items:
        key = key_of(fields, item)
        if key is None:
            return None
        keys.append(key)
    return fields if len(set(keys)) == len(keys) else None
