"""Waiting for applied objects to become healthy, and explaining why they did not.

Polls with one LIST per kind (selected by the ApplySet membership label, through
gitops.kube's read_live) rather than one GET per object, evaluates gitops.health's rules,
and reports what it is waiting on. When an object fails or the time runs out, it gathers
what a person would look at: the object's conditions, its pods' container states and
recent Warning events.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from gitops.errors import ClusterError
from gitops.health import Health, Status, status_of
from gitops.kube import POLL, Kube, poll, read_live
from gitops.resource import ResourceId

# Objects whose conditions, ReplicaSets, pods and events are read when a wait fails (a few
# requests each); every other unhealthy object is still listed, with its status.
EXPLAINED = 60


@dataclass(frozen=True)
class HealthReport:
    ok: bool
    timed_out: bool
    statuses: tuple[tuple[ResourceId, Status], ...]
    explanations: tuple[tuple[ResourceId, tuple[str, ...]], ...] = ()

    @property
    def unhealthy(self) -> list[tuple[ResourceId, Status]]:
        return [(r, s) for r, s in self.statuses if not s.ready]


def wait_healthy(
    kube: Kube,
    objects: Sequence[dict[str, Any]],
    *,
    label: tuple[str, str] | None,
    deadline: float,
    on_wait: Callable[[list[tuple[ResourceId, Status]]], None] | None = None,
    concurrency: int = 8,
    sleep: Callable[[float], None] = time.sleep,
) -> HealthReport:
    """Wait until every object is Ready, one is Failed, or `deadline` (time.monotonic),
    polling (gitops.kube.poll's POLL backoff) only the objects still pending, their kinds
    read `concurrency` at a time (gitops.kube.read_live, by the ApplySet `label`). `sleep`
    waits between polls (a stopped apply's raises)."""
    pending = list(objects)
    statuses: dict[ResourceId, Status] = {}
    live_objs: dict[ResourceId, dict[str, Any]] = {}
    unreadable: set[ResourceId] = set()  # at a version no longer served: nothing to explain

    def attempt() -> HealthReport | None:
        nonlocal pending
        state = read_live(kube, pending, label=label, concurrency=concurrency)
        live = state.objects
        missing = {(str(o.get("apiVersion")), ResourceId.of(o).kind) for o in pending
                   if ResourceId.of(o) not in live}
        unserved = _unserved(kube, missing)
        still = []
        for obj in pending:
            rid = ResourceId.of(obj)
            now = live.get(rid)
            key = (str(obj.get("apiVersion")), rid.kind)
            if now is not None:
                st = status_of(now)
            elif key in unserved:
                unreadable.add(rid)
                # Its CRD no longer serves that version (a rollback over a CRD the failed
                # attempt changed, a CRD changed by someone else): no poll can read it.
                st = Status(Health.FAILED, f"the cluster does not serve {rid.kind} at "
                                           f"{key[0]} (its CRD no longer lists that version "
                                           "as served)")
            else:
                st = Status(Health.IN_PROGRESS, "not found yet")
            statuses[rid] = st
            if now is not None:
                live_objs[rid] = now
            if not st.ready:
                still.append(obj)
        pending = still
        waiting = sorted(((r, s) for r, s in statuses.items() if not s.ready),
                         key=lambda x: x[0])
        if not waiting:
            return HealthReport(True, False, tuple(sorted(statuses.items())))
        failed = [(r, s) for r, s in waiting if s.health is Health.FAILED]
        timed_out = time.monotonic() >= deadline
        if failed or timed_out:
            targets = failed or waiting
            explanations = tuple(
                (r, tuple(explain(kube, live_objs.get(r), r)))
                for r, _ in targets[:EXPLAINED] if r not in unreadable)
            return HealthReport(False, timed_out and not failed,
                                tuple(sorted(statuses.items())), explanations)
        if on_wait is not None:
            on_wait(waiting)
        return None

    report = poll(attempt, deadline=deadline, backoff=POLL, sleep=sleep)
    # The attempt at the deadline always reports: past it, `timed_out` holds.
    assert report is not None
    return report


def _unserved(kube: Kube, kinds: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """The (apiVersion, kind) pairs of objects not found that discovery, read again, does
    not serve: the run's cached discovery may predate a CRD change (a version no longer
    served reads as 404, like an object not created yet)."""
    versions = {av for av, _ in kinds}
    served = {av: kube.group_version(av, refresh=True) for av in sorted(versions)}
    return {(av, kind) for av, kind in kinds if kind not in served[av]}


def _selector(obj: dict[str, Any]) -> str | None:
    sel = ((obj.get("spec") or {}).get("selector") or {})
    labels = sel.get("matchLabels") if isinstance(sel, dict) else None
    if not labels:
        return None
    exprs = sel.get("matchExpressions") or []
    parts = [f"{k}={v}" for k, v in sorted(labels.items())]
    for e in exprs:
        op, key, values = e.get("operator"), e.get("key"), e.get("values") or []
        if op == "In":
            parts.append(f"{key} in ({','.join(values)})")
        elif op == "NotIn":
            parts.append(f"{key} notin ({','.join(values)})")
        elif op == "Exists":
            parts.append(str(key))
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
    return ",".join(parts)


def _events(kube: Kube, namespace: str, name: str, kind: str) -> list[str]:
    if not namespace:
        return []
    try:
        items = kube.list("v1", "Event", namespace=namespace, field_selector=(
            f"involvedObject.name={name},involvedObject.kind={kind},type=Warning"))
    except ClusterError:  # events are a best-effort explanation
        return []
    items.sort(key=lambda e: str(e.get("lastTimestamp") or e.get("eventTime") or ""))
    return [f"event {e.get('reason')}: {str(e.get('message') or '').strip()}"
            + (f" (x{e['count']})" if (e.get("count") or 1) > 1 else "")
            for e in items[-5:]]


def explain(kube: Kube, obj: dict[str, Any] | None, rid: ResourceId) -> list[str]:
    """The conditions, pod container states and Warning events that explain `rid`'s state."""
    if obj is None:
        return ["the object does not exist"]
    lines: list[str] = []
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("status") != "True" or c.get("reason") in ("ProgressDeadlineExceeded",):
            lines.append(f"condition {c.get('type')}={c.get('status')}: "
                         f"{c.get('reason') or ''} {c.get('message') or ''}".rstrip())
    lines.extend(_events(kube, rid.namespace, rid.name, rid.kind))
    if rid.kind == "Deployment":
        lines.extend(_replica_set_events(kube, obj, rid))
    if rid.kind in ("Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet"):
        selector = _selector(obj)
        if selector:
            try:
                pods = kube.list("v1", "Pod", namespace=rid.namespace, label_selector=selector)
            except ClusterError:  # best effort
                pods = []
            for pod in pods[:3]:
                lines.extend(_pod_lines(kube, pod))
    return lines


def _replica_set_events(kube: Kube, obj: dict[str, Any], rid: ResourceId) -> list[str]:
    """The Warning events of the Deployment's own ReplicaSets: where a pod that could not
    be created says why (FailedCreate: "failed calling webhook ...")."""
    selector = _selector(obj)
    uid = (obj.get("metadata") or {}).get("uid")
    if not selector or not uid:
        return []
    try:
        sets = kube.list("apps/v1", "ReplicaSet", namespace=rid.namespace,
                         label_selector=selector)
    except ClusterError:  # best effort
        return []
    owned = [rs for rs in sets if any(ref.get("uid") == uid for ref in
                                      (rs.get("metadata") or {}).get("ownerReferences") or [])]
    owned.sort(key=lambda rs: str((rs.get("metadata") or {}).get("creationTimestamp") or ""))
    lines: list[str] = []
    for rs in owned[-2:]:
        name = str((rs.get("metadata") or {}).get("name"))
        lines.extend(f"replicaset {name} {e}" for e in _events(
            kube, rid.namespace, name, "ReplicaSet"))
    return lines


def _pod_lines(kube: Kube, pod: dict[str, Any]) -> list[str]:
    meta, status = pod.get("metadata") or {}, pod.get("status") or {}
    name = str(meta.get("name"))
    lines: list[str] = []
    for c in status.get("conditions") or []:
        if c.get("type") in ("Ready", "PodScheduled") and c.get("status") != "True":
            lines.append(f"pod {name}: {c.get('type')}={c.get('status')} "
                         f"{c.get('reason') or ''} {c.get('message') or ''}".rstrip())
    for cs in status.get("containerStatuses") or []:
        state = cs.get("state") or {}
        if "waiting" in state:
            w = state["waiting"] or {}
            lines.append(f"pod {name} container {cs.get('name')}: waiting "
                         f"{w.get('reason') or ''} {w.get('message') or ''}".rstrip())
        elif "terminated" in state:
            t = state["terminated"] or {}
            lines.append(f"pod {name} container {cs.get('name')}: terminated "
                         f"{t.get('reason') or ''} exit {t.get('exitCode')}".rstrip())
        elif not cs.get("ready"):
            lines.append(f"pod {name} container {cs.get('name')}: running but not ready"
                         f" (restarts {cs.get('restartCount', 0)})")
    lines.extend(f"pod {name} {e}" for e in _events(
        kube, str(meta.get("namespace") or ""), name, "Pod"))
    return lines
