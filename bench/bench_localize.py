"""Benchmark: localizing Kubeflow v1.11.0's remote bases (what `vendor import` adds for a
release that pulls remotes) against reading the release itself, its anchor.

    .venv/bin/python bench/bench_localize.py [--runs 5]

The four remote sources come from a file:// mirror built from ../shared/upstream/remote-bases
(tests/fixtures/remote_mirror.py), as an air-gapped site serves them; a fresh fetcher each
round, so every remote is fetched each time. Reports the median of each and their ratio.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import KUBEFLOW_DIR, command_line, interleaved, median
from gitops.remote.fetch import Fetcher
from gitops.remote.localize import localize
from gitops.remote.mirrors import Mirrors
from gitops.source import open_source
from tests.fixtures.remote_mirror import GITHUB, REMOTE_BASES, build_mirror


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5, help="timed rounds (median reported)")
    args = ap.parse_args()
    if not KUBEFLOW_DIR.is_dir() or not REMOTE_BASES.is_dir():
        sys.exit("the benchmark needs ../shared/upstream/kubeflow-manifests and remote-bases")
    src = open_source(str(KUBEFLOW_DIR))
    resolved = src.resolve("v1.11.0")
    files = src.tree(resolved)
    with tempfile.TemporaryDirectory(prefix="bench-localize-") as tmp:
        mirror = build_mirror(Path(tmp) / "mirror")
        mirrors = Mirrors.of({GITHUB: mirror.replacement})
        times = interleaved({
            "read the release": lambda: src.tree(resolved),
            "localize it": lambda: localize(files, Fetcher(mirrors, cache=Path(tmp) / "c"),
                                            base="vendor/kubeflow"),
        }, args.runs)
    read, loc = median(times["read the release"]), median(times["localize it"])
    print(f"# {command_line()}  (cores {os.cpu_count()}, load {os.getloadavg()[0]:.2f})")
    print(f"Kubeflow v1.11.0: {len(files)} files, 4 remote sources from a file:// mirror")
    print(f"read the release (anchor): {read * 1000:.0f} ms median of {args.runs}")
    print(f"localize it:               {loc * 1000:.0f} ms median of {args.runs} "
          f"({loc / read:.2f}x the anchor)")


if __name__ == "__main__":
    main()
