"""Comparing one applied object with its live version, on stackctl's fields only.

Which fields are stackctl's: those it applied (the revision's object). Server-side apply
made stackctl's managedFields entry exactly that set; since then every change by someone
else has moved the changed field out of it (an Update or a forced Apply takes ownership:
https://kubernetes.io/docs/reference/using-api/server-side-apply/#field-management), and
a removal drops it. So stackctl's current entry plus the fields it lost is the applied
set, and walking the applied object visits exactly those fields; fields only the server
or other controllers set (defaults, status, a sidecar's annotations) are never visited.

The walk follows the live object's managedFields for the shape of lists: items of a list
whose field set says `k:{...}` are matched by those key fields (a container by name, a
port by containerPort and protocol), items of a `v:` list by value, and other lists are
compared whole. The managers that own a drifted field now are named from managedFields.

Values compare as the apply engine's no-change test does (gitops.apply.compare.covers):
`1000m` is `1`, an empty value the server drops is not a change.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gitops.apply.compare import comparable, covers
from gitops.drift.fields import Element, FieldSet, Key, ManagedEntry, Value, format_path
from gitops.drift.fields import managed_entries as _entries
from gitops.drift.model import FieldAction, FieldDrift, Manager, value_at
from gitops.redact import Redactor

FIELD_MANAGER = "stackctl"

Loc = tuple[Any, ...]
# Top-level fields that are identity or the server's, never compared.
_SKIP_TOP = frozenset({"apiVersion", "kind", "status"})


@dataclass(frozen=True)
class _Found:
    path: tuple[Element, ...]
    action: FieldAction
    desired_loc: Loc
    live_loc: Loc | None  # None: gone live


def _zero(value: Any) -> bool:
    """Values the API server drops when it stores an object (Go's omitempty)."""
    return value is None or (value in ("", 0, [], {}) and not isinstance(value, bool)) \
        or value is False


def _named(items: list[Any]) -> bool:
    names = [x.get("name") for x in items if isinstance(x, dict)]
    return bool(items) and len(names) == len(items) and None not in names \
        and len(set(map(str, names))) == len(names)


def _is_secret(obj: Mapping[str, Any]) -> bool:
    return obj.get("kind") == "Secret" and str(obj.get("apiVersion")) == "v1"


class _Walk:
    def __init__(self, entries: Sequence[ManagedEntry]) -> None:
        self.entries = list(entries)
        self.found: list[_Found] = []

    def list_type(self, nodes: Sequence[FieldSet | None]) -> str | None:
        for n in nodes:
            if n is not None:
                t = n.list_type()
                if t is not None:
                    return t
        return None

    def walk(self, d: Any, live: Any, path: tuple[Element, ...], dloc: Loc, lloc: Loc,
             nodes: Sequence[FieldSet | None]) -> None:
        if d == live and type(d) is type(live):
            return  # the common case, decided at C speed for a whole subtree
        if isinstance(d, dict):
            self._map(d, live, path, dloc, lloc, nodes)
        elif isinstance(d, list):
            self._list(d, live, path, dloc, lloc, nodes)
        else:
            key = next((str(e) for e in reversed(path) if isinstance(e, str)), "")
            if not covers(live, d, key):
                self.found.append(_Found(path, "changed", dloc, lloc))

    def _map(self, d: dict[str, Any], live: Any, path: tuple[Element, ...], dloc: Loc,
             lloc: Loc, nodes: Sequence[FieldSet | None]) -> None:
        if not isinstance(live, dict):
            self.found.append(_Found(path, "changed", dloc, lloc))
            return
        for k, v in d.items():
            if not path and k in _SKIP_TOP:
                continue
            p = (*path, k)
            if k not in live or live[k] is None:
                if not _zero(v):
                    self.found.append(_Found(p, "removed", (*dloc, k), None))
                continue
            if v is None:
                if live[k] not in ({}, []):
                    self.found.append(_Found(p, "changed", (*dloc, k), (*lloc, k)))
                continue
            self.walk(v, live[k], p, (*dloc, k), (*lloc, k),
                      [n.child(k) if n is not None else None for n in nodes])

    def _list(self, d: list[Any], live: Any, path: tuple[Element, ...], dloc: Loc, lloc: Loc,
              nodes: Sequence[FieldSet | None]) -> None:
        if not isinstance(live, list):
            self.found.append(_Found(path, "changed", dloc, lloc))
            return
        kind = self.list_type(nodes)
        if kind is None and _named(d):
            # No manager holds the list any more (all its items were removed): most lists
            # of objects merge by `name` (containers, env, volumes), so match by it.
            kind = "map"
        if kind == "map" and all(isinstance(x, dict) for x in d):
            self._keyed(d, live, path, dloc, lloc, nodes)
        elif kind == "set":
            have = {Value.of(x) for x in live}
            for i, item in enumerate(d):
                v = Value.of(item)
                if v not in have:
                    self.found.append(_Found((*path, v), "removed", (*dloc, i), None))
        elif not covers(live, d, next((str(e) for e in reversed(path)
                                         if isinstance(e, str)), "")):
            self.found.append(_Found(path, "changed", dloc, lloc))

    def _keyed(self, d: list[dict[str, Any]], live: list[Any], path: tuple[Element, ...],
               dloc: Loc, lloc: Loc, nodes: Sequence[FieldSet | None]) -> None:
        keys: list[Key] = []
        for n in nodes:
            if n is not None:
                keys += [k for k in n.item_keys() if k not in keys]
        names = keys[0].names if keys else ("name",)
        for i, item in enumerate(d):
            key = (next((k for k in keys if k.matches(item)), None)
                   or next((k for k in keys if k.matches(item, partial=True)), None)
                   or Key.of_item(item, names))
            j = next((j for j, x in enumerate(live) if key.matches(x, partial=True)), None)
            p = (*path, key)
            if j is None:
                self.found.append(_Found(p, "removed", (*dloc, i), None))
                continue
            self.walk(item, live[j], p, (*dloc, i), (*lloc, j),
                      [n.child(key) if n is not None else None for n in nodes])


def _manager(e: ManagedEntry) -> Manager:
    return Manager(e.manager, e.operation, e.subresource, e.time)


def compare_object(desired: Mapping[str, Any], live: Mapping[str, Any], *,
                   redactor: Redactor, manager: str = FIELD_MANAGER) -> tuple[FieldDrift, ...]:
    """The fields of `desired` (an object as stackctl applied it) whose live value differs,
    with redacted values and the managers that own each now. Empty when in sync."""
    want = comparable(dict(desired))
    entries = _entries(live)
    walk = _Walk(entries)
    walk.walk(want, dict(live), (), (), (), [e.fields for e in entries])
    if not walk.found:
        return ()
    # Redacted copies, only for objects that drifted: values are read from these.
    r_want, r_live = redactor.redact(want), redactor.redact(dict(live))
    secret = _is_secret(desired)
    mine = [e for e in entries if e.manager == manager and e.operation == "Apply"]
    out = []
    for f in walk.found:
        owners = [e for e in entries if e.fields.owns(f.path)]
        owned = any(e in mine for e in owners)
        if secret and f.path[:1] == ("data",):
            # stackctl applied stringData; the server stores it under data.
            owned = owned or any(e.fields.owns(("stringData", *f.path[1:])) for e in mine)
        out.append(FieldDrift(
            path=format_path(f.path), action=f.action,
            desired=value_at(r_want, f.desired_loc),
            live=None if f.live_loc is None else value_at(r_live, f.live_loc),
            managers=tuple(_manager(e) for e in owners), owned_by_stackctl=owned,
        ))
    return tuple(out)


def other_writers(live: Mapping[str, Any], manager: str = FIELD_MANAGER) -> tuple[Manager, ...]:
    """Every manager of a live object other than stackctl's Apply, latest first: who may
    have removed a field that nobody owns any more."""
    others = [e for e in _entries(live) if not (e.manager == manager and e.operation == "Apply")]
    return tuple(_manager(e) for e in sorted(others, key=lambda e: e.time, reverse=True))
