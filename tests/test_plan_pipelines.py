"""The shipped CI pipeline examples: they parse, run the documented commands, and order
clusters the way docs/pipelines.md says (wave, then name)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from gitops.cluster import Cluster, kubeconfig_env_var
from gitops.paths import project_root
from gitops.yamlio import load_safe

PIPELINES = project_root() / "pipelines"


def load(rel: str) -> dict[str, object]:
    data = load_safe((PIPELINES / rel).read_text(), path=rel)
    assert isinstance(data, dict)
    return data


def run_lines(doc: object) -> str:
    """Every shell script of a workflow or a GitLab file, joined."""
    out: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                if k in ("run", "script", "before_script") and isinstance(v, str | list):
                    out.extend([v] if isinstance(v, str) else [str(x) for x in v])
                else:
                    walk(v)
        elif isinstance(node, list):
            for x in node:
                walk(x)

    walk(doc)
    return "\n".join(out)


def test_github_plan_workflow_posts_the_markdown_plan_on_pull_requests() -> None:
    wf = load("github/stackctl-plan.yml")
    triggers = wf.get("on", wf.get(True))  # YAML 1.1 reads the key `on` as true
    assert isinstance(triggers, dict) and "pull_request" in triggers
    script = run_lines(wf)
    assert "stackctl plan --base" in script and "--format markdown" in script
    assert wf["permissions"] == {"contents": "read", "pull-requests": "write"}
    assert "fetch-depth: 0" in (PIPELINES / "github/stackctl-plan.yml").read_text()


def test_github_apply_workflow_applies_in_order_and_stops_at_the_first_failure() -> None:
    script = run_lines(load("github/stackctl-apply.yml"))
    assert "set -euo pipefail" in script
    assert 'stackctl apply --cluster "$c"' in script


def test_github_drift_workflow_fails_with_the_report_as_an_artifact() -> None:
    text = (PIPELINES / "github/stackctl-drift.yml").read_text()
    assert "stackctl drift --all --format markdown > drift.md" in text
    assert "actions/upload-artifact" in text and "if: always()" in text
    assert "cron:" in text


def test_gitlab_file_defines_plan_apply_and_drift_jobs() -> None:
    ci = load("gitlab/stackctl.gitlab-ci.yml")
    for job in ("stackctl-plan", "stackctl-apply", "stackctl-drift"):
        assert job in ci, job
    assert "stackctl drift --all --format markdown" in run_lines(ci["stackctl-drift"])
    assert ci["stackctl-drift"]["artifacts"]["when"] == "always"  # type: ignore[index]


def test_the_order_one_liner_puts_dev_before_prod(tmp_path: Path) -> None:
    """The pipelines' cluster order comes from select_clusters: wave, then name."""
    (tmp_path / "stack.yaml").write_text("name: mlstack\nsource: ./up\n")
    for name, wave in (("a-prod", 1), ("z-dev", 0), ("b-prod", 1)):
        d = tmp_path / "clusters" / name
        d.mkdir(parents=True)
        (d / "kustomization.yaml").write_text("resources: []\n")
        (d / "cluster.yaml").write_text(f"wave: {wave}\n")
    text = (PIPELINES / "github/stackctl-apply.yml").read_text()
    m = re.search(r"python -c '([^']+)'", text)
    assert m is not None
    out = subprocess.run([sys.executable, "-c", m.group(1)], cwd=tmp_path, check=True,
                         capture_output=True, text=True).stdout
    assert out.split() == ["z-dev", "a-prod", "b-prod"]


def test_a_per_cluster_environment_variable_names_the_kubeconfig(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert kubeconfig_env_var("eks-prod") == "STACKCTL_KUBECONFIG_EKS_PROD"
    c = Cluster(name="eks-prod", path=tmp_path, kubeconfig=tmp_path / "from-cluster-yaml")
    assert c.kubeconfig_path() == tmp_path / "from-cluster-yaml"
    monkeypatch.setenv("STACKCTL_KUBECONFIG_EKS_PROD", str(tmp_path / "ci"))
    assert c.kubeconfig_path() == tmp_path / "ci"
