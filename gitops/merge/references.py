"""Kustomization references after a merge: rewritten when their target moved on strong
evidence (relocate.py), an `unresolved-reference` conflict when it no longer resolves.

Checked: every kustomization outside the vendored tree (overlays/, clusters/, ...) and every
kustomization inside it that is not upstream's file as is (added or edited locally). Paths
are resolved from the kustomization's folder; a rewritten path keeps the reference's style
(relative, `./` prefix, trailing slash). A reference upstream's move of the kustomization
itself broke (a local kustomization that followed a moved folder) is fixed by its own path.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from gitops import yamlio
from gitops.errors import YamlError
from gitops.merge.conflict import DELETED, Conflict, ConflictKind
from gitops.merge.kustomization import GENERATORS, _is_local, is_kustomization
from gitops.merge.relocate import SIMILAR, Relocator
from gitops.merge.upstreamrefs import Candidate, dirs_of

# Evidence kind of a reference fixed because its own kustomization moved (not its target).
SAME_TARGET = "same-target"


@dataclass(frozen=True)
class RewrittenReference:
    """In `file`, the reference `old` became `new`: its target `old_target` moved to
    `new_target` (repo paths) on `evidence` (a sentence) of kind `evidence_kind`."""

    file: str
    old: str
    new: str
    old_target: str = ""
    new_target: str = ""
    evidence_kind: str = ""
    evidence: str = ""


@dataclass(frozen=True)
class UnresolvedReference:
    """In `file`, `reference` (resolving to repo path `target`) no longer exists, and no
    new place has strong enough evidence; `candidates` are the places that came close."""

    file: str
    reference: str
    target: str
    candidates: tuple[Candidate, ...] = ()

    def conflict(self, segments: tuple[str, ...]) -> Conflict:
        near = "; ".join(f"{c.path}" + (f" ({c.score:.2f})" if c.score is not None else "")
                         + (f": {c.why}" if c.why else "") for c in self.candidates)
        return Conflict(
            path=self.file, kind=ConflictKind.UNRESOLVED_REFERENCE,
            field=_field(segments), segments=segments, base=self.reference,
            ours=self.reference, theirs=DELETED,
            message=(f"{self.target} no longer exists upstream and no new place has strong "
                     "enough evidence" + (f"; candidates: {near}" if near else "")
                     + ". Settle it with --resolve ADDRESS --path NEW (or edit the file and "
                     "--mark; --theirs drops the entry)"))


def _field(segments: tuple[str, ...]) -> str:
    from gitops.merge.fields import field_string

    return field_string(segments)


def reference_places(data: Any) -> Iterator[tuple[tuple[str, ...], str]]:
    """Every local path reference of a kustomization with its field path (segments as the
    merge addresses them: `resources[../base]`, `patches[path=p.yaml]`, `path`, ...)."""
    if not isinstance(data, Mapping):
        return
    for f in ("resources", "components", "bases", "crds", "configurations", "generators",
              "transformers", "validators", "patchesStrategicMerge"):
        for v in data.get(f) or []:
            if isinstance(v, str) and "\n" not in v and _is_local(v):
                yield (f"{f}[{v}]",), str(v)
    for f in ("patches", "patchesJson6902", "replacements"):
        for v in data.get(f) or []:
            if isinstance(v, Mapping) and isinstance(v.get("path"), str) \
                    and _is_local(v["path"]):
                yield (f"{f}[path={v['path']}]", "path"), str(v["path"])
    for f in GENERATORS:
        for g in data.get(f) or []:
            if not isinstance(g, Mapping):
                continue
            head = f"{f}[name={g.get('name')}]"
            for v in g.get("files") or []:
                if isinstance(v, str) and _is_local(v.split("=", 1)[-1]):
                    yield (head, f"files[{v}]"), v.split("=", 1)[-1]
            for v in g.get("envs") or []:
                if isinstance(v, str) and _is_local(v):
                    yield (head, f"envs[{v}]"), v
            if isinstance(g.get("env"), str) and _is_local(g["env"]):
                yield (head, "env"), str(g["env"])
    openapi = data.get("openapi")
    if isinstance(openapi, Mapping) and isinstance(openapi.get("path"), str) \
            and _is_local(openapi["path"]):
        yield ("openapi", "path"), str(openapi["path"])


def _same_tail(a: str, b: str, n: int = 2) -> bool:
    """The last `n` path components are the same (`kuberay-operator/base`)."""
    return a.split("/")[-n:] == b.split("/")[-n:]


def _resolve(folder: str, ref: str) -> str:
    return posixpath.normpath(posixpath.join(folder, ref.rstrip("/") or "."))


def styled(original: str, target: str, folder: str) -> str:
    """`target` (a repo path) as a reference from `folder`, in the style of `original`."""
    new = posixpath.relpath(target, folder or ".")
    if original.startswith("./") and not new.startswith("../"):
        new = "./" + new
    if original.endswith("/") and not new.endswith("/"):
        new += "/"
    return new


def replace_reference(text: str, old: str, new: str) -> str:
    """`text` with the path `old` replaced by `new` wherever it stands as a whole value."""
    pattern = re.compile(r"(?<![^\s'\"=\[,])" + re.escape(old) + r"(?![^\s'\"\],])")
    return pattern.sub(lambda _m: new, text)


def fix_references(
    files: dict[str, bytes], *, ours: Mapping[str, bytes], theirs: Mapping[str, bytes],
    vendor_prefix: str, relocator: Relocator, origin: Mapping[str, str],
) -> tuple[list[RewrittenReference], list[tuple[UnresolvedReference, Conflict]]]:
    """Rewrite references in `files` (edited in place); `origin` maps a merged path to the
    path it had in ours when it moved. Unresolved ones come with their conflict."""
    prefix = vendor_prefix.rstrip("/") + "/"
    after_dirs = dirs_of(files)
    before_dirs = dirs_of(ours)
    rewritten: list[RewrittenReference] = []
    unresolved: list[tuple[UnresolvedReference, Conflict]] = []

    def exists_after(p: str) -> bool:
        return p in files or p in after_dirs

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
        seen: set[str] = set()
        for segments, ref in reference_places(data):
            if ref in seen or exists_after(_resolve(folder, ref)):
                continue
            seen.add(ref)
            old_target = _resolve(old_folder, ref)
            if exists_after(old_target):  # the kustomization moved, its target did not
                new_ref = styled(ref, old_target, folder)
                new_text = replace_reference(new_text, ref, new_ref)
                rewritten.append(RewrittenReference(
                    path, ref, new_ref, old_target, old_target, SAME_TARGET,
                    f"{path} moved from {origin.get(path, path)}; the target did not"))
                continue
            if not exists_before(old_target):
                continue  # broken before the upgrade already: not the upgrade's doing
            found = relocator.locate(old_target)
            if found.new is not None and found.evidence is not None:
                new_ref = styled(ref, found.new, folder)
                new_text = replace_reference(new_text, ref, new_ref)
                rewritten.append(RewrittenReference(
                    path, ref, new_ref, old_target, found.new, found.evidence.kind,
                    found.evidence.detail))
            else:
                near = tuple(c for c in found.candidates
                             if c.score is None or c.score >= SIMILAR / 2
                             or _same_tail(c.path, old_target))
                u = UnresolvedReference(path, ref, old_target, near)
                unresolved.append((u, u.conflict(segments)))
        if new_text != text:
            files[path] = new_text.encode()
    return rewritten, unresolved
