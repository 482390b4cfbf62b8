"""Object-level and field-level differences between two sets of Kubernetes objects.

Used by `stackctl plan` (two renders) and meant for drift (desired against live): objects
match by identity (`ResourceId`: group, kind, namespace, name; an apiVersion change is a
change of the same object), and a changed object lists its changed fields as readable YAML
paths with before and after values, found by deepdiff on the parsed objects.

Lists of objects are matched by their key before the comparison, the way Kubernetes'
strategic merge does (gitops.kinds' list keys: containers, env, volumes by `name`;
volumeMounts by `mountPath`; ports by port and protocol), so a path reads
`spec.template.spec.containers[name=manager].image`, not `...containers[2].image`, and
inserting a container does not show every later one as changed. Other lists compare by
position.

Values are redacted before they are compared (`gitops.redact`): a changed Secret value shows
as two different hashes, never the value.

`object_change(..., fields=False)` is the summary of one object (added, removed or changed,
its images and CRD versions) without the field changes, for reports that show no more
(the upgrade's per-cluster summary).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from deepdiff import DeepDiff
from deepdiff.helper import notpresent

from gitops.immutable import immutable_changes
from gitops.kinds import key_of, list_key
from gitops.redact import Redactor
from gitops.resource import ResourceId

Action = Literal["added", "removed", "changed"]

CRD_GROUP = "apiextensions.k8s.io"


@dataclass(frozen=True)
class FieldChange:
    """One changed field: its readable path, and the redacted values before and after
    (None on the side where the field is absent)."""

    path: str
    action: Action
    before: Any = None
    after: Any = None


@dataclass(frozen=True)
class ImageChange:
    """A container (or any `image:` field) whose image changed, appeared or went away."""

    id: ResourceId
    location: str  # e.g. spec.template.spec.containers[name=manager]
    before: str | None
    after: str | None

    @property
    def container(self) -> str:
        m = re.search(r"\[name=([^\]]+)\]$", self.location)
        return m.group(1) if m else self.location


@dataclass(frozen=True)
class CrdVersionChange:
    """The served versions of a CustomResourceDefinition before and after."""

    before: tuple[str, ...]
    after: tuple[str, ...]
    storage_before: str | None
    storage_after: str | None

    @property
    def added(self) -> tuple[str, ...]:
        return tuple(v for v in self.after if v not in self.before)

    @property
    def removed(self) -> tuple[str, ...]:
        return tuple(v for v in self.before if v not in self.after)

    def describe(self) -> str:
        parts = []
        if self.added:
            parts.append("versions added: " + ", ".join(self.added))
        if self.removed:
            parts.append("versions removed: " + ", ".join(self.removed))
            if self.storage_after:
                # gitops.apply.migrate: what a cluster stored at a removed version is
                # rewritten at the new storage version before the CRD drops it.
                parts.append("objects stored at a removed version are migrated to "
                             f"{self.storage_after} on apply")
        if self.storage_before != self.storage_after:
            parts.append(f"storage version {self.storage_before or '-'} -> "
                         f"{self.storage_after or '-'}")
        return "; ".join(parts)


@dataclass(frozen=True)
class ObjectChange:
    """An object added, removed or changed between the two sets."""

    id: ResourceId
    action: Action
    api_version_before: str | None
    api_version_after: str | None
    fields: tuple[FieldChange, ...] = ()
    images: tuple[ImageChange, ...] = ()
    crd_versions: CrdVersionChange | None = None
    # Fields that cannot change on a live object (gitops.immutable): the apply replaces
    # the object, or refuses to when re-creating it would destroy data.
    replace: tuple[str, ...] = ()

    @property
    def api_version_changed(self) -> bool:
        return (self.action == "changed"
                and self.api_version_before != self.api_version_after)

    @property
    def api_version(self) -> str:
        return self.api_version_after or self.api_version_before or ""


@dataclass(frozen=True)
class ObjectSetDiff:
    """The differences between two sets of objects, in a stable order (by identity)."""

    added: tuple[ObjectChange, ...] = ()
    removed: tuple[ObjectChange, ...] = ()
    changed: tuple[ObjectChange, ...] = ()
    unchanged: int = 0
    images: tuple[ImageChange, ...] = field(default=())

    @classmethod
    def collect(cls, changes: Iterable[ObjectChange | None], *,
                unchanged: int = 0) -> ObjectSetDiff:
        """The set diff of per-object results (None: that object is unchanged), in order."""
        found: dict[Action, list[ObjectChange]] = {"added": [], "removed": [], "changed": []}
        images: list[ImageChange] = []
        for change in changes:
            if change is None:
                unchanged += 1
                continue
            found[change.action].append(change)
            images.extend(change.images)
        return cls(added=tuple(found["added"]), removed=tuple(found["removed"]),
                   changed=tuple(found["changed"]), unchanged=unchanged, images=tuple(images))

    @property
    def is_empty(self) -> bool:
        return not (self.added or self.removed or self.changed)

    @property
    def objects(self) -> tuple[ObjectChange, ...]:
        """Every change: removed, added, then changed, each by identity."""
        return self.removed + self.added + self.changed

    @property
    def crd_changes(self) -> tuple[ObjectChange, ...]:
        return tuple(c for c in self.objects if c.crd_versions is not None)

    @property
    def api_version_changes(self) -> tuple[ObjectChange, ...]:
        return tuple(c for c in self.changed if c.api_version_changed)


# --- list keys ------------------------------------------------------------------------------

class _ItemKey(str):
    """A key of a list item matched by its key fields (gitops.kinds): reads `name=manager`
    or `containerPort=80,protocol=TCP`; `pairs` holds the fields and values."""

    pairs: tuple[tuple[str, Any], ...]

    def __new__(cls, pairs: tuple[tuple[str, Any], ...]) -> _ItemKey:
        key = super().__new__(cls, ",".join(f"{f}={v}" for f, v in pairs))
        key.pairs = pairs
        return key


class _KeyedList(dict[_ItemKey, Any]):
    """A list of objects turned into a mapping by its key, for the comparison."""


def _normalize(node: Any, field_name: str = "") -> Any:
    if isinstance(node, dict):
        return {k: _normalize(v, str(k)) for k, v in node.items()}
    if isinstance(node, list):
        fields = list_key(field_name, node)
        if fields is None:
            return [_normalize(v, field_name) for v in node]
        out = _KeyedList()
        for item in node:
            pairs = key_of(fields, item)
            assert pairs is not None  # list_key checked every entry
            out[_ItemKey(pairs)] = _normalize(item, field_name)
        return out
    return node


def _plain(node: Any) -> Any:
    if node is notpresent:
        return None
    if isinstance(node, _KeyedList):
        return [_plain(v) for v in node.values()]
    if isinstance(node, dict):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    return node


# --- paths ----------------------------------------------------------------------------------

_SIMPLE_KEY = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$-]*$")
_SIMPLE_VALUE = re.compile(r"^[A-Za-z0-9_./:$-]*$")


def format_path(parts: Sequence[Any]) -> str:
    """`spec.template.spec.containers[name=manager].image`, `data["config.yaml"]`,
    `ports[containerPort=80,protocol=TCP]`,
    `rules[0].verbs`: the readable YAML path of a list of keys and indices."""
    out = ""
    for p in parts:
        if isinstance(p, _ItemKey):
            out += "[" + ",".join(
                f"{f}={v}" if _SIMPLE_VALUE.match(str(v)) else f"{f}={json.dumps(str(v))}"
                for f, v in p.pairs) + "]"
        elif isinstance(p, int) and not isinstance(p, bool):
            out += f"[{p}]"
        elif _SIMPLE_KEY.match(str(p)):
            out += f".{p}" if out else str(p)
        else:
            out += f"[{json.dumps(str(p))}]"
    return out


def _sort_key(parts: Sequence[Any]) -> tuple[tuple[int, int, str], ...]:
    return tuple((1, p, "") if isinstance(p, int) and not isinstance(p, bool)
                 else (0, 0, str(p)) for p in parts)


# --- field-level ----------------------------------------------------------------------------

_REPORTS: Mapping[str, Action] = {
    "values_changed": "changed",
    "type_changes": "changed",
    "dictionary_item_added": "added",
    "dictionary_item_removed": "removed",
    "iterable_item_added": "added",
    "iterable_item_removed": "removed",
}


def field_changes(before: Mapping[str, Any], after: Mapping[str, Any], *,
                  redactor: Redactor,
                  redacted: bool = False) -> tuple[FieldChange, ...]:
    """The changed fields between two versions of one object, as readable paths with
    redacted values, ordered by path. `redacted=True` when both are redacted already."""
    r = redactor
    a = before if redacted else r.redact(before)
    b = after if redacted else r.redact(after)
    return _field_changes(_normalize(a), _normalize(b))


def _prune_equal(a: Any, b: Any) -> tuple[Any, Any]:
    """Both mappings without the keys whose values are equal on both sides, recursively:
    deepdiff then walks only what differs (a CRD with a few changed fields in a 3,000-line
    schema costs a few nodes, not the whole schema). Paths of what remains are unchanged."""
    if not (isinstance(a, dict) and isinstance(b, dict)):
        return a, b
    if type(a) is not type(b):
        return a, b
    pa, pb = type(a)(), type(b)()
    for k, va in a.items():
        if k not in b:
            pa[k] = va
            continue
        vb = b[k]
        if va == vb and type(va) is type(vb):
            continue
        pa[k], pb[k] = _prune_equal(va, vb)
    for k, vb in b.items():
        if k not in a:
            pb[k] = vb
    return pa, pb


def _field_changes(a: Any, b: Any) -> tuple[FieldChange, ...]:
    if a == b:
        return ()
    a, b = _prune_equal(a, b)
    tree = DeepDiff(a, b, view="tree", verbose_level=2)
    found: list[tuple[tuple[tuple[int, int, str], ...], FieldChange]] = []
    for report, levels in tree.items():
        action = _REPORTS.get(report)
        for level in levels:
            parts = level.path(output_format="list")
            # A report type objects do not produce: keep it visible as a change.
            action_: Action = "changed" if action is None else action
            change = FieldChange(
                path=format_path(parts), action=action_,
                before=None if action_ == "added" else _plain(level.t1),
                after=None if action_ == "removed" else _plain(level.t2),
            )
            found.append((_sort_key(parts), change))
    found.sort(key=lambda x: x[0])
    return tuple(c for _, c in found)


# --- images and CRD versions ---------------------------------------------------------------

def _images(node: Any, parts: tuple[Any, ...], out: dict[str, str]) -> None:
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "image" and isinstance(v, str) and not isinstance(node, _KeyedList):
                out[format_path(parts)] = v
            elif isinstance(v, dict | list):
                _images(v, (*parts, k), out)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            _images(v, (*parts, i), out)


def images_of(normalized: Any) -> dict[str, str]:
    """location -> image of every `image:` string field of a normalized object."""
    out: dict[str, str] = {}
    _images(normalized, (), out)
    return out


def _image_changes(rid: ResourceId, a: Mapping[str, str],
                   b: Mapping[str, str]) -> tuple[ImageChange, ...]:
    out = []
    for loc in sorted(set(a) | set(b)):
        if a.get(loc) != b.get(loc):
            out.append(ImageChange(id=rid, location=loc, before=a.get(loc), after=b.get(loc)))
    return tuple(out)


def _crd_versions(obj: Mapping[str, Any] | None) -> tuple[tuple[str, ...], str | None]:
    if not obj:
        return (), None
    spec = obj.get("spec") or {}
    versions = [v for v in spec.get("versions") or [] if isinstance(v, dict)]
    names = tuple(str(v.get("name")) for v in versions if v.get("served", True))
    storage = next((str(v.get("name")) for v in versions if v.get("storage")), None)
    if not versions and spec.get("version"):  # apiextensions.k8s.io/v1beta1's single version
        names, storage = (str(spec["version"]),), str(spec["version"])
    return names, storage


def _crd_change(rid: ResourceId, a: Mapping[str, Any] | None,
                b: Mapping[str, Any] | None) -> CrdVersionChange | None:
    if rid.kind != "CustomResourceDefinition" or rid.group != CRD_GROUP:
        return None
    (va, sa), (vb, sb) = _crd_versions(a), _crd_versions(b)
    if va == vb and sa == sb:
        return None
    return CrdVersionChange(before=va, after=vb, storage_before=sa, storage_after=sb)


# --- object sets ----------------------------------------------------------------------------

def _index(objs: Iterable[Mapping[str, Any]]) -> dict[ResourceId, Mapping[str, Any]]:
    out: dict[ResourceId, Mapping[str, Any]] = {}
    for obj in objs:
        out[ResourceId.of(dict(obj))] = obj
    return out


def object_change(
    rid: ResourceId,
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
    *,
    redactor: Redactor,
    fields: bool = True,
) -> ObjectChange | None:
    """One object's change, as `diff_object_sets` reports it, or None when it is unchanged
    (equal, or equal once lists are matched by key).

    `fields=False` leaves the field changes out (`fields=()`), for summaries: the two
    versions are then compared without redacting them, which gives the same verdict
    (redaction maps equal values to equal marks and different ones to different marks,
    and never changes a key), and only an object whose images changed is redacted, for the
    image values it shows. The redactor still learns every secret value it is given."""
    r = redactor
    a, b = before, after
    if a is not None and b is not None and a == b:
        r.learn([a])
        return None
    if fields:
        na = _normalize(r.redact(a)) if a is not None else None
        nb = _normalize(r.redact(b)) if b is not None else None
    else:
        r.learn([x for x in (a, b) if x is not None])
        na = _normalize(a) if a is not None else None
        nb = _normalize(b) if b is not None else None
    imgs = _image_changes(rid, images_of(na) if na is not None else {},
                          images_of(nb) if nb is not None else {})
    if imgs and not fields:  # the values shown are the redacted ones
        imgs = _image_changes(rid, images_of(_normalize(r.redact(a))) if a is not None else {},
                              images_of(_normalize(r.redact(b))) if b is not None else {})
    crd = _crd_change(rid, a, b) if a is not None and b is not None else None
    av_a = str(a.get("apiVersion")) if a is not None else None
    av_b = str(b.get("apiVersion")) if b is not None else None
    if a is None:
        return ObjectChange(rid, "added", None, av_b, images=imgs, crd_versions=crd)
    if b is None:
        return ObjectChange(rid, "removed", av_a, None, images=imgs, crd_versions=crd)
    if fields:
        changes = _field_changes(na, nb)
        if not changes:
            return None  # equal once lists are matched by key
    elif na == nb:
        return None
    else:
        changes = ()
    return ObjectChange(rid, "changed", av_a, av_b, fields=changes, images=imgs,
                        crd_versions=crd, replace=immutable_changes(rid, a, b))


def diff_object_sets(
    before: Iterable[Mapping[str, Any]],
    after: Iterable[Mapping[str, Any]],
    *,
    redactor: Redactor,
) -> ObjectSetDiff:
    """Objects added, removed and changed (field by field) from `before` to `after`.

    Every value in the result is redacted with `redactor` (the run's). The
    redactor learns the secret values of both sets, so its `text()` scrubs them from
    any message printed alongside."""
    r = redactor
    a_idx, b_idx = _index(before), _index(after)
    return ObjectSetDiff.collect(
        object_change(rid, a_idx.get(rid), b_idx.get(rid), redactor=r)
        for rid in sorted(set(a_idx) | set(b_idx)))
