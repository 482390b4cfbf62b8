"""Benchmark: a fleet rollout. 16 clusters whose pods become ready 20 s after they are
scheduled (the sandbox's `sandbox.stackctl.dev/ready-after` label: on real clusters an
apply is dominated by that wait), rolled out with `stackctl rollout --max-parallel 8`
against the anchor, what the shipped pipelines did before: `stackctl apply --cluster NAME`
for one cluster after another, in wave order. Both in the same run, on one fresh sandbox.

    .venv/bin/python bench/bench_rollout.py                # 16 clusters, waves 4 + 12
    .venv/bin/python bench/bench_rollout.py --clusters 6 --ready-after 5s --kubeconfig K

The clusters are namespaces of the sandbox, as `make demo` plays microk8s-dev and eks-prod,
each with its own records (revisions, lease, ApplySet). Wave 0 holds the first --canaries
clusters, wave 1 the rest. Each side gets its own 16 clusters (own namespaces and records),
so both do the same work: a first apply of a Namespace, a ConfigMap and a Deployment per
cluster, its health wait, and the record. Both run as the `stackctl` command (a subprocess
each, as a pipeline runs it). Reported: each side's wall time, per wave, and the ratio of the
sequential time over the rollout's; the 1-minute load average before and after each side
(the machine is shared). Exit code 0 when both sides deployed every cluster.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._common import command_line, table  # noqa: E402
from gitops.sandbox import READY_AFTER_LABEL  # noqa: E402

APP = """\
apiVersion: v1
kind: Namespace
metadata: {{name: {ns}}}
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: settings, namespace: {ns}}}
data: {{image: "web:1"}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web, namespace: {ns}}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web, {label}: '{ready_after}'}}}}
    spec: {{containers: [{{name: c, image: "web:1"}}]}}
"""


def fleet_repo(root: Path, *, kubeconfig: str, clusters: int, canaries: int,
               ready_after: str, records: str) -> dict[str, int]:
    """A deployment repo of `clusters` clusters (namespaces); returns cluster -> wave."""
    import pygit2

    suffix = uuid.uuid4().hex[:6]
    waves = {f"c{i:02d}": 0 if i < canaries else 1 for i in range(clusters)}
    (root / "stack.yaml").write_text("name: fleet\nsource: ./upstream\n")
    for name, wave in waves.items():
        d = root / "clusters" / name
        d.mkdir(parents=True)
        (d / "cluster.yaml").write_text(f"kubeconfig: {kubeconfig}\nrecordsNamespace: "
                                        f"{records}\nwave: {wave}\napply:\n  timeout: 5m\n")
        (d / "kustomization.yaml").write_text("resources: [app.yaml]\n")
        (d / "app.yaml").write_text(APP.format(ns=f"{name}-{suffix}", label=READY_AFTER_LABEL,
                                               ready_after=ready_after))
    repo = pygit2.init_repository(str(root), initial_head="main")
    repo.index.add_all()
    repo.index.write()
    who = pygit2.Signature("bench", "bench@example.com")
    repo.create_commit("refs/heads/main", who, who, "fleet", repo.index.write_tree(), [])
    return waves


def stackctl(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gitops", *args], cwd=root, text=True,
                          capture_output=True, check=False)


def sequential(root: Path, waves: dict[str, int]) -> dict[str, Any]:
    """`stackctl apply --cluster NAME` for each cluster in wave order, stopping at a failure
    (the old pipelines' loop)."""
    per_wave: dict[int, float] = {}
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    for name in sorted(waves, key=lambda n: (waves[n], n)):
        t = time.perf_counter()
        proc = stackctl(root, "apply", "--cluster", name)
        if proc.returncode != 0:
            raise SystemExit(f"stackctl apply --cluster {name} failed ({proc.returncode}):\n"
                             f"{proc.stdout[-1500:]}{proc.stderr[-1500:]}")
        per_wave[waves[name]] = per_wave.get(waves[name], 0.0) + time.perf_counter() - t
    return {"seconds": time.perf_counter() - t0, "waves": per_wave, "load_before": load,
            "load_after": os.getloadavg()[0]}


def rollout(root: Path, max_parallel: int) -> dict[str, Any]:
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    proc = stackctl(root, "rollout", "--max-parallel", str(max_parallel), "--format", "json")
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"stackctl rollout failed ({proc.returncode}):\n"
                         f"{proc.stdout[-3000:]}{proc.stderr[-1500:]}")
    doc = json.loads(proc.stdout)
    return {"seconds": seconds, "waves": {w["wave"]: w["seconds"] for w in doc["waves"]},
            "summary": doc["summary"], "load_before": load, "load_after": os.getloadavg()[0]}


@contextlib.contextmanager
def sandbox_kubeconfig(given: str | None) -> Iterator[str]:
    if given:
        yield given
        return
    from gitops import sandbox

    with tempfile.TemporaryDirectory() as tmp:
        try:
            info = sandbox.up(Path(tmp) / "sb", name="bench-rollout", die_with_caller=True)
            yield str(info.kubeconfig)
        finally:
            sandbox.down(Path(tmp) / "sb", name="bench-rollout")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clusters", type=int, default=16)
    ap.add_argument("--canaries", type=int, default=4, help="clusters of wave 0")
    ap.add_argument("--ready-after", default="20s")
    ap.add_argument("--max-parallel", type=int, default=8)
    ap.add_argument("--kubeconfig", help="a running sandbox (default: start a fresh one)")
    ap.add_argument("--json", type=Path, help="also write the numbers here")
    args = ap.parse_args()
    from gitops.paths import sandbox_bin_dir

    env_kustomize = os.environ.get("STACKCTL_KUSTOMIZE") or str(sandbox_bin_dir() / "kustomize")
    with tempfile.TemporaryDirectory() as tmp, sandbox_kubeconfig(args.kubeconfig) as kc:
        os.environ["STACKCTL_KUSTOMIZE"] = env_kustomize
        os.environ["STACKCTL_CACHE"] = str(Path(tmp) / "cache")  # no warm render cache
        repos = {side: Path(tmp) / side for side in ("sequential", "rollout")}
        waves: dict[str, int] = {}
        for side, root in repos.items():
            root.mkdir()
            waves = fleet_repo(root, kubeconfig=kc, clusters=args.clusters,
                               canaries=args.canaries, ready_after=args.ready_after,
                               records=f"bench-{side}")
        print(f"{args.clusters} clusters (wave 0: {args.canaries}, wave 1: "
              f"{args.clusters - args.canaries}), pods ready after {args.ready_after}, "
              f"{os.cpu_count()} cores", flush=True)
        par = rollout(repos["rollout"], args.max_parallel)
        print(f"rollout --max-parallel {args.max_parallel}: {par['seconds']:.1f}s "
              f"{par['summary']}", flush=True)
        seq = sequential(repos["sequential"], waves)
        print(f"one after another: {seq['seconds']:.1f}s", flush=True)
    ratio = seq["seconds"] / par["seconds"]
    rows = [[f"wave {w}", str(sum(1 for v in waves.values() if v == w)),
             f"{seq['waves'][w]:.1f}", f"{par['waves'][w]:.1f}",
             f"{seq['waves'][w] / par['waves'][w]:.1f}x"] for w in sorted(seq["waves"])]
    rows.append(["total", str(len(waves)), f"{seq['seconds']:.1f}", f"{par['seconds']:.1f}",
                 f"{ratio:.1f}x"])
    print()
    print(f"command: {command_line()}")
    print(table(["", "clusters", "one after another (s)",
                 f"rollout --max-parallel {args.max_parallel} (s)", "ratio"], rows))
    print(f"load average (1 min): rollout {par['load_before']:.2f} -> {par['load_after']:.2f}, "
          f"one after another {seq['load_before']:.2f} -> {seq['load_after']:.2f}")
    if args.json:
        args.json.write_text(json.dumps({"sequential": seq, "rollout": par, "ratio": ratio},
                                        indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
