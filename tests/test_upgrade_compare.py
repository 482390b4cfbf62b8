"""The upgrade's per-cluster summary (gitops.upgrade.compare and renders.summarise): the same
objects, images and flags as `stackctl plan`'s diff, without its field changes; identical
texts never parsed; each distinct text parsed once for all clusters. The before side renders
in place only where the working tree holds the commit's files (real git, real kustomize).
And the merge report kept in the upgrade state reads back whole (serial.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pygit2
import pytest

from gitops import git
from gitops import render as render_mod
from gitops.diff import diff_object_sets
from gitops.errors import RenderError, UserError
from gitops.kustomize import find_kustomize
from gitops.merge import Conflict, ConflictKind, MergeReport
from gitops.merge.references import RewrittenReference, UnresolvedReference
from gitops.redact import Redactor
from gitops.render import Rendered, normalise
from gitops.resource import ResourceId
from gitops.stack import Stack
from gitops.upgrade.compare import Comparison
from gitops.upgrade.renders import render_side, summarise
from gitops.upgrade.serial import merge_report_from_dict
from gitops.yamlio import dump_safe, load_safe
from tests.fixtures.gitrepos import commit_all, write_files

DEPLOY = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: ml
spec:
  replicas: 1
  template:
    spec:
      containers:
      - name: web
        image: reg/web:1.0
      - name: proxy
        image: reg/proxy:1.0
"""
CRD = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: models.ml.example.com
spec:
  group: ml.example.com
  versions:
  - name: v1beta1
    served: true
    storage: true
"""
SECRET = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  namespace: ml\n" \
         "stringData:\n  password: {}\n"
CM = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {}\n  namespace: ml\n" \
     "data:\n  mode: fast\n"


def rendered(name: str, *docs: str) -> Rendered:
    text = "".join(f"---\n{d}" for d in docs)
    objects = tuple(normalise(text, what=f"cluster {name}"))
    return Rendered(cluster=name, objects=objects, text=text, warnings=(),
                    kustomize_version="v5.8.2", cache_hit=False)


def reordered(doc: str) -> str:
    """The same object with its keys and containers in another order (another text)."""
    data: dict[str, Any] = load_safe(doc)
    data["spec"]["template"]["spec"]["containers"].reverse()
    return dump_safe(dict(reversed(list(data.items()))))


BEFORE = (DEPLOY, CRD, SECRET.format("old-password"), CM.format("gone"),
          CM.format("same"))
AFTER = (DEPLOY.replace("replicas: 1", "replicas: 2").replace("web:1.0", "web:1.1"),
         CRD.replace("storage: true", "storage: false")
         + "  - name: v1\n    served: true\n    storage: true\n",
         SECRET.format("new-password"), CM.format("new"), CM.format("same"))


def test_the_summary_has_the_objects_images_and_flags_of_the_plans_diff() -> None:
    b, a = rendered("dev", *BEFORE), rendered("dev", *AFTER)
    r = Redactor(salt=b"t")
    compare = Comparison(r)
    compare.prepare(b, a)
    got = compare.diff(b, a)
    want = diff_object_sets([load_safe(d) for d in BEFORE], [load_safe(d) for d in AFTER],
                            redactor=Redactor(salt=b"t"))

    def shape(d: Any) -> list[Any]:
        return [(c.id, c.action, c.api_version_before, c.api_version_after, c.images,
                 c.crd_versions) for c in d.objects]

    assert shape(got) == shape(want)
    assert [str(c.id) for c in got.changed] == [
        "Secret/db -n ml", "CustomResourceDefinition.apiextensions.k8s.io/"
        "models.ml.example.com", "Deployment.apps/web -n ml"]
    assert [str(c.id) for c in got.added + got.removed] == ["ConfigMap/new -n ml",
                                                            "ConfigMap/gone -n ml"]
    assert [(i.container, i.before, i.after) for i in got.images] == [
        ("web", "reg/web:1.0", "reg/web:1.1")]
    assert got.images == want.images and got.unchanged == want.unchanged == 1
    assert all(c.fields == () for c in got.changed)  # field detail is `stackctl plan`'s
    crd = got.changed[1].crd_versions
    assert crd is not None and crd.describe() == \
        "versions added: v1; storage version v1beta1 -> v1"


def test_a_reordered_object_is_unchanged_as_the_plan_counts_it() -> None:
    b, a = rendered("dev", DEPLOY), rendered("dev", reordered(DEPLOY))
    assert b.objects[0].yaml != a.objects[0].yaml
    compare = Comparison(Redactor(salt=b"t"))
    compare.prepare(b, a)
    d = compare.diff(b, a)
    assert (d.is_empty, d.unchanged) == (True, 1)
    assert diff_object_sets([load_safe(DEPLOY)], [load_safe(reordered(DEPLOY))],
                            redactor=Redactor(salt=b"t")).is_empty


def test_identical_texts_are_never_parsed_and_shared_ones_are_parsed_once(
        monkeypatch: pytest.MonkeyPatch) -> None:
    parsed: list[str] = []

    def counting(text: str, **kw: Any) -> Any:
        parsed.append(text)
        return load_safe(text, **kw)

    monkeypatch.setattr(render_mod, "load_safe", counting)
    before = {n: rendered(n, *BEFORE) for n in ("dev", "prod")}
    after = {n: rendered(n, *AFTER) for n in ("dev", "prod")}
    parsed.clear()  # normalise read every identity without a parse; count from here
    clusters = summarise(before, after, redactor=Redactor())
    assert [(c.name, c.status, c.added, c.removed, c.changed) for c in clusters] == [
        ("dev", "changed", 1, 1, 3), ("prod", "changed", 1, 1, 3)]
    assert CM.format("same") not in parsed  # the same text before and after: no parse
    assert sorted(parsed) == sorted(set(BEFORE[:4]) | set(AFTER[:4]))  # each once


def test_secret_values_reach_no_summary_and_changed_secrets_still_count() -> None:
    before = {"dev": rendered("dev", *BEFORE)}
    after = {"dev": rendered("dev", *AFTER)}
    (dev,) = summarise(before, after, redactor=Redactor())
    text = json.dumps(dev.to_dict())
    assert "password" not in text and "Secret/db -n ml" in text
    assert "~ Secret/db -n ml" in dev.objects


def test_clusters_added_removed_failed_and_unchanged_are_told_apart() -> None:
    same = rendered("same", DEPLOY)
    before: dict[str, Rendered | UserError] = {
        "gone": rendered("gone", DEPLOY), "same": same,
        "broken": RenderError("kustomize failed for cluster broken: no such patch")}
    after = {"new": rendered("new", DEPLOY, CRD), "same": rendered("same", DEPLOY),
             "broken": rendered("broken", DEPLOY)}
    got = {c.name: c for c in summarise(before, after, redactor=Redactor())}
    assert {n: c.status for n, c in got.items()} == {
        "broken": "failed", "gone": "removed", "new": "added", "same": "unchanged"}
    assert (got["new"].added, got["new"].objects_before, got["new"].objects_after) == \
        (2, None, 2)
    assert got["new"].images == (
        "Deployment.apps/web -n ml [proxy]: (none) -> reg/proxy:1.0",
        "Deployment.apps/web -n ml [web]: (none) -> reg/web:1.0")
    assert (got["gone"].removed, got["broken"].error_side) == (1, "before")
    assert got["broken"].error == "kustomize failed for cluster broken: no such patch"


def test_the_merge_report_reads_back_whole_carried_folders_included() -> None:
    # --continue and --status rebuild the report from the state's copy of to_dict().
    rid = ResourceId(group="apps", kind="Deployment", namespace="", name="web")
    report = MergeReport(
        conflicts=(Conflict(path="vendor/up/a.yaml", kind=ConflictKind.BOTH_CHANGED,
                            resource=rid, field="spec.replicas", base=1, ours=3, theirs=2),),
        merged={"yaml": 1, "kustomization": 0, "text": 0, "binary": 0}, taken_upstream=4,
        kept_local=1, unchanged=7, moves={"vendor/up/a/x.yaml": "vendor/up/b/x.yaml"},
        folder_moves={"vendor/up/a": "vendor/up/b"},
        rewritten_references=(RewrittenReference(file="overlays/o/kustomization.yaml",
                                                 old="../../vendor/up/a",
                                                 new="../../vendor/up/b"),),
        unresolved_references=(UnresolvedReference(file="clusters/c/kustomization.yaml",
                                                   reference="../../vendor/up/gone",
                                                   target="vendor/up/gone"),),
        deleted=("vendor/up/old.yaml",),
        carried={"vendor/up/istio-1-16/svc.yaml": "vendor/up/istio-1-17/svc.yaml"})
    back = merge_report_from_dict(json.loads(json.dumps(report.to_dict())))
    assert back == report
    assert back.carried == {"vendor/up/istio-1-16/svc.yaml": "vendor/up/istio-1-17/svc.yaml"}
    assert "istio-1-17/svc.yaml" in back.to_markdown()


# ------------------------------------------------------------------ the before side in place

KUST = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"


@pytest.fixture
def stack(tmp_path: Path, git_env: Path, kustomize: Path) -> Stack:
    root = tmp_path / "platform"
    write_files(root, {
        "vendor/up/kustomization.yaml": KUST + "resources:\n- deployment.yaml\n",
        "vendor/up/deployment.yaml": DEPLOY,
        "clusters/dev/kustomization.yaml": KUST + "resources:\n- ../../vendor/up\n",
        "clusters/prod/kustomization.yaml": KUST + "resources:\n- ../../vendor/up\n"
        "- cm.yaml\n",
        "clusters/prod/cm.yaml": CM.format("prod"),
    })
    commit_all(pygit2.init_repository(str(root), initial_head="main"), "the stack")
    return Stack(root=root, name="up", source="x")


def rendered_ok(results: dict[str, Rendered | UserError]) -> dict[str, Rendered]:
    assert all(isinstance(r, Rendered) for r in results.values()), results
    return {n: r for n, r in results.items() if isinstance(r, Rendered)}


def head_tree(stack: Stack) -> tuple[str, git.Files]:
    repo = git.open_repo(stack.root)
    head = repo.head_commit()
    assert head is not None
    return head, repo.read_tree(head)


def test_a_clean_working_tree_renders_in_place_as_the_export_would(stack: Stack) -> None:
    head, files = head_tree(stack)
    k = find_kustomize()
    in_place = rendered_ok(render_side(stack, files, k, label="before", commit=head))
    exported = rendered_ok(render_side(stack, files, k, label="before"))
    assert {n: r.source for n, r in in_place.items()} == {"dev": head, "prod": head}
    assert {n: r.source for n, r in exported.items()} == {"dev": None, "prod": None}
    assert {n: [o.yaml for o in r.objects] for n, r in in_place.items()} == \
        {n: [o.yaml for o in r.objects] for n, r in exported.items()}


def test_a_cluster_reading_a_changed_or_untracked_file_renders_the_commits_tree(
        stack: Stack) -> None:
    head, files = head_tree(stack)
    write_files(stack.root, {"vendor/up/deployment.yaml": DEPLOY.replace("replicas: 1",
                                                                         "replicas: 5")})
    got = rendered_ok(render_side(stack, files, find_kustomize(), label="before",
                                  commit=head))
    assert {n: r.source for n, r in got.items()} == {"dev": None, "prod": None}
    assert all("replicas: 1\n" in r.objects[-1].yaml for r in got.values())
    write_files(stack.root, {"vendor/up/deployment.yaml": DEPLOY,  # back as committed
                             "clusters/prod/extra.yaml": CM.format("untracked")})
    got = rendered_ok(render_side(stack, files, find_kustomize(), label="before",
                                  commit=head))
    assert {n: r.source for n, r in got.items()} == {"dev": head, "prod": None}
