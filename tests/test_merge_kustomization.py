"""merge_file on kustomization.yaml: keyed sets, so local entries survive upstream edits."""

from __future__ import annotations

from textwrap import dedent

from gitops.merge import ConflictKind, MergeKind, Redaction, merge_file

BASE = dedent("""\
    apiVersion: kustomize.config.k8s.io/v1beta1
    kind: Kustomization
    namespace: ml
    resources:
      - deployment.yaml
      - service.yaml
    images:
      - name: ghcr.io/acme/web
        newTag: v1.0
    configMapGenerator:
      - name: web-config
        literals:
          - MODE=prod
          - REPLICAS=1
    """)


def edit(text: str, *pairs: tuple[str, str]) -> str:
    for old, new in pairs:
        assert old in text, old
        text = text.replace(old, new, 1)
    return text


def test_local_resources_entry_survives_an_upstream_edit_of_the_list() -> None:
    ours = edit(BASE, ("  - service.yaml\n", "  - service.yaml\n  # ours\n  - limits.yaml\n"))
    theirs = edit(BASE, ("  - deployment.yaml\n  - service.yaml\n",
                         "  - deployment.yaml\n  - pdb.yaml\n"))
    m = merge_file("k/kustomization.yaml", BASE, ours, theirs)
    assert m.kind is MergeKind.KUSTOMIZATION and m.conflicts == ()
    assert m.text == edit(BASE, ("  - service.yaml\n",
                                 "  - pdb.yaml\n  # ours\n  - limits.yaml\n"))


def test_images_merge_by_name_field_by_field() -> None:
    ours = edit(BASE, ("    newTag: v1.0\n",
                       "    newName: mirror.local/acme/web  # mirror\n    newTag: v1.0\n"))
    theirs = edit(BASE, ("newTag: v1.0", "newTag: v1.1"),
                  ("images:\n", "images:\n  - name: busybox\n    newTag: '1.36'\n"))
    m = merge_file("kustomization.yaml", BASE, ours, theirs)
    assert m.conflicts == ()
    assert m.text == edit(ours, ("newTag: v1.0", "newTag: v1.1"),
                          ("images:\n", "images:\n  - name: busybox\n    newTag: '1.36'\n"))


def test_generator_literals_merge_by_key() -> None:
    ours = edit(BASE, ("      - REPLICAS=1\n", "      - REPLICAS=1\n      - SUPPORT=wiki\n"))
    theirs = edit(BASE, ("MODE=prod", "MODE=production"),
                  ("      - REPLICAS=1\n", "      - REPLICAS=1\n      - REGISTRY=http://r\n"))
    m = merge_file("kustomization.yaml", BASE, ours, theirs)
    assert m.conflicts == ()
    assert m.text == edit(BASE, ("MODE=prod", "MODE=production"), (
        "      - REPLICAS=1\n",
        "      - REPLICAS=1\n      - REGISTRY=http://r\n      - SUPPORT=wiki\n"))


def test_same_literal_changed_differently_is_a_conflict_keeping_ours() -> None:
    ours = edit(BASE, ("REPLICAS=1", "REPLICAS=3"))
    theirs = edit(BASE, ("REPLICAS=1", "REPLICAS=2"))
    m = merge_file("kustomization.yaml", BASE, ours, theirs)
    assert m.text == ours
    (c,) = m.conflicts
    assert (c.kind, c.resource, c.field, c.base, c.ours, c.theirs) == (
        ConflictKind.BOTH_CHANGED, None,
        "configMapGenerator[name=web-config].literals[REPLICAS]",
        "REPLICAS=1", "REPLICAS=3", "REPLICAS=2")


def test_secret_generator_literal_conflicts_are_hashed() -> None:
    base = "secretGenerator:\n- name: db\n  literals:\n  - PASSWORD=base\n"
    red = Redaction(salt=b"s")
    m = merge_file("kustomization.yaml", base, base.replace("=base", "=ours1"),
                   base.replace("=base", "=theirs1"), redaction=red)
    (c,) = m.conflicts
    assert (c.base, c.ours, c.theirs) == (
        red.mark("PASSWORD=base"), red.mark("PASSWORD=ours1"), red.mark("PASSWORD=theirs1"))


def test_entry_removed_upstream_and_unchanged_locally_is_removed() -> None:
    ours = edit(BASE, ("namespace: ml", "namespace: ml-prod"))
    theirs = edit(BASE, ("  - service.yaml\n", ""))
    m = merge_file("kustomization.yaml", BASE, ours, theirs)
    assert (m.text, m.conflicts) == (edit(ours, ("  - service.yaml\n", "")), ())


def test_entry_removed_upstream_but_edited_locally_is_a_conflict() -> None:
    ours = edit(BASE, ("    newTag: v1.0\n", "    newTag: v1.0\n    newName: mirror/web\n"))
    theirs = edit(BASE, ("  - name: ghcr.io/acme/web\n    newTag: v1.0\n", "  []\n"))
    theirs = theirs.replace("images:\n  []\n", "images: []\n")
    m = merge_file("kustomization.yaml", BASE, ours, theirs)
    assert m.text == ours
    (c,) = m.conflicts
    assert (c.kind, c.field) == (ConflictKind.DELETED_UPSTREAM,
                                 "images[name=ghcr.io/acme/web]")


def test_patches_merge_by_path_and_labels_pairs_by_key() -> None:
    base = dedent("""\
        patches:
        - path: a.yaml
        - path: b.yaml
          target: {kind: Deployment}
        labels:
        - includeSelectors: true
          pairs:
            app: web
        commonAnnotations:
          owner: upstream
        """)
    ours = edit(base, ("- path: a.yaml\n", "- path: a.yaml\n- path: local.yaml\n"),
                ("    app: web\n", "    app: web\n    team: ml\n"))
    theirs = edit(base, ("target: {kind: Deployment}", "target: {kind: StatefulSet}"),
                  ("    app: web\n", "    app: web\n    tier: front\n"),
                  ("owner: upstream", "owner: upstream\n  docs: https://x"))
    m = merge_file("kustomization.yaml", base, ours, theirs)
    assert m.conflicts == ()
    assert m.text == dedent("""\
        patches:
        - path: a.yaml
        - path: local.yaml
        - path: b.yaml
          target: {kind: StatefulSet}
        labels:
        - includeSelectors: true
          pairs:
            app: web
            tier: front
            team: ml
        commonAnnotations:
          owner: upstream
          docs: https://x
        """)


def test_entry_removed_locally_stays_removed_when_upstream_renames_its_folder() -> None:
    # Kubeflow v1.10.2 renames every ../apps/ entry to ../applications/; ours had removed
    # the tensorboards web app from the example.
    base = "resources:\n- ../apps/jupyter\n- ../apps/tensorboards-web-app\n- ../apps/training\n"
    ours = "resources:\n- ../apps/jupyter\n- ../apps/training\n- ../local/quota\n"
    theirs = base.replace("../apps/", "../applications/")
    m = merge_file("kustomization.yaml", base, ours, theirs)
    assert (m.text, m.conflicts) == (
        "resources:\n- ../applications/jupyter\n- ../applications/training\n"
        "- ../local/quota\n", ())
