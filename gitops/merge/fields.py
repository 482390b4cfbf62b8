"""Recursive three-way merge of parsed YAML data, editing ours (ruamel round-trip) in place.

Rules, applied at every mapping key and list entry:
- unchanged upstream (theirs == base): ours stays, whatever it is;
- unchanged locally (ours == base): theirs is taken (set, added or deleted);
- both changed to the same value: nothing to do;
- both changed differently: mappings merge key by key, lists merge by their merge key (or
  atomically), anything else is a conflict that keeps ours.
Lists of objects merge by key: the Kubernetes strategic-merge keys (`patchMergeKey` of the
k8s.io/api types) where the field name says which list it is, else `name` when every entry
has one (CRD content, unknown kinds), else the list is atomic.
"""

from __future__ import annotations

import copy
import difflib
import json
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.scalarstring import ScalarString

from gitops.kinds import (
    ATOMIC_LISTS,
    CONTAINER_PORT_KEY,
    DEFAULT_KEY,
    KEY_DEFAULTS,
    LIST_KEYS,
    SERVICE_PORT_KEY,
    SET_LISTS,
    key_fields,
    key_of,
)
from gitops.merge.conflict import (
    DELETED,
    Conflict,
    ConflictKind,
    Redaction,
    is_secret_field,
)
from gitops.merge.strings import is_multiline, merge_string
from gitops.resource import ResourceId


class _Missing:
    """A key or entry absent on one side (distinct from an explicit null)."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()

KeyFn = Callable[[Any], Hashable | None]
# (field path so far, field name of the list, every entry of the three sides) -> key or None
KeyResolver = Callable[[tuple[str, ...], str, list[Any]], KeyFn | None]


# --------------------------------------------------------------------------- equality


def same(a: Any, b: Any) -> bool:
    """Equal as data: mapping key order does not count, `true` is not `1`."""
    if isinstance(a, Mapping):
        if not isinstance(b, Mapping) or len(a) != len(b):
            return False
        return all(k in b and same(v, b[k]) for k, v in a.items())
    if isinstance(a, list):
        if not isinstance(b, list) or len(a) != len(b):
            return False
        return all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, bool) != isinstance(b, bool):
        return False
    if a is MISSING or b is MISSING:
        return a is b
    return bool(a == b)


def plain(value: Any) -> Any:
    """ruamel data as plain JSON-able Python (for reports)."""
    if value is MISSING:
        return None
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, bool) or value is None:
        return bool(value) if value is not None else None
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    return str(value)


def canonical(value: Any) -> str:
    """A hashable, order-independent text form of a value (whole-item list keys)."""
    return json.dumps(plain(value), sort_keys=True, default=str)


# --------------------------------------------------------------------------- list keys

def _fields_key(fields: tuple[str, ...]) -> KeyFn:
    """The key of an entry by `fields` (gitops.kinds: their defaults count), as text."""

    def key(item: Any) -> Hashable | None:
        found = key_of(fields, item)
        return None if found is None else tuple(canonical(v) for _, v in found)

    return key


def _whole_item(item: Any) -> Hashable:
    return canonical(item)


def kubernetes_list_key(path: tuple[str, ...], name: str, items: list[Any]) -> KeyFn | None:
    """The merge key of a list in a Kubernetes object (gitops.kinds' list keys), or None
    for an atomic list."""
    if name in SET_LISTS:
        return _whole_item
    if name in ATOMIC_LISTS:
        return None
    fields = key_fields(name, items)
    if fields is not None:
        return _fields_key(fields)
    if items and all(isinstance(i, Mapping) and "name" in i for i in items):
        return _fields_key(DEFAULT_KEY)
    if items and all(isinstance(i, str | int | float) and not isinstance(i, bool)
                     for i in items):
        # Plain values (a spawner's image options, gateway hosts, capabilities): a set, so
        # an entry added locally survives upstream bumping the others; a value repeated on
        # one side (an argument list) makes the list atomic (_index).
        return _whole_item
    return None


# --------------------------------------------------------------------------- merger


@dataclass
class FieldMerge:
    """Merges one document (or one part of it) into ours, collecting conflicts."""

    path: str
    resource: ResourceId | None = None
    redaction: Redaction = field(default_factory=Redaction)
    list_key: KeyResolver = kubernetes_list_key
    secret_field: Callable[[str], bool] | None = None  # more fields to hash (secretGenerator)
    conflicts: list[Conflict] = field(default_factory=list)
    changed: bool = False

    # --- conflicts -----------------------------------------------------------------------

    def shown(self, fpath: str, v: Any) -> Any:
        """A value as a conflict shows it (secret fields hashed)."""
        return self._value(fpath, v)

    def _value(self, fpath: str, v: Any) -> Any:
        if v is MISSING:
            return None
        if is_secret_field(self.resource, fpath) or (
                self.secret_field is not None and self.secret_field(fpath)):
            return self.redaction.value(plain(v))
        return self.redaction.field_value(fpath, plain(v))

    def conflict(self, fpath: tuple[str, ...], kind: ConflictKind, b: Any, o: Any, t: Any,
                 message: str = "") -> None:
        f = field_string(fpath)
        self.conflicts.append(Conflict(
            path=self.path, kind=kind, resource=self.resource, field=f, segments=fpath,
            base=self._value(f, b),
            ours=DELETED if o is MISSING and kind is ConflictKind.DELETED_LOCALLY
            else self._value(f, o),
            theirs=DELETED if t is MISSING and kind is ConflictKind.DELETED_UPSTREAM
            else self._value(f, t),
            message=message,
        ))

    # --- values --------------------------------------------------------------------------

    def merge_value(self, b: Any, o: Any, t: Any, fpath: tuple[str, ...]) -> Any:
        """The merged value of one node (may be MISSING); edits ours' containers in place."""
        if same(o, t) or same(b, t):
            return o
        if same(b, o):
            self.changed = True
            return _keep_style(o, t)
        if is_multiline(b, o, t):
            return merge_string(self, b, o, t, fpath)
        if isinstance(o, Mapping) and isinstance(t, Mapping):
            self.merge_map(b if isinstance(b, Mapping) else {}, o, t, fpath)
            return o
        if isinstance(o, list) and isinstance(t, list):
            return self.merge_list(b if isinstance(b, list) else MISSING, o, t, fpath)
        if t is MISSING:
            self.conflict(fpath, ConflictKind.DELETED_UPSTREAM, b, o, t)
        elif o is MISSING:
            self.conflict(fpath, ConflictKind.DELETED_LOCALLY, b, o, t)
        elif b is MISSING:
            self.conflict(fpath, ConflictKind.BOTH_ADDED, b, o, t)
        else:
            self.conflict(fpath, ConflictKind.BOTH_CHANGED, b, o, t)
        return o

    def merge_map(self, b: Mapping[Any, Any], o: Any, t: Mapping[Any, Any],
                  fpath: tuple[str, ...]) -> None:
        """Merge mapping t (against b) into mapping o, in place."""
        for k in list(o.keys()):
            bv, ov, tv = b.get(k, MISSING), o[k], t.get(k, MISSING)
            new = self.merge_value(bv, ov, tv, (*fpath, str(k)))
            if new is MISSING:
                _delete_key(o, k)
            elif new is not ov:
                o[k] = new
        keys = list(t.keys())
        for i, k in enumerate(keys):
            if k in o:
                continue
            bv, tv = b.get(k, MISSING), t[k]
            new = self.merge_value(bv, MISSING, tv, (*fpath, str(k)))
            if new is MISSING:
                continue
            pos = 0
            for prev in reversed(keys[:i]):
                if prev in o:
                    pos = list(o.keys()).index(prev) + 1
                    break
            _insert(o, pos, k, new)

    def merge_list(self, b: Any, o: list[Any], t: list[Any], fpath: tuple[str, ...]) -> Any:
        """The merged list: o edited in place when merged by key, else o or t whole."""
        name = fpath[-1].split("[", 1)[0] if fpath else ""
        parent = fpath[:-1]
        base_items = b if isinstance(b, list) else []
        keyfn = self.list_key(parent, name, [*base_items, *o, *t])
        keyed = _index(keyfn, base_items), _index(keyfn, o), _index(keyfn, t)
        if keyfn is None or any(k is None for k in keyed):
            return self._merge_atomic(b, o, t, fpath)
        bmap, omap, tmap = keyed
        assert bmap is not None and omap is not None and tmap is not None
        seg = fpath[-1]

        def at(key: Hashable, item: Any) -> tuple[str, ...]:
            return (*fpath[:-1], f"{seg}[{_label(key, item)}]")

        t_keys = [keyfn(x) for x in t]
        b_keys = [keyfn(x) for x in base_items]
        subst = _substitutions(b_keys, t_keys, bmap, tmap)
        ours_subst = _substitutions(b_keys, [keyfn(x) for x in o], bmap, omap)
        placed: set[Hashable] = set(omap)
        for bk, tk in subst.items():
            if bk in omap:
                continue
            # Ours deleted (or replaced) an entry upstream replaced in place (a renamed
            # path, a bumped tag): the entry stays as ours has it; replaced differently on
            # both sides, it is a conflict.
            placed.add(tk)
            ok = ours_subst.get(bk)
            if ok is not None and ok != tk:
                self.conflict(at(bk, bmap[bk]), ConflictKind.BOTH_CHANGED, bmap[bk],
                              omap[ok], tmap[tk], message="entry replaced on both sides")
        remove: list[int] = []
        for idx, item in enumerate(o):
            k = keyfn(item)
            bv, tv = bmap.get(k, MISSING), tmap.get(k, MISSING)
            new = self.merge_value(bv, item, tv, at(k, item))
            if new is MISSING:
                sub = subst.get(k)
                if sub is not None and sub not in placed:
                    # Upstream replaced this entry at the same place (a renamed path): put
                    # the new one where the old one was, under the same comments.
                    o[idx] = tmap[sub]
                    placed.add(sub)
                else:
                    remove.append(idx)
            elif new is not item:
                o[idx] = new
        for idx in reversed(remove):
            _delete_item(o, idx)
        for i, k in enumerate(t_keys):
            if k in placed:
                continue
            new = self.merge_value(bmap.get(k, MISSING), MISSING, t[i], at(k, t[i]))
            if new is MISSING:
                continue
            current = [keyfn(x) for x in o]
            pos = 0
            for prev in reversed(t_keys[:i]):
                if prev in current:
                    pos = current.index(prev) + 1
                    break
            o.insert(pos, new)
        return o

    def _merge_atomic(self, b: Any, o: Any, t: Any, fpath: tuple[str, ...]) -> Any:
        if same(b, o):
            self.changed = True
            return t
        kind = ConflictKind.BOTH_ADDED if b is MISSING else ConflictKind.BOTH_CHANGED
        self.conflict(fpath, kind, b, o, t, message="list replaced whole on both sides")
        return o


def field_string(fpath: tuple[str, ...]) -> str:
    """`spec.template.metadata.labels["app.kubernetes.io/name"]`: keys holding a dot are
    quoted, list entries read `containers[name=web]`."""
    out = ""
    for seg in fpath:
        name, bracket, rest = seg.partition("[")
        if "." in name or not name:
            out += f'["{name}"]'
        else:
            out += ("." if out else "") + name
        if bracket:
            out += "[" + rest
    return out


def _substitutions(bkeys: list[Hashable | None], tkeys: list[Hashable | None],
                   bmap: dict[Hashable, Any], tmap: dict[Hashable, Any]) -> dict[Hashable, Any]:
    """Entries upstream replaced in place: base key -> theirs key, paired in order within
    each replaced run of the list (`../apps/x` -> `../applications/x`)."""
    out: dict[Hashable, Any] = {}
    sm = difflib.SequenceMatcher(None, bkeys, tkeys, autojunk=False)
    for tag, i1, i2, j1, j2 in sm.get_opcodes():
        if tag != "replace":
            continue
        for bk, tk in zip(bkeys[i1:i2], tkeys[j1:j2], strict=False):
            if bk is not None and tk is not None and tk not in bmap and bk not in tmap:
                out[bk] = tk
    return out


def _index(keyfn: KeyFn | None, items: list[Any]) -> dict[Hashable, Any] | None:
    if keyfn is None:
        return None
    out: dict[Hashable, Any] = {}
    for item in items:
        k = keyfn(item)
        if k is None or k in out:
            return None  # no key or a duplicate key: the list is atomic
        out[k] = item
    return out


# The fields an entry is labelled by in a conflict's address, the first it has: the key
# fields of gitops.kinds' list keys, then those of kustomization lists (patches by path).
_LABEL_FIELDS = tuple(dict.fromkeys(
    f for key in (DEFAULT_KEY, *LIST_KEYS.values(), CONTAINER_PORT_KEY, SERVICE_PORT_KEY,
                  ("path",))
    for f in key if "." not in f and f not in KEY_DEFAULTS))


def _label(key: Hashable, item: Any) -> str:
    """`name=app` for a keyed entry; the whole value for a set entry."""
    if isinstance(item, Mapping):
        for f in _LABEL_FIELDS:
            if f in item and not isinstance(item[f], Mapping | list):
                return f"{f}={plain(item[f])}"
        return canonical(item)
    if isinstance(key, str) and not key.startswith('"'):
        return key  # a key computed from the entry, such as a literal's name
    return str(plain(item))


def _split_comment(token: Any) -> str:
    """The full-line comments carried by an entry's comment token (after its own line)."""
    value = getattr(token, "value", "")
    return value.split("\n", 1)[1] if isinstance(value, str) and "\n" in value else ""


def _hand_over(ca_items: dict[Any, Any], gone: Any, prev: Any, pos: int) -> None:
    """Comment lines after a deleted entry belong to what follows: give them to the entry
    before it (ruamel attaches such lines to the preceding entry)."""
    entry = ca_items.get(gone)
    if not entry or prev is None:
        return
    tokens = [t for t in entry if t is not None and not isinstance(t, list)]
    rest = "".join(_split_comment(t) for t in tokens)
    if not rest.strip():
        return
    target = ca_items.get(prev)
    if target and target[pos] is not None:
        target[pos].value = target[pos].value + rest
        return
    src = next(t for t in tokens if _split_comment(t))
    token = copy.copy(src)
    token.value = "\n" + rest
    new = [None, None, None, None] if pos == 2 else [None, None]
    new[pos] = token
    ca_items[prev] = new


def _pass_on(ca_items: dict[Any, Any], prev: Any, new: Any, pos: int) -> None:
    """An entry inserted after `prev` takes over the comment lines that followed `prev`, so
    they stay just above the entry they were written for."""
    entry = ca_items.get(prev)
    token = entry[pos] if entry else None
    rest = _split_comment(token)
    if token is None or not rest.strip():
        return
    token.value = token.value[: len(token.value) - len(rest)]
    moved = copy.copy(token)
    moved.value = "\n" + rest
    slot = [None, None, None, None] if pos == 2 else [None, None]
    slot[pos] = moved
    ca_items[new] = slot


def _delete_item(o: list[Any], idx: int) -> None:
    if isinstance(o, CommentedSeq) and idx > 0:
        _hand_over(o.ca.items, idx, idx - 1, 0)
    del o[idx]


def _delete_key(o: Any, k: Any) -> None:
    if isinstance(o, CommentedMap):
        keys = list(o.keys())
        i = keys.index(k)
        _hand_over(o.ca.items, k, keys[i - 1] if i > 0 else None, 2)
    del o[k]


def _insert(o: Any, pos: int, k: Any, v: Any) -> None:
    if isinstance(o, CommentedMap):
        o.insert(pos, k, v)
        if pos > 0 and not isinstance(v, Mapping | list):
            _pass_on(o.ca.items, list(o.keys())[pos - 1], k, 2)
    else:
        o[k] = v


def _keep_style(o: Any, t: Any) -> Any:
    """Theirs' new value, quoted the way ours quoted the old one."""
    if (isinstance(o, ScalarString) and isinstance(t, str)
            and not isinstance(t, ScalarString)):
        return type(o)(t)
    return t
