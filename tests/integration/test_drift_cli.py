"""`stackctl drift` on a deployment repo (a real git repo, the real kustomize) against the
sandbox: exit codes, the git render against the last applied revision, the three forms."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pygit2
import pytest

from gitops.cli import main
from gitops.kube import Kube
from tests.fixtures.gitrepos import commit_all
from tests.integration.apply_helpers import api, ns, team_fixture

pytestmark = pytest.mark.integration
__all__ = ["api", "ns"]

PASSWORD = "cli-s3cret-pw-5521"


@pytest.fixture
def kubeconfig(request: pytest.FixtureRequest) -> Path:
    explicit = os.environ.get("STACKCTL_TEST_KUBECONFIG")
    if explicit:
        return Path(explicit)
    return Path(team_fixture(request, "sandbox").kubeconfig)


def write_repo(root: Path, ns: str, kubeconfig: Path, *, image: str, extra: bool = False,
               settings: bool = True, cluster: str = "dev") -> None:
    """A deployment repo whose cluster `cluster` renders a Deployment, a Secret and a
    ConfigMap into namespace `ns` (also its records namespace)."""
    d = root / "clusters" / cluster
    d.mkdir(parents=True, exist_ok=True)
    (root / "stack.yaml").write_text("name: demo\nsource: ./upstream\n")
    (d / "cluster.yaml").write_text(
        f"kubeconfig: {kubeconfig}\nrecordsNamespace: {ns}\napply:\n  timeout: 60s\n")
    resources = ["app.yaml"] + (["extra.yaml"] if extra else [])
    (d / "kustomization.yaml").write_text(f"namespace: {ns}\nresources: {resources}\n")
    (d / "app.yaml").write_text(f"""\
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec: {{containers: [{{name: c, image: "{image}"}}]}}
---
apiVersion: v1
kind: Secret
metadata: {{name: creds}}
stringData: {{password: {PASSWORD}}}
""" + ("""---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {mode: fast}
""" if settings else ""))
    if extra:
        (d / "extra.yaml").write_text(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: extra}\ndata: {k: v}\n")


@pytest.fixture
def repo(kubeconfig: Path, ns: str, tmp_path: Path, git_env: Path, kustomize: Path,
         monkeypatch: pytest.MonkeyPatch) -> Path:
    # kubeconfig first: the sandbox starts before git_env and kustomize move $STACKCTL_CACHE.
    root = tmp_path / "deploy"
    root.mkdir()
    write_repo(root, ns, kubeconfig, image="web:1")
    commit_all(pygit2.init_repository(str(root), initial_head="main"), "dev: web 1")
    monkeypatch.chdir(root)
    return root


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_drift_command_exit_codes_git_render_and_forms(
        repo: Path, ns: str, kubeconfig: Path, api: Any,
        capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["drift", "--cluster", "dev"], capsys)
    assert code == 2
    assert "cluster dev: never applied: cluster 'dev' was never applied" in out

    assert run(["apply", "--cluster", "dev"], capsys)[0] == 0
    code, out, _ = run(["drift", "--cluster", "dev"], capsys)
    assert code == 0, out
    assert "cluster dev: in sync: revision 1" in out
    assert "git: the working tree's render (HEAD " in out and "is what revision 1 applied" in out

    # A merged change not rolled out yet: git's render is newer than the last apply.
    write_repo(repo, ns, kubeconfig, image="web:2", extra=True)
    head = commit_all(pygit2.Repository(str(repo)), "dev: web 2")
    code, out, _ = run(["drift", "--all", "--format", "json"], capsys)
    assert code == 1
    data = json.loads(out)
    [c] = data["clusters"]
    assert (c["status"], c["objects"], c["git"]["state"]) == ("drift", [], "differs")
    assert c["git"]["headCommit"] == head
    assert c["git"]["counts"] == {"added": 1, "removed": 0, "changed": 1}
    assert [(o["action"], o["id"]["name"]) for o in c["git"]["objects"]] == [
        ("added", "extra"), ("changed", "web")]
    assert data["summary"]["notRolledOut"] == 1

    # Live drift on top: the markdown report names the manager, never the secret.
    kube = Kube(api)
    kube.request("PATCH", f"/api/v1/namespaces/{ns}/configmaps/settings",
                 query={"fieldManager": "kubectl-edit"}, body={"data": {"mode": "slow"}},
                 content_type="application/merge-patch+json")
    kube.request("PATCH", f"/api/v1/namespaces/{ns}/secrets/creds",
                 query={"fieldManager": "kubectl-edit"},
                 body={"stringData": {"password": "changed-" + PASSWORD}},
                 content_type="application/merge-patch+json")
    code, md, _ = run(["drift", "--format", "markdown"], capsys)
    assert code == 1
    assert md.startswith("### stackctl drift\n")
    assert "| `dev` | DRIFT | 1 (`" in md and "**not rolled out**" in md
    assert "~    data.mode: fast -> slow" in md
    assert "changed by kubectl-edit (Update" in md
    assert "~    data.password: <redacted sha256:" in md
    code, text, _ = run(["drift"], capsys)
    for output in (md, text):
        assert PASSWORD not in output


def test_drift_heal_command_takes_back_the_fields_and_exits_0(
        repo: Path, ns: str, api: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["apply", "--cluster", "dev"], capsys)[0] == 0
    kube = Kube(api)
    kube.delete("v1", "ConfigMap", ns, "settings")
    kube.request("PATCH", f"/apis/apps/v1/namespaces/{ns}/deployments/web",
                 query={"fieldManager": "kubectl-scale"}, body={"spec": {"replicas": 3}},
                 content_type="application/merge-patch+json")
    code, out, _ = run(["drift", "--cluster", "dev", "--heal"], capsys)
    assert code == 0, out
    assert "cluster dev: in sync: revision 2" in out
    assert "heal: healed: revision 2 re-applied 1 created, 1 configured" in out
    assert "created    ConfigMap/settings -n " in out
    code, out, _ = run(["drift", "--cluster", "dev"], capsys)
    assert code == 0 and "in sync" in out
