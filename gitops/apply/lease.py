"""One apply per cluster at a time: a coordination.k8s.io/v1 Lease in the records namespace.

The holder renews the lease while it works. A second apply finds the lease held and stops,
naming the holder and the lease's age. A lease not renewed within its duration is stale (its
holder died): it is reported, and taken over only with --break-lease; except when its holder
is provably gone (an earlier run in this same process, or a process of this host that no
longer exists), which lets a rerun after a crash or a lost connection converge.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import threading
import uuid
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from gitops.errors import ApplyError, ClusterError
from gitops.inventory import current_user
from gitops.kube import Kube, KubeApiError

LEASE_SECONDS = 60
_ENDED_RUNS: set[str] = set()  # holder identities of runs of this process that finished


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


@dataclass(frozen=True)
class LeaseState:
    holder: str
    acquired: dt.datetime | None
    renewed: dt.datetime | None
    duration: int

    def age(self, now: dt.datetime) -> float:
        since = self.acquired or self.renewed or now
        return (now - since).total_seconds()

    def stale(self, now: dt.datetime) -> bool:
        last = self.renewed or self.acquired
        return last is None or (now - last).total_seconds() > self.duration


def _holder_gone(holder: str) -> bool:
    if holder in _ENDED_RUNS:
        return True
    # holder format: user@host pid=N run=ID
    try:
        who, rest = holder.split(" ", 1)
        host = who.split("@", 1)[1]
        pid = int(rest.split("pid=", 1)[1].split()[0])
    except (IndexError, ValueError):
        return False
    if host != socket.gethostname() or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False


class ClusterLease:
    """Context manager: acquire on enter (or raise LeaseHeldError), renew in a background
    thread, release on exit."""

    def __init__(self, kube: Kube, *, cluster: str, namespace: str,
                 break_lease: bool = False, duration: int = LEASE_SECONDS) -> None:
        self.kube = kube
        self.cluster = cluster
        self.namespace = namespace
        self.break_lease = break_lease
        self.duration = duration
        self.holder = (f"{current_user()}@{socket.gethostname()} pid={os.getpid()} "
                       f"run={uuid.uuid4().hex[:8]}")
        self.taken_over: LeaseState | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def path(self) -> str:
        return (f"/apis/coordination.k8s.io/v1/namespaces/{self.namespace}/leases/"
                f"{lease_name(self.cluster)}")

    def _body(self, now: dt.datetime, resource_version: str | None = None) -> dict[str, Any]:
        meta: dict[str, Any] = {"name": lease_name(self.cluster), "namespace": self.namespace,
                                "labels": {"app.kubernetes.io/managed-by": "stackctl"}}
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
        )
        gone = _holder_gone(state.holder)
        if not gone and not state.stale(now):
            raise LeaseHeldError(
                f"another apply is running on cluster {self.cluster!r}: lease "
                f"{self.namespace}/{lease_name(self.cluster)} is held by {state.holder} "
                f"since {_age(state.age(now))} ago.",
                hint="Wait for it to finish and run the command again.",
            )
        if not gone and not self.break_lease:
            last = state.renewed or state.acquired or now
            raise LeaseHeldError(
                f"cluster {self.cluster!r} has a stale apply lease "
                f"{self.namespace}/{lease_name(self.cluster)}: held by {state.holder}, "
                f"acquired {_age(state.age(now))} ago, not renewed for "
                f"{_age((now - last).total_seconds())} (its duration is {state.duration}s). "
                f"The apply that held it probably died.",
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

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.duration / 3):
            try:
                live = self.kube.request("GET", self.path)
                spec = live.get("spec") or {}
                if spec.get("holderIdentity") != self.holder:
                    return
                spec["renewTime"] = _micro(dt.datetime.now(dt.UTC))
                self.kube.request("PUT", self.path, body=live)
            except ClusterError:
                continue  # the main thread reports connection problems

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
