"""The drift report for a terminal (text) and for an issue or a CI artifact (markdown).

Field lines read like a plan's, from the revision to the live cluster (`desired -> live`):

    ~ Deployment.apps/web -n ml
    ~     spec.replicas: 2 -> 5
            changed by intruder (Update at 2026-12-01T03:12:00Z)
    -     metadata.labels.team: platform
            removed; no manager owns it now (latest other writer: an-operator (Update ...))
    - ConfigMap/settings -n ml: missing
    ? ConfigMap/stray -n ml: carries stackctl's ApplySet label, not in revision 3

Values are the redacted ones of the result (a Secret value reads `<redacted sha256:...>`),
scrubbed again of every secret value the run has seen as they are formatted.
"""

from __future__ import annotations

import html

from gitops.diff import FieldChange
from gitops.drift.model import ClusterDrift, ClusterStatus, DriftReport, FieldDrift, ObjectDrift
from gitops.plan.lines import entry_summary, field_lines, header
from gitops.plan.markdown import code, fence
from gitops.redact import Redactor
from gitops.scrub import redaction_note

# Beyond these, lines are summarised (`… 40 more`): a cluster whose every object drifted
# still gives a report a person can read; the JSON form always holds everything.
MAX_OBJECTS = 200
MAX_FIELDS = 40
MAX_GIT_OBJECTS = 50

_STATUS = {"in-sync": "in sync", "drift": "DRIFT", "error": "could not check",
           "never-applied": "never applied"}


def _who(f: FieldDrift, o: ObjectDrift) -> str:
    others = f.changed_by
    if others:
        return "changed by " + ", ".join(m.describe() for m in others)
    if f.action == "removed" or f.live is None:
        latest = f" (latest other writer: {o.writers[0].describe()})" if o.writers else ""
        return f"removed; no field manager owns it now{latest}"
    if f.owned_by_stackctl:
        return ("stackctl still owns it: the API server or a mutating webhook changed the "
                "value stackctl applied, or something applied as 'stackctl'")
    return "no field manager owns it now"


def object_lines(o: ObjectDrift, r: Redactor, revision: int | None) -> list[str]:
    if o.state == "missing":
        note = f" ({o.note})" if o.note else ""
        return [f"- {o.id}: missing{note}"]
    if o.state == "extra":
        return [f"? {o.id}: carries stackctl's ApplySet label, not in revision {revision}"]
    out = [f"~ {o.id}"]
    for f in o.fields[:MAX_FIELDS]:
        change = FieldChange(f.path, "changed" if f.action == "changed" else "removed",
                             before=f.desired, after=f.live)
        out += field_lines(change, r)
        out.append(f"        {_who(f, o)}")
    if len(o.fields) > MAX_FIELDS:
        out.append(f"  … {len(o.fields) - MAX_FIELDS} more field(s): see --format json")
    return out


def _revision(c: ClusterDrift) -> str:
    rev = c.revision
    if rev is None:
        return ""
    commit = (f"commit {rev.commit[:12]}{'-dirty' if rev.dirty else ''}, "
              if rev.commit else "")
    return f"revision {rev.revision} ({commit}applied {rev.time} by {rev.user or 'unknown'})"


def headline(c: ClusterDrift) -> str:
    status = _STATUS[c.status]
    if c.status in ("error", "never-applied") and c.error:
        return f"cluster {c.name}: {status}: {c.error}"
    n = c.counts
    return (f"cluster {c.name}: {status}: {_revision(c)}; {c.checked} objects checked: "
            f"{n['changed']} changed, {n['missing']} missing, {n['extra']} extra")


def git_lines(c: ClusterDrift) -> list[str]:
    g = c.git
    rev = c.revision.revision if c.revision else "?"
    head = f" (HEAD {g.head_commit[:12]})" if g.head_commit else ""
    if g.state == "not-checked":
        return []
    if g.state == "error":
        return [f"git: could not render the working tree{head}: {g.error}"]
    if g.state == "same" or g.diff is None:
        return [f"git: the working tree's render{head} is what revision {rev} applied"]
    d = g.diff
    out = [f"git: the working tree's render{head} differs from revision {rev}: "
           f"{len(d.added)} added, {len(d.removed)} removed, {len(d.changed)} changed "
           f"({_why_differs(c)})"]
    changes = d.objects
    out += ["  " + (entry_summary(x).replace(", elided", "") if x.action == "changed"
                    else header(x)) for x in changes[:MAX_GIT_OBJECTS]]
    if len(changes) > MAX_GIT_OBJECTS:
        out.append(f"  … {len(changes) - MAX_GIT_OBJECTS} more: run 'stackctl plan' or "
                   "'stackctl plan --live'")
    return out


def _why_differs(c: ClusterDrift) -> str:
    """Merged but not rolled out, unless uncommitted changes explain the difference."""
    g, rev = c.git, c.revision
    if g.uncommitted:
        return ("the working tree has uncommitted changes to what this cluster renders: "
                f"commit them, then run 'stackctl apply --cluster {c.name}'")
    if g.applied_dirty and rev is not None:
        return (f"revision {rev.revision} was applied from a working tree with uncommitted "
                f"changes ({rev.source or 'no commit'}): the difference may be those changes, "
                "never committed; commit them, or run 'stackctl apply --cluster "
                f"{c.name}' to apply HEAD")
    return f"changes merged but not yet rolled out: run 'stackctl apply --cluster {c.name}'"


def heal_lines(c: ClusterDrift) -> list[str]:
    h = c.heal
    if h is None:
        return []
    if h.error:
        return [f"heal: FAILED: {h.error}"]
    state = "healed" if not [o for o in c.objects if o.state != "extra"] else \
        "re-applied, but drift remains"
    out = [f"heal: {state}: revision {h.revision} re-applied {len(h.created)} created, "
           f"{len(h.configured)} configured (of {len(h.drift_before)} drifted object(s))"]
    out += [f"  created    {x}" for x in h.created]
    out += [f"  configured {x}" for x in h.configured]
    return out


def cluster_lines(c: ClusterDrift, r: Redactor) -> list[str]:
    out = [headline(c)]
    out += [f"  note: {n}" for n in c.notes]
    rev = c.revision.revision if c.revision else None
    for o in c.objects[:MAX_OBJECTS]:
        out += ["  " + ln for ln in object_lines(o, r, rev)]
    if len(c.objects) > MAX_OBJECTS:
        out.append(f"  … {len(c.objects) - MAX_OBJECTS} more object(s): see --format json")
    if c.counts["extra"]:
        out.append(f"  extra objects: 'stackctl settle --cluster {c.name}' lists them; "
                   "--delete or --release settles them (drift --heal leaves them alone)")
    out += ["  " + ln for ln in git_lines(c)]
    out += ["  " + ln for ln in heal_lines(c)]
    # Values were scrubbed as they were formatted (plan.lines.fmt_value) and messages when
    # they were caught; identities, paths and users are not secret and stay readable.
    return out


def summary_line(report: DriftReport) -> str:
    statuses: tuple[ClusterStatus, ...] = ("in-sync", "drift", "error", "never-applied")
    by = {s: len(report.by_status(s)) for s in statuses}
    return (f"{len(report.clusters)} cluster(s): {by['in-sync']} in sync, {by['drift']} "
            f"drifted, {by['error']} could not be checked, {by['never-applied']} never applied")


def render_text(report: DriftReport) -> str:
    lines = [f"drift check at {report.checked_at} (fields read desired -> live)", ""]
    for c in report.clusters:
        lines += cluster_lines(c, report.redactor)
    lines += ["", summary_line(report)]
    hidden = redaction_note("\n".join(lines))
    if hidden:
        lines.append(f"redacted: {hidden}")
    return "\n".join(lines) + "\n"


def _git_cell(c: ClusterDrift) -> str:
    return {"same": "up to date", "differs": "**not rolled out**", "error": "render failed",
            "not-checked": "–"}[c.git.state]


def render_markdown(report: DriftReport) -> str:
    """The report as markdown: a table, then a collapsible section per cluster that needs a
    look, its lines in a `diff` fence (values cannot break out of it)."""
    r = report.redactor
    out = ["### stackctl drift", "",
           f"Checked at {report.checked_at}: {html.escape(summary_line(report))}.", "",
           "| cluster | status | revision | changed | missing | extra | git |",
           "|---|---|--:|--:|--:|--:|---|"]
    for c in report.clusters:
        n = c.counts
        rev = "–" if c.revision is None else (
            f"{c.revision.revision}" + (f" ({code(c.revision.commit[:12])})"
                                         if c.revision.commit else ""))
        out.append(f"| {code(c.name)} | {_STATUS[c.status]} | {rev} | {n['changed']} | "
                   f"{n['missing']} | {n['extra']} | {_git_cell(c)} |")
    out.append("")
    for c in report.clusters:
        if c.status == "in-sync" and c.heal is None and not c.notes:
            continue
        is_open = " open" if c.status != "in-sync" else ""
        out += [f"<details{is_open}>",
                f"<summary><b>{html.escape(c.name)}</b>: {_STATUS[c.status]}</summary>", ""]
        out += [*fence(cluster_lines(c, r), "diff"), "", "</details>", ""]
    hidden = redaction_note("\n".join(out))
    if hidden:
        out += [f"_{html.escape(hidden[0].upper() + hidden[1:])}._", ""]
    return "\n".join(out).rstrip("\n") + "\n"
