"""Finding a conflict's place again, to resolve it: a document by identity, a field by the
segments the merge recorded (`Conflict.segments`), and a small edit there.

Segments are the merge's own field path: mapping keys as they are, list entries as
`name[label]` where the label is the one the merge printed (`containers[name=web]`,
`resources[../base]`, `literals[SUPPORT_URL]`). Entries are found by recomputing each
entry's label with the same list keys the merge used, so any list the merge could address
can be addressed here.
"""

from __future__ import annotations

import copy
import io
from collections.abc import Hashable, Mapping
from typing import Any

from gitops import yamlio
from gitops.merge.fields import (
    MISSING,
    KeyResolver,
    _delete_item,
    _delete_key,
    _label,
    canonical,
    kubernetes_list_key,
)
from gitops.merge.kustomization import is_kustomization, kustomization_list_key
from gitops.merge.yamlmerge import _DOC_START, UnparsableYaml, parse_documents
from gitops.resource import ResourceId


class NotFound(Exception):
    """The place a conflict pointed at is no longer in the file (it was edited)."""


def list_key_for(path: str) -> KeyResolver:
    return kustomization_list_key if is_kustomization(path) else kubernetes_list_key


def _split(seg: str) -> tuple[str, str | None]:
    name, bracket, rest = seg.partition("[")
    return (name, rest[:-1]) if bracket and rest.endswith("]") else (seg, None)


def _entry_index(items: list[Any], label: str, parent: tuple[str, ...], name: str,
                 list_key: KeyResolver) -> int | None:
    keyfn = list_key(parent, name, list(items))
    for i, item in enumerate(items):
        key: Hashable | None = keyfn(item) if keyfn is not None else canonical(item)
        if key is not None and _label(key, item) == label:
            return i
    return None


def get(data: Any, segments: tuple[str, ...], *, list_key: KeyResolver) -> Any:
    """The value at `segments` (MISSING when any step is absent)."""
    node = data
    done: tuple[str, ...] = ()
    for seg in segments:
        name, label = _split(seg)
        if not isinstance(node, Mapping) or name not in node:
            return MISSING
        node = node[name]
        if label is not None:
            if not isinstance(node, list):
                return MISSING
            idx = _entry_index(node, label, done, name, list_key)
            if idx is None:
                return MISSING
            node = node[idx]
        done = (*done, seg)
    return node


def put(data: Any, segments: tuple[str, ...], value: Any, *, list_key: KeyResolver,
        like: Any = None) -> None:
    """Set (or with MISSING delete) the value at `segments`, editing `data` in place.

    A key or entry that is absent is added after its neighbour in `like` (the side the
    value comes from), else at the end. Raises NotFound when a parent is absent."""
    if not segments:
        raise NotFound("an empty field path")
    parent = get(data, segments[:-1], list_key=list_key)
    like_parent = get(like, segments[:-1], list_key=list_key) if like is not None else MISSING
    name, label = _split(segments[-1])
    if not isinstance(parent, Mapping):
        raise NotFound(".".join(segments[:-1]) or "the document")
    if label is None:
        if value is MISSING:
            if name in parent:
                _delete_key(parent, name)
            return
        if name in parent:
            parent[name] = value  # type: ignore[index]
            return
        pos = len(parent)
        if isinstance(like_parent, Mapping) and name in like_parent:
            keys = list(like_parent.keys())
            for prev in reversed(keys[: keys.index(name)]):
                if prev in parent:
                    pos = list(parent.keys()).index(prev) + 1
                    break
            else:
                pos = 0
        if hasattr(parent, "insert"):
            parent.insert(pos, name, value)
        else:
            parent[name] = value  # type: ignore[index]
        return
    items = parent.get(name)
    if not isinstance(items, list):
        if value is MISSING:
            return
        raise NotFound(".".join(segments))
    idx = _entry_index(items, label, segments[:-1], name, list_key)
    if value is MISSING:
        if idx is not None:
            _delete_item(items, idx)
        return
    if idx is not None:
        items[idx] = value
        return
    pos = len(items)
    like_items = like_parent.get(name) if isinstance(like_parent, Mapping) else None
    if isinstance(like_items, list):
        j = _entry_index(like_items, label, segments[:-1], name, list_key)
        if j is not None:
            pos = 0
            for prev in reversed(like_items[:j]):
                k = _entry_index(items, _label(_key(prev, items, segments, name, list_key),
                                               prev), segments[:-1], name, list_key)
                if k is not None:
                    pos = k + 1
                    break
    items.insert(pos, value)


def _key(item: Any, items: list[Any], segments: tuple[str, ...], name: str,
         list_key: KeyResolver) -> Hashable:
    keyfn = list_key(segments[:-1], name, [*items, item])
    key = keyfn(item) if keyfn is not None else None
    return key if key is not None else canonical(item)


# ------------------------------------------------------------------------- documents


def find_document(text: str, resource: ResourceId | None, *, path: str = "") -> int | None:
    """The index (among split_documents(text)) of the document with this identity; for
    None, the first document without a kind (plain configuration) or, in a kustomization
    (`path`), its first document: the merge reads kustomizations as plain data."""
    try:
        docs = parse_documents(text, resources=not is_kustomization(path))
    except UnparsableYaml:
        return None
    for i, d in enumerate(docs):
        if d.data is None:
            continue
        if resource is None and d.resource is None:
            return i
        if resource is not None and d.resource == resource:
            return i
    return None


def document_segments(text: str) -> list[str]:
    from gitops.merge.yamlmerge import split_documents

    return split_documents(text)


def load_document(segment: str) -> Any:
    y = yamlio.round_trip(*yamlio.detect_indent(segment))
    try:
        return y.load(segment)
    except Exception as e:  # ruamel raises many types; all mean "not YAML"
        raise UnparsableYaml(str(e).splitlines()[0] if str(e) else "invalid YAML") from e


def dump_document(data: Any, segment: str, like: str) -> str:
    """`data` written in place of `segment` (its `---` line kept), indented like `like`."""
    y = yamlio.round_trip(*yamlio.detect_indent(like))
    buf = io.StringIO()
    y.dump(data, buf)
    first = segment.split("\n", 1)[0]
    marker = first + "\n" if _DOC_START.match(first) else ""
    return marker + buf.getvalue()


def set_field(text: str, source: str | None, *, resource: ResourceId | None,
              segments: tuple[str, ...], path: str) -> str:
    """`text` with the field at `segments` of one document set to its value in `source`
    (deleted when `source` lacks it or is None). Other documents stay byte for byte."""
    lk = list_key_for(path)
    segs = document_segments(text)
    i = find_document(text, resource, path=path)
    if i is None:
        raise NotFound(str(resource) if resource else "the document")
    data = load_document(segs[i])
    value: Any = MISSING
    like: Any = None
    if source is not None:
        j = find_document(source, resource, path=path)
        if j is not None:
            like = load_document(document_segments(source)[j])
            value = get(like, segments, list_key=lk)
    put(data, segments, copy.deepcopy(value) if value is not MISSING else MISSING,
        list_key=lk, like=like)
    segs[i] = dump_document(data, segs[i], text)
    return _join(segs)


def set_document(text: str, source: str | None, *, resource: ResourceId | None,
                 path: str = "") -> str:
    """`text` with one whole document replaced by its text in `source`, removed when
    `source` lacks it, or appended when `text` lacks it."""
    segs = document_segments(text)
    i = find_document(text, resource, path=path)
    new: str | None = None
    if source is not None:
        j = find_document(source, resource, path=path)
        if j is not None:
            new = document_segments(source)[j]
    if i is None:
        if new is None:
            return text
        if not _DOC_START.match(new.split("\n", 1)[0]):
            new = "---\n" + new
        return _join([*segs, new])
    if new is None:
        del segs[i]
        if segs and i == 0 and _DOC_START.match(segs[0].split("\n", 1)[0]) \
                and not text.startswith("---"):
            segs[0] = segs[0].split("\n", 1)[1] if "\n" in segs[0] else ""
        return _join(segs)
    first = segs[i].split("\n", 1)[0]
    if _DOC_START.match(first) and not _DOC_START.match(new.split("\n", 1)[0]):
        new = first + "\n" + new
    elif not _DOC_START.match(first) and _DOC_START.match(new.split("\n", 1)[0]) and i == 0:
        new = new.split("\n", 1)[1] if "\n" in new else ""
    segs[i] = new
    return _join(segs)


def join_documents(parts: list[str]) -> str:
    """Document texts joined into one file again (a newline between them when needed)."""
    return _join(parts)


def _join(parts: list[str]) -> str:
    out = ""
    for p in parts:
        if out and not out.endswith("\n"):
            out += "\n"
        out += p
    return out


__all__ = ["NotFound", "find_document", "get", "join_documents", "list_key_for", "put",
           "set_document", "set_field"]
