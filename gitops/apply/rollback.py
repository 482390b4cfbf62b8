"""The automatic rollback of a failed or stopped apply.

What the failed attempt changed is taken back to the previous revision's content, protected
kinds included: protection is about deletion, so a protected object the previous revision
holds is re-applied too, but a refusal of one (a CRD the server will not take back to
versions without its new storage version) does not stop the rollback: it is listed as not
restored. What the attempt created is deleted, protected kinds excepted (kept, listed).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from gitops.apply.order import phase_of
from gitops.apply.phases import PhasesOutcome, deadline_wait, health_failure, run_phases
from gitops.apply.prune import delete_member, is_protected
from gitops.apply.results import ObjectFailure, Outcome, ProgressEvent, RollbackResult, Stage
from gitops.apply.run import Run
from gitops.apply.stop import Stopped
from gitops.errors import ClusterError
from gitops.inventory import RevisionInfo, RevisionStatus
from gitops.kube import UnreachableError
from gitops.resource import ResourceId

Obj = dict[str, Any]


def _delete_created(run: Run, created: Sequence[Obj], keep: set[ResourceId]
                    ) -> tuple[list[ResourceId], list[ResourceId]]:
    deleted: list[ResourceId] = []
    kept: list[ResourceId] = []
    # Reverse phase order: webhooks and workloads before the namespaces they live in.
    for obj in sorted(created, key=lambda o: (-phase_of(ResourceId.of(o)), ResourceId.of(o))):
        rid = ResourceId.of(obj)
        if rid in keep:
            continue
        if is_protected(obj, run.options.policy.protected_kinds):
            kept.append(rid)
            continue
        run.check()
        outcome = delete_member(run.target.kube, str(obj["apiVersion"]), rid,
                                label=run.target.member_label)
        if outcome is Outcome.KEPT:
            kept.append(rid)  # it left the set since: someone else's now
            continue
        run.progress(ProgressEvent(Stage.ROLLBACK, "deleted (created by the failed attempt)",
                                   rid))
        deleted.append(rid)
    return deleted, kept


def roll_back(run: Run, *, failed_revision: int, prev: RevisionInfo | None,
              prev_objects: Sequence[Obj], created: Sequence[Obj],
              touched: set[ResourceId],
              replaced: Mapping[ResourceId, str] | None = None) -> RollbackResult:
    """The automatic rollback of a failed apply: re-apply what the failed attempt changed
    as the previous revision had it (re-creating again what it re-created: the old
    selector cannot be applied in place either), delete what it created, wait, record
    both. A stopped apply's rollback waits at most the policy's stop timeout, and a second
    stop request ends it where it is (nothing more is changed or recorded)."""
    records = run.target.records
    stopping = run.stop.requested
    run.rolling_back = True
    reapplied = 0
    unrestored: tuple[ObjectFailure, ...] = ()
    deleted: list[ResourceId] = []
    kept: list[ResourceId] = []
    back: dict[ResourceId, str] = {}
    try:
        outcome = PhasesOutcome()
        if prev is not None:
            # Only what the failed attempt sent can differ from the previous revision.
            restore = [o for o in prev_objects if ResourceId.of(o) in touched]
            protected = {ResourceId.of(o) for o in restore
                         if is_protected(o, run.options.policy.protected_kinds)}
            run.progress(ProgressEvent(
                Stage.ROLLBACK, f"re-applying {len(restore)} object(s) of revision "
                                f"{prev.revision}"))
            ids = {ResourceId.of(o) for o in restore}
            back = {rid: f"back to revision {prev.revision}: {why}"
                    for rid, why in (replaced or {}).items() if rid in ids}
            run.restart_clock(run.options.policy.stop_timeout if stopping else None)
            # Our own previous state: take back fields the failed attempt moved.
            outcome = run_phases(run, restore, set(), wait_for=None, force=True,
                                 replacing=back, best_effort=protected)
            if outcome.stopped is not None:
                raise outcome.stopped
            unrestored = tuple(ObjectFailure(r.id, "not restored: protected kind refused by "
                                             "the API server", (r.describe(),))
                               for r in outcome.unsent)
            reapplied = sum(1 for o in outcome.outcomes.values()
                            if o.outcome is not Outcome.FAILED)
        keep = {ResourceId.of(o) for o in prev_objects}
        deleted, kept = _delete_created(run, created, keep)
        failure = outcome.failure
        unconfirmed = False
        if failure is None and prev is not None and run.options.wait:
            run.progress(ProgressEvent(Stage.ROLLBACK, f"waiting for revision {prev.revision} "
                                                       "to be healthy again"))
            run.restart_clock(run.options.policy.stop_timeout if stopping else None)
            report = deadline_wait(run, prev_objects, "the rollback")
            # A stopped apply waits a bounded time: a wait it cut short is not a failure
            # of the previous revision, which is what the cluster runs again.
            unconfirmed = stopping and report.timed_out
            if not report.ok:
                failure = health_failure(run, report, "the rollback")
        healthy = failure is None
        error = failure.summary if failure and not unconfirmed else ""
        recorded: int | None = None
        if prev is not None:
            recorded = failed_revision + 1
            description = (f"automatic rollback to revision {prev.revision} after "
                           f"revision {failed_revision} "
                           + ("was stopped" if stopping else "failed"))
            if unconfirmed:
                description += "; health not confirmed before exiting"
            records.write(
                recorded, prev_objects,
                status=RevisionStatus.DEPLOYED if healthy or unconfirmed
                else RevisionStatus.FAILED,
                commit=prev.commit, description=description, dirty=prev.dirty,
                replaced=[str(r) for r in back],
            )
            records.set_status(prev.revision, RevisionStatus.SUPERSEDED)
            records.write_parent({*keep, *kept})
        else:
            records.write_parent(kept)
        return RollbackResult(prev.revision if prev else None, recorded, reapplied,
                              tuple(deleted), tuple(kept), healthy, error,
                              None if unconfirmed else failure, unrestored=unrestored,
                              unconfirmed=unconfirmed, replaced=tuple(back))
    except Stopped as e:
        # Asked again (or the lease was lost): stop here. The failed revision stays the
        # record; the next apply or rollback re-applies what differs and prunes the rest.
        return RollbackResult(prev.revision if prev else None, None, reapplied,
                              tuple(deleted), tuple(kept), False,
                              f"the rollback was stopped ({e.reason}) before it finished",
                              stopped=e.reason)
    except UnreachableError:
        raise
    except ClusterError as e:
        return RollbackResult(prev.revision if prev else None, None, 0, (), (), False,
                              run.redactor.text(str(e), pairs="="))
    finally:
        run.rolling_back = False
