"""Benchmark: `stackctl render` on the real Kubeflow `example` of v1.4.0 and v1.10.1 against
running the same kustomize binary directly (the anchor), in the same run.

    .venv/bin/python bench/bench_render.py [--runs 3] [--versions v1.4.0 v1.10.1]

Cases, per release (each extracted to a temporary folder, with a deployment-repo wrapper
clusters/{a,b,c}/ whose kustomizations take ../../example and differ in one patch):
  anchor        `kustomize build example`, output read into memory
  cold          stackctl's render of the same folder with an empty cache (walk and hash of
                the inputs, kustomize, normalisation, identities, cache store) plus writing
                the output file: what `stackctl render --no-cache` costs, and a cache miss
  cold+parse    the same plus parsing every object body (what plan/apply ask for)
  warm          a re-render of unchanged inputs served by the cache, output file written
  3 clusters    clusters a, b, c: one after another vs in parallel (threads bounded by the
                number of cores), both without the cache
Anchor, cold and warm runs are interleaved round by round, so that load from other
processes on a shared machine falls on every case alike; medians are reported.
Targets: cold at most 1.10x the anchor; warm at least 20x faster than the anchor; three
clusters in parallel faster than one after another.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import (
    command_line,
    interleaved,
    kubeflow_release,
    median,
    table,
)

PATCH = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: centraldashboard
  namespace: kubeflow
spec:
  replicas: {n}
"""


def wrap_clusters(tree: Path) -> list[str]:
    """clusters/a, b, c on top of example/, each with its own replica count patch."""
    (tree / "stack.yaml").write_text("name: kubeflow\nsource: ./\n")
    names = []
    for n, name in enumerate(("a", "b", "c"), start=1):
        d = tree / "clusters" / name
        d.mkdir(parents=True)
        (d / "kustomization.yaml").write_text(
            "resources:\n- ../../example\npatches:\n- path: replicas.yaml\n")
        (d / "replicas.yaml").write_text(PATCH.format(n=n))
        names.append(name)
    return names


def bench_release(version: str, work: Path, runs: int) -> list[list[str]]:
    from gitops import paths
    from gitops.kustomize import find_kustomize, hermetic_env
    from gitops.render import render_each, render_path, write_rendered
    from gitops.stack import Stack

    tree = kubeflow_release(version, work)
    example = tree / "example"
    names = wrap_clusters(tree)
    k = find_kustomize()
    out = work / f"out-{version}"
    counter = iter(range(1_000_000))

    def fresh_cache() -> None:
        os.environ["STACKCTL_CACHE"] = str(work / f"cache-{next(counter)}")

    def anchor() -> None:
        proc = subprocess.run([str(k.path), "build", str(example)], capture_output=True,
                              check=True, env=hermetic_env())
        assert len(proc.stdout) > 1_000_000

    def cold() -> None:
        fresh_cache()
        r = render_path(example, name="kubeflow", kustomize=k)
        assert not r.cache_hit
        write_rendered(r, out)

    def cold_parse() -> None:
        fresh_cache()
        r = render_path(example, name="kubeflow", kustomize=k)
        assert len(r.bodies()) == len(r.objects)

    warm_cache = str(work / f"warm-{version}")

    def warm() -> None:
        os.environ["STACKCTL_CACHE"] = warm_cache
        r = render_path(example, name="kubeflow", kustomize=k)
        assert r.cache_hit
        write_rendered(r, out)

    os.environ["STACKCTL_CACHE"] = warm_cache
    objects = len(render_path(example, name="kubeflow", kustomize=k).objects)  # fill it
    assert paths.cache_dir() == Path(warm_cache)
    stack = Stack(root=tree, name="kubeflow", source="./")

    def sequential() -> None:
        res = render_each(stack, names, jobs=1, use_cache=False, kustomize=k)
        assert all(not isinstance(r, Exception) for r in res.values()), res

    def parallel() -> None:
        res = render_each(stack, names, use_cache=False, kustomize=k)
        assert all(not isinstance(r, Exception) for r in res.values()), res

    t = interleaved({"anchor": anchor, "cold": cold, "warm": warm,
                     "cold+parse": cold_parse}, runs)
    t.update(interleaved({"sequential": sequential, "parallel": parallel}, max(1, runs - 1)))
    a = median(t["anchor"])
    cores = os.cpu_count() or 1

    def row(case: str, what: str, vs: str, ratio: float) -> list[str]:
        return [version, case, what, f"{median(t[case]):.3f}", vs, f"{ratio:.2f}x"]

    return [
        row("anchor", f"kustomize build example ({objects} objects)", "1.00x anchor", 1.0),
        row("cold", "stackctl render, empty cache", "target <= 1.10x anchor",
            median(t["cold"]) / a),
        row("cold+parse", "cold + every body parsed (library)", "(informative) x anchor",
            median(t["cold+parse"]) / a),
        row("warm", "stackctl render, cached", "target >= 20x faster than anchor",
            a / median(t["warm"])),
        row("sequential", "3 clusters one after another, no cache", "x anchor",
            median(t["sequential"]) / a),
        row("parallel", f"3 clusters in parallel ({min(3, cores)} at once), no cache",
            "target < 1.00x sequential", median(t["parallel"]) / median(t["sequential"])),
    ]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3, help="rounds per case (median reported)")
    ap.add_argument("--versions", nargs="+", default=["v1.4.0", "v1.10.1"])
    args = ap.parse_args()
    from gitops.kustomize import find_kustomize

    k = find_kustomize()  # before STACKCTL_CACHE moves (it also moves the sandbox build)
    os.environ["STACKCTL_KUSTOMIZE"] = str(k.path)
    rows: list[list[str]] = []
    with tempfile.TemporaryDirectory(prefix="bench-render-") as tmp:
        for version in args.versions:
            rows += bench_release(version, Path(tmp), args.runs)
            print(f"done {version}", file=sys.stderr, flush=True)
    print(f"$ {command_line()}")
    print(f"kustomize {k.version} at {k.path}; {os.cpu_count()} cores; medians of "
          f"{args.runs} interleaved rounds (3-cluster cases: {max(1, args.runs - 1)}); "
          "times in seconds\n")
    print(table(["release", "case", "what", "median s", "ratio against", "ratio"], rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
