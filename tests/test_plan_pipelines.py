"""The shipped CI pipeline examples: they parse, pass actionlint (GitHub) and GitLab's CI
schema, run the documented commands (`stackctl rollout`, `stackctl clusters`: no Python
against internal modules), and install stackctl from its source at a pinned commit, never
by the bare name from the public index (which belongs to another project)."""

from __future__ import annotations

import subprocess
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


def test_github_apply_workflow_rolls_out_with_stackctl_rollout() -> None:
    script = run_lines(load("github/stackctl-apply.yml"))
    assert "stackctl rollout --format markdown" in script
    assert "GITHUB_STEP_SUMMARY" in script and "set -o pipefail" in script


def test_github_fanout_workflow_runs_a_matrix_per_wave_as_dependent_jobs() -> None:
    wf = load("github/stackctl-fanout.yml")
    jobs = wf["jobs"]
    assert isinstance(jobs, dict)
    assert "stackctl clusters --format github-matrix" in run_lines(jobs["waves"])
    assert jobs["wave2"]["needs"] == ["waves", "wave1"]
    assert jobs["wave3"]["needs"] == ["waves", "wave2"]
    for n in (1, 2, 3):
        assert jobs[f"wave{n}"]["with"]["matrix"] == f"${{{{ needs.waves.outputs.wave{n} }}}}"
    cluster = load("github/stackctl-cluster.yml")["jobs"]
    assert isinstance(cluster, dict)
    assert cluster["apply"]["needs"] == "bake"
    assert cluster["apply"]["strategy"]["max-parallel"] == "${{ inputs.max-parallel }}"
    assert 'stackctl rollout --cluster "$CLUSTER"' in run_lines(cluster["apply"])


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


def test_gitlab_apply_runs_stackctl_rollout_or_a_generated_child_pipeline() -> None:
    ci = load("gitlab/stackctl.gitlab-ci.yml")
    assert "stackctl rollout --format markdown" in run_lines(ci["stackctl-apply"])
    assert "stackctl clusters --format gitlab > rollout-pipeline.yml" in \
        run_lines(ci["stackctl-clusters"])
    trigger = ci["stackctl-fanout"]["trigger"]  # type: ignore[index]
    assert trigger["include"] == [{"artifact": "rollout-pipeline.yml",
                                   "job": "stackctl-clusters"}]
    assert trigger["strategy"] == "depend"
    templates = load("gitlab/stackctl-cluster.gitlab-ci.yml")
    assert ci["include"] == [{"local": "pipelines/gitlab/stackctl-cluster.gitlab-ci.yml"}]
    assert 'stackctl rollout --cluster "$STACKCTL_CLUSTER"' in \
        run_lines(templates[".stackctl-cluster"])


ALL = ["github/stackctl-plan.yml", "github/stackctl-apply.yml", "github/stackctl-fanout.yml",
       "github/stackctl-cluster.yml", "github/stackctl-drift.yml",
       "gitlab/stackctl.gitlab-ci.yml", "gitlab/stackctl-cluster.gitlab-ci.yml"]


@pytest.mark.parametrize("rel", ALL)
def test_no_pipeline_installs_stackctl_by_its_bare_name_or_runs_python_on_its_modules(
        rel: str) -> None:
    text = (PIPELINES / rel).read_text()
    installs = [ln for ln in text.splitlines() if "pip install" in ln and "stackctl" in ln]
    assert all("stackctl @ git+" in ln for ln in installs), installs
    assert "from gitops" not in text and "python -c" not in text, rel
    script = run_lines(load(rel))
    if "pip install" in script:
        assert 'pip install -q "stackctl @ git+${STACKCTL_REPO}@${STACKCTL_COMMIT}"' in script \
            or 'pip install "stackctl @ git+${STACKCTL_REPO}@${STACKCTL_COMMIT}"' in script, rel
        assert "^[0-9a-f]{40}$" in script, rel  # a commit, not a branch or tag that moves


def _actionlint() -> Path:
    from gitops.paths import cache_dir

    tool = cache_dir() / "tools" / "actionlint-current" / "actionlint"
    if not tool.is_file():
        pytest.skip("actionlint is not built (make actionlint)")
    return tool


def test_the_github_workflows_pass_actionlint(tmp_path: Path) -> None:
    # actionlint resolves `uses: ./.github/workflows/...` in the repository it runs in: lay
    # the workflows out as a deployment repo does.
    wf = tmp_path / ".github" / "workflows"
    wf.mkdir(parents=True)
    for f in sorted((PIPELINES / "github").glob("*.yml")):
        (wf / f.name).write_text(f.read_text())
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    r = subprocess.run([str(_actionlint()), "-shellcheck=", "-pyflakes=", "-no-color"],
                       cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_actionlint_refuses_a_broken_workflow(tmp_path: Path) -> None:
    """The check above can fail: an unknown input of the reusable workflow is an error."""
    wf = tmp_path / ".github" / "workflows"
    wf.mkdir(parents=True)
    for f in sorted((PIPELINES / "github").glob("*.yml")):
        text = f.read_text()
        if f.name == "stackctl-fanout.yml":
            text = text.replace("bake-seconds: 0\n", "bake-seconds: 0\n      bake: 1\n", 1)
        (wf / f.name).write_text(text)
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    r = subprocess.run([str(_actionlint()), "-shellcheck=", "-pyflakes=", "-no-color"],
                       cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 1 and '"bake"' in r.stdout, r.stdout


def _gitlab_schema(*files: Path) -> subprocess.CompletedProcess[str]:
    import sys

    exe = Path(sys.executable).parent / "check-jsonschema"
    if not exe.is_file():
        pytest.skip(f"check-jsonschema is not installed ({exe}): pip install -e '.[dev]'")
    return subprocess.run([str(exe), "--builtin-schema", "vendor.gitlab-ci", *map(str, files)],
                          capture_output=True, text=True)


def test_the_gitlab_files_and_a_generated_child_pipeline_pass_gitlabs_schema(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from gitops.cli import main

    (tmp_path / "stack.yaml").write_text("name: s\nsource: ./up\nrollout:\n  maxParallel: 2\n"
                                         "  bakeTime: 5m\n")
    for name, wave in (("a0", 0), ("b0", 0), ("c0", 0), ("d1", 1)):
        d = tmp_path / "clusters" / name
        d.mkdir(parents=True)
        (d / "kustomization.yaml").write_text("resources: []\n")
        (d / "cluster.yaml").write_text(f"wave: {wave}\n")
    monkeypatch.chdir(tmp_path)
    assert main(["clusters", "--format", "gitlab"]) == 0
    child = tmp_path / "rollout-pipeline.yml"
    child.write_text(capsys.readouterr().out)
    r = _gitlab_schema(PIPELINES / "gitlab/stackctl.gitlab-ci.yml",
                       PIPELINES / "gitlab/stackctl-cluster.gitlab-ci.yml", child)
    assert r.returncode == 0, r.stdout + r.stderr
    broken = tmp_path / "broken.yml"
    broken.write_text(child.read_text().replace("when: delayed", "when: later"))
    assert "when: later" in broken.read_text()
    assert _gitlab_schema(broken).returncode == 1


def test_a_per_cluster_environment_variable_names_the_kubeconfig(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert kubeconfig_env_var("eks-prod") == "STACKCTL_KUBECONFIG_EKS_PROD"
    c = Cluster(name="eks-prod", path=tmp_path, kubeconfig=tmp_path / "from-cluster-yaml")
    assert c.kubeconfig_path() == tmp_path / "from-cluster-yaml"
    monkeypatch.setenv("STACKCTL_KUBECONFIG_EKS_PROD", str(tmp_path / "ci"))
    assert c.kubeconfig_path() == tmp_path / "ci"
