"""Real signals sent to a real `stackctl apply` process in its health wait, and kill -9.

Each test deploys revision 1 (healthy), then starts the apply of revision 2, whose
Deployment carries the sandbox's failure label (its pod never becomes ready, so the process
is reliably in its health wait) and which adds a ConfigMap; the signal is sent once the
process said it waits for health.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import socket
from pathlib import Path
from typing import Any

import pytest

from gitops.apply.lease import lease_name
from gitops.inventory import current_user
from gitops.kube import Kube
from tests.integration.apply_helpers import api, ns, revisions, team_fixture
from tests.integration.process_helpers import (
    DeployRepo,
    configmap_yaml,
    deployment_yaml,
    docs,
)

pytestmark = pytest.mark.integration
__all__ = ["api", "ns"]

HEALTH_WAIT = r"waiting for \d+ object\(s\) to be healthy"


@pytest.fixture
def kubeconfig(request: pytest.FixtureRequest) -> Path:
    explicit = os.environ.get("STACKCTL_TEST_KUBECONFIG")
    if explicit:
        return Path(explicit)
    return Path(team_fixture(request, "sandbox").kubeconfig)


@pytest.fixture
def repo(tmp_path: Path, ns: str, kubeconfig: Path, git_env: Path,
         kustomize: Path) -> DeployRepo:
    return DeployRepo(tmp_path / "deploy", ns, kubeconfig,
                      cluster_yaml="apply:\n  timeout: 5m\n  stopTimeout: 60s\n")


REV1 = docs(deployment_yaml("web", "web-1"), configmap_yaml("a"))
REV2 = docs(deployment_yaml("web", "web-2", fail=True), configmap_yaml("a"),
            configmap_yaml("b"))


def image_of(kube: Kube, ns: str, name: str = "web") -> str:
    live = kube.get("apps/v1", "Deployment", ns, name)
    assert live is not None
    return str(live["spec"]["template"]["spec"]["containers"][0]["image"])


def lease_of(kube: Kube, ns: str) -> dict[str, Any] | None:
    try:
        return kube.request("GET", f"/apis/coordination.k8s.io/v1/namespaces/{ns}/leases/"
                                   f"{lease_name('dev')}")
    except Exception:
        return None


def deploy_rev1_then_start_rev2(repo: DeployRepo) -> Any:
    repo.write(REV1)
    repo.commit("rev1")
    first = repo.run("apply", "--cluster", "dev")
    assert first.code == 0, first.err
    repo.write(REV2)
    repo.commit("rev2")
    running = repo.start("apply", "--cluster", "dev")
    running.wait_for(HEALTH_WAIT)
    return running


@pytest.mark.parametrize("sig,code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_in_the_health_wait_rolls_back_releases_the_lease_and_exits_128_plus_it(
    api: Any, ns: str, repo: DeployRepo, sig: signal.Signals, code: int,
) -> None:
    kube = Kube(api)
    running = deploy_rev1_then_start_rev2(repo)
    running.signal(sig)
    done = running.finish()
    assert done.code == code, done.err
    message = done.paragraph
    assert f"the apply of revision 2 was stopped by {sig.name} while waiting for the " \
           "rollout" in message, message
    assert "It was rolled back to revision 1 (recorded as revision 3" in message
    assert "which is healthy" in message and "The apply lease is released" in message
    assert f"{sig.name} received: rolling back" in done.err
    # The cluster is at revision 1 again, and the records say so.
    assert image_of(kube, ns) == "web-1"
    assert kube.get("v1", "ConfigMap", ns, "b") is None
    assert [(r.revision, r.status) for r in revisions(api, ns, "dev")] == [
        (1, "superseded"), (2, "failed"), (3, "deployed")]
    assert "stopped by " + sig.name in revisions(api, ns, "dev")[1].description
    assert lease_of(kube, ns) is None
    again = repo.run("apply", "--cluster", "dev", "--dry-run")
    assert again.code == 0, again.err
    assert "~ Deployment.apps/web" in again.out and "+ ConfigMap/b" in again.out, again.out


def test_a_second_signal_skips_the_rest_of_the_rollback_and_the_next_command_converges(
    api: Any, ns: str, repo: DeployRepo,
) -> None:
    from gitops.sandbox import FAIL_LABEL

    kube = Kube(api)
    # Revision 1 also holds a Deployment that another writer breaks after it was deployed
    # (its pods never become ready again): the rollback's health wait then lasts until the
    # stop timeout, so the second signal is sure to arrive while the rollback runs.
    repo.write(docs(REV1, deployment_yaml("stuck", "stuck-1")))
    repo.commit("rev1")
    assert repo.run("apply", "--cluster", "dev").code == 0
    broken = {"metadata": {"labels": {FAIL_LABEL: "true"}}}
    kube.request("PATCH", f"/apis/apps/v1/namespaces/{ns}/deployments/stuck",
                 query={"fieldManager": "someone"},
                 body={"spec": {"template": broken}},
                 content_type="application/merge-patch+json")
    repo.write(docs(REV2, deployment_yaml("stuck", "stuck-1")))
    repo.commit("rev2")
    running = repo.start("apply", "--cluster", "dev")
    at = running.wait_for(HEALTH_WAIT)
    running.signal(signal.SIGINT)
    running.wait_for(r"SIGINT received: rolling back \(send it again to skip", after=at)
    running.signal(signal.SIGINT)
    done = running.finish()
    assert done.code == 130, done.err
    message = done.paragraph
    assert "Its rollback was stopped by a second SIGINT before it finished" in message, message
    assert "the cluster is partly at revision 2 (recorded failed)" in message
    revs = revisions(api, ns, "dev")
    assert [(r.revision, r.status) for r in revs] == [(1, "deployed"), (2, "failed")]
    assert "its rollback was stopped (SIGINT)" in revs[1].description
    assert lease_of(kube, ns) is None

    # The next command converges: `rollback` goes back to the deployed revision 1 and
    # prunes what revision 2 created.
    kube.request("PATCH", f"/apis/apps/v1/namespaces/{ns}/deployments/stuck",
                 query={"fieldManager": "someone"},
                 body={"spec": {"template": {"metadata": {"labels": {FAIL_LABEL: None}}}}},
                 content_type="application/merge-patch+json")
    back = repo.run("rollback", "--cluster", "dev")
    assert back.code == 0, back.err
    assert image_of(kube, ns) == "web-1"
    assert kube.get("v1", "ConfigMap", ns, "b") is None
    assert [(r.revision, r.status) for r in revisions(api, ns, "dev")][-1] == (3, "deployed")


def test_a_stopped_apply_waits_for_its_rollback_at_most_the_stop_timeout(
    api: Any, ns: str, tmp_path: Path, kubeconfig: Path, git_env: Path, kustomize: Path,
) -> None:
    from gitops.sandbox import FAIL_LABEL

    kube = Kube(api)
    repo = DeployRepo(tmp_path / "short", ns, kubeconfig,
                      cluster_yaml="apply:\n  timeout: 5m\n  stopTimeout: 2s\n")
    # Revision 1's Deployment `stuck` is broken by another writer after it was deployed:
    # the rollback's health wait cannot end healthy, so only the stop timeout ends it.
    repo.write(docs(REV1, deployment_yaml("stuck", "stuck-1")))
    repo.commit("rev1")
    assert repo.run("apply", "--cluster", "dev").code == 0
    kube.request("PATCH", f"/apis/apps/v1/namespaces/{ns}/deployments/stuck",
                 query={"fieldManager": "someone"},
                 body={"spec": {"template": {"metadata": {"labels": {FAIL_LABEL: "true"}}}}},
                 content_type="application/merge-patch+json")
    repo.write(docs(REV2, deployment_yaml("stuck", "stuck-1")))
    repo.commit("rev2")
    running = repo.start("apply", "--cluster", "dev")
    running.wait_for(HEALTH_WAIT)
    running.signal(signal.SIGTERM)
    done = running.finish()
    assert done.code == 143, done.err
    assert "its health was not confirmed within the stop timeout" in done.paragraph, \
        done.paragraph
    assert image_of(kube, ns) == "web-1"
    revs = revisions(api, ns, "dev")
    assert [(r.revision, r.status) for r in revs] == [
        (1, "superseded"), (2, "failed"), (3, "deployed")]
    assert revs[2].description.endswith("health not confirmed before exiting")
    assert lease_of(kube, ns) is None


CRD_GROUP = "signals.stackctl.example.com"


def crd_yaml(ns: str) -> str:
    return f"""\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {{name: gadgets.{ns}.{CRD_GROUP}}}
spec:
  group: {ns}.{CRD_GROUP}
  scope: Namespaced
  names: {{plural: gadgets, singular: gadget, kind: Gadget}}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema: {{type: object, x-kubernetes-preserve-unknown-fields: true}}
"""


def test_kill_9_leaves_a_pending_revision_whose_objects_the_next_apply_prunes(
    api: Any, ns: str, repo: DeployRepo,
) -> None:
    kube = Kube(api)
    crd_name = f"gadgets.{ns}.{CRD_GROUP}"
    gadget = f"apiVersion: {ns}.{CRD_GROUP}/v1\nkind: Gadget\nmetadata: {{name: g1}}\n" \
             "spec: {size: 1}\n"
    try:
        repo.write(REV1)
        repo.commit("rev1")
        assert repo.run("apply", "--cluster", "dev").code == 0
        repo.write(docs(REV2, deployment_yaml("extra", "extra-1"), crd_yaml(ns), gadget))
        repo.commit("rev2")
        running = repo.start("apply", "--cluster", "dev")
        running.wait_for(HEALTH_WAIT)
        running.signal(signal.SIGKILL)
        assert running.finish().code == -signal.SIGKILL
        assert [(r.revision, r.status) for r in revisions(api, ns, "dev")] == [
            (1, "deployed"), (2, "pending")]
        assert kube.get(f"{ns}.{CRD_GROUP}/v1", "Gadget", ns, "g1") is not None

        # `drift` shows what the killed apply left, custom resource included.
        drift = repo.run("drift", "--cluster", "dev")
        assert drift.code == 1, drift.err
        for left in ("ConfigMap/b", "Deployment.apps/extra", f"Gadget.{ns}.{CRD_GROUP}/g1"):
            assert f"? {left} -n {ns}: carries stackctl's ApplySet label" in drift.out, \
                drift.out
        assert "revision 2 is pending" in drift.out

        # Back to revision 1's content, committed anew. The lease is still fresh: refused.
        repo.write(REV1)
        repo.commit("back to rev1")
        refused = repo.run("apply", "--cluster", "dev")
        assert refused.code == 2
        assert "another apply is running" in refused.paragraph
        assert "its process on this machine is gone" in refused.paragraph

        # Once the lease is stale (its 60 s moved into the past here), a rerun on this
        # machine takes it over: its holder is provably gone.
        lease = lease_of(kube, ns)
        assert lease is not None
        past = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=2)).strftime(
            "%Y-%m-%dT%H:%M:%S.%fZ")
        lease["spec"]["renewTime"] = lease["spec"]["acquireTime"] = past
        kube.request("PUT", f"/apis/coordination.k8s.io/v1/namespaces/{ns}/leases/"
                            f"{lease_name('dev')}", body=lease)
        rerun = repo.run("apply", "--cluster", "dev")
        assert rerun.code == 0, rerun.err
        assert f"took over the stale lease held by {current_user()}@{socket.gethostname()}" \
            in rerun.out, rerun.out
        assert "revision 2 had been left pending" in rerun.out
        assert "revision 3 deployed" in rerun.out and "3 pruned" in rerun.out, rerun.out
        assert f"kept CustomResourceDefinition.apiextensions.k8s.io/{crd_name}: protected " \
               "kind" in rerun.out
        assert kube.get("v1", "ConfigMap", ns, "b") is None
        assert kube.get("apps/v1", "Deployment", ns, "extra") is None
        assert kube.get(f"{ns}.{CRD_GROUP}/v1", "Gadget", ns, "g1") is None
        assert image_of(kube, ns) == "web-1"
        assert [(r.revision, r.status) for r in revisions(api, ns, "dev")] == [
            (1, "superseded"), (2, "failed"), (3, "deployed")]
        clean = repo.run("drift", "--cluster", "dev")
        assert clean.code == 0, clean.out
    finally:
        kube.delete("apiextensions.k8s.io/v1", "CustomResourceDefinition", "", crd_name)
