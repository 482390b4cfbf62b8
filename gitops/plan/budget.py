"""Keeping a plan under a size budget (a forge's comment limit) without cutting mid-line.

Three steps, each tried only when the previous one is not enough:
1. the field changes of the biggest objects are replaced by one line each
   (`~ Deployment.apps/x -n ns: 340 field changes, elided`), biggest first;
2. the object lists of the biggest clusters are replaced by their counts;
3. only the summary (the table in markdown) is kept.
Every form says what it elided. Sizes are UTF-8 bytes, which is never less than the
character count forges limit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from gitops.plan.lines import entry_lines, entry_summary
from gitops.plan.model import Plan
from gitops.resource import ResourceId

# Room for the elision note itself, whose digits are not known before the elision.
NOTE_MARGIN = 400


@dataclass
class Elision:
    objects: set[tuple[str, ResourceId]] = field(default_factory=set)
    clusters: set[str] = field(default_factory=set)
    details: bool = False

    @property
    def any(self) -> bool:
        return bool(self.objects or self.clusters or self.details)

    def object_elided(self, cluster: str, rid: ResourceId) -> bool:
        return (cluster, rid) in self.objects

    def note(self, plan: Plan, max_bytes: int | None) -> str:
        """One sentence saying what was elided, or '' when nothing was."""
        if not self.any:
            return ""
        parts = []
        objs = fields = 0
        for cp in plan.clusters:
            if self.details or cp.name in self.clusters:
                continue
            for c in cp.diff.changed:
                if (cp.name, c.id) in self.objects:
                    objs += 1
                    fields += len(c.fields)
        if objs:
            parts.append(f"the field changes of {objs:,} object(s) ({fields:,} field changes) "
                         "are summarised in one line each")
        listed = [cp for cp in plan.clusters
                  if cp.status != "unchanged" and (self.details or cp.name in self.clusters)]
        if listed:
            n = sum(len(cp.diff.objects) for cp in listed)
            parts.append(f"the object lists of {len(listed)} cluster(s) ({n:,} object "
                         "changes) are reduced to their counts")
        budget = f"the {max_bytes:,}-byte budget" if max_bytes else "the size budget"
        return (f"This plan exceeds {budget}: " + "; ".join(parts)
                + ". Run `stackctl plan` with `--format text` or `--format json` for "
                "every change.")


def _size(text: str) -> int:
    return len(text.encode("utf-8"))


def fit(plan: Plan, render: Callable[[Plan, Elision], str], max_bytes: int | None) -> str:
    """The output of `render`, eliding as little as needed to stay within max_bytes."""
    el = Elision()
    out = render(plan, el)
    if max_bytes is None or _size(out) <= max_bytes:
        return out
    # 1. Biggest objects first: what each saves when summarised.
    costs: list[tuple[int, str, ResourceId]] = []
    for cp in plan.clusters:
        for c in cp.diff.changed:
            full = _size("\n".join(entry_lines(c, plan.redactor)))
            costs.append((full - _size(entry_summary(c)), cp.name, c.id))
    costs.sort(key=lambda x: (-x[0], x[1], x[2]))
    i = 0
    while i < len(costs):
        target, saved = _size(out) - max_bytes + NOTE_MARGIN, 0
        while i < len(costs) and saved < target:
            el.objects.add((costs[i][1], costs[i][2]))
            saved += costs[i][0]
            i += 1
        out = render(plan, el)
        if _size(out) <= max_bytes:
            return out
    # 2. Whole clusters' object lists, the biggest first.
    sized = sorted(
        (cp for cp in plan.clusters if cp.status != "unchanged"),
        key=lambda cp: (-len(cp.diff.objects), cp.name),
    )
    for cp in sized:
        el.clusters.add(cp.name)
        out = render(plan, el)
        if _size(out) <= max_bytes:
            return out
    # 3. The summary alone.
    el.details = True
    out = render(plan, el)
    if _size(out) <= max_bytes:
        return out
    return cut_lines(out, max_bytes)


def cut_lines(text: str, max_bytes: int) -> str:
    """The last resort (a summary bigger than the budget: thousands of clusters): whole
    lines up to the budget, then a line saying so."""
    tail = "\n… (cut: the summary alone exceeds the size budget)\n"
    room = max_bytes - _size(tail)
    out: list[str] = []
    used = 0
    for line in text.splitlines(keepends=True):
        if used + _size(line) > room:
            break
        out.append(line)
        used += _size(line)
    return "".join(out) + tail
