"""Waiting, in one place: a backoff (delays growing from a first to a longest), a poll of a
condition until a deadline, and the retry of a request that failed transiently.

Polls start fast (a CRD is Established and most objects are ready a fraction of a second
after they are applied) and slow down, as kstatus' poller and kapp's waits do; retries
follow the server's Retry-After when it sends one (API Priority and Fairness does), else
their own backoff, as client-go's request retry does.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from gitops.errors import ClusterError
from gitops.kube.errors import KubeApiError, transient

T = TypeVar("T")


@dataclass(frozen=True)
class Backoff:
    """Delays from `first`, each `growth` times the one before, at most `longest`."""

    first: float
    growth: float
    longest: float

    def delays(self) -> Iterator[float]:
        delay = self.first
        while True:
            yield delay
            delay = min(self.longest, delay * self.growth)


# Health and discovery polls: 0.05 s, then half as long again each time, up to 1 s.
POLL = Backoff(first=0.05, growth=1.5, longest=1.0)
# Retries of a transient failure: 0.25 s, 0.5 s, 1 s, 2 s (four retries, then the error).
RETRY = Backoff(first=0.25, growth=2.0, longest=2.0)
RETRY_ATTEMPTS = 5
RETRY_AFTER_LIMIT = 10.0  # seconds: a longer Retry-After is cut to this


def poll(attempt: Callable[[], T | None], *, deadline: float,
         backoff: Backoff = POLL, sleep: Callable[[float], None] = time.sleep) -> T | None:
    """Call `attempt` until it returns a value, then return it; None once `deadline`
    (time.monotonic) has passed without one. The last attempt runs at the deadline.
    `sleep` waits between attempts (an apply's ends early, raising, when it is stopped)."""
    for delay in backoff.delays():
        result = attempt()
        if result is not None:
            return result
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        sleep(min(delay, left))
    raise AssertionError("unreachable: delays() never ends")


def retrying(send: Callable[[], T], *, verb: str, attempts: int = RETRY_ATTEMPTS,
             backoff: Backoff = RETRY, sleep: Callable[[float], None] = time.sleep) -> T:
    """`send()`, sent again after a transient failure (gitops.kube.errors.transient) up to
    `attempts` times in all; the last failure is raised as it is."""
    for n, delay in enumerate(backoff.delays(), start=1):
        try:
            return send()
        except ClusterError as e:
            if n >= attempts or not transient(e, verb):
                raise
            asked = e.retry_after if isinstance(e, KubeApiError) else None
            sleep(min(RETRY_AFTER_LIMIT, delay if asked is None else asked))
    raise AssertionError("unreachable: delays() never ends")
