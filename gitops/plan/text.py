"""The plan for a terminal."""

from __future__ import annotations

from gitops.plan.budget import Elision, fit
from gitops.plan.lines import entry_lines, entry_summary, flag_lines, image_line
from gitops.plan.model import ClusterPlan, ClusterStatus, Plan
from gitops.scrub import redaction_note


def _counts(cp: ClusterPlan) -> str:
    n = cp.counts
    return (f"{n['added']} added, {n['removed']} removed, {n['changed']} changed, "
            f"{n['images']} image change{'s' if n['images'] != 1 else ''}")


def summary_line(plan: Plan) -> str:
    statuses: tuple[ClusterStatus, ...] = ("changed", "unchanged", "added", "removed")
    by = {s: len(plan.by_status(s)) for s in statuses}
    parts = [f"{by['changed']} cluster(s) changed", f"{by['unchanged']} unchanged"]
    if by["added"]:
        parts.append(f"{by['added']} added")
    if by["removed"]:
        parts.append(f"{by['removed']} removed")
    total = {k: sum(cp.counts[k] for cp in plan.clusters)
             for k in ("added", "removed", "changed", "images")}
    return (", ".join(parts) + f"; objects: {total['added']} added, {total['removed']} "
            f"removed, {total['changed']} changed; {total['images']} image change(s)")


def _cluster(plan: Plan, cp: ClusterPlan, el: Elision) -> list[str]:
    notes = [f"  note: {n}" for n in cp.notes]
    if cp.status == "unchanged":
        return [f"cluster {cp.name}: unchanged ({cp.diff.unchanged} objects)", *notes]
    title = {"changed": "changed", "added": "added (only at head)",
             "removed": "removed (only at base)"}[cp.status]
    out = [f"cluster {cp.name}: {title}: {_counts(cp)}", *notes]
    if el.details or cp.name in el.clusters:
        out.append("  (object list elided)")
        return out
    if cp.diff.images:
        out.append("  images:")
        out += [f"    {image_line(i)}" for i in cp.diff.images]
    flags = flag_lines(cp.diff.objects)
    if flags:
        out.append("  flagged:")
        out += [f"    {f}" for f in flags]
    for c in cp.diff.objects:
        if el.object_elided(cp.name, c.id):
            out.append("  " + entry_summary(c))
        else:
            out += ["  " + ln for ln in entry_lines(c, plan.redactor)]
    return out


def _render(plan: Plan, el: Elision, max_bytes: int | None) -> str:
    lines = [f"plan: {plan.base.ref} ({plan.base.short}) -> {plan.head.ref} "
             f"({plan.head.short})"]
    lines += [f"check failed: {c}" for c in plan.failed_checks]
    note = el.note(plan, max_bytes)
    if note:
        lines.append(f"note: {note}")
    lines.append("")
    for cp in plan.clusters:
        lines += _cluster(plan, cp, el)
    lines += ["", summary_line(plan)]
    hidden = redaction_note("\n".join(lines))
    if hidden:
        lines.append(f"redacted: {hidden}")
    return "\n".join(lines) + "\n"


def render_text(plan: Plan, *, max_bytes: int | None = None) -> str:
    """The plan as plain text; within max_bytes when given (no limit by default)."""
    return fit(plan, lambda p, el: _render(p, el, max_bytes), max_bytes)
