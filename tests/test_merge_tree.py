"""merge_trees: whole repos, moves, reference rewriting, deletions, binaries, the report."""

from __future__ import annotations

import json

from gitops.merge import ConflictKind, MergeReport, Redaction, merge_trees
from gitops.merge.references import UnresolvedReference

V = "vendor/up/"
DEPLOY = ("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: foo\nspec:\n"
          "  replicas: 1\n  template:\n    spec:\n      containers:\n      - name: foo\n"
          "        image: foo:1.0\n")
KUST = "resources:\n- deployment.yaml\n"


def b(d: dict[str, str]) -> dict[str, bytes]:
    return {k: v.encode() for k, v in d.items()}


def test_files_changed_on_one_side_take_that_side_and_local_files_stay() -> None:
    base = b({V + "a.yaml": DEPLOY, V + "b.txt": "x\n"})
    theirs = b({V + "a.yaml": DEPLOY.replace("foo:1.0", "foo:2.0"), V + "b.txt": "x\n"})
    ours = b({V + "a.yaml": DEPLOY, V + "b.txt": "local\n", "overlays/o/k.yaml": "local: 1\n"})
    m = merge_trees(base, ours, theirs, vendor_prefix="vendor/up")
    assert m.files == {V + "a.yaml": theirs[V + "a.yaml"], V + "b.txt": b"local\n",
                       "overlays/o/k.yaml": b"local: 1\n"}
    assert (m.conflicts, m.deleted, m.moves) == ((), (), {})


def test_deleted_upstream_and_untouched_locally_is_deleted() -> None:
    base = b({V + "a.yaml": DEPLOY, V + "gone.yaml": "x: 1\n"})
    ours = dict(base)
    m = merge_trees(base, ours, b({V + "a.yaml": DEPLOY}), vendor_prefix=V)
    assert (set(m.files), m.deleted, m.conflicts) == ({V + "a.yaml"}, (V + "gone.yaml",), ())


def test_deleted_upstream_but_edited_locally_is_kept_as_a_conflict() -> None:
    base = b({V + "gone.yaml": "x: 1\n"})
    ours = b({V + "gone.yaml": "x: 2\n"})
    m = merge_trees(base, ours, {}, vendor_prefix=V)
    assert m.files == ours
    (c,) = m.conflicts
    assert (c.path, c.kind, c.base, c.ours, c.theirs) == (
        V + "gone.yaml", ConflictKind.DELETED_UPSTREAM, "<present>", "<changed>", "<deleted>")


def test_deleted_locally_but_changed_upstream_stays_deleted_as_a_conflict() -> None:
    base = b({V + "a.yaml": "x: 1\n"})
    m = merge_trees(base, {}, b({V + "a.yaml": "x: 2\n"}), vendor_prefix=V)
    assert m.files == {}
    assert [(c.path, c.kind) for c in m.conflicts] == [(V + "a.yaml",
                                                         ConflictKind.DELETED_LOCALLY)]


def test_deleted_on_both_sides_is_fine() -> None:
    m = merge_trees(b({V + "a.yaml": "x: 1\n"}), {}, {}, vendor_prefix=V)
    assert (m.files, m.conflicts) == ({}, ())


def test_binary_files_changed_on_both_sides_conflict_and_keep_ours() -> None:
    base, ours, theirs = {V + "i.png": b"\x89P\xff0"}, {V + "i.png": b"\x89P\xff1"}, {
        V + "i.png": b"\x89P\xff2"}
    m = merge_trees(base, ours, theirs, vendor_prefix=V)
    assert m.files == ours
    assert [c.kind for c in m.conflicts] == [ConflictKind.BINARY]
    one_side = merge_trees(base, base, theirs, vendor_prefix=V)
    assert (one_side.files, one_side.conflicts) == (theirs, ())


def test_a_moved_file_carries_the_local_edit_to_its_new_path() -> None:
    base = b({V + "apps/foo/deployment.yaml": DEPLOY, V + "apps/foo/kustomization.yaml": KUST})
    ours = b({V + "apps/foo/deployment.yaml": DEPLOY.replace("replicas: 1", "replicas: 3"),
              V + "apps/foo/kustomization.yaml": KUST})
    theirs = b({V + "apps/foo/base/deployment.yaml": DEPLOY.replace("foo:1.0", "foo:2.0"),
                V + "apps/foo/base/kustomization.yaml": KUST})
    m = merge_trees(base, ours, theirs, vendor_prefix=V)
    assert m.moves == {V + "apps/foo/deployment.yaml": V + "apps/foo/base/deployment.yaml",
                       V + "apps/foo/kustomization.yaml": V + "apps/foo/base/kustomization.yaml"}
    assert m.files == {
        V + "apps/foo/base/deployment.yaml": DEPLOY.replace("replicas: 1", "replicas: 3")
        .replace("foo:1.0", "foo:2.0").encode(),
        V + "apps/foo/base/kustomization.yaml": KUST.encode(),
    }
    assert m.deleted == (V + "apps/foo/deployment.yaml", V + "apps/foo/kustomization.yaml")
    assert m.conflicts == ()


def _apps_tree(top: str, image: str) -> dict[str, str]:
    return {
        f"{V}{top}/foo/deployment.yaml": DEPLOY.replace("foo:1.0", image),
        f"{V}{top}/foo/kustomization.yaml": KUST,
        f"{V}{top}/bar/kustomization.yaml": "resources:\n- cm.yaml\n",
        f"{V}{top}/bar/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bar\n"
                                 "data:\n  k: v\n",
        f"{V}example/kustomization.yaml": f"resources:\n- ../{top}/foo\n- ../{top}/bar\n",
    }


OVERLAY = ("resources:\n"
           "# the app, from the vendored tree\n"
           "- ../../vendor/up/apps/foo\n"
           "- ./local.yaml\n"
           "patches:\n"
           "- path: ../../vendor/up/apps/bar/cm.yaml\n")


def test_a_folder_move_rewrites_overlay_references_in_the_same_style() -> None:
    base = b(_apps_tree("apps", "foo:1.0"))
    theirs = b(_apps_tree("applications", "foo:2.0"))
    ours = dict(base)
    ours[V + "apps/foo/deployment.yaml"] = DEPLOY.replace("replicas: 1", "replicas: 3").encode()
    ours["overlays/o/kustomization.yaml"] = OVERLAY.encode()
    ours["overlays/o/local.yaml"] = b"x: 1\n"
    m = merge_trees(base, ours, theirs, vendor_prefix=V)
    assert m.folder_moves[V + "apps"] == V + "applications"
    assert m.files["overlays/o/kustomization.yaml"].decode() == OVERLAY.replace(
        "vendor/up/apps/", "vendor/up/applications/")
    assert m.files[V + "applications/foo/deployment.yaml"].decode() == DEPLOY.replace(
        "replicas: 1", "replicas: 3").replace("foo:1.0", "foo:2.0")
    assert [(r.file, r.old, r.new, r.evidence_kind) for r in m.rewritten_references] == [
        ("overlays/o/kustomization.yaml", "../../vendor/up/apps/foo",
         "../../vendor/up/applications/foo", "upstream-references"),
        ("overlays/o/kustomization.yaml", "../../vendor/up/apps/bar/cm.yaml",
         "../../vendor/up/applications/bar/cm.yaml", "upstream-references"),
    ]
    # One reference renaming apps/foo is no move; both of upstream's renaming apps are.
    assert m.rewritten_references[0].evidence == (
        "upstream's vendor/up/example/kustomization.yaml changed ../apps/foo to "
        "../applications/foo (and 1 more): vendor/up/apps moved to vendor/up/applications")
    assert (m.conflicts, m.unresolved_references) == ((), ())
    assert not any(p.startswith(V + "apps/") for p in m.files)


def test_local_files_inside_a_moved_folder_follow_it_and_local_kustomizations_are_fixed() -> None:
    base = b(_apps_tree("apps", "foo:1.0"))
    theirs = b(_apps_tree("applications", "foo:1.0"))
    ours = dict(base)
    ours[V + "local/extra/kustomization.yaml"] = b"resources:\n- ../../apps/bar\n"
    ours[V + "apps/foo/local-patch.yaml"] = b"x: 1\n"
    m = merge_trees(base, ours, theirs, vendor_prefix=V)
    assert m.files[V + "local/extra/kustomization.yaml"] == (
        b"resources:\n- ../../applications/bar\n")
    assert m.files[V + "applications/foo/local-patch.yaml"] == b"x: 1\n"
    assert m.moves[V + "apps/foo/local-patch.yaml"] == V + "applications/foo/local-patch.yaml"


def test_a_reference_that_no_longer_resolves_is_reported() -> None:
    base = b(_apps_tree("apps", "foo:1.0"))
    theirs = {k: v for k, v in base.items() if "/bar/" not in k}
    theirs[V + "example/kustomization.yaml"] = b"resources:\n- ../apps/foo\n"
    ours = dict(base)
    ours["clusters/c1/kustomization.yaml"] = (
        b"resources:\n- ../../vendor/up/apps/bar\n- ../../vendor/up/apps/foo\n")
    m = merge_trees(base, ours, theirs, vendor_prefix=V)
    assert m.unresolved_references == (UnresolvedReference(
        "clusters/c1/kustomization.yaml", "../../vendor/up/apps/bar", V + "apps/bar"),)
    assert m.files["clusters/c1/kustomization.yaml"] == ours["clusters/c1/kustomization.yaml"]
    assert not m.clean


def test_the_report_in_markdown_and_json() -> None:
    base = b({V + "d.yaml": DEPLOY, V + "s.yaml": "apiVersion: v1\nkind: Secret\nmetadata:\n"
              "  name: db\nstringData:\n  password: base-pw\n"})
    ours = b({V + "d.yaml": DEPLOY.replace("replicas: 1", "replicas: 3"),
              V + "s.yaml": base[V + "s.yaml"].decode().replace("base-pw", "ours-pw")})
    theirs = b({V + "d.yaml": DEPLOY.replace("replicas: 1", "replicas: 2"),
                V + "s.yaml": base[V + "s.yaml"].decode().replace("base-pw", "theirs-pw")})
    red = Redaction(salt=b"fixed")
    report = MergeReport.from_tree(merge_trees(base, ours, theirs, vendor_prefix=V,
                                               redaction=red))
    md = report.to_markdown()
    for secret in ("base-pw", "ours-pw", "theirs-pw"):
        assert secret not in md and secret not in report.to_json()
    h = red.mark
    secret_row = (f"| `vendor/up/s.yaml` | `/Secret//db` | `stringData.password` | both-changed "
                  f"| `{h('base-pw')}` | `{h('ours-pw')}` | `{h('theirs-pw')}` |")
    assert md == f"""# Merge report

**2 conflicts to resolve.** Each keeps the local value (ours) in the merged tree until resolved.

| files | count |
|---|---|
| taken from upstream (changed only upstream) | 0 |
| kept local (changed only locally) | 0 |
| merged (changed on both sides) | 2 (yaml 2) |
| moved by upstream | 0 |
| deleted | 0 |
| references rewritten | 0 |
| references unresolved | 0 |

## Conflicts

| file | resource | field | kind | base | ours (kept) | theirs |
|---|---|---|---|---|---|---|
| `vendor/up/d.yaml` | `apps/Deployment//foo` | `spec.replicas` | both-changed | `1` | `3` | `2` |
{secret_row}

Resolve each with `stackctl upgrade --resolve ADDRESS --ours` or `--theirs`:

- `vendor/up/d.yaml:apps/Deployment//foo:spec.replicas`
- `vendor/up/s.yaml:/Secret//db:stringData.password`
"""
    data = json.loads(report.to_json())
    assert data["version"] == 1 and data["clean"] is False
    assert data["summary"]["conflicts"] == 2
    assert data["summary"]["files_merged"] == {"yaml": 2, "kustomization": 0, "text": 0,
                                               "binary": 0}
    assert data["conflicts"][0] == {
        "path": "vendor/up/d.yaml", "kind": "both-changed",
        "resource": "apps/Deployment//foo", "field": "spec.replicas", "lines": None,
        "base": 1, "ours": 3, "theirs": 2, "message": "",
        "address": "vendor/up/d.yaml:apps/Deployment//foo:spec.replicas", "hunk": None,
        "values": None}


SVC = ("apiVersion: v1\nkind: Service\nmetadata:\n  name: gw\nspec:\n  type: ClusterIP\n")


def test_local_edits_are_carried_to_the_new_versioned_folder_upstream_switches_to() -> None:
    # Kubeflow v1.8.0 keeps common/istio-1-16 and adds common/istio-1-17; its example moves
    # to the new one, which would leave a local edit of istio-1-16 unrendered.
    old, new = V + "common/istio-1-16/base/", V + "common/istio-1-17/base/"
    example = "resources:\n- ../common/istio-1-16/base\n- ../apps/web\n"
    base = b({old + "kustomization.yaml": "resources:\n- svc.yaml\n", old + "svc.yaml": SVC,
              V + "example/kustomization.yaml": example, V + "apps/web/kustomization.yaml": KUST})
    theirs = dict(base) | b({
        new + "kustomization.yaml": "resources:\n- svc.yaml\n",
        new + "svc.yaml": SVC.replace("  name: gw\n", "  name: gw\n  labels: {v: '17'}\n"),
        V + "example/kustomization.yaml": example.replace("istio-1-16", "istio-1-17")})
    ours = dict(base) | b({
        old + "svc.yaml": SVC.replace("ClusterIP", "NodePort  # local"),
        old + "kustomization.yaml": "resources:\n- svc.yaml\n- local.yaml\n",
        old + "local.yaml": "kind: ConfigMap\n"})
    m = merge_trees(base, ours, theirs, vendor_prefix=V)
    assert m.conflicts == ()
    assert m.files[new + "svc.yaml"].decode() == SVC.replace(
        "  name: gw\n", "  name: gw\n  labels: {v: '17'}\n").replace(
        "ClusterIP", "NodePort  # local")
    assert m.files[new + "kustomization.yaml"] == b"resources:\n- svc.yaml\n- local.yaml\n"
    assert m.files[new + "local.yaml"] == b"kind: ConfigMap\n"
    assert all(m.files[p] == ours[p] for p in ours if p.startswith(old))  # old ones stay
    assert m.carried == {old + p: new + p
                         for p in ("kustomization.yaml", "local.yaml", "svc.yaml")}


def test_a_new_overlay_beside_an_old_one_is_no_successor() -> None:
    # overlays/istio -> overlays/oauth2-proxy is a different choice, not a new version.
    example = "resources:\n- ../web/overlays/istio\n"
    base = b({V + "web/overlays/istio/kustomization.yaml": KUST,
              V + "example/kustomization.yaml": example})
    theirs = dict(base) | b({
        V + "web/overlays/oauth2-proxy/kustomization.yaml": KUST,
        V + "example/kustomization.yaml": example.replace("istio", "oauth2-proxy")})
    ours = dict(base) | b({V + "web/overlays/istio/kustomization.yaml": KUST + "- local.yaml\n"})
    m = merge_trees(base, ours, theirs, vendor_prefix=V)
    assert m.carried == {}
    assert m.files[V + "web/overlays/oauth2-proxy/kustomization.yaml"] == KUST.encode()


# ----------------------------------------------------------- references on evidence

def _component(top: str, name: str, lines: list[str]) -> dict[str, str]:
    body = "".join(f"  {x}: '{i}'\n" for i, x in enumerate(lines))
    return {f"{V}{top}/{name}/kustomization.yaml": "resources:\n- cm.yaml\n",
            f"{V}{top}/{name}/cm.yaml": f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n"
                                        f"  name: {name}\ndata:\n{body}"}


WORDS = [f"key-{w}" for w in ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot")]


def _overlay(*refs: str) -> bytes:
    return ("resources:\n" + "".join(f"- ../../{V}{r}\n" for r in refs)).encode()


def test_a_folder_only_content_says_moved_is_rewritten_naming_the_similarity() -> None:
    base = b(_component("contrib/ray", "operator", WORDS))
    theirs = b(_component("experimental/ray", "operator", [*WORDS, "key-golf"])
               | _component("applications/spark", "operator", ["other"]))
    ours = {**base, "overlays/o/kustomization.yaml": _overlay("contrib/ray/operator")}
    m = merge_trees(base, ours, theirs, vendor_prefix=V)
    (r,) = m.rewritten_references
    assert (r.new, r.evidence_kind) == ("../../vendor/up/experimental/ray/operator",
                                        "similar-content")
    assert r.evidence == ("its kustomization tree is 0.93 similar to vendor/up/experimental/"
                          "ray/operator's (next best vendor/up/applications/spark/operator: "
                          "0.50)")


def test_a_look_alike_of_another_name_or_a_tie_is_an_unresolved_reference_not_a_guess() -> None:
    base = b(_component("pss", "baseline", WORDS) | _component("pss", "restricted", WORDS))
    theirs = b(_component("security/pss", "restricted", WORDS))
    ours = {**base, "overlays/o/kustomization.yaml": _overlay("pss/baseline",
                                                              "pss/restricted")}
    m = merge_trees(base, ours, theirs, vendor_prefix=V)
    # restricted went where its own content went; baseline's look-alike has another name.
    assert [(r.old_target, r.new_target) for r in m.rewritten_references] == [
        (V + "pss/restricted", V + "security/pss/restricted")]
    (u,) = m.unresolved_references
    assert u.target == V + "pss/baseline"
    (c,) = m.conflicts
    assert (c.kind, c.address) == (
        ConflictKind.UNRESOLVED_REFERENCE,
        "overlays/o/kustomization.yaml::resources[../../vendor/up/pss/baseline]")
    # Two new folders equally like the old one: a tie, no rewrite.
    theirs = b(_component("a", "baseline", WORDS) | _component("b", "baseline", WORDS))
    m = merge_trees(base, {**base, "overlays/o/kustomization.yaml": _overlay("pss/baseline")},
                    theirs, vendor_prefix=V)
    assert m.rewritten_references == ()
    assert "a tie" in m.unresolved_references[0].candidates[0].why


def test_one_reference_replaced_by_another_components_is_no_move() -> None:
    base = b(_component("apps", "usage-reporter", WORDS)
             | {f"{V}example/kustomization.yaml": "resources:\n- ../apps/usage-reporter\n"})
    theirs = b(_component("apps", "model-registry", ["other", "keys"])
               | {f"{V}example/kustomization.yaml": "resources:\n- ../apps/model-registry\n"})
    ours = {**base, "overlays/o/kustomization.yaml": _overlay("apps/usage-reporter")}
    m = merge_trees(base, ours, theirs, vendor_prefix=V)
    assert m.rewritten_references == () and m.moves == {}
    assert [u.target for u in m.unresolved_references] == [V + "apps/usage-reporter"]
