"""Run every benchmark, one after another, on the real Kubeflow releases in ../shared, and
keep their reports together.

    make bench                               # all of them
    .venv/bin/python bench/run_all.py render drift   # only these

Each benchmark measures its anchor in the same run (raw `kustomize build`, `git merge` and
`kpt pkg update`, `kubectl apply --server-side`, a per-object GET loop) and prints ratios
against it. This script only sequences them (never two at once: they would time each other),
prints each report as it comes, and writes the whole output, with the machine's core count
and load before and after each, to ~/.cache/stackctl/bench/<UTC time>.md. Exit code 0 when
every benchmark ran, 2 when one failed or the Kubeflow data is missing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import KUBEFLOW_DIR, ROOT
from gitops.paths import cache_dir

# name -> arguments; the defaults of each script are the documented runs (docs/benchmarks.md).
BENCHMARKS: dict[str, list[str]] = {
    "render": ["bench/bench_render.py"],
    "upgrade": ["bench/bench_upgrade.py"],
    "apply": ["bench/bench_apply.py"],
    "drift": ["bench/bench_drift.py"],
    "localize": ["bench/bench_localize.py"],
    "secrets": ["bench/bench_secrets.py"],
    "rollout": ["bench/bench_rollout.py"],
}


def _load() -> str:
    return f"{os.getloadavg()[0]:.2f}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("names", nargs="*", metavar="NAME",
                    help=f"benchmarks to run (default: all of {', '.join(BENCHMARKS)})")
    args = ap.parse_args()
    unknown = [n for n in args.names if n not in BENCHMARKS]
    if unknown:
        ap.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from "
                 f"{', '.join(BENCHMARKS)}")
    if not KUBEFLOW_DIR.is_dir():
        print(f"error: {KUBEFLOW_DIR} not found: the benchmarks run on the real Kubeflow "
              "releases there. Put the kubeflow-manifests archives there and run again.",
              file=sys.stderr)
        return 2
    names = args.names or list(BENCHMARKS)
    started = dt.datetime.now(dt.UTC)
    out_dir = cache_dir() / "bench"
    out_dir.mkdir(parents=True, exist_ok=True)
    out_path = out_dir / f"{started:%Y%m%dT%H%M%SZ}.md"
    failed: list[str] = []
    with out_path.open("w") as log:
        def emit(text: str) -> None:
            print(text, flush=True)
            log.write(text + "\n")
            log.flush()

        emit(f"# stackctl benchmarks, {started:%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores")
        for name in names:
            cmd = [sys.executable, *BENCHMARKS[name]]
            emit(f"\n## {name}\n\n$ {' '.join(['.venv/bin/python', *BENCHMARKS[name]])}"
                 f"\n(load average before: {_load()})\n")
            proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True)
            assert proc.stdout is not None
            for line in proc.stdout:
                emit(line.rstrip("\n"))
            code = proc.wait()
            emit(f"\n(exit code {code}; load average after: {_load()})")
            if code != 0:
                failed.append(name)
    print(f"\nall output: {out_path}", file=sys.stderr)
    if failed:
        print(f"error: benchmark(s) failed: {', '.join(failed)}. Their output above says why; "
              "run one alone with .venv/bin/python bench/bench_<name>.py.", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
