"""SOPS files committed as fixtures (made with the real sops: tests/fixtures/sops_files/
regenerate.py), so that decryption at render is tested where no sops program is installed:
a whole Secret manifest, a dotenv and an INI file for secretGenerator, a patch. stackctl
decrypts them natively (age) with the fixtures' key, never calls a sops program, and no
value reaches an output but `render --out`, the cache or a temporary file."""

from __future__ import annotations

import base64
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pygit2
import pytest

from gitops.cli import main
from tests.fixtures.gitrepos import commit_all
from tests.fixtures.sops_files.regenerate import DB_URL, VALUES

FIXTURES = Path(__file__).parent / "fixtures" / "sops_files"
FORMS = [f for v in VALUES for f in (v, base64.b64encode(v.encode()).decode())]
DEPLOY = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - {name: web, image: 'nginx:1.27', env: [{name: DB_URL, value: placeholder}]}
"""
KUSTOMIZATION = """\
namespace: shop
resources: [db.sops.yaml, deploy.yaml]
patches:
- path: patch.sops.yaml
secretGenerator:
- {name: app-env, envs: [app.sops.env]}
- {name: app-files, files: [app.ini=app.sops.ini]}
"""


@pytest.fixture
def repo(git_env: Path, kustomize: Path, tmp_path: Path,
         monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A deployment repo whose cluster `dev` reads the four fixtures; the fixtures' key in
    $SOPS_AGE_KEY_FILE, no sops program anywhere stackctl looks."""
    for var in ("SOPS_AGE_KEY", "SOPS_AGE_KEY_CMD", "SOPS_AGE_SSH_PRIVATE_KEY_FILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(FIXTURES / "keys.txt"))
    monkeypatch.setenv("STACKCTL_SOPS", str(tmp_path / "no-sops-here"))
    monkeypatch.setenv("PATH", os.pathsep.join(
        p for p in os.environ.get("PATH", "").split(os.pathsep)
        if not (Path(p) / "sops").exists()))
    ram = Path(tempfile.mkdtemp(prefix="stackctl-test-ram-", dir="/dev/shm"))
    monkeypatch.setenv("STACKCTL_SECRETS_TMPDIR", str(ram))
    root = tmp_path / "deploy"
    dev = root / "clusters" / "dev"
    dev.mkdir(parents=True)
    (root / "stack.yaml").write_text("name: demo\nsource: ./upstream\n")
    for name in ("db.sops.yaml", "app.sops.env", "app.sops.ini", "patch.sops.yaml"):
        shutil.copyfile(FIXTURES / name, dev / name)
    (dev / "deploy.yaml").write_text(DEPLOY)
    (dev / "kustomization.yaml").write_text(KUSTOMIZATION)
    pygit2.init_repository(str(root), initial_head="main")
    monkeypatch.chdir(root)
    try:
        yield root
    finally:
        assert list(ram.iterdir()) == []  # every decrypted copy removed
        shutil.rmtree(ram, ignore_errors=True)


def _stackctl_entries(where: Path) -> set[Path]:
    return {p for p in where.iterdir() if p.name.startswith("stackctl")}


def _holding(paths: set[Path]) -> list[str]:
    hits = []
    for top in paths:
        for f in [top] if top.is_file() else top.rglob("*"):
            data = f.read_bytes() if f.is_file() else b""
            hits += [f"{f}: {v[:10]}" for v in FORMS if v.encode() in data]
    return hits


def test_committed_fixtures_render_and_plan_without_a_sops_program(
        repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    git = pygit2.Repository(str(repo))
    dev = repo / "clusters" / "dev"
    # The base has the Secret manifest only; the head adds the generator and the patch.
    (dev / "kustomization.yaml").write_text("namespace: shop\n"
                                            "resources: [db.sops.yaml, deploy.yaml]\n")
    base = commit_all(git, "an encrypted Secret")
    (dev / "kustomization.yaml").write_text(KUSTOMIZATION)
    commit_all(git, "generated secrets and an encrypted patch")
    tmp, shm = Path(tempfile.gettempdir()), Path("/dev/shm")
    before = _stackctl_entries(tmp) | _stackctl_entries(shm)

    assert main(["render", "--cluster", "dev", "--out", "out"]) == 0
    outputs = [capsys.readouterr()]
    rendered = (repo / "out" / "dev.yaml").read_text()
    assert f"value: {DB_URL}" in rendered and "ENC[" not in rendered
    assert (repo / "out" / "dev.yaml").stat().st_mode & 0o777 == 0o600
    for fmt in ("text", "markdown", "json"):
        assert main(["plan", "--base", base, "--format", fmt]) == 1
        outputs.append(capsys.readouterr())
    text = outputs[1].out
    assert "env[name=DB_URL].value: placeholder -> <redacted sha256:" in text
    assert "+ Secret/app-env-" in text and "+ Secret/app-files-" in text

    for streams in outputs:
        for v in FORMS:
            assert v not in streams.out + streams.err
    cache = Path(os.environ["STACKCTL_CACHE"])
    assert list(cache.rglob("*.render"))
    left = (_stackctl_entries(tmp) | _stackctl_entries(shm)) - before
    assert _holding({cache} | left) == []


def test_without_the_fixtures_key_the_render_exits_2_naming_the_file(
        repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty-keys.txt").write_text("")
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(tmp_path / "empty-keys.txt"))
    assert main(["render", "--cluster", "dev", "--out", "out"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "clusters/dev/" in err and "age1" in err
    assert not (repo / "out").exists()


def test_a_tampered_fixture_exits_2(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = repo / "clusters" / "dev" / "db.sops.yaml"
    f.write_text(f.read_text().replace("name: db", "name: db2"))
    assert main(["render", "--cluster", "dev", "--out", "out"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "clusters/dev/db.sops.yaml was modified after it was encrypted" in err
