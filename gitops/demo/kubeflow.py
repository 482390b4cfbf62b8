"""The real stack, live (`make demo-kubeflow`, `python -m gitops.demo --kubeflow`): Kubeflow
v1.8.1 installed on the sandbox with a platform team's customizations (gitops/demo/
kubeflow_repo.py), upgraded live hop by hop to v1.9.1, v1.10.2 and v1.11.0, the objects an
upgrade kept settled, a hand change found and healed, rolled back to the first revision and
forward again. No kubectl and no hand edit of live objects: every change goes through git
and stackctl, and every customization is checked live after each hop.

    run_kubeflow(progress=callback, archives=DIR, ...) -> KubeflowResult

The same frame as the example's demo (gitops/demo/core.py): numbered steps that check their
outcome and raise DemoError naming the step; the sandbox always stopped. The integration
test tests/integration/test_kubeflow_live.py runs it.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from gitops.demo import kubeflow_repo as kf
from gitops.demo import workspace as ws
from gitops.demo.core import SANDBOX_NAME, Demo, DemoResult, children
from gitops.demo.events import Note, Progress
from gitops.demo.runner import Runner, command_env
from gitops.paths import project_root

HAND_MANAGER = "colleague"
KUBEFLOW_NAMESPACES = ("kubeflow", "cert-manager", "istio-system")


@dataclass(frozen=True)
class KubeflowResult:
    demo: DemoResult
    # (what, seconds) of each upgrade, apply, rollback: the time per hop
    times: tuple[tuple[str, float], ...]


class _Walk:
    """The steps, with the times of the commands that make a hop."""

    def __init__(self, d: Demo, archives: Path, releases: tuple[str, ...]) -> None:
        self.d, self.archives, self.releases = d, archives, releases
        self.times: list[tuple[str, float]] = []
        self.revision = {c: 0 for c in kf.CLUSTERS}
        self.number = 0

    def _next(self) -> int:
        self.number += 1
        return self.number

    # -- steps ------------------------------------------------------------------------

    def start(self) -> None:
        from gitops import sandbox as sb

        d = self.d
        with d.step(self._next(), "start the sandbox",
                    "Starts the local control plane with its webhook component (it answers "
                    "Kubeflow's webhooks, which fail closed, and injects their CA bundles, as "
                    "istiod and cert-manager do on a real cluster; docs/sandbox.md). It plays "
                    "both clusters, platform and team-ml."):
            d.sandbox_started = True
            info = sb.up(d.state_dir, name=SANDBOX_NAME, progress=d.note,
                         die_with_caller=True)
            d.kubeconfig, d.sandbox_pids = info.kubeconfig, dict(info.pids)
            st = sb.status(d.state_dir, name=SANDBOX_NAME)
            d.check(st.running, f"{len(st.components)} processes running (webhook component "
                    "included)", failure="a sandbox process is not running after start-up.",
                    hint=f"Look at the logs in {d.state_dir / 'logs'}.")

    def create_repo(self) -> None:
        d, first = self.d, self.releases[0]
        with d.step(self._next(), f"create the repo with Kubeflow {first}",
                    f"stackctl init and vendor import of Kubeflow {first} from the release "
                    "archives, then the platform team's customizations: a registry mirror, "
                    "a replica count, a patch, an edit inside vendor/, and a second cluster "
                    "that is the ML team's own composition."):
            d.stackctl("init", d.repo.name, "--name", kf.STACK, "--source", str(self.archives),
                       "--ref", first, "--cluster", kf.PLATFORM, cwd=d.workdir, expect=0,
                       why="repo scaffolded")
            r = d.stackctl("vendor", "import", "--ref", first, expect=0, why="release imported")
            d.expect_text(r, rf"imported kubeflow {first}\b", f"imported Kubeflow {first}")
            assert d.kubeconfig is not None
            written = kf.write_customizations(d.repo, kubeconfig=d.kubeconfig,
                                              context=d.context)
            d.note("wrote " + ", ".join(written))
            r = d.stackctl("vendor", "status", "--offline", expect=0, why="status shown")
            d.expect_text(r, rf"modified:\s+{kf.PARAMS}", "vendor status lists the edit inside "
                          "vendor/")
            sha = ws.commit_all(d.repo, "Platform customizations; clusters platform and team-ml")
            d.note(f"committed on main as {sha[:12]}")

    def install(self) -> None:
        d, first = self.d, self.releases[0]
        with d.step(self._next(), f"install {first} on both clusters",
                    "A fresh install: CRDs, then what their custom resources and webhooks "
                    "need, mutating webhooks before the pods they mutate, then everything "
                    "else, and a wait until all of it is healthy."):
            for c in kf.CLUSTERS:
                self._apply(c, f"install {first}")
            self._check_live(first)

    def hop(self, release: str) -> None:
        d = self.d
        with d.step(self._next(), f"upgrade to {release} and apply",
                    f"stackctl upgrade --vendor {release} (three-way merge with the "
                    "customizations on a new branch), the fixes in git the release needs on "
                    "a live cluster, then apply both clusters and check every customization "
                    "live."):
            began = time.monotonic()
            r = d.runner.stackctl("upgrade", "--vendor", release, cwd=d.repo)
            if r.exit_code == 1:  # conflicts: the team keeps its own values
                data = json.loads((d.repo / ".stackctl/upgrade/report.json").read_text())
                for c in (data.get("merge") or {}).get("conflicts") or []:
                    d.stackctl("upgrade", "--resolve", str(c["address"]), "--ours", expect=0,
                               why="conflict resolved keeping the local value")
                d.stackctl("upgrade", "--continue", expect=0, why="upgrade committed")
            elif r.exit_code != 0:
                d.fail(f"'{r.display}' exited with code {r.exit_code}: {r.tail(3)}",
                       hint=f"Its whole output is in {r.log}.")
            self.times.append((f"upgrade to {release}", time.monotonic() - began))
            branch = ws.current_branch(d.repo)
            d.check(branch == f"upgrade/{kf.STACK}-{release}", f"on branch {branch}",
                    failure=f"the current branch is {branch}, expected "
                            f"upgrade/{kf.STACK}-{release}.")
            for fix in kf.add_fixes(d.repo, release):
                d.note(f"fix in git ({kf.OVERLAY}): {fix.why}")
            if ws.dirty_paths(d.repo):
                sha = ws.commit_all(d.repo, f"Fixes for Kubeflow {release} on a live cluster")
                d.note(f"committed the fixes as {sha[:12]}")
            for c in kf.CLUSTERS:
                self._apply(c, f"apply {release}")
            self._check_live(release)

    def settle(self) -> None:
        d = self.d
        with d.step(self._next(), "settle what the upgrades kept",
                    "The upgrades removed Namespaces, CRDs and claims that stackctl protects "
                    "from pruning; they stay in the cluster, and drift lists them as extra "
                    "until they are settled: the claims released (their data stays, no "
                    "longer stackctl's), the rest deleted, with prune's checks."):
            r = d.stackctl("settle", "--cluster", kf.PLATFORM, expect=0, why="kept objects "
                           "listed")
            d.expect_text(r, r"^kept Namespace/knative-eventing", "Namespace knative-eventing "
                          "is kept")
            claims = [f"PersistentVolumeClaim/{ns}/{name}" for name, ns in re.findall(
                r"^kept PersistentVolumeClaim/(\S+) -n (\S+)", r.output, re.MULTILINE)]
            if claims:
                d.stackctl("settle", "--cluster", kf.PLATFORM, "--release", *claims, expect=0,
                           why="the claims released")
            d.stackctl("settle", "--cluster", kf.PLATFORM, "--delete", expect=0,
                       why="the other kept objects deleted")
            d.stackctl("drift", "--all", expect=0, why="both clusters in sync with git")

    def drift(self) -> None:
        d = self.d
        with d.step(self._next(), "detect and heal a hand change",
                    f"Scales the dashboard to 5 replicas behind stackctl's back (field "
                    f"manager {HAND_MANAGER!r}); drift names the field and who changed it, "
                    "--heal puts git's value back."):
            d.kube().scale_by_hand("kubeflow", "centraldashboard", 5, manager=HAND_MANAGER)
            r = d.stackctl("drift", "--cluster", kf.PLATFORM, expect=1, why="drift found")
            d.expect_text(r, rf"spec\.replicas: {kf.DASHBOARD_REPLICAS} -> 5\n\s*changed by "
                             rf"{HAND_MANAGER}\b", f"drift names spec.replicas and "
                          f"{HAND_MANAGER}")
            d.stackctl("drift", "--cluster", kf.PLATFORM, "--heal", expect=0, why="healed")
            n = d.kube().replicas("kubeflow", "centraldashboard")
            d.check(n == kf.DASHBOARD_REPLICAS, f"the dashboard is back to {n} replicas",
                    failure=f"the dashboard has {n} replicas after the heal.")

    def rollback_and_forward(self) -> None:
        d, first, last = self.d, self.releases[0], self.releases[-1]
        with d.step(self._next(), f"roll back to {first} and forward to {last}",
                    f"stackctl rollback --to 1 re-applies the first revision ({first}) as a "
                    "new one, across every release in between; then apply rolls forward "
                    "from git again."):
            began = time.monotonic()
            r = d.stackctl("rollback", "--cluster", kf.PLATFORM, "--to", "1", expect=0,
                           why=f"rolled back to {first}")
            self.times.append((f"rollback {kf.PLATFORM} to {first}", time.monotonic() - began))
            d.expect_text(r, r"revision \d+ deployed", "the rollback is a new revision")
            self._check_live(first, clusters=(kf.PLATFORM,))
            self._apply(kf.PLATFORM, f"forward to {last}")
            self._check_live(last, clusters=(kf.PLATFORM,))

    def stop(self) -> None:
        d = self.d
        with d.step(self._next(), "stop the sandbox", "Stops every process of the sandbox."):
            pids = set(d.sandbox_pids.values())
            stopped = d.stop_sandbox()
            d.check(bool(stopped), f"stopped {len(stopped)} processes",
                    failure="no sandbox process was left to stop.")
            # Only the walk's own: in a test session the session's sandbox is a child too.
            left = [c for c in children() if c[0] in pids]
            d.check(not left, "no process of the walk's sandbox is left (zombies included)",
                    failure=f"processes started by the demo are still there: {left}.")

    # -- helpers ----------------------------------------------------------------------

    def _apply(self, cluster: str, what: str) -> None:
        d = self.d
        began = time.monotonic()
        r = d.stackctl("apply", "--cluster", cluster, expect=0, why="applied and healthy")
        self.times.append((f"{what} ({cluster})", time.monotonic() - began))
        m = d.expect_text(r, r"^revision (\d+) deployed|^no changes: .*revision (\d+) is current",
                          f"{cluster}: deployed")
        self.revision[cluster] = int(m.group(1) or m.group(2))

    def _check_live(self, release: str, clusters: tuple[str, ...] = kf.CLUSTERS) -> None:
        d, live = self.d, self.d.kube()
        if kf.PLATFORM in clusters:
            loads = {ns: live.workloads(ns) for ns in KUBEFLOW_NAMESPACES}
            unready = sorted(f"{ns}/{k}" for ns, ws_ in loads.items()
                             for k, w in ws_.items() if not w.healthy)
            d.check(not unready, f"{release}: all {sum(map(len, loads.values()))} "
                    "Deployments and StatefulSets of kubeflow, cert-manager and istio-system "
                    "are ready", failure=f"not ready: {', '.join(unready)}.")
            images = [i for w in loads["cert-manager"].values() for i in w.images]
            d.check(bool(images) and all(i.startswith(kf.MIRROR + "/") for i in images),
                    f"{release}: cert-manager runs from the mirror ({', '.join(images)})",
                    failure=f"cert-manager's images are {images}, expected {kf.MIRROR}/...")
            dash = loads["kubeflow"].get("Deployment/centraldashboard")
            d.check(dash is not None and dash.replicas == kf.DASHBOARD_REPLICAS,
                    f"{release}: the dashboard has {kf.DASHBOARD_REPLICAS} replicas",
                    failure=f"the dashboard has {dash.replicas if dash else 'no'} replicas.")
            limits = live.container_limits("kubeflow", "centraldashboard", "centraldashboard")
            d.check(limits.get("memory") == kf.DASHBOARD_MEMORY,
                    f"{release}: the dashboard's memory limit is {kf.DASHBOARD_MEMORY}",
                    failure=f"the dashboard's limits are {limits}.")
            owner = live.profile_owner(kf.PROFILE)
            d.check(owner == kf.OWNER, f"{release}: Profile {kf.PROFILE} owned by {owner} (the "
                    "edit inside vendor/)", failure=f"Profile {kf.PROFILE}: owner {owner}.")
        if kf.TEAM in clusters:
            quotas = live.quotas(kf.TEAM_NS)
            d.check(quotas == ["team-ml"], f"{release}: team-ml's quota is in place",
                    failure=f"quotas in {kf.TEAM_NS}: {quotas}.")


def steps_of(releases: tuple[str, ...]) -> int:
    """How many steps the walk over `releases` has."""
    return 6 + len(releases) - 1 + (1 if releases[1:] else 0)


def run_kubeflow(*, progress: Progress, archives: Path, workdir: Path | None = None,
                 keep: bool = False, releases: tuple[str, ...] = kf.RELEASES,
                 mirrors: str | None = None, remote_bases: Path | None = None
                 ) -> KubeflowResult:
    """Run the walk over `releases` (the first installed, the others upgraded to) in a
    fresh temp folder (or `workdir`). Remote bases (v1.10+) are fetched through `mirrors`
    (STACKCTL_MIRRORS's form), else through a mirror built from `remote_bases`."""
    began = time.monotonic()
    if workdir is None:
        root = Path(tempfile.mkdtemp(prefix="stackctl-kubeflow-"))
    else:
        root = workdir.expanduser().absolute()
        root.mkdir(parents=True, exist_ok=True)
        keep = True
    env = command_env()
    if mirrors is None and remote_bases is not None:
        from gitops.demo.remotes import build_mirror

        mirrors = build_mirror(root / "remote-mirror", remote_bases).env
    if mirrors:
        env["STACKCTL_MIRRORS"] = mirrors
    d = Demo(project=project_root(), workdir=root, progress=progress,
             runner=Runner(logs=root / "logs", progress=progress, env=env))
    walk = _Walk(d, archives, releases)
    ok = False
    try:
        walk.start()
        walk.create_repo()
        walk.install()
        for release in releases[1:]:
            walk.hop(release)
        if releases[1:]:
            walk.settle()
        walk.drift()
        walk.rollback_and_forward()
        walk.stop()
        ok = True
    finally:
        if d.sandbox_started or d.live is not None:
            d.stop_after_failure()  # a failed or interrupted run
        if not ok:
            progress(Note(f"kept {root} (the repo, command logs in logs/, sandbox logs in "
                          "sandbox/logs/)"))
    if not keep and ok:
        shutil.rmtree(root, ignore_errors=True)
    demo = DemoResult(workdir=root, repo=d.repo, kept=keep or not ok,
                      seconds=time.monotonic() - began, steps=tuple(d.timings))
    return KubeflowResult(demo, tuple(walk.times))
