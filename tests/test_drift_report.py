"""The drift report's forms and exit codes, on hand-built results (the checks themselves run
against the sandbox in tests/integration/test_drift*.py)."""

from __future__ import annotations

import json

import pytest

from gitops.diff import diff_object_sets
from gitops.drift import (
    ClusterDrift,
    DriftReport,
    FieldDrift,
    GitComparison,
    HealOutcome,
    Manager,
    ObjectDrift,
    render_json,
    render_markdown,
    render_text,
)
from gitops.errors import ExitCode
from gitops.inventory import RevisionInfo
from gitops.redact import Redactor
from gitops.resource import ResourceId

REV = RevisionInfo(revision=3, status="deployed", commit="a" * 40, user="alice",
                   time="2026-12-01T03:00:00Z", object_count=2)
WEB = ResourceId("apps", "Deployment", "ml", "web")
CM = ResourceId("", "ConfigMap", "ml", "settings")
EDIT = Manager("kubectl-edit", "Update", "", "2026-12-01T04:00:00Z")


def drifted(r: Redactor) -> ClusterDrift:
    return ClusterDrift("dev", REV, 2, (
        ObjectDrift(CM, "v1", "missing"),
        ObjectDrift(WEB, "apps/v1", "changed", (
            FieldDrift("spec.replicas", "changed", 2, 5, (EDIT,)),
            FieldDrift("metadata.labels.team", "removed", "ml", None),
        ), writers=(EDIT,)),
        ObjectDrift(ResourceId("", "ConfigMap", "ml", "stray"), "v1", "extra"),
    ))


def report(*clusters: ClusterDrift, r: Redactor | None = None) -> DriftReport:
    return DriftReport(clusters, r or Redactor(), "2026-12-01T05:00:00Z")


def test_exit_code_is_2_when_a_cluster_could_not_be_checked_else_1_on_drift() -> None:
    r = Redactor()
    ok = ClusterDrift("ok", REV, 2)
    assert report(ok).exit_code == ExitCode.OK
    assert report(ok, drifted(r)).exit_code == ExitCode.FINDING
    gone = ClusterDrift("gone", error="cannot reach the Kubernetes API server")
    assert report(ok, drifted(r), gone).exit_code == ExitCode.ERROR
    never = ClusterDrift("new", never_applied=True, error="never applied")
    assert (never.status, report(never).exit_code) == ("never-applied", ExitCode.ERROR)
    pending = ClusterDrift("p", REV, 2, git=GitComparison(
        "differs", diff=diff_object_sets([], [{"apiVersion": "v1", "kind": "ConfigMap",
                                               "metadata": {"name": "x"}}], redactor=r)))
    assert (pending.status, pending.exit_code) == ("drift", ExitCode.FINDING)
    broken = ClusterDrift("b", REV, 2, git=GitComparison("error", error="kustomize failed"))
    assert (broken.status, broken.exit_code) == ("error", ExitCode.ERROR)
    failed_heal = ClusterDrift("h", REV, 2, heal=HealOutcome(None, error="rejected"))
    assert failed_heal.exit_code == ExitCode.ERROR


def test_text_lists_missing_changed_and_extra_objects_with_managers() -> None:
    text = render_text(report(drifted(Redactor())))
    assert "cluster dev: DRIFT: revision 3 (commit aaaaaaaaaaaa, applied " \
           "2026-12-01T03:00:00Z by alice); 2 objects checked: 1 changed, 1 missing, 1 extra" \
           in text
    lines = text.splitlines()
    i = lines.index("  ~ Deployment.apps/web -n ml")
    assert lines[i + 1:i + 5] == [
        "  ~    spec.replicas: 2 -> 5",
        "          changed by kubectl-edit (Update at 2026-12-01T04:00:00Z)",
        "  -    metadata.labels.team: ml",
        "          removed; no field manager owns it now (latest other writer: kubectl-edit "
        "(Update at 2026-12-01T04:00:00Z))",
    ]
    assert "  - ConfigMap/settings -n ml: missing" in lines
    assert "  ? ConfigMap/stray -n ml: carries stackctl's ApplySet label, not in revision 3" \
        in lines
    assert lines[-1] == ("1 cluster(s): 0 in sync, 1 drifted, 0 could not be checked, "
                         "0 never applied")


def test_markdown_has_a_table_and_a_fenced_section_per_cluster_needing_a_look() -> None:
    md = render_markdown(report(ClusterDrift("ok", REV, 2), drifted(Redactor())))
    assert md.startswith("### stackctl drift\n")
    assert "| `ok` | in sync | 3 (`aaaaaaaaaaaa`) | 0 | 0 | 0 | – |" in md
    assert "| `dev` | DRIFT | 3 (`aaaaaaaaaaaa`) | 1 | 1 | 1 | – |" in md
    assert "<summary><b>dev</b>: DRIFT</summary>" in md
    assert "<b>ok</b>" not in md  # an in-sync cluster needs no section
    assert "```diff\ncluster dev: DRIFT" in md


def test_json_schema_keys_are_stable() -> None:
    data = json.loads(render_json(report(drifted(Redactor()))))
    assert list(data) == ["apiVersion", "checkedAt", "exitCode", "heal", "summary", "clusters",
                          "redacted"]
    assert data["apiVersion"] == "stackctl.dev/drift/v1"
    assert data["summary"] == {"clusters": {"in-sync": 0, "drift": 1, "error": 0,
                                            "never-applied": 0},
                               "objects": {"changed": 1, "missing": 1, "extra": 1},
                               "notRolledOut": 0}
    [c] = data["clusters"]
    assert list(c) == ["name", "status", "exitCode", "error", "notes", "revision",
                       "checkedObjects", "counts", "objects", "git", "heal"]
    assert c["revision"] == {"number": 3, "commit": "a" * 40, "time": "2026-12-01T03:00:00Z",
                             "user": "alice", "objects": 2}
    changed = c["objects"][1]
    assert changed["fields"][0] == {
        "path": "spec.replicas", "action": "changed", "desired": 2, "live": 5,
        "ownedByStackctl": False,
        "managers": [{"manager": "kubectl-edit", "operation": "Update", "subresource": "",
                      "time": "2026-12-01T04:00:00Z"}],
        "changedBy": ["kubectl-edit"]}
    assert c["git"] == {"state": "not-checked", "headCommit": None, "error": None,
                        "counts": {"added": 0, "removed": 0, "changed": 0}, "objects": []}


def test_every_form_scrubs_secret_values_the_run_has_seen() -> None:
    r = Redactor()
    r.learn([{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
              "stringData": {"token": "tok-9f8e7d6c5b"}}])
    # A value that slipped through structured redaction (a message quoting it).
    c = ClusterDrift("dev", REV, 1, (ObjectDrift(CM, "v1", "changed", (
        FieldDrift('data["note"]', "changed", "was tok-9f8e7d6c5b", "now"),)),))
    rep = report(c, r=r)
    for out in (render_text(rep), render_markdown(rep), render_json(rep)):
        assert "tok-9f8e7d6c5b" not in out
        assert "<redacted sha256:" in out


def test_drift_command_refuses_cluster_names_together_with_all(
        capsys: pytest.CaptureFixture[str]) -> None:
    from gitops.cli import main

    assert main(["drift", "--all", "--cluster", "dev"]) == 2
    assert "give --cluster NAME or --all, not both." in capsys.readouterr().err
