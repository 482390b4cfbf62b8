"""`execute`: carry out a change set under the cluster's apply lease.

    lease -> the records still as calculated (else calculate again, under the lease) ->
    mark abandoned pending revisions failed -> record a pending revision -> apply phase by
    phase (CRDs wait Established, and migrate storage when they drop a stored version;
    objects deferred behind a CRD or Namespace of the set are dry-run right after those
    phases; objects to replace are deleted just before their phase re-creates them) ->
    wait for health -> prune -> record.
    On an apply error or a health failure: the automatic rollback (rollback.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from gitops.apply.calculate import calculate
from gitops.apply.changeset import Action, ChangeSet
from gitops.apply.lease import ClusterLease
from gitops.apply.options import ApplyOptions, Progress, Target, no_progress
from gitops.apply.phases import Run, run_phases
from gitops.apply.prune import execute_prune
from gitops.apply.results import (
    ApplyResult,
    ObjectOutcome,
    Outcome,
    ProgressEvent,
    RollbackResult,
    Stage,
)
from gitops.apply.rollback import roll_back
from gitops.inventory import RevisionStatus
from gitops.redact import Redactor
from gitops.resource import ResourceId

Obj = dict[str, Any]


def apply_objects(target: Target, objects: Sequence[Obj], *, options: ApplyOptions,
                  redactor: Redactor, progress: Progress = no_progress) -> ApplyResult:
    """Apply `objects` (plain dicts, as rendered) to the target as a new revision:
    `calculate`, then `execute`."""
    change_set = calculate(target, objects, options=options, redactor=redactor,
                           progress=progress)
    return execute(change_set, options, progress)


def execute(change_set: ChangeSet, options: ApplyOptions,
            progress: Progress = no_progress) -> ApplyResult:
    """Carry out `change_set` (calculated with the same options) under the cluster's
    lease. A change set with rejections changes nothing. When the records moved between
    the calculation and the lease (another apply ran), the change set is calculated again
    under the lease before anything changes."""
    cs, target = change_set, change_set.target
    if not cs.ok:
        return ApplyResult(target.cluster, None, False, _planned(cs), rejections=cs.rejections)
    records = target.records
    records.ensure_namespace()
    progress(ProgressEvent(Stage.LEASE, f"taking the apply lease of cluster {target.cluster}"))
    with ClusterLease(target.kube, cluster=target.cluster, namespace=target.records_namespace,
                      break_lease=options.break_lease) as lease:
        taken = lease.taken_over.holder if lease.taken_over else None
        now = records.revisions()
        if [(r.revision, r.status) for r in now] != [(r.revision, r.status)
                                                      for r in cs.revisions]:
            progress(ProgressEvent(Stage.READ, "the records changed since the change set was "
                                               "calculated; calculating it again"))
            cs = calculate(target, cs.desired, options=options, redactor=cs.redactor,
                           fields=cs.fields, progress=progress)
        result = _locked(Run(target, options, cs.redactor, progress), cs)
    return replace(result, lease_taken_over=taken) if taken else result


def _planned(cs: ChangeSet) -> tuple[ObjectOutcome, ...]:
    return tuple(ObjectOutcome(c.id, Outcome.UNCHANGED) for c in cs.changes
                 if c.action is Action.UNCHANGED)


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

    desired_ids = [ResourceId.of(o) for o in cs.desired]
    revision = cs.revisions.next_number
    progress(ProgressEvent(Stage.RECORD, f"recording revision {revision} (pending)"))
    replacing = cs.replacements
    records.write(revision, cs.desired, status=RevisionStatus.PENDING, commit=options.commit,
                  description=options.description, replaced=[str(r) for r in replacing])
    records.write_parent({*desired_ids, *(ResourceId.of(o) for o in cs.previous_objects)})

    run.restart_clock()
    outcome = run_phases(run, cs.to_apply(), cs.deferred,
                         wait_for=cs.desired if options.wait else None, force=options.force,
                         replacing=replacing, migrations={m.id: m for m in cs.migrations})
    done = {**{o.id: o for o in unchanged}, **outcome.outcomes}
    ordered = tuple(done.get(r) or ObjectOutcome(r, Outcome.SKIPPED) for r in desired_ids)
    if outcome.failure is not None:
        records.set_status(revision, RevisionStatus.FAILED,
                           description=outcome.failure.summary)
        progress(ProgressEvent(Stage.FAILED, outcome.failure.summary))
        rb: RollbackResult | None = None
        if options.rollback:
            rb = roll_back(run, failed_revision=revision, prev=prev,
                           prev_objects=cs.previous_objects, created=outcome.created,
                           touched={r for r, o in outcome.outcomes.items()
                                    if o.outcome is not Outcome.UNCHANGED},
                           replaced=outcome.replaced)
        return ApplyResult(cluster, revision, True, ordered, health=outcome.health,
                           failure=outcome.failure, rollback=rb, abandoned=abandoned)

    pruned: list[ObjectOutcome] = []
    if cs.prune:
        deletes = sum(1 for c in cs.prune if c.action is Action.DELETE)
        progress(ProgressEvent(Stage.PRUNE, f"pruning {deletes} object(s) no longer in the "
                                            "render"))
        pruned = execute_prune(run.target.kube, cs.prune)
    records.write_parent(desired_ids)
    records.set_status(revision, RevisionStatus.DEPLOYED)
    if prev is not None:
        records.set_status(prev.revision, options.replaced)
    progress(ProgressEvent(Stage.DONE, f"revision {revision} deployed"))
    return ApplyResult(cluster, revision, True, ordered, prune=tuple(pruned),
                       health=outcome.health, abandoned=abandoned)
