"""The table of fields that cannot change on a live object (gitops.immutable), and how a
plan from git alone shows them."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from gitops.diff import object_change
from gitops.immutable import Recreate, immutable_changes, is_refusal, recreate_of
from gitops.plan.lines import flag_lines, header
from gitops.redact import Redactor
from gitops.resource import ResourceId


def obj(api_version: str, kind: str, name: str = "x", ns: str = "ml",
        **top: Any) -> dict[str, Any]:
    meta = {"name": name, **({"namespace": ns} if ns else {})}
    return {"apiVersion": api_version, "kind": kind, "metadata": meta, **top}


def changed(before: dict[str, Any], edit: Any) -> tuple[str, ...]:
    after = copy.deepcopy(before)
    edit(after)
    return immutable_changes(ResourceId.of(before), before, after)


DEPLOY = obj("apps/v1", "Deployment", spec={
    "replicas": 1, "selector": {"matchLabels": {"app": "web"}},
    "template": {"metadata": {"labels": {"app": "web"}},
                 "spec": {"containers": [{"name": "m", "image": "a"}]}}})
STS = obj("apps/v1", "StatefulSet", spec={
    "serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
    "template": {"metadata": {"labels": {"app": "db"}}},
    "volumeClaimTemplates": [{"metadata": {"name": "data"},
                              "spec": {"resources": {"requests": {"storage": "1Gi"}}}}]})
JOB = obj("batch/v1", "Job", spec={"template": {"spec": {"containers": [
    {"name": "m", "image": "a"}]}}})
SVC = obj("v1", "Service", spec={"ports": [{"port": 80}]})
BINDING = obj("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", ns="",
              roleRef={"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                       "name": "view"})
PVC = obj("v1", "PersistentVolumeClaim", spec={
    "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}})
SC = obj("storage.k8s.io/v1", "StorageClass", ns="", provisioner="a.io",
         parameters={"type": "gp2"})
CRD = obj("apiextensions.k8s.io/v1", "CustomResourceDefinition", ns="",
          spec={"group": "x.dev", "scope": "Namespaced", "names": {"kind": "W"}})


@pytest.mark.parametrize(("before", "edit", "fields"), [
    (DEPLOY, lambda o: o["spec"]["selector"]["matchLabels"].update(tier="a"),
     ("spec.selector",)),
    (DEPLOY, lambda o: o["spec"].update(replicas=3), ()),
    (DEPLOY, lambda o: o["spec"]["template"]["spec"]["containers"][0].update(image="b"), ()),
    (STS, lambda o: o["spec"].update(serviceName="db2", podManagementPolicy="Parallel"),
     ("spec.serviceName", "spec.podManagementPolicy")),
    (STS, lambda o: o["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]
     .update(storage="2Gi"), ("spec.volumeClaimTemplates",)),
    (STS, lambda o: o["spec"]["template"]["metadata"]["labels"].update(v="2"), ()),
    (JOB, lambda o: o["spec"]["template"]["spec"]["containers"][0].update(image="b"),
     ("spec.template",)),
    (SVC, lambda o: o["spec"].update(clusterIP="10.96.0.20"), ("spec.clusterIP",)),
    (SVC, lambda o: o["spec"].update(type="NodePort"), ()),
    (obj("v1", "Service", spec={"clusterIP": "None"}), lambda o: o["spec"].pop("clusterIP"),
     ("spec.clusterIP",)),
    (BINDING, lambda o: o["roleRef"].update(name="edit"), ("roleRef",)),
    (BINDING, lambda o: o.update(subjects=[{"kind": "User", "name": "u"}]), ()),
    (PVC, lambda o: o["spec"]["resources"]["requests"].update(storage="5Gi"), ()),
    (PVC, lambda o: o["spec"].update(storageClassName="fast"), ("spec.storageClassName",)),
    (SC, lambda o: o["parameters"].update(type="gp3"), ("parameters",)),
    (SC, lambda o: o.update(allowVolumeExpansion=True), ()),
    (CRD, lambda o: o["spec"].update(scope="Cluster"), ("spec.scope",)),
])
def test_known_immutable_fields_are_found_and_mutable_ones_are_not(
    before: dict[str, Any], edit: Any, fields: tuple[str, ...],
) -> None:
    assert changed(before, edit) == fields


def test_each_kind_has_its_way_of_being_recreated() -> None:
    of = {k: recreate_of(ResourceId.of(o)) for k, o in
          [("deploy", DEPLOY), ("sts", STS), ("job", JOB), ("pvc", PVC), ("crd", CRD),
           ("sc", SC), ("cm", obj("v1", "ConfigMap"))]}
    assert of == {"deploy": Recreate.FOREGROUND, "sts": Recreate.ORPHAN,
                  "job": Recreate.FOREGROUND, "pvc": Recreate.REFUSE, "crd": Recreate.REFUSE,
                  "sc": Recreate.FOREGROUND, "cm": None}


@pytest.mark.parametrize("message", [
    'Invalid value: {"matchLabels":{"app":"web"}}: field is immutable',
    'Invalid value: {"APIGroup":"rbac.authorization.k8s.io"}: cannot change roleRef',
    'Invalid value: ["10.96.100.11"]: may not change once set',
    "Forbidden: updates to statefulset spec for fields other than 'replicas' are forbidden",
    "Forbidden: updates to parameters are forbidden.",
    "Forbidden: spec is immutable after creation except resources.requests",
    "Invalid value: \"string\": Value is immutable",
])
def test_the_api_servers_refusals_to_change_a_field_in_place_are_recognised(
    message: str,
) -> None:
    assert is_refusal(message)


def test_an_ordinary_invalid_value_is_not_a_refusal_to_change_in_place() -> None:
    assert not is_refusal("Invalid value: -3: must be greater than or equal to 0")


def test_a_plan_from_git_marks_a_replacement_and_a_refusal() -> None:
    r = Redactor()
    after = copy.deepcopy(DEPLOY)
    after["spec"]["selector"]["matchLabels"]["tier"] = "a"
    dep = object_change(ResourceId.of(DEPLOY), DEPLOY, after, redactor=r)
    crd_after = copy.deepcopy(CRD)
    crd_after["spec"]["scope"] = "Cluster"
    crd = object_change(ResourceId.of(CRD), CRD, crd_after, redactor=r, fields=False)
    assert dep is not None and crd is not None
    assert header(dep) == "~ Deployment.apps/x -n ml (replace: spec.selector)"
    assert header(crd) == ("~ CustomResourceDefinition.apiextensions.k8s.io/x "
                           "(cannot change: spec.scope)")
    assert flag_lines((dep, crd)) == [
        "Deployment.apps/x -n ml: replaced on apply (deleted and re-created): spec.selector "
        "cannot change on a live object",
        "CustomResourceDefinition.apiextensions.k8s.io/x: spec.scope cannot change on a live "
        "object, and re-creating it would destroy data: apply refuses it (docs/apply.md)",
    ]
