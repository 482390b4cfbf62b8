"""The values a rollout returns and reports: per cluster, per wave, in all; and the events
it reports on the way (the core never prints)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from gitops.apply.results import ProgressEvent


class Outcome(StrEnum):
    """What the rollout did with one cluster."""

    DEPLOYED = "deployed"  # a new revision, applied and healthy
    UNCHANGED = "unchanged"  # nothing to change: its current revision is this render
    SKIPPED = "skipped"  # --resume: its records show this commit deployed; not touched
    FAILED = "failed"  # it could not be applied, or the apply failed (and was rolled back)
    NOT_STARTED = "not started"  # the rollout stopped before it
    PLANNED = "planned"  # --dry-run: what it would change

    @property
    def ok(self) -> bool:
        """The cluster runs this commit's render (or would be changed to, in a dry run)."""
        return self in (Outcome.DEPLOYED, Outcome.UNCHANGED, Outcome.SKIPPED, Outcome.PLANNED)


@dataclass(frozen=True)
class Changes:
    """What a dry run found for a cluster: the counts, and one line per object sent or
    deleted (`+ Kind/ns/name`, `~ ...`, `- ...`)."""

    create: int = 0
    update: int = 0
    delete: int = 0
    unchanged: int = 0
    lines: tuple[str, ...] = ()

    def summary(self) -> str:
        return (f"{self.create} to create, {self.update} to update, {self.delete} to delete, "
                f"{self.unchanged} unchanged")


@dataclass(frozen=True)
class ClusterResult:
    """One cluster's line of the result table. `reason` is one line (a failure's cause and
    what its rollback did); `started`/`ended` are seconds since the rollout began."""

    cluster: str
    wave: int
    outcome: Outcome
    revision: int | None = None
    reason: str = ""
    rolled_back_to: int | None = None
    started: float | None = None
    ended: float | None = None
    changes: Changes | None = None

    @property
    def seconds(self) -> float | None:
        if self.started is None or self.ended is None:
            return None
        return self.ended - self.started


@dataclass(frozen=True)
class WaveResult:
    wave: int
    clusters: tuple[ClusterResult, ...]
    started: float | None = None  # seconds since the rollout began; None: never started
    ended: float | None = None
    baked: float = 0.0  # seconds waited after it before the next wave

    @property
    def seconds(self) -> float | None:
        if self.started is None or self.ended is None:
            return None
        return self.ended - self.started


@dataclass(frozen=True)
class RolloutResult:
    waves: tuple[WaveResult, ...]
    commit: str | None
    max_parallel: int
    max_failures: int
    dry_run: bool = False
    stopped: str = ""  # why it stopped before the end ("" when it went through)
    interrupted: bool = False
    seconds: float = 0.0
    # Unexpected exceptions (bugs) met while applying a cluster; the cluster is FAILED and
    # the command writes their tracebacks to a log.
    crashes: tuple[BaseException, ...] = field(default=(), compare=False, repr=False)

    @property
    def clusters(self) -> tuple[ClusterResult, ...]:
        return tuple(c for w in self.waves for c in w.clusters)

    @property
    def ok(self) -> bool:
        """Every selected cluster runs this commit's render (exit code 0)."""
        return all(c.outcome.ok for c in self.clusters) and not self.interrupted

    def count(self, outcome: Outcome) -> int:
        return sum(1 for c in self.clusters if c.outcome is outcome)


class EventKind(StrEnum):
    WAVE = "wave"  # a wave starts
    START = "start"  # a cluster starts
    STEP = "step"  # a step of a cluster's apply (event.step)
    DONE = "done"  # a cluster ended (event.result)
    BAKE = "bake"  # waiting bakeTime after a wave
    CHECK = "check"  # checking that a wave's clusters are healthy
    STOP = "stop"  # no new cluster starts (event.message says why)


@dataclass(frozen=True)
class RolloutEvent:
    kind: EventKind
    wave: int
    cluster: str = ""
    message: str = ""
    step: ProgressEvent | None = None
    result: ClusterResult | None = None
