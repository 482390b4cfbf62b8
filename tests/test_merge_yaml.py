"""merge_file on Kubernetes YAML: resource by resource, fields recursively, lists by key."""

from __future__ import annotations

from textwrap import dedent

from gitops.merge import ConflictKind, MergeKind, Redaction, merge_file
from gitops.resource import ResourceId

DEPLOYMENT = dedent("""\
    # The web app.
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: web
      labels: {app: web}
    spec:
      replicas: 1
      template:
        spec:
          containers:
          - name: web
            image: "ghcr.io/acme/web:1.0"   # pinned
            env:
            - name: MODE
              value: prod
            volumeMounts:
            - name: data
              mountPath: /data
    """)


def edit(text: str, *pairs: tuple[str, str]) -> str:
    for old, new in pairs:
        assert old in text, old
        text = text.replace(old, new, 1)
    return text


def test_upstream_image_change_and_local_env_var_both_survive_with_comments_and_quotes() -> None:
    ours = edit(DEPLOYMENT, ("          value: prod\n",
                             "          value: prod\n        - name: LOCAL  # ours\n"
                             "          value: x\n"))
    theirs = edit(DEPLOYMENT, ("web:1.0", "web:1.1"))
    m = merge_file("deploy.yaml", DEPLOYMENT, ours, theirs)
    assert m.kind is MergeKind.YAML and m.conflicts == ()
    assert m.text == edit(ours, ("web:1.0", "web:1.1"))


def test_volume_mount_added_on_both_sides_keeps_both_entries() -> None:
    ours = edit(DEPLOYMENT, ("          mountPath: /data\n",
                             "          mountPath: /data\n        - name: cache\n"
                             "          mountPath: /cache\n"))
    theirs = edit(DEPLOYMENT, ("          mountPath: /data\n",
                               "          mountPath: /data\n        - name: tmp\n"
                               "          mountPath: /tmp\n"))
    m = merge_file("deploy.yaml", DEPLOYMENT, ours, theirs)
    assert m.conflicts == ()
    assert m.text == edit(ours, ("          mountPath: /data\n",
                                 "          mountPath: /data\n        - name: tmp\n"
                                 "          mountPath: /tmp\n"))


def test_scalar_changed_differently_is_a_conflict_that_keeps_ours() -> None:
    ours = edit(DEPLOYMENT, ("replicas: 1", "replicas: 3  # local"))
    theirs = edit(DEPLOYMENT, ("replicas: 1", "replicas: 2"), ("web:1.0", "web:1.1"))
    m = merge_file("deploy.yaml", DEPLOYMENT, ours, theirs)
    assert m.text == edit(ours, ("web:1.0", "web:1.1"))
    (c,) = m.conflicts
    assert (c.kind, c.resource, c.field, c.base, c.ours, c.theirs) == (
        ConflictKind.BOTH_CHANGED, ResourceId("apps", "Deployment", "", "web"),
        "spec.replicas", 1, 3, 2)
    assert c.address == "deploy.yaml:apps/Deployment//web:spec.replicas"


def test_same_change_on_both_sides_is_no_conflict() -> None:
    both = edit(DEPLOYMENT, ("replicas: 1", "replicas: 2"))
    m = merge_file("deploy.yaml", DEPLOYMENT, both, both)
    assert (m.text, m.conflicts) == (both, ())


def test_untouched_documents_are_written_back_byte_for_byte() -> None:
    svc = dedent("""\
        ---
        # odd   spacing   kept
        apiVersion: v1
        kind: Service
        metadata: {name: web}
        spec:
          ports: [ {port: 80} ]
        """)
    base = DEPLOYMENT + svc
    ours = edit(base, ("value: prod", "value: staging"))
    theirs = edit(base, ("replicas: 1", "replicas: 2"))
    m = merge_file("all.yaml", base, ours, theirs)
    assert m.text == edit(ours, ("replicas: 1", "replicas: 2"))
    assert m.text.endswith(svc)


def test_resources_match_by_identity_when_upstream_reorders_them() -> None:
    cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\ndata:\n  a: '1'\n"
    base = DEPLOYMENT + "---\n" + cm
    ours = edit(base, ("a: '1'", "a: '9'"))
    theirs = edit(cm, ("a: '1'", "a: '1'\n  b: '2'")) + "---\n" + edit(
        DEPLOYMENT, ("web:1.0", "web:1.1"))
    m = merge_file("all.yaml", base, ours, theirs)
    assert m.conflicts == ()
    assert m.text == edit(ours, ("web:1.0", "web:1.1"), ("a: '9'", "a: '9'\n  b: '2'"))


def test_resource_added_upstream_is_inserted_after_its_upstream_neighbour() -> None:
    sa = "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: web\n"
    ours = edit(DEPLOYMENT, ("value: prod", "value: staging"))
    theirs = DEPLOYMENT + "---\n" + sa
    m = merge_file("deploy.yaml", DEPLOYMENT, ours, theirs)
    assert m.text == ours + "---\n" + sa


def test_resource_deleted_upstream_and_untouched_locally_is_deleted() -> None:
    sa = "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: web\n"
    base = DEPLOYMENT + "---\n" + sa
    ours = edit(base, ("value: prod", "value: staging"))
    m = merge_file("deploy.yaml", base, ours, DEPLOYMENT)
    assert (m.text, m.conflicts) == (edit(DEPLOYMENT, ("value: prod", "value: staging")), ())


def test_resource_deleted_upstream_but_edited_locally_is_kept_as_a_conflict() -> None:
    sa = "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: web\n"
    base = DEPLOYMENT + "---\n" + sa
    ours = edit(base, ("kind: ServiceAccount\nmetadata:\n  name: web\n",
                       "kind: ServiceAccount\nmetadata:\n  name: web\n  labels: {team: ml}\n"))
    theirs = edit(DEPLOYMENT, ("replicas: 1", "replicas: 2"))
    m = merge_file("deploy.yaml", base, ours, theirs)
    assert m.text == edit(ours, ("replicas: 1", "replicas: 2"))
    (c,) = m.conflicts
    assert (c.kind, c.resource, c.base, c.ours, c.theirs) == (
        ConflictKind.DELETED_UPSTREAM, ResourceId("", "ServiceAccount", "", "web"),
        "<present>", "<changed>", "<deleted>")


def test_resource_deleted_locally_but_changed_upstream_stays_deleted_as_a_conflict() -> None:
    sa = "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: web\n"
    base = DEPLOYMENT + "---\n" + sa
    ours = edit(DEPLOYMENT, ("value: prod", "value: staging"))
    theirs = DEPLOYMENT + "---\n" + edit(sa, ("name: web", "name: web\n  labels: {a: b}"))
    m = merge_file("deploy.yaml", base, ours, theirs)
    assert m.text == ours
    assert [(c.kind, c.resource) for c in m.conflicts] == [
        (ConflictKind.DELETED_LOCALLY, ResourceId("", "ServiceAccount", "", "web"))]


def test_container_removed_upstream_and_untouched_locally_is_removed() -> None:
    two = edit(DEPLOYMENT, ("      volumeMounts:", "      volumeMounts:"),
               ("          mountPath: /data\n",
                "          mountPath: /data\n      - name: proxy\n        image: proxy:1\n"))
    ours = edit(two, ("value: prod", "value: staging"))
    m = merge_file("deploy.yaml", two, ours, DEPLOYMENT)
    assert (m.text, m.conflicts) == (edit(DEPLOYMENT, ("value: prod", "value: staging")), ())


def test_atomic_list_changed_on_both_sides_is_a_conflict() -> None:
    base = "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n" \
           "  name: r\nrules:\n- verbs: [get]\n  resources: [pods]\n"
    ours = edit(base, ("[get]", "[get, list]"))
    theirs = edit(base, ("[get]", "[get, watch]"))
    m = merge_file("role.yaml", base, ours, theirs)
    assert m.text == ours
    (c,) = m.conflicts
    assert (c.field, c.ours, c.theirs) == (
        "rules", [{"verbs": ["get", "list"], "resources": ["pods"]}],
        [{"verbs": ["get", "watch"], "resources": ["pods"]}])


def test_tolerations_merge_as_sets_of_whole_entries() -> None:
    base = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  tolerations:\n" \
           "  - {key: a, operator: Exists}\n"
    ours = base + "  - {key: local, operator: Exists}\n"
    theirs = base + "  - {key: b, operator: Exists}\n"
    m = merge_file("pod.yaml", base, ours, theirs)
    assert m.conflicts == ()
    assert m.text == base + "  - {key: b, operator: Exists}\n  - {key: local, operator: Exists}\n"


def test_crd_versions_merge_by_name_and_schemas_recursively() -> None:
    base = dedent("""\
        apiVersion: apiextensions.k8s.io/v1
        kind: CustomResourceDefinition
        metadata:
          name: nbs.example.org
        spec:
          versions:
          - name: v1beta1
            served: true
            storage: true
            schema:
              openAPIV3Schema:
                type: object
                properties:
                  spec: {type: object}
        """)
    ours = edit(base, ("spec: {type: object}\n",
                       "spec: {type: object}\n          x-local: {type: string}\n"))
    v1 = "  - name: v1\n    served: true\n    storage: true\n"
    theirs = edit(base, ("    storage: true\n", "    storage: false\n")) + v1
    m = merge_file("crd.yaml", base, ours, theirs)
    assert m.conflicts == ()
    assert m.text == edit(ours, ("    storage: true\n", "    storage: false\n")) + v1


def test_service_ports_merge_by_port() -> None:
    base = "apiVersion: v1\nkind: Service\nmetadata:\n  name: s\nspec:\n  ports:\n" \
           "  - name: http\n    port: 80\n    targetPort: 8080\n"
    ours = base + "  - name: metrics\n    port: 9090\n"
    theirs = edit(base, ("targetPort: 8080", "targetPort: http"))
    m = merge_file("svc.yaml", base, ours, theirs)
    assert (m.text, m.conflicts) == (edit(ours, ("targetPort: 8080", "targetPort: http")), ())


def test_documents_without_kind_merge_as_plain_nested_data() -> None:
    base = "server:\n  port: 80\n  hosts: [a]\nlog: info\n"
    ours = "server:\n  port: 8080  # local\n  hosts: [a]\nlog: info\n"
    theirs = "server:\n  port: 80\n  hosts: [a, b]\nlog: debug\n"
    m = merge_file("config.yaml", base, ours, theirs)
    assert (m.text, m.conflicts) == (
        "server:\n  port: 8080  # local\n  hosts: [a, b]\nlog: debug\n", ())


def test_local_indentation_style_is_kept_in_changed_documents() -> None:
    base = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n    name: c\ndata:\n    a: x\n" \
           "    list:\n        - 1\n"
    ours = base.replace("a: x", "a: y")
    theirs = base.replace("    list:", "    b: z\n    list:")
    m = merge_file("cm.yaml", base, ours, theirs)
    assert m.text == ours.replace("    list:", "    b: z\n    list:")


def test_secret_data_conflicts_show_a_salted_hash_never_the_value() -> None:
    base = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\nstringData:\n  pw: base-pw\n"
    ours, theirs = base.replace("base-pw", "ours-pw"), base.replace("base-pw", "theirs-pw")
    red = Redaction(salt=b"s")
    m = merge_file("secret.yaml", base, ours, theirs, redaction=red)
    (c,) = m.conflicts
    assert c.field == "stringData.pw"
    assert (c.base, c.ours, c.theirs) == (red.mark("base-pw"), red.mark("ours-pw"),
                                          red.mark("theirs-pw"))
    assert "pw" not in repr((c.base, c.ours, c.theirs)).replace("sha256", "")
    assert m.text == ours


def test_yaml_that_does_not_parse_is_merged_line_by_line() -> None:
    base = "a: b: {{ .Values.a }}\nb: 1\nc: 1\nd: 1\n"
    ours = base.replace("b: 1", "b: 2")
    theirs = base.replace("d: 1", "d: 2")
    m = merge_file("tpl.yaml", base, ours, theirs)
    assert (m.text, m.kind, m.conflicts) == ("a: b: {{ .Values.a }}\nb: 2\nc: 1\nd: 2\n",
                                             MergeKind.TEXT, ())


def test_a_value_added_locally_to_a_list_of_plain_values_survives_upstream_bumping_the_rest(
) -> None:
    # Kubeflow's spawner_ui_config.yaml: upstream bumps every image tag, a team adds its own.
    base = dedent("""\
        spawnerFormDefaults:
          image:
            value: jupyter-scipy:v1.3
            options:
            - jupyter-scipy:v1.3
            - jupyter-pytorch:v1.3
        """)
    ours = edit(base, ("    - jupyter-scipy:v1.3\n",
                       "    - jupyter-scipy:v1.3\n    - registry.example.com/team:2.1  # ours\n"))
    theirs = base.replace("v1.3", "v1.4")
    m = merge_file("spawner_ui_config.yaml", base, ours, theirs)
    assert (m.text, m.conflicts) == (ours.replace("v1.3", "v1.4"), ())


def test_a_plain_value_replaced_differently_on_both_sides_is_a_conflict_keeping_ours() -> None:
    base = "options:\n- scipy:v1.3\n- pytorch:v1.3\n"
    ours = "options:\n- scipy:v1.3-patched\n- pytorch:v1.3\n"
    theirs = "options:\n- scipy:v1.4\n- pytorch:v1.4\n"
    m = merge_file("config.yaml", base, ours, theirs)
    assert m.text == "options:\n- scipy:v1.3-patched\n- pytorch:v1.4\n"
    (c,) = m.conflicts
    assert (c.kind, c.field, c.base, c.ours, c.theirs) == (
        ConflictKind.BOTH_CHANGED, "options[scipy:v1.3]", "scipy:v1.3", "scipy:v1.3-patched",
        "scipy:v1.4")


def test_repeated_plain_values_keep_the_list_atomic() -> None:
    base = "options:\n- a\n- a\n"
    m = merge_file("config.yaml", base, "options:\n- a\n- a\n- b\n", "options:\n- a\n- c\n")
    assert m.text == "options:\n- a\n- a\n- b\n"
    assert [c.field for c in m.conflicts] == ["options"]


def test_resource_upstream_added_before_the_first_document_gets_a_separator() -> None:
    # Istio's install.yaml at Kubeflow v1.10.2 starts with a new ServiceAccount.
    sa = "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: cni\n"
    ours = edit(DEPLOYMENT, ("value: prod", "value: staging"))
    theirs = sa + "---\n" + edit(DEPLOYMENT, ("web:1.0", "web:1.1"))
    m = merge_file("install.yaml", DEPLOYMENT, ours, theirs)
    assert m.conflicts == ()
    assert m.text == sa + "---\n" + edit(ours, ("web:1.0", "web:1.1"))
    untouched = merge_file("install.yaml", DEPLOYMENT, edit(DEPLOYMENT, ("labels", "annotations")),
                           sa + "---\n" + DEPLOYMENT)
    assert untouched.text == sa + "---\n" + edit(DEPLOYMENT, ("labels", "annotations"))


def test_local_edit_follows_a_resource_upstream_renamed_within_the_file() -> None:
    # Kubeflow v1.8.0 renames the StatefulSet authservice to oidc-authservice.
    sa = "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: web\n"
    base = DEPLOYMENT + "---\n" + sa
    ours = edit(base, ("          value: prod\n", "          value: prod\n"
                       "          resources:\n            limits: {memory: 1Gi}  # local\n"))
    theirs = edit(base, ("  name: web\n  labels", "  name: web-v2\n  labels"),
                  ("web:1.0", "web:1.1"))
    m = merge_file("deploy.yaml", base, ours, theirs)
    assert m.conflicts == ()
    assert m.text == edit(ours, ("  name: web\n  labels", "  name: web-v2\n  labels"),
                          ("web:1.0", "web:1.1"))


def test_a_resource_replaced_by_an_unrelated_one_is_not_taken_for_a_rename() -> None:
    cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  x: '1'\n"
    other = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\ndata:\n  y: '2'\n  z: '3'\n"
    m = merge_file("cm.yaml", cm, edit(cm, ("x: '1'", "x: '9'")), other)
    assert [c.kind for c in m.conflicts] == [ConflictKind.DELETED_UPSTREAM]
    assert m.text == other + "---\n" + edit(cm, ("x: '1'", "x: '9'"))


# --------------------------------------------------------------- multi-line strings

def _configmap(value: str, key: str = "config.yaml") -> str:
    body = "".join(f"    {line}\n" for line in value.splitlines())
    return (f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: dex\ndata:\n"
            f"  {key}: |\n{body}")


SCRIPT = "".join(f"echo step {i}\n" for i in range(12))


def test_a_multi_line_string_merges_by_lines_when_the_changes_do_not_overlap() -> None:
    ours = SCRIPT.replace("echo step 2", "echo step 2 # local")
    theirs = SCRIPT.replace("echo step 8", "echo step 8 --fast")
    m = merge_file("cm.yaml", _configmap(SCRIPT, "run.sh"), _configmap(ours, "run.sh"),
                   _configmap(theirs, "run.sh"))
    assert m.conflicts == ()
    assert m.text == _configmap(ours.replace("echo step 8", "echo step 8 --fast"), "run.sh")


def test_overlapping_lines_of_a_string_conflict_as_one_hunk_with_the_whole_values() -> None:
    ours = SCRIPT.replace("echo step 5", "echo step 5 # local")
    theirs = SCRIPT.replace("echo step 5", "echo step five").replace("echo step 11",
                                                                       "echo done")
    m = merge_file("cm.yaml", _configmap(SCRIPT, "run.sh"), _configmap(ours, "run.sh"),
                   _configmap(theirs, "run.sh"))
    (c,) = m.conflicts
    assert (c.field, c.hunk, c.base, c.ours, c.theirs) == (
        'data["run.sh"]@L6', (6, 6), "echo step 5\n", "echo step 5 # local\n",
        "echo step five\n")
    assert c.values == (SCRIPT, ours, theirs)
    assert c.address == 'cm.yaml:/ConfigMap//dex:data["run.sh"]@L6'
    # ours' hunk kept, upstream's other change taken
    assert m.text == _configmap(ours.replace("echo step 11", "echo done"), "run.sh")


def test_a_yaml_document_inside_a_string_merges_as_data() -> None:
    base = "logger:\n  level: debug\n  format: text\nweb:\n  http: 0.0.0.0:5556\n"
    ours = base.replace("level: debug", "level: info")
    theirs = base.replace("format: text", "format: json")
    m = merge_file("cm.yaml", _configmap(base), _configmap(ours), _configmap(theirs))
    assert m.conflicts == ()
    assert m.text == _configmap(ours.replace("format: text", "format: json"))


def test_a_json_document_inside_a_string_merges_as_data_in_its_layout() -> None:
    base = '{\n  "a": 1,\n  "b": [\n    "x"\n  ],\n  "c": true\n}'
    ours = base.replace('"a": 1', '"a": 2')
    theirs = base.replace('"c": true', '"c": false')
    m = merge_file("cm.yaml", _configmap(base, "s.json"), _configmap(ours, "s.json"),
                   _configmap(theirs, "s.json"))
    assert m.conflicts == ()
    assert '"a": 2' in m.text and '"c": false' in m.text
