"""`execute`: carry out a change set under the cluster's apply lease.

    lease -> the records still as calculated (else calculate again, under the lease) ->
    mark abandoned pending revisions failed -> record a pending revision, and widen the
    ApplySet parent to everything it may create -> apply phase by phase (CRDs wait
    Established, and migrate storage when they drop a stored version; objects deferred
    behind a CRD or Namespace of the set are dry-run right after those phases; objects to
    replace are deleted just before their phase re-creates them) -> wait for health ->
    prune -> record (the parent narrowed).
    On an apply error or a health failure: the automatic rollback (rollback.py).

Asked to stop (`stop`: a signal, through the CLI; or the lease lost), it stops at the next
safe point: before anything changed, it only releases the lease; after, it marks the
revision failed and rolls back like a failed apply, waiting at most the policy's stop
timeout (a second request skips the rollback). A lost lease changes and records nothing
more: another apply may hold the cluster now, and the revision stays pending for the next
apply to mark failed and prune.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from gitops.apply.calculate import calculate
from gitops.apply.changeset import Action, ChangeSet
from gitops.apply.lease import ClusterLease
from gitops.apply.options import ApplyOptions, Progress, Target, no_progress
from gitops.apply.phases import PhasesOutcome, run_phases
from gitops.apply.prune import execute_prune
from gitops.apply.results import (
    ApplyResult,
    Failure,
    FailureStage,
    ObjectOutcome,
    Outcome,
    ProgressEvent,
    RollbackResult,
    Stage,
)
from gitops.apply.rollback import roll_back
from gitops.apply.run import Run
from gitops.apply.stop import Stop, StopReason
from gitops.inventory import RevisionStatus
from gitops.redact import Redactor
from gitops.resource import ResourceId

Obj = dict[str, Any]


def apply_objects(target: Target, objects: Sequence[Obj], *, options: ApplyOptions,
                  redactor: Redactor, progress: Progress = no_progress,
                  stop: Stop | None = None) -> ApplyResult:
    """Apply `objects` (plain dicts, as rendered) to the target as a new revision:
    `calculate`, then `execute`."""
    change_set = calculate(target, objects, options=options, redactor=redactor,
                           progress=progress)
    return execute(change_set, options, progress, stop=stop)


def execute(change_set: ChangeSet, options: ApplyOptions,
            progress: Progress = no_progress, *, stop: Stop | None = None) -> ApplyResult:
    """Carry out `change_set` (calculated with the same options) under the cluster's
    lease. A change set with rejections changes nothing. When the records moved between
    the calculation and the lease (another apply ran), the change set is calculated again
    under the lease before anything changes. `stop` (set by a signal handler) stops it at
    the next safe point."""
    cs, target = change_set, change_set.target
    if not cs.ok:
        return ApplyResult(target.cluster, None, False, _planned(cs), rejections=cs.rejections)
    own = Stop(parent=stop)  # this apply's: a lost lease stops this apply alone
    records = target.records
    records.ensure_namespace()
    progress(ProgressEvent(Stage.LEASE, f"taking the apply lease of cluster {target.cluster}"))
    with ClusterLease(target.kube, cluster=target.cluster, namespace=target.records_namespace,
                      break_lease=options.break_lease, duration=options.lease_seconds,
                      on_lost=lambda why: own.request(StopReason.LEASE_LOST, why)) as lease:
        taken = lease.taken_over.holder if lease.taken_over else None
        if own.requested:
            result = _stopped_before(Run(target, options, cs.redactor, progress, stop=own))
        else:
            now = records.revisions()
            if [(r.revision, r.status) for r in now] != [(r.revision, r.status)
                                                          for r in cs.revisions]:
                progress(ProgressEvent(Stage.READ, "the records changed since the change set "
                                                   "was calculated; calculating it again"))
                cs = calculate(target, cs.desired, options=options, redactor=cs.redactor,
                               fields=cs.fields, progress=progress)
            result = _locked(Run(target, options, cs.redactor, progress, stop=own), cs)
    return replace(result, lease_taken_over=taken) if taken else result


def _planned(cs: ChangeSet) -> tuple[ObjectOutcome, ...]:
    return tuple(ObjectOutcome(c.id, Outcome.UNCHANGED) for c in cs.changes
                 if c.action is Action.UNCHANGED)


def _stopped_before(run: Run, abandoned: tuple[int, ...] = ()) -> ApplyResult:
    reason = run.stop.reason
    run.progress(ProgressEvent(Stage.FAILED, f"stopped ({reason}) before anything was "
                                             "applied"))
    return ApplyResult(run.target.cluster, None, False, (), abandoned=abandoned,
                       failure=Failure(FailureStage.STOPPED,
                                       f"stopped by {reason} before anything was applied"),
                       stopped=str(reason), stop_detail=run.stop.detail)


def _locked(run: Run, cs: ChangeSet) -> ApplyResult:
    progress, records, options = run.progress, run.target.records, run.options
    cluster = run.target.cluster
    abandoned = cs.abandoned
    for n in abandoned:
        records.set_status(n, RevisionStatus.FAILED,
                           description="abandoned: the apply stopped before it finished")
        progress(ProgressEvent(Stage.RECORD, f"revision {n} was left pending by an apply "
                                             "that stopped; marked failed"))
    unchanged = _planned(cs)
    if not cs.ok:
        return ApplyResult(cluster, None, False, unchanged, rejections=cs.rejections,
                           abandoned=abandoned)
    prev = cs.previous
    if not cs.changed and prev is not None:
        progress(ProgressEvent(Stage.DONE, f"no changes; revision {prev.revision} is current"))
        return ApplyResult(cluster, prev.revision, False, unchanged,
                           prune=tuple(ObjectOutcome(c.id, Outcome.KEPT, c.note)
                                       for c in cs.prune if c.action is Action.KEEP),
                           abandoned=abandoned)
    if run.stop.requested:
        return _stopped_before(run, abandoned)

    desired_ids = [ResourceId.of(o) for o in cs.desired]
    revision = cs.revisions.next_number
    progress(ProgressEvent(Stage.RECORD, f"recording revision {revision} (pending)"))
    # Everything this apply may create is known before it is created (kubectl's ApplySet
    # widens the parent first): the pending revision holds the manifests, and the parent
    # names every group-kind, so that an interrupted apply's objects are found and pruned.
    replacing = cs.replacements
    records.write(revision, cs.desired, status=RevisionStatus.PENDING, commit=options.commit,
                  description=options.description, replaced=[str(r) for r in replacing],
                  dirty=options.dirty)
    records.write_parent({*desired_ids, *(ResourceId.of(o) for o in cs.previous_objects),
                          *(c.id for c in cs.prune)})

    run.restart_clock()
    outcome = run_phases(run, cs.to_apply(), cs.deferred,
                         wait_for=cs.desired if options.wait else None, force=options.force,
                         replacing=replacing, migrations={m.id: m for m in cs.migrations})
    done = {**{o.id: o for o in unchanged}, **outcome.outcomes}
    ordered = tuple(done.get(r) or ObjectOutcome(r, Outcome.SKIPPED) for r in desired_ids)
    if outcome.failure is not None or outcome.stopped is not None:
        return _failed(run, cs, revision, outcome, ordered, abandoned)
    if run.stop.lease_lost:  # healthy, but the cluster may be another apply's now
        outcome.stopped_at = "after the rollout was healthy, before pruning"
        return _failed(run, cs, revision, outcome, ordered, abandoned)

    pruned: list[ObjectOutcome] = []
    if cs.prune:
        deletes = sum(1 for c in cs.prune if c.action is Action.DELETE)
        progress(ProgressEvent(Stage.PRUNE, f"pruning {deletes} object(s) no longer in the "
                                            "render"))
        pruned = execute_prune(run.target.kube, cs.prune, label=run.target.member_label)
    records.write_parent(desired_ids)
    records.set_status(revision, RevisionStatus.DEPLOYED)
    if prev is not None:
        records.set_status(prev.revision, options.replaced)
    progress(ProgressEvent(Stage.DONE, f"revision {revision} deployed"))
    # A signal that came once the rollout was healthy: the apply finished, and says so.
    late = run.stop.reason
    return ApplyResult(cluster, revision, True, ordered, prune=tuple(pruned),
                       health=outcome.health, abandoned=abandoned,
                       stopped=str(late) if late else "", stop_detail=run.stop.detail)


def _failed(run: Run, cs: ChangeSet, revision: int, outcome: PhasesOutcome,
            ordered: tuple[ObjectOutcome, ...], abandoned: tuple[int, ...]) -> ApplyResult:
    """A failed or stopped apply: record it failed and roll back (unless told not to, or
    stopped twice); with the lease lost, change and record nothing more."""
    progress, records, stop = run.progress, run.target.records, run.stop
    failure = outcome.failure
    if failure is None:
        failure = Failure(FailureStage.STOPPED,
                          f"stopped by {stop.reason} {outcome.stopped_at}")
    base = ApplyResult(run.target.cluster, revision, True, ordered, health=outcome.health,
                       failure=failure, abandoned=abandoned, stopped=str(stop.reason or ""),
                       stop_detail=stop.detail)
    if stop.lease_lost:
        progress(ProgressEvent(Stage.FAILED, f"stopped: {stop.detail}; revision {revision} "
                                             "is left pending for the next apply"))
        return base
    records.set_status(revision, RevisionStatus.FAILED, description=failure.summary)
    progress(ProgressEvent(Stage.FAILED, failure.summary))
    rb: RollbackResult | None = None
    if run.options.rollback and not stop.abandon:
        if stop.requested:
            progress(ProgressEvent(Stage.ROLLBACK, f"{stop.reason} received: rolling back "
                                                   "(send it again to skip the rollback)"))
        rb = roll_back(run, failed_revision=revision, prev=cs.previous,
                       prev_objects=cs.previous_objects, created=outcome.created,
                       touched={r for r, o in outcome.outcomes.items()
                                if o.outcome is not Outcome.UNCHANGED},
                       replaced=outcome.replaced)
        if rb.stopped and not stop.lease_lost:
            records.set_status(revision, RevisionStatus.FAILED,
                               description=f"{failure.summary}; its rollback was stopped "
                                           f"({rb.stopped})")
    elif run.options.rollback:
        records.set_status(revision, RevisionStatus.FAILED,
                           description=f"{failure.summary}; rollback skipped (stopped again)")
    return replace(base, rollback=rb, stopped=str(stop.reason or ""),
                   stop_detail=stop.detail)
