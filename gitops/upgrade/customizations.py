"""The local customizations of a deployment repo, each with the probes (probes.py) that say
what it does to a cluster's render.

- every entry of a local kustomization (overlays/, clusters/, a local one under vendor/),
  and every entry ours added to or changed in one of upstream's: `images`, `replicas`,
  `patches` (and the older patch fields) with their targets, `labels`, `commonLabels`,
  `commonAnnotations`, generators (`behavior: merge` or not), `resources` added, and
  `resources` ours removed from upstream's list;
- every edit inside vendor/ of upstream's own files: each field of a resource ours changed
  or added (the lines it wrote, for a multi-line string), each resource it added or
  removed, and the lines of a generator's input file it changed.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from gitops.merge.fields import _label, canonical, same
from gitops.merge.kustomization import (
    GENERATORS,
    is_kustomization,
    kustomization_list_key,
)
from gitops.merge.upstreamrefs import dirs_of
from gitops.resource import ResourceId
from gitops.upgrade.fieldprobes import (
    MAX_LEAVES,
    doc_probes,
    env_pairs,
    json_patch_probes,
    segments_of,
)
from gitops.upgrade.probes import (
    DATA,
    EQUALS,
    AbsentProbe,
    ImageProbe,
    LabelProbe,
    LeafProbe,
    PresentProbe,
    Probe,
    SelectorProbe,
)
from gitops.yamlio import load_all_safe

MAX_OBJECTS = 50  # objects an added or removed component is checked by


@dataclass(frozen=True)
class Customization:
    """One local customization: where it is (`path`, `resource`, `segments` as the merge
    addresses fields), what it is (`what`), and the probes of its effect."""

    path: str
    what: str
    probes: tuple[Probe, ...]
    resource: ResourceId | None = None
    segments: tuple[str, ...] = ()


def _docs(data: bytes, path: str) -> list[Any]:
    try:
        return [d for d in load_all_safe(data.decode("utf-8"), path=path) if d is not None]
    except Exception:  # a template or broken YAML: no probes from it
        return []


def _first(data: bytes | None, path: str) -> Mapping[str, Any]:
    if data is None:
        return {}
    docs = _docs(data, path)
    return docs[0] if docs and isinstance(docs[0], Mapping) else {}


def _resolve(folder: str, ref: str) -> str:
    return posixpath.normpath(posixpath.join(folder, ref.rstrip("/") or "."))


def _segment(name: str, item: Any, items: list[Any]) -> str:
    keyfn = kustomization_list_key((), name, items)
    key = keyfn(item) if keyfn is not None else None
    return f"{name}[{_label(key if key is not None else canonical(item), item)}]"


def _entries(name: str, ours: Mapping[str, Any], base: Mapping[str, Any]
             ) -> Iterator[tuple[Any, Any]]:
    """(ours' entry, base's entry or None) of every entry of list `name` ours added or
    changed."""
    items = ours.get(name) or []
    base_items = base.get(name) or []
    if not isinstance(items, list):
        return
    keyfn = kustomization_list_key((), name, [*items, *base_items])
    by_key = {keyfn(i): i for i in base_items} if keyfn is not None else {}
    for item in items:
        old = by_key.get(keyfn(item)) if keyfn is not None else None
        if old is None and any(same(item, b) for b in base_items):
            continue
        if old is not None and same(old, item):
            continue
        yield item, old


# ------------------------------------------------------------------------ the repo


class Finder:
    """Enumerates the customizations of `ours` against the pristine release `base`."""

    def __init__(self, base: Mapping[str, bytes], ours: Mapping[str, bytes],
                 vendor_prefix: str, read: set[str] | None = None) -> None:
        """`read`: the files some cluster's render reads (None: all); a customization in
        a file no cluster reads has no effect to check."""
        self.base, self.ours, self.read = base, ours, read
        self.prefix = vendor_prefix.rstrip("/") + "/"
        self._base_dirs = dirs_of(base)
        self._memo: dict[tuple[bool, str], tuple[tuple[str, str], ...]] = {}

    def all(self) -> list[Customization]:
        out: list[Customization] = []
        readers = self._generator_inputs()
        for path in sorted(self.ours):
            data = self.ours[path]
            old = self.base.get(path)
            if data == old or (self.read is not None and path not in self.read):
                continue
            if is_kustomization(path):
                out += self._kustomization(path, _first(data, path), _first(old, path))
            elif path.startswith(self.prefix) and old is not None:
                out += self._vendor_edit(path, old, data, readers.get(path, []))
        return out

    # --- kustomizations ------------------------------------------------------------------

    def _kustomization(self, path: str, k: Mapping[str, Any], base: Mapping[str, Any]
                       ) -> list[Customization]:
        folder = posixpath.dirname(path)
        out: list[Customization] = []

        def add(seg: str, what: str, probes: list[Probe]) -> None:
            if probes:
                out.append(Customization(path, what, tuple(probes), segments=(seg,)))

        items = list(k.get("images") or [])
        for item, old in _entries("images", k, base):
            if not isinstance(item, Mapping) or not item.get("name"):
                continue
            repo = str(item.get("newName") or item["name"])
            # The tag counts only where it is ours: an entry of upstream's whose newName ours
            # set keeps getting upstream's tag bumps.
            old = old if isinstance(old, Mapping) else {}
            tag = ""
            if item.get("digest") and item.get("digest") != old.get("digest"):
                tag = "@" + str(item["digest"])
            elif item.get("newTag") and item.get("newTag") != old.get("newTag"):
                tag = str(item["newTag"])
            add(_segment("images", item, items), f"images entry {item['name']}",
                [ImageProbe(repo, tag)])
        items = list(k.get("replicas") or [])
        for item, _old in _entries("replicas", k, base):
            if isinstance(item, Mapping) and item.get("name") and "count" in item:
                add(_segment("replicas", item, items), f"replicas entry {item['name']}",
                    [LeafProbe("*", str(item["name"]), "", ("spec", "replicas"), EQUALS,
                               item["count"])])
        for field in ("patches", "patchesStrategicMerge", "patchesJson6902"):
            items = list(k.get(field) or [])
            for item, _old in _entries(field, k, base):
                add(_segment(field, item, items), f"{field} entry",
                    self._patch_probes(folder, item, k.get("namespace")))
        for item, old in _entries("labels", k, base):
            if isinstance(item, Mapping) and isinstance(item.get("pairs"), Mapping):
                old_pairs = (old or {}).get("pairs") or {}
                label_probes: list[Probe] = []
                for a, b in item["pairs"].items():
                    if old_pairs.get(a) != b:
                        label_probes.append(LabelProbe(str(a), str(b)))
                add(_segment("labels", item, list(k.get("labels") or [])), "labels entry",
                    label_probes[:3])
        for field, annotation in (("commonLabels", False), ("commonAnnotations", True)):
            common, old_common = k.get(field) or {}, base.get(field) or {}
            if isinstance(common, Mapping):
                for a, b in common.items():
                    if old_common.get(a) != b:
                        out.append(Customization(path, f"{field} {a}", (
                            LabelProbe(str(a), str(b), annotation),), segments=(field, str(a))))
        for field in GENERATORS:
            items = list(k.get(field) or [])
            for item, old in _entries(field, k, base):
                if isinstance(item, Mapping) and item.get("name"):
                    add(_segment(field, item, items), f"{field} {item['name']}",
                        self._generator_probes(folder, field, item, old or {}))
        for field in ("resources", "components", "bases"):
            values = [v for v in k.get(field) or [] if isinstance(v, str)]
            old_values = [v for v in base.get(field) or [] if isinstance(v, str)]
            for v in values:
                if v in old_values:
                    continue
                objs = self._ids(self.ours, _resolve(folder, v))
                add(f"{field}[{v}]", f"{field} entry {v}",
                    [PresentProbe(kd, n) for kd, n in objs[:10]])
            if path in self.base:
                for v in old_values:
                    if v not in values:
                        objs = self._component_ids(_resolve(folder, v))
                        if objs:
                            add(f"{field}[{v}]", f"{field} entry {v} removed locally",
                                [AbsentProbe(objs[:MAX_OBJECTS])])
        return out

    def _patch_probes(self, folder: str, item: Any, namespace: Any) -> list[Probe]:
        if isinstance(item, str):
            item = {"path": item} if "\n" not in item else {"patch": item}
        if not isinstance(item, Mapping):
            return []
        text: bytes | None = None
        if isinstance(item.get("path"), str):
            text = self.ours.get(_resolve(folder, item["path"]))
        elif isinstance(item.get("patch"), str):
            text = item["patch"].encode()
        docs = _docs(text, "patch") if text is not None else []
        target = item.get("target") if isinstance(item.get("target"), Mapping) else None
        probes: list[Probe] = []
        if target is not None:
            probes.append(SelectorProbe(str(target.get("kind") or ""),
                                        str(target.get("name") or ""),
                                        str(target.get("namespace") or ""),
                                        str(target.get("labelSelector") or "")))
            name = str(target.get("name") or "")
            plain_name = name and all(ch.isalnum() or ch in "-." for ch in name)
            kind = str(target.get("kind") or "")
            if plain_name and kind and docs and isinstance(docs[0], list):
                probes += json_patch_probes(kind, name, docs[0])
            return probes
        for doc in docs:
            if not isinstance(doc, Mapping) or not doc.get("kind"):
                continue
            rid = ResourceId.of(dict(doc))
            if doc.get("$patch") == "delete":
                probes.append(AbsentProbe(((rid.kind, rid.name),)))
                continue
            leaf_probes = [p for _s, p in doc_probes(doc, {})]
            probes += leaf_probes or [PresentProbe(rid.kind, rid.name, rid.namespace)]
        return probes

    def _generator_probes(self, folder: str, field: str, item: Mapping[str, Any],
                          old: Mapping[str, Any]) -> list[Probe]:
        kind = "Secret" if field == "secretGenerator" else "ConfigMap"
        name, ns = str(item["name"]), str(item.get("namespace") or "")
        secret = kind == "Secret"
        probes: list[Probe] = []
        old_lits = set(old.get("literals") or [])
        for lit in item.get("literals") or []:
            if isinstance(lit, str) and "=" in lit and lit not in old_lits:
                key, value = lit.split("=", 1)
                probes.append(LeafProbe(kind, name, ns, (key.strip(),), DATA,
                                        value.strip().strip("'\""), secret))
        old_files = set(old.get("files") or [])
        for f in item.get("files") or []:
            if not isinstance(f, str) or f in old_files:
                continue
            key, _, rel = f.rpartition("=")
            data = self.ours.get(_resolve(folder, rel))
            if data is None:
                continue
            lines = tuple(ln for ln in data.decode("utf-8", "replace").splitlines()
                          if ln.strip())[:50]
            if lines:
                probes.append(LeafProbe(kind, name, ns, (key or posixpath.basename(rel),),
                                        DATA, lines, secret))
        old_envs = set(old.get("envs") or [])
        for e in [*(item.get("envs") or []), *([item["env"]] if item.get("env") else [])]:
            if isinstance(e, str) and e not in old_envs:
                data = self.ours.get(_resolve(folder, e))
                for key, value in env_pairs(data or b""):
                    probes.append(LeafProbe(kind, name, ns, (key,), DATA, value, secret))
        return probes[:MAX_LEAVES]

    # --- vendor edits --------------------------------------------------------------------

    def _generator_inputs(self) -> dict[str, list[tuple[str, str, str, str]]]:
        """Input file -> (kind, generator name, namespace, key or '' for an env file)."""
        out: dict[str, list[tuple[str, str, str, str]]] = {}
        for path, data in self.ours.items():
            if not is_kustomization(path) or b"Generator" not in data:
                continue
            k = _first(data, path)
            folder = posixpath.dirname(path)
            for field in GENERATORS:
                kind = "Secret" if field == "secretGenerator" else "ConfigMap"
                for g in k.get(field) or []:
                    if not isinstance(g, Mapping) or not g.get("name"):
                        continue
                    name, ns = str(g["name"]), str(g.get("namespace") or "")
                    for f in g.get("files") or []:
                        if isinstance(f, str):
                            key, _, rel = f.rpartition("=")
                            out.setdefault(_resolve(folder, rel), []).append(
                                (kind, name, ns, key or posixpath.basename(rel)))
                    for e in [*(g.get("envs") or []), *([g["env"]] if g.get("env") else [])]:
                        if isinstance(e, str):
                            out.setdefault(_resolve(folder, e), []).append((kind, name, ns, ""))
        return out

    def _vendor_edit(self, path: str, old: bytes, new: bytes,
                     readers: list[tuple[str, str, str, str]]) -> list[Customization]:
        if readers:
            probes: list[Probe] = []
            old_lines = set(old.decode("utf-8", "replace").splitlines())
            added = [ln for ln in new.decode("utf-8", "replace").splitlines()
                     if ln.strip() and ln not in old_lines and not ln.lstrip().startswith("#")]
            for kind, name, ns, key in readers:
                secret = kind == "Secret"
                if key:
                    if added:
                        probes.append(LeafProbe(kind, name, ns, (key,), DATA,
                                                tuple(added[:50]), secret))
                else:
                    old_pairs = dict(env_pairs(old))
                    for k, v in env_pairs(new):
                        if old_pairs.get(k) != v:
                            probes.append(LeafProbe(kind, name, ns, (k,), DATA, v, secret))
            return [Customization(path, "edit of a generator's input", tuple(probes))] \
                if probes else []
        if not path.endswith((".yaml", ".yml")):
            return []
        base_docs = {ResourceId.of(dict(d)): d for d in _docs(old, path)
                     if isinstance(d, Mapping) and d.get("kind")}
        out: list[Customization] = []
        seen: set[ResourceId] = set()
        for doc in _docs(new, path):
            if not isinstance(doc, Mapping) or not doc.get("kind"):
                continue
            rid = ResourceId.of(dict(doc))
            seen.add(rid)
            b = base_docs.get(rid)
            if b is None:
                out.append(Customization(path, f"{rid.kind} {rid.name} added locally",
                                         (PresentProbe(rid.kind, rid.name, rid.namespace),),
                                         resource=rid))
                continue
            for steps, probe in doc_probes(doc, b):
                out.append(Customization(path, "vendor edit", (probe,), resource=rid,
                                         segments=segments_of(steps)))
        for rid in base_docs:
            if rid not in seen:
                out.append(Customization(path, f"{rid.kind} {rid.name} removed locally",
                                         (AbsentProbe(((rid.kind, rid.name),)),),
                                         resource=rid))
        return out

    # --- objects of a folder ---------------------------------------------------------------

    def _ids(self, files: Mapping[str, bytes], target: str) -> tuple[tuple[str, str], ...]:
        """(kind, name) of the objects a resources entry brings from local files: its
        file's documents, or those of the files its folder's kustomization lists,
        recursively, never into upstream's own components (the reference check covers a
        component upstream moves or drops; what its objects become is upstream's)."""
        key = (files is self.base, target)
        if key in self._memo:
            return self._memo[key]
        self._memo[key] = ()
        if target.startswith(self.prefix) and target in self._base_dirs:
            return ()
        out: list[tuple[str, str]] = []
        if target in files:
            out += [(str(d["kind"]), str((d.get("metadata") or {}).get("name") or ""))
                    for d in _docs(files[target], target)
                    if isinstance(d, Mapping) and d.get("kind")]
        else:
            for name in ("kustomization.yaml", "kustomization.yml", "Kustomization"):
                k = files.get(f"{target}/{name}")
                if k is not None:
                    data = _first(k, target)
                    for v in data.get("resources") or []:
                        if isinstance(v, str) and "://" not in v:
                            out += self._ids(files, _resolve(target, v))
                    break
        result = tuple(dict.fromkeys(o for o in out if o[1]))[:MAX_OBJECTS]
        self._memo[key] = result
        return result

    def _component_ids(self, target: str) -> tuple[tuple[str, str], ...]:
        """(kind, name) of every object an upstream component of the base release holds
        (the objects a local removal of it keeps out)."""
        out: list[tuple[str, str]] = []
        todo, seen = [target], set()
        while todo and len(out) < MAX_OBJECTS:
            t = todo.pop()
            if t in seen:
                continue
            seen.add(t)
            if t in self.base:
                out += [(str(d["kind"]), str((d.get("metadata") or {}).get("name") or ""))
                        for d in _docs(self.base[t], t)
                        if isinstance(d, Mapping) and d.get("kind")]
                continue
            for name in ("kustomization.yaml", "kustomization.yml", "Kustomization"):
                k = self.base.get(f"{t}/{name}")
                if k is not None:
                    for v in _first(k, t).get("resources") or []:
                        if isinstance(v, str) and "://" not in v:
                            todo.append(_resolve(t, v))
                    break
        return tuple(dict.fromkeys(o for o in out if o[1]))[:MAX_OBJECTS]


__all__ = ["Customization", "Finder"]
