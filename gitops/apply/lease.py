"""One apply per cluster at a time: a coordination.k8s.io/v1 Lease in the records namespace.

The holder is one run of stackctl, named by a random run id written into the lease
(`holderIdentity` "user@host pid=N run=ID", and the annotation `stackctl.dev/holder` with
what tells a crashed local run apart). The holder renews the lease while it works; a
second apply finds it held and stops, naming the holder and the lease's age.

- A fresh lease (renewed within its duration, 60 s) is never taken over, whoever holds it:
  a process id says nothing across PID namespaces (containers, CI runners with one
  hostname), so a holder is never presumed dead while its lease is fresh. The only
  exception is a run of this same process that has ended (its run id is known here).
- A stale lease (not renewed within its duration) is reported with its holder and age and
  taken over only with --break-lease, unless its holder is provably gone: it ran on this
  host, in this boot and this PID namespace, and its process no longer exists (or the pid
  now names another process, started later).
- The holder stops when it loses the lease: when a renewal finds another holder (or no
  lease), or when it could not renew for two thirds of the duration (a stale lease may be
  taken over by then). `on_lost` is told why; the apply stops at its next safe point.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from gitops.errors import ApplyError, ClusterError
from gitops.inventory import current_user
from gitops.kube import Kube, KubeApiError

LEASE_SECONDS = 60
HOLDER_ANNOTATION = "stackctl.dev/holder"
_ENDED_RUNS: set[str] = set()  # holder identities of runs of this process that ended


class LeaseHeldError(ApplyError):
    """Another apply holds the cluster's lease."""


def lease_name(cluster: str) -> str:
    return f"stackctl-{cluster}"


def _parse_time(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def _micro(now: dt.datetime) -> str:
    return now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _age(seconds: float) -> str:
    s = int(seconds)
    if s < 120:
        return f"{s}s"
    if s < 7200:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except OSError:
        return ""


def _start_time(pid: int) -> str:
    """The process's start time in clock ticks after boot (proc(5), /proc/PID/stat field
    22); "" when there is no such process (or no /proc)."""
    stat = _read(f"/proc/{pid}/stat")
    # The command name (field 2) is in parentheses and may hold spaces: split after it.
    fields = stat.rsplit(")", 1)[-1].split() if stat else []
    return fields[19] if len(fields) > 19 else ""


def _pid_namespace() -> str:
    try:
        return str(Path("/proc/self/ns/pid").readlink())
    except OSError:
        return ""


@dataclass(frozen=True)
class Holder:
    """One run of stackctl holding (or wanting) a lease: `run` is random per run; the rest
    says where it runs, for a person and to tell whether a local holder is gone."""

    run: str
    user: str
    host: str
    pid: int
    boot: str = ""  # /proc/sys/kernel/random/boot_id
    pid_namespace: str = ""  # /proc/self/ns/pid
    started: str = ""  # the process's start time (ticks after boot)

    @classmethod
    def this_run(cls) -> Holder:
        pid = os.getpid()
        return cls(run=uuid.uuid4().hex, user=current_user(), host=socket.gethostname(),
                   pid=pid, boot=_read("/proc/sys/kernel/random/boot_id"),
                   pid_namespace=_pid_namespace(), started=_start_time(pid))

    @property
    def identity(self) -> str:
        return f"{self.user}@{self.host} pid={self.pid} run={self.run}"

    def annotation(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))

    @classmethod
    def of_lease(cls, lease: dict[str, Any]) -> Holder | None:
        ann = ((lease.get("metadata") or {}).get("annotations") or {}).get(HOLDER_ANNOTATION)
        try:
            data = json.loads(str(ann))
            return cls(run=str(data["run"]), user=str(data["user"]), host=str(data["host"]),
                       pid=int(data["pid"]), boot=str(data.get("boot") or ""),
                       pid_namespace=str(data.get("pid_namespace") or ""),
                       started=str(data.get("started") or ""))
        except (ValueError, TypeError, KeyError):
            return None

    def gone(self) -> bool:
        """Provably not running: it ran on this host, in this boot and in this PID
        namespace (so its pid means what it means here), and that pid is now no process,
        or a process started at another time (the pid was reused)."""
        me = Holder.this_run()
        if not (self.boot and self.pid_namespace and self.started):
            return False
        if (self.host, self.boot, self.pid_namespace) != (me.host, me.boot, me.pid_namespace):
            return False
        if self.pid == me.pid:
            return False  # this process: an ended run of it is known by its run id
        return _start_time(self.pid) != self.started


@dataclass(frozen=True)
class LeaseState:
    holder: str
    acquired: dt.datetime | None
    renewed: dt.datetime | None
    duration: int
    info: Holder | None = None

    def age(self, now: dt.datetime) -> float:
        since = self.acquired or self.renewed or now
        return (now - since).total_seconds()

    def idle(self, now: dt.datetime) -> float:
        last = self.renewed or self.acquired
        return (now - last).total_seconds() if last is not None else float("inf")

    def stale(self, now: dt.datetime) -> bool:
        return self.idle(now) > self.duration


class ClusterLease:
    """Context manager: acquire on enter (or raise LeaseHeldError), renew in a background
    thread, release on exit. `on_lost(why)` is called (from the renewal thread) when the
    lease is lost."""

    def __init__(self, kube: Kube, *, cluster: str, namespace: str,
                 break_lease: bool = False, duration: int = LEASE_SECONDS,
                 on_lost: Callable[[str], None] | None = None) -> None:
        self.kube = kube
        self.cluster = cluster
        self.namespace = namespace
        self.break_lease = break_lease
        self.duration = duration
        self.me = Holder.this_run()
        self.holder = self.me.identity
        self.taken_over: LeaseState | None = None
        self.lost = ""  # why the lease was lost, once it was
        self._on_lost = on_lost
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def path(self) -> str:
        return (f"/apis/coordination.k8s.io/v1/namespaces/{self.namespace}/leases/"
                f"{lease_name(self.cluster)}")

    @property
    def where(self) -> str:
        return f"{self.namespace}/{lease_name(self.cluster)}"

    def _body(self, now: dt.datetime, resource_version: str | None = None) -> dict[str, Any]:
        meta: dict[str, Any] = {"name": lease_name(self.cluster), "namespace": self.namespace,
                                "labels": {"app.kubernetes.io/managed-by": "stackctl"},
                                "annotations": {HOLDER_ANNOTATION: self.me.annotation()}}
        if resource_version:
            meta["resourceVersion"] = resource_version
        return {
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": meta,
            "spec": {"holderIdentity": self.holder, "leaseDurationSeconds": self.duration,
                     "acquireTime": _micro(now), "renewTime": _micro(now)},
        }

    def acquire(self) -> None:
        now = dt.datetime.now(dt.UTC)
        collection = self.path.rsplit("/", 1)[0]
        try:
            self.kube.request("POST", collection, body=self._body(now))
        except KubeApiError as e:
            if e.code != 409:
                raise
            self._take_over(now)
        self._thread = threading.Thread(target=self._renew_loop, daemon=True,
                                        name=f"lease-{self.cluster}")
        self._thread.start()

    def _take_over(self, now: dt.datetime) -> None:
        live = self.kube.request("GET", self.path)
        spec = live.get("spec") or {}
        state = LeaseState(
            holder=str(spec.get("holderIdentity") or "unknown"),
            acquired=_parse_time(spec.get("acquireTime")),
            renewed=_parse_time(spec.get("renewTime")),
            duration=int(spec.get("leaseDurationSeconds") or self.duration),
            info=Holder.of_lease(live),
        )
        ended = state.holder in _ENDED_RUNS  # a run of this process, finished
        gone = ended or (state.info is not None and state.info.gone())
        if not ended and not state.stale(now):
            raise LeaseHeldError(
                f"another apply is running on cluster {self.cluster!r}: lease {self.where} "
                f"is held by {state.holder} since {_age(state.age(now))} ago"
                + (self._expires(state, now) if gone else "") + ".",
                hint="Wait for it to finish and run the command again.",
            )
        if not gone and not self.break_lease:
            raise LeaseHeldError(
                f"cluster {self.cluster!r} has a stale apply lease {self.where}: held by "
                f"{state.holder}, acquired {_age(state.age(now))} ago, not renewed for "
                f"{_age(state.idle(now))} (its duration is {state.duration}s). The apply "
                "that held it probably died.",
                hint="Make sure no apply is running on this cluster, then run the command "
                     "again with --break-lease to take the lease over.",
            )
        rv = str((live.get("metadata") or {}).get("resourceVersion") or "")
        try:
            self.kube.request("PUT", self.path, body=self._body(now, rv))
        except KubeApiError as e:
            if e.code == 409:  # someone else took it between our read and write
                raise LeaseHeldError(
                    f"another apply took the lease of cluster {self.cluster!r} just now.",
                    hint="Wait for it to finish and run the command again.",
                ) from e
            raise
        self.taken_over = state

    def _expires(self, state: LeaseState, now: dt.datetime) -> str:
        left = max(0, int(state.duration - state.idle(now)) + 1)
        return (f" (its process on this machine is gone: the lease becomes stale in {left}s, "
                "then a rerun here takes it over)")

    def _renew_loop(self) -> None:
        interval = self.duration / 3
        deadline = self.duration * 2 / 3  # renewDeadline < leaseDuration, as client-go's
        last_ok = time.monotonic()
        wait = interval
        while not self._stop.wait(wait):
            try:
                live = self.kube.request("GET", self.path)
                holder = (live.get("spec") or {}).get("holderIdentity")
                if holder != self.holder:
                    self._lose(f"lease {self.where} is now held by {holder or 'nobody'}")
                    return
                live["spec"]["renewTime"] = _micro(dt.datetime.now(dt.UTC))
                self.kube.request("PUT", self.path, body=live)
                last_ok, wait = time.monotonic(), interval
            except KubeApiError as e:
                if e.code == 404:
                    self._lose(f"lease {self.where} was deleted")
                    return
                wait = self._failed(last_ok, deadline, interval, e)
            except ClusterError as e:
                wait = self._failed(last_ok, deadline, interval, e)
            if wait < 0:
                return

    def _failed(self, last_ok: float, deadline: float, interval: float,
                e: ClusterError) -> float:
        """After a failed renewal: how long to wait before the next try; -1 when the
        lease is lost (not renewed for `deadline` seconds)."""
        idle = time.monotonic() - last_ok
        if idle >= deadline:
            self._lose(f"lease {self.where} could not be renewed for {int(idle)}s "
                       f"({e.message}); another apply may take it over")
            return -1
        return min(interval, 1.0, max(0.1, deadline - idle))

    def _lose(self, why: str) -> None:
        self.lost = why
        if self._on_lost is not None:
            self._on_lost(why)

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        _ENDED_RUNS.add(self.holder)
        try:
            live = self.kube.request("GET", self.path)
            if (live.get("spec") or {}).get("holderIdentity") == self.holder:
                rv = (live.get("metadata") or {}).get("resourceVersion")
                self.kube.request("DELETE", self.path, body={
                    "apiVersion": "v1", "kind": "DeleteOptions",
                    "preconditions": {"resourceVersion": rv},
                })
        except ClusterError:
            pass  # unreachable: the lease expires, and this process knows the run ended

    def __enter__(self) -> ClusterLease:
        self.acquire()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()
