"""The path-like entries of a kustomization, and how to rewrite one in its text.

kustomize reads two kinds of entries: those that may name a kustomization folder (resources,
bases, components, generators, transformers, validators: a remote git base is allowed there,
and a folder outside the kustomization's root is allowed), and those that name a file
(patches, generator files, crds, configurations, openapi, replacements), which kustomize's
default load restrictor (LoadRestrictionsRootOnly) only reads at or below the root.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from gitops.yamlio import dump_all_rt, load_all_rt

KUSTOMIZATION_NAMES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
RESOURCE_FIELDS = ("resources", "bases", "components", "generators", "transformers",
                   "validators")
FILE_LIST_FIELDS = ("crds", "configurations", "patchesStrategicMerge")
PATH_ENTRY_FIELDS = ("patches", "patchesJson6902", "replacements")
GENERATOR_FIELDS = ("configMapGenerator", "secretGenerator")


@dataclass(frozen=True)
class Entry:
    field: str
    value: str  # a path or URL (a generator's `key=` prefix removed)
    folder_ok: bool  # True: may name a kustomization folder (resources and the like)


def is_kustomization(path: str) -> bool:
    return path.rsplit("/", 1)[-1] in KUSTOMIZATION_NAMES


def _is_path(entry: str) -> bool:
    # Inline patches and inline generator configs are YAML text, not paths.
    return "\n" not in entry and not entry.lstrip().startswith(("{", "apiVersion:"))


def entries(doc: Mapping[str, Any]) -> Iterator[Entry]:
    """Every path-like entry of a kustomization document, in the document's order."""
    for fld in RESOURCE_FIELDS:
        for e in doc.get(fld) or ():
            if isinstance(e, str) and _is_path(e):
                yield Entry(fld, e, True)
    for fld in FILE_LIST_FIELDS:
        for e in doc.get(fld) or ():
            if isinstance(e, str) and _is_path(e):
                yield Entry(fld, e, False)
    for fld in PATH_ENTRY_FIELDS:
        for e in doc.get(fld) or ():
            if isinstance(e, dict) and isinstance(e.get("path"), str):
                yield Entry(fld, e["path"], False)
    openapi = doc.get("openapi")
    if isinstance(openapi, dict) and isinstance(openapi.get("path"), str):
        yield Entry("openapi", openapi["path"], False)
    for fld in GENERATOR_FIELDS:
        for gen in doc.get(fld) or ():
            if not isinstance(gen, dict):
                continue
            for f in gen.get("files") or ():
                if isinstance(f, str):
                    yield Entry(fld, f.split("=", 1)[1] if "=" in f else f, False)
            for f in [*(gen.get("envs") or ()), gen.get("env")]:
                if isinstance(f, str):
                    yield Entry(fld, f, False)


def _bounded(old: str) -> re.Pattern[str]:
    # The entry as a whole scalar: after `- `, `: `, a quote, `[`, `,` or a generator's
    # `key=`; before the end of the line, a quote, `,`, `]` or a comment.
    return re.compile(r"(?<=[\s\-:\[,'\"=])" + re.escape(old) + r"(?=$|[\s'\",\]])")


def rewrite_text(text: str, changes: Mapping[str, str], expected: Mapping[str, int]) -> str:
    """`text` with every entry `old` replaced by `changes[old]`, line by line so comments
    and layout stay (one replacement per entry per line, comment lines untouched). When the
    text does not show an entry as often as the document holds it (a folded scalar, say),
    the document is rewritten through the round-trip loader instead."""
    lines = text.splitlines(keepends=True)
    counts = dict.fromkeys(changes, 0)
    patterns = {old: _bounded(old) for old in changes}
    for i, line in enumerate(lines):
        if line.lstrip().startswith("#"):
            continue
        for old, new in changes.items():
            replaced, n = patterns[old].subn(new.replace("\\", "\\\\"), line, count=1)
            if n:
                lines[i] = line = replaced
                counts[old] += n
    if all(counts[old] == expected.get(old, 0) for old in changes):
        return "".join(lines)
    return _rewrite_rt(text, changes)


def _rewrite_rt(text: str, changes: Mapping[str, str]) -> str:
    docs = load_all_rt(text)

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            for k in list(node):
                node[k] = walk(node[k])
            return node
        if isinstance(node, list):
            for i, v in enumerate(node):
                node[i] = walk(v)
            return node
        if isinstance(node, str):
            if node in changes:
                return type(node)(changes[node]) if type(node) is not str else changes[node]
            key, sep, value = node.partition("=")
            if sep and value in changes:
                return f"{key}={changes[value]}"
        return node

    return dump_all_rt([walk(d) for d in docs], like=text)
