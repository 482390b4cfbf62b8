"""The apply commands' reports, for a terminal: a change set (`apply --dry-run`), an apply's
result, the history of revisions; and the one-paragraph errors that end a rejected or
failed apply. Lines only: the command prints them through the run's redactor."""

from __future__ import annotations

from collections.abc import Sequence

from gitops.apply.changeset import Action, ChangeSet
from gitops.apply.results import ApplyResult, FailureStage, Outcome, Rejection, RollbackResult
from gitops.apply.stop import StopReason
from gitops.errors import ApplyError, ExitCode
from gitops.inventory import RevisionInfo
from gitops.plan.lines import field_lines

_SIGN = {Action.CREATE: "+", Action.UPDATE: "~", Action.REPLACE: "-/+"}
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
    """What applying would change: each object sent (+ create, ~ update, -/+ replace with
    why, field by field, with the run's redactor), each prune candidate (- delete, keep),
    then the counts."""
    out: list[str] = []
    for c in cs.changes:
        if not c.action.sends:
            continue
        note = (f" (replace: {c.note})" if c.action is Action.REPLACE
                else f" ({c.note})" if c.note else "")
        out.append(f"{_SIGN[c.action]} {c.id}{note}")
        for f in (c.diff.fields if c.diff is not None else ()):
            out += [f"    {ln}" for ln in field_lines(f, cs.redactor, indent=" ")]
    for c in cs.prune:
        out.append(f"- {c.id}" if c.action is Action.DELETE else f"  keep {c.id}: {c.note}")
    replace = cs.count(Action.REPLACE)
    out.append(f"plan: {cs.count(Action.CREATE)} to create, {cs.count(Action.UPDATE)} to "
               f"update, " + (f"{replace} to replace, " if replace else "")
               + f"{cs.count(Action.DELETE)} to delete, {cs.count(Action.UNCHANGED)} "
               "unchanged (dry run: nothing was changed)")
    return out


def rejection_lines(rejections: Sequence[Rejection]) -> list[str]:
    return [f"rejected: {r.describe()}" for r in rejections]


def rejected_error(rejections: Sequence[Rejection], *, dry_run: bool,
                   command: str) -> ApplyError:
    """The paragraph that ends an apply (or dry run) the API server rejected."""
    conflicts = [r for r in rejections if r.reason == "Conflict"]
    immutable = [r for r in rejections if r.reason == "Immutable"]
    what = "in the dry run" if dry_run else "in the server-side dry run"
    hint = ("Fix the objects listed above in git (each line names the object, the "
            f"field and the server's message) and run '{command}' again.")
    if conflicts:
        hint += (f" {len(conflicts)} of them have fields owned by another field manager: "
                 "remove those fields from the render, or take them over with "
                 "--force-conflicts.")
    if immutable:
        hint += (f" {len(immutable)} of them change fields that cannot change on a live "
                 "object and that stackctl will not re-create: each line says why and the "
                 "safe way forward.")
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
    out += [f"replaced {o.id}: {o.message}" for o in result.objects
            if o.outcome is Outcome.REPLACED]
    if result.failure is None:
        if not result.changed:
            out.append(f"no changes: {result.count(Outcome.UNCHANGED)} object(s) up to date; "
                       f"revision {result.revision} is current")
        else:
            replaced = result.count(Outcome.REPLACED)
            out.append(f"revision {result.revision} deployed: {result.count(Outcome.CREATED)} "
                       f"created, {result.count(Outcome.CONFIGURED)} configured, "
                       + (f"{replaced} replaced, " if replaced else "")
                       + f"{result.count(Outcome.UNCHANGED)} unchanged, "
                       f"{result.count(Outcome.DELETED)} pruned")
        return out
    f = result.failure
    if result.revision is None:
        out.append(f"apply stopped: {f.summary}")
        return out
    verb = "stopped" if f.stage is FailureStage.STOPPED else f"failed ({f.stage})"
    out.append(f"apply of revision {result.revision} {verb}: {f.summary}")
    for o in f.objects[:SHOWN]:
        out.append(f"  {o.id}: {o.reason}")
        out += [f"    {line}" for line in o.details]
    if len(f.objects) > SHOWN:
        where = f" (all of them in {log_path})" if log_path else ""
        out.append(f"  and {len(f.objects) - SHOWN} more{where}")
    rb = result.rollback
    if rb is None:
        return out
    for o in rb.unrestored:
        out.append(f"  not restored: {o.id}: {o.reason}")
        out += [f"    {line}" for line in o.details]
    if rb.error and not rb.stopped:
        for o in rb.failure.objects if rb.failure else ():
            out.append(f"  rollback: {o.id}: {o.reason}")
            out += [f"    {line}" for line in o.details]
    elif rb.stopped:
        out.append(f"rollback stopped ({rb.stopped}) before it finished: {rb.reapplied} "
                   f"re-applied, {len(rb.deleted)} deleted")
    elif rb.to_revision is not None:
        out += [f"rollback: replaced {r} again as revision {rb.to_revision} had it"
                for r in rb.replaced]
        out.append(f"rolled back to revision {rb.to_revision}: {_state(rb)}")
    return out


def _state(rb: RollbackResult) -> str:
    """What the rollback left, never "healthy" alone when something was not restored."""
    if rb.unrestored:
        return (f"{len(rb.unrestored)} protected object(s) NOT restored (still as the failed "
                "attempt left them, listed above)"
                + ("; the rest healthy" if rb.healthy else "; NOT healthy"))
    if rb.unconfirmed:
        return "re-applied, health not confirmed before exiting"
    return "healthy" if rb.healthy else "NOT healthy"


def _rollback_outcome(result: ApplyResult, *, attempt: str) -> str:
    """What the automatic rollback of a failed or stopped apply did, as a sentence."""
    rb, rev = result.rollback, result.revision
    partly = (f"the cluster is partly at revision {rev} (recorded failed); the next "
              "'stackctl apply' or 'stackctl rollback' re-applies what differs and prunes "
              f"what revision {rev} created.")
    if rb is None:
        return f"It was not rolled back (--no-rollback): {partly}"
    if rb.stopped:
        return (f"Its rollback was stopped by a second {rb.stopped} before it "
                f"finished ({rb.reapplied} re-applied, {len(rb.deleted)} deleted): {partly}")
    if rb.error:
        return (f"The automatic rollback failed too: {rb.error.rstrip('.')}; the objects "
                "it failed on are listed above.")
    if rb.to_revision is None:
        return (f"There was no earlier revision to roll back to: the {len(rb.deleted)} "
                f"object(s) the {attempt} created were deleted"
                + (f" ({len(rb.kept)} protected one(s) kept)" if rb.kept else "") + ".")
    again = f", {len(rb.replaced)} re-created" if rb.replaced else ""
    done = (f"It was rolled back to revision {rb.to_revision} (recorded as revision "
            f"{rb.recorded_revision}; {rb.reapplied} re-applied{again}, "
            f"{len(rb.deleted)} deleted)")
    if rb.unrestored:
        names = ", ".join(str(o.id) for o in rb.unrestored)
        return (f"{done}, except {len(rb.unrestored)} protected object(s) the API server "
                f"would not take back, which keep the failed attempt's content: {names}.")
    if rb.unconfirmed:
        return (f"{done}; its health was not confirmed within the stop timeout "
                "(cluster.yaml apply.stopTimeout): check it with 'stackctl drift'.")
    return f"{done}, which is {'healthy' if rb.healthy else 'NOT healthy'}."


def failed_error(result: ApplyResult, *, command: str) -> ApplyError:
    """The paragraph that ends a failed apply: what failed, what the rollback did."""
    f = result.failure
    assert f is not None
    outcome = _rollback_outcome(result, attempt="attempt")
    if f.stage is FailureStage.HEALTH and "timeout" in f.summary:
        hint = ("The objects and reasons are listed above; fix them in git, or give the "
                f"rollout more time with --timeout, and run '{command}' again.")
    else:
        hint = f"The objects and reasons are listed above; fix them and run '{command}' again."
    return ApplyError(f"the apply of revision {result.revision} failed: {f.summary}. "
                      f"{outcome}", hint=hint)


def stopped_error(result: ApplyResult, *, command: str) -> ApplyError:
    """The paragraph that ends an apply a signal or a lost lease stopped, with its exit
    code: 130 (SIGINT), 143 (SIGTERM), 2 (lost lease)."""
    reason = result.stopped
    f = result.failure
    if reason == StopReason.LEASE_LOST:
        return ApplyError(
            f"the apply of revision {result.revision} on cluster {result.cluster!r} stopped: "
            f"{result.stop_detail}. Nothing further was changed and it was not rolled back, "
            "since another apply may be working on the cluster now; revision "
            f"{result.revision} stays pending and the cluster is partly at it: the next "
            "apply marks it failed, re-applies what differs and prunes what it created.",
            hint=f"Make sure no other apply runs on the cluster, then run '{command}' again.")
    if f is None:
        message = (f"{reason} came after revision {result.revision} was deployed and healthy: "
                   "the apply finished.")
    elif result.revision is None:
        message = (f"the apply on cluster {result.cluster!r} was stopped by {reason} before "
                   "anything was applied: nothing was changed.")
    elif f.stage is FailureStage.STOPPED:
        message = (f"the apply of revision {result.revision} was {f.summary}. "
                   + _rollback_outcome(result, attempt="stopped attempt"))
    else:
        message = (f"the apply of revision {result.revision} failed: {f.summary}, and "
                   f"{reason} came before it had rolled back. "
                   + _rollback_outcome(result, attempt="attempt"))
    error = ApplyError(message + " The apply lease is released.",
                       hint=f"Run '{command}' again when you are ready.")
    error.exit_code = ExitCode.TERMINATED if reason == StopReason.SIGTERM \
        else ExitCode.INTERRUPTED
    return error


def _short(r: RevisionInfo) -> str:
    """The commit, 12 characters, '-dirty' appended as `git describe --dirty` does."""
    return ((r.commit or "-")[:12] + ("-dirty" if r.dirty else ""))


def history_lines(revisions: Sequence[RevisionInfo]) -> list[str]:
    out = [f"{'REVISION':<9} {'COMMIT':<19} {'TIME':<21} {'STATUS':<12} {'OBJECTS':>7}  "
           "DESCRIPTION"]
    for r in revisions:
        out.append(f"{r.revision:<9} {_short(r):<19} {r.time:<21} {r.status:<12} "
                   f"{r.object_count:>7}  {r.description}")
        out += [f"{'':<9} replaced {x}" for x in r.replaced]
    return out
