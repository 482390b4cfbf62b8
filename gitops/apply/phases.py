"""Applying objects phase by phase (gitops.kinds' phases), and the waits between: CRDs
until they are served, then everything until it is healthy or the deadline passes."""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from gitops.apply.migrate import Migration, migrate
from gitops.apply.options import ApplyOptions, Progress, Target
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
from gitops.apply.send import send_all
from gitops.apply.stop import Stop, Stopped
from gitops.apply.wait import HealthReport, wait_healthy
from gitops.errors import ClusterError
from gitops.health import Status
from gitops.kube import POLL, UnreachableError, poll
from gitops.redact import Redactor
from gitops.resource import ResourceId

Obj = dict[str, Any]


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
    """Apply `todo` phase by phase; dry-run the `deferred` ones once their CRDs and
    Namespaces exist; then wait for `wait_for` (None: no wait). Objects in `replacing`
    are deleted (replace.py) just before their phase re-creates them; CRDs in
    `migrations` go through their storage migration (migrate.py) in the CRD phase. A
    refusal of an object in `best_effort` does not stop the phases: it is listed in
    `unsent`. When the run is asked to stop, the phases end at the next safe point
    (`stopped`, `stopped_at`)."""
    out = PhasesOutcome()
    where = ["before anything was applied"]
    try:
        _phases(run, out, where, todo, deferred, wait_for=wait_for, force=force,
                replacing=replacing or {}, migrations=migrations or {},
                best_effort=best_effort)
    except Stopped as e:
        out.stopped, out.stopped_at = e, where[0]
    return out


def _phases(run: Run, out: PhasesOutcome, where: list[str], todo: Sequence[Obj],
            deferred: Collection[ResourceId], *, wait_for: Sequence[Obj] | None, force: bool,
            replacing: Mapping[ResourceId, str], migrations: Mapping[ResourceId, Migration],
            best_effort: Collection[ResourceId]) -> None:
    kube = run.target.kube

    def applied(rid: ResourceId, outcome: Outcome) -> None:
        said = Outcome.REPLACED if rid in replacing else outcome
        run.progress(ProgressEvent(Stage.APPLY, str(said), rid))

    late_done = not deferred
    for phase, objs in group_by_phase(todo):
        run.check()
        where[0] = f"while applying {phase.label}"
        if not late_done and phase > Phase.NAMESPACES:
            late = [o for o in todo if ResourceId.of(o) in deferred]
            run.progress(ProgressEvent(
                Stage.VALIDATE, f"dry-run of {len(late)} object(s) that needed a CRD or "
                                "Namespace of this set"))
            for o in late:
                kube.resource(str(o["apiVersion"]), str(o["kind"]), refresh=True)
            _, rej = send_all(kube, late, redactor=run.redactor, dry_run=True, force=force,
                              concurrency=run.concurrency)
            late_done = True
            if rej:
                out.failure = _failure(FailureStage.VALIDATE, f"{len(rej)} object(s) rejected "
                                       "by the API server", rej)
                return
        run.progress(ProgressEvent(Stage.PHASE, f"applying {len(objs)} {phase.label}",
                                   phase=phase.label, total=len(objs)))
        if not _cleared(run, [o for o in objs if ResourceId.of(o) in replacing], replacing,
                        out):
            return
        done, rej = send_all(kube, [migrations[ResourceId.of(o)].transitional
                                    if ResourceId.of(o) in migrations else o for o in objs],
                             redactor=run.redactor, dry_run=False, force=force,
                             concurrency=run.concurrency, on_applied=applied)
        by_id = {ResourceId.of(o): o for o in objs}
        for rid, (outcome, _) in done.items():
            if rid in replacing:
                out.outcomes[rid] = ObjectOutcome(rid, Outcome.REPLACED, replacing[rid])
                continue
            out.outcomes[rid] = ObjectOutcome(rid, outcome)
            if outcome is Outcome.CREATED:
                out.created.append(by_id[rid])
        for r in rej:
            out.outcomes[r.id] = ObjectOutcome(r.id, Outcome.FAILED, r.describe())
        out.unsent += [r for r in rej if r.id in best_effort]
        rej = [r for r in rej if r.id not in best_effort]
        if rej:
            out.failure = _failure(FailureStage.APPLY, f"{len(rej)} object(s) failed to apply",
                                   rej)
            return
        if phase is Phase.CRDS:
            where[0] = "while waiting for CRDs to be established"
            wait_served(run, objs)
            report = deadline_wait(run, objs, "CRDs to be established")
            if not report.ok:
                out.failure = health_failure(run, report, "CRDs to be established")
                out.health = report
                return
            moving = [o for o in objs if ResourceId.of(o) in migrations]
            if moving:
                where[0] = "while migrating CRD storage"
                out.failure = _migrate(run, moving, migrations, force)
                if out.failure is not None:
                    return
    if wait_for:
        run.check()
        where[0] = "while waiting for the rollout"
        run.progress(ProgressEvent(Stage.WAIT, f"waiting for {len(wait_for)} object(s) to "
                                               "be healthy"))
        out.health = deadline_wait(run, wait_for, "the rollout")
        if not out.health.ok:
            out.failure = health_failure(run, out.health, "the rollout")


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


def wait_served(run: Run, crds: Sequence[Obj]) -> None:
    """Wait (up to the deadline) until discovery serves every version of the CRDs.

    The discovery controller lists a CRD's versions only once the CRD is Established
    (apiextensions-apiserver, discovery_controller.go), and a discovery document is a few
    KiB where a LIST of Kubeflow's CRDs is megabytes of schemas: polling discovery, then
    confirming the Established conditions with one LIST, is much cheaper than polling the
    CRDs. What is not served by the deadline is reported by the health wait that follows."""
    want: dict[tuple[str, str], ResourceId] = {}
    for crd in crds:
        spec = crd.get("spec") or {}
        kind = str((spec.get("names") or {}).get("kind") or "")
        for v in spec.get("versions") or []:
            if kind and v.get("served", True):
                want[(f"{spec.get('group')}/{v.get('name')}", kind)] = ResourceId.of(crd)
    kube = run.target.kube

    def attempt(pool: ThreadPoolExecutor) -> bool | None:
        nonlocal want
        versions = sorted({av for av, _ in want})
        served = dict(zip(versions, pool.map(
            lambda av: kube.group_version(av, refresh=True), versions), strict=True))
        want = {key: rid for key, rid in want.items() if key[1] not in served[key[0]]}
        if not want:
            return True
        if time.monotonic() < run.deadline:
            pending = tuple(sorted({(rid, "waiting to be established (not served yet)")
                                    for rid in want.values()}))
            run.progress(ProgressEvent(
                Stage.WAIT, f"waiting for CRDs to be established: {len(pending)} of "
                            f"{len(crds)} pending", phase="CRDs to be established",
                pending=pending, total=len(crds),
                seconds_left=max(0, int(run.deadline - time.monotonic()))))
        return None

    if want:
        with ThreadPoolExecutor(max_workers=max(1, run.concurrency)) as pool:
            poll(lambda: attempt(pool), deadline=run.deadline, backoff=POLL, sleep=run.sleep)


def health_failure(run: Run, report: HealthReport, what: str) -> Failure:
    bad = report.unhealthy
    explained = {r: tuple(scrub(run.redactor, line) for line in lines)
                 for r, lines in report.explanations}
    objs = tuple(ObjectFailure(r, scrub(run.redactor, s.reason), explained.get(r, ()))
                 for r, s in bad if r in explained) or tuple(
        ObjectFailure(r, scrub(run.redactor, s.reason)) for r, s in bad[:10])
    if report.timed_out:
        summary = (f"{len(bad)} object(s) did not become healthy within the timeout while "
                   f"waiting for {what}")
    else:
        summary = f"{len(bad)} object(s) failed while waiting for {what}"
    return Failure(FailureStage.HEALTH, summary, objs)
