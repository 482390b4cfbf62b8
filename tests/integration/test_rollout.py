"""`stackctl rollout` on six clusters (namespaces of the sandbox, rollout_fleet.py): waves in
order, parallelism within a wave, a failing cluster stopping the next wave (rolled back, the
others deployed), --max-failures, --resume, the health check after the bake time."""

from __future__ import annotations

import json
import os
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pygit2
import pytest

from gitops.cli import main
from gitops.inventory import RevisionStatus
from gitops.kube import Kube
from gitops.redact import Redactor
from gitops.rollout import EventKind, Outcome, RolloutEvent, RolloutSettings, rollout
from gitops.sandbox import FAIL_LABEL
from gitops.stack import load_stack
from tests.fixtures.gitrepos import commit_all
from tests.integration.apply_helpers import api, team_fixture
from tests.integration.rollout_fleet import (
    FleetRepo,
    fields,
    most_running,
    stderr_order,
)

pytestmark = pytest.mark.integration
__all__ = ["api"]


@pytest.fixture
def kubeconfig(request: pytest.FixtureRequest) -> Path:
    explicit = os.environ.get("STACKCTL_TEST_KUBECONFIG")
    if explicit:
        return Path(explicit)
    return Path(team_fixture(request, "sandbox").kubeconfig)


@pytest.fixture
def fleet(api: Any, kubeconfig: Path, tmp_path: Path, git_env: Path, kustomize: Path,
          monkeypatch: pytest.MonkeyPatch) -> Iterator[FleetRepo]:
    kube = Kube.of(api)
    records = f"fleet-records-{uuid.uuid4().hex[:6]}"
    kube.request("POST", "/api/v1/namespaces", body={
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": records}})
    root = tmp_path / "deploy"
    root.mkdir()
    monkeypatch.chdir(root)
    repo = FleetRepo(root, kube, kubeconfig, records)
    try:
        yield repo
    finally:
        repo.cleanup()
        kube.delete("v1", "Namespace", "", records)


def run_core(fleet: FleetRepo, settings: RolloutSettings, **kw: Any
             ) -> tuple[Any, list[RolloutEvent]]:
    events: list[RolloutEvent] = []
    lock = threading.Lock()

    def progress(e: RolloutEvent) -> None:
        with lock:
            events.append(e)

    result = rollout(load_stack(fleet.root), settings=settings, redactor=Redactor(),
                     stop=threading.Event(), progress=progress, **kw)
    return result, events


def cli_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any], str]:
    code = main(["rollout", "--format", "json", *args])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    assert out.startswith("{"), (code, err)
    return code, json.loads(out), err


def test_rollout_goes_wave_by_wave_with_at_most_max_parallel_clusters_at_once(
        fleet: FleetRepo, capsys: pytest.CaptureFixture[str]) -> None:
    # Pods ready 3 s after they are scheduled: clusters of a wave overlap as on real ones.
    commit = fleet.write("web:1", ready_after="3s")
    code, doc, err = cli_json(capsys, "--max-parallel", "2")
    assert code == 0, err
    assert doc["ok"] and doc["commit"] == commit and doc["summary"] == {"deployed": 6}
    assert [w["wave"] for w in doc["waves"]] == [0, 1, 2]

    seen = stderr_order(err)
    assert sorted(c for k, c in seen if k == "start") == sorted(fleet.waves)
    # Waves in order: no cluster of a wave starts before every one of the wave before ended.
    for later in (1, 2):
        first_start = min(i for i, (k, c) in enumerate(seen)
                          if k == "start" and fleet.waves[c] == later)
        last_done = max(i for i, (k, c) in enumerate(seen)
                        if k == "done" and fleet.waves[c] == later - 1)
        assert last_done < first_start, seen
    # Within a wave: two at once, never three (wave 0 has three clusters).
    assert most_running(seen) == 2, seen
    for name in fleet.waves:
        deployed = fleet.revisions(name).deployed
        assert deployed is not None and deployed.commit == commit
        assert fields(doc, name)["outcome"] == "deployed"


def test_a_failing_cluster_stops_the_next_wave_and_is_rolled_back_while_the_others_stay(
        fleet: FleetRepo, capsys: pytest.CaptureFixture[str]) -> None:
    fleet.timeout = "8s"
    first = fleet.write("web:1")
    assert main(["rollout"]) == 0
    capsys.readouterr()

    second = fleet.write("web:2", fail=["b0"])
    code, doc, err = cli_json(capsys, "--max-parallel", "3")
    assert code == 2
    assert "error: the rollout did not reach every cluster: 1 cluster(s) failed (b0)" in \
        " ".join(err.split())
    b0 = fields(doc, "b0")
    assert b0["outcome"] == "failed" and b0["rolledBackTo"] == 1
    assert "did not become healthy" in b0["reason"] and "rolled back to revision 1" in \
        b0["reason"]
    assert doc["stopped"] == "1 cluster(s) failed, more than maxFailures (0)"
    # The others of wave 0 stay deployed at the new commit ...
    for name in ("a0", "c0"):
        assert fields(doc, name)["outcome"] == "deployed"
        assert fleet.revisions(name).deployed.commit == second  # type: ignore[union-attr]
        assert fleet.image(name) == "web:2"
    # ... the failed one runs its previous revision again ...
    statuses = [(r.revision, r.status, r.commit) for r in fleet.revisions("b0")]
    assert statuses[1][:2] == (2, RevisionStatus.FAILED)
    assert statuses[-1] == (3, RevisionStatus.DEPLOYED, first)
    assert fleet.image("b0") == "web:1"
    # ... and no cluster of a later wave was touched.
    for name in ("d1", "e1", "f2"):
        assert fields(doc, name)["outcome"] == "not started"
        assert [r.revision for r in fleet.revisions(name)] == [1]
        assert fleet.image(name) == "web:1"


def test_max_failures_is_the_number_of_failed_clusters_the_rollout_goes_on_with(
        fleet: FleetRepo, capsys: pytest.CaptureFixture[str]) -> None:
    fleet.timeout = "6s"
    fleet.write("web:1")
    assert main(["rollout"]) == 0
    capsys.readouterr()
    fleet.write("web:2", fail=["a0", "c0"])

    # One at a time, in name order: a0 fails and nothing else starts.
    code, doc, _ = cli_json(capsys, "--max-parallel", "1")
    assert code == 2
    assert [fields(doc, n)["outcome"] for n in fleet.waves] == \
        ["failed", "not started", "not started", "not started", "not started", "not started"]

    # One failure tolerated: a0 fails, b0 deploys, c0 is the second failure: stop.
    code, doc, _ = cli_json(capsys, "--max-parallel", "1", "--max-failures", "1")
    assert code == 2
    assert [fields(doc, n)["outcome"] for n in fleet.waves] == \
        ["failed", "deployed", "failed", "not started", "not started", "not started"]
    assert doc["stopped"] == "2 cluster(s) failed, more than maxFailures (1)"

    # Two tolerated: the later waves go on (the failed clusters run their old revision).
    code, doc, _ = cli_json(capsys, "--max-parallel", "1", "--max-failures", "2")
    assert code == 2  # not every cluster runs this commit
    assert [fields(doc, n)["outcome"] for n in fleet.waves] == \
        ["failed", "unchanged", "failed", "deployed", "deployed", "deployed"]
    assert fleet.image("a0") == fleet.image("c0") == "web:1"
    assert fleet.image("f2") == "web:2"


def test_resume_continues_with_the_clusters_of_the_stopped_rollout_that_do_not_run_this_commit(
        fleet: FleetRepo, capsys: pytest.CaptureFixture[str], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    fleet.write("web:1")
    assert main(["rollout"]) == 0
    capsys.readouterr()
    commit = fleet.write("web:2")

    # c0 cannot be reached from here (say, its VPN is down): its kubeconfig points at a
    # closed port. The rollout covers five clusters; e1 is left out on purpose.
    from gitops.sandbox.processes import free_port

    dead = tmp_path / "dead.kubeconfig"
    text = fleet.kubeconfig.read_text()
    server = next(ln.split("server:")[1].strip() for ln in text.splitlines()
                  if "server:" in ln)
    dead.write_text(text.replace(server, f"https://127.0.0.1:{free_port()}"))
    monkeypatch.setenv("STACKCTL_KUBECONFIG_C0", str(dead))
    chosen = ["--cluster", "a0", "--cluster", "b0", "--cluster", "c0", "--cluster", "d1",
              "--cluster", "f2"]
    code, doc, _ = cli_json(capsys, "--max-parallel", "1", *chosen)
    assert code == 2
    assert fields(doc, "c0")["outcome"] == "failed"
    assert "127.0.0.1" in fields(doc, "c0")["reason"]
    assert [fields(doc, n)["outcome"] for n in ("a0", "b0", "d1", "f2")] == \
        ["deployed", "deployed", "not started", "not started"]

    # Reachable again: --resume takes the same five clusters, skips those that run this
    # commit (their records say so) and applies the rest.
    monkeypatch.delenv("STACKCTL_KUBECONFIG_C0")
    code, doc, err = cli_json(capsys, "--resume")
    assert code == 0, err
    assert [c["cluster"] for w in doc["waves"] for c in w["clusters"]] == \
        ["a0", "b0", "c0", "d1", "f2"]
    assert [fields(doc, n)["outcome"] for n in ("a0", "b0", "c0", "d1", "f2")] == \
        ["skipped", "skipped", "deployed", "deployed", "deployed"]
    assert "already deploys commit" in fields(doc, "a0")["reason"]
    for name in ("a0", "b0"):
        assert [r.revision for r in fleet.revisions(name)] == [1, 2]  # not applied again
    for name in ("c0", "d1", "f2"):
        assert fleet.revisions(name).deployed.commit == commit  # type: ignore[union-attr]
    assert fleet.image("e1") == "web:1"


def test_a_cluster_that_turns_unhealthy_during_the_bake_time_stops_the_next_wave(
        fleet: FleetRepo) -> None:
    fleet.waves = {"a0": 0, "b0": 0, "d1": 1}
    fleet.write("web:1")
    broken: list[str] = []

    result, events = run_core(fleet, RolloutSettings(max_parallel=2, bake_time=3))
    assert result.ok and [str(e.kind) for e in events].count("bake") == 1

    def breaking(e: RolloutEvent) -> None:
        # Someone breaks b0 by hand while wave 0 bakes: its new pods never become ready.
        if e.kind is EventKind.BAKE and not broken:
            fleet.kube.request(
                "PATCH", f"/apis/apps/v1/namespaces/{fleet.ns('b0')}/deployments/web",
                body={"spec": {"template": {"metadata": {"labels": {FAIL_LABEL: "true"}}}}},
                content_type="application/strategic-merge-patch+json")
            broken.append("b0")

    fleet.write("web:2")
    result = rollout(load_stack(fleet.root), settings=RolloutSettings(max_parallel=2,
                                                                      bake_time=3),
                     redactor=Redactor(), stop=threading.Event(), progress=breaking)
    outcomes = {c.cluster: c for c in result.clusters}
    assert broken and outcomes["a0"].outcome is Outcome.DEPLOYED
    assert outcomes["b0"].outcome is Outcome.FAILED
    assert outcomes["b0"].reason.startswith("not healthy at the end of wave 0: 1 object(s) of "
                                            "revision 2 not ready, Deployment.apps/web")
    assert outcomes["d1"].outcome is Outcome.NOT_STARTED
    assert result.stopped == "cluster b0 is not healthy at the end of wave 0"


def test_dry_run_prints_the_waves_and_what_each_cluster_would_change(
        fleet: FleetRepo, capsys: pytest.CaptureFixture[str]) -> None:
    fleet.waves = {"a0": 0, "d1": 1}
    fleet.write("web:1")
    assert main(["rollout", "--cluster", "a0"]) == 0
    fleet.write("web:2")
    capsys.readouterr()
    assert main(["rollout", "--dry-run"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "wave 0: a0"
    assert out[1] == ("  a0: 0 to create, 2 to update, 0 to delete, 1 unchanged "
                      "(revision 1 is current)")
    assert out[2:4] == [f"    ~ ConfigMap/settings -n {fleet.ns('a0')}",
                        f"    ~ Deployment.apps/web -n {fleet.ns('a0')}"]
    assert out[4:6] == ["wave 1: d1", "  d1: 3 to create, 0 to update, 0 to delete, 0 unchanged"]
    assert out[-1].startswith("dry run: 2 planned (of 2 cluster(s))")
    assert [r.revision for r in fleet.revisions("a0")] == [1]  # nothing changed
    assert fleet.revisions("d1") == ()


def test_sigint_starts_no_new_cluster_and_lets_the_running_ones_finish(
        fleet: FleetRepo, capsys: pytest.CaptureFixture[str]) -> None:
    import signal
    import subprocess
    import sys

    fleet.write("web:1")
    assert main(["rollout"]) == 0
    capsys.readouterr()
    commit = fleet.write("web:2", ready_after="4s")
    proc = subprocess.Popen([sys.executable, "-m", "gitops", "rollout", "--max-parallel", "3",
                             "--format", "json"], cwd=fleet.root, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    seen: list[str] = []
    # An event, not a time: the first wave is waiting for its pods to become ready.
    for line in proc.stderr:
        seen.append(line)
        if "waiting for the rollout" in line:
            break
    proc.send_signal(signal.SIGINT)
    out, rest = proc.communicate(timeout=120)
    err = "".join(seen) + rest
    assert proc.returncode == 130, err
    assert "SIGINT: stopping the rollout" in err and "Traceback" not in err
    assert "interrupted: 3 cluster(s) were not started" in " ".join(err.split())
    doc = json.loads(out)
    assert doc["interrupted"] and doc["stopped"] == "interrupted"
    assert [fields(doc, n)["outcome"] for n in fleet.waves] == \
        ["deployed", "deployed", "deployed", "not started", "not started", "not started"]
    for name in ("a0", "b0", "c0"):
        assert fleet.revisions(name).deployed.commit == commit  # type: ignore[union-attr]
    assert fleet.image("d1") == "web:1"

    code, doc, err = cli_json(capsys, "--resume")
    assert code == 0, err
    assert [fields(doc, n)["outcome"] for n in fleet.waves] == \
        ["skipped", "skipped", "skipped", "deployed", "deployed", "deployed"]


def test_rollout_refuses_a_dirty_tree_and_a_cluster_pinned_to_another_identity(
        fleet: FleetRepo, capsys: pytest.CaptureFixture[str]) -> None:
    fleet.waves = {"a0": 0, "b0": 0}
    fleet.write("web:1")
    pinned = fleet.root / "clusters/b0/cluster.yaml"
    pinned.write_text(pinned.read_text() + "identity: 0b5e55ed-0000-4000-8000-000000000000\n")
    commit = commit_all(pygit2.Repository(str(fleet.root)), "pin b0 to another cluster")
    app = fleet.root / "clusters/a0/app.yaml"
    app.write_text(app.read_text().replace("web:1", "web:edited"))

    # Files a cluster renders changed since the commit: nothing is applied anywhere.
    assert main(["rollout"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "uncommitted changes to files that 1 cluster(s) render (a0); changed: " \
           "clusters/a0/app.yaml" in err and "--allow-dirty" in err
    assert "Traceback" not in err
    assert list(fleet.revisions("a0")) == [] and list(fleet.revisions("b0")) == []

    code, doc, err = cli_json(capsys, "--allow-dirty")
    assert code == 2
    a0 = fleet.revisions("a0").deployed
    assert a0 is not None and a0.dirty and a0.source == f"{commit}-dirty"
    assert fleet.image("a0") == "web:edited"
    # b0's kubeconfig reaches a cluster whose identity is not the pinned one: refused
    # before anything was read or changed there.
    b0 = fields(doc, "b0")
    assert b0["outcome"] == "failed" and "is pinned to the cluster whose kube-system" in \
        b0["reason"]
    assert list(fleet.revisions("b0")) == [] and fleet.image("b0") is None
