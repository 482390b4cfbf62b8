"""Which input files of a render an object comes from, for the messages of render errors:
an object without identity, an object rendered twice (by stackctl's check or kustomize's
'may not add resource with an already registered id')."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from gitops.errors import RenderError
from gitops.kustomize import KustomizeBuildError


def origin(contents: Sequence[tuple[str, bytes | None]], kind: str, name: str) -> str:
    """'; it comes from a.yaml, b.yaml': the input files that mention the object (best
    effort: name prefixes, suffixes and hashes added by kustomize hide some)."""
    hits = origin_files(contents, kind, name)
    if not hits:
        return ""
    shown = ", ".join(hits[:5]) + (f" and {len(hits) - 5} more" if len(hits) > 5 else "")
    return f"; it comes from {shown}"


def origin_files(contents: Sequence[tuple[str, bytes | None]], kind: str,
                  name: str) -> list[str]:
    if not contents:
        return []
    pats = []
    if kind:
        pats.append(re.compile(rb"^kind:[ ]*['\"]?" + re.escape(kind.encode()) + rb"['\"]?\s*$",
                               re.M))
    if name:
        pats.append(re.compile(rb"^\s+name:[ ]*['\"]?" + re.escape(name.encode())
                               + rb"['\"]?\s*$", re.M))
    return [rel for rel, data in contents
            if data is not None and rel.endswith((".yaml", ".yml", ".json"))
            and PurePosixPath(rel).name not in ("kustomization.yaml", "kustomization.yml")
            and all(p.search(data) for p in pats)]


_DUPLICATE = re.compile(r"may not add resource with an already registered id: (\S+)")


def duplicate_error(e: KustomizeBuildError, what: str,
               contents: Sequence[tuple[str, bytes | None]], path: Path,
               base: Path | None) -> RenderError | None:
    """kustomize's 'already registered id: ConfigMap.v1.[noGrp]/dupcm.[noNs]' as the object
    and the input files that define it (relative to `base`), or None for other errors."""
    m = _DUPLICATE.search(e.detail)
    if m is None:
        return None
    kind_version, _, rest = m.group(1).partition("/")
    kind = kind_version.split(".", 1)[0]
    name, _, ns = rest.rpartition(".")
    where = "" if ns in ("[noNs]", "") else f" in namespace {ns}"
    shown = [(rel, data) for rel, data in contents]
    if base is not None:
        shown = [(os.path.relpath(os.path.normpath(path / rel), base), data)
                 for rel, data in contents]
    hits = origin_files(shown, kind, name)
    origin = (": in " + ", ".join(hits[:-1]) + f" and {hits[-1]}" if len(hits) > 1
              else f": in {hits[0]} (twice)" if hits
              else " (kustomize generated or renamed it, so no input file names it as it is)")
    return RenderError(
        f"{what} defines {kind} {name}{where} twice{origin}.",
        hint="An object's identity (kind, namespace, name) must be unique in a cluster: "
        "remove one of them, or give one another name or namespace.")


