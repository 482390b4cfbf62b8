"""The scheduler of a rollout: waves in order, up to `max_parallel` clusters at once within a
wave, and the rules that stop it.

    for each wave (lower first):
        start clusters while fewer than max_parallel run, until the wave is done; once more
        than max_failures clusters failed (or `stop` is set: SIGINT), start no new one and
        let the running ones finish (each apply rolls its own cluster back on failure)
        -> stopped: every cluster not started is NOT_STARTED, no later wave starts
        before the next wave: wait bake_time, then check that every cluster of the wave is
        healthy (its deployed revision, live); one that is not stops the rollout

`deploy` and `check` do the work (gitops.rollout.deploy against clusters; narrow tests pass
their own). Both run in worker threads: each touches only its own cluster's client and
returns a value; `progress` is called from those threads too and must be thread-safe.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace

from gitops.cluster import Cluster
from gitops.rollout.results import (
    ClusterResult,
    EventKind,
    Outcome,
    RolloutEvent,
    RolloutResult,
    WaveResult,
)
from gitops.rollout.settings import RolloutSettings
from gitops.rollout.waves import Wave

Deploy = Callable[[Cluster], ClusterResult]
Check = Callable[[Cluster], "str | None"]  # None: healthy; else why not, in one line
RolloutProgress = Callable[[RolloutEvent], None]

# How often the scheduler looks at `stop` while it waits for running clusters.
TICK_SECONDS = 0.25


@dataclass
class _State:
    settings: RolloutSettings
    stop: threading.Event
    progress: RolloutProgress
    t0: float
    failures: int = 0
    stopped: str = ""
    crashes: list[BaseException] | None = None

    def now(self) -> float:
        return time.monotonic() - self.t0

    def halt(self, wave: int, why: str) -> None:
        if not self.stopped:
            self.stopped = why
            self.progress(RolloutEvent(EventKind.STOP, wave, message=why))


def run_waves(waves: Sequence[Wave], *, deploy: Deploy, check: Check | None,
              settings: RolloutSettings, stop: threading.Event,
              progress: RolloutProgress, commit: str | None = None,
              dry_run: bool = False) -> RolloutResult:
    """Go through `waves`; see the module's docstring. In a dry run no failure stops it and
    there is no bake or health check: every cluster is calculated."""
    state = _State(settings, stop, progress, time.monotonic(), crashes=[])
    out: list[WaveResult] = []
    with ThreadPoolExecutor(max_workers=settings.max_parallel,
                            thread_name_prefix="rollout") as pool:
        for i, wave in enumerate(waves):
            if state.stopped or stop.is_set():
                if stop.is_set():
                    state.halt(wave.number, "interrupted")
                out.append(WaveResult(wave.number, tuple(
                    ClusterResult(c.name, wave.number, Outcome.NOT_STARTED)
                    for c in wave.clusters)))
                continue
            result = _run_wave(pool, wave, deploy, state, dry_run=dry_run)
            last = i == len(waves) - 1
            if not (last or dry_run or state.stopped):
                result = _settle(pool, wave, result, check, state)
            out.append(result)
    assert state.crashes is not None
    return RolloutResult(
        tuple(out), commit, settings.max_parallel, settings.max_failures, dry_run=dry_run,
        stopped=state.stopped, interrupted=stop.is_set(), seconds=state.now(),
        crashes=tuple(state.crashes))


def _run_wave(pool: ThreadPoolExecutor, wave: Wave, deploy: Deploy, state: _State, *,
              dry_run: bool) -> WaveResult:
    state.progress(RolloutEvent(EventKind.WAVE, wave.number,
                                message=f"wave {wave.number}: {', '.join(wave.names)}"))
    started = state.now()
    queue = list(wave.clusters)
    running: dict[Future[ClusterResult], Cluster] = {}
    results: dict[str, ClusterResult] = {}
    limit = state.settings.max_parallel
    while queue or running:
        while queue and len(running) < limit and not state.stopped:
            cluster = queue.pop(0)
            state.progress(RolloutEvent(EventKind.START, wave.number, cluster.name))
            running[pool.submit(_guarded, deploy, cluster, state)] = cluster
        if not running:
            break
        done, _ = wait(running, timeout=TICK_SECONDS, return_when=FIRST_COMPLETED)
        for future in done:
            cluster = running.pop(future)
            r = replace(future.result(), wave=wave.number)
            results[cluster.name] = r
            state.progress(RolloutEvent(EventKind.DONE, wave.number, cluster.name, result=r))
            if r.outcome is Outcome.FAILED and not dry_run:
                state.failures += 1
        if state.failures > state.settings.max_failures:
            state.halt(wave.number, f"{state.failures} cluster(s) failed, more than "
                                    f"maxFailures ({state.settings.max_failures})")
        if state.stop.is_set():
            state.halt(wave.number, "interrupted")
    for cluster in queue:
        results[cluster.name] = ClusterResult(cluster.name, wave.number, Outcome.NOT_STARTED)
    return WaveResult(wave.number, tuple(results[c.name] for c in wave.clusters),
                      started, state.now())


def _guarded(deploy: Deploy, cluster: Cluster, state: _State) -> ClusterResult:
    """`deploy` in a worker, timed; a bug in it fails its cluster, not the rollout's
    bookkeeping (the command writes the traceback to a log)."""
    begin = state.now()
    try:
        r = deploy(cluster)
    except Exception as e:
        assert state.crashes is not None
        state.crashes.append(e)
        r = ClusterResult(cluster.name, cluster.wave, Outcome.FAILED,
                          reason=f"stackctl failed unexpectedly ({type(e).__name__}: {e})")
    return replace(r, started=begin, ended=state.now())


def _settle(pool: ThreadPoolExecutor, wave: Wave, result: WaveResult, check: Check | None,
            state: _State) -> WaveResult:
    """Before the next wave: bake_time, then every reached cluster of the wave checked
    healthy. A cluster that is not stops the rollout: a deployed one becomes FAILED."""
    bake = state.settings.bake_time
    if bake > 0:
        state.progress(RolloutEvent(EventKind.BAKE, wave.number,
                                    message=f"baking wave {wave.number} for {bake:g}s"))
        if state.stop.wait(bake):
            state.halt(wave.number, "interrupted")
            return replace(result, baked=bake)
    if check is None:
        return replace(result, baked=bake)
    reached = [c for c, r in zip(wave.clusters, result.clusters, strict=True)
               if r.outcome is not Outcome.NOT_STARTED]
    state.progress(RolloutEvent(EventKind.CHECK, wave.number, message=(
        f"checking that the {len(reached)} cluster(s) of wave {wave.number} are healthy")))
    verdicts = dict(zip((c.name for c in reached),
                        pool.map(lambda c: _checked(check, c, state), reached), strict=True))
    clusters: list[ClusterResult] = []
    for r in result.clusters:
        why = verdicts.get(r.cluster)
        if why is None:
            clusters.append(r)
            continue
        if r.outcome.ok:
            state.failures += 1
            r = replace(r, outcome=Outcome.FAILED,
                        reason=f"not healthy at the end of wave {wave.number}: {why}")
        else:
            r = replace(r, reason=f"{r.reason}; still not healthy: {why}")
        clusters.append(r)
        state.progress(RolloutEvent(EventKind.DONE, wave.number, r.cluster, result=r))
        state.halt(wave.number, f"cluster {r.cluster} is not healthy at the end of wave "
                                f"{wave.number}")
    return replace(result, clusters=tuple(clusters), baked=bake)


def _checked(check: Check, cluster: Cluster, state: _State) -> str | None:
    try:
        return check(cluster)
    except Exception as e:  # a bug; and a check that cannot run cannot call the wave healthy
        assert state.crashes is not None
        state.crashes.append(e)
        return f"stackctl failed unexpectedly checking it ({type(e).__name__}: {e})"
