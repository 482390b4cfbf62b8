"""The eight steps of the demo. Each says what it does, runs the real commands, and checks
what should have happened; any surprise fails the step (DemoError)."""

from __future__ import annotations

import json
import re
from typing import Any

from gitops.demo import workspace as ws
from gitops.demo.core import SANDBOX_NAME, STORAGE_CLASSES, Demo, children
from gitops.demo.events import FileShown

DEV, PROD = "microk8s-dev", "eks-prod"
CLUSTERS = (DEV, PROD)
# clusters/*/kustomization.yaml `images:` mirror every ghcr.io/mlstack image (O4).
MIRRORS = {DEV: "localhost:32000/mlstack",
           PROD: "123456789012.dkr.ecr.eu-west-1.amazonaws.com/mlstack"}
UPGRADE_BRANCH = "upgrade/mlstack-v1.4.1"
CONFLICT_FILE = "vendor/mlstack/apps/dashboard/upstream/base/deployment.yaml"
CONFLICT_RESOURCE = "apps/Deployment//dashboard"  # group/kind/namespace/name
CONFLICT_FIELD = "spec.replicas"
REPORT = ".stackctl/upgrade/report.md"
BROKEN = "dashboard"  # the Deployment whose rollout step 6 breaks on purpose
HAND_MANAGER = "demo-colleague"  # the field manager of the change behind stackctl's back


def start_sandbox(d: Demo) -> None:
    from gitops import sandbox as sb

    with d.step(1, "start the sandbox",
                "Starts a real Kubernetes control plane on 127.0.0.1 (etcd, kube-apiserver, "
                "controller manager, scheduler, and kwok's fake nodes) from a private state "
                "folder. It plays both example clusters: dev in namespace mlstack-dev, prod "
                "in mlstack-prod."):
        classes = " ".join(f"--storage-class {c}" for c in STORAGE_CLASSES)
        d.note(f"same as: stackctl sandbox up --name {SANDBOX_NAME} --state-dir "
               f"{d.state_dir} {classes}")
        d.sandbox_started = True  # from here on, always stopped (a failed `up` cleans up)
        info = sb.up(d.state_dir, name=SANDBOX_NAME, storage_classes=STORAGE_CLASSES,
                     progress=d.note, die_with_caller=True)
        d.kubeconfig, d.sandbox_pids = info.kubeconfig, dict(info.pids)
        st = sb.status(d.state_dir, name=SANDBOX_NAME)
        d.check(st.running, f"{len(st.components)} components running ("
                + ", ".join(f"{c.name} {c.pid}" for c in st.components) + ")",
                failure="a sandbox component is not running after start-up.",
                hint=f"Look at the logs in {d.state_dir / 'logs'}.")
        nodes = d.kube().ready_nodes()
        d.check(len(nodes) == 2, f"API server {info.server}, nodes Ready: {', '.join(nodes)}",
                failure=f"expected 2 Ready nodes, found {nodes}.")
        d.note(f"look at: the kubeconfig {info.kubeconfig} (context {d.context}); export "
               "KUBECONFIG with it in another terminal to watch the cluster while the demo "
               "runs")


def create_repo(d: Demo) -> None:
    from gitops.lock import read_lock

    with d.step(2, "create the deployment repo",
                "Makes a throw-away deployment repo with 'stackctl init', imports mlstack "
                "v1.3.0 pristine from examples/upstream/mlstack on the branch vendor/mlstack, "
                "then adds the example customizations: 7 edits inside vendor/mlstack, the "
                "overlays, and the clusters microk8s-dev and eks-prod, both pointed at the "
                "sandbox."):
        source = d.project / ws.UPSTREAM
        d.stackctl("init", d.repo.name, "--name", ws.STACK_NAME, "--source", str(source),
                   "--ref", "v1.3", "--cluster", DEV, cwd=d.workdir, expect=0,
                   why="repo scaffolded")
        r = d.stackctl("vendor", "import", "--ref", "v1.3.0", "--source", str(source),
                       expect=0, why="release imported")
        d.expect_text(r, r"imported mlstack v1\.3\.0", "imported mlstack v1.3.0")
        lock = read_lock(d.repo)
        entry = lock.get(ws.STACK_NAME) if lock else None
        d.check(entry is not None and entry.resolved == "v1.3.0",
                "stackctl.lock pins mlstack v1.3.0",
                failure="stackctl.lock does not record mlstack v1.3.0.")

        edited, added = ws.copy_vendor_edits(d.project, d.repo)
        d.note("copied the local edits of vendor/mlstack (docs/example-stack.md V1-V7): "
               + ", ".join(edited + added))
        overlays = ws.copy_tree(d.project, d.repo, "overlays")
        d.note(f"copied overlays/ ({len(overlays)} files)")
        assert d.kubeconfig is not None
        for c in CLUSTERS:
            ws.copy_tree(d.project, d.repo, f"clusters/{c}")
            ws.point_at_sandbox(d.repo, c, kubeconfig=d.kubeconfig, context=d.context)
        d.note(f"copied clusters/{DEV} and clusters/{PROD}; in each cluster.yaml, kubeconfig "
               f"and context now name the sandbox, and kustomization.yaml adds the component "
               f"overlays/sandbox/<cluster> (a pre-bound volume: the sandbox has no "
               f"provisioner)")

        r = d.stackctl("vendor", "status", "--offline", expect=0, why="status shown")
        listed = sorted(re.findall(r"^\s+(modified|added|deleted):\s+vendor/mlstack/(\S+)",
                                   r.output, re.MULTILINE))
        want = sorted([("modified", p) for p in ws.EDITED_FILES]
                      + [("added", p) for p in ws.ADDED_FILES])
        d.check(listed == want, f"vendor status lists the {len(ws.EDITED_FILES)} edited and "
                f"{len(ws.ADDED_FILES)} added files of the customizations, nothing else",
                failure=f"vendor status lists {listed}, expected {want}.")
        commit = ws.commit_all(d.repo, "Example customizations: local edits of vendor/mlstack, "
                               "overlays, clusters microk8s-dev and eks-prod on the sandbox")
        d.note(f"committed on main as {commit[:12]} (git add -A && git commit)")
        d.check(not ws.dirty_paths(d.repo), "the working tree is clean",
                failure=f"uncommitted files remain: {ws.dirty_paths(d.repo)}.")
        d.note(f"look at: {d.repo}/clusters/{DEV}/cluster.yaml and kustomization.yaml")


def _check_images(d: Demo, cluster: str, tag: str) -> None:
    """The dashboard runs the release `tag` through the cluster's mirror, and every
    workload of the cluster is ready."""
    ns = ws.NAMESPACES[cluster]
    loads = d.kube().workloads(ns)
    dash = loads.get("Deployment/dashboard")
    want = f"{MIRRORS[cluster]}/dashboard:{tag}"
    d.check(dash is not None and want in dash.images,
            f"{cluster}: Deployment {ns}/dashboard runs {want}",
            failure=f"{cluster}: Deployment {ns}/dashboard runs "
                    f"{dash.images if dash else 'nothing (missing)'}, expected {want}.")
    unready = sorted(f"{k} {w.ready}/{w.replicas}" for k, w in loads.items() if not w.healthy)
    d.check(not unready, f"{cluster}: all {len(loads)} Deployments and StatefulSets in {ns} "
            "are ready", failure=f"{cluster}: not ready in {ns}: {', '.join(unready)}.")


def apply_both(d: Demo) -> None:
    with d.step(3, "apply both clusters",
                "Renders each cluster with kustomize and applies it through the Kubernetes "
                "API: a server-side dry run first, then CRDs, namespaces, RBAC, workloads, "
                "webhooks in that order, a wait for health, and a recorded revision."):
        for c in CLUSTERS:
            r = d.stackctl("apply", "--cluster", c, expect=0, why="applied and healthy")
            d.expect_text(r, r"^revision 1 deployed", f"{c}: revision 1 deployed")
            _check_images(d, c, "v1.3.0")
        dash = d.kube().workloads(ws.NAMESPACES[DEV])["Deployment/dashboard"]
        d.check(dash.replicas == 3, "the local edit V1 is live: dashboard has 3 replicas",
                failure=f"the dashboard has {dash.replicas} replicas, expected 3 (V1).")
        claims = d.kube().claims(ws.NAMESPACES[PROD])
        d.check(claims.get("data-metadata-db-0") == "Bound",
                "the metadata-db claim is Bound to its pre-bound volume",
                failure=f"claims in {ws.NAMESPACES[PROD]}: {claims}, expected "
                        "data-metadata-db-0 Bound.")
        for c in CLUSTERS:
            r = d.stackctl("history", "--cluster", c, expect=0, why="history listed")
            d.expect_text(r, r"^1\s+\S+\s+.*\bdeployed\b", f"{c}: revision 1 is deployed")
        d.note("look at: the REVISION/COMMIT columns: every revision records the git commit "
               "it came from")


def upgrade(d: Demo) -> None:
    with d.step(4, "upgrade to v1.4",
                "Three-way merges upstream v1.4.1 (the highest v1.4.x) with the local edits, "
                "resource by resource, on the branch upgrade/mlstack-v1.4.1. The one real "
                "conflict (dashboard replicas: ours 3, theirs 2) stops it with exit code 1, "
                "beside two findings of the effect check (both clusters mirror the image of "
                "usage-reporter, which v1.4 drops); the conflict is resolved by taking "
                "upstream's value, the mirrors are kept as they are, then the upgrade "
                "continues."):
        d.stackctl("upgrade", "--vendor", "v1.4", expect=1, why="stopped on merge conflicts")
        report = d.repo / REPORT
        d.check(report.is_file() and report.with_suffix(".json").is_file(),
                f"the merge report {REPORT} (and report.json) was written",
                failure=f"{REPORT} or report.json does not exist after the upgrade stopped.")
        d.progress(FileShown(path=REPORT, text=_summary(report.read_text(encoding="utf-8"))))
        data = json.loads(report.with_suffix(".json").read_text(encoding="utf-8"))
        address, findings = _the_planned_conflict(d, data)
        summary = {c.get("name"): c.get("status") for c in data.get("clusters", [])}
        d.check(all(summary.get(c) == "changed" for c in CLUSTERS),
                "the per-cluster summary renders both clusters before and after: "
                + ", ".join(f"{c} {summary.get(c)}" for c in CLUSTERS),
                failure=f"the report's cluster summary is {summary}, expected both "
                        f"{', '.join(CLUSTERS)} 'changed'.")
        d.note("look at: each conflict's address (file:resource:field), the reference in "
               "overlays/internal-gateway rewritten to the folder upstream moved, and the "
               "per-cluster summary")
        d.stackctl("upgrade", "--resolve", address, "--theirs", expect=0,
                   why="conflict resolved with upstream's value")
        for finding in findings:
            d.stackctl("upgrade", "--resolve", finding, "--ours", expect=0,
                       why="the mirror kept as it is (it mirrors nothing v1.4 runs)")
        d.stackctl("upgrade", "--continue", expect=0, why="upgrade committed")
        branch = ws.current_branch(d.repo)
        d.check(branch == UPGRADE_BRANCH, f"branch {UPGRADE_BRANCH} is checked out",
                failure=f"the current branch is {branch}, expected {UPGRADE_BRANCH}.")
        from gitops.lock import read_lock

        lock = read_lock(d.repo)
        entry = lock.get(ws.STACK_NAME) if lock else None
        d.check(entry is not None and entry.resolved == "v1.4.1",
                "stackctl.lock pins mlstack v1.4.1",
                failure="stackctl.lock does not record mlstack v1.4.1 after the upgrade.")
        merged = (d.repo / CONFLICT_FILE).read_text(encoding="utf-8")
        d.check(re.search(r"^  replicas: 2\b", merged, re.MULTILINE) is not None
                and "limits:" in merged,
                "the dashboard Deployment has upstream's 2 replicas and keeps the local limits",
                failure=f"{CONFLICT_FILE} does not hold 'replicas: 2' with the local limits.")
        d.check(not ws.dirty_paths(d.repo), "the working tree is clean",
                failure=f"uncommitted files remain: {ws.dirty_paths(d.repo)}.")


def _summary(report: str) -> str:
    """The report down to the per-cluster table; the per-cluster details stay in the file."""
    lines = report.splitlines()
    clusters = next((i for i, line in enumerate(lines) if line == "## Clusters"), None)
    if clusters is None:
        return report
    end = next((i for i in range(clusters + 1, len(lines)) if lines[i].startswith("### ")),
               len(lines))
    rest = len(lines) - end
    more = [f"(and {rest} more lines: each cluster's image changes, CRD versions, objects "
            "added and removed)"] if rest else []
    return "\n".join(lines[:end] + more)


def _the_planned_conflict(d: Demo, report: dict[str, Any]) -> tuple[str, list[str]]:
    """Check that the report has exactly the one planned conflict and the effect check's
    two findings (the mirrors of usage-reporter's image, which v1.4 drops); return the
    conflict's address and the findings'."""
    listed = (report.get("merge") or {}).get("conflicts") or []
    conflicts = [c for c in listed if c.get("kind") != "no-effect"]
    findings = sorted(str(c.get("address")) for c in listed if c.get("kind") == "no-effect")
    mirrors = sorted(f"clusters/{c}/kustomization.yaml::images[name=ghcr.io/mlstack/"
                     "usage-reporter]" for c in CLUSTERS)
    d.check(findings == mirrors, "two findings of the effect check: each cluster's registry "
            "mirror of usage-reporter, which v1.4 drops, mirrors nothing any more",
            failure=f"the report lists the findings {findings}, expected {mirrors}.")
    found = [(c.get("path"), c.get("resource"), c.get("field"), c.get("base"), c.get("ours"),
              c.get("theirs")) for c in conflicts]
    want = (CONFLICT_FILE, CONFLICT_RESOURCE, CONFLICT_FIELD, 1, 3, 2)
    d.check(found == [want], f"exactly one conflict: {CONFLICT_RESOURCE} {CONFLICT_FIELD} in "
            f"{CONFLICT_FILE} (base 1, ours 3, theirs 2)",
            failure=f"the report lists {len(found)} conflict(s) {found}, expected only "
                    f"{want}.")
    return str(conflicts[0]["address"]), findings


def plan(d: Demo) -> None:
    with d.step(5, "plan the upgrade",
                "Renders every cluster at main and at the upgrade branch, without a checkout, "
                "and shows per cluster what would be added, removed and changed, as a "
                "pull-request comment in markdown."):
        r = d.stackctl("plan", "--base", "main", "--head", UPGRADE_BRANCH, "--format",
                       "markdown", expect=1, why="the clusters would change")
        for c in CLUSTERS:
            d.expect_text(r, rf"^\| `{re.escape(c)}` \| changed \|",
                          f"the plan's summary table has {c} changed")
        d.expect_text(r, r"model-registry", "the plan shows the new model-registry component")
        d.expect_text(r, r"dashboard:v1\.4\.1", "the plan shows the dashboard image v1.4.1")
        d.note("look at: the images line (model-registry comes unmirrored: no images: entry "
               "covers the new component yet) and the removed usage-reporter")


def rollout(d: Demo) -> None:
    from gitops.sandbox import FAIL_LABEL

    with d.step(6, "roll out the upgrade",
                f"First breaks the {BROKEN} rollout on {DEV} on purpose (a pod label the "
                "sandbox keeps crash-looping), to show the failed health wait and the "
                "automatic rollback to the previous revision; then takes the break out and "
                "applies the upgrade to both clusters."):
        old = ws.add_break(d.repo, DEV, fail_label=FAIL_LABEL, deployment=BROKEN)
        d.note(f"added to clusters/{DEV}/kustomization.yaml patches:\n"
               + ws.break_patch(FAIL_LABEL, BROKEN).rstrip())
        sha = ws.commit_all(d.repo, f"demo: break the {BROKEN} rollout on {DEV}")
        d.note(f"committed on {UPGRADE_BRANCH} as {sha[:12]}")
        r = d.stackctl("apply", "--cluster", DEV, "--timeout", "30s", expect=2,
                       why="the health wait failed and the apply was rolled back")
        d.expect_text(r, rf"Deployment\S*{BROKEN}|{BROKEN}\b.*(not ready|CrashLoopBackOff)",
                      f"the failure names the {BROKEN} Deployment")
        d.expect_text(r, r"rolled back to revision 1\b.*healthy",
                      "rolled back to revision 1, healthy")
        _check_images(d, DEV, "v1.3.0")
        loads = d.kube().workloads(ws.NAMESPACES[DEV])
        d.check("Deployment/model-registry" not in loads
                and FAIL_LABEL not in loads["Deployment/dashboard"].pod_labels,
                f"{DEV} is back on v1.3.0: no model-registry, no failure label",
                failure=f"{DEV} still has v1.4.1 objects or the failure label after the "
                        "rollback.")
        r = d.stackctl("history", "--cluster", DEV, expect=0, why="history listed")
        d.expect_text(r, r"^2\s.*\bfailed\b", "revision 2 is recorded as failed")
        d.expect_text(r, r"^3\s.*\bdeployed\b.*rollback", "revision 3 is the rollback")

        ws.restore(d.repo, DEV, old)
        sha = ws.commit_all(d.repo, f"demo: take the break of the {BROKEN} rollout out again")
        d.note(f"took the patch out again; committed as {sha[:12]}")
        for c in CLUSTERS:
            r = d.stackctl("apply", "--cluster", c, expect=0, why="applied and healthy")
            d.expect_text(r, r"^revision \d+ deployed", f"{c}: upgrade deployed")
            _check_images(d, c, "v1.4.1")
            loads = d.kube().workloads(ws.NAMESPACES[c])
            registry = loads.get("Deployment/model-registry")
            d.check(registry is not None
                    and "ghcr.io/mlstack/model-registry:v1.4.0" in registry.images,
                    f"{c}: the new model-registry runs ghcr.io/mlstack/model-registry:v1.4.0",
                    failure=f"{c}: model-registry is missing or runs another image.")
            dash = loads["Deployment/dashboard"]
            d.check(dash.replicas == 2, f"{c}: the dashboard has upstream's 2 replicas",
                    failure=f"{c}: the dashboard has {dash.replicas} replicas, expected 2.")
        r = d.stackctl("history", "--cluster", DEV, expect=0, why="history listed")
        d.expect_text(r, r"^4\s.*\bdeployed\b", "revision 4 (v1.4.1) is deployed on "
                      + DEV)


def drift(d: Demo) -> None:
    with d.step(7, "detect and heal drift",
                f"Scales the dashboard of {PROD} by hand, as a colleague in a hurry would "
                f"(field manager {HAND_MANAGER!r}), then lets 'stackctl drift' find the "
                "change, name the field and who made it, and heal it from git."):
        ns = ws.NAMESPACES[PROD]
        d.kube().scale_by_hand(ns, "dashboard", 5, manager=HAND_MANAGER)
        d.note(f"scaled Deployment {ns}/dashboard to 5 replicas with the Python kubernetes "
               f"client, field manager {HAND_MANAGER}: stackctl did not make this change")
        r = d.stackctl("drift", "--cluster", PROD, expect=1, why="drift found")
        d.expect_text(r, r"^\s*~ Deployment\S*/dashboard -n [^\n]+\n"
                         r"\s*~\s+spec\.replicas: 2 -> 5\n"
                         rf"\s*changed by {re.escape(HAND_MANAGER)}\b",
                      f"the report names Deployment dashboard, spec.replicas 2 -> 5, changed "
                      f"by {HAND_MANAGER}")
        d.stackctl("drift", "--cluster", PROD, "--heal", expect=0, why="drift healed")
        d.stackctl("drift", "--all", expect=0, why="both clusters in sync with git (the "
                   "CRDs they share are noted, not drift)")
        n = d.kube().replicas(ns, "dashboard")
        d.check(n == 2, f"{ns}/dashboard is back to 2 replicas",
                failure=f"{ns}/dashboard has {n} replicas after the heal, expected 2.")


def stop(d: Demo) -> None:
    with d.step(8, "stop the sandbox",
                "Stops every process the sandbox started, by pid, and checks that nothing "
                "the demo started is still running."):
        pids = dict(d.sandbox_pids)
        stopped = d.stop_sandbox()
        d.note("same as: stackctl sandbox down --name demo --state-dir " + str(d.state_dir))
        d.check(len(stopped) == len(pids), f"stopped {len(stopped)} processes: "
                + ", ".join(f"{n} {p}" for n, p in stopped),
                failure=f"only {len(stopped)} of the {len(pids)} sandbox processes were still "
                        f"running to be stopped: {stopped}; the others had died (their logs "
                        f"are in {d.state_dir / 'logs'}).")
        left = children()
        d.check(not left, "no child process of the demo is left",
                failure="processes started by the demo are still there: "
                        + ", ".join(f"{name} {pid} ({state})" for pid, name, state in left)
                        + ".", hint="Stop them by pid (kill PID).")
