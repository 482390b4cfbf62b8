"""merge_trees on real Kubeflow upgrades with realistic local customizations.

Each scenario makes its customizations on ours in memory, merges, and checks that every one
survives, that the conflict made on purpose is the only conflict, and that every other
vendored file is exactly upstream's new version. merge_trees' wall time is printed (run with
`-s`); docs/merge.md notes it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from gitops.merge import ConflictKind, MergeReport, TreeMerge, merge_trees

pytestmark = [pytest.mark.kubeflow, pytest.mark.slow]

V = "vendor/kubeflow/"
MIRROR = "mirror.example.com"


def load(root: Path, prefix: str = V) -> dict[str, bytes]:
    return {prefix + p.relative_to(root).as_posix(): p.read_bytes()
            for p in root.rglob("*") if p.is_file()}


def edit(files: dict[str, bytes], path: str, old: str, new: str) -> None:
    text = files[path].decode()
    assert old in text, (path, old)
    files[path] = text.replace(old, new, 1).encode()


def text(m: TreeMerge, path: str) -> str:
    return m.files[path].decode()


def merge(base: dict[str, bytes], ours: dict[str, bytes], theirs: dict[str, bytes],
          label: str) -> TreeMerge:
    start = time.perf_counter()
    m = merge_trees(base, ours, theirs, vendor_prefix=V)
    elapsed = time.perf_counter() - start
    print(f"\nmerge_trees {label}: {elapsed:.3f} s for {len(ours)} files of ours, "
          f"{len(theirs)} of theirs, {len(m.moves)} moves")
    MergeReport.from_tree(m).to_markdown()  # the report renders on real data
    return m


def assert_rest_is_upstream(m: TreeMerge, theirs: dict[str, bytes], touched: set[str]) -> None:
    vendored = {p for p in m.files if p.startswith(V)}
    assert vendored - touched == set(theirs) - touched
    different = {p for p in theirs if p not in touched and m.files[p] != theirs[p]}
    assert different == set()


LIMITS = ("apiVersion: v1\nkind: LimitRange\nmetadata:\n  name: local-defaults\nspec:\n"
          "  limits:\n  - type: Container\n    default: {cpu: 500m, memory: 512Mi}\n")


def test_kubeflow_v1_3_0_to_v1_4_0_keeps_every_customization_with_one_planned_conflict(
    kubeflow_tree: Callable[[str], Path],
) -> None:
    base, theirs = load(kubeflow_tree("v1.3.0")), load(kubeflow_tree("v1.4.0"))
    ours = dict(base)
    mysql = V + "apps/katib/upstream/components/mysql/mysql.yaml"
    jwa = V + "apps/jupyter/jupyter-web-app/upstream/base/deployment.yaml"
    katib_k = V + "apps/katib/upstream/components/controller/kustomization.yaml"
    example = V + "example/kustomization.yaml"
    # The planned conflict: a mirror for mysql:8, whose tag upstream pins to 8.0.26.
    edit(ours, mysql, "image: mysql:8\n", f"image: {MIRROR}/library/mysql:8\n")
    # Image mirror on a Deployment upstream changes elsewhere (a volumeMount path).
    edit(ours, jwa, "image: public.ecr.aws/j1r0q0g6/notebooks/jupyter-web-app\n",
         f"image: {MIRROR}/notebooks/jupyter-web-app  # local mirror\n")
    # An extra entry in an upstream kustomization's resources (upstream re-indents the list).
    edit(ours, katib_k, "- trial-templates.yaml\n", "- trial-templates.yaml\n- local-limits.yaml\n")
    ours[V + "apps/katib/upstream/components/controller/local-limits.yaml"] = LIMITS.encode()
    # A local component added to upstream's example (upstream rewrites much of that list).
    edit(ours, example, "- ../common/kubeflow-roles/base\n",
         "- ../common/kubeflow-roles/base\n# local\n- ../common/local-quota/base\n")
    ours[V + "common/local-quota/base/kustomization.yaml"] = b"resources:\n- limits.yaml\n"
    ours[V + "common/local-quota/base/limits.yaml"] = LIMITS.encode()
    # An overlay referencing paths inside the vendored tree, one of them moved by v1.4.0.
    overlay = ("resources:\n- ../../vendor/kubeflow/example\npatches:\n"
               "- path: ../../vendor/kubeflow/common/istio-1-9-0/istio-install/base/patches/"
               "service.yaml\n")
    ours["overlays/kubeflow/kustomization.yaml"] = overlay.encode()
    ours["clusters/prod/kustomization.yaml"] = b"resources:\n- ../../overlays/kubeflow\n"

    m = merge(base, ours, theirs, "v1.3.0 -> v1.4.0")

    (c,) = m.conflicts
    assert (c.path, c.kind, c.field, c.base, c.ours, c.theirs) == (
        mysql, ConflictKind.BOTH_CHANGED, "spec.template.spec.containers[name=katib-mysql].image",
        "mysql:8", f"{MIRROR}/library/mysql:8", "mysql:8.0.26")
    mysql_text = text(m, mysql)
    assert f"image: {MIRROR}/library/mysql:8\n" in mysql_text  # ours kept
    assert "katib.kubeflow.org/component: mysql" in mysql_text  # upstream's other changes
    assert "startupProbe:" in mysql_text and "initialDelaySeconds" not in mysql_text
    assert text(m, jwa) == theirs[jwa].decode().replace(
        "image: public.ecr.aws/j1r0q0g6/notebooks/jupyter-web-app\n",
        f"image: {MIRROR}/notebooks/jupyter-web-app  # local mirror\n")
    assert text(m, katib_k) == ours[katib_k].decode()  # upstream only re-indented
    merged_example = text(m, example)
    assert "# local\n- ../common/local-quota/base\n" in merged_example
    assert "- ../common/istio-1-9/istio-install/base\n" in merged_example
    assert "istio-1-9-0" not in merged_example
    assert text(m, "overlays/kubeflow/kustomization.yaml") == overlay.replace(
        "istio-1-9-0", "istio-1-9")
    assert [(r.file, r.new) for r in m.rewritten_references] == [(
        "overlays/kubeflow/kustomization.yaml",
        "../../vendor/kubeflow/common/istio-1-9/istio-install/base/patches/service.yaml")]
    assert m.unresolved_references == ()
    local = {V + "apps/katib/upstream/components/controller/local-limits.yaml",
             V + "common/local-quota/base/kustomization.yaml",
             V + "common/local-quota/base/limits.yaml"}
    assert all(m.files[p] == ours[p] for p in local)
    assert_rest_is_upstream(m, theirs, {mysql, jwa, katib_k, example} | local)


def test_kubeflow_v1_10_1_to_v1_10_2_follows_the_apps_to_applications_move(
    kubeflow_tree: Callable[[str], Path],
) -> None:
    base, theirs = load(kubeflow_tree("v1.10.1")), load(kubeflow_tree("v1.10.2"))
    ours = dict(base)
    jwa = "jupyter/jupyter-web-app/upstream/base/deployment.yaml"
    katib_k = "katib/upstream/components/controller/kustomization.yaml"
    seaweed = V + "experimental/seaweedfs/base/seaweedfs/seaweedfs-deployment.yaml"
    example = V + "example/kustomization.yaml"
    # Image mirror in a file upstream moves (apps/ -> applications/) without changing it.
    edit(ours, V + "apps/" + jwa, "image: ghcr.io/kubeflow/kubeflow/jupyter-web-app\n",
         f"image: {MIRROR}/kubeflow/jupyter-web-app  # local mirror\n")
    # An extra resources entry in an upstream kustomization inside the moved folder.
    edit(ours, V + "apps/" + katib_k, "resources:\n", "resources:\n- local-limits.yaml\n")
    ours[V + "apps/katib/upstream/components/controller/local-limits.yaml"] = LIMITS.encode()
    # A local component under apps/, listed in upstream's example.
    ours[V + "apps/local-extra/kustomization.yaml"] = b"resources:\n- limits.yaml\n"
    ours[V + "apps/local-extra/limits.yaml"] = LIMITS.encode()
    edit(ours, example, "- ../common/kubeflow-roles/base\n",
         "- ../common/kubeflow-roles/base\n- ../apps/local-extra\n")
    # The planned conflict: ours tightens the container's seccomp profile, which upstream
    # moves from the container to the pod.
    edit(ours, seaweed, "          seccompProfile:\n            type: RuntimeDefault\n",
         "          seccompProfile:\n            type: Localhost\n"
         "            localhostProfile: profiles/seaweedfs.json\n")
    overlay = ("resources:\n- ../../vendor/kubeflow/example\n"
               "- ../../vendor/kubeflow/apps/jupyter/jupyter-web-app/upstream/overlays/istio\n"
               "components:\n- ../../vendor/kubeflow/common/istio-1-24/istio-install/base/\n")
    ours["overlays/kubeflow/kustomization.yaml"] = overlay.encode()

    m = merge(base, ours, theirs, "v1.10.1 -> v1.10.2")

    (c,) = m.conflicts
    assert (c.path, c.kind, c.field) == (
        seaweed, ConflictKind.DELETED_UPSTREAM,
        "spec.template.spec.containers[name=seaweedfs].securityContext.seccompProfile")
    assert "type: Localhost" in text(m, seaweed)
    assert "      securityContext:\n        seccompProfile:\n          type: RuntimeDefault\n" \
        in text(m, seaweed)  # upstream's new pod-level profile merged in
    new_jwa = V + "applications/" + jwa
    assert text(m, new_jwa) == ours[V + "apps/" + jwa].decode()
    assert text(m, V + "applications/" + katib_k) == ours[V + "apps/" + katib_k].decode()
    assert m.files[V + "applications/local-extra/limits.yaml"] == LIMITS.encode()
    assert m.files[V + "applications/katib/upstream/components/controller/local-limits.yaml"] \
        == LIMITS.encode()
    merged_example = text(m, example)
    assert "- ../common/kubeflow-roles/base\n- ../applications/local-extra\n" in merged_example
    assert "../apps/" not in merged_example
    assert text(m, "overlays/kubeflow/kustomization.yaml") == overlay.replace(
        "kubeflow/apps/", "kubeflow/applications/").replace("istio-1-24", "istio")
    assert m.folder_moves[V + "apps"] == V + "applications"
    assert m.unresolved_references == ()
    assert not any(p.startswith(V + "apps/") for p in m.files)
    touched = {seaweed, example, new_jwa, V + "applications/" + katib_k,
               V + "applications/local-extra/kustomization.yaml",
               V + "applications/local-extra/limits.yaml",
               V + "applications/katib/upstream/components/controller/local-limits.yaml"}
    assert_rest_is_upstream(m, theirs, touched)


# Every wrong rewrite issue 15 saw, on the real releases: where each reference must go
# (None: nowhere on strong enough evidence, an unresolved reference to settle).
RESTRUCTURES = [
    ("v1.9.1", "v1.10.2", {
        "contrib/ray/kuberay-operator/overlays/kubeflow":  # not spark's look-alike
            "experimental/ray/kuberay-operator/overlays/kubeflow",
        "contrib/security/PSS/dynamic/baseline": None,  # only restricted survives
        "contrib/security/PSS/dynamic/restricted": "experimental/security/PSS/dynamic/restricted",
        "common/istio-1-22/istio-install/base": "common/istio/istio-install/base",
        "apps/pipeline/upstream/env/cert-manager/platform-agnostic-multi-user":
            "applications/pipeline/upstream/env/cert-manager/platform-agnostic-multi-user",
    }),
    ("v1.8.1", "v1.9.1", {
        "common/istio-1-17/istio-install/base": "common/istio-1-22/istio-install/base",
        "common/istio-1-17/cluster-local-gateway/base":
            "common/istio-1-22/cluster-local-gateway/base",
    }),
    ("v1.8.1", "v1.10.2", {
        "common/istio-1-17/istio-install/base": "common/istio/istio-install/base",
        "common/istio-1-16/istio-install/base": None,  # common/istio is where 1-17 went
        "common/cert-manager/cert-manager/base": "common/cert-manager/base",
        "common/oidc-client/oidc-authservice/base": None,  # replaced by oauth2-proxy
        "contrib/ray/kuberay-operator/base": None,  # the operator changed beyond recognition
    }),
]


@pytest.mark.parametrize(("old", "new", "expected"), RESTRUCTURES,
                         ids=[f"{a}-to-{b}" for a, b, _ in RESTRUCTURES])
def test_references_across_restructures_are_rewritten_only_on_evidence(
    kubeflow_tree: Callable[[str], Path], old: str, new: str,
    expected: dict[str, str | None],
) -> None:
    base, theirs = load(kubeflow_tree(old)), load(kubeflow_tree(new))
    ours = dict(base)
    ours["overlays/team/kustomization.yaml"] = ("resources:\n" + "".join(
        f"- ../../{V}{ref}\n" for ref in expected)).encode()

    m = merge(base, ours, theirs, f"{old} -> {new}")

    got: dict[str, str | None] = {
        r.old_target.removeprefix(V): r.new_target.removeprefix(V)
        for r in m.rewritten_references}
    got.update({u.target.removeprefix(V): None for u in m.unresolved_references})
    assert got == expected
    assert all(r.evidence_kind in ("upstream-references", "similar-content") and r.evidence
               for r in m.rewritten_references)
    unresolved = [c for c in m.conflicts if c.kind is ConflictKind.UNRESOLVED_REFERENCE]
    assert [c.field.split("[", 1)[1].rstrip("]").removeprefix(f"../../{V}") for c in unresolved] \
        == [ref for ref, target in expected.items() if target is None]
