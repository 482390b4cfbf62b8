"""What each reference the merge rewrote changes in the clusters that read it: the objects
its old target rendered (from the current branch) against those its new target renders
(from the merged tree), so that no rewrite changes what a cluster deploys unseen (the
Kubeflow v1.9.1 jump that rewrote `istio-1-17` to `istio-cni-1-22` silently added a
DaemonSet `istio-cni-node`).

A target whose files are the same on both sides (a folder that only moved) renders the same
objects and is not built. A Component cannot be built alone: its effect shows in the
clusters' own changes, and the report says so.
"""

from __future__ import annotations

import os
import posixpath
import tempfile
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gitops import git
from gitops.errors import UserError
from gitops.kustomize import Kustomize
from gitops.merge.kustomization import KUSTOMIZATION_NAMES, is_kustomization
from gitops.merge.references import SAME_TARGET, RewrittenReference
from gitops.merge.upstreamrefs import kustomization_refs
from gitops.render import normalise
from gitops.stack import CLUSTERS_DIR
from gitops.yamlio import load_safe

MAX_LISTED = 30


@dataclass(frozen=True)
class RewriteEffect:
    """The objects one rewritten reference adds to and removes from `clusters`."""

    file: str
    old: str
    new: str
    clusters: tuple[str, ...]
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    note: str = ""  # "moved unchanged", "a Component", or why it was not built

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "old": self.old, "new": self.new,
                "clusters": list(self.clusters), "added": list(self.added),
                "removed": list(self.removed), "note": self.note}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RewriteEffect:
        return cls(file=d["file"], old=d["old"], new=d["new"],
                   clusters=tuple(d.get("clusters") or ()), added=tuple(d.get("added") or ()),
                   removed=tuple(d.get("removed") or ()), note=d.get("note") or "")


def _kustomization(files: Mapping[str, Any], folder: str) -> str | None:
    for name in KUSTOMIZATION_NAMES:
        p = f"{folder}/{name}" if folder else name
        if p in files:
            return p
    return None


def _data(files: Mapping[str, tuple[int, bytes]], path: str) -> Any:
    try:
        return load_safe(files[path][1].decode("utf-8"), path=path)
    except (UnicodeDecodeError, UserError):
        return None


def closure(files: Mapping[str, tuple[int, bytes]], start: str) -> dict[str, bytes]:
    """Every file a kustomization folder (or a file) reads, recursively, by repo path."""
    out: dict[str, bytes] = {}
    todo, seen = [start], set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        if path in files:
            out[path] = files[path][1]
            continue
        k = _kustomization(files, path)
        if k is None:
            continue
        out[k] = files[k][1]
        for ref in kustomization_refs(files[k][1]) or ():
            if "://" not in ref:
                todo.append(posixpath.normpath(posixpath.join(path, ref.rstrip("/") or ".")))
    return out


def _relative(tree: Mapping[str, bytes], root: str) -> dict[str, bytes]:
    return {posixpath.relpath(p, root): d for p, d in tree.items()}


def readers(files: Mapping[str, tuple[int, bytes]], clusters: Sequence[str]
            ) -> dict[str, set[str]]:
    """Kustomization file -> the clusters whose render reads it."""
    out: dict[str, set[str]] = {}
    for name in clusters:
        for p in closure(files, f"{CLUSTERS_DIR}/{name}"):
            if is_kustomization(p):
                out.setdefault(p, set()).add(name)
    return out


def _ids(k: Kustomize, root: Path, target: str) -> tuple[set[str] | None, str]:
    """The objects `kustomize build` of one folder gives, or None and why not."""
    folder = root / target
    kfile = next((folder / n for n in KUSTOMIZATION_NAMES if (folder / n).is_file()), None)
    if kfile is None:
        return None, "a file, not a kustomization: its effect shows in the clusters' changes"
    if "kind: Component" in kfile.read_text(encoding="utf-8", errors="replace"):
        return None, "a Component (not built alone): its effect shows in the clusters' changes"
    try:
        out = k.build(folder, what=target)
    except UserError as e:
        detail = str(getattr(e, "detail", "") or e.message).replace(f"{root}/", "")
        return None, f"not built alone: {detail[:160]}"
    objs = normalise(out.stdout, what=target)
    return {f"{o.id.kind}/{o.id.name}" + (f" -n {o.id.namespace}" if o.id.namespace else "")
            for o in objs}, ""


def rewrite_effects(rewritten: Sequence[RewrittenReference], before: git.Files,
                    after: git.Files, clusters: Sequence[str], k: Kustomize
                    ) -> tuple[RewriteEffect, ...]:
    """The objects each rewritten reference adds and removes, per cluster reading it."""
    todo = [r for r in rewritten if r.evidence_kind != SAME_TARGET and r.old_target
            and r.new_target]
    if not todo:
        return ()
    read_by = readers(after, clusters)
    plan: dict[tuple[str, str], str] = {}
    for r in todo:
        old, new = closure(before, r.old_target), closure(after, r.new_target)
        same = _relative(old, r.old_target) == _relative(new, r.new_target)
        plan[(r.old_target, r.new_target)] = "moved unchanged: the same objects" if same \
            else ""
    built: dict[tuple[str, str], tuple[set[str] | None, str]] = {}
    wanted = {(side, t) for (o, n), note in plan.items() if not note
              for side, t in (("before", o), ("after", n))}
    if wanted:
        with tempfile.TemporaryDirectory(prefix="stackctl-rewrites-") as tmp:
            roots = {"before": Path(tmp) / "before", "after": Path(tmp) / "after"}
            for side, files in (("before", before), ("after", after)):
                needed: dict[str, tuple[int, bytes]] = {}
                for s, t in wanted:
                    if s == side:
                        needed.update({p: files[p] for p in closure(files, t)})
                git.write_files(roots[side], needed)
            with ThreadPoolExecutor(max_workers=max(1, min(len(wanted),
                                                           os.cpu_count() or 1))) as pool:
                keys = sorted(wanted)
                for key, res in zip(keys, pool.map(
                        lambda st: _ids(k, roots[st[0]], st[1]), keys), strict=True):
                    built[key] = res
    out = []
    for r in todo:
        note = plan[(r.old_target, r.new_target)]
        added: tuple[str, ...] = ()
        removed: tuple[str, ...] = ()
        if not note:
            (b, why_b), (a, why_a) = built[("before", r.old_target)], built[("after",
                                                                           r.new_target)]
            if b is None or a is None:
                note = why_b or why_a
            else:
                added, removed = tuple(sorted(a - b))[:MAX_LISTED], tuple(sorted(b - a))[
                    :MAX_LISTED]
                note = "" if added or removed else "the same objects (their content changes)"
        out.append(RewriteEffect(r.file, r.old, r.new, tuple(sorted(read_by.get(r.file, ()))),
                                 added, removed, note))
    return tuple(out)


__all__ = ["RewriteEffect", "closure", "readers", "rewrite_effects"]
