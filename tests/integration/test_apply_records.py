"""Revisions, the ApplySet inventory, history and rollback --to, against the sandbox."""

from __future__ import annotations

import base64
import hashlib
import os
from typing import Any

import pytest

from gitops.apply import ApplyOptions, rollback_to
from gitops.cluster import ApplyPolicy
from gitops.inventory import CHUNK_BYTES, Records, parent_name, secret_name
from gitops.kube import Kube
from gitops.redact import Redactor
from tests.integration.apply_helpers import (
    api,
    apply,
    configmap,
    deployment,
    ns,
    revisions,
    target,
)

pytestmark = pytest.mark.integration
__all__ = ["api", "ns"]

OK = ApplyPolicy(timeout=60)


def run(api: Any, ns: str, objects: list[dict[str, Any]], **kw: Any) -> Any:
    return apply(api, ns, objects, policy=OK, **kw)


def kubectl_applyset_id(name: str, namespace: str, kind: str, group: str) -> str:
    """kubectl's ApplySet.ID() (staging/src/k8s.io/kubectl/pkg/cmd/apply/applyset.go),
    written out here independently of gitops.inventory."""
    digest = hashlib.sha256(f"{name}.{namespace}.{kind}.{group}".encode()).digest()
    return "applyset-" + base64.urlsafe_b64encode(digest).decode().rstrip("=") + "-v1"


def test_applyset_parent_and_members_read_the_way_kubectl_reads_an_applyset(
    api: Any, ns: str,
) -> None:
    kube = Kube(api)
    other = f"{ns}-b"
    kube.request("POST", "/api/v1/namespaces", body={
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": other}})
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": f"{ns}-reader"},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]}
    objects = [configmap("a", ns), deployment("web", other, replicas=1), role]
    try:
        assert run(api, ns, objects).ok

        # kubectl's fetchParent: tooling annotation of the form <tool>/<semver>, the id label
        # equal to the id computed from the parent's name, namespace, kind and group.
        parent = kube.get("v1", "Secret", ns, parent_name(ns))
        assert parent is not None
        labels, ann = parent["metadata"]["labels"], parent["metadata"]["annotations"]
        set_id = kubectl_applyset_id(parent_name(ns), ns, "Secret", "")
        assert labels["applyset.kubernetes.io/id"] == set_id
        tool, _, version = ann["applyset.kubernetes.io/tooling"].rpartition("/")
        assert tool == "stackctl" and version.startswith("v")
        # generateKindsAnnotation: sorted GroupKind strings (Kind.group, or Kind for core);
        # generateNamespacesAnnotation: sorted, the parent's own namespace left out.
        assert ann["applyset.kubernetes.io/contains-group-kinds"] == \
            "ClusterRole.rbac.authorization.k8s.io,ConfigMap,Deployment.apps"
        assert ann["applyset.kubernetes.io/additional-namespaces"] == other

        # kubectl's prune listing: each kind of the annotation, in the parent's namespace and
        # the additional ones (cluster-wide for cluster-scoped kinds), by the part-of label.
        selector = f"applyset.kubernetes.io/part-of={set_id}"
        found = set()
        for gk in ann["applyset.kubernetes.io/contains-group-kinds"].split(","):
            kind, _, group = gk.partition(".")
            version = {"": "v1", "apps": "apps/v1",
                       "rbac.authorization.k8s.io": "rbac.authorization.k8s.io/v1"}[group]
            info = kube.resource(version, kind)
            scopes = [ns, other] if info.namespaced else [""]
            for scope in scopes:
                for item in kube.list(version, kind, namespace=scope, label_selector=selector):
                    found.add((kind, item["metadata"].get("namespace", ""),
                               item["metadata"]["name"]))
        assert found == {("ConfigMap", ns, "a"), ("Deployment", other, "web"),
                         ("ClusterRole", "", f"{ns}-reader")}
    finally:
        kube.delete("v1", "Namespace", "", other)
        kube.delete("rbac.authorization.k8s.io/v1", "ClusterRole", "", f"{ns}-reader")


def test_a_render_beyond_one_object_limit_is_recorded_in_chunks_and_read_back(
    api: Any, ns: str,
) -> None:
    kube = Kube(api)
    # Base64 of random bytes compresses to 3/4 at best: 3 x 600 KiB of it is > 1 MiB of gzip.
    big = [configmap(f"blob-{i}", ns, payload=base64.b64encode(os.urandom(450 * 1024)).decode())
           for i in range(3)]
    objects = [*big, configmap("small", ns)]
    result = run(api, ns, objects, wait=False)
    assert result.ok, (result.rejections, result.failure)
    [rev] = revisions(api, ns)
    assert rev.chunks >= 2 and rev.object_count == 4
    sizes = []
    for i in range(rev.chunks):
        part = kube.get("v1", "Secret", ns, secret_name(ns, 1, i))
        assert part is not None
        sizes.append(len(base64.b64decode(part["data"]["manifests.json.gz"])))
    assert sum(sizes) > 1024 * 1024 and max(sizes) <= CHUNK_BYTES
    stored = Records(kube, cluster=ns, namespace=ns).manifests(1)
    assert [o["metadata"]["name"] for o in stored] == ["blob-0", "blob-1", "blob-2", "small"]
    assert stored[1]["data"]["payload"] == big[1]["data"]["payload"]

    # A rollback reads the chunks back and re-applies from them.
    assert run(api, ns, [*big[:2], configmap("small", ns, k="changed")], wait=False).ok
    back = rollback_to(target(api, ns), revision=1,
                       options=ApplyOptions(policy=OK, wait=False), redactor=Redactor())
    assert back.ok, back.failure
    assert kube.get("v1", "ConfigMap", ns, "blob-2") is not None
    live = kube.get("v1", "ConfigMap", ns, "small")
    assert live is not None and live["data"] == {"k": "v"}


def test_history_lists_revisions_and_rollback_to_goes_to_the_named_one(
    api: Any, ns: str,
) -> None:
    kube = Kube(api)
    for n in (1, 2, 3):
        assert run(api, ns, [configmap("a", ns, v=str(n))], commit=f"c{n}").ok
    back = rollback_to(target(api, ns), revision=1, options=ApplyOptions(policy=OK),
                       redactor=Redactor())
    assert back.ok and back.revision == 4
    live = kube.get("v1", "ConfigMap", ns, "a")
    assert live is not None and live["data"] == {"v": "1"}
    revs = revisions(api, ns)
    assert [(r.revision, r.status, r.commit, r.object_count) for r in revs] == [
        (1, "superseded", "c1", 1), (2, "superseded", "c2", 1), (3, "rolled-back", "c3", 1),
        (4, "deployed", "c1", 1)]
    assert revs[3].description == "rollback to revision 1"
    assert all(r.user and r.time.endswith("Z") for r in revs)
