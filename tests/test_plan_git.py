"""`stackctl plan` between two commits of a small stack in a tmp_path git repo, and a huge
plan (Kubeflow v1.3.0 -> v1.4.0) under the comment budget. Renders use the real kustomize
binary."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pygit2
import pytest

from gitops.paths import sandbox_bin_dir
from gitops.plan import make_plan, plan_from_renders, render_markdown, render_text
from gitops.plan.model import RefInfo
from gitops.redact import Redactor
from gitops.stack import load_stack
from gitops.yamlio import load_all_safe
from tests.fixtures.gitrepos import commit_all
from tests.fixtures.gitrepos import write_files as write_spec


def _find_kustomize() -> str | None:
    for cand in (os.environ.get("STACKCTL_KUSTOMIZE"), str(sandbox_bin_dir() / "kustomize"),
                 shutil.which("kustomize")):
        if cand and Path(cand).is_file():
            return cand
    return None


# Found before fixtures such as git_env point the cache (and so the sandbox build) elsewhere.
KUSTOMIZE = _find_kustomize()


def kustomize() -> str:
    if KUSTOMIZE is None:
        pytest.skip("no kustomize binary (make kustomize)")
    return KUSTOMIZE


def build(path: Path) -> list[dict[str, Any]]:
    out = subprocess.run([kustomize(), "build", str(path)], check=True, capture_output=True,
                         text=True).stdout
    return [d for d in load_all_safe(out) if isinstance(d, dict)]


@pytest.fixture
def real_render(monkeypatch: pytest.MonkeyPatch) -> None:
    """Plans render through gitops.render (`render --ref`: the commit's tree, no checkout)
    with the real kustomize binary."""
    pytest.importorskip("gitops.render")
    monkeypatch.setenv("STACKCTL_KUSTOMIZE", kustomize())


DEPLOY = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: ml}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: reg/web:1.0
"""

SECRET = """\
apiVersion: v1
kind: Secret
metadata: {name: db, namespace: ml}
stringData: {password: PASSWORD}
"""


def stack_files(**over: str) -> dict[str, str]:
    files = {
        "stack.yaml": "name: mlstack\nsource: ./upstream\n",
        "base/kustomization.yaml": "resources: [deploy.yaml, secret.yaml, svc.yaml]\n",
        "base/deploy.yaml": DEPLOY,
        "base/secret.yaml": SECRET.replace("PASSWORD", "first-password-1"),
        "base/svc.yaml": "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: ml}"
                         "\nspec: {ports: [{port: 80}]}\n",
        "clusters/dev/kustomization.yaml": "resources: [../../base]\n",
        "clusters/prod/kustomization.yaml":
            "resources: [../../base]\nimages:\n- name: reg/web\n  newName: mirror/web\n",
    }
    files.update(over)
    return files


@pytest.fixture
def two_commits(git_env: Path, tmp_path: Path) -> tuple[Path, str, str]:
    root = tmp_path / "deploy"
    repo = pygit2.init_repository(str(root), initial_head="main")
    write_spec(root, stack_files())
    base = commit_all(repo, "base")
    write_spec(root, stack_files(**{
        "base/deploy.yaml": DEPLOY.replace("replicas: 1", "replicas: 2").replace("1.0", "1.1"),
        "base/secret.yaml": SECRET.replace("PASSWORD", "second-password-2"),
        "clusters/stage/kustomization.yaml": "resources: [../../base]\n",
        "clusters/prod/kustomization.yaml":
            "resources: [../../base]\nimages:\n- name: reg/web\n  newName: mirror/web\n"
            "patches:\n- patch: |\n    apiVersion: v1\n    kind: Service\n    metadata:"
            " {name: web, namespace: ml}\n    spec: {type: LoadBalancer}\n",
    }))
    (root / "clusters" / "dev" / "kustomization.yaml").unlink()
    (root / "clusters" / "dev").rmdir()
    head = commit_all(repo, "head")
    return root, base, head


def test_a_plan_between_two_commits_lists_exactly_the_changed_objects(
        two_commits: tuple[Path, str, str], real_render: None) -> None:
    root, base, head = two_commits
    stack = load_stack(root)
    plan = make_plan(stack, base=base, head="main", redactor=Redactor(salt=b"t"))
    assert plan.base.commit == base and plan.head.commit == head
    status = {c.name: c.status for c in plan.clusters}
    assert status == {"dev": "removed", "prod": "changed", "stage": "added"}
    prod = next(c for c in plan.clusters if c.name == "prod")
    assert [(c.action, str(c.id)) for c in prod.diff.objects] == [
        ("changed", "Secret/db -n ml"),
        ("changed", "Service/web -n ml"),
        ("changed", "Deployment.apps/web -n ml"),
    ]
    fields = {str(c.id): [f.path for f in c.fields] for c in prod.diff.changed}
    assert fields["Deployment.apps/web -n ml"] == [
        "spec.replicas", "spec.template.spec.containers[name=web].image"]
    assert fields["Service/web -n ml"] == ["spec.type"]
    assert fields["Secret/db -n ml"] == ["stringData.password"]
    assert [(i.before, i.after) for i in prod.diff.images] == [
        ("mirror/web:1.0", "mirror/web:1.1")]
    text = render_text(plan)
    assert "first-password-1" not in text and "second-password-2" not in text
    assert "cluster dev: removed (only at base)" in text


def test_a_plan_of_a_commit_against_itself_is_unchanged(
        two_commits: tuple[Path, str, str], real_render: None) -> None:
    root, _, head = two_commits
    plan = make_plan(load_stack(root), base=head, clusters=["prod"], redactor=Redactor())
    assert not plan.changed and [c.status for c in plan.clusters] == ["unchanged"]


def test_an_unknown_ref_or_cluster_is_a_clear_error(two_commits: tuple[Path, str, str],
                                                    real_render: None) -> None:
    from gitops.errors import ConfigError, GitError

    root, base, _ = two_commits
    with pytest.raises(GitError, match="fetch the base branch"):
        make_plan(load_stack(root), base="origin/nope", redactor=Redactor())
    with pytest.raises(ConfigError, match=r"no cluster named 'qa'.*dev, prod, stage"):
        make_plan(load_stack(root), base=base, clusters=["qa"], redactor=Redactor())


@pytest.mark.kubeflow
@pytest.mark.slow
def test_a_huge_kubeflow_plan_stays_under_the_comment_limit_and_says_what_it_elided(
        kubeflow_tree: Callable[[str], Path]) -> None:
    before = build(kubeflow_tree("v1.3.0") / "example")
    after = build(kubeflow_tree("v1.4.0") / "example")
    plan = plan_from_renders({"example": before}, {"example": after},
                             base=RefInfo("v1.3.0", "a" * 40), head=RefInfo("v1.4.0", "b" * 40),
                             redactor=Redactor())
    (cp,) = plan.clusters
    assert cp.status == "changed"
    assert len(cp.diff.changed) > 200 and cp.diff.added and cp.diff.removed
    full = render_text(plan)
    assert len(full.encode()) > 65_536
    md = render_markdown(plan)
    assert len(md.encode()) <= 65_536
    assert "> **Elided.** This plan exceeds the 65,536-byte budget" in md
    assert "field changes, elided" in md
    assert "| `example` | changed |" in md
    # Every Secret value of both releases stays hidden.
    for obj in before + after:
        if obj.get("kind") == "Secret":
            for v in {**(obj.get("data") or {}), **(obj.get("stringData") or {})}.values():
                if len(str(v)) >= 8:
                    assert str(v) not in md and str(v) not in full


def test_the_plan_command_exits_1_on_changes_0_without_and_2_on_errors(
        two_commits: tuple[Path, str, str], real_render: None, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from gitops.cli import main

    root, base, head = two_commits
    monkeypatch.chdir(root)
    assert main(["plan", "--base", base, "--format", "markdown"]) == 1
    out = capsys.readouterr().out
    assert out.startswith("### stackctl plan") and "| `prod` | changed | 0 | 0 | 3 | 1 |" in out
    assert "first-password-1" not in out and "second-password-2" not in out
    assert main(["plan", "--base", head, "--head", "main", "--format", "json"]) == 0
    assert '"changed": false' in capsys.readouterr().out
    assert main(["plan", "--base", "no-such-branch"]) == 2
    assert "no commit 'no-such-branch'" in capsys.readouterr().err
