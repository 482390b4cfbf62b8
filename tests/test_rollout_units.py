"""Narrow tests of the rollout's parts without a cluster: the scheduler's rules (with
deploy and check functions standing in for clusters), settings, waves, the CI fan-out
formats, the reports, the state file, the progress view, and the redactor under threads.
The rollout against real clusters: tests/integration/test_rollout.py."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from gitops.cluster import Cluster
from gitops.errors import ConfigError
from gitops.redact import Redactor
from gitops.rollout import (
    ClusterResult,
    EventKind,
    Outcome,
    RolloutEvent,
    RolloutSettings,
    fanout,
    load_settings,
    plan_waves,
    report,
)
from gitops.rollout.engine import run_waves
from gitops.rollout.state import SavedRollout, StateWriter, load_saved

WAVES = {"a0": 0, "b0": 0, "c0": 0, "d1": 1, "e1": 1, "f2": 2}


def clusters(waves: dict[str, int] = WAVES) -> list[Cluster]:
    return [Cluster(name=n, path=Path("clusters") / n, wave=w) for n, w in waves.items()]


def run(deploy: Callable[[Cluster], ClusterResult], *, check: Callable[[Cluster], str | None]
        | None = None, stop: threading.Event | None = None, dry_run: bool = False,
        **settings: float) -> tuple[object, list[RolloutEvent]]:
    events: list[RolloutEvent] = []
    lock = threading.Lock()

    def progress(e: RolloutEvent) -> None:
        with lock:
            events.append(e)

    result = run_waves(plan_waves(clusters()), deploy=deploy, check=check,
                       settings=RolloutSettings(**settings),  # type: ignore[arg-type]
                       stop=stop or threading.Event(), progress=progress, dry_run=dry_run)
    return result, events


def outcome(o: Outcome) -> Callable[[Cluster], ClusterResult]:
    return lambda c: ClusterResult(c.name, c.wave, o, revision=1)


def failing(*names: str) -> Callable[[Cluster], ClusterResult]:
    def deploy(c: Cluster) -> ClusterResult:
        if c.name in names:
            return ClusterResult(c.name, c.wave, Outcome.FAILED, reason="broken")
        return ClusterResult(c.name, c.wave, Outcome.DEPLOYED, revision=2)
    return deploy


def outcomes(result: object) -> list[str]:
    return [str(c.outcome) for c in result.clusters]  # type: ignore[attr-defined]


def test_waves_group_clusters_by_wave_lower_first_then_by_name() -> None:
    waves = plan_waves(list(reversed(clusters())))
    assert [(w.number, w.names) for w in waves] == \
        [(0, ("a0", "b0", "c0")), (1, ("d1", "e1")), (2, ("f2",))]


def test_the_clusters_of_a_wave_run_together_up_to_max_parallel() -> None:
    # Three clusters meet at a barrier: only clusters that run at once get past it.
    barrier = threading.Barrier(3, timeout=30)

    def deploy(c: Cluster) -> ClusterResult:
        if c.wave == 0:
            barrier.wait()
        return ClusterResult(c.name, c.wave, Outcome.DEPLOYED, revision=1)

    result, events = run(deploy, max_parallel=3)
    assert outcomes(result) == ["deployed"] * 6
    kinds = [(str(e.kind), e.cluster) for e in events if e.kind in (EventKind.START,
                                                                      EventKind.DONE)]
    assert kinds[:3] == [("start", "a0"), ("start", "b0"), ("start", "c0")]
    wave1 = [i for i, (k, c) in enumerate(kinds) if k == "start" and c in ("d1", "e1")]
    assert min(wave1) > max(i for i, (k, c) in enumerate(kinds)
                            if k == "done" and c in ("a0", "b0", "c0"))


def test_no_more_than_max_parallel_clusters_run_at_once() -> None:
    # START is reported before a cluster is submitted and DONE after it was collected, so
    # the count between them bounds what runs; a0 and b0 wait for each other, so two do
    # run at once, and c0 (wave 0's third) must wait for one of them to end.
    barrier = threading.Barrier(2, timeout=30)

    def deploy(c: Cluster) -> ClusterResult:
        if c.name in ("a0", "b0"):
            barrier.wait()
        return ClusterResult(c.name, c.wave, Outcome.DEPLOYED)

    result, events = run(deploy, max_parallel=2)
    assert outcomes(result) == ["deployed"] * 6
    running, top = 0, 0
    for e in events:
        if e.kind in (EventKind.START, EventKind.DONE):
            running += 1 if e.kind is EventKind.START else -1
            top = max(top, running)
    assert top == 2


def test_once_more_than_max_failures_failed_no_cluster_starts_and_no_wave() -> None:
    result, events = run(failing("a0"), max_parallel=1)
    assert outcomes(result) == ["failed"] + ["not started"] * 5
    assert result.stopped == "1 cluster(s) failed, more than maxFailures (0)"  # type: ignore[attr-defined]
    assert [e.message for e in events if e.kind is EventKind.STOP] == [result.stopped]  # type: ignore[attr-defined]

    result, _ = run(failing("a0", "c0"), max_parallel=1, max_failures=1)
    assert outcomes(result) == ["failed", "deployed", "failed"] + ["not started"] * 3

    result, _ = run(failing("a0", "c0"), max_parallel=1, max_failures=2)
    assert outcomes(result) == ["failed", "deployed", "failed"] + ["deployed"] * 3
    assert not result.ok  # type: ignore[attr-defined]


def test_the_running_clusters_of_a_wave_finish_when_one_fails() -> None:
    # a0 fails while b0 and c0 run: they finish; the next wave does not start.
    barrier = threading.Barrier(3, timeout=30)

    def deploy(c: Cluster) -> ClusterResult:
        if c.wave == 0:
            barrier.wait()
        return failing("a0")(c)

    result, _ = run(deploy, max_parallel=3)
    assert outcomes(result) == ["failed", "deployed", "deployed"] + ["not started"] * 3


def test_a_stop_request_lets_the_running_clusters_finish_and_starts_no_other() -> None:
    stop = threading.Event()

    def deploy(c: Cluster) -> ClusterResult:
        if c.name == "b0":
            stop.set()  # SIGINT while b0 is being applied
        return ClusterResult(c.name, c.wave, Outcome.DEPLOYED)

    result, _ = run(deploy, stop=stop, max_parallel=1)
    assert outcomes(result) == ["deployed", "deployed"] + ["not started"] * 4
    assert result.interrupted and result.stopped == "interrupted"  # type: ignore[attr-defined]
    assert not result.ok  # type: ignore[attr-defined]


def test_a_wave_is_checked_after_the_bake_time_and_an_unhealthy_cluster_stops_the_next() -> None:
    checked: list[str] = []

    def check(c: Cluster) -> str | None:
        checked.append(c.name)
        return "Deployment/web: 0 of 1 available" if c.name == "b0" else None

    result, events = run(outcome(Outcome.DEPLOYED), check=check, bake_time=0.01)
    assert sorted(checked) == ["a0", "b0", "c0"]
    assert [str(e.kind) for e in events if e.kind in (EventKind.BAKE, EventKind.CHECK)] == \
        ["bake", "check"]
    b0 = result.clusters[1]  # type: ignore[attr-defined]
    assert b0.outcome is Outcome.FAILED
    assert b0.reason == "not healthy at the end of wave 0: Deployment/web: 0 of 1 available"
    assert outcomes(result)[3:] == ["not started"] * 3
    assert result.waves[0].baked == 0.01  # type: ignore[attr-defined]


def test_the_last_wave_has_no_bake_and_no_check() -> None:
    checked: list[str] = []
    run(outcome(Outcome.DEPLOYED), check=lambda c: checked.append(c.name) or None)
    assert "f2" not in checked and "d1" in checked


def test_a_bug_in_one_cluster_fails_that_cluster_and_is_kept_for_the_log() -> None:
    def deploy(c: Cluster) -> ClusterResult:
        if c.name == "b0":
            raise KeyError("oops")
        return ClusterResult(c.name, c.wave, Outcome.DEPLOYED)

    result, _ = run(deploy, max_parallel=1, max_failures=5)
    b0 = result.clusters[1]  # type: ignore[attr-defined]
    assert b0.outcome is Outcome.FAILED
    assert b0.reason == "stackctl failed unexpectedly (KeyError: 'oops')"
    assert [type(e) for e in result.crashes] == [KeyError]  # type: ignore[attr-defined]


def test_a_dry_run_plans_every_cluster_whatever_fails() -> None:
    result, _ = run(failing("a0", "b0"), dry_run=True, max_parallel=1)
    assert outcomes(result) == ["failed", "failed"] + ["deployed"] * 4
    assert not result.stopped  # type: ignore[attr-defined]


def test_each_cluster_is_timed_from_the_start_of_the_rollout() -> None:
    result, _ = run(outcome(Outcome.DEPLOYED))
    for c in result.clusters:  # type: ignore[attr-defined]
        assert c.started is not None and c.ended is not None and c.ended >= c.started


# -- settings -------------------------------------------------------------------------
def test_settings_come_from_stack_yaml_and_flags_take_precedence(tmp_path: Path) -> None:
    (tmp_path / "stack.yaml").write_text(
        "name: s\nsource: ./up\nrollout:\n  maxParallel: 8\n  maxFailures: 1\n"
        "  bakeTime: 2m\n")
    s = load_settings(tmp_path)
    assert s == RolloutSettings(max_parallel=8, max_failures=1, bake_time=120.0)
    assert s.with_flags(max_parallel=2, bake_time=0) == RolloutSettings(2, 1, 0.0)
    (tmp_path / "stack.yaml").write_text("name: s\nsource: ./up\n")
    assert load_settings(tmp_path) == RolloutSettings(5, 0, 0.0)


@pytest.mark.parametrize(("block", "message"), [
    ("rollout:\n  maxParallel: 0\n", "'rollout.maxParallel' must be 1 or more"),
    ("rollout:\n  maxFailures: -1\n", "'rollout.maxFailures' must be 0 or more"),
    ("rollout:\n  bakeTime: soon\n", "invalid rollout.bakeTime"),
    ("rollout:\n  parallel: 3\n", "unknown key 'rollout.parallel'"),
])
def test_wrong_rollout_settings_are_refused_with_the_file(tmp_path: Path, block: str,
                                                          message: str) -> None:
    (tmp_path / "stack.yaml").write_text("name: s\nsource: ./up\n" + block)
    with pytest.raises(ConfigError, match=message.replace(".", r"\.").replace("(", r"\(")):
        load_settings(tmp_path)


# -- fan-out --------------------------------------------------------------------------
def test_github_outputs_hold_a_matrix_per_wave_by_position() -> None:
    lines = fanout.github_outputs(plan_waves(clusters()), RolloutSettings(4, 0, 90))
    out = dict(line.split("=", 1) for line in lines)
    assert out["waves"] == "3" and out["max-parallel"] == "4" and out["bake-seconds"] == "90"
    assert json.loads(out["wave2"]) == {"include": [
        {"cluster": "d1", "wave": 1, "secret": "KUBECONFIG_D1"},
        {"cluster": "e1", "wave": 1, "secret": "KUBECONFIG_E1"}]}
    assert len(json.loads(out["matrix"])["include"]) == 6


def test_the_gitlab_child_pipeline_has_a_stage_per_wave_and_chains_jobs_beyond_max_parallel(
        ) -> None:
    text = fanout.gitlab_pipeline(plan_waves(clusters()), RolloutSettings(2, 0, 300),
                                  commit="abc")
    assert text.startswith("# Generated by 'stackctl clusters --format gitlab' at commit abc")
    doc = yaml.safe_load(text)
    assert doc["include"] == [{"local": fanout.GITLAB_INCLUDE}]
    assert doc["stages"] == ["wave-0", "bake-0", "wave-1", "bake-1", "wave-2"]
    assert doc["rollout c0"] == {"extends": ".stackctl-cluster", "stage": "wave-0",
                                 "variables": {"STACKCTL_CLUSTER": "c0"},
                                 "needs": ["rollout a0"]}
    assert "needs" not in doc["rollout b0"]
    assert doc["bake after wave 0"]["when"] == "delayed"
    assert doc["bake after wave 0"]["start_in"] == "300 seconds"
    assert "bake after wave 2" not in doc


# -- reports --------------------------------------------------------------------------
def _result() -> object:
    return run(failing("b0"), max_parallel=1)[0]


def test_the_text_report_is_a_table_per_wave_with_the_reason() -> None:
    lines = report.text_lines(_result())  # type: ignore[arg-type]
    assert lines[0].startswith("wave 0: 3 cluster(s) in ")
    assert lines[1].split() == ["CLUSTER", "OUTCOME", "REVISION", "TIME", "REASON"]
    assert lines[3].split()[:3] == ["b0", "failed", "-"] and lines[3].endswith("broken")
    assert lines[5] == "wave 1: 2 cluster(s), not started"
    assert lines[-2] == "stopped: 1 cluster(s) failed, more than maxFailures (0)"
    assert lines[-1].startswith("rollout: 1 deployed, 1 failed, 4 not started (of 6 "
                                "cluster(s)) in ")


def test_json_and_markdown_reports_carry_every_cluster() -> None:
    result = _result()
    doc = json.loads(report.to_json(result))  # type: ignore[arg-type]
    assert doc["ok"] is False and doc["summary"] == {"deployed": 1, "failed": 1,
                                                     "not started": 4}
    assert doc["waves"][0]["clusters"][1]["reason"] == "broken"
    md = report.markdown(result)  # type: ignore[arg-type]
    assert "| b0 | ❌ failed | - |" in md and md.count("| Cluster | Outcome |") == 3
    assert "**1 of 6 cluster(s) run this commit**" in md


def test_a_reason_with_a_pipe_does_not_break_the_markdown_table() -> None:
    def deploy(c: Cluster) -> ClusterResult:
        return ClusterResult(c.name, c.wave, Outcome.FAILED, reason="a | b")
    md = report.markdown(run(deploy, dry_run=True)[0])  # type: ignore[arg-type]
    assert "| a \\| b |" in md


# -- state file -----------------------------------------------------------------------
def test_the_state_file_records_the_selection_and_each_outcome(tmp_path: Path) -> None:
    writer = StateWriter(tmp_path, SavedRollout("c1", ("a0", "d1"), "2026-01-01T00:00:00Z"))
    writer.start()
    writer.ended("a0", "deployed")
    assert load_saved(tmp_path) == SavedRollout("c1", ("a0", "d1"), "2026-01-01T00:00:00Z",
                                                (("a0", "deployed"),))
    writer.finish("interrupted")
    saved = load_saved(tmp_path)
    assert saved is not None and saved.finished and saved.stopped == "interrupted"
    assert (tmp_path / ".stackctl" / ".gitignore").read_text().endswith("*\n")
    (tmp_path / ".stackctl" / "rollout.json").write_text("{not json")
    assert load_saved(tmp_path) is None


# -- progress view --------------------------------------------------------------------
def test_the_log_view_prefixes_steps_with_the_cluster_and_scrubs_secrets() -> None:
    from gitops.apply import ProgressEvent, Stage
    from gitops.cli._rollout_view import FleetProgress

    redactor = Redactor()
    redactor.add_known("hunter2-secret")
    stream = io.StringIO()
    view = FleetProgress(redactor, stream, live=False)
    view(RolloutEvent(EventKind.START, 0, "a0"))
    view(RolloutEvent(EventKind.STEP, 0, "a0",
                      step=ProgressEvent(Stage.PHASE, "applying hunter2-secret")))
    view(RolloutEvent(EventKind.STEP, 0, "a0", step=ProgressEvent(Stage.APPLY, "created")))
    view(RolloutEvent(EventKind.DONE, 0, "a0",
                      result=ClusterResult("a0", 0, Outcome.DEPLOYED, revision=3,
                                           started=0.0, ended=2.0)))
    lines = stream.getvalue().splitlines()
    assert lines[0] == "→ a0: starting"
    assert lines[1].startswith("  a0: applying <redacted sha256:")
    assert lines[2] == "✓ a0: revision 3 deployed (2.0s)"
    assert len(lines) == 3  # per-object events are left out


def test_the_terminal_view_redraws_one_line_per_running_cluster() -> None:
    from gitops.apply import ProgressEvent, Stage
    from gitops.cli._rollout_view import FleetProgress

    stream = io.StringIO()
    view = FleetProgress(Redactor(), stream, live=True)
    view(RolloutEvent(EventKind.START, 0, "a0"))
    view(RolloutEvent(EventKind.START, 0, "bb0"))
    view(RolloutEvent(EventKind.STEP, 0, "a0", step=ProgressEvent(Stage.WAIT, "waiting")))
    last = stream.getvalue().rsplit("\x1b[2F\x1b[J", 1)[1]
    assert last == "  a0   waiting\n  bb0  starting\n"
    view(RolloutEvent(EventKind.DONE, 0, "a0", result=ClusterResult("a0", 0, Outcome.UNCHANGED,
                                                                    revision=1)))
    last = stream.getvalue().rsplit("\x1b[2F\x1b[J", 1)[1]
    assert last == "✓ a0: no changes, revision 1 is current\n  bb0  starting\n"
    view.close()
    assert stream.getvalue().endswith("\x1b[1F\x1b[J")


# -- thread safety --------------------------------------------------------------------
def test_a_value_learned_while_another_thread_builds_the_scrub_pattern_is_scrubbed(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The interleaving that leaked before the lock, forced: thread A builds the scrub
    pattern (held inside re.compile), thread B learns a new value meanwhile; A must not
    then install a pattern that lacks B's value."""
    import re

    import gitops.redact as redact_module

    compiling, release = threading.Event(), threading.Event()

    class SlowRe:
        def __getattr__(self, name: str) -> object:
            return getattr(re, name)

        def compile(self, pattern: str, flags: int = 0) -> re.Pattern[str]:
            if threading.current_thread().name == "A":
                compiling.set()
                release.wait(30)
            return re.compile(pattern, flags)

    redactor = Redactor()
    redactor.add_known("first-secret-value")
    monkeypatch.setattr(redact_module, "re", SlowRe())
    a = threading.Thread(target=redactor.text, args=("warm up",), name="A")
    b = threading.Thread(target=redactor.add_known, args=("second-secret-value",), name="B")
    a.start()
    assert compiling.wait(30)
    b.start()
    b.join(0.5)  # with the lock B waits for A; without it B is done by now
    release.set()
    a.join(30)
    b.join(30)
    scrubbed = redactor.text("first-secret-value second-secret-value")
    assert "secret-value" not in scrubbed, scrubbed
