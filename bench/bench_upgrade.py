"""Benchmark: `stackctl upgrade` on real Kubeflow upgrades with a platform team's
customizations, against a plain `git merge` of the same branches and `kpt pkg update`.

    .venv/bin/python bench/bench_upgrade.py [--runs 3] [--scenarios v1.3.0 v1.8.1 ...]
                                            [--no-kpt] [--no-timing] [--json] [--save FILE]

The scenarios are tests/fixtures/upgrade_scenarios.py's: three single-release pairs
(v1.3.0 -> v1.4.0, v1.7.0 -> v1.8.0, v1.10.1 -> v1.10.2; 17 customizations each: the eight
kinds as vendor edits and as overlays, and one conflict made on purpose) and three
multi-release jumps across upstream's restructures (v1.4.0 -> v1.6.1, v1.6.1 -> v1.9.1,
v1.8.1 -> v1.10.2; 40 to 45 customizations: the platform kinds too, with a team's own
composition of components). For each, a deployment repo is made for real (`stackctl init`,
`vendor import` of the base release from ../shared's archive folder, one commit of
customizations), then upgraded three ways, each in its own copy:

  stackctl   the upgrade as a person takes it to its commit: `start_upgrade`, the
             scenario's answers (`--resolve ADDRESS --path NEW` for references upstream
             deleted), every other conflict or finding kept as it is (`--ours`),
             `--continue`
  git merge  the vendor branch moved to the new release (stackctl's import, merge=False),
             then `git merge vendor/kubeflow` with the git CLI, as a team without stackctl
             would merge its vendor branch
  kpt        the same customizations on a package fetched by `kpt pkg get` from a git
             upstream holding both releases, then `kpt pkg update --strategy resource-merge`

Outcomes, judged on what kustomize renders from the result's two clusters (or on the files,
`evidence`, when a cluster does not render):
- conflicts reported: real (the one made on purpose, or one naming a customization the
  upgrade cannot keep) and spurious (any other);
- each customization kept (its checks hold in the render), reported (a conflict or finding
  names it) or lost silently (neither);
- references: wrong rewrites (to a place the scenario does not expect, or a guess where no
  evidence is strong enough) and references left broken (upstream moved the target, the
  tool did not follow).
Units: stackctl counts conflicts per field or finding, git per file; kpt reports none.

Timings, rounds interleaved so that load from other processes falls on every case alike:
  merge      merge_trees on the three trees in memory vs `git merge` (the CLI, working tree
             and index written) of the same branches; target: merge under 2 s
  upgrade    the whole `start_upgrade` (fresh render cache each time) vs `kustomize build`
             of both clusters of the before and after trees, one after another; target:
             at most 1.2x
kpt runs once per scenario (it takes minutes); its time is reported, not compared.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import KUBEFLOW_DIR, command_line, interleaved, median, table
from gitops.kustomize import BUILD_FLAGS, find_kustomize
from gitops.merge import merge_trees
from gitops.merge.references import SAME_TARGET
from gitops.stack import load_stack
from gitops.upgrade import start_upgrade
from gitops.vendor import import_release
from tests.fixtures.remote_mirror import build_mirror
from tests.fixtures.upgrade_repo import (
    DeployRepo,
    Evaluation,
    build_repo,
    classify,
    customize,
    evaluate,
    merge_inputs,
    release_reader,
    reports,
    upgrade_as_a_person,
    wrong_rewrites,
)
from tests.fixtures.upgrade_scenarios import CLUSTERS, NAME, Scenario, V, scenarios

GIT_ID = ["-c", "user.name=bench", "-c", "user.email=bench@localhost"]
KPT_TIMEOUT = 30 * 60


@dataclass
class ToolResult:
    tool: str
    conflicts: int | None  # None: the tool did not run
    intended: int = 0
    real: int = 0
    spurious: int = 0
    kept: tuple[str, ...] = ()
    reported: tuple[str, ...] = ()
    lost: tuple[str, ...] = ()  # silently
    wrong_rewrites: tuple[str, ...] = ()
    broken_references: int = 0
    renders: bool = True
    seconds: float | None = None
    note: str = ""
    spurious_items: list[str] = field(default_factory=list)
    addresses: list[str] = field(default_factory=list)  # every conflict reported

    def to_dict(self) -> dict[str, Any]:
        return {"tool": self.tool, "ran": self.conflicts is not None,
                "conflicts": self.conflicts, "intended_conflicts_reported": self.intended,
                "real_conflicts": self.real, "spurious_conflicts": self.spurious,
                "spurious": self.spurious_items, "kept": list(self.kept),
                "reported": list(self.reported), "lost_customizations": list(self.lost),
                "wrong_rewrites": list(self.wrong_rewrites),
                "broken_references": self.broken_references, "renders": self.renders,
                "seconds": self.seconds, "note": self.note, "addresses": self.addresses}


def _split(scenario: Scenario, addresses: list[str], intended: set[str]
           ) -> tuple[list[str], list[str]]:
    """(real, spurious) conflicts: real ones are made on purpose or name a customization a
    correct upgrade reports (one upstream makes impossible to keep as it is)."""
    markers = [m for c in scenario.customizations if scenario.outcome(c) == "reported"
               for m in c.report_markers]
    real = [a for a in addresses if a in intended or any(reports(m, a) for m in markers)]
    return real, [a for a in addresses if a not in real]


def run(cmd: list[str], cwd: Path, *, timeout: float | None = None,
        check: bool = True) -> subprocess.CompletedProcess[str]:
    p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                       check=False)
    if check and p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}): {p.stderr.strip()}")
    return p


def copy_repo(src: Path, dest: Path) -> Path:
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(src, dest, symlinks=True)
    return dest


# ------------------------------------------------------------------------------ the tools

def git_merge(repo: Path) -> subprocess.CompletedProcess[str]:
    return run(["git", *GIT_ID, "merge", "--no-edit", "vendor/" + NAME], repo, check=False)


def git_outcome(scenario: Scenario, tree: Path) -> ToolResult:
    unmerged = run(["git", "diff", "--name-only", "--diff-filter=U"], tree).stdout.split()
    intended_paths = {c.path for c in scenario.conflicts} | {
        old for old, new in scenario.followed_moves.items()
        if new in {c.path for c in scenario.conflicts}}
    real, spurious = _split(scenario, unmerged, intended_paths)
    ev = evaluate(scenario, tree)
    v = classify(scenario, ev, unmerged)
    # git rewrites no reference: every one whose target upstream moved is left broken.
    broken = sum(1 for new in scenario.rewrites.values() if new is not None)
    return ToolResult("git merge", len(unmerged),
                      intended=len([p for p in unmerged if p in intended_paths]),
                      real=len(real), spurious=len(spurious), kept=v.kept,
                      reported=v.reported, lost=v.lost, broken_references=broken,
                      renders=ev.renders, spurious_items=spurious, note=_errors(ev),
                      addresses=unmerged)


def _errors(ev: Evaluation) -> str:
    return "; ".join(f"{c} does not render" for c in sorted(ev.errors))


def kpt_upstream(work: Path, scenario: Scenario) -> Path:
    """A git upstream with both releases tagged, as kpt fetches packages from git. Kubeflow
    ships nested Kptfiles of the v1alpha1 schema, which kpt 1.0 refuses ('has an old
    version of the Kptfile schema'); they are left out (kustomize never reads them)."""
    up = work / "upstream-work"
    up.mkdir(parents=True)
    run(["git", "init", "-q", "-b", "main"], up)
    for version in (scenario.base, scenario.new):
        for child in up.iterdir():
            if child.name != ".git":
                shutil.rmtree(child) if child.is_dir() else child.unlink()
        run(["tar", "xzf", str(KUBEFLOW_DIR / f"kubeflow-manifests-{version}.tar.gz"),
             "--strip-components=1"], up)
        for k in up.rglob("Kptfile"):
            k.unlink()
        run(["git", "add", "-A"], up)
        run(["git", *GIT_ID, "commit", "-q", "-m", f"release {version}"], up)
        run(["git", "tag", version], up)
    bare = work / "upstream.git"
    run(["git", "clone", "-q", "--bare", str(up), str(bare)], work)
    return bare


def kpt_outcome(scenario: Scenario, work: Path, kpt: str) -> ToolResult:
    upstream = kpt_upstream(work, scenario)
    repo = work / "kpt-deploy"
    repo.mkdir()
    run(["git", "init", "-q", "-b", "main"], repo)
    (repo / "vendor").mkdir()
    run([kpt, "pkg", "get", f"file://{upstream}@{scenario.base}", f"vendor/{NAME}"], repo,
        timeout=KPT_TIMEOUT)
    run(["git", "add", "-A"], repo)
    run(["git", *GIT_ID, "commit", "-q", "-m", "kpt pkg get"], repo)
    customize(repo, scenario)
    run(["git", "add", "-A"], repo)
    run(["git", *GIT_ID, "commit", "-q", "-m", "local customizations"], repo)
    t0 = time.perf_counter()
    p = run([kpt, "pkg", "update", f"vendor/{NAME}@{scenario.new}", "--strategy",
             "resource-merge"], repo, timeout=KPT_TIMEOUT, check=False)
    seconds = time.perf_counter() - t0
    if p.returncode != 0:
        error = [x for x in p.stderr.splitlines() if x.startswith("Error:")] or [
            p.stderr.strip()[-300:]]
        return ToolResult("kpt pkg update", None, seconds=seconds,
                          note=f"kpt pkg update failed: {error[-1]}")
    ev = evaluate(scenario, repo)
    markers = len(ev.markers)
    v = classify(scenario, ev, ev.markers)
    return ToolResult("kpt pkg update", markers, spurious=markers, kept=v.kept,
                      reported=v.reported, lost=v.lost,
                      broken_references=sum(1 for n in scenario.rewrites.values() if n),
                      renders=ev.renders, seconds=seconds,
                      note="; ".join(x for x in (_errors(ev), "reports no conflicts: "
                                                 "upstream wins on conflicting fields") if x))


# ------------------------------------------------------------------------------- a scenario

def kustomize_alone(trees: list[Path]) -> Callable[[], None]:
    k = find_kustomize()

    def go() -> None:
        for tree in trees:
            for c in CLUSTERS:
                run([str(k.path), *BUILD_FLAGS, str(tree / "clusters" / c)], tree)
    return go


def bench_scenario(scenario: Scenario, work: Path, *, runs: int, with_kpt: str | None,
                   say: Callable[[str], None], timing: bool = True) -> dict[str, Any]:
    say(f"{scenario.name}: building the deployment repo")
    repo: DeployRepo = build_repo(work / "deploy", scenario, archives=KUBEFLOW_DIR)
    base, ours, theirs = merge_inputs(repo)

    # git: the vendor branch moved to the new release, as stackctl's import would do it.
    git_src = copy_repo(repo.root, work / "git-src")
    import_release(load_stack(git_src), ref=scenario.new, merge=False)

    # Correctness, one run each.
    say(f"{scenario.name}: stackctl upgrade (to the commit, as a person answers)")
    first = copy_repo(repo.root, work / "stackctl-1")
    os.environ["STACKCTL_CACHE"] = str(work / "cache-first")
    t0 = time.perf_counter()
    person = upgrade_as_a_person(first, scenario)
    first_s = time.perf_counter() - t0
    result = person.start
    intended_addresses = {c.address for c in result.conflicts
                          if (c.path, c.field) in {(x.path, x.field) for x in scenario.conflicts}}
    real, spurious = _split(scenario, list(person.addresses), intended_addresses)
    ev = evaluate(scenario, first, use_cache=True)
    v = classify(scenario, ev, person.addresses)
    tree = result.tree
    wrong = wrong_rewrites(
        scenario, [(r.old_target, r.new_target) for r in tree.rewritten_references
                   if r.evidence_kind != SAME_TARGET],
        [u.target for u in tree.unresolved_references]) if tree is not None else []
    tools = [ToolResult("stackctl", len(person.addresses), intended=len(intended_addresses),
                        real=len(real), spurious=len(spurious), kept=v.kept,
                        reported=v.reported, lost=v.lost, wrong_rewrites=tuple(wrong),
                        renders=ev.renders, seconds=first_s, spurious_items=spurious,
                        note=_errors(ev), addresses=list(person.addresses))]
    say(f"{scenario.name}: git merge")
    gm = copy_repo(git_src, work / "git-1")
    t0 = time.perf_counter()
    git_merge(gm)
    git_s = time.perf_counter() - t0
    git_tool = git_outcome(scenario, gm)
    git_tool.seconds = git_s
    tools.append(git_tool)
    if with_kpt:
        say(f"{scenario.name}: kpt pkg get + update (minutes)")
        tools.append(kpt_outcome(scenario, work / "kpt", with_kpt))
    else:
        tools.append(ToolResult("kpt pkg update", None, note="skipped (--no-kpt or no kpt)"))

    outcome = {
        "scenario": scenario.name, "note": scenario.note, "multi": scenario.multi,
        "customizations": len(scenario.customizations),
        "expected_reported": sorted(scenario.outcomes),
        "intended_conflicts": len(scenario.conflicts),
        "files": {"ours": len(ours), "theirs": len(theirs)},
        "tools": [t.to_dict() for t in tools],
    }
    if not timing:
        return outcome
    # Timings, interleaved rounds.
    say(f"{scenario.name}: timing the merge ({runs} rounds)")
    copies = iter(range(10_000))

    def git_round() -> None:
        d = copy_repo(git_src, work / f"git-t{next(copies)}")
        t0 = time.perf_counter()
        git_merge(d)
        git_times.append(time.perf_counter() - t0)
        shutil.rmtree(d, ignore_errors=True)

    git_times: list[float] = []
    merge_times = interleaved({
        "merge_trees": lambda: merge_trees(base, ours, theirs, vendor_prefix=V),
        "git merge": git_round,
    }, runs)["merge_trees"]

    say(f"{scenario.name}: timing the whole upgrade ({runs} rounds)")
    before_tree = repo.root
    after_tree = first
    upgrade_times: list[float] = []

    def upgrade_round() -> None:
        i = next(copies)
        d = copy_repo(repo.root, work / f"up-t{i}")
        os.environ["STACKCTL_CACHE"] = str(work / f"cache-t{i}")  # no render cache hits
        t0 = time.perf_counter()
        start_upgrade(load_stack(d), ref=scenario.new)
        upgrade_times.append(time.perf_counter() - t0)
        shutil.rmtree(d, ignore_errors=True)

    alone = interleaved({
        "upgrade": upgrade_round,
        "kustomize alone": kustomize_alone([before_tree, after_tree]),
    }, runs)["kustomize alone"]

    return {
        **outcome,
        "merge": {"merge_trees_s": merge_times, "git_merge_s": git_times,
                  "median_merge_trees_s": median(merge_times),
                  "median_git_merge_s": median(git_times)},
        "upgrade": {"upgrade_s": upgrade_times, "kustomize_alone_s": alone,
                    "median_upgrade_s": median(upgrade_times),
                    "median_kustomize_alone_s": median(alone),
                    "ratio": median(upgrade_times) / median(alone)},
    }


def _names(items: list[str]) -> str:
    return f"{len(items)}" + (f" ({', '.join(items)})" if items else "")


def print_tables(results: list[dict[str, Any]]) -> None:
    rows = []
    for r in results:
        for t in r["tools"]:
            ran = t["ran"]
            rows.append([
                r["scenario"], t["tool"],
                "-" if not ran else str(t["conflicts"]),
                "-" if not ran else f"{t['intended_conflicts_reported']}/"
                f"{r['intended_conflicts']}",
                "-" if not ran else str(t["real_conflicts"]),
                "-" if not ran else str(t["spurious_conflicts"]),
                "-" if not ran else f"{len(t['kept'])}/{r['customizations']}",
                "-" if not ran else str(len(t["reported"])),
                "-" if not ran else _names(t["lost_customizations"]),
                "-" if not ran else str(len(t["wrong_rewrites"])),
                "-" if not ran else str(t["broken_references"]),
                "-" if not ran else ("yes" if t["renders"] else "no"),
                "-" if t["seconds"] is None else f"{t['seconds']:.1f}"])
    print(table(["upgrade", "tool", "conflicts", "intended", "real", "spurious", "kept",
                 "reported", "lost silently", "wrong rewrites", "broken refs", "renders",
                 "s"], rows))
    notes = [f"- {r['scenario']} {t['tool']}: {t['note']}" for r in results
             for t in r["tools"] if t["note"]]
    notes += [f"- {r['scenario']} {t['tool']}: spurious conflicts in "
              + ", ".join(f"`{x}`" for x in t["spurious"]) for r in results
              for t in r["tools"] if t["spurious"]]
    notes += [f"- {r['scenario']} {t['tool']}: wrong rewrites "
              + ", ".join(f"`{x}`" for x in t["wrong_rewrites"]) for r in results
              for t in r["tools"] if t["wrong_rewrites"]]
    if notes:
        print("\n" + "\n".join(notes))
    timed = [r for r in results if "merge" in r]
    if not timed:
        return
    print()
    print(table(["upgrade", "merge_trees (median)", "git merge (median)", "target < 2 s"], [
        [r["scenario"], f"{r['merge']['median_merge_trees_s']:.2f} s",
         f"{r['merge']['median_git_merge_s']:.2f} s",
         "ok" if r["merge"]["median_merge_trees_s"] < 2 else "MISSED"] for r in timed]))
    print()
    print(table(["upgrade", "stackctl upgrade (median)", "kustomize alone, 4 builds (median)",
                 "ratio", "target <= 1.2x"], [
        [r["scenario"], f"{r['upgrade']['median_upgrade_s']:.1f} s",
         f"{r['upgrade']['median_kustomize_alone_s']:.1f} s", f"{r['upgrade']['ratio']:.2f}x",
         "ok" if r["upgrade"]["ratio"] <= 1.2 else "MISSED"] for r in timed]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3, help="timed rounds (median reported)")
    ap.add_argument("--scenarios", nargs="+", default=None,
                    help="base releases of the scenarios to run (default: every one)")
    ap.add_argument("--no-timing", action="store_true",
                    help="outcomes only: no timed rounds of the merge and the upgrade")
    ap.add_argument("--no-kpt", action="store_true", help="leave kpt out (it takes minutes)")
    ap.add_argument("--json", action="store_true", help="print JSON instead of tables")
    ap.add_argument("--save", type=Path, help="also write the JSON to this file")
    args = ap.parse_args()
    if not KUBEFLOW_DIR.is_dir():
        sys.exit(f"{KUBEFLOW_DIR} not found: the benchmark needs ../shared/upstream/"
                 "kubeflow-manifests")
    kpt = None if args.no_kpt else shutil.which("kpt")
    say = (lambda m: print(m, file=sys.stderr)) if args.json else print
    if not args.no_kpt and kpt is None:
        say("kpt not found on PATH: the kpt column is skipped")
    if kpt:
        v = run([kpt, "version"], Path.cwd(), check=False).stdout.strip()
        say(f"kpt {v} ({kpt})")
    # Found once, before HOME and STACKCTL_CACHE (where the sandbox build lives) change.
    os.environ["STACKCTL_KUSTOMIZE"] = str(find_kustomize().path)
    all_scenarios = {s.base: s for s in scenarios(release_reader(KUBEFLOW_DIR))}
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-upgrade-") as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        # An isolated git identity and configuration, as the tests pin it.
        os.environ.update({"HOME": str(home), "GIT_CONFIG_NOSYSTEM": "1",
                           "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@localhost",
                           "GIT_COMMITTER_NAME": "bench",
                           "GIT_COMMITTER_EMAIL": "bench@localhost"})
        if "STACKCTL_MIRRORS" not in os.environ:  # v1.10+ pull remote bases: never GitHub
            mirror = build_mirror(Path(tmp) / "remote-mirror")
            os.environ["STACKCTL_MIRRORS"] = mirror.env
        for base in args.scenarios or list(all_scenarios):
            work = Path(tmp) / base
            work.mkdir()
            results.append(bench_scenario(all_scenarios[base], work, runs=args.runs,
                                          with_kpt=kpt, say=say, timing=not args.no_timing))
            shutil.rmtree(work, ignore_errors=True)
    k = find_kustomize()
    out = {"benchmark": "upgrade", "command": command_line(), "runs": args.runs,
           "kustomize": k.version, "kpt": kpt is not None, "cores": os.cpu_count(),
           "results": results}
    if args.save:
        args.save.write_text(json.dumps(out, indent=2) + "\n")
    if args.json:
        print(json.dumps(out, indent=2))
        return
    print()
    print_tables(results)
    print(f"\n{command_line()}  (kustomize {k.version}, {os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
