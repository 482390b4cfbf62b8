"""One execution of an apply or rollback: where, how, and when its current wait ends."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from gitops.apply.options import ApplyOptions, Progress, Target
from gitops.apply.stop import Stop
from gitops.redact import Redactor


@dataclass
class Run:
    """One execution: where, how, the run's redactor and progress, the deadline of the
    current wait (time.monotonic), and the run's Stop (checked between phases and in
    every wait; while `rolling_back`, only a second request stops)."""

    target: Target
    options: ApplyOptions
    redactor: Redactor
    progress: Progress
    deadline: float = 0.0
    stop: Stop = field(default_factory=Stop)
    rolling_back: bool = False

    def restart_clock(self, limit: float | None = None) -> None:
        seconds = self.options.policy.timeout
        self.deadline = time.monotonic() + (seconds if limit is None else min(seconds, limit))

    @property
    def concurrency(self) -> int:
        return self.options.policy.concurrency

    def check(self) -> None:
        self.stop.check(rolling_back=self.rolling_back)

    def sleep(self, seconds: float) -> None:
        self.stop.sleep(seconds, rolling_back=self.rolling_back)
