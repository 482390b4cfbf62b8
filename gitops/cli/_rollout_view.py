"""The rollout's progress on stderr, with every line scrubbed by the run's redactor.

On a terminal, every running cluster has its own line, rewritten in place with its latest
step, below the lines that stay (a wave starts, a cluster ends, the rollout stops), as
`docker compose` and BuildKit show parallel work. Elsewhere (a CI log), each step is a
line of its own prefixed with the cluster's name, and a cluster's health wait is repeated
only when what it waits on changes or every WAIT_REPEAT_SECONDS.

Events arrive from the scheduler's worker threads: one lock orders every write.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from gitops.redact import Redactor
    from gitops.rollout import ClusterResult, RolloutEvent

WAIT_REPEAT_SECONDS = 10.0
_QUIET = {"apply", "done", "failed"}  # per object: too many; done, failed: the end line says it


def done_line(r: ClusterResult) -> str:
    from gitops.rollout.report import duration

    took = f" ({duration(r.seconds)})" if r.seconds is not None else ""
    if r.outcome == "deployed":
        return f"✓ {r.cluster}: revision {r.revision} deployed{took}"
    if r.outcome == "unchanged":
        return f"✓ {r.cluster}: no changes, revision {r.revision} is current{took}"
    if r.outcome == "skipped":
        return f"⏭ {r.cluster}: skipped, {r.reason}"
    if r.outcome == "planned" and r.changes is not None:
        return f"✓ {r.cluster}: {r.changes.summary()}{took}"
    return f"✗ {r.cluster}: {r.outcome}{took}: {r.reason}"


class FleetProgress:
    def __init__(self, redactor: Redactor, stream: TextIO, *, live: bool) -> None:
        self.redactor = redactor
        self.stream = stream
        self.live = live
        self._lock = threading.Lock()
        self._running: dict[str, str] = {}  # cluster -> its latest step, in start order
        self._drawn = 0  # live lines on screen
        self._last_wait: dict[str, tuple[str, float]] = {}

    def _safe(self, text: str) -> str:
        return self.redactor.text(text, pairs="=")

    def __call__(self, e: RolloutEvent) -> None:
        with self._lock:
            self._event(e)

    def _event(self, e: RolloutEvent) -> None:
        kind = str(e.kind)
        if kind == "start":
            self._running[e.cluster] = "starting"
            self._emit([], f"→ {e.cluster}: starting")
        elif kind == "step" and e.step is not None:
            self._step(e.cluster, str(e.step.stage), e.step.message, bool(e.step.pending))
        elif kind == "done" and e.result is not None:
            self._running.pop(e.cluster, None)
            self._last_wait.pop(e.cluster, None)
            self._emit([done_line(e.result)])
        elif kind == "wave":
            self._emit([f"== {e.message}"])
        elif kind == "stop":
            self._emit([f"!! stopping: {e.message}; no new cluster starts"
                        + (f", waiting for {len(self._running)} running" if self._running
                           else "")])
        else:  # bake, check
            self._emit([f"== {e.message}"])

    def _step(self, cluster: str, stage: str, message: str, pending: bool) -> None:
        if stage in _QUIET:
            return
        self._running[cluster] = message
        if self.live:
            self._emit([])
            return
        if stage == "wait" and pending:
            key, now = message.split(" [", 1)[0], time.monotonic()
            last = self._last_wait.get(cluster)
            if last is not None and last[0] == key and now - last[1] < WAIT_REPEAT_SECONDS:
                return
            self._last_wait[cluster] = (key, now)
        self._emit([f"  {cluster}: {message}"])

    def _emit(self, lines: list[str], plain: str | None = None) -> None:
        """Print `lines` to stay; on a terminal, redraw the running clusters below them."""
        if not self.live:
            for line in [*lines, *([plain] if plain else [])]:
                self.stream.write(self._safe(line) + "\n")
            self.stream.flush()
            return
        out = []
        if self._drawn:
            out.append(f"\x1b[{self._drawn}F\x1b[J")  # up to the live block; clear below
        out += [self._safe(line) + "\n" for line in lines]
        width = max((len(c) for c in self._running), default=0)
        live = [f"  {c:<{width}}  {self._safe(step)}" for c, step in self._running.items()]
        out += [self._fit(line) + "\n" for line in live]
        self._drawn = len(live)
        self.stream.write("".join(out))
        self.stream.flush()

    def _fit(self, line: str) -> str:
        import shutil

        cols = shutil.get_terminal_size((100, 24)).columns
        return line if len(line) < cols else line[:max(10, cols - 2)] + "…"

    def close(self) -> None:
        """Leave the terminal with no live block."""
        with self._lock:
            if self.live and self._drawn:
                self.stream.write(f"\x1b[{self._drawn}F\x1b[J")
                self.stream.flush()
                self._drawn = 0
