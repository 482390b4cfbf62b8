"""The apply, history and rollback commands on a deployment repo, against the sandbox."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from gitops.cli import main
from tests.integration.apply_helpers import api, ns, team_fixture

pytestmark = pytest.mark.integration
__all__ = ["api", "ns"]


@pytest.fixture
def kubeconfig(request: pytest.FixtureRequest) -> Path:
    explicit = os.environ.get("STACKCTL_TEST_KUBECONFIG")
    if explicit:
        return Path(explicit)
    sandbox = team_fixture(request, "sandbox")
    return Path(sandbox.kubeconfig)


def write_repo(root: Path, ns: str, kubeconfig: Path, *, image: str) -> None:
    cluster = root / "clusters" / "dev"
    cluster.mkdir(parents=True, exist_ok=True)
    (root / "stack.yaml").write_text("name: demo\nsource: ./upstream\n")
    (cluster / "cluster.yaml").write_text(
        f"kubeconfig: {kubeconfig}\nrecordsNamespace: {ns}\napply:\n  timeout: 60s\n")
    (cluster / "kustomization.yaml").write_text(f"namespace: {ns}\nresources: [app.yaml]\n")
    (cluster / "app.yaml").write_text(f"""\
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
stringData: {{password: {image}-secret-value}}
""")


def test_apply_dry_run_history_and_rollback_commands(
    api: Any, ns: str, kubeconfig: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    write_repo(tmp_path, ns, kubeconfig, image="web-1")
    assert main(["apply", "--cluster", "dev"]) == 0
    assert "revision 1 deployed: 2 created" in capsys.readouterr().out

    write_repo(tmp_path, ns, kubeconfig, image="web-2")
    assert main(["apply", "--cluster", "dev", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "spec.template.spec.containers[0].image: 'web-1' -> 'web-2'" in out
    assert "data.password: changed (value hidden)" in out
    assert "secret-value" not in out

    assert main(["apply", "--cluster", "dev"]) == 0
    assert main(["rollback", "--cluster", "dev"]) == 0
    capsys.readouterr()
    assert main(["history", "--cluster", "dev"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:5] == ["REVISION", "COMMIT", "TIME", "STATUS", "OBJECTS"]
    assert [ln.split()[3] for ln in lines[1:]] == ["superseded", "rolled-back", "deployed"]

    assert main(["rollback", "--cluster", "dev", "--to", "9"]) == 2
    assert "has no revision 9." in capsys.readouterr().err
