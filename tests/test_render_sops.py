"""Renders of clusters that read SOPS files (encrypted by the real sops with age keys made in
the test): a whole Secret manifest, a dotenv and an INI file for secretGenerator, a patch.
The real kustomize renders them; nothing decrypted is left in any output but `render --out`,
in the cache, in a log or in a temporary file; a wrong key and a tampered file exit 2."""

from __future__ import annotations

import base64
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pygit2
import pytest

from gitops.cli import main
from tests.fixtures.gitrepos import commit_all
from tests.fixtures.sops import AgeKey

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
      - name: web
        image: nginx:1.27
        env:
        - {name: DB_URL, value: placeholder}
"""


class Values:
    """Secret values unique to one test, so that a grep for them cannot hit anything else."""

    def __init__(self, tag: str = "") -> None:
        u = uuid.uuid4().hex[:10]
        self.password = f"Pw-{u}{tag}-horse"
        self.env_password = f"Env-{u}{tag}-staple"
        self.ini_password = f"Ini-{u}{tag}-battery"
        self.db_url = f"postgres://app:Patch-{u}{tag}@db:5432/app"

    def all(self) -> list[str]:
        return [self.password, self.env_password, self.ini_password, self.db_url]

    def forms(self) -> list[bytes]:
        """Each value in clear and in base64 (as a Secret's data holds it)."""
        out = []
        for v in self.all():
            out += [v.encode(), base64.b64encode(v.encode())]
        return out


def write_cluster(root: Path, key: AgeKey, values: Values, *, generator: bool = True) -> None:
    """clusters/dev: an encrypted Secret manifest (its identity in clear), and with
    `generator` a secretGenerator reading an encrypted dotenv and INI file and an encrypted
    patch of the Deployment's env."""
    dev = root / "clusters" / "dev"
    dev.mkdir(parents=True, exist_ok=True)
    (root / "stack.yaml").write_text("name: demo\nsource: ./upstream\n")
    secret = (f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n"
              f"stringData:\n  password: {values.password}\n  user: app\n")
    (dev / "db.sops.yaml").write_bytes(
        key.encrypt(secret, name="db.sops.yaml", encrypted_regex="^(data|stringData)$"))
    (dev / "deploy.yaml").write_text(DEPLOY)
    kust = "namespace: shop\nresources: [db.sops.yaml, deploy.yaml]\n"
    if generator:
        (dev / "app.sops.env").write_bytes(key.encrypt(
            f"DB_PASSWORD={values.env_password}\nDB_USER=app\n", name="app.sops.env"))
        (dev / "app.sops.ini").write_bytes(key.encrypt(
            f"[db]\npassword = {values.ini_password}\n", name="app.sops.ini"))
        patch = ("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n"
                 "  template:\n    spec:\n      containers:\n      - name: web\n        env:\n"
                 f"        - {{name: DB_URL, value: '{values.db_url}'}}\n")
        (dev / "patch.sops.yaml").write_bytes(key.encrypt(patch, name="patch.sops.yaml"))
        kust += ("patches:\n- path: patch.sops.yaml\n"
                 "secretGenerator:\n- name: app-env\n  envs: [app.sops.env]\n"
                 "- name: app-files\n  files: [app.ini=app.sops.ini]\n")
    (dev / "kustomization.yaml").write_text(kust)


@pytest.fixture
def repo(git_env: Path, kustomize: Path, age_key: AgeKey, tmp_path: Path,
         monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "deploy"
    root.mkdir()
    pygit2.init_repository(str(root), initial_head="main")
    monkeypatch.chdir(root)
    return root


def new_entries(before: set[Path], where: Path) -> list[Path]:
    """What appeared in `where` since `before` and stackctl may have made (its temporary
    folders and files are named stackctl-*; other work on the machine is not grepped)."""
    return [p for p in where.iterdir() if p not in before and p.name.startswith("stackctl")] \
        if where.is_dir() else []


def grep(paths: list[Path], needles: list[bytes]) -> list[str]:
    """Files under `paths` holding any of `needles`."""
    hits = []
    for top in paths:
        for f in ([top] if top.is_file() else top.rglob("*")):
            try:
                data = f.read_bytes() if f.is_file() else b""
            except OSError:
                continue
            hits += [f"{f}: {n[:12]!r}" for n in needles if n in data]
    return hits


def test_render_decrypts_a_secret_manifest_generator_sources_and_a_patch_in_memory(
        repo: Path, age_key: AgeKey, capsys: pytest.CaptureFixture[str]) -> None:
    values = Values()
    write_cluster(repo, age_key, values)
    tmp = Path(tempfile.gettempdir())
    tmp_before, shm_before = set(tmp.iterdir()), set(Path("/dev/shm").iterdir())
    assert main(["render", "--cluster", "dev", "--out", "out"]) == 0
    assert main(["render", "--cluster", "dev", "--out", "out2"]) == 0  # from the cache
    streams = capsys.readouterr()
    assert "dev: 4 objects -> " in streams.out and "(cached)" in streams.out
    rendered = (repo / "out" / "dev.yaml").read_text()
    assert rendered == (repo / "out2" / "dev.yaml").read_text()
    # The plaintext is where kustomize put it: in the Secret, the generated Secrets (with
    # hash suffixes of the plaintext), and the patched Deployment.
    assert f"password: {values.password}" in rendered
    assert base64.b64encode(f"DB_PASSWORD={values.env_password}".encode()).decode()[:20] \
        in rendered or base64.b64encode(values.env_password.encode()).decode() in rendered
    assert f"value: {values.db_url}" in rendered
    assert "ENC[" not in rendered and "sops:" not in rendered
    assert (repo / "out" / "dev.yaml").stat().st_mode & 0o777 == 0o600
    # Nowhere else: not on stdout or stderr, not in the render cache (sealed: kustomize
    # read decrypted sources), not in a temporary file, not in the RAM folder.
    for v in values.forms():
        assert v.decode() not in streams.out + streams.err
    cache = Path(os.environ["STACKCTL_CACHE"])
    assert list(cache.rglob("*.render"))
    assert grep([cache], values.forms()) == []
    assert all(b'"sealed": true' in p.read_bytes() for p in cache.rglob("*.render"))
    leftovers = new_entries(tmp_before, tmp) + new_entries(shm_before, Path("/dev/shm"))
    assert grep(leftovers, values.forms()) == []
    assert list(age_key.ram_dir.iterdir()) == []


def test_a_render_of_whole_secret_manifests_caches_only_ciphertext_and_needs_no_ram_copy(
        repo: Path, age_key: AgeKey, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    values = Values()
    write_cluster(repo, age_key, values, generator=False)
    disk = tmp_path / "on-disk"
    disk.mkdir()
    monkeypatch.setenv("STACKCTL_SECRETS_TMPDIR", str(disk))  # never used: after the build
    assert main(["render", "--cluster", "dev", "--out", "out", "--split"]) == 0
    out = repo / "out" / "dev"
    secret = next(out.glob("*Secret-shop-db.yaml")).read_text()
    assert f"password: {values.password}" in secret and "namespace: shop" in secret
    assert all(f.stat().st_mode & 0o777 == 0o600 for f in out.iterdir())
    assert out.stat().st_mode & 0o777 == 0o700
    (entry,) = Path(os.environ["STACKCTL_CACHE"]).rglob("*.render")
    data = entry.read_bytes()
    assert b"ENC[AES256_GCM" in data and b'"sealed"' not in data
    assert grep([entry], values.forms()) == [] and list(disk.iterdir()) == []


def test_generator_sources_are_refused_without_a_ram_backed_folder(
        repo: Path, age_key: AgeKey, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    write_cluster(repo, age_key, Values())
    disk = tmp_path / "on-disk"
    disk.mkdir()
    monkeypatch.setenv("STACKCTL_SECRETS_TMPDIR", str(disk))
    assert main(["render", "--cluster", "dev", "--out", "out"]) == 2
    err = capsys.readouterr().err
    assert "writes those only to a RAM-backed folder" in err and str(disk) in err
    assert list(disk.iterdir()) == [] and not (repo / "out" / "dev.yaml").exists()


def test_a_wrong_key_exits_2_naming_the_file_and_its_recipients(
        repo: Path, age_key: AgeKey, other_key: AgeKey,
        capsys: pytest.CaptureFixture[str]) -> None:
    write_cluster(repo, other_key, Values())
    assert main(["render", "--cluster", "dev", "--out", "out"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "no key of this environment decrypts clusters/dev/" in err
    assert other_key.recipient in err and "none of them is a recipient" in err
    assert not (repo / "out" / "dev.yaml").exists()


def test_a_tampered_file_exits_2(repo: Path, age_key: AgeKey,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    write_cluster(repo, age_key, Values(), generator=False)
    f = repo / "clusters" / "dev" / "db.sops.yaml"
    f.write_text(f.read_text().replace("name: db", "name: db2"))
    assert main(["render", "--cluster", "dev", "--out", "out"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "clusters/dev/db.sops.yaml was modified after it was encrypted" in err


def test_render_at_a_ref_decrypts_the_commits_files(repo: Path, age_key: AgeKey) -> None:
    values = Values()
    write_cluster(repo, age_key, values)
    commit_all(pygit2.Repository(str(repo)), "encrypted secrets")
    assert main(["render", "--cluster", "dev", "--ref", "HEAD", "--out", "at-ref"]) == 0
    assert main(["render", "--cluster", "dev", "--out", "tree"]) == 0
    at_ref = (repo / "at-ref" / "dev.yaml").read_text().split("\n", 4)[4]
    assert at_ref == (repo / "tree" / "dev.yaml").read_text().split("\n", 4)[4]
    assert values.db_url in at_ref


def test_plan_shows_a_changed_encrypted_secret_as_two_hashes_and_never_the_values(
        repo: Path, age_key: AgeKey, capsys: pytest.CaptureFixture[str]) -> None:
    old, new = Values("a"), Values("b")
    git = pygit2.Repository(str(repo))
    write_cluster(repo, age_key, old)
    base = commit_all(git, "secrets")
    write_cluster(repo, age_key, new)
    commit_all(git, "rotate the secrets")
    outputs = []
    for fmt in ("text", "markdown", "json"):
        assert main(["plan", "--base", base, "--format", fmt]) == 1
        streams = capsys.readouterr()
        outputs.append(streams.out + streams.err)
    text = outputs[0]
    line = next(ln for ln in text.splitlines() if "stringData.password" in ln)
    before, after = re.findall(r"<redacted sha256:[0-9a-f]{8}>", line)
    assert before != after  # the value changed; which values, nobody can tell
    assert "spec.template.spec.containers[name=web].env[name=DB_URL].value: <redacted" in text
    assert "secret values redacted" in text
    for out in outputs:
        for v in old.forms() + new.forms():
            assert v.decode() not in out


def test_a_clear_text_secret_warns_at_render_and_fails_the_plan_that_adds_it(
        repo: Path, age_key: AgeKey, capsys: pytest.CaptureFixture[str]) -> None:
    git = pygit2.Repository(str(repo))
    write_cluster(repo, age_key, Values(), generator=False)
    (repo / "stack.yaml").write_text(
        "name: demo\nsource: ./upstream\nsecrets:\n  require: sops\n  exclude: ['vendor/*']\n")
    base = commit_all(git, "encrypted only")
    dev = repo / "clusters" / "dev"
    (dev / "plain.yaml").write_text("apiVersion: v1\nkind: Secret\nmetadata: {name: plain}\n"
                                    "stringData: {token: Clear-Text-Token-123}\n")
    (dev / "kustomization.yaml").write_text(
        "namespace: shop\nresources: [db.sops.yaml, deploy.yaml, plain.yaml]\n"
        "secretGenerator:\n- name: lit\n  literals: [KEY=clear-literal-value]\n")
    commit_all(git, "add secrets in clear")
    assert main(["render", "--cluster", "dev", "--out", "out"]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert ("warning: cluster dev: clusters/dev/plain.yaml holds a secret in clear text "
            "(Secret plain)") in err
    assert "clusters/dev/kustomization.yaml holds a secret in clear text (secretGenerator " \
           "lit: literals)" in err
    assert main(["plan", "--base", base, "--format", "markdown"]) == 2
    streams = capsys.readouterr()
    assert "> **Check failed.** clusters/dev/plain.yaml adds a secret in clear text" in \
        streams.out
    assert "| `dev` | changed |" in streams.out  # the plan itself is there
    assert "error: clusters/dev/kustomization.yaml adds a secret in clear text" in \
        " ".join(streams.err.split())
    assert "Clear-Text-Token-123" not in streams.out + streams.err
    # What the base already had is not this pull request's doing.
    assert main(["plan", "--base", "HEAD", "--format", "text"]) == 0


KUSTOMIZE_WRAPPER = """#!/bin/sh
# Stands in for kustomize during `build`: says it started, then waits to be killed.
if [ "$1" = build ]; then touch "{marker}"; sleep 60; fi
exec "{real}" "$@"
"""


def test_sigterm_during_a_build_removes_the_decrypted_copy(
        repo: Path, age_key: AgeKey, kustomize: Path, tmp_path: Path) -> None:
    write_cluster(repo, age_key, Values())
    marker = tmp_path / "building"
    wrapper = tmp_path / "kustomize"
    wrapper.write_text(KUSTOMIZE_WRAPPER.format(marker=marker, real=kustomize))
    wrapper.chmod(0o755)
    env = {**os.environ, "STACKCTL_KUSTOMIZE": str(wrapper)}
    proc = subprocess.Popen([sys.executable, "-m", "gitops", "render", "--cluster", "dev",
                             "--out", "out", "--no-cache"], cwd=repo, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        while not marker.exists():
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.05)
        (copy,) = list(age_key.ram_dir.iterdir())  # the decrypted copy, while kustomize runs
        assert copy.name.startswith(f"stackctl-sops-{proc.pid}-")
        assert copy.stat().st_mode & 0o777 == 0o700
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    # SIGTERM ends a command as Ctrl-C does: the documented 143 and a message (issue 12).
    assert proc.returncode == 143
    assert "terminated (SIGTERM)" in proc.communicate()[1].decode()
    assert list(age_key.ram_dir.iterdir()) == []


def test_a_copy_left_by_a_killed_render_is_removed_by_the_next_one(
        repo: Path, age_key: AgeKey) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = age_key.ram_dir / f"stackctl-sops-{dead.pid}-abc123"
    stale.mkdir()
    (stale / "secret.env").write_text("X=1\n")
    write_cluster(repo, age_key, Values())
    assert main(["render", "--cluster", "dev", "--out", "out", "--no-cache"]) == 0
    assert list(age_key.ram_dir.iterdir()) == []


def test_a_kustomize_error_about_a_decrypted_file_never_quotes_its_values(
        repo: Path, age_key: AgeKey, capsys: pytest.CaptureFixture[str]) -> None:
    dev = repo / "clusters" / "dev"
    dev.mkdir(parents=True)
    (repo / "stack.yaml").write_text("name: demo\nsource: ./upstream\n")
    # A dotenv line kustomize refuses, and quotes: it holds a byte that is not UTF-8.
    (dev / "bad.sops.env").write_bytes(age_key.encrypt(
        b"KEY=Leaky-Value-8841-zz\xff\n", name="bad.sops.env"))
    (dev / "kustomization.yaml").write_text(
        "secretGenerator:\n- name: bad\n  envs: [bad.sops.env]\n")
    assert main(["render", "--cluster", "dev", "--out", "out"]) == 2
    err = capsys.readouterr().err
    assert "kustomize failed for cluster dev" in err and "invalid utf8" in err
    assert "Leaky-Value-8841-zz" not in err and str(age_key.ram_dir) not in err
    assert "76 101 97 107 121" not in err  # nor as the byte values kustomize also prints
    assert list(age_key.ram_dir.iterdir()) == []


def test_a_cached_render_of_sops_files_still_needs_the_key_and_checks_the_mac(
        repo: Path, age_key: AgeKey, other_key: AgeKey, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    values = Values()
    write_cluster(repo, age_key, values, generator=False)
    assert main(["render", "--cluster", "dev", "--out", "out"]) == 0
    assert main(["render", "--cluster", "dev", "--out", "out"]) == 0
    assert "(cached)" in capsys.readouterr().out
    (entry,) = Path(os.environ["STACKCTL_CACHE"]).rglob("*.render")
    assert b'"sops":true' in entry.read_bytes().split(b"\n", 1)[0]
    # The entry is there, but without the key nothing is served from it.
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(other_key.keys_file))
    assert main(["render", "--cluster", "dev", "--out", "out2"]) == 2
    assert "no key of this environment decrypts clusters/dev/db.sops.yaml" in \
        " ".join(capsys.readouterr().err.split())
    assert not (repo / "out2").exists()
