"""An upgrade's conflicts never show a secret value (issue 12, item 7): not in stdout,
`--status`, the markers written into files, report.md or report.json. The values are the
ones `plan` redacts: a Secret's value quoted elsewhere (an env var), env vars and ConfigMap
keys of sensitive names (the defaults and `redact.sensitiveKeys`), `password` lines in a
config file, and what a secretGenerator puts into a Secret."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pygit2
import pytest

from gitops.cli import main
from gitops.stack import load_stack
from gitops.vendor import import_release
from tests.fixtures.gitrepos import commit_all, release_folder, write_files

KUST = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"


def deployment(shared: str, token: str, internal: str) -> str:
    return f"""\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: web
        image: reg/web:1
        env:
        - name: DB_URL_PART
          value: {shared}
        - name: API_TOKEN
          value: {token}
        - name: INTERNAL_REF
          value: {internal}
"""


def secret(shared: str) -> str:
    return f"""\
apiVersion: v1
kind: Secret
metadata:
  name: db
stringData:
  password: {shared}
"""


def release(tag: str) -> dict[str, str | bytes | tuple[str | bytes, int]]:
    return {
        "kustomization.yaml": KUST + "resources:\n- deployment.yaml\n- secret.yaml\n"
        "configMapGenerator:\n- name: cfg\n  files:\n  - app.conf\n"
        "secretGenerator:\n- name: gen\n  literals:\n"
        f"  - GEN_PASSWORD=UP{tag}GENvalue\n",
        "deployment.yaml": deployment(f"UP{tag}SECRETpw", f"UP{tag}TOKENvalue",
                                      f"UP{tag}INTERNALvalue"),
        "secret.yaml": secret(f"UP{tag}SECRETpw"),
        "app.conf": f"listen = 80\npassword = UP{tag}CONFpw\n",
    }


LOCAL = {
    "vendor/mlstack/deployment.yaml": deployment("LOCALoursSECRETpw", "LOCALoursTOKENvalue",
                                                 "LOCALoursINTERNALvalue"),
    "vendor/mlstack/secret.yaml": secret("LOCALoursSECRETpw"),
    "vendor/mlstack/app.conf": "listen = 80\npassword = LOCALoursCONFpw\n",
    "vendor/mlstack/kustomization.yaml": release("base")["kustomization.yaml"].replace(  # type: ignore[union-attr]
        "UPbaseGENvalue", "LOCALoursGENvalue"),
}
SECRET_VALUES = ("SECRETpw", "TOKENvalue", "INTERNALvalue", "CONFpw", "GENvalue")


@pytest.fixture
def conflicted(tmp_path: Path, deploy_repo: Callable[..., Path], kustomize: Path,
               monkeypatch: pytest.MonkeyPatch) -> Path:
    release_folder(tmp_path / "rf", {"v1.0.0": release("base"), "v1.1.0": release("theirs")})
    root = deploy_repo(source="../rf")
    # INTERNAL_REF is sensitive for this stack only (redact.sensitiveKeys).
    stack_yaml = root / "stack.yaml"
    stack_yaml.write_text(stack_yaml.read_text() + "redact:\n  sensitiveKeys: ['internal']\n")
    commit_all(pygit2.Repository(str(root)), "redact internal")
    import_release(load_stack(root), ref="v1.0.0")
    write_files(root, {"clusters/dev/kustomization.yaml":
                       KUST + "namespace: dev\nresources:\n- ../../vendor/mlstack\n", **LOCAL})
    commit_all(pygit2.Repository(str(root)), "local edits")
    monkeypatch.chdir(root)
    return root


def test_upgrade_conflicts_show_no_secret_value_anywhere(
    conflicted: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["upgrade", "--vendor", "v1.1"])
    out, err = capsys.readouterr()
    assert code == 1, err
    assert main(["upgrade", "--status"]) == 1
    status, status_err = capsys.readouterr()
    stackctl = conflicted / ".stackctl/upgrade"
    report_md = (stackctl / "report.md").read_text()
    texts = {"stdout": out, "stderr": err, "--status": status + status_err,
             "report.md": report_md, "report.json": (stackctl / "report.json").read_text()}
    for name in ("deployment.yaml", "app.conf", "kustomization.yaml"):
        marked = (conflicted / "vendor/mlstack" / name).read_text()
        texts[f"markers in {name}"] = "\n".join(
            line for line in marked.splitlines() if "stackctl conflict" in line)
    # The conflicts are there, with their values redacted.
    assert "env[name=API_TOKEN].value" in report_md
    assert "env[name=DB_URL_PART].value" in report_md
    assert "env[name=INTERNAL_REF].value" in report_md
    assert "app.conf" in report_md and "<redacted sha256:" in report_md
    for where, text in texts.items():
        for value in SECRET_VALUES:
            assert value not in text, (where, value, text)
