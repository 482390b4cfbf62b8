"""The managedFields (fieldsV1) parser, and the comparison it steers, on managedFields
taken from a real API server (kube-apiserver 1.34, the sandbox)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gitops.drift import compare_object, managed_entries, parse_fields_v1
from gitops.drift.fields import Key, Value, format_path, parse_element
from gitops.redact import Redactor

# stackctl's entry for a Deployment, as kube-apiserver 1.34 wrote it after a server-side
# apply (ports keyed by containerPort and the defaulted protocol).
DEPLOYMENT_FIELDS: dict[str, Any] = {
    "f:metadata": {"f:labels": {"f:a": {}}},
    "f:spec": {
        "f:replicas": {},
        "f:selector": {},
        "f:template": {
            "f:metadata": {"f:labels": {"f:app": {}}},
            "f:spec": {"f:containers": {'k:{"name":"main"}': {
                ".": {}, "f:args": {}, "f:image": {}, "f:name": {},
                "f:env": {'k:{"name":"A"}': {".": {}, "f:name": {}, "f:value": {}}},
                "f:ports": {'k:{"containerPort":80,"protocol":"TCP"}': {
                    ".": {}, "f:containerPort": {}}},
            }}},
        },
    },
}
ROLE_FIELDS: dict[str, Any] = {"f:rules": {}}
FINALIZER_FIELDS: dict[str, Any] = {"f:metadata": {"f:finalizers": {
    ".": {}, 'v:"example.com/cleanup"': {}}}}


def test_parse_element_reads_every_kind_of_path_element() -> None:
    assert parse_element("f:spec") == "spec"
    assert parse_element('k:{"containerPort":80,"protocol":"TCP"}') == Key(
        (("containerPort", 80), ("protocol", "TCP")))
    assert parse_element('v:"get"') == Value('"get"')
    assert parse_element("i:3") == 3
    for bad in ("spec", "x:1", 'k:["a"]', "k:{not json"):
        with pytest.raises(ValueError):
            parse_element(bad)


def test_the_set_lists_leaves_and_keyed_items_with_their_fields() -> None:
    paths = {format_path(p) for p in parse_fields_v1(DEPLOYMENT_FIELDS).paths()}
    assert paths == {
        "metadata.labels.a", "spec.replicas", "spec.selector",
        "spec.template.metadata.labels.app",
        "spec.template.spec.containers[name=main]",
        "spec.template.spec.containers[name=main].args",
        "spec.template.spec.containers[name=main].image",
        "spec.template.spec.containers[name=main].name",
        "spec.template.spec.containers[name=main].env[name=A]",
        "spec.template.spec.containers[name=main].env[name=A].name",
        "spec.template.spec.containers[name=main].env[name=A].value",
        "spec.template.spec.containers[name=main].ports[containerPort=80,protocol=TCP]",
        "spec.template.spec.containers[name=main].ports[containerPort=80,protocol=TCP]"
        ".containerPort",
    }
    finalizers = [format_path(p) for p in parse_fields_v1(FINALIZER_FIELDS).paths()]
    assert finalizers == ["metadata.finalizers", "metadata.finalizers[example.com/cleanup]"]


def test_owns_covers_members_and_paths_under_an_atomic_leaf_only() -> None:
    fs = parse_fields_v1(DEPLOYMENT_FIELDS)
    main = Key((("name", "main"),))
    assert fs.owns(("spec", "replicas"))
    assert fs.owns(("spec", "template", "spec", "containers", main))
    assert fs.owns(("spec", "template", "spec", "containers", main, "image"))
    # `f:selector: {}` is atomic: everything under it is owned.
    assert fs.owns(("spec", "selector", "matchLabels", "app"))
    # Intermediate nodes without `.` are not members; unknown paths are not owned.
    assert not fs.owns(("spec",))
    assert not fs.owns(("spec", "template", "spec", "containers", main, "resources"))
    assert not fs.owns(("spec", "strategy"))
    assert not fs.owns(())


def test_list_types_come_from_the_children() -> None:
    fs = parse_fields_v1(DEPLOYMENT_FIELDS)
    containers = fs.node(("spec", "template", "spec", "containers"))
    assert containers is not None and containers.list_type() == "map"
    assert [str(k) for k in containers.item_keys()] == ["name=main"]
    main = containers.child(Key((("name", "main"),)))
    assert main is not None
    args = main.child("args")
    assert args is not None and args.list_type() == "atomic"
    finalizers = parse_fields_v1(FINALIZER_FIELDS).node(("metadata", "finalizers"))
    assert finalizers is not None and finalizers.list_type() == "set"


def test_a_key_matches_items_missing_a_defaulted_key_field_only_when_partial() -> None:
    port = Key.parse('{"containerPort":80,"protocol":"TCP"}')
    assert port.matches({"containerPort": 80, "protocol": "TCP", "name": "http"})
    assert not port.matches({"containerPort": 80})
    assert port.matches({"containerPort": 80}, partial=True)
    assert not port.matches({"containerPort": 80, "protocol": "UDP"}, partial=True)


def test_format_path_quotes_keys_that_are_not_plain_names() -> None:
    assert format_path(("metadata", "labels", "app.kubernetes.io/name")) == \
        'metadata.labels["app.kubernetes.io/name"]'
    assert format_path(("data", "app.conf")) == 'data["app.conf"]'
    assert format_path(("rules", 0, "verbs")) == "rules[0].verbs"
    assert format_path(("env", Key((("name", "A B"),)), "value")) == 'env["name=A B"].value'


def test_managed_entries_read_manager_operation_subresource_and_time() -> None:
    obj = {"metadata": {"managedFields": [
        {"manager": "stackctl", "operation": "Apply", "apiVersion": "apps/v1",
         "time": "2026-12-01T13:16:28Z", "fieldsType": "FieldsV1",
         "fieldsV1": DEPLOYMENT_FIELDS},
        {"manager": "kube-controller-manager", "operation": "Update", "apiVersion": "apps/v1",
         "time": "2026-12-01T13:16:29Z", "fieldsType": "FieldsV1", "subresource": "status",
         "fieldsV1": {"f:status": {"f:replicas": {}}}},
        {"manager": "odd", "operation": "Update", "fieldsType": "FieldsV2", "fieldsV1": {}},
    ]}}
    entries = managed_entries(obj)
    assert [e.describe() for e in entries] == [
        "stackctl (Apply)", "kube-controller-manager (Update, status)"]
    assert entries[1].fields.owns(("status", "replicas"))


def deployment(**spec: Any) -> dict[str, Any]:
    container = {"name": "main", "image": "x:1", "args": ["a", "b"],
                 "env": [{"name": "A", "value": "1"}], "ports": [{"containerPort": 80}]}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "ns", "labels": {"a": "b"}},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [container]}}, **spec}}


def live_of(desired: dict[str, Any], *managers: tuple[str, str, dict[str, Any]]
            ) -> dict[str, Any]:
    """`desired` as the server stores it: defaults filled in, and these managedFields."""
    live = json.loads(json.dumps(desired))
    live["spec"]["revisionHistoryLimit"] = 10
    c = live["spec"]["template"]["spec"]["containers"][0]
    c["imagePullPolicy"] = "IfNotPresent"
    c["ports"][0]["protocol"] = "TCP"
    live["metadata"]["managedFields"] = [
        {"manager": m, "operation": op, "time": "t", "fieldsType": "FieldsV1", "fieldsV1": f}
        for m, op, f in managers]
    return live


def test_an_object_as_applied_with_server_defaults_has_no_drift() -> None:
    desired = deployment()
    live = live_of(desired, ("stackctl", "Apply", DEPLOYMENT_FIELDS))
    assert compare_object(desired, live, redactor=Redactor()) == ()


def test_a_keyed_item_is_matched_by_its_key_wherever_it_moved() -> None:
    desired = deployment()
    live = live_of(desired, ("stackctl", "Apply", DEPLOYMENT_FIELDS))
    containers = live["spec"]["template"]["spec"]["containers"]
    containers.insert(0, {"name": "sidecar", "image": "proxy:1"})
    containers[1]["env"].insert(0, {"name": "INJECTED", "value": "x"})
    assert compare_object(desired, live, redactor=Redactor()) == ()


def test_changes_and_removals_name_the_manager_that_owns_the_field_now() -> None:
    desired = deployment()
    mine = json.loads(json.dumps(DEPLOYMENT_FIELDS))
    del mine["f:spec"]["f:replicas"]
    c = mine["f:spec"]["f:template"]["f:spec"]["f:containers"]['k:{"name":"main"}']
    del c["f:env"]
    live = live_of(desired, ("stackctl", "Apply", mine),
                   ("kubectl-edit", "Update", {"f:spec": {"f:replicas": {}}}))
    live["spec"]["replicas"] = 5
    live["spec"]["template"]["spec"]["containers"][0]["env"] = []
    drift = compare_object(desired, live, redactor=Redactor())
    got = {(f.path, f.action, json.dumps(f.desired), json.dumps(f.live),
            tuple(m.name for m in f.changed_by), f.owned_by_stackctl) for f in drift}
    assert got == {
        ("spec.replicas", "changed", "2", "5", ("kubectl-edit",), False),
        ("spec.template.spec.containers[name=main].env[name=A]", "removed",
         '{"name": "A", "value": "1"}', "null", (), False),
    }


def test_an_atomic_list_compares_whole_and_a_set_list_by_value() -> None:
    desired = deployment()
    desired["metadata"]["finalizers"] = ["example.com/cleanup"]
    fields = json.loads(json.dumps(DEPLOYMENT_FIELDS))
    fields["f:metadata"].update(FINALIZER_FIELDS["f:metadata"])
    live = live_of(desired, ("stackctl", "Apply", fields))
    live["metadata"]["finalizers"] = ["other.io/x"]
    live["spec"]["template"]["spec"]["containers"][0]["args"] = ["a"]
    paths = {(f.path, f.action) for f in compare_object(desired, live, redactor=Redactor())}
    assert paths == {("metadata.finalizers[example.com/cleanup]", "removed"),
                     ("spec.template.spec.containers[name=main].args", "changed")}


def test_quantities_in_another_form_and_dropped_empty_values_are_not_drift() -> None:
    desired = deployment()
    c = desired["spec"]["template"]["spec"]["containers"][0]
    c["resources"] = {"limits": {"cpu": "1000m", "memory": "1024Mi"}}
    c["securityContext"] = {}
    fields = json.loads(json.dumps(DEPLOYMENT_FIELDS))
    fields["f:spec"]["f:template"]["f:spec"]["f:containers"]['k:{"name":"main"}'][
        "f:resources"] = {"f:limits": {"f:cpu": {}, "f:memory": {}}}
    live = live_of(desired, ("stackctl", "Apply", fields))
    lc = live["spec"]["template"]["spec"]["containers"][0]
    lc["resources"]["limits"] = {"cpu": "1", "memory": "1Gi"}
    del lc["securityContext"]
    assert compare_object(desired, live, redactor=Redactor()) == ()


def test_a_secret_applied_as_string_data_compares_with_the_stored_data_redacted() -> None:
    desired = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "n"},
               "stringData": {"password": "hunter2-old"}}
    live = {"apiVersion": "v1", "kind": "Secret", "metadata": {
        "name": "s", "namespace": "n", "managedFields": [
            {"manager": "stackctl", "operation": "Apply", "fieldsType": "FieldsV1",
             "fieldsV1": {"f:stringData": {"f:password": {}}}},
            {"manager": "kubectl-edit", "operation": "Update", "fieldsType": "FieldsV1",
             "fieldsV1": {"f:data": {"f:password": {}}}}]},
        "data": {"password": "aHVudGVyMi1uZXc="}}  # hunter2-new
    [f] = compare_object(desired, live, redactor=Redactor())
    assert (f.path, f.owned_by_stackctl, [m.name for m in f.changed_by]) == (
        "data.password", True, ["kubectl-edit"])
    assert f.desired.startswith("<redacted sha256:") and f.live.startswith("<redacted")
    assert f.desired != f.live
    same = dict(live, data={"password": "aHVudGVyMi1vbGQ="})
    assert compare_object(desired, same, redactor=Redactor()) == ()
