"""Custom resources at a version their CRD regains in the same apply, on real Istio CRDs.

Kubeflow v1.8.1 ships Istio 1.17's CRDs (networking.istio.io v1alpha3 and v1beta1),
v1.11.0 Istio's with v1 added and stored. `rollback --to` v1.8.1 migrates storage back and
removes v1; the apply forward adds it again, and its Sidecars are written at v1. The API
server lists v1 in discovery before its CRD handler drops the serving information it built
for the old spec (served.py, `routed`), so a request at v1 answers "404 page not found" for
seconds under load: the live Kubeflow walk's step 9 failed so (docs/kubeflow-live.md).
"""

from __future__ import annotations

import contextlib
import tarfile
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from gitops.apply import ApplyOptions, rollback_to
from gitops.apply.report import result_lines
from gitops.cluster import ApplyPolicy
from gitops.errors import ClusterError
from gitops.kube import Kube
from gitops.redact import Redactor
from tests.fixtures.kubeflow import require_kubeflow
from tests.integration.apply_helpers import api, apply, ns, target

pytestmark = [pytest.mark.integration, pytest.mark.kubeflow, pytest.mark.slow]
__all__ = ["api", "ns"]

POLICY = ApplyPolicy(timeout=240.0)
CRDS = {"v1.8.1": "common/istio-1-17/istio-crds/base/crd.yaml",
        "v1.11.0": "common/istio/istio-crds/base/crd.yaml"}


def istio_crds(version: str) -> list[dict[str, Any]]:
    """The Istio CRDs of a Kubeflow release, read from its archive in ../shared."""
    archive = require_kubeflow(version)
    with tarfile.open(archive) as tf:
        member = next(m for m in tf.getmembers() if m.name.endswith(CRDS[version]))
        f = tf.extractfile(member)
        assert f is not None
        docs = [d for d in yaml.safe_load_all(f.read()) if d]
    return [d for d in docs if d.get("kind") == "CustomResourceDefinition"]


def sidecars(ns: str, version: str) -> list[dict[str, Any]]:
    return [{"apiVersion": f"networking.istio.io/{version}", "kind": "Sidecar",
             "metadata": {"name": name, "namespace": ns},
             "spec": {"egress": [{"hosts": ["./*", "istio-system/*"]}]}}
            for name in ("default", "ml-pipeline-ui-exception", "notebook-exception")]


@pytest.fixture
def crd_cleanup(api: Any) -> Iterator[list[str]]:
    """CRDs are cluster-wide and protected from prune: the names the test installed are
    deleted afterwards, so the session's sandbox is left as it was."""
    names: list[str] = []
    yield names
    kube = Kube.of(api)
    for name in names:
        with contextlib.suppress(ClusterError):
            kube.delete("apiextensions.k8s.io/v1", "CustomResourceDefinition", "", name)


@pytest.fixture
def watchers(api: Any) -> Iterator[None]:
    """Readers of every Istio kind at every version, as the garbage collector, Argo CD's
    cluster cache or kube-state-metrics keep on a real cluster: each read of a kind whose
    CRD changed builds its serving information again, under the lock the CRD handler's
    update callback waits on. (On the live walk the controller-manager and 61 changing CRDs
    made this load; here four threads do.)"""
    kube = Kube.of(api)
    stop = threading.Event()
    kinds = {(c["spec"]["group"], v["name"], c["spec"]["names"]["plural"])
             for version in CRDS for c in istio_crds(version) for v in c["spec"]["versions"]}

    def read(part: list[tuple[str, str, str]]) -> None:
        while not stop.is_set():
            for group, version, plural in part:
                with contextlib.suppress(ClusterError):  # not served (yet, or any more)
                    kube.request("GET", f"/apis/{group}/{version}/{plural}",
                                 query={"limit": "1"})

    ordered = sorted(kinds)
    threads = [threading.Thread(target=read, args=(ordered[i::4],), daemon=True)
               for i in range(4)]
    for t in threads:
        t.start()
    yield
    stop.set()
    for t in threads:
        t.join(timeout=30)


@pytest.mark.timeout(900)
def test_custom_resources_at_a_version_their_crd_regains_apply_after_a_rollback(
    api: Any, ns: str, crd_cleanup: list[str], watchers: None,
) -> None:
    old, new = istio_crds("v1.8.1"), istio_crds("v1.11.0")
    if any(Kube.of(api).get("apiextensions.k8s.io/v1", "CustomResourceDefinition", "",
                            c["metadata"]["name"]) for c in new):
        pytest.skip("Istio's CRDs are already installed on this cluster (not the test's own)")
    crd_cleanup += [c["metadata"]["name"] for c in new]
    first = apply(api, ns, [*old, *sidecars(ns, "v1alpha3")], policy=POLICY)
    assert first.ok, result_lines(first)
    forward = [*new, *sidecars(ns, "v1")]
    second = apply(api, ns, forward, policy=POLICY)
    assert second.ok, result_lines(second)

    back = rollback_to(target(api, ns), revision=first.revision,
                       options=ApplyOptions(policy=POLICY), redactor=Redactor())
    assert back.ok, result_lines(back)
    crd = Kube.of(api).get("apiextensions.k8s.io/v1", "CustomResourceDefinition", "",
                           "sidecars.networking.istio.io")
    assert crd is not None
    assert [v["name"] for v in crd["spec"]["versions"]] == ["v1alpha3", "v1beta1"]

    again = apply(api, ns, forward, policy=POLICY)
    assert again.ok, result_lines(again)
    live = Kube.of(api).get("networking.istio.io/v1", "Sidecar", ns, "default")
    assert live is not None and live["spec"]["egress"][0]["hosts"] == ["./*", "istio-system/*"]
