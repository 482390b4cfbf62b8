"""Shared helpers of the benchmarks: timing (medians, interleaved runs), Kubeflow archives
from ../shared, and a plain-text table."""

from __future__ import annotations

import shlex
import statistics
import sys
import tarfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KUBEFLOW_DIR = ROOT.parent / "shared" / "upstream" / "kubeflow-manifests"


def kubeflow_release(version: str, dest: Path) -> Path:
    """Extract kubeflow-manifests-<version>.tar.gz under dest; the release's top folder."""
    archive = KUBEFLOW_DIR / f"kubeflow-manifests-{version}.tar.gz"
    if not archive.is_file():
        sys.exit(f"{archive} not found: the benchmark needs ../shared/upstream/kubeflow-manifests")
    out = dest / version
    with tarfile.open(archive) as tar:
        tar.extractall(out, filter="data")
    entries = list(out.iterdir())
    return entries[0] if len(entries) == 1 and entries[0].is_dir() else out


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def interleaved(cases: Mapping[str, Callable[[], object]], runs: int) -> dict[str, list[float]]:
    """Run each case once per round, round after round, so that load from other processes
    on a shared machine falls on every case alike. Returns each case's times."""
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(runs):
        for name, fn in cases.items():
            times[name].append(timed(fn))
    return times


def median(xs: Sequence[float]) -> float:
    return statistics.median(xs)


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub-flavoured markdown table (readable as plain text too)."""
    cells = [list(header), *[list(r) for r in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |"
             for r in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def command_line() -> str:
    return " ".join(shlex.quote(a) for a in [".venv/bin/python", *sys.argv])
