"""The pure parts of a CRD storage migration (gitops.apply.migrate): the transitional CRD,
the field managers' entries moved off a retired version, discovery's storage hash. The
migration itself runs on the sandbox: tests/integration/test_apply_migrate.py."""

from __future__ import annotations

from typing import Any

from gitops.apply.migrate import Migration, relabelled, storage_version_hash, transitional
from gitops.resource import ResourceId

Obj = dict[str, Any]
SCHEMA = {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}


def crd(*versions: tuple[str, bool, bool]) -> Obj:
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.ex.test"},
            "spec": {"group": "ex.test", "scope": "Namespaced",
                     "names": {"plural": "widgets", "kind": "Widget"},
                     "versions": [{"name": n, "served": s, "storage": st, "schema": SCHEMA}
                                  for n, s, st in versions]}}


def migration(*retired: str) -> Migration:
    new = crd(("v1beta1", True, True))
    return Migration(ResourceId.of(new), "ex.test", "Widget", retired, "v1beta1", new, 1)


def test_the_transitional_crd_keeps_the_retired_version_unserved_with_its_schema() -> None:
    live = crd(("v1alpha1", True, True))
    live["spec"]["versions"][0].update(deprecated=True, schema={"openAPIV3Schema": {
        "type": "object", "properties": {"size": {"type": "integer"}}}})
    new = crd(("v1beta1", True, True))
    out = transitional(new, live, ("v1alpha1",))
    assert [(v["name"], v["served"], v["storage"]) for v in out["spec"]["versions"]] == [
        ("v1beta1", True, True), ("v1alpha1", False, False)]
    kept = out["spec"]["versions"][1]
    assert kept["schema"] == live["spec"]["versions"][0]["schema"]
    assert "deprecated" not in kept
    assert [v["name"] for v in new["spec"]["versions"]] == ["v1beta1"]  # not modified


def test_a_retired_version_the_live_crd_no_longer_lists_gets_a_schema_keeping_all() -> None:
    out = transitional(crd(("v1", True, True)), crd(("v1beta1", True, True)), ("v1alpha1",))
    assert out["spec"]["versions"][1] == {"name": "v1alpha1", "served": False,
                                          "storage": False, "schema": SCHEMA}


def test_field_manager_entries_at_a_retired_version_move_to_the_storage_version() -> None:
    item = {"apiVersion": "ex.test/v1beta1", "kind": "Widget",
            "metadata": {"name": "w", "managedFields": [
                {"manager": "stackctl", "operation": "Apply", "apiVersion": "ex.test/v1alpha1",
                 "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:size": {}}}},
                {"manager": "ctl", "operation": "Update", "apiVersion": "ex.test/v1beta1",
                 "fieldsType": "FieldsV1", "fieldsV1": {"f:status": {}}},
                {"manager": "old", "operation": "Update", "apiVersion": "ex.test/v1alpha2",
                 "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {}}}]}}
    out = relabelled(item, migration("v1alpha1"))
    assert [e["apiVersion"] for e in out["metadata"]["managedFields"]] == [
        "ex.test/v1beta1", "ex.test/v1beta1", "ex.test/v1alpha2"]
    assert out["metadata"]["managedFields"][0]["fieldsV1"] == {"f:spec": {"f:size": {}}}
    assert item["metadata"]["managedFields"][0]["apiVersion"] == "ex.test/v1alpha1"
    untouched = {"apiVersion": "ex.test/v1beta1", "kind": "Widget", "metadata": {"name": "w"}}
    assert relabelled(untouched, migration("v1alpha1")) is untouched


def test_the_storage_version_hash_is_the_one_discovery_gives() -> None:
    # Read from the sandbox's discovery (kube-apiserver v1.34.4) for a CRD of that group.
    assert storage_version_hash("exp1796616981.test", "v1beta1", "Widget") == "SgjB/Nq9z6c="
