"""Stopping an apply from outside it: a signal (set by the CLI's handler) or the loss of the
cluster's lease (set by the lease's renewal thread).

A `Stop` is created by the caller and handed to `execute`, which checks it at safe points
only: before the lease is used, between phases, and in every wait (its `sleep` returns early),
never in the middle of a request. The first request stops the apply, which then rolls back
to the previous revision; a second request (a second signal), or a lost lease, abandons
the rollback too. Signal handlers run only in the main thread, while applies may run in
worker threads (one per cluster): the handler only appends to a list (no lock, so it is safe
in a handler) and every apply sees it at its next safe point. An apply's own Stop has the
caller's as its parent, so that losing one cluster's lease stops that apply alone.
"""

from __future__ import annotations

import signal
import time
from enum import StrEnum

# How long a stopped apply sleeps at most before it looks again.
_SLICE = 0.1


class StopReason(StrEnum):
    SIGINT = "SIGINT"
    SIGTERM = "SIGTERM"
    LEASE_LOST = "lost lease"

    @classmethod
    def of_signal(cls, signum: int) -> StopReason:
        return cls.SIGTERM if signum == signal.SIGTERM else cls.SIGINT

    @property
    def is_signal(self) -> bool:
        return self is not StopReason.LEASE_LOST


class Stopped(Exception):
    """Raised at a safe point of an apply that was asked to stop; `execute` catches it."""

    def __init__(self, reason: StopReason, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}{': ' + detail if detail else ''}")


class Stop:
    """Requests to stop, oldest first (a plain list: appending is atomic, so a signal
    handler may do it)."""

    def __init__(self, parent: Stop | None = None) -> None:
        self._parent = parent
        self._requests: list[tuple[StopReason, str]] = []

    def request(self, reason: StopReason, detail: str = "") -> None:
        self._requests.append((reason, detail))

    @property
    def requests(self) -> list[tuple[StopReason, str]]:
        own = list(self._requests)
        return (self._parent.requests if self._parent is not None else []) + own

    @property
    def requested(self) -> bool:
        return bool(self.requests)

    @property
    def reason(self) -> StopReason | None:
        reqs = self.requests
        lost = [r for r, _ in reqs if r is StopReason.LEASE_LOST]
        return lost[0] if lost else (reqs[0][0] if reqs else None)

    @property
    def detail(self) -> str:
        reason = self.reason
        return next((d for r, d in self.requests if r is reason), "")

    @property
    def lease_lost(self) -> bool:
        return any(r is StopReason.LEASE_LOST for r, _ in self.requests)

    @property
    def abandon(self) -> bool:
        """Skip the rollback too: a second signal, or a lost lease (another apply may be
        working on the cluster now)."""
        return len(self.requests) >= 2 or self.lease_lost

    def check(self, *, rolling_back: bool = False) -> None:
        """Raise Stopped when asked to stop (while rolling back: only when asked again)."""
        if self.abandon if rolling_back else self.requested:
            reason = self.reason
            assert reason is not None
            raise Stopped(reason, self.detail)

    def sleep(self, seconds: float, *, rolling_back: bool = False) -> None:
        """time.sleep that ends early (raising Stopped) when a stop is requested."""
        end = time.monotonic() + seconds
        while True:
            self.check(rolling_back=rolling_back)
            left = end - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(left, _SLICE))
