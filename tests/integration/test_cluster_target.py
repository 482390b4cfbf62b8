"""Which cluster a command reaches (issue 12, item 6): every cluster command names the API
server and context; the cluster's identity is pinned in cluster.yaml and another cluster is
refused; a repeated --cluster is refused; a dirty working tree is applied only with
--allow-dirty, and then recorded as dirty."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest

from gitops.cli import main
from gitops.kube import Kube
from tests.integration.apply_helpers import api, ns, revisions, team_fixture
from tests.integration.process_helpers import DeployRepo, configmap_yaml

pytestmark = pytest.mark.integration
__all__ = ["api", "ns"]

OTHER_UID = "00000000-0000-4000-8000-000000000000"


@pytest.fixture
def kubeconfig(request: pytest.FixtureRequest) -> Path:
    explicit = os.environ.get("STACKCTL_TEST_KUBECONFIG")
    if explicit:
        return Path(explicit)
    return Path(team_fixture(request, "sandbox").kubeconfig)


@pytest.fixture
def repo(tmp_path: Path, ns: str, kubeconfig: Path, git_env: Path, kustomize: Path,
         monkeypatch: pytest.MonkeyPatch) -> DeployRepo:
    r = DeployRepo(tmp_path / "deploy", ns, kubeconfig)
    r.write(configmap_yaml("a"))
    r.commit("rev1")
    monkeypatch.chdir(r.root)
    return r


def kube_system_uid(api: Any) -> str:
    return str(Kube(api).request("GET", "/api/v1/namespaces/kube-system")["metadata"]["uid"])


def test_every_cluster_command_names_the_api_server_and_context_it_talks_to(
    api: Any, repo: DeployRepo, capsys: pytest.CaptureFixture[str],
) -> None:
    server = str(Kube(api).host)
    commands = [["apply", "--cluster", "dev", "--dry-run"], ["apply", "--cluster", "dev"],
                ["history", "--cluster", "dev"], ["drift", "--cluster", "dev"],
                ["plan", "--live", "--cluster", "dev"], ["rollback", "--cluster", "dev"]]
    for args in commands:
        main(args)
        err = capsys.readouterr().err
        assert re.search(rf"cluster dev: API server {re.escape(server)} \(context \S+ of "
                         rf"kubeconfig {re.escape(str(repo.kubeconfig))}\)", err), (args, err)
        assert "pins no identity" in err and "stackctl pin --cluster dev" in err


def test_pin_writes_the_identity_and_a_command_reaching_another_cluster_is_refused(
    api: Any, ns: str, repo: DeployRepo, capsys: pytest.CaptureFixture[str],
) -> None:
    kube = Kube(api)
    before = (repo.cluster / "cluster.yaml").read_text()
    assert main(["pin", "--cluster", "dev"]) == 0
    uid = kube_system_uid(api)
    assert f"pinned cluster dev to identity {uid} in clusters/dev/cluster.yaml; commit it" \
        in capsys.readouterr().out
    # One line added, every other line as it was.
    assert (repo.cluster / "cluster.yaml").read_text() == before + f"identity: {uid}\n"
    repo.commit("pin dev")
    assert main(["apply", "--cluster", "dev"]) == 0
    err = capsys.readouterr().err
    assert "pins no identity" not in err

    # The same cluster.yaml reaching another cluster: every command refuses, exit 2.
    text = (repo.cluster / "cluster.yaml").read_text().replace(uid, OTHER_UID)
    (repo.cluster / "cluster.yaml").write_text(text)
    repo.write(configmap_yaml("a", "changed"))
    repo.commit("pinned to another cluster")
    for args in (["apply", "--cluster", "dev"], ["apply", "--cluster", "dev", "--dry-run"],
                 ["rollback", "--cluster", "dev"], ["history", "--cluster", "dev"],
                 ["plan", "--live", "--cluster", "dev"]):
        assert main(args) == 2, args
        err = " ".join(capsys.readouterr().err.split())
        assert f"cluster 'dev' is pinned to the cluster whose kube-system namespace has uid " \
               f"{OTHER_UID}" in err, err
        assert f"is another cluster (uid {uid}). Nothing was read or changed on it." in err
        assert "stackctl pin --cluster dev --replace" in err
    assert main(["drift", "--cluster", "dev", "--heal"]) == 2
    assert "is another cluster" in capsys.readouterr().out
    assert kube.get("v1", "ConfigMap", ns, "a")["data"] == {"k": "v"}  # type: ignore[index]
    assert [r.revision for r in revisions(api, ns, "dev")] == [1]

    # A rebuilt cluster is pinned anew on purpose.
    assert main(["pin", "--cluster", "dev"]) == 2
    assert main(["pin", "--cluster", "dev", "--replace"]) == 0
    assert f"identity: {uid}\n" in (repo.cluster / "cluster.yaml").read_text()


def test_a_repeated_cluster_option_is_refused_before_anything_is_read(
    repo: DeployRepo, capsys: pytest.CaptureFixture[str],
) -> None:
    for command in ("apply", "rollback", "history", "pin"):
        assert main([command, "--cluster", "dev", "--cluster", "prod"]) == 2
        err = capsys.readouterr().err
        assert "given 2 times (dev, prod); this command acts on one cluster" in err, err


def test_a_dirty_tree_is_applied_only_with_allow_dirty_and_recorded_as_dirty(
    api: Any, ns: str, repo: DeployRepo, capsys: pytest.CaptureFixture[str],
) -> None:
    kube = Kube(api)
    assert main(["apply", "--cluster", "dev"]) == 0
    repo.write(configmap_yaml("a", "uncommitted"))
    capsys.readouterr()

    assert main(["apply", "--cluster", "dev"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "the working tree has uncommitted changes to files cluster 'dev' renders " \
           "(changed: clusters/dev/app.yaml)" in err, err
    assert "Nothing was applied" in err and "--allow-dirty" in err
    assert kube.get("v1", "ConfigMap", ns, "a")["data"] == {"k": "v"}  # type: ignore[index]
    # The dry run shows what would change, dirty or not.
    assert main(["apply", "--cluster", "dev", "--dry-run"]) == 0

    # drift: the difference is the uncommitted change, not one merged and not rolled out.
    assert main(["drift", "--cluster", "dev"]) == 1
    out = capsys.readouterr().out
    assert "the working tree has uncommitted changes to what this cluster renders" in out
    assert "merged but not yet rolled out" not in out

    assert main(["apply", "--cluster", "dev", "--allow-dirty"]) == 0
    assert kube.get("v1", "ConfigMap", ns, "a")["data"] == {  # type: ignore[index]
        "k": "uncommitted"}
    revs = revisions(api, ns, "dev")
    assert [(r.revision, r.dirty) for r in revs] == [(1, False), (2, True)]
    capsys.readouterr()
    assert main(["history", "--cluster", "dev"]) == 0
    rows = capsys.readouterr().out.splitlines()[1:]
    head = repo.repo.head.target
    assert rows[1].split()[1] == f"{str(head)[:12]}-dirty", rows
    assert rows[0].split()[1] == str(head)[:12]

    # The change thrown away (git checkout): drift says the revision came from a dirty
    # tree, not that HEAD holds changes merged but not rolled out.
    repo.write(configmap_yaml("a"))
    assert main(["drift", "--cluster", "dev"]) == 1
    out = capsys.readouterr().out
    assert f"commit {str(head)[:12]}-dirty" in out
    assert "revision 2 was applied from a working tree with uncommitted changes" in out, out
    assert "merged but not yet rolled out" not in out
