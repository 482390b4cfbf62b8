"""The effect check of `stackctl upgrade`, kind by kind, on a tiny upstream (real git repos,
the real kustomize): each customization that changed the render before the upgrade and
changes nothing after it is a `no-effect` finding naming its likely successor; one that
still has its effect is no finding.

The upstream goes v1.0.0 -> v1.1.0 renaming the Deployment `web` to `web-server` (same pod,
same image) and adding, at its top, a patch that sets the `settings` ConfigMap's `level`
to `warn` (a layer above a vendor edit, as Kubeflow's dex oauth2-proxy overlay is).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pygit2
import pytest

from gitops.stack import load_stack
from gitops.vendor import import_release
from tests.fixtures.gitrepos import commit_all, release_folder, write_files
from tests.test_upgrade import KUSTOMIZATION, run

V = "vendor/mlstack"


def _deployment(name: str) -> str:
    return (f"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\nspec:\n"
            "  replicas: 1\n  selector:\n    matchLabels:\n      app: web\n  template:\n"
            "    metadata:\n      labels:\n        app: web\n    spec:\n      containers:\n"
            "      - name: web\n        image: reg/web:1.0\n        env:\n        - name: MODE\n"
            "          value: fast\n        - name: ZONE\n          value: a\n")


SETTINGS = ("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n"
            "  level: debug\n  color: blue\n")
OVERRIDE = ("patches:\n- target:\n    kind: ConfigMap\n    name: settings\n  patch: |\n"
            "    - op: replace\n      path: /data/level\n      value: warn\n")


def _release(name: str, top: str = "") -> dict[str, str | bytes | tuple[str | bytes, int]]:
    return {
        "kustomization.yaml": KUSTOMIZATION + "resources:\n- app\n" + top,
        "app/kustomization.yaml": KUSTOMIZATION + "resources:\n- deployment.yaml\n"
                                                  "- settings.yaml\n",
        "app/deployment.yaml": _deployment(name),
        "app/settings.yaml": SETTINGS,
    }


CLUSTER = KUSTOMIZATION + """namespace: dev
resources:
- ../../vendor/mlstack
images:
- name: reg/web
  newName: mirror.example.com/web
labels:
- pairs:
    team: data
patches:
- target:
    kind: Deployment
    name: web
  patch: |
    - op: add
      path: /metadata/annotations
      value: {owner: data-team}
"""
K = "clusters/dev/kustomization.yaml"


def _status(capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code, out, _err = run(capsys, "--status")
    return code, out


@pytest.fixture
def upgraded(tmp_path: Path, deploy_repo: Callable[..., Path], kustomize: Path,
             monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
             ) -> tuple[Path, int, str, dict[str, dict[str, str]]]:
    release_folder(tmp_path / "rf", {"v1.0.0": _release("web"),
                                     "v1.1.0": _release("web-server", OVERRIDE)})
    root = deploy_repo(source="../rf")
    import_release(load_stack(root), ref="v1.0.0")
    write_files(root, {K: CLUSTER,
                       f"{V}/app/settings.yaml": SETTINGS.replace("debug", "info")})
    commit_all(pygit2.Repository(str(root)), "customizations of every kind")
    monkeypatch.chdir(root)
    code, out, err = run(capsys, "--vendor", "v1.1")
    assert code in (0, 1), err
    report = json.loads((root / ".stackctl/upgrade/report.json").read_text())
    findings = {c["address"]: c for c in report["merge"]["conflicts"]
                if c["kind"] == "no-effect"}
    return root, code, out, findings


def test_a_patch_whose_target_upstream_renamed_names_the_new_name(
    upgraded: tuple[Path, int, str, dict[str, dict[str, str]]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    _root, code, out, findings = upgraded
    assert code == 1  # findings stop the upgrade for a person
    # An inline patch is addressed by its whole entry, as the merge addresses it.
    (address,) = [a for a in findings if a.startswith(f"{K}::patches[")]
    assert '"target": {"kind": "Deployment", "name": "web"}' in address
    patch = findings[address]
    assert patch["base"] == ("the patch's target (Deployment, name web) selects an object "
                             "(Deployment/web -n dev)")
    assert patch["theirs"] == (
        "Deployment/web -n dev is no longer rendered; likely successor: "
        "Deployment/web-server -n dev (the object under its new name)")
    assert f"  {address}\n    no-effect: " in out
    # Its address holds the whole entry: its number, as --status shows it, names it too.
    code, status = _status(capsys)
    assert code == 1
    number = next(line.split()[0] for line in status.splitlines() if line.endswith(address))
    assert run(capsys, "--resolve", number, "--ours")[0] == 0
    assert f"{number} resolved (ours): {address}" in _status(capsys)[1]
    code, _out, err = run(capsys, "--resolve", "#99", "--ours")
    assert code == 2 and "no conflict of the upgrade has the address '#99'" in err


def test_a_vendor_edit_a_new_upstream_layer_overrides_is_a_finding(
    upgraded: tuple[Path, int, str, dict[str, dict[str, str]]],
) -> None:
    root, _code, _out, findings = upgraded
    address = f"{V}/app/settings.yaml:/ConfigMap//settings:data.level"
    assert address in findings, sorted(findings)
    assert findings[address]["theirs"] == (
        "ConfigMap/settings -n dev has warn there (overridden further up?)")
    # The edit itself merged cleanly: it is in the file, it just reaches no cluster.
    assert "level: info" in (root / V / "app/settings.yaml").read_text()


def test_customizations_that_keep_their_effect_are_no_finding(
    upgraded: tuple[Path, int, str, dict[str, dict[str, str]]],
) -> None:
    _root, _code, _out, findings = upgraded
    # The mirror still matches the renamed Deployment's container (same image), and the
    # labels entry labels every object: neither is reported.
    assert not any("images" in a or "labels" in a for a in findings), sorted(findings)
    assert len(findings) == 2, sorted(findings)
