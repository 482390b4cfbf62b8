"""A rollout's result as text (a table per wave), JSON, or markdown (a CI job summary or a
pull-request comment); and the `--dry-run` report. Lines or a string only: the command
prints them through the run's redactor."""

from __future__ import annotations

import json
from typing import Any

from gitops.rollout.results import ClusterResult, Outcome, RolloutResult, WaveResult

_MARK = {Outcome.DEPLOYED: "✅", Outcome.UNCHANGED: "✅", Outcome.SKIPPED: "⏭️",
         Outcome.FAILED: "❌", Outcome.NOT_STARTED: "⏸️", Outcome.PLANNED: "📝"}
_ORDER = (Outcome.DEPLOYED, Outcome.UNCHANGED, Outcome.SKIPPED, Outcome.PLANNED,
          Outcome.FAILED, Outcome.NOT_STARTED)


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = round(seconds)
    if s < 60:
        return f"{seconds:.1f}s" if seconds < 10 else f"{s}s"
    return f"{s // 60}m{s % 60:02d}s" if s < 3600 else f"{s // 3600}h{(s % 3600) // 60:02d}m"


def summary(result: RolloutResult) -> str:
    counts = [f"{result.count(o)} {o}" for o in _ORDER if result.count(o)]
    total = len(result.clusters)
    what = "dry run" if result.dry_run else "rollout"
    return f"{what}: {', '.join(counts)} (of {total} cluster(s)) in {duration(result.seconds)}"


def _wave_title(w: WaveResult) -> str:
    n = len(w.clusters)
    if w.started is None:
        return f"wave {w.wave}: {n} cluster(s), not started"
    baked = f", then baked {duration(w.baked)}" if w.baked else ""
    return f"wave {w.wave}: {n} cluster(s) in {duration(w.seconds)}{baked}"


def text_lines(result: RolloutResult) -> list[str]:
    if result.dry_run:
        return dry_run_lines(result)
    width = max([len("CLUSTER"), *(len(c.cluster) for c in result.clusters)])
    out: list[str] = []
    for w in result.waves:
        out.append(_wave_title(w))
        out.append(f"  {'CLUSTER':<{width}}  {'OUTCOME':<11}  {'REVISION':>8}  {'TIME':>6}  "
                   "REASON")
        for c in w.clusters:
            rev = str(c.revision) if c.revision is not None else "-"
            out.append(f"  {c.cluster:<{width}}  {c.outcome:<11}  {rev:>8}  "
                       f"{duration(c.seconds):>6}  {c.reason}".rstrip())
    if result.stopped:
        out.append(f"stopped: {result.stopped}")
    out.append(summary(result))
    return out


def dry_run_lines(result: RolloutResult) -> list[str]:
    out: list[str] = []
    for w in result.waves:
        out.append(f"wave {w.wave}: {', '.join(c.cluster for c in w.clusters)}")
        for c in w.clusters:
            current = (f" (revision {c.revision} is current)"
                       if c.revision is not None and c.outcome is Outcome.PLANNED else "")
            if c.changes is not None and c.outcome is Outcome.PLANNED:
                out.append(f"  {c.cluster}: {c.changes.summary()}{current}")
            else:
                out.append(f"  {c.cluster}: {c.outcome}" + (f": {c.reason}" if c.reason else ""))
            if c.changes is not None:
                out += [f"    {line}" for line in c.changes.lines]
    out.append(summary(result) + " (nothing was changed)")
    return out


def _cluster_dict(c: ClusterResult) -> dict[str, Any]:
    d: dict[str, Any] = {"cluster": c.cluster, "wave": c.wave, "outcome": str(c.outcome),
                         "revision": c.revision,
                         "seconds": round(c.seconds, 1) if c.seconds is not None else None,
                         "reason": c.reason}
    if c.rolled_back_to is not None:
        d["rolledBackTo"] = c.rolled_back_to
    if c.changes is not None:
        d["changes"] = {"create": c.changes.create, "update": c.changes.update,
                        "delete": c.changes.delete, "unchanged": c.changes.unchanged,
                        "objects": list(c.changes.lines)}
    return d


def to_json(result: RolloutResult) -> str:
    doc = {
        "commit": result.commit, "dryRun": result.dry_run, "ok": result.ok,
        "maxParallel": result.max_parallel, "maxFailures": result.max_failures,
        "stopped": result.stopped or None, "interrupted": result.interrupted,
        "seconds": round(result.seconds, 1),
        "summary": {str(o): result.count(o) for o in _ORDER if result.count(o)},
        "waves": [{"wave": w.wave,
                   "seconds": round(w.seconds, 1) if w.seconds is not None else None,
                   "bakeSeconds": w.baked,
                   "clusters": [_cluster_dict(c) for c in w.clusters]} for w in result.waves],
    }
    return json.dumps(doc, indent=2)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(result: RolloutResult) -> str:
    commit = f" of `{result.commit[:12]}`" if result.commit else ""
    title = "stackctl rollout --dry-run" if result.dry_run else "stackctl rollout"
    ok = sum(1 for c in result.clusters if c.outcome.ok)
    verdict = ("would change" if result.dry_run else
               "deployed" if result.ok else "not deployed everywhere")
    lines = [f"### {title}{commit}: {verdict}", "",
             f"**{ok} of {len(result.clusters)} cluster(s) "
             f"{'planned' if result.dry_run else 'run this commit'}**"
             + (f"; stopped: {_cell(result.stopped)}" if result.stopped else "")
             + f" ({duration(result.seconds)})", ""]
    for w in result.waves:
        lines += [f"#### {_cell(_wave_title(w)).capitalize()}", "",
                  "| Cluster | Outcome | Revision | Time | Reason |", "|---|---|---|---|---|"]
        for c in w.clusters:
            reason = c.reason
            if c.changes is not None and c.outcome is Outcome.PLANNED:
                reason = c.changes.summary()
            lines.append(f"| {_cell(c.cluster)} | {_MARK[c.outcome]} {c.outcome} | "
                         f"{c.revision if c.revision is not None else '-'} | "
                         f"{duration(c.seconds)} | {_cell(reason)} |")
        lines.append("")
    return "\n".join(lines)
