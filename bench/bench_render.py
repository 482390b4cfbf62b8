"""Benchmark: `stackctl render` on the real Kubeflow `example` of v1.4.0 and v1.10.1 against
running the same kustomize binary directly (the anchor), in the same run; and `stackctl plan`
and `render --all` over 16 clusters of which one changed.

    .venv/bin/python bench/bench_render.py [--runs 3] [--versions v1.4.0 v1.10.1] [--no-fleet]

Each release is extracted to a temporary folder and committed to a git repository, with a
deployment-repo wrapper clusters/{a,b,c}/ whose kustomizations take ../../example and differ
in one patch. Cases, per release:
  anchor        `kustomize build example`, output read into memory
  kustomize GOGC  the same with the environment stackctl runs kustomize in (GOGC=400)
  cold (lib)    render_path() with an empty cache (walk, key, kustomize, normalisation,
                identities, cache store) plus writing the output file
  cold (cmd)    `stackctl render --cluster a` as a new process, the render cache empty
  cold+parse    the library's cold render plus parsing every object body (plan/apply)
  warm (lib)    a re-render of unchanged inputs served by the cache, output file written
  warm (cmd)    `stackctl render --cluster a` as a new process, cached, output up to date:
                what a user waits for
  3 clusters    clusters a, b, c: one after another vs in parallel (library, no cache)
The fleet cases (first release only) add clusters c01..c16 and change one per round:
  plan          `stackctl plan --base A --head B` as a command, B changing c07 (the cache
                holds A's renders, as after an earlier plan or render of the base)
  render --all  `stackctl render --all` as a command, c07 changed in the working tree
Anchor and cases are interleaved round by round, so that load from other processes on a
shared machine falls on every case alike; medians are reported, with the load average.
Targets: cold at most 1.00x the anchor; a cached command at least 20x faster than the
anchor; plan and render --all over 16 clusters with one changed close to one anchor.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import (
    command_line,
    interleaved,
    kubeflow_release,
    median,
    table,
)

STACKCTL = Path(sys.executable).parent / "stackctl"
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


def _git_commit(tree: Path, message: str) -> str:
    import pygit2

    repo = (pygit2.Repository(str(tree)) if (tree / ".git").exists()
            else pygit2.init_repository(str(tree), initial_head="main"))
    repo.index.add_all()
    repo.index.write()
    sig = pygit2.Signature("bench", "bench@localhost")
    parents = [] if repo.head_is_unborn else [repo.head.target]
    return str(repo.create_commit("HEAD", sig, sig, message, repo.index.write_tree(),
                                  parents))


def _command(args: list[str], cwd: Path, cache: str) -> Callable[[], None]:
    """A stackctl command as a user runs it: a new process each time."""
    env = {**os.environ, "STACKCTL_CACHE": cache}

    def run() -> None:
        proc = subprocess.run([str(STACKCTL), *args], cwd=cwd, env=env, capture_output=True,
                              check=False)
        if proc.returncode not in (0, 1):  # plan exits 1 when something changes
            raise SystemExit(f"stackctl {' '.join(args)} failed:\n{proc.stderr.decode()}")

    return run


def import_ms(cwd: Path, cache: str) -> float:
    """Milliseconds of imports in a cached `stackctl render --cluster a` (-X importtime)."""
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "gitops", "render",
                           "--cluster", "a"], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, "STACKCTL_CACHE": cache}, check=True)
    total = 0
    for line in proc.stderr.splitlines():
        parts = line.split("|")
        if line.startswith("import time:") and len(parts) == 3 and \
                not parts[2].startswith("  ") and parts[1].strip().isdigit():
            total += int(parts[1])
    return total / 1000


def bench_release(version: str, work: Path, runs: int, fleet: bool) -> list[list[str]]:
    from gitops.kustomize import GOGC, build_env, find_kustomize, hermetic_env
    from gitops.render import render_clusters, render_each, render_path, write_rendered
    from gitops.stack import Stack

    tree = kubeflow_release(version, work)
    example = tree / "example"
    names = wrap_clusters(tree)
    if fleet:
        fleet_names = wrap_fleet(tree)
    base_commit = _git_commit(tree, "base")
    k = find_kustomize()
    out = work / f"out-{version}"
    counter = iter(range(1_000_000))
    memo = paths_cache() / "kustomize-binaries.json"

    def fresh_cache() -> str:
        """An empty render cache; the kustomize binary's identity stays known (a user's
        cache holds it after the first command)."""
        d = work / f"cache-{version}-{next(counter)}"
        d.mkdir()
        if memo.is_file():
            shutil.copy(memo, d / memo.name)
        os.environ["STACKCTL_CACHE"] = str(d)
        return str(d)

    def anchor() -> None:
        proc = subprocess.run([str(k.path), "build", str(example)], capture_output=True,
                              check=True, env=hermetic_env())
        assert len(proc.stdout) > 1_000_000

    def tuned() -> None:  # kustomize alone, with the environment stackctl gives it
        proc = subprocess.run([str(k.path), "build", str(example)], capture_output=True,
                              check=True, env=build_env())
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

    def cmd_cold() -> None:
        _command(["render", "--cluster", "a"], tree, fresh_cache())()

    cmd_warm = _command(["render", "--cluster", "a"], tree, warm_cache)

    os.environ["STACKCTL_CACHE"] = warm_cache
    objects = len(render_path(example, name="kubeflow", kustomize=k).objects)  # fill it
    cmd_warm()  # fills cluster a's entry and writes rendered/a.yaml
    stack = Stack(root=tree, name="kubeflow", source="./")

    def sequential() -> None:
        res = render_each(stack, names, jobs=1, use_cache=False, kustomize=k)
        assert all(not isinstance(r, Exception) for r in res.values()), res

    def parallel() -> None:
        res = render_each(stack, names, use_cache=False, kustomize=k)
        assert all(not isinstance(r, Exception) for r in res.values()), res

    t = interleaved({"anchor": anchor, "kustomize GOGC": tuned, "cold": cold,
                     "cmd cold": cmd_cold, "warm": warm, "cmd warm": cmd_warm,
                     "cold+parse": cold_parse}, runs)
    t.update(interleaved({"sequential": sequential, "parallel": parallel}, max(1, runs - 1)))
    imports = import_ms(tree, warm_cache)
    if fleet:
        os.environ["STACKCTL_CACHE"] = warm_cache
        render_clusters(stack, [*names, *fleet_names], ref=base_commit, kustomize=k)
        render_each(stack, [*names, *fleet_names], kustomize=k)  # the working tree, too
        rounds = iter(range(1, 1_000_000))

        def plan() -> None:
            _set_replicas(tree, "c07", 100 + next(rounds))
            head = _git_commit(tree, "change c07")
            _command(["plan", "--base", base_commit, "--head", head], tree, warm_cache)()

        def render_all() -> None:
            _set_replicas(tree, "c07", 100 + next(rounds))
            _command(["render", "--all"], tree, warm_cache)()

        t.update(interleaved({"fleet anchor": anchor, "plan": plan, "render --all": render_all},
                             runs))
    a = median(t["anchor"])
    cores = os.cpu_count() or 1

    def row(case: str, what: str, vs: str, ratio: float, anchor: str = "anchor") -> list[str]:
        return [version, case, what, f"{median(t[case]):.3f}", f"{median(t[anchor]):.3f}",
                vs, f"{ratio:.2f}x"]

    rows = [
        row("anchor", f"kustomize build example ({objects} objects)", "1.00x anchor", 1.0),
        row("kustomize GOGC", f"kustomize alone as stackctl runs it (GOGC={GOGC})",
            "(informative) x anchor", median(t["kustomize GOGC"]) / a),
        row("cold", "render_path, empty cache, output written", "target <= 1.00x anchor",
            median(t["cold"]) / a),
        row("cmd cold", "`stackctl render --cluster a`, empty cache (new process)",
            "target <= 1.00x anchor", median(t["cmd cold"]) / a),
        row("cold+parse", "cold + every body parsed (library)", "(informative) x anchor",
            median(t["cold+parse"]) / a),
        row("warm", "render_path, cached, output written", "faster than anchor",
            a / median(t["warm"])),
        row("cmd warm", f"`stackctl render --cluster a`, cached (new process; imports "
            f"{imports:.0f} ms)", "target >= 20x faster than anchor", a / median(t["cmd warm"])),
        row("sequential", "3 clusters one after another, no cache", "x anchor",
            median(t["sequential"]) / a),
        row("parallel", f"3 clusters in parallel ({min(3, cores)} at once), no cache",
            "target < 1.00x sequential", median(t["parallel"]) / median(t["sequential"])),
    ]
    if fleet:
        a2 = median(t["fleet anchor"])
        rows += [
            row("plan", f"`stackctl plan`, {len(fleet_names) + len(names)} clusters, c07 "
                "changed (new process)", "x anchor", median(t["plan"]) / a2, "fleet anchor"),
            row("render --all", f"`stackctl render --all`, {len(fleet_names) + len(names)} "
                "clusters, c07 changed", "x anchor", median(t["render --all"]) / a2,
                "fleet anchor"),
        ]
    return rows


def wrap_fleet(tree: Path) -> list[str]:
    """clusters/c01..c13 beside a, b, c: 16 clusters on the same base."""
    names = []
    for n in range(1, 14):
        name = f"c{n:02d}"
        d = tree / "clusters" / name
        d.mkdir(parents=True)
        (d / "kustomization.yaml").write_text(
            "resources:\n- ../../example\npatches:\n- path: replicas.yaml\n")
        names.append(name)
        _set_replicas(tree, name, 10 + n)
    return names


def _set_replicas(tree: Path, cluster: str, n: int) -> None:
    (tree / "clusters" / cluster / "replicas.yaml").write_text(PATCH.format(n=n))


def paths_cache() -> Path:
    from gitops.paths import cache_dir

    return cache_dir()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3, help="rounds per case (median reported)")
    ap.add_argument("--versions", nargs="+", default=["v1.4.0", "v1.10.1"])
    ap.add_argument("--no-fleet", action="store_true",
                    help="skip plan and render --all over 16 clusters")
    args = ap.parse_args()
    from gitops.kustomize import find_kustomize

    k = find_kustomize()  # before STACKCTL_CACHE moves (it also moves the sandbox build)
    os.environ["STACKCTL_KUSTOMIZE"] = str(k.path)
    rows: list[list[str]] = []
    loads = [os.getloadavg()]
    with tempfile.TemporaryDirectory(prefix="bench-render-") as tmp:
        for i, version in enumerate(args.versions):
            got = bench_release(version, Path(tmp), args.runs,
                                fleet=i == 0 and not args.no_fleet)
            rows += got
            loads.append(os.getloadavg())
            print(f"done {version} (load {loads[-1][0]:.2f})\n"
                  + "\n".join(" | ".join(r) for r in got), file=sys.stderr, flush=True)
    print(f"$ {command_line()}")
    print(f"kustomize {k.version} at {k.path}; {os.cpu_count()} cores; medians of "
          f"{args.runs} interleaved rounds (3-cluster cases: {max(1, args.runs - 1)}); "
          f"times in seconds; load average (1 min) at start and after each release: "
          f"{', '.join(f'{x[0]:.2f}' for x in loads)}\n")
    print(table(["release", "case", "what", "median s", "anchor s", "ratio against",
                 "ratio"], rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
