"""Issue 12, items 1, 4 and 5 on the sandbox: the lease is never taken from a live apply
(another PID namespace on the same host, a holder that lost it), a protected object is
rolled back to its previous content, and prune deletes only objects that still carry the
set's label."""

from __future__ import annotations

import datetime as dt
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from gitops.apply.lease import lease_name
from gitops.apply.report import result_lines
from gitops.cluster import DEFAULT_PROTECTED_KINDS, ApplyPolicy
from gitops.inventory import PART_OF
from gitops.kube import Kube
from tests.integration.apply_helpers import api, apply, configmap, deployment, dry_run, ns
from tests.integration.apply_helpers import revisions as revisions_of
from tests.integration.process_helpers import DeployRepo, configmap_yaml, deployment_yaml, docs
from tests.integration.test_apply_signals import HEALTH_WAIT, REV1, REV2, image_of, kubeconfig
from tests.integration.test_apply_signals import lease_of as lease_in

pytestmark = pytest.mark.integration
__all__ = ["api", "kubeconfig", "ns"]


def secret(name: str, ns: str, password: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": ns},
            "type": "Opaque", "stringData": {"password": password}}


def secret_value(kube: Kube, ns: str, name: str) -> str:
    import base64

    live = kube.get("v1", "Secret", ns, name)
    assert live is not None
    return base64.b64decode(live["data"]["password"]).decode()


# -- item 4: protected kinds are rolled back --------------------------------------------

def test_a_failed_apply_rolls_a_protected_secret_back_to_its_previous_value(
    api: Any, ns: str,
) -> None:
    kube = Kube(api)
    policy = ApplyPolicy(timeout=8, protected_kinds=(*DEFAULT_PROTECTED_KINDS, "Secret"))
    good = [secret("creds", ns, "first-password"), deployment("web", ns, "reg/web:1")]
    assert apply(api, ns, good, policy=ApplyPolicy(timeout=60, protected_kinds=policy
                                                   .protected_kinds)).ok
    bad = [secret("creds", ns, "second-password"),
           deployment("web", ns, "reg/web:2", fail=True)]
    result = apply(api, ns, bad, policy=policy)
    assert not result.ok
    rb = result.rollback
    assert rb is not None and rb.healthy and not rb.unrestored, rb
    assert secret_value(kube, ns, "creds") == "first-password"
    assert image_of(kube, ns) == "reg/web:1"
    assert result_lines(result)[-1] == "rolled back to revision 1: healthy"


# -- item 5: prune deletes members only -------------------------------------------------

def test_prune_leaves_an_object_another_tool_took_out_of_the_apply_set(
    api: Any, ns: str,
) -> None:
    kube = Kube(api)
    policy = ApplyPolicy(timeout=60)
    assert apply(api, ns, [configmap("a", ns), configmap("b", ns), configmap("c", ns)],
                 policy=policy).ok
    # Another tool adopts b: it removes the ApplySet label (kubectl's way to hand over).
    kube.request("PATCH", f"/api/v1/namespaces/{ns}/configmaps/b",
                 body={"metadata": {"labels": {PART_OF: None}}},
                 content_type="application/merge-patch+json")

    plan = dry_run(api, ns, [configmap("a", ns)], policy=policy, allow_mass_prune=True)
    assert {(c.id.name, str(c.action)) for c in plan.prune} == {("b", "keep"), ("c", "delete")}
    result = apply(api, ns, [configmap("a", ns)], policy=policy, allow_mass_prune=True)
    assert result.ok, result.failure
    outcomes = {o.id.name: (o.outcome, o.message) for o in result.prune}
    assert outcomes["c"][0] == "deleted"
    assert outcomes["b"][0] == "kept" and "another tool took it over" in outcomes["b"][1]
    assert kube.get("v1", "ConfigMap", ns, "b") is not None
    assert kube.get("v1", "ConfigMap", ns, "c") is None


# -- item 1: the lease ------------------------------------------------------------------

@pytest.fixture
def repo(tmp_path: Path, ns: str, kubeconfig: Path, git_env: Path,
         kustomize: Path) -> DeployRepo:
    return DeployRepo(tmp_path / "deploy", ns, kubeconfig)


def start_rev2(repo: DeployRepo) -> Any:
    repo.write(REV1)
    repo.commit("rev1")
    assert repo.run("apply", "--cluster", "dev").code == 0
    repo.write(REV2)
    repo.commit("rev2")
    running = repo.start("apply", "--cluster", "dev")
    running.wait_for(HEALTH_WAIT)
    return running


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare(1)")
def test_an_apply_from_another_pid_namespace_on_the_same_host_never_takes_a_live_lease(
    api: Any, ns: str, repo: DeployRepo,
) -> None:
    if subprocess.run(["unshare", "--pid", "--fork", "true"], check=False).returncode:
        pytest.skip("this machine does not allow new PID namespaces")
    kube = Kube(api)
    first = start_rev2(repo)
    # Same hostname, another PID namespace (a container with host networking, a CI
    # runner): the first apply's pid means nothing there.
    second = repo.run("apply", "--cluster", "dev", prefix=["unshare", "--pid", "--fork"])
    assert second.code == 2, second.err
    assert "another apply is running on cluster 'dev'" in second.paragraph
    assert "took over" not in second.out + second.err
    assert [r.revision for r in revisions_of(api, ns, "dev")] == [1, 2]

    first.signal(signal.SIGTERM)
    done = first.finish()
    assert done.code == 143, done.err
    assert image_of(kube, ns) == "web-1"
    assert [(r.revision, r.status) for r in revisions_of(api, ns, "dev")] == [
        (1, "superseded"), (2, "failed"), (3, "deployed")]


def test_an_apply_that_finds_its_lease_held_by_another_stops_and_the_next_apply_converges(
    api: Any, ns: str, repo: DeployRepo,
) -> None:
    kube = Kube(api)
    running = start_rev2(repo)
    lease = lease_in(kube, ns)
    assert lease is not None
    path = f"/apis/coordination.k8s.io/v1/namespaces/{ns}/leases/{lease_name('dev')}"
    # Someone took the lease (--break-lease elsewhere, a clock gone wrong): at its next
    # renewal the apply finds another holder and stops, changing and recording nothing more.
    lease["spec"]["holderIdentity"] = "someone@elsewhere pid=1 run=other"
    lease["spec"]["renewTime"] = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    kube.request("PUT", path, body=lease)
    done = running.finish()
    assert done.code == 2, done.err
    message = done.paragraph
    assert "is now held by someone@elsewhere pid=1 run=other" in message, message
    assert "Nothing further was changed and it was not rolled back" in message
    assert "revision 2 stays pending" in message
    assert [(r.revision, r.status) for r in revisions_of(api, ns, "dev")] == [
        (1, "deployed"), (2, "pending")]
    assert image_of(kube, ns) == "web-2"  # as the stopped apply left it
    assert kube.get("v1", "ConfigMap", ns, "b") is not None
    assert lease_in(kube, ns) is not None  # the other holder's: not released by this one

    # The other holder finished; the next apply marks revision 2 failed and prunes what
    # it created.
    kube.request("DELETE", path)
    repo.write(docs(deployment_yaml("web", "web-1"), configmap_yaml("a")))
    repo.commit("back to rev1")
    rerun = repo.run("apply", "--cluster", "dev")
    assert rerun.code == 0, rerun.err
    assert "revision 2 had been left pending" in rerun.out
    assert kube.get("v1", "ConfigMap", ns, "b") is None
    assert image_of(kube, ns) == "web-1"
    assert [(r.revision, r.status) for r in revisions_of(api, ns, "dev")] == [
        (1, "superseded"), (2, "failed"), (3, "deployed")]
