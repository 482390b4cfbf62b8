"""Applying objects phase by phase (gitops.kinds' phases), and the waits between: CRDs
until they are served, then everything until it is healthy or the deadline passes."""

from __future__ import annotations

import time
from collections.abc import Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from gitops.apply.deps import (
    DROP_CONVERSION,
    POD_CONTROLLERS,
    conversion_dropped,
    dependencies,
)
from gitops.apply.options import ApplyOptions, Progress, Target
from gitops.apply.order import Phase, group_by_phase
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
from gitops.apply.wait import HealthReport, wait_healthy
from gitops.health import Health, Status, status_of
from gitops.kube import FIELD_MANAGER, POLL, KubeApiError, poll
from gitops.redact import Redactor
from gitops.resource import ResourceId

Obj = dict[str, Any]


@dataclass
class Run:
    """One execution: where, how, the run's redactor and progress, and the deadline of the
    current wait (time.monotonic)."""

    target: Target
    options: ApplyOptions
    redactor: Redactor
    progress: Progress
    deadline: float = 0.0

    def restart_clock(self) -> None:
        self.deadline = time.monotonic() + self.options.policy.timeout

    @property
    def concurrency(self) -> int:
        return self.options.policy.concurrency


@dataclass
class PhasesOutcome:
    outcomes: dict[ResourceId, ObjectOutcome] = field(default_factory=dict)
    created: list[Obj] = field(default_factory=list)
    failure: Failure | None = None
    health: HealthReport | None = None


def _failure(stage: FailureStage, summary: str, rejections: Sequence[Rejection]) -> Failure:
    return Failure(stage, summary, tuple(ObjectFailure(r.id, r.reason, (r.describe(),))
                                         for r in rejections))


def run_phases(run: Run, todo: Sequence[Obj], deferred: Collection[ResourceId], *,
               wait_for: Sequence[Obj] | None, force: bool) -> PhasesOutcome:
    """Apply `todo` phase by phase, in the order of their dependencies (deps.py): the CRDs
    the set's custom resources need are waited for after the CRD phase (no other CRD is);
    the `deferred` objects are dry-run once their CRDs and Namespaces exist; mutating
    webhooks go in once their backends are healthy, before the other workloads; custom
    resources whose CRD converts through a webhook of the set go last. Then wait for
    `wait_for` (None: no wait)."""
    out = PhasesOutcome()
    deps = dependencies(todo)
    late = [o for o in todo if deps.is_late(o)]
    late_ids = {ResourceId.of(o) for o in late}
    unchecked = [o for o in todo if ResourceId.of(o) in deferred
                 and ResourceId.of(o) not in late_ids]
    changed_kinds = set(deps.crd_of)
    mutating_done = False
    for phase, objs in group_by_phase(o for o in todo if ResourceId.of(o) not in late_ids):
        if unchecked and phase > Phase.NAMESPACES:
            if not _validate(run, out, unchecked, changed_kinds, force=force):
                return out
            unchecked = []
        if phase is Phase.WORKLOADS and deps.mutating:
            first = [o for o in objs if _gk(o) not in POD_CONTROLLERS or o in deps.backends]
            rest = [o for o in objs if _gk(o) in POD_CONTROLLERS and o not in deps.backends]
            if not _send(run, out, "webhook backends and the objects they need", first,
                         force=force):
                return out
            if deps.backends and not _wait_step(run, out, list(deps.backends),
                                                "the mutating webhooks' backends"):
                return out
            if not _send(run, out, "mutating webhook configurations", list(deps.mutating),
                         force=force):
                return out
            mutating_done = True
            if not _send(run, out, phase.label, rest, force=force):
                return out
            continue
        if phase is Phase.WEBHOOKS and mutating_done:
            objs = [o for o in objs if not deps.is_mutating(o)]
        if phase is Phase.CRDS and not _drop_conversions(
                run, out, [o for o in objs if ResourceId.of(o) in deferred]):
            return out
        if not _send(run, out, phase.label, objs, force=force):
            return out
        if phase is Phase.CRDS and deps.needed:
            needed = list(deps.needed)
            if not wait_served(run, needed) and not _wait_step(
                    run, out, needed, "CRDs to be established"):
                return out
    if unchecked and not _validate(run, out, unchecked, changed_kinds, force=force):
        return out
    if late:
        crds = [deps.crd_of[k] for k in sorted(deps.late_kinds)]
        what = "CRDs converted by webhooks of this set to be established"
        if not wait_served(run, crds) and not _wait_step(run, out, crds, what):
            return out
        check = [o for o in late if ResourceId.of(o) in deferred]
        if check and not _validate(run, out, check, changed_kinds, force=force):
            return out
        if not _send(run, out, "custom resources of CRDs converted by webhooks of this set",
                     late, force=force):
            return out
    if wait_for:
        run.progress(ProgressEvent(Stage.WAIT, f"waiting for {len(wait_for)} object(s) to "
                                               "be healthy"))
        out.health = deadline_wait(run, wait_for, "the rollout")
        if not out.health.ok:
            out.failure = health_failure(run, out.health, "the rollout")
    return out


def _gk(obj: Obj) -> tuple[str, str]:
    rid = ResourceId.of(obj)
    return rid.group, rid.kind


def _send(run: Run, out: PhasesOutcome, label: str, objs: Sequence[Obj], *,
          force: bool) -> bool:
    """Apply one step's objects; False (with out.failure) when any failed."""
    if not objs:
        return True

    def applied(rid: ResourceId, outcome: Outcome) -> None:
        run.progress(ProgressEvent(Stage.APPLY, str(outcome), rid))

    run.progress(ProgressEvent(Stage.PHASE, f"applying {len(objs)} {label}",
                               phase=label, total=len(objs)))
    done, rej = send_all(run.target.kube, objs, redactor=run.redactor, dry_run=False,
                         force=force, concurrency=run.concurrency, on_applied=applied)
    by_id = {ResourceId.of(o): o for o in objs}
    for rid, (outcome, _) in done.items():
        out.outcomes[rid] = ObjectOutcome(rid, outcome)
        if outcome is Outcome.CREATED:
            out.created.append(by_id[rid])
    for r in rej:
        out.outcomes[r.id] = ObjectOutcome(r.id, Outcome.FAILED, r.describe())
    if rej:
        out.failure = _failure(FailureStage.APPLY, f"{len(rej)} object(s) failed to apply", rej)
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
        time.sleep(delay)
        delay = min(delay * 2, 2.0)
    if rej:
        out.failure = _failure(FailureStage.VALIDATE, f"{len(rej)} object(s) rejected by the "
                               "API server", rej)
        return False
    return True


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
                        deadline=run.deadline, on_wait=on_wait, concurrency=run.concurrency)


def wait_served(run: Run, crds: Sequence[Obj]) -> bool:
    """Wait (up to the deadline) until discovery serves every version of the CRDs; False
    when one is not served by then, or cannot be (the caller's health wait says why).

    The discovery controller lists a CRD's versions only once the CRD is Established
    (apiextensions-apiserver, discovery_controller.go), and a discovery document is a few
    KiB where a LIST of Kubeflow's CRDs is megabytes of schemas: polling discovery is much
    cheaper than polling the CRDs. Only the CRDs still not served are read, to show their
    conditions and to stop at once when one cannot be established (InvalidCABundle,
    NamesAccepted=False) rather than at the deadline."""
    want: dict[tuple[str, str], ResourceId] = {}
    for crd in crds:
        spec = crd.get("spec") or {}
        kind = str((spec.get("names") or {}).get("kind") or "")
        for v in spec.get("versions") or []:
            if kind and v.get("served", True):
                want[(f"{spec.get('group')}/{v.get('name')}", kind)] = ResourceId.of(crd)
    kube = run.target.kube

    def status(rid: ResourceId) -> Status:
        live = kube.get("apiextensions.k8s.io/v1", rid.kind, "", rid.name)
        return status_of(live) if live else Status(Health.IN_PROGRESS, "not found yet")

    def attempt(pool: ThreadPoolExecutor) -> bool | None:
        nonlocal want
        versions = sorted({av for av, _ in want})
        served = dict(zip(versions, pool.map(
            lambda av: kube.group_version(av, refresh=True), versions), strict=True))
        want = {key: rid for key, rid in want.items() if key[1] not in served[key[0]]}
        if not want:
            return True
        ids = sorted(set(want.values()))
        states = dict(zip(ids, pool.map(status, ids), strict=True))
        if any(s.health is Health.FAILED for s in states.values()):
            return False
        if time.monotonic() < run.deadline:
            pending = tuple((rid, scrub(run.redactor, s.reason if not s.ready else
                                        "established, versions not served yet"))
                            for rid, s in states.items())
            run.progress(ProgressEvent(
                Stage.WAIT, f"waiting for CRDs to be established: {len(pending)} of "
                            f"{len(crds)} pending", phase="CRDs to be established",
                pending=pending, total=len(crds),
                seconds_left=max(0, int(run.deadline - time.monotonic()))))
        return None

    if not want:
        return True
    with ThreadPoolExecutor(max_workers=max(1, run.concurrency)) as pool:
        return bool(poll(lambda: attempt(pool), deadline=run.deadline, backoff=POLL))


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
