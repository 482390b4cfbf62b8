"""gitops.yamlio's safe loader reads what kustomize (Go yaml) reads."""

from __future__ import annotations

from gitops.yamlio import load_all_safe, load_safe


def test_a_plain_equals_sign_is_the_string_kustomize_reads() -> None:
    # Kubeflow v1.10.2's model-registry overlay: `delimiter: =` in a replacement; YAML 1.1's
    # `value` type made PyYAML fail on it, and with it the render walk of every cluster.
    text = "replacements:\n- targets:\n  - options:\n      delimiter: =\n      index: 1\n"
    assert load_safe(text) == {"replacements": [{"targets": [
        {"options": {"delimiter": "=", "index": 1}}]}]}
    assert load_all_safe("a: =\n---\nb: '='\n") == [{"a": "="}, {"b": "="}]
