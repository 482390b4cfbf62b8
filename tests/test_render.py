"""Render per cluster with the real kustomize binary, on small deployment repos in tmp_path."""

from __future__ import annotations

import shutil
from pathlib import Path

import pygit2
import pytest

from gitops.errors import RenderError, YamlError
from gitops.kustomize import KustomizeBuildError
from gitops.render import (
    RemoteReferenceError,
    Rendered,
    kind_rank,
    normalise,
    render_cluster,
    render_clusters,
    render_path,
)
from gitops.resource import ResourceId
from gitops.stack import Stack
from gitops.yamlio import load_all_safe
from tests.fixtures.gitrepos import commit_all, write_files

# Files listed in an order unlike the output order, to show that the output is sorted.
BASE = {
    "stack.yaml": "name: mlstack\nsource: ./upstream\n",
    "README.md": "not an input of any render\n",
    "vendor/mlstack/base/kustomization.yaml": (
        "resources:\n- webhook.yaml\n- deploy.yaml\n- rbac.yaml\n- crd.yaml\n- ns.yaml\n"
        "configMapGenerator:\n- name: settings\n  namespace: ml\n  literals: [mode=fast]\n"),
    "vendor/mlstack/base/ns.yaml": "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ml\n",
    "vendor/mlstack/base/crd.yaml": (
        "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n"
        "  name: widgets.ml.example.com\nspec:\n  group: ml.example.com\n  names:\n"
        "    kind: Widget\n    plural: widgets\n  scope: Namespaced\n  versions:\n"
        "  - name: v1\n    served: true\n    storage: true\n    schema:\n"
        "      openAPIV3Schema:\n        type: object\n"),
    "vendor/mlstack/base/deploy.yaml": (
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: ml\n"
        "spec:\n  replicas: 1\n  selector:\n    matchLabels: {app: web}\n  template:\n"
        "    metadata:\n      labels: {app: web}\n    spec:\n      containers:\n"
        "      - name: web\n        image: registry.example.com/web:1.0\n---\n"
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  namespace: ml\nspec:\n"
        "  ports:\n  - port: 80\n---\n"
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: api\n  namespace: ml\n"
        "spec:\n  selector:\n    matchLabels: {app: api}\n  template:\n    metadata:\n"
        "      labels: {app: api}\n    spec:\n      containers:\n      - name: api\n"
        "        image: registry.example.com/api:1.0\n"),
    "vendor/mlstack/base/rbac.yaml": (
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n"
        "  name: 'ml:reader'\nrules: []\n---\n"
        "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: web\n  namespace: ml\n"),
    "vendor/mlstack/base/webhook.yaml": (
        "apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingWebhookConfiguration\n"
        "metadata:\n  name: ml-validate\nwebhooks: []\n"),
    "clusters/dev/kustomization.yaml": (
        "resources:\n- ../../vendor/mlstack/base\npatches:\n- path: replicas.yaml\n"),
    "clusters/dev/replicas.yaml": (
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: ml\n"
        "spec:\n  replicas: 2\n"),
}

EXPECTED_ORDER = [
    ("Namespace", "", "ml"),
    ("CustomResourceDefinition", "", "widgets.ml.example.com"),
    ("ServiceAccount", "ml", "web"),
    ("ConfigMap", "ml", "settings-"),  # the generator appends a content hash
    ("ClusterRole", "", "ml:reader"),
    ("Service", "ml", "web"),
    ("Deployment", "ml", "api"),
    ("Deployment", "ml", "web"),
    ("ValidatingWebhookConfiguration", "", "ml-validate"),
]


@pytest.fixture
def repo(tmp_path: Path, kustomize: Path) -> Path:
    root = tmp_path / "deploy"
    write_files(root, BASE)
    return root


def _stack(root: Path) -> Stack:
    return Stack(root=root, name="mlstack", source="./upstream")


def _ids(r: Rendered) -> list[tuple[str, str, str]]:
    return [(o.id.kind, o.id.namespace,
             o.id.name if o.id.kind != "ConfigMap" else o.id.name[:9]) for o in r.objects]


def test_render_orders_objects_by_kind_then_namespace_then_name(repo: Path) -> None:
    r = render_cluster(_stack(repo), "dev")
    assert _ids(r) == EXPECTED_ORDER
    assert kind_rank("Namespace") < kind_rank("CustomResourceDefinition") < kind_rank(
        "Deployment") < kind_rank("Widget") < kind_rank("ValidatingWebhookConfiguration")


def test_rendered_objects_carry_identity_api_version_text_and_parsed_body(repo: Path) -> None:
    r = render_cluster(_stack(repo), "dev")
    web = next(o for o in r.objects if o.id == ResourceId("apps", "Deployment", "ml", "web"))
    assert web.api_version == "apps/v1"
    assert web.body["spec"]["replicas"] == 2  # the cluster's patch applied
    assert "replicas: 2" in web.yaml
    # The whole text parses to the same bodies, in the same order.
    assert load_all_safe(r.text) == [o.body for o in r.objects]
    assert r.kustomize_version.startswith("v5.")


def test_same_inputs_give_byte_identical_output_wherever_the_tree_lives(
        repo: Path, tmp_path: Path) -> None:
    first = render_cluster(_stack(repo), "dev", use_cache=False)
    again = render_cluster(_stack(repo), "dev", use_cache=False)
    assert again.text == first.text
    moved = tmp_path / "elsewhere"
    shutil.copytree(repo, moved)
    there = render_cluster(_stack(moved), "dev", use_cache=False)
    assert there.text == first.text
    assert there.key == first.key


def test_header_names_cluster_source_commit_and_kustomize_version(repo: Path) -> None:
    r = render_cluster(_stack(repo), "dev")
    assert r.text.startswith(
        "# Rendered by stackctl: cluster dev\n# source: not in git\n"
        f"# kustomize: {r.kustomize_version}\n")
    git = pygit2.init_repository(str(repo), initial_head="main")
    commit = commit_all(git, "initial")
    clean = render_cluster(_stack(repo), "dev")
    assert f"# source: git commit {commit}\n" in clean.text
    assert clean.cache_hit  # same inputs: the header is not part of the cached content
    (repo / "clusters/dev/replicas.yaml").write_text(
        BASE["clusters/dev/replicas.yaml"].replace("2", "3"))
    dirty = render_cluster(_stack(repo), "dev")
    assert f"# source: git commit {commit} with uncommitted changes\n" in dirty.text
    assert "date" not in dirty.text.split("---")[0].lower()


def test_an_unchanged_rerender_comes_from_the_cache_and_any_input_change_misses_it(
        repo: Path) -> None:
    stack = _stack(repo)
    cold = render_cluster(stack, "dev")
    warm = render_cluster(stack, "dev")
    assert (cold.cache_hit, warm.cache_hit) == (False, True)
    assert warm.text == cold.text and warm.objects == cold.objects
    # Files outside the kustomization graph do not matter.
    (repo / "README.md").write_text("changed\n")
    write_files(repo, {"clusters/prod/kustomization.yaml": "resources: []\n"})
    assert render_cluster(stack, "dev").cache_hit
    # A file deep in the graph does.
    (repo / "vendor/mlstack/base/ns.yaml").write_text(
        BASE["vendor/mlstack/base/ns.yaml"] + "  labels: {team: ml}\n")
    changed = render_cluster(stack, "dev")
    assert not changed.cache_hit and "team: ml" in changed.text
    assert not render_cluster(stack, "dev", use_cache=False).cache_hit


def test_a_remote_base_fails_fast_naming_the_kustomization_and_url(repo: Path) -> None:
    url = "github.com/argoproj/argo-workflows/manifests/base/crds/minimal?ref=v3.7.3"
    (repo / "vendor/mlstack/base/kustomization.yaml").write_text(
        BASE["vendor/mlstack/base/kustomization.yaml"].replace(
            "- ns.yaml\n", f"- ns.yaml\n- {url}\n"))
    with pytest.raises(RemoteReferenceError) as e:
        render_cluster(_stack(repo), "dev")
    msg = str(e.value)
    assert f"vendor/mlstack/base/kustomization.yaml (resources): {url}" in msg
    assert "cluster dev" in msg and "stackctl vendor import" in msg and "vendor/" in msg


def test_a_kustomize_failure_names_cluster_command_and_file(repo: Path) -> None:
    (repo / "vendor/mlstack/base/ns.yaml").write_text("kind: Namespace\nmetadata: [\n")
    with pytest.raises(KustomizeBuildError) as e:
        render_cluster(_stack(repo), "dev")
    assert e.value.file == "vendor/mlstack/base/ns.yaml"  # from the repo's root
    assert "kustomize failed for cluster dev" in str(e.value)
    assert " build " in str(e.value) and "exited with code 1" in str(e.value)


def test_invalid_yaml_in_a_generator_config_names_that_file(repo: Path) -> None:
    write_files(repo, {
        "clusters/dev/kustomization.yaml": "resources:\n- ../../vendor/mlstack/base\n"
                                           "generators:\n- gen.yaml\n",
        "clusters/dev/gen.yaml": "apiVersion: builtin\nkind: ConfigMapGenerator\n"
                                 "metadata:\n  name: extra\nliterals: [a=1\n",
    })
    with pytest.raises(KustomizeBuildError) as e:
        render_cluster(_stack(repo), "dev")
    assert e.value.file == "clusters/dev/gen.yaml"
    assert "MalformedYAMLError" in e.value.detail


def test_invalid_yaml_in_a_kustomization_names_file_and_line(repo: Path) -> None:
    (repo / "clusters/dev/kustomization.yaml").write_text("resources:\n- a\n  b: [\n")
    with pytest.raises(YamlError) as e:
        render_cluster(_stack(repo), "dev")
    assert "clusters/dev/kustomization.yaml:" in str(e.value)


def test_an_object_without_a_name_is_reported_with_its_file(repo: Path) -> None:
    write_files(repo, {"vendor/mlstack/base/ns.yaml":
                       "apiVersion: v1\nkind: Namespace\nmetadata:\n  labels: {a: b}\n"})
    with pytest.raises(KustomizeBuildError) as e:
        render_cluster(_stack(repo), "dev")
    assert "missing metadata.name" in str(e.value)
    assert e.value.file == "vendor/mlstack/base/ns.yaml"


def test_normalise_rejects_objects_without_kind_naming_the_input_file() -> None:
    out = "apiVersion: v1\nmetadata:\n  name: orphan\n"
    contents = [("base/odd.yaml", out.encode()), ("base/other.yaml", b"kind: Service\n")]
    with pytest.raises(RenderError) as e:
        normalise(out, what="cluster dev", contents=contents)
    assert "without kind" in str(e.value) and "base/odd.yaml" in str(e.value)


def test_duplicate_identities_in_one_render_name_both_files(repo: Path) -> None:
    hpa = ("apiVersion: autoscaling/{v}\nkind: HorizontalPodAutoscaler\nmetadata:\n"
           "  name: web\n  namespace: ml\nspec:\n  scaleTargetRef: {{kind: Deployment, "
           "name: web, apiVersion: apps/v1}}\n  maxReplicas: 3\n")
    write_files(repo, {
        "clusters/dev/kustomization.yaml": "resources:\n- ../../vendor/mlstack/base\n"
                                           "- hpa-v1.yaml\n- hpa-v2.yaml\n",
        "clusters/dev/hpa-v1.yaml": hpa.format(v="v1"),
        "clusters/dev/hpa-v2.yaml": hpa.format(v="v2"),
    })
    with pytest.raises(RenderError) as e:
        render_cluster(_stack(repo), "dev")
    msg = str(e.value)
    assert "HorizontalPodAutoscaler.autoscaling/web -n ml twice" in msg
    assert "autoscaling/v1 and autoscaling/v2" in msg
    assert "it comes from hpa-v1.yaml, hpa-v2.yaml" in msg


def test_kustomize_warnings_are_collected_once_per_cluster(repo: Path) -> None:
    write_files(repo, {
        "clusters/dev/kustomization.yaml": "bases:\n- ../../overlays/a\n- ../../overlays/b\n"
                                           "commonLabels: {tier: dev}\n",
        "overlays/a/kustomization.yaml": "bases:\n- ../../vendor/mlstack/base\n"
                                         "commonLabels: {a: x}\nnamePrefix: a-\n",
        "overlays/b/kustomization.yaml": "bases:\n- ../../vendor/mlstack/base\n"
                                         "commonLabels: {b: x}\nnamePrefix: b-\n",
    })
    (repo / "vendor/mlstack/base/ns.yaml").unlink()
    (repo / "vendor/mlstack/base/crd.yaml").unlink()
    (repo / "vendor/mlstack/base/rbac.yaml").unlink()
    (repo / "vendor/mlstack/base/webhook.yaml").unlink()
    (repo / "vendor/mlstack/base/kustomization.yaml").write_text(
        "resources:\n- deploy.yaml\n")
    r = render_cluster(_stack(repo), "dev")
    deprecations = [w for w in r.warnings if "deprecated" in w]
    assert len(deprecations) == 2  # 'bases' and 'commonLabels', each once
    assert any("'bases'" in w for w in deprecations)
    assert any("'commonLabels'" in w for w in deprecations)
    assert render_cluster(_stack(repo), "dev").warnings == r.warnings  # cached too


def test_clusters_render_in_parallel_and_each_keeps_its_patch(repo: Path) -> None:
    for name, n in (("prod", 5), ("staging", 3)):
        write_files(repo, {
            f"clusters/{name}/kustomization.yaml": BASE["clusters/dev/kustomization.yaml"],
            f"clusters/{name}/replicas.yaml": BASE["clusters/dev/replicas.yaml"].replace(
                "replicas: 2", f"replicas: {n}"),
        })
    out = render_clusters(_stack(repo), ["dev", "prod", "staging"], jobs=3)
    assert list(out) == ["dev", "prod", "staging"]
    replicas = {name: next(o.body for o in r.objects if o.id.name == "web"
                           and o.id.kind == "Deployment")["spec"]["replicas"]
                for name, r in out.items()}
    assert replicas == {"dev": 2, "prod": 5, "staging": 3}


def test_render_at_a_ref_reads_the_commit_not_the_working_tree(repo: Path) -> None:
    git = pygit2.init_repository(str(repo), initial_head="main")
    first = commit_all(git, "replicas 2")
    (repo / "clusters/dev/replicas.yaml").write_text(
        BASE["clusters/dev/replicas.yaml"].replace("replicas: 2", "replicas: 7"))
    second = commit_all(git, "replicas 7")
    (repo / "clusters/dev/replicas.yaml").write_text(
        BASE["clusters/dev/replicas.yaml"].replace("replicas: 2", "replicas: 9"))
    at = {ref: render_clusters(_stack(repo), ["dev"], ref=ref)["dev"]
          for ref in (first, "main")}
    web = ResourceId("apps", "Deployment", "ml", "web")

    def replicas(r: Rendered) -> int:
        return int(next(o for o in r.objects if o.id == web).body["spec"]["replicas"])

    assert replicas(at[first]) == 2 and replicas(at["main"]) == 7
    assert f"# source: git commit {second}\n" in at["main"].text
    assert "replicas: 9" in (repo / "clusters/dev/replicas.yaml").read_text()
    # Same content as an earlier working-tree render: served from the cache.
    (repo / "clusters/dev/replicas.yaml").write_text(
        BASE["clusters/dev/replicas.yaml"].replace("replicas: 2", "replicas: 7"))
    assert render_cluster(_stack(repo), "dev").cache_hit


def test_render_path_renders_any_kustomization_directory(tmp_path: Path,
                                                         kustomize: Path) -> None:
    write_files(tmp_path / "tree", {
        "kustomization.yaml": "resources: [cm.yaml]\nnamespace: x\n",
        "cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  k: v\n",
    })
    r = render_path(tmp_path / "tree")
    assert r.cluster == "tree"
    assert [o.id for o in r.objects] == [ResourceId("", "ConfigMap", "x", "c")]


def test_a_torn_cache_entry_is_a_miss_and_is_replaced(repo: Path) -> None:
    from gitops.rendercache import cache_root

    first = render_cluster(_stack(repo), "dev")
    (entry,) = cache_root().rglob("*.render")
    entry.write_text(entry.read_text()[:-10])
    again = render_cluster(_stack(repo), "dev")
    assert not again.cache_hit and again.text == first.text
    assert render_cluster(_stack(repo), "dev").cache_hit


def test_render_cluster_accepts_the_cluster_model_apply_passes(repo: Path) -> None:
    from gitops.cluster import load_cluster

    r = render_cluster(_stack(repo), load_cluster(_stack(repo), "dev"))
    assert r.cluster == "dev" and len(r.objects) == len(EXPECTED_ORDER)
