"""Probes: what a local customization does to a cluster's render, as a check on the
rendered objects. The effect check (effects.py) evaluates each probe on the render before
the upgrade and after it: one that held before and fails after is a customization whose
effect was lost.

- ImageProbe: some container runs the image an `images:` entry produces;
- LeafProbe: an object has a value at a field (a patch's field, a vendor edit's field; a
  multi-line string holds the lines the customization wrote; a list holds a value);
- PresentProbe / AbsentProbe: an object is rendered (a local resource) / none of these is
  (a component removed locally, a `$patch: delete`);
- LabelProbe: some object carries a label the customization sets;
- SelectorProbe: a patch's `target:` selects at least one object.

Objects are found by kind and name as the customization wrote them; a rendered name may
carry a generator's hash suffix or a prefix/suffix of a layer above (`name-7h5d8k2m9t`,
`team-name`), and the namespace a layer above sets is not compared.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from gitops.render import Rendered, RenderedObject

WORKLOAD_CONTAINERS = ("containers", "initContainers", "ephemeralContainers")
_IMAGE_LINE = re.compile(r"^[ \t]*(?:- )?image: *[^\s{|>]", re.MULTILINE)
Step = str | tuple[str, str, Any]  # a mapping key, or (list field, key field, key value)


class RenderIndex:
    """One cluster's render, looked up by kind and name; bodies parsed on first use."""

    def __init__(self, rendered: Rendered) -> None:
        self.rendered = rendered
        self.by_kind: dict[str, list[RenderedObject]] = {}
        for o in rendered.objects:
            self.by_kind.setdefault(o.id.kind, []).append(o)
        self._images: list[tuple[RenderedObject, str, str]] | None = None

    def find(self, kind: str, name: str, namespace: str = "") -> list[RenderedObject]:
        """Objects of `kind` (`*`: any kind) named `name`, or `name` with a hash suffix,
        prefix or suffix; those in `namespace` first when it is given."""
        objs = list(self.rendered.objects) if kind == "*" else self.by_kind.get(kind, [])
        exact = [o for o in objs if o.id.name == name]
        if not exact:
            exact = [o for o in objs if o.id.name.startswith(name + "-")
                     or o.id.name.endswith("-" + name)]
        if namespace and len(exact) > 1:
            in_ns = [o for o in exact if o.id.namespace == namespace]
            exact = in_ns or exact
        return exact

    def images(self) -> list[tuple[RenderedObject, str, str]]:
        """(object, container name, image) of every container in the render."""
        if self._images is None:
            self._images = []
            for o in self.rendered.objects:
                # Only objects with an `image:` scalar are parsed (a CRD's schema has
                # `image:` keys too, but as mappings: parsing them all costs seconds).
                if "image:" not in o.yaml or not _IMAGE_LINE.search(o.yaml):
                    continue
                for cname, image in containers(o.body):
                    self._images.append((o, cname, image))
        return self._images

    def all(self) -> Iterable[RenderedObject]:
        return self.rendered.objects


def containers(body: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(name, image) of every container of a workload (any pod template found)."""
    out: list[tuple[str, str]] = []

    def walk(node: Any, depth: int) -> None:
        if depth > 8:
            return
        if isinstance(node, Mapping):
            for k, v in node.items():
                if k in WORKLOAD_CONTAINERS and isinstance(v, list):
                    for c in v:
                        if isinstance(c, Mapping) and isinstance(c.get("image"), str):
                            out.append((str(c.get("name") or ""), str(c["image"])))
                else:
                    walk(v, depth + 1)
        elif isinstance(node, list):
            for v in node:
                walk(v, depth + 1)

    walk(body.get("spec"), 0)
    return out


def split_image(image: str) -> tuple[str, str]:
    """(repository, tag or @digest); no tag: ''."""
    if "@" in image:
        repo, digest = image.split("@", 1)
        return repo, "@" + digest
    head, sep, tag = image.rpartition(":")
    if sep and "/" not in tag:
        return head, tag
    return image, ""


@dataclass(frozen=True)
class Result:
    """Whether a probe holds on a render; `objects` it holds on (or looked at when it
    fails), with the container for an image."""

    holds: bool
    objects: tuple[RenderedObject, ...] = ()
    note: str = ""
    containers: tuple[str, ...] = ()

    @property
    def where(self) -> tuple[str, ...]:
        if self.containers:
            return tuple(f"{label(o)} [{c}]" for o, c in zip(self.objects, self.containers,
                                                            strict=True))
        return tuple(label(o) for o in self.objects)


def label(o: RenderedObject) -> str:
    ns = f" -n {o.id.namespace}" if o.id.namespace else ""
    return f"{o.id.kind}/{o.id.name}{ns}"


@dataclass(frozen=True)
class ImageProbe:
    repo: str
    tag: str = ""  # the tag (or @digest) the entry sets, when it sets one

    def check(self, idx: RenderIndex) -> Result:
        hits = [(o, c) for o, c, img in idx.images()
                if split_image(img)[0] == self.repo
                and (not self.tag or split_image(img)[1] == self.tag)]
        return Result(bool(hits), tuple(o for o, _c in hits), "",
                      tuple(c for _o, c in hits))

    def describe(self) -> str:
        return f"image {self.repo}" + (f":{self.tag}" if self.tag and self.tag[0] != "@"
                                       else self.tag)


@dataclass(frozen=True)
class PresentProbe:
    kind: str
    name: str
    namespace: str = ""

    def check(self, idx: RenderIndex) -> Result:
        found = idx.find(self.kind, self.name, self.namespace)
        return Result(bool(found), tuple(found), "" if found else "not rendered")

    def describe(self) -> str:
        return f"{self.kind}/{self.name} is rendered"


@dataclass(frozen=True)
class AbsentProbe:
    objects: tuple[tuple[str, str], ...]  # (kind, name)

    def check(self, idx: RenderIndex) -> Result:
        found = [o for k, n in self.objects for o in idx.find(k, n)]
        return Result(not found, tuple(found), "rendered" if found else "")

    def describe(self) -> str:
        shown = ", ".join(f"{k}/{n}" for k, n in self.objects[:3])
        more = f" and {len(self.objects) - 3} more" if len(self.objects) > 3 else ""
        return f"{shown}{more} not rendered"


@dataclass(frozen=True)
class LabelProbe:
    key: str
    value: str
    annotation: bool = False

    def check(self, idx: RenderIndex) -> Result:
        field = "annotations" if self.annotation else "labels"
        needle = self.key
        for o in idx.all():
            if needle not in o.yaml:
                continue
            meta = o.body.get("metadata") or {}
            if str((meta.get(field) or {}).get(self.key)) == self.value:
                return Result(True, (o,))
        return Result(False, (), "on no object")

    def describe(self) -> str:
        return f"{'annotation' if self.annotation else 'label'} {self.key}={self.value}"


@dataclass(frozen=True)
class SelectorProbe:
    kind: str = ""
    name: str = ""  # a regular expression, as kustomize's target.name
    namespace: str = ""
    label_selector: str = ""

    def check(self, idx: RenderIndex) -> Result:
        pool = idx.by_kind.get(self.kind, []) if self.kind else list(idx.all())
        hits = []
        for o in pool:
            if self.name and not re.fullmatch(self.name, o.id.name):
                continue
            if self.namespace and o.id.namespace != self.namespace:
                continue
            if self.label_selector and not _selects(self.label_selector, o):
                continue
            hits.append(o)
        return Result(bool(hits), tuple(hits[:5]), "" if hits else "not rendered")

    def describe(self) -> str:
        parts = [p for p in (self.kind, self.name and f"name {self.name}",
                             self.label_selector and f"labels {self.label_selector}") if p]
        return "the patch's target (" + ", ".join(parts) + ") selects an object"


def _selects(selector: str, o: RenderedObject) -> bool:
    labels = (o.body.get("metadata") or {}).get("labels") or {}
    for term in selector.split(","):
        term = term.strip()
        if "!=" in term:
            k, v = term.split("!=", 1)
            if str(labels.get(k.strip())) == v.strip():
                return False
        elif "=" in term:
            k, v = term.split("=", 1)
            if str(labels.get(k.strip().rstrip("="))) != v.strip():
                return False
        elif term and term not in labels:
            return False
    return True


EQUALS, LINES, MEMBER, MISSING_VALUE, DATA = "equals", "lines", "member", "missing", "data"


@dataclass(frozen=True)
class LeafProbe:
    """An object's value at `steps`: equal to `value` (equals), holding its lines (lines),
    holding it as a list entry (member), absent (missing). `data`: a ConfigMap or Secret
    key whose value (base64 for a Secret's data) holds `value`'s lines or equals it."""

    kind: str
    name: str
    namespace: str
    steps: tuple[Step, ...]
    mode: str
    value: Any = None
    secret: bool = False

    def check(self, idx: RenderIndex) -> Result:
        found = idx.find(self.kind, self.name, self.namespace)
        if not found:
            return Result(False, (), "not rendered")
        for o in found:
            if self._holds(o.body):
                return Result(True, (o,))
        return Result(False, tuple(found), "value differs")

    def _holds(self, body: Mapping[str, Any]) -> bool:
        if self.mode == DATA:
            key = str(self.steps[-1])
            raw = (body.get("data") or {}).get(key)
            if raw is None:
                raw = (body.get("stringData") or {}).get(key)
            elif self.kind == "Secret":
                try:
                    raw = base64.b64decode(str(raw)).decode("utf-8", "replace")
                except ValueError:
                    return False
            if raw is None:
                return False
            return _lines_in(str(raw), self.value) if isinstance(self.value, tuple) \
                else str(raw) == str(self.value)
        node = follow(body, self.steps)
        if self.mode == MISSING_VALUE:
            return node is _NONE
        if node is _NONE:
            return False
        if self.mode == LINES:
            return isinstance(node, str) and _lines_in(node, self.value)
        if self.mode == MEMBER:
            return isinstance(node, list) and any(_equal(x, self.value) for x in node)
        return _equal(node, self.value)

    def describe(self) -> str:
        what = "key " + str(self.steps[-1]) if self.mode == DATA else field_text(self.steps)
        return f"{self.kind}/{self.name} {what}"


class _NoneType:
    pass


_NONE: Any = _NoneType()


def follow(node: Any, steps: Iterable[Step]) -> Any:
    for s in steps:
        if isinstance(s, tuple):
            field, key, value = s
            items = node.get(field) if isinstance(node, Mapping) else None
            if not isinstance(items, list):
                return _NONE
            match = [i for i in items if isinstance(i, Mapping) and _equal(i.get(key), value)]
            if not match:
                return _NONE
            node = match[0]
        else:
            if not isinstance(node, Mapping) or s not in node:
                return _NONE
            node = node[s]
    return node


def field_text(steps: Iterable[Step]) -> str:
    out = ""
    for s in steps:
        if isinstance(s, tuple):
            out += ("." if out else "") + f"{s[0]}[{s[1]}={s[2]}]"
        elif "." in s or "/" in s:
            out += f'["{s}"]'
        else:
            out += ("." if out else "") + s
    return out


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b or a == b
    if (isinstance(a, int | float) and isinstance(b, str)) or (
            isinstance(b, int | float) and isinstance(a, str)):
        return str(a) == str(b)  # "2" in a patch renders as 2 in a quantity, or the reverse
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return all(k in a and _equal(a[k], v) for k, v in b.items())
    return bool(a == b)


def _lines_in(text: str, lines: tuple[str, ...]) -> bool:
    have = {ln.strip() for ln in text.splitlines()}
    return all(ln.strip() in have for ln in lines)


Probe = ImageProbe | PresentProbe | AbsentProbe | LabelProbe | SelectorProbe | LeafProbe
