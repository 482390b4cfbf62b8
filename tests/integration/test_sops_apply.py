"""A deployment repo whose cluster reads SOPS files (the real sops, an age key made in the
test), applied to the sandbox: `apply --dry-run`, `apply`, `drift` and `plan --live` show
hashes, the cluster gets the plaintext, and no output holds a decrypted value."""

from __future__ import annotations

import base64
import os
import tempfile
from pathlib import Path
from typing import Any

import pygit2
import pytest

from gitops.cli import main
from gitops.kube import Kube
from tests.fixtures.gitrepos import commit_all
from tests.fixtures.sops import AgeKey
from tests.integration.apply_helpers import api, ns, team_fixture

pytestmark = pytest.mark.integration
__all__ = ["api", "ns"]

PASSWORD = "Sops-Apply-pw-7731"
ENV_PASSWORD = "Sops-Env-pw-1942"
DB_URL = "postgres://app:Sops-Patch-pw-5127@db:5432/app"
VALUES = [PASSWORD, ENV_PASSWORD, DB_URL]
FORMS = VALUES + [base64.b64encode(v.encode()).decode() for v in VALUES]


@pytest.fixture
def kubeconfig(request: pytest.FixtureRequest) -> Path:
    explicit = os.environ.get("STACKCTL_TEST_KUBECONFIG")
    if explicit:
        return Path(explicit)
    return Path(team_fixture(request, "sandbox").kubeconfig)


def write_repo(root: Path, ns: str, kubeconfig: Path, key: AgeKey, *, image: str) -> None:
    d = root / "clusters" / "dev"
    d.mkdir(parents=True, exist_ok=True)
    (root / "stack.yaml").write_text("name: demo\nsource: ./upstream\n")
    (d / "cluster.yaml").write_text(
        f"kubeconfig: {kubeconfig}\nrecordsNamespace: {ns}\napply:\n  timeout: 60s\n")
    (d / "kustomization.yaml").write_text(
        f"namespace: {ns}\nresources: [app.yaml, db.sops.yaml]\n"
        "patches:\n- path: patch.sops.yaml\n"
        "secretGenerator:\n- name: app-env\n  envs: [app.sops.env]\n")
    (d / "app.yaml").write_text(f"""\
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers:
      - name: c
        image: "{image}"
        env: [{{name: DB_URL, value: placeholder}}]
""")
    (d / "db.sops.yaml").write_bytes(key.encrypt(
        f"apiVersion: v1\nkind: Secret\nmetadata: {{name: db}}\nstringData: {{password: "
        f"{PASSWORD}}}\n", name="db.sops.yaml", encrypted_regex="^(data|stringData)$"))
    (d / "app.sops.env").write_bytes(key.encrypt(f"DB_PASSWORD={ENV_PASSWORD}\n",
                                                 name="app.sops.env"))
    (d / "patch.sops.yaml").write_bytes(key.encrypt(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  template:\n"
        "    spec:\n      containers:\n      - name: c\n        env:\n"
        f"        - {{name: DB_URL, value: '{DB_URL}'}}\n", name="patch.sops.yaml"))


@pytest.fixture
def repo(kubeconfig: Path, ns: str, tmp_path: Path, git_env: Path, kustomize: Path,
         age_key: AgeKey, monkeypatch: pytest.MonkeyPatch) -> Path:
    # kubeconfig first: the sandbox starts before git_env and kustomize move $STACKCTL_CACHE.
    root = tmp_path / "deploy"
    root.mkdir()
    write_repo(root, ns, kubeconfig, age_key, image="web:1")
    commit_all(pygit2.init_repository(str(root), initial_head="main"), "dev: web 1")
    monkeypatch.chdir(root)
    return root


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(args)
    out = capsys.readouterr()
    return code, out.out + out.err


def assert_hidden(output: str) -> None:
    for v in FORMS:
        assert v not in output


def test_an_encrypted_repo_applies_plaintext_and_every_output_shows_hashes(
        repo: Path, ns: str, api: Any, age_key: AgeKey,
        capsys: pytest.CaptureFixture[str]) -> None:
    before = {p for where in (Path(tempfile.gettempdir()), Path("/dev/shm"))
              for p in where.iterdir()}
    code, out = run(["apply", "--cluster", "dev", "--dry-run"], capsys)
    assert code == 0, out
    assert "+ Secret/db -n " in out and "+ Deployment.apps/web -n " in out
    assert_hidden(out)

    code, out = run(["apply", "--cluster", "dev"], capsys)
    assert code == 0, out
    assert "revision 1 deployed" in out
    assert_hidden(out)
    kube = Kube(api)
    db = kube.request("GET", f"/api/v1/namespaces/{ns}/secrets/db")
    assert base64.b64decode(db["data"]["password"]).decode() == PASSWORD
    env_secrets = [s for s in kube.request("GET", f"/api/v1/namespaces/{ns}/secrets")["items"]
                   if s["metadata"]["name"].startswith("app-env-")]
    assert [base64.b64decode(s["data"]["DB_PASSWORD"]).decode() for s in env_secrets] == [
        ENV_PASSWORD]
    web = kube.request("GET", f"/apis/apps/v1/namespaces/{ns}/deployments/web")
    assert web["spec"]["template"]["spec"]["containers"][0]["env"] == [
        {"name": "DB_URL", "value": DB_URL}]

    code, out = run(["drift", "--cluster", "dev"], capsys)
    assert code == 0, out
    assert "in sync" in out

    # Someone edits the Secret and the Deployment's env by hand: drift shows both, hashed.
    kube.request("PATCH", f"/api/v1/namespaces/{ns}/secrets/db",
                 query={"fieldManager": "kubectl-edit"},
                 body={"stringData": {"password": "edited-by-hand-Value-88"}},
                 content_type="application/merge-patch+json")
    for fmt in ("text", "markdown", "json"):
        code, out = run(["drift", "--cluster", "dev", "--format", fmt], capsys)
        assert code == 1, out
        assert_hidden(out)
        assert "edited-by-hand-Value-88" not in out
    code, out = run(["drift", "--cluster", "dev"], capsys)
    assert "~    data.password: <redacted sha256:" in out
    assert "secret values redacted" in out

    code, out = run(["plan", "--live", "--cluster", "dev"], capsys)
    assert code == 1, out
    assert "data.password: <redacted sha256:" in out
    assert_hidden(out)

    # A rotated secret, re-encrypted: the dry run shows that it changes, never to what.
    d = repo / "clusters" / "dev"
    (d / "db.sops.yaml").write_bytes(age_key.encrypt(
        "apiVersion: v1\nkind: Secret\nmetadata: {name: db}\nstringData: {password: "
        "Rotated-pw-Value-4410}\n", name="db.sops.yaml", encrypted_regex="^(data|stringData)$"))
    code, out = run(["apply", "--cluster", "dev", "--dry-run"], capsys)
    assert code == 0, out
    line = next(ln for ln in out.splitlines() if "data.password" in ln)
    assert line.count("<redacted sha256:") == 2
    assert_hidden(out)
    assert "Rotated-pw-Value-4410" not in out
    assert not list(age_key.ram_dir.iterdir())
    # Nothing decrypted in the render cache, a crash log, or a temporary file stackctl left.
    cache = Path(os.environ["STACKCTL_CACHE"])
    assert list(cache.rglob("*.render"))
    left = [p for where in (Path(tempfile.gettempdir()), Path("/dev/shm"))
            for p in where.iterdir() if p.name.startswith("stackctl") and p not in before]
    for top in [cache, *left]:
        for f in [top] if top.is_file() else top.rglob("*"):
            data = f.read_bytes() if f.is_file() else b""
            assert not [v for v in [*FORMS, "Rotated-pw-Value-4410"] if v.encode() in data], f
