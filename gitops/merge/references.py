"""Kustomization references after a merge: rewritten when upstream moved their target,
reported when they no longer resolve.

Checked: every kustomization outside the vendored tree (overlays/, clusters/, ...) and every
kustomization inside it that is not upstream's file as is (added or edited locally). Paths
are resolved from the kustomization's folder; a rewritten path keeps the reference's style
(relative, `./` prefix, trailing slash).
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass

from gitops import yamlio
from gitops.errors import YamlError
from gitops.merge.kustomization import is_kustomization, references
from gitops.merge.moves import Moves


@dataclass(frozen=True)
class RewrittenReference:
    """In `file`, the reference `old` became `new` (upstream moved its target)."""

    file: str
    old: str
    new: str


@dataclass(frozen=True)
class UnresolvedReference:
    """In `file`, `reference` (resolving to repo path `target`) no longer exists."""

    file: str
    reference: str
    target: str


def dirs_of(paths: Mapping[str, bytes]) -> set[str]:
    out: set[str] = {""}
    for p in paths:
        parts = p.split("/")
        for i in range(1, len(parts)):
            out.add("/".join(parts[:i]))
    return out


def _resolve(folder: str, ref: str) -> str:
    return posixpath.normpath(posixpath.join(folder, ref.rstrip("/") or "."))


def _styled(original: str, target: str, folder: str) -> str:
    new = posixpath.relpath(target, folder or ".")
    if original.startswith("./") and not new.startswith("../"):
        new = "./" + new
    if original.endswith("/") and not new.endswith("/"):
        new += "/"
    return new


def _replace(text: str, old: str, new: str) -> str:
    pattern = re.compile(r"(?<![^\s'\"=\[,])" + re.escape(old) + r"(?![^\s'\"\],])")
    return pattern.sub(lambda _m: new, text)


def fix_references(
    files: dict[str, bytes], *, ours: Mapping[str, bytes], theirs: Mapping[str, bytes],
    vendor_prefix: str, moves: Moves, origin: Mapping[str, str],
) -> tuple[list[RewrittenReference], list[UnresolvedReference]]:
    """Rewrite references in `files` (edited in place); `origin` maps a merged path to the
    path it had in ours when it moved."""
    prefix = vendor_prefix.rstrip("/") + "/"
    after_files = files
    after_dirs = dirs_of(files)
    before_dirs = dirs_of(ours)
    rewritten: list[RewrittenReference] = []
    unresolved: list[UnresolvedReference] = []

    def exists_after(p: str) -> bool:
        return p in after_files or p in after_dirs

    def exists_before(p: str) -> bool:
        return p in ours or p in before_dirs

    for path in sorted(files):
        if not is_kustomization(path):
            continue
        if path.startswith(prefix) and theirs.get(path) == files[path]:
            continue  # upstream's own file, as upstream wrote it
        try:
            text = files[path].decode()
            data = yamlio.load_safe(text, path=path)
        except (UnicodeDecodeError, YamlError):
            continue
        folder = posixpath.dirname(path)
        old_folder = posixpath.dirname(origin.get(path, path))
        new_text = text
        for ref in dict.fromkeys(references(data)):
            if exists_after(_resolve(folder, ref)):
                continue
            old_target = _resolve(old_folder, ref)
            target = old_target if exists_after(old_target) else moves.map_path(old_target)
            if target is not None and exists_after(target):
                new_ref = _styled(ref, target, folder)
                new_text = _replace(new_text, ref, new_ref)
                rewritten.append(RewrittenReference(path, ref, new_ref))
            elif exists_before(old_target):
                unresolved.append(UnresolvedReference(path, ref, old_target))
        if new_text != text:
            files[path] = new_text.encode()
    return rewritten, unresolved
