"""Fields the API server refuses to change on a live object, and what re-creating such an
object costs: one table for `stackctl plan` (from git alone, before anyone touches a
cluster) and for the apply, which replaces the object or refuses to.

How each kind is re-created (`Recreate`):
- FOREGROUND: delete with propagationPolicy Foreground (the object's dependents, such as a
  Deployment's ReplicaSets and pods, go first), wait until it is gone, create it again.
  Nothing but the object and what it owns is lost: Deployment, ReplicaSet, DaemonSet, Job,
  RoleBinding, ClusterRoleBinding, Service (a new cluster IP unless one is set), and
  StorageClass (volumes it provisioned keep working: a volume keeps its class by name).
- ORPHAN: delete with propagationPolicy Orphan and apply again: a StatefulSet's pods and
  PersistentVolumeClaims survive and the new StatefulSet adopts the pods its selector
  matches (`kubectl delete --cascade=orphan`, the documented way to change its immutable
  fields such as volumeClaimTemplates).
- REFUSE: re-creating destroys data: a CRD (deleting it deletes every custom resource of
  its kind), a PersistentVolumeClaim or PersistentVolume (the volume, by its reclaim
  policy), a Namespace (everything in it). Never automatic.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import Any

from gitops.resource import ResourceId

REPLACE_ANNOTATION = "stackctl.dev/replace"  # never | always


class Recreate(StrEnum):
    FOREGROUND = "foreground"
    ORPHAN = "orphan"
    REFUSE = "refuse"


Obj = Mapping[str, Any]
Finder = Callable[[Obj, Obj], list[str]]


def _get(obj: Any, path: str) -> Any:
    node = obj
    for part in path.split("."):
        if not isinstance(node, Mapping):
            return None
        node = node.get(part)
    return node


def _empty(value: Any) -> Any:
    return None if value in (None, {}, [], "") else value


def _paths(*paths: str) -> Finder:
    def find(before: Obj, after: Obj) -> list[str]:
        return [p for p in paths if _empty(_get(before, p)) != _empty(_get(after, p))]
    return find


def _spec_except(*mutable: str) -> Finder:
    """Every key of `spec` but the mutable ones (dotted: `resources.requests`)."""
    def strip(spec: Any) -> dict[str, Any]:
        out = {k: v for k, v in (spec or {}).items() if k not in mutable}
        for path in (m for m in mutable if "." in m):
            head, _, tail = path.partition(".")
            if isinstance(out.get(head), Mapping):
                out[head] = {k: v for k, v in out[head].items() if k != tail}
        return {k: v for k, v in out.items() if _empty(v) is not None}

    def find(before: Obj, after: Obj) -> list[str]:
        a, b = strip(before.get("spec")), strip(after.get("spec"))
        return [f"spec.{k}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
    return find


def _service(before: Obj, after: Obj) -> list[str]:
    """A cluster IP set explicitly that differs from the one before; a headless Service
    (clusterIP None) that stops being one (the API server keeps `None` when the field is
    dropped: it cannot allocate an address to a live Service)."""
    out = []
    ip_a, ip_b = _get(before, "spec.clusterIP"), _get(after, "spec.clusterIP")
    if (ip_b and ip_b != ip_a) or (ip_a == "None" and ip_b != "None"
                                   and _get(after, "spec.type") in (None, "ClusterIP")):
        out.append("spec.clusterIP")
    ips_a, ips_b = _get(before, "spec.clusterIPs"), _get(after, "spec.clusterIPs")
    if ips_b and ips_b != (ips_a or ([ip_a] if ip_a else None)):
        out.append("spec.clusterIPs")
    return out


# (group, kind) -> how it is re-created, and the finder of its immutable fields that
# changed. The fields follow the API server's update validation (k8s.io/kubernetes
# pkg/apis/*/validation: ValidateDeploymentUpdate, ValidateStatefulSetUpdate,
# ValidateJobUpdate, ValidateServiceUpdate, ValidateRoleBindingUpdate,
# ValidatePersistentVolumeClaimUpdate, ValidateStorageClassUpdate, and
# apiextensions' ValidateCustomResourceDefinitionSpecUpdate once Established).
_WORKLOAD_SELECTOR = _paths("spec.selector")
RULES: Mapping[tuple[str, str], tuple[Recreate, Finder]] = {
    ("apps", "Deployment"): (Recreate.FOREGROUND, _WORKLOAD_SELECTOR),
    ("apps", "ReplicaSet"): (Recreate.FOREGROUND, _WORKLOAD_SELECTOR),
    ("apps", "DaemonSet"): (Recreate.FOREGROUND, _WORKLOAD_SELECTOR),
    ("extensions", "Deployment"): (Recreate.FOREGROUND, _WORKLOAD_SELECTOR),
    ("extensions", "ReplicaSet"): (Recreate.FOREGROUND, _WORKLOAD_SELECTOR),
    ("extensions", "DaemonSet"): (Recreate.FOREGROUND, _WORKLOAD_SELECTOR),
    ("apps", "StatefulSet"): (Recreate.ORPHAN, _paths(
        "spec.selector", "spec.volumeClaimTemplates", "spec.serviceName",
        "spec.podManagementPolicy")),
    ("batch", "Job"): (Recreate.FOREGROUND, _paths("spec.selector", "spec.template")),
    ("", "Service"): (Recreate.FOREGROUND, _service),
    ("rbac.authorization.k8s.io", "RoleBinding"): (Recreate.FOREGROUND, _paths("roleRef")),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): (Recreate.FOREGROUND,
                                                          _paths("roleRef")),
    ("storage.k8s.io", "StorageClass"): (Recreate.FOREGROUND, _paths(
        "provisioner", "parameters", "reclaimPolicy", "volumeBindingMode")),
    ("", "PersistentVolumeClaim"): (Recreate.REFUSE, _spec_except(
        "resources.requests", "volumeAttributesClassName")),
    ("", "PersistentVolume"): (Recreate.REFUSE, _spec_except(
        "capacity", "accessModes", "claimRef", "persistentVolumeReclaimPolicy",
        "mountOptions", "storageClassName", "nodeAffinity", "volumeAttributesClassName")),
    ("", "Namespace"): (Recreate.REFUSE, lambda _a, _b: []),
    ("apiextensions.k8s.io", "CustomResourceDefinition"): (Recreate.REFUSE, _paths(
        "spec.scope", "spec.names.kind")),
}


def recreate_of(rid: ResourceId) -> Recreate | None:
    """How stackctl re-creates an object of this kind; None for a kind it does not
    re-create by itself (only when the object is annotated `stackctl.dev/replace: always`,
    then as FOREGROUND)."""
    rule = RULES.get((rid.group, rid.kind))
    return rule[0] if rule else None


def immutable_changes(rid: ResourceId, before: Obj, after: Obj) -> tuple[str, ...]:
    """The known immutable fields of the object that differ from `before` to `after` (two
    renders): the object cannot be updated in place and is replaced (or refused)."""
    rule = RULES.get((rid.group, rid.kind))
    return tuple(rule[1](before, after)) if rule else ()


def annotation(obj: Obj) -> str:
    """The object's `stackctl.dev/replace` annotation, lower-cased ('' when absent)."""
    ann = (obj.get("metadata") or {}).get("annotations") or {}
    return str(ann.get(REPLACE_ANNOTATION) or "").strip().lower()


# How the API server words a refusal to change a field in place: apimachinery's
# ValidateImmutableField ("field is immutable"), RBAC's "cannot change roleRef", the
# Service IP allocator's "may not change once set", the "updates to ... are forbidden" of
# StatefulSets and StorageClasses, the PersistentVolumeClaim's "spec is immutable after
# creation", and CEL's `self == oldSelf` rules ("Value is immutable").
_REFUSAL = re.compile(r"immutable|cannot change roleRef|may not change once set|"
                      r"Forbidden: updates to .* are forbidden|cannot be changed", re.IGNORECASE)


def is_refusal(message: str) -> bool:
    """Whether a cause of a 422 answer refuses to change a field in place."""
    return bool(_REFUSAL.search(message))
