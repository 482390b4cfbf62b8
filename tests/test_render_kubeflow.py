"""Render on real Kubeflow releases from ../shared (skipped when absent)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from gitops.render import RemoteReferenceError, kind_rank, render_path
from gitops.resource import ResourceId
from gitops.yamlio import load_all_safe

pytestmark = [pytest.mark.kubeflow, pytest.mark.slow]


def test_kubeflow_v1_4_example_renders_deterministically_with_identities_from_one_parse(
        kubeflow_tree: Callable[[str], Path], kustomize: Path) -> None:
    example = kubeflow_tree("v1.4.0") / "example"
    r = render_path(example, name="kubeflow")
    assert len(r.objects) == 587
    # The identities read from kustomize's text are those a full parse gives, in order.
    bodies = load_all_safe(r.text)
    assert [ResourceId.of(b) for b in bodies] == [o.id for o in r.objects]
    assert bodies == [o.body for o in r.objects]
    assert len({o.id for o in r.objects}) == len(r.objects)
    ranks = [kind_rank(o.id.kind) for o in r.objects]
    assert ranks == sorted(ranks)
    kinds = [o.id.kind for o in r.objects]
    assert kinds[0] == "Namespace" and kinds[-1].endswith("WebhookConfiguration")
    assert kinds.index("CustomResourceDefinition") < kinds.index("Deployment")
    # Warnings come once each, though dozens of kustomizations use the deprecated fields.
    assert sum("'bases' is deprecated" in w for w in r.warnings) == 1
    again = render_path(example, name="kubeflow", use_cache=False)
    assert again.text == r.text
    assert render_path(example, name="kubeflow").cache_hit


def test_kubeflow_v1_11_example_is_refused_for_its_remote_argo_base(
        kubeflow_tree: Callable[[str], Path], kustomize: Path) -> None:
    example = kubeflow_tree("v1.11.0") / "example"
    with pytest.raises(RemoteReferenceError) as e:
        render_path(example, name="kubeflow")
    msg = str(e.value)
    assert "github.com/argoproj/argo-workflows/manifests/base/crds/minimal?ref=v3.7.3" in msg
    assert "kustomization.yaml (resources)" in msg and "vendor" in msg
