"""The automatic rollback of a failed apply."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from gitops.apply.order import phase_of
from gitops.apply.phases import PhasesOutcome, Run, deadline_wait, health_failure, run_phases
from gitops.apply.prune import is_protected
from gitops.apply.results import ProgressEvent, RollbackResult, Stage
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
        run.target.kube.delete(str(obj["apiVersion"]), rid.kind, rid.namespace, rid.name)
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
    both."""
    records = run.target.records
    back: dict[ResourceId, str] = {}
    try:
        reapplied = 0
        outcome = PhasesOutcome()
        if prev is not None:
            # Only what the failed attempt sent can differ from the previous revision.
            # Protected kinds are not rolled back (cluster.yaml `protectedKinds`): the API
            # server refuses to take a CRD back to versions without its new storage version
            # ("v1 was previously a storage version, and must remain in spec.versions").
            restore = [o for o in prev_objects if ResourceId.of(o) in touched
                       and not is_protected(o, run.options.policy.protected_kinds)]
            run.progress(ProgressEvent(
                Stage.ROLLBACK, f"re-applying {len(restore)} object(s) of revision "
                                f"{prev.revision}"))
            ids = {ResourceId.of(o) for o in restore}
            back = {rid: f"back to revision {prev.revision}: {why}"
                    for rid, why in (replaced or {}).items() if rid in ids}
            run.restart_clock()
            # Our own previous state: take back fields the failed attempt moved.
            outcome = run_phases(run, restore, set(), wait_for=None, force=True,
                                 replacing=back)
            reapplied = len(outcome.outcomes)
        keep = {ResourceId.of(o) for o in prev_objects}
        deleted, kept = _delete_created(run, created, keep)
        failure = outcome.failure
        if failure is None and prev is not None and run.options.wait:
            run.progress(ProgressEvent(Stage.ROLLBACK, f"waiting for revision {prev.revision} "
                                                       "to be healthy again"))
            run.restart_clock()
            report = deadline_wait(run, prev_objects, "the rollback")
            if not report.ok:
                failure = health_failure(run, report, "the rollback")
        healthy = failure is None
        error = failure.summary if failure else ""
        recorded: int | None = None
        if prev is not None:
            recorded = failed_revision + 1
            records.write(
                recorded, prev_objects,
                status=RevisionStatus.DEPLOYED if healthy else RevisionStatus.FAILED,
                commit=prev.commit,
                description=f"automatic rollback to revision {prev.revision} after "
                            f"revision {failed_revision} failed",
                replaced=[str(r) for r in back],
            )
            records.set_status(prev.revision, RevisionStatus.SUPERSEDED)
            records.write_parent(keep)
        else:
            records.write_parent([])
        return RollbackResult(prev.revision if prev else None, recorded, reapplied,
                              tuple(deleted), tuple(kept), healthy, error, failure,
                              replaced=tuple(back))
    except UnreachableError:
        raise
    except ClusterError as e:
        return RollbackResult(prev.revision if prev else None, None, 0, (), (), False,
                              run.redactor.text(str(e), pairs="="))
