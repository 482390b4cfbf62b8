"""The apply, history and rollback commands on a deployment repo, against the sandbox."""

from __future__ import annotations

import base64
import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from gitops.cli import main
from gitops.kube import Kube
from gitops.sandbox.processes import free_port
from tests.integration.apply_helpers import FAIL_LABEL, api, ns, team_fixture

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
    assert "~ spec.template.spec.containers[name=c].image: web-1 -> web-2" in out
    assert "secret-value" not in out
    assert "data.password: <redacted sha256:" in out

    assert main(["apply", "--cluster", "dev"]) == 0
    assert main(["rollback", "--cluster", "dev"]) == 0
    capsys.readouterr()
    assert main(["history", "--cluster", "dev"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:5] == ["REVISION", "COMMIT", "TIME", "STATUS", "OBJECTS"]
    assert [ln.split()[3] for ln in lines[1:]] == ["superseded", "rolled-back", "deployed"]

    assert main(["rollback", "--cluster", "dev", "--to", "9"]) == 2
    assert "has no revision 9." in capsys.readouterr().err


# -- error paths: one paragraph on stderr, exit code 2 ------------------------------------
DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web{labels}}}}}
    spec: {{containers: [{{name: c, image: "{image}"}}]}}
"""


def write_app(root: Path, ns: str, kubeconfig: Path, *, image: str = "web-1", replicas: int = 1,
              fail: bool = False, extra: str = "", timeout: str = "60s") -> None:
    write_repo(root, ns, kubeconfig, image=image)
    cluster = root / "clusters" / "dev"
    (cluster / "cluster.yaml").write_text(
        f"kubeconfig: {kubeconfig}\nrecordsNamespace: {ns}\napply:\n  timeout: {timeout}\n")
    labels = f", {FAIL_LABEL}: 'true'" if fail else ""
    (cluster / "app.yaml").write_text(
        DEPLOYMENT.format(replicas=replicas, labels=labels, image=image)
        + ("---\n" + extra if extra else ""))


def one_error_paragraph(err: str) -> str:
    """The error paragraph at the end of stderr, checked to be the only one and traceback-free."""
    assert "Traceback" not in err
    assert err.count("error: ") == 1, err
    paragraph = err[err.index("error: "):].strip()
    assert "\n\n" not in paragraph, paragraph
    return " ".join(paragraph.split())


def test_an_unreachable_cluster_is_one_paragraph_and_exit_2(
    kubeconfig: Path, ns: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = yaml.safe_load(kubeconfig.read_text())
    port = free_port()
    config["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{port}"
    dead = tmp_path / "dead.kubeconfig"
    dead.write_text(yaml.safe_dump(config))
    monkeypatch.chdir(tmp_path)
    write_app(tmp_path, ns, dead)
    assert main(["apply", "--cluster", "dev"]) == 2
    message = one_error_paragraph(capsys.readouterr().err)
    assert f"cannot reach the Kubernetes API server at https://127.0.0.1:{port}" in message
    assert "Check that the cluster is running" in message


@pytest.mark.parametrize("content,expected", [
    ("apiVersion: v1\nkind: Config\nclusters: [not, a, mapping]\n", "cannot use"),
    (None, "does not exist"),
])
def test_a_bad_kubeconfig_is_one_paragraph_and_exit_2(
    content: str | None, expected: str, ns: str, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    bad = tmp_path / "bad.kubeconfig"
    if content is not None:
        bad.write_text(content)
    monkeypatch.chdir(tmp_path)
    write_app(tmp_path, ns, bad)
    assert main(["apply", "--cluster", "dev"]) == 2
    message = one_error_paragraph(capsys.readouterr().err)
    assert expected in message and str(bad) in message


def test_a_rejected_object_is_listed_and_ends_in_one_paragraph_with_exit_2(
    api: Any, ns: str, kubeconfig: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    write_app(tmp_path, ns, kubeconfig, replicas=-1)
    assert main(["apply", "--cluster", "dev"]) == 2
    captured = capsys.readouterr()
    assert re.search(r"rejected: Deployment\.apps/web .*Invalid \(field spec\.replicas\): "
                     r".*must be greater than or equal to 0", captured.out), captured.out
    message = one_error_paragraph(captured.err)
    assert "1 object(s) were rejected by the API server" in message
    assert "nothing was applied" in message
    assert Kube(api).get("apps/v1", "Deployment", ns, "web") is None


def test_a_conflict_is_one_paragraph_with_exit_2_and_force_conflicts_overrides_it(
    api: Any, ns: str, kubeconfig: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    write_app(tmp_path, ns, kubeconfig, image="web-1")
    assert main(["apply", "--cluster", "dev"]) == 0
    Kube(api).request(
        "PATCH", f"/apis/apps/v1/namespaces/{ns}/deployments/web",
        query={"fieldManager": "helm", "force": "true"},
        content_type="application/apply-patch+yaml",
        body={"apiVersion": "apps/v1", "kind": "Deployment",
              "metadata": {"name": "web", "namespace": ns},
              "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {
                  "metadata": {"labels": {"app": "web"}},
                  "spec": {"containers": [{"name": "c", "image": "helm-image"}]}}}})
    write_app(tmp_path, ns, kubeconfig, image="web-2")
    capsys.readouterr()
    assert main(["apply", "--cluster", "dev"]) == 2
    captured = capsys.readouterr()
    assert "Conflict" in captured.out and 'owned by helm' in captured.out
    message = one_error_paragraph(captured.err)
    assert "field manager" in message and "--force-conflicts" in message

    assert main(["apply", "--cluster", "dev", "--force-conflicts"]) == 0
    live = Kube(api).get("apps/v1", "Deployment", ns, "web")
    assert live is not None
    assert live["spec"]["template"]["spec"]["containers"][0]["image"] == "web-2"


def test_a_rollout_timeout_is_rolled_back_and_ends_in_one_paragraph_with_exit_2(
    api: Any, ns: str, kubeconfig: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    write_app(tmp_path, ns, kubeconfig, image="web-1")
    assert main(["apply", "--cluster", "dev"]) == 0
    write_app(tmp_path, ns, kubeconfig, image="web-2", fail=True)
    capsys.readouterr()
    assert main(["apply", "--cluster", "dev", "--timeout", "6s"]) == 2
    captured = capsys.readouterr()
    # The progress display said what it waited on.
    assert re.search(r"… waiting for the rollout: 1 of 1 pending \[\d+s left\]", captured.err)
    assert re.search(r"^    Deployment\.apps/web -n \S+: ", captured.err, re.MULTILINE)
    assert "Deployment.apps/web" in captured.out and "CrashLoopBackOff" in captured.out
    message = one_error_paragraph(captured.err)
    assert "did not become healthy within the timeout" in message
    assert "rolled back to revision 1" in message and "healthy" in message
    assert "--timeout" in message
    live = Kube(api).get("apps/v1", "Deployment", ns, "web")
    assert live is not None
    assert live["spec"]["template"]["spec"]["containers"][0]["image"] == "web-1"


# -- secret values never printed -----------------------------------------------------------
SECRET = "apiVersion: v1\nkind: Secret\nmetadata: {{name: creds}}\nstringData: {{password: {}}}\n"


def test_a_secret_value_never_appears_in_plan_progress_errors_or_history(
    api: Any, ns: str, kubeconfig: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    values = ["Zq8-first-s3cret", "Zq8-second-s3cret", "918273645"]
    forms = [f for v in values for f in (v, base64.b64encode(v.encode()).decode())]
    seen: list[str] = []

    def step(args: list[str], code: int) -> str:
        assert main(args) == code
        captured = capsys.readouterr()
        seen.append(captured.out + captured.err)
        return captured.out + captured.err

    write_app(tmp_path, ns, kubeconfig, extra=SECRET.format(values[0]))
    step(["apply", "--cluster", "dev", "-v"], 0)
    write_app(tmp_path, ns, kubeconfig, extra=SECRET.format(values[1]))
    plan = step(["apply", "--cluster", "dev", "--dry-run"], 0)
    assert re.search(r"~ data\.password: <redacted sha256:\w{8}> -> <redacted sha256:\w{8}>",
                     plan), plan
    step(["apply", "--cluster", "dev"], 0)
    # An unquoted number is not a string: the server rejects the Secret and quotes the value
    # ("expected string, got &value.valueUnstructured{Value:918273645}").
    write_app(tmp_path, ns, kubeconfig, extra=SECRET.format(values[2]))
    rejected = step(["apply", "--cluster", "dev"], 2)
    assert "expected string, got" in rejected and "<redacted sha256:" in rejected
    step(["history", "--cluster", "dev"], 0)
    step(["rollback", "--cluster", "dev"], 0)
    everything = "\n".join(seen)
    for form in forms:
        assert form not in everything


def test_apply_rollback_history_and_settle_speak_json(
    api: Any, ns: str, kubeconfig: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import json

    monkeypatch.chdir(tmp_path)
    write_repo(tmp_path, ns, kubeconfig, image="web-1")
    assert main(["apply", "--cluster", "dev", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert (doc["schema"], doc["revision"], doc["ok"]) == ("stackctl.dev/apply/v1", 1, True)
    assert sorted((o["kind"], o["outcome"]) for o in doc["objects"]) == [
        ("Deployment", "created"), ("Secret", "created")]
    assert "secret-value" not in json.dumps(doc)

    write_repo(tmp_path, ns, kubeconfig, image="web-2")
    assert main(["apply", "--cluster", "dev", "--dry-run", "--format", "json"]) == 0
    planned = json.loads(capsys.readouterr().out)
    [web] = [c for c in planned["changes"] if c["kind"] == "Deployment"]
    assert web["action"] == "update"
    assert {"path": "spec.template.spec.containers[name=c].image", "action": "changed",
            "before": "web-1", "after": "web-2"} in web["fields"]
    assert main(["apply", "--cluster", "dev"]) == 0
    capsys.readouterr()
    assert main(["rollback", "--cluster", "dev", "--to", "1", "--format", "json"]) == 0
    back = json.loads(capsys.readouterr().out)
    assert (back["revision"], back["ok"]) == (3, True)
    assert main(["history", "--cluster", "dev", "--format", "json"]) == 0
    hist = json.loads(capsys.readouterr().out)
    assert [(r["revision"], r["status"]) for r in hist["revisions"]] == [
        (1, "superseded"), (2, "rolled-back"), (3, "deployed")]
    assert main(["settle", "--cluster", "dev", "--format", "json"]) == 0
    settled = json.loads(capsys.readouterr().out)
    assert (settled["revision"], settled["objects"]) == (3, [])


def test_a_failed_apply_prints_the_first_objects_and_logs_every_one(
    api: Any, ns: str, kubeconfig: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    write_repo(tmp_path, ns, kubeconfig, image="web-1")
    app = tmp_path / "clusters" / "dev" / "app.yaml"
    text = app.read_text()
    broken = [text.split("---")[0].replace("name: web", f"name: web-{i:02}").replace(
        "app: web", f"app: web-{i:02}").replace("labels: {app", f"labels: {{{FAIL_LABEL}: "
                                                 f"'true', app") for i in range(12)]
    app.write_text("---\n".join(broken))
    (tmp_path / "clusters" / "dev" / "cluster.yaml").write_text(
        f"kubeconfig: {kubeconfig}\nrecordsNamespace: {ns}\napply:\n  timeout: 15s\n")
    assert main(["apply", "--cluster", "dev", "--no-rollback"]) == 2
    out = capsys.readouterr().out
    log = ".stackctl/logs/apply-dev-r1.log"
    assert f"  and 2 more (all of them in {log})" in out
    logged = (tmp_path / log).read_text()
    assert all(f"Deployment.apps/web-{i:02} -n {ns}:" in logged for i in range(12))
