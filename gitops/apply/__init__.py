"""Apply a cluster's rendered objects with validation, ordering, health, prune and rollback.

    calculate(target, objects, options=..., redactor=...)  -> ChangeSet (read-only)
    execute(change_set, options, progress)                 -> ApplyResult (under the lease)
    apply_objects(...)                                     calculate, then execute
    rollback_to(target, revision=...), history(target)

The modules, by noun: `options` (Target, ApplyOptions), `changeset` (Action, Change,
ChangeSet), `calculate`, `execute`, `prepare` (the desired set, deferred objects), `send`
(server-side apply of many), `phases` (phase by phase, and the waits), `wait` (health),
`prune`, `rollback` (the automatic one), `history` (rollback_to, history), `lease`,
`order`, `compare` (the no-change test), `results` (what an apply returns), `report`
(the commands' text). Kubernetes I/O is gitops.kube's; apply imports nothing that imports
apply.
"""

from __future__ import annotations

from gitops.apply.calculate import calculate
from gitops.apply.changeset import Action, Change, ChangeSet
from gitops.apply.execute import apply_objects, execute
from gitops.apply.history import history, rollback_to
from gitops.apply.lease import LeaseHeldError
from gitops.apply.options import ApplyOptions, Progress, Target
from gitops.apply.prune import MassPruneError
from gitops.apply.results import (
    ApplyResult,
    Failure,
    FailureStage,
    ObjectFailure,
    ObjectOutcome,
    Outcome,
    ProgressEvent,
    Rejection,
    RollbackResult,
    Stage,
)

__all__ = [
    "Action",
    "ApplyOptions",
    "ApplyResult",
    "Change",
    "ChangeSet",
    "Failure",
    "FailureStage",
    "LeaseHeldError",
    "MassPruneError",
    "ObjectFailure",
    "ObjectOutcome",
    "Outcome",
    "Progress",
    "ProgressEvent",
    "Rejection",
    "RollbackResult",
    "Stage",
    "Target",
    "apply_objects",
    "calculate",
    "execute",
    "history",
    "rollback_to",
]
