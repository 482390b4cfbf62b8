"""Real Kubeflow upgrades whose immutable fields change, applied from the ../shared renders
to the sandbox with no hand step: v1.3.0 -> v1.4.0 changes the `spec.selector` of 19
Deployments and StatefulSets (cert-manager's three among them), v1.9.1 -> v1.10.2 the
`roleRef` of ClusterRoleBinding/meta-controller-cluster-role-binding (Kubeflow's upgrade
notes tell users to delete both by hand).

What is applied: cert-manager whole, and every workload whose selector changes with the
Namespace, ServiceAccount and claims its pods need to be created and scheduled; not the
admission webhooks nor the APIService: the sandbox's pods (kwok) run no process, so a
webhook would refuse every request it intercepts, and an APIService without a backend
makes discovery fail for every test sharing the sandbox; nor v1.4.0's ClusterIssuer, written
at cert-manager.io/v1alpha2, which the API server converts to v1 through that webhook.

Kubeflow v1.3.0 predates Kubernetes 1.22, which stopped serving the v1beta1 APIs of CRDs and
RBAC (the sandbox runs 1.34): its cert-manager CRDs are left out (v1.4.0's, at v1, are
created by the upgrade), and its RBAC objects are sent at rbac.authorization.k8s.io/v1, the
same schema, as a cluster upgraded from 1.21 serves them."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest

from gitops.apply import Action, ApplyOptions, Outcome, rollback_to
from gitops.cluster import ApplyPolicy
from gitops.errors import ClusterError
from gitops.immutable import immutable_changes
from gitops.kube import Kube
from gitops.redact import Redactor
from gitops.render import render_path
from gitops.resource import ResourceId
from tests.integration.apply_helpers import api, apply, dry_run, ns, revisions, target

pytestmark = [pytest.mark.integration, pytest.mark.kubeflow, pytest.mark.slow]
__all__ = ["api", "ns"]  # fixtures

OK = ApplyPolicy(timeout=300)
Obj = dict[str, Any]
NO_SERVER = {"APIService", "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"}
WORKLOADS = {"Deployment", "StatefulSet"}
NEEDS_WEBHOOK = {"ClusterIssuer", "Issuer", "Certificate"}
CRD_V1BETA1 = "apiextensions.k8s.io/v1beta1"
RBAC_V1BETA1, RBAC_V1 = "rbac.authorization.k8s.io/v1beta1", "rbac.authorization.k8s.io/v1"
# Measured on the renders (`example`, kustomize v5.8.2): the selectors v1.4.0 changes.
SELECTOR_CHANGES = {
    ("cert-manager", "cert-manager"), ("cert-manager", "cert-manager-cainjector"),
    ("cert-manager", "cert-manager-webhook"),
    ("knative-eventing", "eventing-controller"), ("knative-eventing", "eventing-webhook"),
    ("knative-eventing", "imc-controller"), ("knative-eventing", "imc-dispatcher"),
    ("knative-serving", "activator"), ("knative-serving", "autoscaler"),
    ("knative-serving", "controller"), ("knative-serving", "istio-webhook"),
    ("knative-serving", "networking-istio"), ("knative-serving", "webhook"),
    ("kubeflow", "katib-controller"), ("kubeflow", "katib-db-manager"),
    ("kubeflow", "katib-mysql"), ("kubeflow", "katib-ui"),
    ("kubeflow", "tensorboard-controller-controller-manager"),
    ("kubeflow", "kfserving-controller-manager"),
}


def rendered(tree: Path) -> dict[ResourceId, Obj]:
    return {o.id: o.body for o in render_path(tree / "example", name="kubeflow").objects}


def _cert_manager(rid: ResourceId) -> bool:
    return rid.namespace == "cert-manager" or "cert-manager" in rid.name or \
        rid.group.endswith("cert-manager.io")


def _needs(workloads: Iterable[Obj]) -> set[tuple[str, str, str]]:
    """(kind, namespace, name) of the ServiceAccounts and claims the workloads' pods use."""
    out: set[tuple[str, str, str]] = set()
    for w in workloads:
        ns, pod = w["metadata"]["namespace"], w["spec"]["template"]["spec"]
        out.add(("ServiceAccount", ns, pod.get("serviceAccountName") or "default"))
        for v in pod.get("volumes") or []:
            if "persistentVolumeClaim" in v:
                out.add(("PersistentVolumeClaim", ns, v["persistentVolumeClaim"]["claimName"]))
    return out


def subset(objs: dict[ResourceId, Obj], workloads: set[ResourceId]) -> list[Obj]:
    """cert-manager and `workloads`, with what their pods need; in render order."""
    picked = [objs[r] for r in workloads if r in objs]
    needs = _needs(picked)
    spaces = {r.namespace for r in workloads}
    return [{**o, "apiVersion": RBAC_V1} if o["apiVersion"] == RBAC_V1BETA1 else o
            for r, o in objs.items()
            if r.kind not in NO_SERVER | NEEDS_WEBHOOK and o["apiVersion"] != CRD_V1BETA1 and (
                _cert_manager(r) or r in workloads or (r.kind, r.namespace, r.name) in needs
                or (r.kind == "Namespace" and r.name in spaces))]


def live(kube: Kube, rid: ResourceId) -> Obj:
    got = kube.get(f"{rid.group}/v1", rid.kind, rid.namespace, rid.name)
    assert got is not None, rid
    return got


def selector(kube: Kube, rid: ResourceId) -> Obj:
    return dict(live(kube, rid)["spec"]["selector"]["matchLabels"])


def _clean(kube: Kube, objs: Iterable[Obj]) -> None:
    """What the test made outside its own namespace: cluster-scoped objects and the
    Kubeflow namespaces (the next session's sandbox is a new one; a developer's is not)."""
    for o in objs:
        rid = ResourceId.of(o)
        if rid.kind == "Namespace" or (not rid.namespace and kube.knows(o["apiVersion"],
                                                                        rid.kind)):
            # Best effort: the assertions above already said what failed.
            with contextlib.suppress(ClusterError):
                kube.delete(o["apiVersion"], rid.kind, "", rid.name)


def test_kubeflow_1_3_to_1_4_selector_changes_are_replaced_with_no_hand_step(
    api: Any, ns: str, kubeflow_tree: Callable[[str], Path], kustomize: Path,
) -> None:
    kube = Kube(api)
    old, new = rendered(kubeflow_tree("v1.3.0")), rendered(kubeflow_tree("v1.4.0"))
    changing = {r for r in new if r in old and r.kind in WORKLOADS
                and immutable_changes(r, old[r], new[r]) == ("spec.selector",)}
    assert {(r.namespace, r.name) for r in changing} == SELECTOR_CHANGES
    first, second = subset(old, changing), subset(new, changing)
    try:
        applied = apply(api, ns, first, policy=OK, commit="v1.3.0")
        assert applied.ok, [r.describe() for r in applied.rejections] or applied.failure
        uids = {r: live(kube, r)["metadata"]["uid"] for r in changing}

        # The dry run shows each of them as a replacement forced by its selector.
        cs = dry_run(api, ns, second, policy=OK)
        assert cs.ok, cs.rejections
        assert {c.id for c in cs.changes if c.action is Action.REPLACE} == changing
        assert all(cs.by_id()[r].note == "spec.selector cannot change on a live object"
                   for r in changing)

        upgraded = apply(api, ns, second, policy=OK, commit="v1.4.0")
        assert upgraded.ok, (upgraded.rejections, upgraded.failure)
        outcomes = {o.id: o.outcome for o in upgraded.objects}
        assert {r for r, o in outcomes.items() if o is Outcome.REPLACED} == changing
        for r in changing:
            assert selector(kube, r) == new[r]["spec"]["selector"]["matchLabels"]
            now = live(kube, r)
            assert now["metadata"]["uid"] != uids[r]
            assert now["status"].get("readyReplicas") == now["spec"]["replicas"], r
        assert set(revisions(api, ns)[-1].replaced) == {str(r) for r in changing}

        # Back to v1.3.0: kfserving's StatefulSet would get back a selector its v1.4.0 pod
        # does not match (v1.4.0 dropped two of its labels); re-created, it would leave that
        # pod outside it for good, holding the name its own pod needs. Refused, with the way
        # forward, and nothing changes.
        back = rollback_to(target(api, ns), revision=1, options=ApplyOptions(policy=OK),
                           redactor=Redactor())
        [refused] = back.rejections
        assert refused.id == ResourceId("apps", "StatefulSet", "kubeflow",
                                        "kfserving-controller-manager")
        assert "does not match the labels of its pod(s) kfserving-controller-manager-0" \
            in refused.message and "two steps" in (refused.hint or "")
        for r in changing:
            assert selector(kube, r) == new[r]["spec"]["selector"]["matchLabels"]
        assert len(revisions(api, ns)) == 2
    finally:
        _clean(kube, [*first, *second])


def test_kubeflow_1_9_1_to_1_10_2_cluster_role_binding_role_ref_is_replaced(
    api: Any, ns: str, kubeflow_tree: Callable[[str], Path], kustomize: Path,
) -> None:
    kube = Kube(api)
    rid = ResourceId("rbac.authorization.k8s.io", "ClusterRoleBinding", "",
                     "meta-controller-cluster-role-binding")
    old, new = rendered(kubeflow_tree("v1.9.1")), rendered(kubeflow_tree("v1.10.2"))
    assert immutable_changes(rid, old[rid], new[rid]) == ("roleRef",)

    def part(objs: dict[ResourceId, Obj]) -> list[Obj]:
        """The binding, the ClusterRole it names, the ServiceAccount it binds."""
        b = objs[rid]
        want = {("ClusterRole", "", b["roleRef"]["name"])} | {
            (s["kind"], s.get("namespace", ""), s["name"]) for s in b["subjects"]}
        return [o for r, o in objs.items()
                if r == rid or (r.kind, r.namespace, r.name) in want
                or (r.kind, r.name) == ("Namespace", "kubeflow")]

    first, second = part(old), part(new)
    try:
        assert apply(api, ns, first, policy=OK, commit="v1.9.1").ok
        upgraded = apply(api, ns, second, policy=OK, commit="v1.10.2")
        assert upgraded.ok, (upgraded.rejections, upgraded.failure)
        assert {o.id: o.outcome for o in upgraded.objects}[rid] is Outcome.REPLACED
        assert live(kube, rid)["roleRef"]["name"] == "kubeflow-metacontroller"
        assert revisions(api, ns)[-1].replaced == (str(rid),)
    finally:
        _clean(kube, [*first, *second])
