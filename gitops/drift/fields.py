"""managedFields: who owns which field of a live object (server-side apply's field sets).

Each entry of `metadata.managedFields` names a manager (`stackctl`, `kube-scheduler`,
`kube-controller-manager`, ...), its operation (`Apply` or `Update`), the subresource it
wrote through, and a `fieldsV1` set: a trie whose keys are path elements
(structured-merge-diff's `fieldpath` serialization, sigs.k8s.io/structured-merge-diff/
fieldpath/serialize-pe.go):

    f:<name>        a field of a map or struct
    k:<json object> an item of a list keyed by these fields (`k:{"name":"main"}`)
    v:<json value>  an item of a set-like list of scalars (`v:"get"`)
    i:<index>       an item of an atomic list by position (rare)
    .               the node itself is a member (a list item owned as a whole)

A path is in the set when its node is empty (`{}`: a leaf) or holds `.`. A leaf above a
path owns the whole subtree (an atomic map or list, e.g. `f:selector: {}`).

Nodes are parsed lazily: a CRD's entry holds its whole OpenAPI schema, and a drift check
only walks the paths of the desired object.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from gitops.diff import format_path as fmt


@dataclass(frozen=True)
class Key:
    """A list item identified by its key fields: `k:{"containerPort":80,"protocol":"TCP"}`."""

    fields: tuple[tuple[str, Any], ...]

    @classmethod
    def parse(cls, text: str) -> Key:
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError(f"a k: path element must hold a JSON object, not {text!r}")
        return cls(tuple((str(k), _hashable(v)) for k, v in data.items()))

    @classmethod
    def of_item(cls, item: Mapping[str, Any], names: Sequence[str]) -> Key:
        """The key of a list item by these key fields (those it has)."""
        return cls(tuple((n, _hashable(item[n])) for n in names if n in item))

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(k for k, _ in self.fields)

    def matches(self, item: Any, *, partial: bool = False) -> bool:
        """True when `item` (a list item) has these key values; with `partial`, key fields
        the item lacks match anything (the server defaults some key fields, such as a
        port's `protocol`, before it records the key)."""
        if not isinstance(item, Mapping):
            return False
        for name, value in self.fields:
            if name not in item:
                if partial:
                    continue
                return False
            if _hashable(item[name]) != value:
                return False
        return True

    def __str__(self) -> str:
        return ",".join(f"{k}={v}" for k, v in self.fields)


@dataclass(frozen=True)
class Value:
    """An item of a set-like list, by value: `v:"get"`."""

    json: str

    @property
    def value(self) -> Any:
        return json.loads(self.json)

    @classmethod
    def of(cls, value: Any) -> Value:
        return cls(json.dumps(value, sort_keys=True, separators=(",", ":")))

    def __str__(self) -> str:
        v = self.value
        return v if isinstance(v, str) else self.json


# A path element: a field name, a keyed item, a set item, or a position.
Element = str | Key | Value | int
Path = tuple[Element, ...]
ListType = Literal["map", "set", "atomic"]


def _hashable(value: Any) -> Any:
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    if isinstance(value, list):
        return json.dumps(value, separators=(",", ":"))
    return value


def parse_element(text: str) -> Element:
    """One fieldsV1 key as a path element (`f:spec` -> 'spec'). Raises ValueError."""
    prefix, sep, rest = text.partition(":")
    if not sep:
        raise ValueError(f"unknown fieldsV1 path element {text!r}")
    if prefix == "f":
        return rest
    if prefix == "k":
        return Key.parse(rest)
    if prefix == "v":
        return Value.of(json.loads(rest))
    if prefix == "i":
        return int(rest)
    raise ValueError(f"unknown fieldsV1 path element {text!r}")


class FieldSet:
    """One node of a fieldsV1 trie (the root is the whole object)."""

    __slots__ = ("_children", "_raw")

    def __init__(self, raw: Mapping[str, Any] | None) -> None:
        self._raw: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
        self._children: dict[Element, FieldSet] | None = None

    @property
    def is_leaf(self) -> bool:
        """No children: the node is owned as a whole (a scalar, or an atomic map/list)."""
        return not any(k != "." for k in self._raw)

    @property
    def is_member(self) -> bool:
        return self.is_leaf or "." in self._raw

    def children(self) -> dict[Element, FieldSet]:
        if self._children is None:
            out: dict[Element, FieldSet] = {}
            for k, v in self._raw.items():
                if k != ".":
                    out[parse_element(k)] = FieldSet(v)
            self._children = out
        return self._children

    def child(self, element: Element) -> FieldSet | None:
        if isinstance(element, str) and self._children is None:
            raw = self._raw.get("f:" + element)  # the common case, without parsing siblings
            return FieldSet(raw) if isinstance(raw, Mapping) else None
        return self.children().get(element)

    def node(self, path: Sequence[Element]) -> FieldSet | None:
        node: FieldSet | None = self
        for element in path:
            if node is None:
                return None
            node = node.child(element)
        return node

    def owns(self, path: Sequence[Element]) -> bool:
        """True when the path is in the set, or lies under a leaf of it (atomic ownership)."""
        node: FieldSet = self
        for i, element in enumerate(path):
            nxt = node.child(element)
            if nxt is None:
                return i > 0 and node.is_leaf
            node = nxt
        return bool(path) and node.is_member

    def item_keys(self) -> list[Key]:
        """The keys of the keyed list items at this node."""
        return [e for e in self.children() if isinstance(e, Key)]

    def list_type(self) -> ListType | None:
        """How the list at this node is merged, as the children say: items by key
        (`map`), by value (`set`), or whole (`atomic`: a leaf); None when unknown."""
        kinds = {type(e) for e in self.children()}
        if Key in kinds:
            return "map"
        if Value in kinds:
            return "set"
        if self.is_leaf:
            return "atomic"
        return None

    def paths(self, prefix: Path = ()) -> Iterator[Path]:
        """Every path of the set, depth first (a full parse: for tests and tools)."""
        for element, child in self.children().items():
            path = (*prefix, element)
            if child.is_member:
                yield path
            yield from child.paths(path)


def parse_fields_v1(fields: Mapping[str, Any] | None) -> FieldSet:
    """The root of a `fieldsV1` trie."""
    return FieldSet(fields)


@dataclass(frozen=True)
class ManagedEntry:
    """One managedFields entry of a live object."""

    manager: str
    operation: str  # Apply or Update
    api_version: str
    time: str
    subresource: str
    fields: FieldSet

    def describe(self) -> str:
        """`kube-controller-manager (Update, status)`, `stackctl (Apply)`."""
        sub = f", {self.subresource}" if self.subresource else ""
        return f"{self.manager} ({self.operation}{sub})"


def managed_entries(obj: Mapping[str, Any]) -> list[ManagedEntry]:
    """The managedFields entries of a live object (entries with another fieldsType than
    FieldsV1, which no API server writes today, are skipped)."""
    out = []
    for entry in (obj.get("metadata") or {}).get("managedFields") or []:
        if not isinstance(entry, Mapping) or entry.get("fieldsType", "FieldsV1") != "FieldsV1":
            continue
        out.append(ManagedEntry(
            manager=str(entry.get("manager") or ""),
            operation=str(entry.get("operation") or ""),
            api_version=str(entry.get("apiVersion") or ""),
            time=str(entry.get("time") or ""),
            subresource=str(entry.get("subresource") or ""),
            fields=parse_fields_v1(entry.get("fieldsV1")),
        ))
    return out


def format_path(path: Sequence[Element]) -> str:
    """`spec.template.spec.containers[name=main].image`, `rules[0].verbs[get]`,
    `metadata.labels["app.kubernetes.io/name"]`: the readable form of a path, as plans
    write them (gitops.diff.format_path)."""
    out = ""
    run: list[Any] = []
    for element in path:
        if isinstance(element, Key | Value):
            out += fmt(run) if not out else _continue(fmt, run)
            run = []
            text = str(element)
            out += f"[{text}]" if _SIMPLE.match(text) else f"[{json.dumps(text)}]"
        else:
            run.append(element)
    if run:
        out += fmt(run) if not out else _continue(fmt, run)
    return out


def _continue(fmt: Any, run: list[Any]) -> str:
    """The rest of a path after a bracket: `.image`, `[0]`, `["a.b"]`."""
    if not run:
        return ""
    text = str(fmt(run))
    return text if text.startswith("[") else "." + text


_SIMPLE = re.compile(r"^[A-Za-z0-9_./:$=,-]+$")
