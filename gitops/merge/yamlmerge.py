"""Multi-document YAML merged resource by resource.

Documents are matched by identity, not position: Kubernetes objects by
gitops.resource.ResourceId (group, kind, namespace, name), so upstream reordering or
splitting a file changes nothing; documents without `kind` by their order among such
documents. Ours is the canvas: its documents keep their order, and a document the merge does
not touch is written back byte for byte (its original text, not a re-dump), so the merged
file differs from ours only in documents upstream changed.
"""

from __future__ import annotations

import io
import itertools
import json
import re
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from gitops import yamlio
from gitops.merge.conflict import (
    CHANGED,
    DELETED,
    PRESENT,
    Conflict,
    ConflictKind,
    MergeKind,
    Redaction,
)
from gitops.merge.fields import (
    MISSING,
    FieldMerge,
    KeyResolver,
    kubernetes_list_key,
    plain,
    same,
)
from gitops.resource import ResourceId

_DOC_START = re.compile(r"^---(?:[ \t].*)?$", re.MULTILINE)


class UnparsableYaml(Exception):
    """One side is not valid YAML; the caller falls back to a line merge."""


@dataclass
class _Doc:
    key: Hashable
    data: Any
    segment: str  # the original text, starting with its `---` line when it had one
    resource: ResourceId | None
    changed: bool = False
    new: bool = False


def split_documents(text: str) -> list[str]:
    """The text cut before every `---` line; joined, the pieces are the text again."""
    cuts = [m.start() for m in _DOC_START.finditer(text)]
    if not cuts or cuts[0] != 0:
        cuts.insert(0, 0)
    cuts.append(len(text))
    return [text[a:b] for a, b in itertools.pairwise(cuts) if b > a]


def _load(y: YAML, segment: str) -> Any:
    try:
        return y.load(segment)
    except YAMLError as e:
        raise UnparsableYaml(str(e).splitlines()[0] if str(e) else "invalid YAML") from e


def parse_documents(text: str, *, resources: bool = True) -> list[_Doc]:
    """Documents with their identity key; empty documents (comments only) have data None."""
    y = yamlio.round_trip(*yamlio.detect_indent(text))
    docs: list[_Doc] = []
    seen: dict[Hashable, int] = {}
    plain_count = 0
    for seg in split_documents(text):
        data = _load(y, seg)
        rid: ResourceId | None = None
        key: Hashable
        if data is None:
            key = ("empty", len(docs))
        elif resources and isinstance(data, Mapping) and isinstance(data.get("kind"), str):
            rid = ResourceId.of(dict(data))
            n = seen.get(rid, 0)
            seen[rid] = n + 1
            key = ("id", rid, n)
        else:
            key = ("doc", plain_count)
            plain_count += 1
        docs.append(_Doc(key=key, data=data, segment=seg, resource=rid))
    return docs


@dataclass(frozen=True)
class DocsMerge:
    text: str
    conflicts: list[Conflict]
    changed: bool


def merge_documents(
    path: str, base: str, ours: str, theirs: str, *,
    redaction: Redaction,
    list_key: KeyResolver = kubernetes_list_key,
    resources: bool = True,
    secret_field: Callable[[str], bool] | None = None,
) -> DocsMerge:
    """Merge three YAML streams document by document; raises UnparsableYaml."""
    bdocs = {d.key: d for d in parse_documents(base, resources=resources) if d.data is not None}
    odocs = parse_documents(ours, resources=resources)
    tlist = [d for d in parse_documents(theirs, resources=resources) if d.data is not None]
    tdocs = {d.key: d for d in tlist}
    conflicts: list[Conflict] = []
    result: list[_Doc] = []
    renamed = _renames(bdocs, tdocs)
    for od in odocs:
        if od.data is None:
            result.append(od)
            continue
        bd, td = bdocs.get(od.key), tdocs.get(od.key)
        if td is None and od.key in renamed and not same(bd.data if bd else MISSING, od.data):
            # Upstream renamed the resource ours edited: ours' edits go to the new name.
            td = tdocs[renamed[od.key]]
            od.key, od.resource, od.changed = td.key, td.resource, True
        b = bd.data if bd is not None else MISSING
        t = td.data if td is not None else MISSING
        if same(od.data, t) or same(b, t):
            result.append(od)
        elif t is MISSING:
            if same(b, od.data):
                continue  # upstream deleted it, ours did not touch it
            conflicts.append(_whole(path, od.resource, ConflictKind.DELETED_UPSTREAM,
                                    PRESENT, CHANGED, DELETED))
            result.append(od)
        else:
            fm = FieldMerge(path=path, resource=od.resource, redaction=redaction,
                            list_key=list_key, secret_field=secret_field)
            new = fm.merge_value(b, od.data, t, ())
            conflicts.extend(fm.conflicts)
            od.changed = fm.changed or new is not od.data
            od.data = new
            result.append(od)
    present = {d.key for d in result} | {d.key for d in odocs}
    for i, td in enumerate(tlist):
        if td.key in present:
            continue
        bd = bdocs.get(td.key)
        if bd is not None:
            if not same(bd.data, td.data):
                conflicts.append(_whole(path, td.resource, ConflictKind.DELETED_LOCALLY,
                                        PRESENT, DELETED, CHANGED))
            continue
        pos = 0
        for prev in reversed(tlist[:i]):
            idx = next((j for j, d in enumerate(result) if d.key == prev.key), None)
            if idx is not None:
                pos = idx + 1
                break
        result.insert(pos, _Doc(key=td.key, data=td.data, segment="", resource=td.resource,
                                new=True))
        present.add(td.key)
    kept = [d.key for d in odocs]
    changed = [d.key for d in result] != kept or any(d.changed or d.new for d in result)
    text = _render(result, ours) if changed else ours
    return DocsMerge(text=text, conflicts=conflicts, changed=changed)


def _renames(bdocs: Mapping[Hashable, _Doc], tdocs: Mapping[Hashable, _Doc]
             ) -> dict[Hashable, Hashable]:
    """Resources upstream renamed within the file: the one resource of a kind (and
    namespace) that left the file paired with the one of that kind that came in, when
    their content is mostly the same (Kubeflow v1.8.0 renames the StatefulSet authservice
    to oidc-authservice and changes nothing else)."""
    def group(docs: Mapping[Hashable, _Doc], other: Mapping[Hashable, _Doc]
              ) -> dict[tuple[str, str, str], list[_Doc]]:
        out: dict[tuple[str, str, str], list[_Doc]] = {}
        for k, d in docs.items():
            if k not in other and d.resource is not None:
                r = d.resource
                out.setdefault((r.group, r.kind, r.namespace), []).append(d)
        return out

    gone, came = group(bdocs, tdocs), group(tdocs, bdocs)
    pairs: dict[Hashable, Hashable] = {}
    for g, old in gone.items():
        new = came.get(g, [])
        if len(old) == 1 and len(new) == 1 and _similar(old[0].data, new[0].data):
            pairs[old[0].key] = new[0].key
    return pairs


def _leaves(value: Any, path: str = "") -> set[str]:
    if isinstance(value, Mapping):
        return {leaf for k, v in value.items() for leaf in _leaves(v, f"{path}.{k}")}
    if isinstance(value, list):
        return {leaf for i, v in enumerate(value) for leaf in _leaves(v, f"{path}[{i}]")}
    return {f"{path}={json.dumps(plain(value))}"}


def _similar(a: Any, b: Any) -> bool:
    """At least half of the leaves (path and value) in common, identity left out."""
    skip = (".apiVersion=", ".kind=", ".metadata.name=")
    la = {x for x in _leaves(a) if not x.startswith(skip)}
    lb = {x for x in _leaves(b) if not x.startswith(skip)}
    return bool(la | lb) and len(la & lb) * 2 >= len(la | lb)


def _whole(path: str, rid: ResourceId | None, kind: ConflictKind,
           b: str, o: str, t: str) -> Conflict:
    what = "upstream deleted this document, ours changed it: ours kept" \
        if kind is ConflictKind.DELETED_UPSTREAM \
        else "ours deleted this document, upstream changed it: it stays deleted"
    return Conflict(path=path, kind=kind, resource=rid, base=b, ours=o, theirs=t, message=what)


def _render(docs: list[_Doc], like: str) -> str:
    y = yamlio.round_trip(*yamlio.detect_indent(like))
    parts: list[str] = []
    for d in docs:
        if not d.changed and not d.new:
            # A document that was first in ours has no `---` line; one inserted before it
            # (upstream added a resource at the top) needs the separator.
            sep = "---\n" if parts and d.data is not None \
                and not _DOC_START.match(d.segment.split("\n", 1)[0]) else ""
            parts.append(sep + d.segment)
            continue
        marker = ""
        if d.new:
            marker = "---\n" if parts or like.startswith("---") else ""
        else:
            first = d.segment.split("\n", 1)[0]
            if _DOC_START.match(first):
                marker = first + "\n"
            elif parts:
                marker = "---\n"
        buf = io.StringIO()
        y.dump(d.data, buf)
        parts.append(marker + buf.getvalue())
    out = ""
    for p in parts:
        if out and not out.endswith("\n"):
            out += "\n"
        out += p
    return out


def merge_yaml(path: str, base: str, ours: str, theirs: str, *,
               redaction: Redaction) -> tuple[str, list[Conflict], MergeKind]:
    """A Kubernetes YAML file merged resource by resource."""
    m = merge_documents(path, base, ours, theirs, redaction=redaction)
    return m.text, m.conflicts, MergeKind.YAML
