"""`stackctl plan --live` against the sandbox: the working tree's render against the live
cluster through server-side dry-run applies."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gitops.cli import main
from gitops.resource import ResourceId
from tests.integration.apply_helpers import api, ns
from tests.integration.test_drift_cli import PASSWORD, kubeconfig, repo, run, write_repo

pytestmark = pytest.mark.integration
__all__ = ["api", "kubeconfig", "ns", "repo"]


def test_plan_live_shows_no_change_right_after_an_apply(
        repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["apply", "--cluster", "dev"], capsys)[0] == 0
    code, out, err = run(["plan", "--live", "--cluster", "dev"], capsys)
    assert code == 0, out
    # Defaulted fields (revisionHistoryLimit, imagePullPolicy, ...) are not changes.
    assert "cluster dev: unchanged (3 objects)" in out
    assert "plan: dev (live, revision 1)" in out
    assert "server-side dry run of 0 object(s); 3 unchanged" in err


def test_plan_live_shows_a_git_edit_as_changes_added_and_removed_objects(
        repo: Path, ns: str, kubeconfig: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["apply", "--cluster", "dev"], capsys)[0] == 0
    write_repo(repo, ns, kubeconfig, image="web:2", extra=True, settings=False)
    code, out, _ = run(["plan", "--live", "--cluster", "dev"], capsys)
    assert code == 1, out
    assert f"- ConfigMap/settings -n {ns}" in out
    assert f"+ ConfigMap/extra -n {ns}" in out
    assert f"~ Deployment.apps/web -n {ns}" in out
    assert "spec.template.spec.containers[name=c].image: web:1 -> web:2" in out
    assert "1 added, 1 removed, 1 changed" in out
    assert PASSWORD not in out

    code, out, _ = run(["plan", "--live", "--cluster", "dev", "--format", "json"], capsys)
    assert code == 1
    [c] = json.loads(out)["clusters"]
    assert c["counts"]["added"] == 1 and c["counts"]["removed"] == 1
    [changed] = [o for o in c["objects"] if o["action"] == "changed"]
    assert [f["path"] for f in changed["fields"]] == [
        "spec.template.spec.containers[name=c].image"]


def test_plan_live_needs_one_cluster_and_no_base(
        repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["plan", "--live"], capsys)
    assert code == 2 and "give exactly one --cluster NAME" in err
    code, _, err = run(["plan", "--live", "--base", "main", "--cluster", "dev"], capsys)
    assert code == 2 and "give either --base REF or --live" in err
    assert main(["plan", "--cluster", "dev"]) == 2


# -- apply --dry-run and plan --live agree -------------------------------------------------
def _agreement_repo(root: Path, ns: str, kubeconfig: Path, *, second: bool) -> None:
    """Revision 1: a Deployment, two ConfigMaps and a claim. The second render changes the
    Deployment's image, drops a ConfigMap and the claim (a protected kind: kept), and adds a
    Namespace with a ConfigMap in it and a CRD with a custom resource of it (both deferred:
    they cannot be validated before their Namespace or CRD exists)."""
    group = f"{ns}.example.com"
    d = root / "clusters" / "dev"
    d.mkdir(parents=True, exist_ok=True)
    (root / "stack.yaml").write_text("name: demo\nsource: ./upstream\n")
    (d / "cluster.yaml").write_text(
        f"kubeconfig: {kubeconfig}\nrecordsNamespace: {ns}\napply:\n  timeout: 60s\n")
    (d / "kustomization.yaml").write_text("resources: [app.yaml]\n")
    image = "web:2" if second else "web:1"
    docs = [f"""\
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web, namespace: {ns}}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec: {{containers: [{{name: c, image: "{image}"}}]}}
""", f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: same, namespace: {ns}}}\n"
     "data: {k: v}\n"]
    if not second:
        docs += [f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: gone, namespace: {ns}}}\n"
                 "data: {k: v}\n",
                 f"apiVersion: v1\nkind: PersistentVolumeClaim\n"
                 f"metadata: {{name: data, namespace: {ns}}}\n"
                 "spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}\n"]
    else:
        docs += [f"apiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}-extra}}\n",
                 f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: inside, "
                 f"namespace: {ns}-extra}}\ndata: {{k: v}}\n",
                 f"""\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {{name: widgets.{group}}}
spec:
  group: {group}
  scope: Namespaced
  names: {{plural: widgets, singular: widget, kind: Widget}}
  versions:
  - name: v1
    served: true
    storage: true
    schema: {{openAPIV3Schema: {{type: object, x-kubernetes-preserve-unknown-fields: true}}}}
""", f"apiVersion: {group}/v1\nkind: Widget\nmetadata: {{name: w1, namespace: {ns}}}\n"
     "spec: {size: 3}\n"]
    (d / "app.yaml").write_text("---\n".join(docs))


def _dry_run_actions(out: str) -> tuple[dict[str, str], int]:
    actions: dict[str, str] = {}
    unchanged = -1
    for line in out.splitlines():
        if line.startswith(("+ ", "~ ", "- ")):
            ident = line[2:].split(" (", 1)[0]
            actions[ident] = {"+": "create", "~": "update", "-": "delete"}[line[0]]
        elif line.startswith("  keep "):
            actions[line[len("  keep "):].split(":", 1)[0]] = "keep"
        elif line.startswith("plan: "):
            unchanged = int(line.split(", ")[3].split()[0])
    return actions, unchanged


def _plan_live_actions(out: str) -> tuple[dict[str, str], int]:
    [c] = json.loads(out)["clusters"]
    verbs = {"added": "create", "changed": "update", "removed": "delete"}
    actions = {str(ResourceId(**o["id"])): verbs[o["action"]] for o in c["objects"]}
    for note in c.get("notes", []):
        actions[note[len("keep "):].split(":", 1)[0]] = "keep"
    return actions, c["counts"]["unchanged"]


def test_apply_dry_run_and_plan_live_report_the_same_action_for_every_object(
        api: Any, ns: str, kubeconfig: Path, tmp_path: Path, git_env: Path, kustomize: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from gitops.kube import Kube

    root = tmp_path / "deploy"
    root.mkdir()
    monkeypatch.chdir(root)
    kube = Kube(api)
    try:
        _agreement_repo(root, ns, kubeconfig, second=False)
        assert run(["apply", "--cluster", "dev"], capsys)[0] == 0
        _agreement_repo(root, ns, kubeconfig, second=True)
        code, dry, err = run(["apply", "--cluster", "dev", "--dry-run"], capsys)
        assert code == 0, err
        code, live, err = run(["plan", "--live", "--cluster", "dev", "--format", "json"],
                              capsys)
        assert code == 1, err
        group = f"{ns}.example.com"
        want = {
            f"Deployment.apps/web -n {ns}": "update",
            f"ConfigMap/gone -n {ns}": "delete",
            f"PersistentVolumeClaim/data -n {ns}": "keep",
            f"Namespace/{ns}-extra": "create",
            f"ConfigMap/inside -n {ns}-extra": "create",
            f"CustomResourceDefinition.apiextensions.k8s.io/widgets.{group}": "create",
            f"Widget.{group}/w1 -n {ns}": "create",
        }
        assert _dry_run_actions(dry) == (want, 1), dry
        assert _plan_live_actions(live) == (want, 1), live
        assert f"+ ConfigMap/inside -n {ns}-extra (after its CRD or Namespace)" in dry
        assert f"+ Widget.{group}/w1 -n {ns} (after its CRD or Namespace)" in dry
    finally:
        kube.delete("v1", "Namespace", "", f"{ns}-extra")
        kube.delete("apiextensions.k8s.io/v1", "CustomResourceDefinition", "",
                    f"widgets.{ns}.example.com")
