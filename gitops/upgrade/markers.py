"""Conflict markers: one comment line above each conflicted field, resource or line range
of the checked-out merge, pointing at the report.

Git's `<<<<<<<` markers would break the YAML (and, in a generator's .env file, silently
become a ConfigMap key). A comment keeps every file valid: the value in the file stays ours,
the marker says what upstream wanted and how to resolve it:

    spec:
      # stackctl conflict #1 (spec.replicas): both-changed, ours 3 kept, theirs 2, base 1;
      #   see .stackctl/upgrade/report.md    <- (one line in the file)
      replicas: 3  # local: three replicas for the whole company

Markers go only into YAML files and text files whose comment character is `#`. Resolving
a conflict removes its marker; `--continue` removes any marker left over, so none is ever
committed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from gitops.merge import Conflict, ConflictKind
from gitops.merge.fields import MISSING
from gitops.merge.locate import document_segments, find_document, get, list_key_for, load_document
from gitops.merge.yamlmerge import _DOC_START, UnparsableYaml
from gitops.yamlio import load_all_safe

PREFIX = "# stackctl conflict #"
HASH_COMMENT_SUFFIXES = (".env", ".properties", ".conf", ".cfg", ".ini", ".toml", ".sh")
YAML_SUFFIXES = (".yaml", ".yml")
VALUE_WIDTH = 40
_MARKER = re.compile(r"^[ \t]*# stackctl conflict #(\d+)\b.*\n?", re.MULTILINE)


def supports_markers(path: str) -> bool:
    name = path.rsplit("/", 1)[-1]
    return name == "Kustomization" or name.endswith(YAML_SUFFIXES + HASH_COMMENT_SUFFIXES)


def _short(value: Any, width: int = VALUE_WIDTH) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False,
                                                           sort_keys=True)
    text = text.rstrip("\n").replace("\n", "\\n")  # text lines: one line shows bare
    return text if len(text) <= width else text[: width - 1] + "…"


def marker_text(n: int, c: Conflict, report: str) -> str:
    where = c.field or (str(c.resource) if c.resource is not None else "whole file")
    if c.kind == ConflictKind.NO_EFFECT:
        return (f"{PREFIX}{n} ({where}): no-effect after the upgrade: "
                f"{_short(c.theirs, 160)}; see {report}")
    if c.kind == ConflictKind.UNRESOLVED_REFERENCE:
        return (f"{PREFIX}{n} ({where}): unresolved-reference, upstream deleted its target; "
                f"'stackctl upgrade --resolve ADDRESS --path NEW'; see {report}")
    b, o, t = _differing(c.base, c.ours, c.theirs)
    kept = "deleted" if c.kind == ConflictKind.DELETED_LOCALLY else f"ours {o} kept"
    lines = "" if not c.hunk else f" line {c.hunk[0]} of the value," \
        if c.hunk[0] == c.hunk[1] else f" lines {c.hunk[0]}-{c.hunk[1]} of the value,"
    return (f"{PREFIX}{n} ({where}): {c.kind},{lines} {kept}, theirs {t}, base {b}; "
            f"see {report}")


def _differing(*values: Any) -> tuple[str, ...]:
    """Each value shown short, from a little before where they start to differ."""
    texts = [v if isinstance(v, str) else json.dumps(v, ensure_ascii=False, sort_keys=True)
             for v in values]
    texts = [x.rstrip("\n").replace("\n", "\\n") for x in texts]
    plain = [x for x in texts if not x.startswith("<")]
    common = 0
    while plain and all(len(x) > common for x in plain) \
            and len({x[common] for x in plain}) == 1:
        common += 1
    start = max(0, common - 8) if common > VALUE_WIDTH // 2 else 0
    out = []
    for x in texts:
        cut = x if x.startswith("<") or not start else "…" + x[start:]
        out.append(cut if len(cut) <= VALUE_WIDTH else cut[: VALUE_WIDTH - 1] + "…")
    return tuple(out)


def _yaml_line(text: str, c: Conflict) -> int | None:
    """The 0-based line of `text` the conflict's marker goes above, or None."""
    if not c.resource and not c.segments:
        return 0
    i = find_document(text, c.resource, path=c.path)
    if i is None:
        return None
    segs = document_segments(text)
    offset = sum(s.count("\n") for s in segs[:i])
    seg = segs[i]
    first = 1 if _DOC_START.match(seg.split("\n", 1)[0]) else 0
    if not c.segments:
        return offset + first
    try:
        data = load_document(seg)
    except UnparsableYaml:
        return None
    lk = list_key_for(c.path)
    # The deepest node of the path that still exists (a key ours deleted has no line).
    for depth in range(len(c.segments), 0, -1):
        parent = get(data, c.segments[: depth - 1], list_key=lk)
        node = get(data, c.segments[:depth], list_key=lk)
        if node is MISSING or not isinstance(parent, Mapping):
            continue
        lc: Any = parent  # ruamel's CommentedMap/CommentedSeq carry line numbers (.lc)
        name, _, label = c.segments[depth - 1].partition("[")
        try:
            if label:
                items = lc[name]
                idx = next(j for j, it in enumerate(items) if it is node)
                return offset + int(items.lc.item(idx)[0])
            return offset + int(lc.lc.key(name)[0])
        except (AttributeError, KeyError, StopIteration, TypeError):
            return None
    return offset + first


def _text_line(c: Conflict) -> int:
    if c.lines is None:
        return 0
    if c.field.startswith("after line"):
        return c.lines[0]
    return c.lines[0] - 1


def add_markers(path: str, text: str, conflicts: Iterable[tuple[int, Conflict]],
                report: str) -> str:
    """`text` with a marker line above each conflict's place (unchanged when the file type
    takes no comments, or when a marker would change what the YAML means)."""
    if not supports_markers(path):
        return text
    is_yaml = not path.endswith(HASH_COMMENT_SUFFIXES)
    lines = text.splitlines(keepends=True)
    places: list[tuple[int, int, Conflict]] = []
    for n, c in conflicts:
        at = _yaml_line(text, c) if is_yaml and c.lines is None else _text_line(c)
        if at is not None and 0 <= at <= len(lines):
            places.append((at, n, c))
    for at, n, c in sorted(places, key=lambda p: (p[0], p[1]), reverse=True):
        target = lines[at] if at < len(lines) else ""
        indent = target[: len(target) - len(target.lstrip(" \t"))] if is_yaml else ""
        if at == len(lines) and lines and not lines[-1].endswith("\n"):
            lines[-1] += "\n"
        lines.insert(at, f"{indent}{marker_text(n, c, report)}\n")
    out = "".join(lines)
    if is_yaml and not _same_yaml(text, out):
        return text
    return out


def _same_yaml(a: str, b: str) -> bool:
    try:
        return bool(load_all_safe(a) == load_all_safe(b))
    except Exception:  # a file that does not parse: only a line was added, keep it
        return True


def remove_markers(text: str, ids: Iterable[int] | None = None) -> str:
    """`text` without the marker lines of these conflicts (all markers when None)."""
    wanted = None if ids is None else {str(i) for i in ids}
    return _MARKER.sub(lambda m: "" if wanted is None or m.group(1) in wanted else m.group(0),
                       text)


def is_marker_line(line: str) -> bool:
    return bool(_MARKER.fullmatch(line) or _MARKER.fullmatch(line + "\n"))
