"""The apply commands' reports, for a terminal: a change set (`apply --dry-run`), an apply's
result, the history of revisions; and the one-paragraph errors that end a rejected or
failed apply. Lines only: the command prints them through the run's redactor."""

from __future__ import annotations

from collections.abc import Sequence

from gitops.apply.changeset import Action, ChangeSet
from gitops.apply.results import ApplyResult, FailureStage, Outcome, Rejection
from gitops.errors import ApplyError
from gitops.inventory import RevisionInfo
from gitops.plan.lines import field_lines

_SIGN = {Action.CREATE: "+", Action.UPDATE: "~"}
SHOWN = 10  # failed objects listed on the terminal; the log file and JSON have all


def failure_log_lines(result: ApplyResult) -> list[str]:
    """Every object of a failed apply (and of its rollback) with its reason and details:
    the log file the terminal's "and N more" points at."""
    out = [f"cluster {result.cluster}, revision {result.revision}"]
    for label, failure in (("apply", result.failure),
                           ("rollback", result.rollback.failure if result.rollback else None)):
        if failure is None:
            continue
        out.append(f"{label} failed ({failure.stage}): {failure.summary}")
        for o in failure.objects:
            out.append(f"  {o.id}: {o.reason}")
            out += [f"    {line}" for line in o.details]
    return out


def change_set_lines(cs: ChangeSet) -> list[str]:
    """What applying would change: each object sent (+ create, ~ update, field by field,
    with the run's redactor), each prune candidate (- delete, keep), then the counts."""
    out: list[str] = []
    for c in cs.changes:
        if not c.action.sends:
            continue
        note = f" ({c.note})" if c.note else ""
        out.append(f"{_SIGN[c.action]} {c.id}{note}")
        for f in (c.diff.fields if c.diff is not None else ()):
            out += [f"    {ln}" for ln in field_lines(f, cs.redactor, indent=" ")]
    for c in cs.prune:
        out.append(f"- {c.id}" if c.action is Action.DELETE else f"  keep {c.id}: {c.note}")
    out.append(f"plan: {cs.count(Action.CREATE)} to create, {cs.count(Action.UPDATE)} to "
               f"update, {cs.count(Action.DELETE)} to delete, {cs.count(Action.UNCHANGED)} "
               "unchanged (dry run: nothing was changed)")
    return out


def rejection_lines(rejections: Sequence[Rejection]) -> list[str]:
    return [f"rejected: {r.describe()}" for r in rejections]


def rejected_error(rejections: Sequence[Rejection], *, dry_run: bool,
                   command: str) -> ApplyError:
    """The paragraph that ends an apply (or dry run) the API server rejected."""
    conflicts = [r for r in rejections if r.reason == "Conflict"]
    what = "in the dry run" if dry_run else "in the server-side dry run"
    hint = ("Fix the objects listed above in git (each line names the object, the "
            f"field and the server's message) and run '{command}' again.")
    if conflicts:
        hint += (f" {len(conflicts)} of them have fields owned by another field manager: "
                 "remove those fields from the render, or take them over with "
                 "--force-conflicts.")
    return ApplyError(f"{len(rejections)} object(s) were rejected by the API server "
                      f"{what}; nothing was applied.", hint=hint)


def result_lines(result: ApplyResult, *, log_path: str = "") -> list[str]:
    """What an apply did: notes, kept prune candidates, the summary; for a failed apply,
    the first SHOWN objects and reasons ("and N more": every one is in `log_path` and the
    JSON result), and what the rollback did."""
    out = [f"note: revision {n} had been left pending by an apply that stopped; marked failed"
           for n in result.abandoned]
    if result.lease_taken_over:
        out.append(f"note: took over the stale lease held by {result.lease_taken_over}")
    out += [f"kept {p.id}: {p.message}" for p in result.prune if p.outcome is Outcome.KEPT]
    if result.failure is None:
        if not result.changed:
            out.append(f"no changes: {result.count(Outcome.UNCHANGED)} object(s) up to date; "
                       f"revision {result.revision} is current")
        else:
            out.append(f"revision {result.revision} deployed: {result.count(Outcome.CREATED)} "
                       f"created, {result.count(Outcome.CONFIGURED)} configured, "
                       f"{result.count(Outcome.UNCHANGED)} unchanged, "
                       f"{result.count(Outcome.DELETED)} pruned")
        return out
    f = result.failure
    out.append(f"apply of revision {result.revision} failed ({f.stage}): {f.summary}")
    for o in f.objects[:SHOWN]:
        out.append(f"  {o.id}: {o.reason}")
        out += [f"    {line}" for line in o.details]
    if len(f.objects) > SHOWN:
        where = f" (all of them in {log_path})" if log_path else ""
        out.append(f"  and {len(f.objects) - SHOWN} more{where}")
    rb = result.rollback
    if rb is not None and rb.error:
        for o in rb.failure.objects if rb.failure else ():
            out.append(f"  rollback: {o.id}: {o.reason}")
            out += [f"    {line}" for line in o.details]
    elif rb is not None and rb.to_revision is not None:
        out.append(f"rolled back to revision {rb.to_revision}: "
                   f"{'healthy' if rb.healthy else 'NOT healthy'}")
    return out


def failed_error(result: ApplyResult, *, command: str) -> ApplyError:
    """The paragraph that ends a failed apply: what failed, what the rollback did."""
    f = result.failure
    assert f is not None
    rb = result.rollback
    if rb is None:
        outcome = ("It was not rolled back (--no-rollback): the cluster is as the failed "
                   "attempt left it.")
    elif rb.error:
        outcome = (f"The automatic rollback failed too: {rb.error.rstrip('.')}; the objects "
                   "it failed on are listed above.")
    elif rb.to_revision is None:
        outcome = (f"There was no earlier revision to roll back to: the {len(rb.deleted)} "
                   "object(s) the attempt created were deleted"
                   + (f" ({len(rb.kept)} protected one(s) kept)" if rb.kept else "") + ".")
    else:
        state = "healthy" if rb.healthy else "NOT healthy"
        outcome = (f"It was rolled back to revision {rb.to_revision} (recorded as revision "
                   f"{rb.recorded_revision}; {rb.reapplied} re-applied, {len(rb.deleted)} "
                   f"deleted), which is {state}.")
    if f.stage is FailureStage.HEALTH and "timeout" in f.summary:
        hint = ("The objects and reasons are listed above; fix them in git, or give the "
                f"rollout more time with --timeout, and run '{command}' again.")
    else:
        hint = f"The objects and reasons are listed above; fix them and run '{command}' again."
    return ApplyError(f"the apply of revision {result.revision} failed: {f.summary}. "
                      f"{outcome}", hint=hint)


def history_lines(revisions: Sequence[RevisionInfo]) -> list[str]:
    out = [f"{'REVISION':<9} {'COMMIT':<13} {'TIME':<21} {'STATUS':<12} {'OBJECTS':>7}  "
           "DESCRIPTION"]
    out += [f"{r.revision:<9} {(r.commit or '-')[:12]:<13} {r.time:<21} {r.status:<12} "
            f"{r.object_count:>7}  {r.description}" for r in revisions]
    return out
