"""The run's redactor is built from the stack: `redact.sensitiveKeys` of stack.yaml hides a
ConfigMap value in every output of the apply commands (`apply --dry-run`, `rollback`,
`history`), as it does in `plan` and `drift`."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pygit2
import pytest

from gitops.cli import main
from gitops.inventory import Records, RevisionStatus
from gitops.kube import Kube, KubeApiError
from tests.fixtures.gitrepos import commit_all
from tests.integration.apply_helpers import api, ns
from tests.integration.test_drift_cli import kubeconfig

pytestmark = pytest.mark.integration
__all__ = ["api", "kubeconfig", "ns"]

OLD = "postgres://app:old-pw-4417@db/x"
NEW = "postgres://app:new-pw-9034@db/x"


def write_repo(root: Path, ns: str, kubeconfig: Path, dsn: str) -> None:
    cluster = root / "clusters" / "dev"
    cluster.mkdir(parents=True, exist_ok=True)
    (root / "stack.yaml").write_text(
        "name: demo\nsource: ./upstream\nredact:\n  sensitiveKeys: ['dsn$']\n")
    (cluster / "cluster.yaml").write_text(
        f"kubeconfig: {kubeconfig}\nrecordsNamespace: {ns}\napply:\n  timeout: 60s\n")
    (cluster / "kustomization.yaml").write_text(f"namespace: {ns}\nresources: [app.yaml]\n")
    (cluster / "app.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app-config}\n"
        f"data: {{DB_DSN: '{dsn}', mode: fast}}\n")


@pytest.fixture
def repo(kubeconfig: Path, ns: str, tmp_path: Path, git_env: Path, kustomize: Path,
         monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "deploy"
    root.mkdir()
    write_repo(root, ns, kubeconfig, OLD)
    commit_all(pygit2.init_repository(str(root), initial_head="main"), "dev: old dsn")
    monkeypatch.chdir(root)
    return root


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(args)
    out = capsys.readouterr()
    return code, out.out + out.err


def deny_old_dsn(kube: Kube, ns: str) -> list[tuple[str, str]]:
    """A ValidatingAdmissionPolicy that refuses ConfigMaps of `ns` holding the old DSN and
    quotes the value in its message, as a policy explaining a refusal may; returns what to
    delete afterwards."""
    name = f"revoked-dsn-{ns}"[:63]
    kube.create({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name},
        "spec": {"failurePolicy": "Fail", "matchConstraints": {"resourceRules": [{
            "apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
            "resources": ["configmaps"]}]},
            "validations": [{
                "expression": "!has(object.data) || !('DB_DSN' in object.data) || "
                              "!object.data['DB_DSN'].contains('old-pw')",
                "messageExpression": "'DB_DSN ' + object.data['DB_DSN'] + "
                                     "' uses a revoked password'"}]}})
    kube.create({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding", "metadata": {"name": name},
        "spec": {"policyName": name, "validationActions": ["Deny"],
                 "matchResources": {"namespaceSelector": {"matchLabels": {
                     "kubernetes.io/metadata.name": ns}}}}})
    probe = {"apiVersion": "v1", "kind": "ConfigMap",
             "metadata": {"name": "probe", "namespace": ns}, "data": {"DB_DSN": OLD}}
    end = time.monotonic() + 60
    while True:  # the policy takes effect once the API server has compiled it
        try:
            kube.apply(probe, dry_run=True)
        except KubeApiError:
            break
        assert time.monotonic() < end, "the admission policy never took effect"
        time.sleep(0.5)
    return [("ValidatingAdmissionPolicyBinding", name), ("ValidatingAdmissionPolicy", name)]


def test_apply_dry_run_rollback_and_history_hide_a_value_of_a_stack_sensitive_key(
    repo: Path, api: Any, ns: str, kubeconfig: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    kube = Kube(api)
    assert run(["apply", "--cluster", "dev"], capsys)[0] == 0
    write_repo(repo, ns, kubeconfig, NEW)

    code, dry = run(["apply", "--cluster", "dev", "--dry-run"], capsys)
    assert code == 0, dry
    assert "~ ConfigMap/app-config -n " in dry
    assert "~ data.DB_DSN: <redacted sha256:" in dry
    commit_all(pygit2.Repository(str(repo)), "dev: new dsn")
    assert run(["apply", "--cluster", "dev"], capsys)[0] == 0

    cleanup = deny_old_dsn(kube, ns)
    try:
        # Going back to the old DSN: the policy refuses it in the dry run, quoting it.
        code, rolled = run(["rollback", "--cluster", "dev"], capsys)
        assert code == 2, rolled
        assert "rejected: ConfigMap/app-config" in rolled and "uses a revoked password" in rolled
        assert "DB_DSN <redacted sha256:" in rolled
    finally:
        for kind, name in cleanup:
            kube.delete("admissionregistration.k8s.io/v1", kind, "", name)

    # A revision's description is free text (library callers set it): a sensitive
    # `name=value` in it is hidden too.
    Records(kube, cluster="dev", namespace=ns).set_status(
        2, RevisionStatus.DEPLOYED, description=f"rotated DB_DSN={NEW}")
    code, listed = run(["history", "--cluster", "dev"], capsys)
    assert code == 0, listed
    assert "rotated DB_DSN=<redacted sha256:" in listed

    for out in (dry, rolled, listed):
        for value in (OLD, NEW, "old-pw", "new-pw"):
            assert value not in out, out


def test_a_secret_value_quoted_by_kustomize_or_the_api_server_is_redacted(
    repo: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """Issue 12, item 8: a secretGenerator literal with a typo (kustomize quotes it in its
    error) and a Secret whose stringData is not a map (the API server quotes it)."""
    cluster = repo / "clusters" / "dev"
    kustomization = (cluster / "kustomization.yaml").read_text()
    (cluster / "kustomization.yaml").write_text(
        kustomization + "secretGenerator:\n- name: gen\n  literals:\n"
        "  - GEN_PASSWORD:WHISKEYtypoVALUE\n")
    for args in (["render", "--cluster", "dev"], ["apply", "--cluster", "dev", "--dry-run"],
                 ["apply", "--cluster", "dev", "--allow-dirty"],
                 ["plan", "--live", "--cluster", "dev"]):
        code, text = run(args, capsys)
        assert code == 2, (args, text)
        assert "invalid literal source <redacted sha256:" in text, (args, text)
        assert "WHISKEY" not in text, (args, text)

    (cluster / "kustomization.yaml").write_text(kustomization)
    (cluster / "app.yaml").write_text(
        "apiVersion: v1\nkind: Secret\nmetadata: {name: creds}\nstringData: YANKEEstringVALUE\n")
    for args in (["apply", "--cluster", "dev", "--dry-run"],
                 ["apply", "--cluster", "dev", "--allow-dirty"],
                 ["plan", "--live", "--cluster", "dev"]):
        code, text = run(args, capsys)
        assert code != 0, (args, text)
        assert "expected map" in text or "cannot" in text, (args, text)
        assert "YANKEE" not in text, (args, text)
