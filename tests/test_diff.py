"""Object-level and field-level diff of two object sets."""

from __future__ import annotations

import copy
from typing import Any

from gitops.diff import diff_object_sets, field_changes, format_path
from gitops.redact import Redactor
from gitops.resource import ResourceId

R = Redactor(salt=b"t")


def deployment(name: str = "web", image: str = "reg/web:1.0", replicas: int = 1,
               extra: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": "ml", "labels": {"app": name}},
        "spec": {"replicas": replicas, "template": {"spec": {"containers": [
            {"name": "sidecar", "image": "reg/proxy:1"},
            {"name": "manager", "image": image, "args": ["--a", "--b"],
             "env": [{"name": "LOG", "value": "info"}],
             "volumeMounts": [{"name": "data", "mountPath": "/data"},
                              {"name": "data", "mountPath": "/cache", "subPath": "c"}]},
            *(extra or []),
        ]}}},
    }


def crd(versions: list[tuple[str, bool]]) -> dict[str, Any]:
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "models.ml.example.com"},
            "spec": {"group": "ml.example.com", "versions": [
                {"name": n, "served": True, "storage": s} for n, s in versions]}}


def paths(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    return [f"{c.action} {c.path}" for c in field_changes(before, after, redactor=R)]


def test_field_paths_name_list_items_by_their_merge_key() -> None:
    after = deployment(image="reg/web:2.0", replicas=3)
    after["spec"]["template"]["spec"]["containers"][1]["volumeMounts"][1]["subPath"] = "d"
    assert paths(deployment(), after) == [
        "changed spec.replicas",
        "changed spec.template.spec.containers[name=manager].image",
        'changed spec.template.spec.containers[name=manager].volumeMounts[mountPath=/cache]'
        '.subPath',
    ]


def test_inserting_a_container_does_not_show_the_others_as_changed() -> None:
    after = deployment()
    after["spec"]["template"]["spec"]["containers"].insert(0, {"name": "init", "image": "x"})
    changes = field_changes(deployment(), after, redactor=R)
    assert [(c.action, c.path, c.after) for c in changes] == [
        ("added", "spec.template.spec.containers[name=init]", {"name": "init", "image": "x"}),
    ]


def test_plain_lists_compare_by_position_and_keys_with_dots_are_quoted() -> None:
    before = deployment()
    after = copy.deepcopy(before)
    after["spec"]["template"]["spec"]["containers"][1]["args"].append("--c")
    after["metadata"]["annotations"] = {"example.com/owner": "ml-team"}
    assert paths(before, after) == [
        'added metadata.annotations',
        "added spec.template.spec.containers[name=manager].args[2]",
    ]
    after2 = copy.deepcopy(after)
    after2["metadata"]["annotations"]["example.com/owner"] = "infra"
    assert paths(after, after2) == ['changed metadata.annotations["example.com/owner"]']


def test_format_path_reads_as_yaml_paths() -> None:
    assert format_path(["spec", "rules", 0, "verbs"]) == "spec.rules[0].verbs"
    assert format_path(["data", "config.yaml"]) == 'data["config.yaml"]'


def test_object_sets_report_added_removed_changed_and_unchanged() -> None:
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "ml"},
           "spec": {"type": "ClusterIP"}}
    gone = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "old", "namespace": "ml"}}
    new = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "new", "namespace": "ml"}}
    d = diff_object_sets([deployment(), svc, gone],
                         [svc, deployment(image="reg/web:2.0"), new], redactor=R)
    assert [c.id.name for c in d.added] == ["new"]
    assert [c.id.name for c in d.removed] == ["old"]
    assert [(c.id.kind, [f.path for f in c.fields]) for c in d.changed] == [
        ("Deployment", ["spec.template.spec.containers[name=manager].image"])]
    assert d.unchanged == 1
    assert [(i.container, i.before, i.after) for i in d.images] == [
        ("manager", "reg/web:1.0", "reg/web:2.0")]


def test_images_of_added_and_removed_workloads_are_called_out() -> None:
    d = diff_object_sets([deployment("old")], [deployment("new", image="reg/new:1")],
                         redactor=R)
    got = sorted((i.id.name, i.container, i.before, i.after) for i in d.images)
    assert got == [
        ("new", "manager", None, "reg/new:1"), ("new", "sidecar", None, "reg/proxy:1"),
        ("old", "manager", "reg/web:1.0", None), ("old", "sidecar", "reg/proxy:1", None),
    ]


def test_api_version_change_is_the_same_object_and_flagged() -> None:
    a = {"apiVersion": "batch/v1beta1", "kind": "CronJob",
         "metadata": {"name": "nightly", "namespace": "ml"}, "spec": {"schedule": "0 1 * * *"}}
    b = {**a, "apiVersion": "batch/v1"}
    d = diff_object_sets([a], [b], redactor=R)
    assert not d.added and not d.removed
    (c,) = d.changed
    assert c.id == ResourceId("batch", "CronJob", "ml", "nightly")
    assert c.api_version_changed and (c.api_version_before, c.api_version_after) == (
        "batch/v1beta1", "batch/v1")
    assert d.api_version_changes == (c,)


def test_crd_version_changes_are_flagged() -> None:
    d = diff_object_sets([crd([("v1alpha1", True)])],
                         [crd([("v1alpha1", False), ("v1", True)])], redactor=R)
    (c,) = d.crd_changes
    assert c.crd_versions is not None
    assert c.crd_versions.added == ("v1",)
    assert c.crd_versions.describe() == "versions added: v1; storage version v1alpha1 -> v1"


def test_a_changed_secret_value_shows_two_different_hashes_and_an_equal_one_no_change() -> None:
    def s(pw: str, user: str = "admin") -> dict[str, Any]:
        return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"},
                "stringData": {"password": pw, "user": user}}

    d = diff_object_sets([s("old-password-1")], [s("new-password-2")], redactor=R)
    (c,) = d.changed
    (f,) = c.fields
    assert f.path == "stringData.password"
    assert f.before == R.mark("old-password-1") and f.after == R.mark("new-password-2")
    assert "old-password-1" not in repr(d) and "new-password-2" not in repr(d)
    assert diff_object_sets([s("same-1234")], [s("same-1234")], redactor=R).is_empty


def test_reordered_keyed_lists_are_not_a_change() -> None:
    after = deployment()
    after["spec"]["template"]["spec"]["containers"].reverse()
    d = diff_object_sets([deployment()], [after], redactor=R)
    assert d.is_empty and d.unchanged == 1


def test_ports_are_matched_as_the_api_server_keys_them_in_plans_drift_and_the_merge() -> None:
    from gitops.merge.fields import kubernetes_list_key

    before = deployment()
    before["spec"]["template"]["spec"]["containers"][1]["ports"] = [
        {"name": "http", "containerPort": 80}, {"name": "metrics", "containerPort": 9090}]
    after = copy.deepcopy(before)
    after["spec"]["template"]["spec"]["containers"][1]["ports"][0]["name"] = "web"
    # A renamed port is the same port (containerPort and protocol: the server's list keys,
    # which drift's managedFields paths show too), not one removed and one added.
    assert paths(before, after) == [
        "changed spec.template.spec.containers[name=manager]"
        ".ports[containerPort=80,protocol=TCP].name"]
    ports = after["spec"]["template"]["spec"]["containers"][1]["ports"]
    key = kubernetes_list_key(("spec", "template", "spec", "containers[name=manager]"),
                              "ports", ports)
    assert key is not None and key(ports[0]) == key({"containerPort": 80, "protocol": "TCP"})
    svc = [{"name": "a", "port": 80}, {"name": "b", "port": 80, "protocol": "UDP"}]
    assert key is not None and kubernetes_list_key(("spec",), "ports", svc) is not None
