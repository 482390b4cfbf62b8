"""Applying objects phase by phase (gitops.kinds' phases), and the waits between: CRDs
until they are served, then everything until it is healthy or the deadline passes."""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gitops.apply.deps import (
    DROP_CONVERSION,
    POD_CONTROLLERS,
    conversion_dropped,
    dependencies,
)
from gitops.apply.migrate import Migration, migrate
from gitops.apply.order import Phase, group_by_phase
from gitops.apply.replace import clear
from gitops.apply.results import (
    Failure,
    FailureStage,
    ObjectFailure,
    ObjectOutcome,
    Outcome,
    ProgressEvent,
    Rejection,
    Stage,
    scrub,
)
from gitops.apply.run import Run
from gitops.apply.send import send_all
from gitops.apply.served import wait_served
from gitops.apply.stop import Stopped
from gitops.apply.wait import HealthReport, wait_healthy
from gitops.errors import ClusterError
from gitops.health import Status
from gitops.kube import FIELD_MANAGER, KubeApiError, UnreachableError
from gitops.resource import ResourceId

Obj = dict[str, Any]


@dataclass
class PhasesOutcome:
    outcomes: dict[ResourceId, ObjectOutcome] = field(default_factory=dict)
    created: list[Obj] = field(default_factory=list)  # not there before (replaced: not)
    failure: Failure | None = None
    health: HealthReport | None = None
    replaced: dict[ResourceId, str] = field(default_factory=dict)  # deletes attempted, why
    stopped: Stopped | None = None  # asked to stop: where (`stopped_at`)
    stopped_at: str = ""
    # Rejections of objects sent `best_effort` (a rollback's protected kinds): not failures
    unsent: list[Rejection] = field(default_factory=list)


def _failure(stage: FailureStage, summary: str, rejections: Sequence[Rejection]) -> Failure:
    return Failure(stage, summary, tuple(ObjectFailure(r.id, r.reason, (r.describe(),))
                                         for r in rejections))


def run_phases(run: Run, todo: Sequence[Obj], deferred: Collection[ResourceId], *,
               wait_for: Sequence[Obj] | None, force: bool,
               replacing: Mapping[ResourceId, str] | None = None,
               migrations: Mapping[ResourceId, Migration] | None = None,
               best_effort: Collection[ResourceId] = ()) -> PhasesOutcome:
    """Apply `todo` phase by phase, in the order of their dependencies (deps.py): the CRDs
    the set's custom resources need are waited for after the CRD phase (no other CRD is);
    the `deferred` objects are dry-run once their CRDs and Namespaces exist; mutating
    webhooks go in once their backends are healthy, before the other workloads; custom
    resources whose CRD converts through a webhook of the set go last. Then wait for
    `wait_for` (None: no wait). Objects in `replacing` are deleted (replace.py) just before
    their step re-creates them; CRDs in `migrations` go through their storage migration
    (migrate.py) in the CRD phase. A refusal of an object in `best_effort` does not stop the
    phases: it is listed in `unsent`. When the run is asked to stop, the phases end at the
    next safe point (`stopped`, `stopped_at`)."""
    out = PhasesOutcome()
    where = ["before anything was applied"]
    try:
        _phases(run, out, where, todo, deferred, wait_for=wait_for, force=force,
                step=_Step(replacing or {}, migrations or {}, force, frozenset(best_effort)))
    except Stopped as e:
        out.stopped, out.stopped_at = e, where[0]
    return out


def _phases(run: Run, out: PhasesOutcome, where: list[str], todo: Sequence[Obj],
            deferred: Collection[ResourceId], *, wait_for: Sequence[Obj] | None, force: bool,
            step: _Step) -> None:
    deps = dependencies(todo)
    late = [o for o in todo if deps.is_late(o)]
    late_ids = {ResourceId.of(o) for o in late}
    unchecked = [o for o in todo if ResourceId.of(o) in deferred
                 and ResourceId.of(o) not in late_ids]
    changed_kinds = set(deps.crd_of)
    mutating_done = False
    for phase, objs in group_by_phase(o for o in todo if ResourceId.of(o) not in late_ids):
        run.check()
        where[0] = f"while applying {phase.label}"
        if unchecked and phase > Phase.NAMESPACES:
            if not _validate(run, out, unchecked, changed_kinds, force=force):
                return
            unchecked = []
        if phase is Phase.WORKLOADS and deps.mutating:
            first = [o for o in objs if _gk(o) not in POD_CONTROLLERS or o in deps.backends]
            rest = [o for o in objs if _gk(o) in POD_CONTROLLERS and o not in deps.backends]
            if not step.send(run, out, "webhook backends and the objects they need", first):
                return
            if deps.backends and not _wait_step(run, out, list(deps.backends),
                                                "the mutating webhooks' backends"):
                return
            if not step.send(run, out, "mutating webhook configurations", list(deps.mutating)):
                return
            mutating_done = True
            if not step.send(run, out, phase.label, rest):
                return
            continue
        if phase is Phase.WEBHOOKS and mutating_done:
            objs = [o for o in objs if not deps.is_mutating(o)]
        if phase is Phase.CRDS and not _drop_conversions(
                run, out, [o for o in objs if ResourceId.of(o) in deferred]):
            return
        if not step.send(run, out, phase.label, objs):
            return
        if phase is Phase.CRDS:
            moving = [o for o in objs if ResourceId.of(o) in step.migrations]
            needed = [*deps.needed, *(o for o in moving if o not in deps.needed)]
            where[0] = "while waiting for CRDs to be established"
            if needed and not wait_served(run, needed) and not _wait_step(
                    run, out, needed, "CRDs to be established"):
                return
            if moving:
                where[0] = "while migrating CRD storage"
                out.failure = _migrate(run, moving, step.migrations, force)
                if out.failure is not None:
                    return
    if unchecked and not _validate(run, out, unchecked, changed_kinds, force=force):
        return
    if late:
        run.check()
        where[0] = "while applying custom resources of CRDs converted by webhooks"
        crds = [deps.crd_of[k] for k in sorted(deps.late_kinds)]
        what = "CRDs converted by webhooks of this set to be established"
        if not wait_served(run, crds) and not _wait_step(run, out, crds, what):
            return
        check = [o for o in late if ResourceId.of(o) in deferred]
        if check and not _validate(run, out, check, changed_kinds, force=force):
            return
        if not step.send(run, out,
                         "custom resources of CRDs converted by webhooks of this set", late):
            return
    if wait_for:
        run.check()
        where[0] = "while waiting for the rollout"
        run.progress(ProgressEvent(Stage.WAIT, f"waiting for {len(wait_for)} object(s) to "
                                               "be healthy"))
        out.health = deadline_wait(run, wait_for, "the rollout")
        if not out.health.ok:
            out.failure = health_failure(run, out.health, "the rollout")


def _gk(obj: Obj) -> tuple[str, str]:
    rid = ResourceId.of(obj)
    return rid.group, rid.kind


@dataclass(frozen=True)
class _Step:
    """How the objects of one step are sent: those in `replacing` deleted first, the CRDs in
    `migrations` in their transitional form."""

    replacing: Mapping[ResourceId, str]
    migrations: Mapping[ResourceId, Migration]
    force: bool
    best_effort: frozenset[ResourceId] = frozenset()

    def send(self, run: Run, out: PhasesOutcome, label: str, objs: Sequence[Obj]) -> bool:
        """Apply one step's objects; False (with out.failure) when any failed."""
        if not objs:
            return True
        replacing = self.replacing

        def applied(rid: ResourceId, outcome: Outcome) -> None:
            said = Outcome.REPLACED if rid in replacing else outcome
            run.progress(ProgressEvent(Stage.APPLY, str(said), rid))

        run.progress(ProgressEvent(Stage.PHASE, f"applying {len(objs)} {label}",
                                   phase=label, total=len(objs)))
        if not _cleared(run, [o for o in objs if ResourceId.of(o) in replacing], replacing,
                        out):
            return False
        done, rej = send_all(run.target.kube, [
            self.migrations[ResourceId.of(o)].transitional
            if ResourceId.of(o) in self.migrations else o for o in objs],
            redactor=run.redactor, dry_run=False, force=self.force,
            concurrency=run.concurrency, on_applied=applied)
        by_id = {ResourceId.of(o): o for o in objs}
        for rid, (outcome, _) in done.items():
            if rid in replacing:
                out.outcomes[rid] = ObjectOutcome(rid, Outcome.REPLACED, replacing[rid])
                continue
            out.outcomes[rid] = ObjectOutcome(rid, outcome)
            if outcome is Outcome.CREATED:
                out.created.append(by_id[rid])
        out.unsent += [r for r in rej if r.id in self.best_effort]
        rej = [r for r in rej if r.id not in self.best_effort]
        for r in rej:
            out.outcomes[r.id] = ObjectOutcome(r.id, Outcome.FAILED, r.describe())
        if rej:
            out.failure = _failure(FailureStage.APPLY, f"{len(rej)} object(s) failed to apply",
                                   rej)
            return False
        return True


def _drop_conversions(run: Run, out: PhasesOutcome, crds: Sequence[Obj]) -> bool:
    """Remove the webhook conversion of the CRDs whose render no longer has one (deps.py);
    False (with out.failure) when the API server refuses."""
    kube = run.target.kube
    for crd in crds:
        rid = ResourceId.of(crd)
        live = kube.get(str(crd["apiVersion"]), rid.kind, "", rid.name)
        if not conversion_dropped(crd, live):
            continue
        run.progress(ProgressEvent(Stage.APPLY, "removing the webhook conversion the render "
                                                "no longer has", rid))
        try:
            kube.request("PATCH", kube.object_path(kube.info_of(crd), "", rid.name),
                         body=DROP_CONVERSION, content_type="application/merge-patch+json",
                         query={"fieldManager": FIELD_MANAGER})
        except KubeApiError as e:
            reason = scrub(run.redactor, f"removing its webhook conversion failed: {e}")
            out.outcomes[rid] = ObjectOutcome(rid, Outcome.FAILED, reason)
            out.failure = Failure(FailureStage.APPLY, "1 object(s) failed to apply",
                                  (ObjectFailure(rid, reason, ()),))
            return False
    return True


def _wait_step(run: Run, out: PhasesOutcome, objs: Sequence[Obj], what: str) -> bool:
    """Wait for what the next objects need; False (with out.failure) when it cannot be."""
    report = deadline_wait(run, objs, what)
    if report.ok:
        return True
    out.failure = health_failure(run, report, what)
    out.health = report
    return False


# The API server builds a CRD's new schema from an informer event after the update is
# answered: a custom resource dry-run at once may still meet the old one for a moment.
_STALE_SCHEMA = ("field not declared in schema", "unknown field")


def _validate(run: Run, out: PhasesOutcome, objs: Sequence[Obj],
              changed_kinds: Collection[tuple[str, str]], *, force: bool) -> bool:
    """The server-side dry run of objects that could not be checked before their CRD (new
    or changed in this apply) or Namespace existed; False (with out.failure) on a
    rejection."""
    kube = run.target.kube
    run.progress(ProgressEvent(
        Stage.VALIDATE, f"dry-run of {len(objs)} object(s) that needed a CRD or Namespace "
                        "of this set"))
    for o in objs:
        kube.resource(str(o["apiVersion"]), str(o["kind"]), refresh=True)
    give_up = min(run.deadline, time.monotonic() + 15)
    delay = 0.2
    while True:
        _, rej = send_all(kube, objs, redactor=run.redactor, dry_run=True, force=force,
                          concurrency=run.concurrency)
        stale = [r for r in rej if (r.id.group, r.id.kind) in changed_kinds
                 and any(m in r.message for m in _STALE_SCHEMA)]
        if not stale or len(stale) < len(rej) or time.monotonic() >= give_up:
            break
        run.sleep(delay)
        delay = min(delay * 2, 2.0)
    if rej:
        out.failure = _failure(FailureStage.VALIDATE, f"{len(rej)} object(s) rejected by the "
                               "API server", rej)
        return False
    return True


def _cleared(run: Run, objs: Sequence[Obj], replacing: Mapping[ResourceId, str],
             out: PhasesOutcome) -> bool:
    """Delete the phase's objects to be re-created; False (with the failure) when one
    could not be."""
    if not objs:
        return True
    out.replaced.update({ResourceId.of(o): replacing[ResourceId.of(o)] for o in objs})
    refused = clear(run.target.kube, objs, replacing, deadline=run.deadline,
                    progress=run.progress, redactor=run.redactor, concurrency=run.concurrency)
    for r in refused:
        out.outcomes[r.id] = ObjectOutcome(r.id, Outcome.FAILED, r.describe())
    if refused:
        out.failure = _failure(FailureStage.APPLY, f"{len(refused)} object(s) could not be "
                               "deleted to be re-created", refused)
    return not refused


def _migrate(run: Run, crds: Sequence[Obj], migrations: Mapping[ResourceId, Migration],
             force: bool) -> Failure | None:
    """The storage migrations of the phase's CRDs (applied in their transitional form and
    established), then their new spec; a failure stops before a CRD loses a version."""
    kube = run.target.kube
    for crd in crds:
        m = migrations[ResourceId.of(crd)]

        def say(message: str, m: Migration = m) -> None:
            run.progress(ProgressEvent(Stage.MIGRATE, message, m.id))

        try:
            migrate(kube, m, deadline=run.deadline, say=say)
        except UnreachableError:
            raise
        except ClusterError as e:
            text = scrub(run.redactor, f"{e.message} {e.hint or ''}".strip())
            return Failure(FailureStage.APPLY, f"the storage migration of {m.id} failed",
                           (ObjectFailure(m.id, "MigrationFailed", (text,)),))
    _, rej = send_all(kube, crds, redactor=run.redactor, dry_run=False, force=force,
                      concurrency=run.concurrency)
    if rej:
        return _failure(FailureStage.APPLY, f"{len(rej)} CRD(s) failed to apply after their "
                        "storage migration", rej)
    wait_served(run, crds)
    report = deadline_wait(run, crds, "CRDs to be established")
    return None if report.ok else health_failure(run, report, "CRDs to be established")


def deadline_wait(run: Run, objects: Sequence[Obj], what: str) -> HealthReport:
    def on_wait(waiting: list[tuple[ResourceId, Status]]) -> None:
        head = ", ".join(f"{r} ({s.reason})" for r, s in waiting[:3])
        more = f" and {len(waiting) - 3} more" if len(waiting) > 3 else ""
        left = max(0, int(run.deadline - time.monotonic()))
        run.progress(ProgressEvent(
            Stage.WAIT, f"waiting for {what}: {len(waiting)} of {len(objects)} pending: "
                        f"{head}{more} [{left}s left]",
            phase=what, pending=tuple((r, scrub(run.redactor, s.reason)) for r, s in waiting),
            total=len(objects), seconds_left=left))

    return wait_healthy(run.target.kube, objects, label=run.target.member_label,
                        deadline=run.deadline, on_wait=on_wait, concurrency=run.concurrency,
                        sleep=run.sleep)


def health_failure(run: Run, report: HealthReport, what: str) -> Failure:
    """Every object that is not healthy, those explained (conditions, ReplicaSet and pod
    events) first."""
    bad = report.unhealthy
    explained = {r: tuple(scrub(run.redactor, line) for line in lines)
                 for r, lines in report.explanations}
    objs = tuple(ObjectFailure(r, scrub(run.redactor, s.reason), explained.get(r, ()))
                 for r, s in sorted(bad, key=lambda x: (x[0] not in explained, x[0])))
    if report.timed_out:
        summary = (f"{len(bad)} object(s) did not become healthy within the timeout while "
                   f"waiting for {what}")
    else:
        summary = f"{len(bad)} object(s) failed while waiting for {what}"
    return Failure(FailureStage.HEALTH, summary, objs)
