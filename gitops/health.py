"""Health rules: is a live object ready, still progressing, or failed?

Pure functions over a live object (the dict the API server returns), following the rules
`kubectl rollout status` and kstatus (sigs.k8s.io/cli-utils/pkg/kstatus) use:
- Deployments, StatefulSets, DaemonSets: the controller has seen the latest spec
  (observedGeneration >= generation) and every replica is updated and available/ready;
  a Deployment whose Progressing condition says ProgressDeadlineExceeded has failed.
- Jobs: Complete, or Failed.
- PersistentVolumeClaims: Bound. CustomResourceDefinitions: Established (NamesAccepted
  False is a failure). APIServices: Available.
- Any other object with a `Ready` condition: that condition; objects without conditions are
  ready on existence.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

from gitops.resource import ResourceId


class Health(Enum):
    READY = "Ready"
    IN_PROGRESS = "InProgress"
    FAILED = "Failed"


@dataclass(frozen=True)
class Status:
    health: Health
    reason: str

    @property
    def ready(self) -> bool:
        return self.health is Health.READY


def _conditions(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    status = obj.get("status") or {}
    conds = status.get("conditions") or []
    return {str(c.get("type")): c for c in conds if isinstance(c, dict)}


def _observed(obj: dict[str, Any]) -> bool:
    gen = (obj.get("metadata") or {}).get("generation")
    observed = (obj.get("status") or {}).get("observedGeneration")
    return gen is None or (observed is not None and int(observed) >= int(gen))


def _ready(reason: str = "ready") -> Status:
    return Status(Health.READY, reason)


def _waiting(reason: str) -> Status:
    return Status(Health.IN_PROGRESS, reason)


def _failed(reason: str) -> Status:
    return Status(Health.FAILED, reason)


def deployment_status(obj: dict[str, Any]) -> Status:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    progressing = _conditions(obj).get("Progressing") or {}
    if progressing.get("reason") == "ProgressDeadlineExceeded":
        return _failed(f"rollout exceeded its progress deadline: {progressing.get('message', '')}")
    if not _observed(obj):
        return _waiting("waiting for the controller to observe the new spec")
    want = int(spec.get("replicas", 1))
    updated = int(status.get("updatedReplicas") or 0)
    available = int(status.get("availableReplicas") or 0)
    total = int(status.get("replicas") or 0)
    if updated < want:
        return _waiting(f"{updated} of {want} replicas updated")
    if total > updated:
        return _waiting(f"{total - updated} old replicas pending termination")
    if available < want:
        return _waiting(f"{available} of {want} updated replicas available")
    return _ready(f"{available} of {want} replicas available")


def statefulset_status(obj: dict[str, Any]) -> Status:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    if not _observed(obj):
        return _waiting("waiting for the controller to observe the new spec")
    want = int(spec.get("replicas", 1))
    ready = int(status.get("readyReplicas") or 0)
    strategy = (spec.get("updateStrategy") or {}).get("type", "RollingUpdate")
    if strategy == "RollingUpdate":
        updated = int(status.get("updatedReplicas") or 0)
        partition = int(
            ((spec.get("updateStrategy") or {}).get("rollingUpdate") or {}).get("partition") or 0
        )
        if updated < want - partition:
            return _waiting(f"{updated} of {want} replicas updated")
        current, update = status.get("currentRevision"), status.get("updateRevision")
        if partition == 0 and current and update and current != update:
            return _waiting(f"waiting for revision {update} to become current")
    if ready < want:
        return _waiting(f"{ready} of {want} replicas ready")
    return _ready(f"{ready} of {want} replicas ready")


def daemonset_status(obj: dict[str, Any]) -> Status:
    status = obj.get("status") or {}
    if not _observed(obj):
        return _waiting("waiting for the controller to observe the new spec")
    want = int(status.get("desiredNumberScheduled") or 0)
    updated = int(status.get("updatedNumberScheduled") or 0)
    available = int(status.get("numberAvailable") or 0)
    if updated < want:
        return _waiting(f"{updated} of {want} pods updated")
    if available < want:
        return _waiting(f"{available} of {want} pods available")
    return _ready(f"{available} of {want} pods available")


def job_status(obj: dict[str, Any]) -> Status:
    conds = _conditions(obj)
    if (conds.get("Failed") or {}).get("status") == "True":
        return _failed(f"job failed: {conds['Failed'].get('reason', '')} "
                       f"{conds['Failed'].get('message', '')}".strip())
    if (conds.get("Complete") or {}).get("status") == "True":
        return _ready("job complete")
    status = obj.get("status") or {}
    return _waiting(f"job running ({int(status.get('succeeded') or 0)} succeeded, "
                    f"{int(status.get('active') or 0)} active)")


def pvc_status(obj: dict[str, Any]) -> Status:
    phase = (obj.get("status") or {}).get("phase")
    if phase == "Bound":
        return _ready("bound")
    if phase == "Lost":
        return _failed("the claim lost its volume")
    return _waiting(f"claim is {phase or 'Pending'}, waiting to be bound")


# Established=False reasons that hold until the CRD changes ("Installing" passes by itself).
TERMINAL_CRD = ("InvalidCABundle",)


def crd_status(obj: dict[str, Any]) -> Status:
    conds = _conditions(obj)
    names = conds.get("NamesAccepted") or {}
    if names.get("status") == "False":
        return _failed(f"names not accepted: {names.get('message', '')}")
    established = conds.get("Established") or {}
    if established.get("status") == "True":
        return _ready("established")
    if established.get("status") == "False" and established.get("reason") in TERMINAL_CRD:
        # The establishing controller says why (apiextensions-apiserver,
        # establishing_controller.go): InvalidCABundle holds until the conversion webhook's
        # caBundle is fixed, which only an injector named on the object can do.
        why = (f"condition Established=False: {established.get('reason')}: "
               f"{established.get('message') or ''}").rstrip(": ")
        ann = (obj.get("metadata") or {}).get("annotations") or {}
        injector = next((f"{k}: {ann[k]}" for k in sorted(ann) if "inject-ca" in k
                         or k.endswith("/inject-apiserver-ca")), "")
        if injector:
            return _waiting(f"{why} (waiting for the CA bundle of {injector})")
        return _failed(why)
    if established.get("reason"):
        return _waiting(f"condition Established={established.get('status')}: "
                        f"{established.get('reason')}")
    return _waiting("waiting to be established")


def apiservice_status(obj: dict[str, Any]) -> Status:
    cond = _conditions(obj).get("Available") or {}
    if cond.get("status") == "True":
        return _ready("available")
    return _waiting(f"not available: {cond.get('message') or cond.get('reason') or 'pending'}")


def generic_status(obj: dict[str, Any]) -> Status:
    ready = _conditions(obj).get("Ready")
    if ready is None:
        return _ready("exists")
    if ready.get("status") == "True":
        return _ready("Ready condition is True")
    reason = f"{ready.get('reason') or ''} {ready.get('message') or ''}".strip()
    return _waiting(f"Ready condition is {ready.get('status')}" + (f": {reason}" if reason else ""))


_RULES = {
    ("apps", "Deployment"): deployment_status,
    ("apps", "StatefulSet"): statefulset_status,
    ("apps", "DaemonSet"): daemonset_status,
    ("batch", "Job"): job_status,
    ("", "PersistentVolumeClaim"): pvc_status,
    ("apiextensions.k8s.io", "CustomResourceDefinition"): crd_status,
    ("apiregistration.k8s.io", "APIService"): apiservice_status,
}

# Kinds with a status that never says "ready" (or no status at all): ready on existence.
_EXISTENCE_ONLY = {("", "Service"), ("", "Pod"), ("", "Namespace")}


def status_of(obj: dict[str, Any]) -> Status:
    rid = ResourceId.of(obj)
    rule = _RULES.get((rid.group, rid.kind))
    if rule is not None:
        return rule(obj)
    if (rid.group, rid.kind) in _EXISTENCE_ONLY:
        return _ready("exists")
    return generic_status(obj)
