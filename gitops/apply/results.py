"""The values an apply returns: per-object outcomes, rejections, the failure and rollback,
and the progress events it reports on the way."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from enum import StrEnum

from gitops.apply.wait import HealthReport
from gitops.errors import ClusterError
from gitops.immutable import is_refusal
from gitops.kube import KubeApiError, UnknownKindError
from gitops.redact import Redactor
from gitops.resource import ResourceId


class Stage(StrEnum):
    """The step of an apply a progress event reports."""

    LEASE = "lease"
    READ = "read"
    VALIDATE = "validate"
    PHASE = "phase"
    APPLY = "apply"  # one object applied (event.id)
    REPLACE = "replace"  # an object deleted to be re-created (event.id)
    MIGRATE = "migrate"  # a CRD's stored objects rewritten at its new storage version
    WAIT = "wait"
    PRUNE = "prune"
    RECORD = "record"
    ROLLBACK = "rollback"
    FAILED = "failed"
    DONE = "done"


@dataclass(frozen=True)
class ProgressEvent:
    """One step of an apply, for a progress display (the core never prints).

    `phase` names the phase being applied or waited on ("custom resource definitions",
    "the rollout", ...); `pending` the objects it still waits on with why (a wait event
    carries all of them, sorted), out of `total` objects in that step."""

    stage: Stage
    message: str
    id: ResourceId | None = None
    phase: str = ""
    pending: tuple[tuple[ResourceId, str], ...] = ()
    total: int = 0
    seconds_left: int | None = None  # of the apply's timeout, on wait events


class Outcome(StrEnum):
    """What an apply did to one object."""

    CREATED = "created"
    CONFIGURED = "configured"
    REPLACED = "replaced"  # deleted and re-created (the message says why)
    UNCHANGED = "unchanged"
    FAILED = "failed"
    SKIPPED = "skipped"  # not reached: the apply stopped at an earlier phase
    DELETED = "deleted"  # pruned
    GONE = "gone"  # to be pruned, and already absent
    KEPT = "kept"  # to be pruned, but of a protected kind


@dataclass(frozen=True)
class ObjectOutcome:
    id: ResourceId
    outcome: Outcome
    message: str = ""


@dataclass(frozen=True)
class Rejection:
    """An object the API server refused (in the dry run or the apply)."""

    id: ResourceId
    reason: str  # Invalid, Immutable, Conflict, Forbidden, NotFound, UnknownKind, ...
    message: str
    fields: tuple[str, ...] = ()
    managers: tuple[str, ...] = ()
    hint: str = ""

    def describe(self) -> str:
        where = f" (field {', '.join(self.fields)})" if self.fields else ""
        who = f" owned by {', '.join(self.managers)}" if self.managers else ""
        text = f"{self.id}: {self.reason}{where}{who}: {self.message}"
        return text + (f" {self.hint}" if self.hint else "")


@dataclass(frozen=True)
class ObjectFailure:
    id: ResourceId
    reason: str
    details: tuple[str, ...] = ()


class FailureStage(StrEnum):
    """Where an apply failed."""

    VALIDATE = "validate"  # the dry run of objects deferred behind a CRD or Namespace
    APPLY = "apply"
    HEALTH = "health"
    STOPPED = "stopped"  # a signal or a lost lease stopped it (ApplyResult.stopped says which)


@dataclass(frozen=True)
class Failure:
    stage: FailureStage
    summary: str
    objects: tuple[ObjectFailure, ...] = ()


@dataclass(frozen=True)
class RollbackResult:
    to_revision: int | None  # None: nothing to roll back to, created objects deleted
    recorded_revision: int | None
    reapplied: int
    deleted: tuple[ResourceId, ...]
    kept: tuple[ResourceId, ...]
    healthy: bool
    error: str = ""
    failure: Failure | None = None  # what the rollback itself failed on, object by object
    replaced: tuple[ResourceId, ...] = ()  # re-created again as the previous revision had it
    # Protected objects of the previous revision the server refused to take back.
    unrestored: tuple[ObjectFailure, ...] = ()
    # A stopped apply's rollback: its bounded wait ended before the health was confirmed.
    unconfirmed: bool = False
    stopped: str = ""  # the rollback itself was stopped (a second signal, a lost lease)

    @property
    def restored(self) -> bool:
        """Everything the failed attempt changed is back as the previous revision had it,
        and that revision is healthy again."""
        return self.healthy and not self.error and not self.unrestored and not self.stopped


@dataclass(frozen=True)
class ApplyResult:
    cluster: str
    revision: int | None  # the revision recorded (or still current when nothing changed)
    changed: bool
    objects: tuple[ObjectOutcome, ...]
    prune: tuple[ObjectOutcome, ...] = ()
    health: HealthReport | None = None
    rejections: tuple[Rejection, ...] = ()
    failure: Failure | None = None
    rollback: RollbackResult | None = None
    abandoned: tuple[int, ...] = ()  # pending revisions of dead runs, now marked failed
    lease_taken_over: str | None = None
    stopped: str = ""  # a StopReason: SIGINT, SIGTERM or a lost lease stopped the apply
    stop_detail: str = ""  # why (a lost lease: taken by whom, or not renewed)

    @property
    def ok(self) -> bool:
        return not self.rejections and self.failure is None and not self.stopped

    def count(self, outcome: Outcome) -> int:
        return sum(1 for o in (*self.objects, *self.prune) if o.outcome == outcome)


_CONFLICT_MANAGER = re.compile(r'conflict with "([^"]+)"')


def scrub(redactor: Redactor, text: str) -> str:
    """Text from the API server (messages, events, conditions) with every secret value the
    run's redactor has learned replaced by its mark: a server may quote a rejected Secret's
    value (argo-cd#16193)."""
    return redactor.text(text, pairs="=")


def rejection_from(rid: ResourceId, e: ClusterError, redactor: Redactor) -> Rejection:
    rejection = _rejection(rid, e)
    return replace(rejection, message=scrub(redactor, rejection.message),
                   fields=tuple(scrub(redactor, f) for f in rejection.fields))


def _rejection(rid: ResourceId, e: ClusterError) -> Rejection:
    if isinstance(e, UnknownKindError):
        return Rejection(rid, "UnknownKind", e.message, hint=e.hint or "")
    if not isinstance(e, KubeApiError):
        return Rejection(rid, "Error", str(e))
    causes = e.causes
    fields = tuple(dict.fromkeys(str(c.get("field")) for c in causes if c.get("field")))
    if e.field_manager_conflict:
        managers = tuple(dict.fromkeys(
            m.group(1) for c in causes
            if (m := _CONFLICT_MANAGER.search(str(c.get("message") or "")))
        ))
        return Rejection(
            rid, "Conflict", "fields are owned by another field manager", fields, managers,
            hint="Remove these fields from the render, or take them over with "
                 "--force-conflicts (the other manager may set them back).",
        )
    if e.code == 422:
        # Immutable only when every cause refuses an in-place change: a rejection that
        # also holds an invalid value is the manifest's to fix, and re-creating would not
        # help (kapp and Flux re-create on any Invalid answer).
        messages = [str(c.get("message") or "") for c in causes] or [e.server_message]
        if all(is_refusal(m) for m in messages):
            return Rejection(
                rid, "Immutable", e.server_message, fields,
                hint="This field cannot change on a live object (docs/apply.md, "
                     "\"Replacing objects\").",
            )
        return Rejection(rid, "Invalid", e.server_message, fields,
                         hint="Fix the manifest in git and apply again.")
    return Rejection(rid, e.reason or f"HTTP {e.code}", e.server_message, fields)
