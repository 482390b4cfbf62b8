"""Waiting for applied objects to become healthy, and explaining why they did not.

Polls with one LIST per kind (selected by the ApplySet membership label) rather than one GET
per object, evaluates gitops.health's rules, and reports what it is waiting on. When an
object fails or the time runs out, it gathers what a person would look at: the object's
conditions, its pods' container states and recent Warning events.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from gitops.apply.ssa import Kube
from gitops.health import Health, Status, status_of
from gitops.resource import ResourceId

POLL_SECONDS = 1.0  # the longest interval between two polls
# The first polls come quickly (CRDs are Established and most objects ready within a
# fraction of a second), then the interval grows by half each time up to POLL_SECONDS.
FIRST_POLL_SECONDS = 0.05
POLL_GROWTH = 1.5


@dataclass(frozen=True)
class HealthReport:
    ok: bool
    timed_out: bool
    statuses: tuple[tuple[ResourceId, Status], ...]
    explanations: tuple[tuple[ResourceId, tuple[str, ...]], ...] = ()

    @property
    def unhealthy(self) -> list[tuple[ResourceId, Status]]:
        return [(r, s) for r, s in self.statuses if not s.ready]


def _index(objs: Sequence[dict[str, Any]]) -> dict[tuple[str, str], list[ResourceId]]:
    by_kind: dict[tuple[str, str], list[ResourceId]] = {}
    for obj in objs:
        key = (str(obj.get("apiVersion")), str(obj.get("kind")))
        by_kind.setdefault(key, []).append(ResourceId.of(obj))
    return by_kind


def _read(kube: Kube, selector: str | None, key: tuple[str, str], ids: list[ResourceId]
          ) -> dict[ResourceId, dict[str, Any]]:
    """The live objects of one kind: a GET each for one or two, else one LIST by label."""
    api_version, kind = key
    live: dict[ResourceId, dict[str, Any]] = {}
    if len(ids) <= 2 or not selector:
        for rid in ids:
            got = kube.get(api_version, kind, rid.namespace, rid.name)
            if got is not None:
                got.setdefault("apiVersion", api_version)
                got.setdefault("kind", kind)
                live[rid] = got
    else:
        for item in kube.list(api_version, kind, label_selector=selector):
            live[ResourceId.of(item)] = item
    return live


def wait_healthy(
    kube: Kube,
    objects: Sequence[dict[str, Any]],
    *,
    selector: str | None,
    deadline: float,
    on_wait: Callable[[list[tuple[ResourceId, Status]]], None] | None = None,
    poll: float = POLL_SECONDS,
    concurrency: int = 8,
) -> HealthReport:
    """Wait until every object is Ready, one is Failed, or `deadline` (time.monotonic).
    Polls after FIRST_POLL_SECONDS, then ever less often, at most every `poll` seconds;
    the kinds of one poll are read `concurrency` at a time."""
    interval = min(FIRST_POLL_SECONDS, poll)
    pending = _index(objects)
    statuses: dict[ResourceId, Status] = {}
    live_objs: dict[ResourceId, dict[str, Any]] = {}
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        while True:
            work = list(pending.items())
            reads = pool.map(lambda kv: _read(kube, selector, kv[0], kv[1]), work)
            for (key, ids), live in zip(work, reads, strict=True):
                still: list[ResourceId] = []
                for rid in ids:
                    obj = live.get(rid)
                    st = status_of(obj) if obj is not None else Status(
                        Health.IN_PROGRESS, "not found yet")
                    statuses[rid] = st
                    if obj is not None:
                        live_objs[rid] = obj
                    if not st.ready:
                        still.append(rid)
                if still:
                    pending[key] = still
                else:
                    del pending[key]
            waiting = sorted(((r, s) for r, s in statuses.items() if not s.ready),
                             key=lambda x: x[0])
            failed = [(r, s) for r, s in waiting if s.health is Health.FAILED]
            if not waiting:
                return HealthReport(True, False, tuple(sorted(statuses.items())))
            timed_out = time.monotonic() >= deadline
            if failed or timed_out:
                targets = failed or waiting
                explanations = tuple(
                    (r, tuple(explain(kube, live_objs.get(r), r))) for r, _ in targets[:10]
                )
                return HealthReport(False, timed_out and not failed,
                                    tuple(sorted(statuses.items())), explanations)
            if on_wait is not None:
                on_wait(waiting)
            time.sleep(min(interval, max(0.0, deadline - time.monotonic())))
            interval = min(poll, interval * POLL_GROWTH)


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
    except Exception:  # events are a best-effort explanation
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
    if rid.kind in ("Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet"):
        selector = _selector(obj)
        if selector:
            try:
                pods = kube.list("v1", "Pod", namespace=rid.namespace, label_selector=selector)
            except Exception:  # best effort
                pods = []
            for pod in pods[:3]:
                lines.extend(_pod_lines(kube, pod))
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
