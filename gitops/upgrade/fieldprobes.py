"""Probes (probes.py) read off YAML: the fields a patch or a vendor edit sets, with the
steps to find them again in a rendered object; a JSON 6902 patch's values; an env file's
variables. customizations.py builds each customization's probes with these.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from gitops.kinds import list_key
from gitops.merge.fields import same
from gitops.resource import ResourceId
from gitops.upgrade.probes import (
    EQUALS,
    LINES,
    MEMBER,
    MISSING_VALUE,
    LeafProbe,
    Probe,
    Step,
)

MAX_LEAVES = 20  # probes per patch document or edited resource
_SKIP = {("apiVersion",), ("kind",), ("metadata", "name"), ("metadata", "namespace")}


def _list_key(field: str, items: list[Any]) -> str | None:
    """The one field keying the entries of a list (gitops.kinds), or None (a list keyed
    by two fields, such as ports, is compared as a whole)."""
    fields = list_key(field, items)
    return fields[0] if fields is not None and len(fields) == 1 and "." not in fields[0] \
        else None


def leaves(base: Any, ours: Any, steps: tuple[Step, ...] = (), *, field: str = ""
           ) -> Iterator[tuple[tuple[Step, ...], str, Any]]:
    """(steps, mode, value) of what `ours` sets that `base` does not (base {} for a patch).
    `field`: the name of the list `ours` is, when it is one."""
    if isinstance(ours, Mapping):
        bm = base if isinstance(base, Mapping) else {}
        for k, v in ours.items():
            k = str(k)
            if k.startswith("$"):
                continue  # strategic merge directives ($patch, $setElementOrder/...)
            if k not in bm or not same(bm[k], v):
                if isinstance(v, list):
                    yield from leaves(bm.get(k), v, steps, field=k)
                else:
                    yield from leaves(bm.get(k), v, (*steps, k))
        for k in bm:
            if k not in ours and isinstance(ours, Mapping) and bm:
                yield (*steps, str(k)), MISSING_VALUE, None
        return
    if isinstance(ours, list):
        at = (*steps, field)
        key = _list_key(field, ours)
        if key is not None:
            bl = base if isinstance(base, list) else []
            by_key = {str(i.get(key)): i for i in bl if isinstance(i, Mapping)}
            for item in ours:
                if not isinstance(item, Mapping) or key not in item:
                    continue
                old = by_key.get(str(item[key]), {})
                yield from leaves(old, {k: v for k, v in item.items() if k != key},
                                  (*steps, (field, key, item[key])))
            return
        if all(isinstance(i, str | int | float) for i in ours):
            bl = base if isinstance(base, list) else []
            for item in ours:
                if item not in bl:
                    yield at, MEMBER, item
            return
        yield at, EQUALS, ours
        return
    if isinstance(ours, str) and "\n" in ours.rstrip("\n"):
        old_lines = set(base.splitlines()) if isinstance(base, str) else set()
        added = tuple(ln for ln in ours.splitlines() if ln.strip() and ln not in old_lines)
        if added:
            yield steps, LINES, added
        return
    yield steps, EQUALS, ours


def segments_of(steps: tuple[Step, ...]) -> tuple[str, ...]:
    """Probe steps as the merge's field segments (`containers[name=app]`)."""
    return tuple(f"{s[0]}[{s[1]}={s[2]}]" if isinstance(s, tuple) else s for s in steps)


def doc_probes(doc: Mapping[str, Any], base_doc: Any) -> list[tuple[tuple[Step, ...], Probe]]:
    rid = ResourceId.of(dict(doc))
    out: list[tuple[tuple[Step, ...], Probe]] = []
    for steps, mode, value in leaves(base_doc, doc):
        plain_steps = tuple(s for s in steps if isinstance(s, str))
        if plain_steps[:2] in _SKIP or plain_steps[:1] in _SKIP:
            continue
        out.append((steps, LeafProbe(rid.kind, rid.name, rid.namespace, steps, mode, value,
                                     secret=rid.kind == "Secret")))
        if len(out) >= MAX_LEAVES:
            break
    return out


def env_pairs(data: bytes) -> list[tuple[str, str]]:
    out = []
    for line in data.decode("utf-8", "replace").splitlines():
        s = line.strip()
        if s and not s.startswith("#") and "=" in s:
            k, v = s.split("=", 1)
            out.append((k.strip(), v.strip()))
    return out


def json_patch_probes(kind: str, name: str, ops: list[Any]) -> list[Probe]:
    out: list[Probe] = []
    for op in ops[:MAX_LEAVES]:
        if not isinstance(op, Mapping) or not isinstance(op.get("path"), str):
            continue
        parts = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].split("/")[1:]]
        if any(p.isdigit() or p == "-" for p in parts):
            continue  # list positions: not found again by value
        steps = tuple(parts)
        if op.get("op") in ("add", "replace") and "value" in op:
            out.append(LeafProbe(kind, name, "", steps, EQUALS, op["value"]))
        elif op.get("op") == "remove":
            out.append(LeafProbe(kind, name, "", steps, MISSING_VALUE))
    return out


__all__ = ["MAX_LEAVES", "doc_probes", "env_pairs", "json_patch_probes", "leaves",
           "segments_of"]
