"""`stackctl plan --live`: the working tree's render against a live cluster.

The change set is the apply's own (gitops.apply.calculate, with fields), so the plan shows
what `stackctl apply` would do, object for object, and agrees with `apply --dry-run`: each
object the no-change test does not settle is sent as a server-side dry-run apply, and the
answer (the object as the server would store it, with its defaults and webhook mutations)
is compared with the live object; an object whose CRD or Namespace comes with the render
is added; an object of the last applied revision that the render no longer holds is
removed (pruned), or noted as kept when its kind is protected.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from gitops.apply import Action, ApplyOptions, ChangeSet, ProgressEvent, Target, calculate
from gitops.diff import ObjectSetDiff
from gitops.errors import ClusterError
from gitops.plan.model import ClusterPlan, ClusterStatus, Plan, RefInfo
from gitops.redact import Redactor

Progress = Callable[[str], None]


def _noop(_: str) -> None:
    return None


def plan_of(cs: ChangeSet, *, head: RefInfo) -> Plan:
    """The plan of a change set calculated with fields, for plan's renderers."""
    name = cs.target.cluster
    if cs.rejections:
        raise ClusterError(
            f"the API server of cluster {name!r} rejects {len(cs.rejections)} object(s) of "
            "the render: " + cs.redactor.text(
                "; ".join(r.describe() for r in cs.rejections[:5]), pairs="=") + ".",
            hint="Fix the manifests; 'stackctl apply --dry-run' lists every rejection.")
    diff = ObjectSetDiff.collect(c.diff if c.action is not Action.UNCHANGED else None
                                 for c in cs.changes if c.action is not Action.KEEP)
    notes = tuple(f"keep {c.id}: {c.note}" for c in cs.changes if c.action is Action.KEEP)
    notes += tuple(f"{m.id}: {m.describe()}" for m in cs.migrations)
    notes += tuple(f"replace {c.id}: {c.note}" for c in cs.changes
                   if c.action is Action.REPLACE)
    rev = cs.previous
    base = RefInfo(ref=f"{name} (live" + (f", revision {rev.revision})" if rev else ")"),
                   commit=(rev.commit if rev and rev.commit else "-"))
    status: ClusterStatus = "changed" if not diff.is_empty else "unchanged"
    return Plan(base=base, head=head, clusters=(ClusterPlan(name, status, diff, notes),),
                redactor=cs.redactor)


def live_plan(
    *,
    target: Target,
    objects: Sequence[Mapping[str, Any]],
    head: RefInfo,
    options: ApplyOptions,
    redactor: Redactor,
    progress: Progress | None = None,
) -> Plan:
    """The plan of applying `objects` (the cluster's render) to the live cluster."""
    say = progress or _noop

    def on_event(e: ProgressEvent) -> None:
        say(f"{target.cluster}: {e.message}")

    cs = calculate(target, [dict(o) for o in objects], options=options, redactor=redactor,
                   fields=True, progress=on_event)
    return plan_of(cs, head=head)
