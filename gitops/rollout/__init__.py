"""Fleet rollout: many clusters, wave by wave, in parallel within a wave.

    rollout(stack, clusters=..., settings=..., redactor=..., stop=..., progress=...)
        -> RolloutResult

The modules, by noun: `settings` (stack.yaml's `rollout:`), `waves` (clusters grouped by
cluster.yaml's `wave`), `engine` (the scheduler: parallelism, maxFailures, bake, the health
check between waves, stop on SIGINT), `deploy` (one cluster: the same apply as `stackctl
apply`), `run` (render, then the engine), `state` (`.stackctl/rollout.json`, for
--resume), `results`, `report` (text, JSON, markdown), `fanout` (the clusters for a CI
matrix or a GitLab child pipeline). It builds on gitops.apply and gitops.render; only the
CLI imports it.
"""

from __future__ import annotations

from gitops.rollout.results import (
    Changes,
    ClusterResult,
    EventKind,
    Outcome,
    RolloutEvent,
    RolloutResult,
    WaveResult,
)
from gitops.rollout.run import rollout
from gitops.rollout.settings import RolloutSettings, load_settings
from gitops.rollout.waves import Wave, plan_waves

__all__ = [
    "Changes",
    "ClusterResult",
    "EventKind",
    "Outcome",
    "RolloutEvent",
    "RolloutResult",
    "RolloutSettings",
    "Wave",
    "WaveResult",
    "load_settings",
    "plan_waves",
    "rollout",
]
