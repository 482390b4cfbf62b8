"""Versioned folders upstream superseded by a new sibling while keeping the old one.

Kubeflow v1.8.0 ships both `common/istio-1-16` (as in v1.7.0) and the new
`common/istio-1-17`, and its example's references switch from the first to the second. No
file moved, so the move detection finds nothing, yet a local edit of
`common/istio-1-16/istio-install/base/patches/service.yaml` would silently stop being
rendered. Successors are read from upstream's own kustomizations: a reference replaced in
place (same position in the list) whose old target still exists upstream and whose new
target is new, differing in one folder whose name differs only in its version numbers, votes
for `old folder -> new folder`.
"""

from __future__ import annotations

import difflib
import posixpath
import re
from collections import Counter
from collections.abc import Mapping

from gitops.merge.kustomization import is_kustomization
from gitops.merge.upstreamrefs import dirs_of, kustomization_refs


def _refs(data: bytes, folder: str) -> list[str] | None:
    refs = kustomization_refs(data)
    if refs is None:
        return None
    return [posixpath.normpath(posixpath.join(folder, r.rstrip("/") or "."))
            for r in refs if "://" not in r]


def _sibling_heads(old: str, new: str) -> tuple[str, str] | None:
    """`common/istio-1-16/x/base`, `common/istio-1-17/x/base` -> the two differing folders,
    when the paths differ in exactly one folder of the same parent."""
    a, b = old.split("/"), new.split("/")
    if len(a) != len(b):
        return None
    diff = [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]
    if len(diff) != 1:
        return None
    i = diff[0]
    if _stem(a[i]) != _stem(b[i]) or not _stem(a[i]):
        return None  # not two versions of one thing (overlays/istio vs overlays/oauth2-proxy)
    return "/".join(a[: i + 1]), "/".join(b[: i + 1])


def _stem(name: str) -> str:
    """A folder name without its version: `istio-1-16` -> `istio`, `v1beta1` -> ``."""
    return re.sub(r"[-_.]?v?\d+", "", name)


def detect_successors(base: Mapping[str, bytes], theirs: Mapping[str, bytes]
                      ) -> dict[str, str]:
    """old folder -> the new sibling upstream's kustomizations now use instead."""
    base_dirs, their_dirs = dirs_of(base), dirs_of(theirs)
    votes: Counter[tuple[str, str]] = Counter()
    for path, data in theirs.items():
        old_data = base.get(path)
        if old_data is None or old_data == data or not is_kustomization(path):
            continue
        folder = posixpath.dirname(path)
        b_refs, t_refs = _refs(old_data, folder), _refs(data, folder)
        if b_refs is None or t_refs is None:
            continue
        sm = difflib.SequenceMatcher(None, b_refs, t_refs, autojunk=False)
        for tag, i1, i2, j1, j2 in sm.get_opcodes():
            if tag != "replace":
                continue
            for old, new in zip(b_refs[i1:i2], t_refs[j1:j2], strict=False):
                still_there = old in their_dirs or old in theirs
                is_new = new not in base_dirs and new not in base
                heads = _sibling_heads(old, new)
                if still_there and is_new and heads is not None:
                    votes[heads] += 1
    out: dict[str, str] = {}
    for (old, new), _n in votes.most_common():
        if old not in out and new not in base_dirs:
            out[old] = new
    return out
