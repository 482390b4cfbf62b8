"""`stackctl plan --live` against the sandbox: the working tree's render against the live
cluster through server-side dry-run applies."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gitops.cli import main
from tests.integration.apply_helpers import api, ns
from tests.integration.test_drift_cli import PASSWORD, kubeconfig, repo, run, write_repo

pytestmark = pytest.mark.integration
__all__ = ["api", "kubeconfig", "ns", "repo"]


def test_plan_live_shows_no_change_right_after_an_apply(
        repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["apply", "--cluster", "dev"], capsys)[0] == 0
    code, out, err = run(["plan", "--live", "--cluster", "dev"], capsys)
    assert code == 0, out
    # Defaulted fields (revisionHistoryLimit, imagePullPolicy, ...) are not changes.
    assert "cluster dev: unchanged (3 objects)" in out
    assert "plan: dev (live, revision 1)" in out
    assert "server-side dry run of 3 object(s)" in err


def test_plan_live_shows_a_git_edit_as_changes_added_and_removed_objects(
        repo: Path, ns: str, kubeconfig: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["apply", "--cluster", "dev"], capsys)[0] == 0
    write_repo(repo, ns, kubeconfig, image="web:2", extra=True, settings=False)
    code, out, _ = run(["plan", "--live", "--cluster", "dev"], capsys)
    assert code == 1, out
    assert f"- ConfigMap/settings -n {ns}" in out
    assert f"+ ConfigMap/extra -n {ns}" in out
    assert f"~ Deployment.apps/web -n {ns}" in out
    assert "spec.template.spec.containers[name=c].image: web:1 -> web:2" in out
    assert "1 added, 1 removed, 1 changed" in out
    assert PASSWORD not in out

    code, out, _ = run(["plan", "--live", "--cluster", "dev", "--format", "json"], capsys)
    assert code == 1
    [c] = json.loads(out)["clusters"]
    assert c["counts"]["added"] == 1 and c["counts"]["removed"] == 1
    [changed] = [o for o in c["objects"] if o["action"] == "changed"]
    assert [f["path"] for f in changed["fields"]] == [
        "spec.template.spec.containers[name=c].image"]


def test_plan_live_needs_one_cluster_and_no_base(
        repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["plan", "--live"], capsys)
    assert code == 2 and "give exactly one --cluster NAME" in err
    code, _, err = run(["plan", "--live", "--base", "main", "--cluster", "dev"], capsys)
    assert code == 2 and "give either --base REF or --live" in err
    assert main(["plan", "--cluster", "dev"]) == 2
