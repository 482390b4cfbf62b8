"""The plan as a pull-request comment: a summary table, then one collapsible section per
changed cluster, within the forge's comment limit (65,536 characters on GitHub).

Everything that comes from the repo or the objects (refs, names, values) is either inside a
code fence longer than any backtick run it contains, or HTML-escaped: a value holding
backticks or `</details>` cannot break out of its block.
"""

from __future__ import annotations

import html
import re

from gitops.plan.budget import Elision, fit
from gitops.plan.lines import entry_lines, entry_summary, flag_lines, image_line
from gitops.plan.model import ClusterPlan, Plan
from gitops.plan.text import summary_line
from gitops.scrub import redaction_note

DEFAULT_MAX_BYTES = 65_536
_STATUS = {"changed": "changed", "unchanged": "unchanged", "added": "new cluster",
           "removed": "removed cluster"}


def fence(lines: list[str], lang: str = "") -> list[str]:
    """A fenced code block that its content cannot close."""
    longest = max((len(m) for ln in lines for m in re.findall(r"`+", ln)), default=0)
    marks = "`" * max(3, longest + 1)
    return [f"{marks}{lang}", *lines, marks]


def code(text: str) -> str:
    """An inline code span that its content cannot close (CommonMark's rule: a longer run
    of backticks, with spaces when the text starts or ends with one)."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    marks = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{marks}{pad}{text}{pad}{marks}"


def _cell(text: str) -> str:
    return code(text).replace("|", "\\|")


def _table(plan: Plan) -> list[str]:
    out = ["| cluster | status | added | removed | changed | images |",
           "|---|---|--:|--:|--:|--:|"]
    for cp in plan.clusters:
        n = cp.counts
        out.append(f"| {_cell(cp.name)} | {_STATUS[cp.status]} | {n['added']} | "
                   f"{n['removed']} | {n['changed']} | {n['images']} |")
    return out


def _section(plan: Plan, cp: ClusterPlan, el: Elision) -> list[str]:
    n = cp.counts
    summary = (f"<b>{html.escape(cp.name)}</b> ({_STATUS[cp.status]}): {n['added']} added, "
               f"{n['removed']} removed, {n['changed']} changed, {n['images']} image "
               f"change{'s' if n['images'] != 1 else ''}")
    # The blank line after <summary> ends the HTML block, so markdown resumes inside.
    out = ["<details>", f"<summary>{summary}</summary>", ""]
    out += [f"_Note: {html.escape(n)}_" for n in cp.notes] + ([""] if cp.notes else [])
    if cp.name in el.clusters:
        out += [f"_The object list of this cluster ({len(cp.diff.objects):,} object changes) "
                "is elided to fit the comment._", ""]
    else:
        if cp.diff.images:
            out += ["**Images**", "", *fence([image_line(i) for i in cp.diff.images]), ""]
        flags = flag_lines(cp.diff.objects)
        if flags:
            out += ["**Flagged for review** (API and CRD versions, objects replaced on apply)",
                    "", *fence(flags), ""]
        lines: list[str] = []
        for c in cp.diff.objects:
            if el.object_elided(cp.name, c.id):
                lines.append(entry_summary(c))
            else:
                lines += entry_lines(c, plan.redactor)
        out += ["**Objects**", "", *fence(lines, "diff"), ""]
    out += ["</details>", ""]
    return out


def _render(plan: Plan, el: Elision, max_bytes: int | None) -> str:
    out = [
        "### stackctl plan",
        "",
        f"{code(plan.base.ref)} ({plan.base.short}) → {code(plan.head.ref)} "
        f"({plan.head.short}): {html.escape(summary_line(plan))}",
        "",
    ]
    for check in plan.failed_checks:
        out += [f"> **Check failed.** {html.escape(check)}", ""]
    note = el.note(plan, max_bytes)
    if note:
        out += [f"> **Elided.** {note}", ""]
    out += [*_table(plan), ""]
    if not el.details:
        for cp in plan.clusters:
            if cp.status != "unchanged":
                out += _section(plan, cp, el)
    hidden = redaction_note("\n".join(out))
    if hidden:
        out += [f"_{html.escape(hidden[0].upper() + hidden[1:])}._", ""]
    return "\n".join(out).rstrip("\n") + "\n"


def render_markdown(plan: Plan, *, max_bytes: int | None = DEFAULT_MAX_BYTES) -> str:
    """The plan as markdown for a pull-request comment, within max_bytes."""
    return fit(plan, lambda p, el: _render(p, el, max_bytes), max_bytes)
