"""The effect check: every local customization that changed what a cluster deploys before
the upgrade and changes nothing after it is a `no-effect` finding, never dropped silently.

Each customization of the current branch (customizations.py) comes with probes of its
effect on a render (probes.py). Every probe is checked on each cluster's render before the
upgrade (the current branch) and after it (the merged tree). One that held before and
fails after is lost: an `images:` name no container uses any more, a patch whose target is
gone, a vendor edit overridden further up (upstream's new dex overlay replaces the
ConfigMap the edit is in). The finding names what it did before, what is rendered after,
and the likely successor: the image the same container runs now (upstream renamed it), the
object's new name (upstream renamed it), the value rendered now.

A finding is a conflict of kind `no-effect` at the customization's place: the upgrade
stops for a person, who edits the customization (then `--mark`) or accepts the loss
(`--ours`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from gitops.errors import UserError
from gitops.merge.conflict import Conflict, ConflictKind
from gitops.merge.fields import field_string
from gitops.merge.yamlmerge import _leaves
from gitops.render import Rendered, RenderedObject
from gitops.stack import CLUSTERS_DIR
from gitops.upgrade.customizations import Customization, Finder
from gitops.upgrade.probes import (
    DATA,
    LINES,
    AbsentProbe,
    ImageProbe,
    LeafProbe,
    Probe,
    RenderIndex,
    Result,
    containers,
    follow,
    label,
    split_image,
)
from gitops.upgrade.rewrites import closure

MAX_SHOWN = 60


@dataclass(frozen=True)
class LostEffect:
    """A customization whose effect on `clusters` is gone after the upgrade."""

    customization: Customization
    path: str  # where the customization is in the merged tree
    clusters: tuple[str, ...]
    probe: str  # what was checked
    before: str  # where it held before
    after: str  # what is rendered after
    successor: str = ""

    def conflict(self) -> Conflict:
        c = self.customization
        hint = f"; likely successor: {self.successor}" if self.successor else ""
        return Conflict(
            path=self.path, kind=ConflictKind.NO_EFFECT, resource=c.resource,
            field=field_string(c.segments) if c.segments else "", segments=c.segments,
            base=f"{self.probe} ({self.before})", ours=c.what,
            theirs=f"{self.after}{hint}",
            message=(f"{c.what} changed what cluster(s) {', '.join(self.clusters)} deploy "
                     f"before the upgrade ({self.probe}: {self.before}) and changes nothing "
                     f"after it ({self.after}){hint}. Edit it and run --resolve ADDRESS "
                     "--mark, or keep it as it is with --ours"))


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    text = text.replace("\n", "\\n")
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 1] + "…"


_IDENTITY = (".apiVersion=", ".kind=", ".metadata.name=", ".metadata.namespace=")


def _renamed(o: RenderedObject, before: RenderIndex, after: RenderIndex
             ) -> RenderedObject | None:
    """The object of the same kind the after side adds that reads most like `o`: at least
    half of their fields (path and value, identity left out) the same."""
    old_ids = {x.id for x in before.all()}
    mine = {x for x in _leaves(o.body) if not x.startswith(_IDENTITY)}
    best: tuple[float, RenderedObject] | None = None
    for cand in after.by_kind.get(o.id.kind, []):
        if cand.id in old_ids:
            continue
        theirs = {x for x in _leaves(cand.body) if not x.startswith(_IDENTITY)}
        union = mine | theirs
        score = len(mine & theirs) / len(union) if union else 0.0
        if score >= 0.5 and (best is None or score > best[0]):
            best = (score, cand)
    return best[1] if best else None


def _successor(probe: Probe, rb: Result, ra: Result, before: RenderIndex,
               after: RenderIndex) -> tuple[str, str]:
    """(what is rendered after, the likely successor)."""
    if isinstance(probe, ImageProbe):
        now: list[str] = []
        for o, cname in zip(rb.objects, rb.containers, strict=True):
            match = [x for x in after.by_kind.get(o.id.kind, []) if x.id == o.id] or \
                [x for x in [_renamed(o, before, after)] if x is not None]
            for x in match:
                images = dict(containers(x.body))
                if cname in images:
                    now.append(split_image(images[cname])[0])
        if now:
            repo = sorted(set(now))[0]
            return (f"no container runs {probe.repo} any more; {rb.where[0]} now runs "
                    f"{repo}", f"images entry name {repo} (the same container's image)")
        gone = [label(o) for o in rb.objects if not any(
            x.id == o.id for x in after.by_kind.get(o.id.kind, []))]
        return (f"no container runs {probe.repo} any more"
                + (f" ({', '.join(dict.fromkeys(gone))} no longer rendered: upstream dropped "
                   "it?)" if gone else ""), "")
    if isinstance(probe, AbsentProbe):
        return f"rendered again: {', '.join(ra.where[:3])}", ""
    if not ra.objects:
        for o in rb.objects:
            new = _renamed(o, before, after)
            if new is not None:
                return (f"{label(o)} is no longer rendered",
                        f"{label(new)} (the object under its new name)")
        where = ", ".join(rb.where[:2])
        return f"{where} no longer rendered" if where else "nothing matches any more", ""
    if isinstance(probe, LeafProbe) and probe.mode in (LINES, DATA) \
            and isinstance(probe.value, tuple):
        if probe.secret:
            return f"{ra.where[0]} lacks the lines it wrote: overridden further up", ""
        return (f"{ra.where[0]} lacks the lines it wrote ("
                + ", ".join(_short(x.strip()) for x in probe.value[:2])
                + (f" and {len(probe.value) - 2} more" if len(probe.value) > 2 else "")
                + "): overridden further up", "")
    if isinstance(probe, LeafProbe) and probe.mode != DATA and not probe.secret:
        value = follow(ra.objects[0].body, probe.steps)
        shown = "absent" if type(value).__name__ == "_NoneType" else _short(value)
        return f"{ra.where[0]} has {shown} there (overridden further up?)", ""
    return f"{', '.join(ra.where[:2])}: {ra.note or 'no longer holds'}", ""


def check_effects(finder: Finder, before: Mapping[str, Rendered | UserError],
                  after: Mapping[str, Rendered | UserError],
                  moved: Mapping[str, str]) -> list[LostEffect]:
    """Every customization with an effect on a cluster before and none after; `moved`
    maps paths of the current branch to their place in the merged tree."""
    customs = finder.all()
    pairs: dict[str, tuple[RenderIndex, RenderIndex]] = {}
    for name in sorted(set(before) & set(after)):
        b, a = before[name], after[name]
        if isinstance(b, Rendered) and isinstance(a, Rendered):
            pairs[name] = (RenderIndex(b), RenderIndex(a))
    lost: dict[tuple[int, int], list[tuple[str, Result, Result]]] = {}
    for ci, c in enumerate(customs):
        for pi, probe in enumerate(c.probes):
            for name, (ib, ia) in pairs.items():
                rb = probe.check(ib)
                if not rb.holds:
                    continue
                ra = probe.check(ia)
                if not ra.holds:
                    lost.setdefault((ci, pi), []).append((name, rb, ra))
    out: list[LostEffect] = []
    for (ci, pi), hits in sorted(lost.items()):
        c, probe = customs[ci], customs[ci].probes[pi]
        name, rb, ra = hits[0]
        after_text, succ = _successor(probe, rb, ra, *pairs[name])
        out.append(LostEffect(
            customization=c, path=moved.get(c.path, c.path),
            clusters=tuple(h[0] for h in hits), probe=probe.describe(),
            before=", ".join(rb.where[:2]) or "held", after=after_text, successor=succ))
    return _collapse(out)


def _collapse(found: list[LostEffect]) -> list[LostEffect]:
    """One finding per place: probes of one customization, and fields of one resource
    that is gone altogether, are reported once."""
    out: dict[str, LostEffect] = {}
    for f in found:
        c = f.customization
        gone = "no longer rendered" in f.after
        key = f"{f.path}:{c.resource}" if gone and c.resource is not None \
            else f"{f.path}:{c.resource}:{c.segments}"
        if key in out:
            continue
        if gone and c.resource is not None:
            f = LostEffect(Customization(c.path, f"edits of {c.resource.kind} "
                                         f"{c.resource.name}", c.probes, c.resource),
                           f.path, f.clusters, f.probe, f.before, f.after, f.successor)
        out[key] = f
    return list(out.values())


def lost_effects(base: Mapping[str, tuple[int, bytes]], ours: Mapping[str, tuple[int, bytes]],
                 vendor_prefix: str, before: Mapping[str, Rendered | UserError],
                 after: Mapping[str, Rendered | UserError], moves: Mapping[str, str]
                 ) -> tuple[Conflict, ...]:
    """The `no-effect` conflicts of an upgrade (trees with file modes, as git reads them;
    `moves`: where the merge moved files of the current branch)."""
    read: set[str] = set()
    for name in before:
        read |= set(closure(ours, f"{CLUSTERS_DIR}/{name}"))
    finder = Finder({p: d for p, (_m, d) in base.items()},
                    {p: d for p, (_m, d) in ours.items()}, vendor_prefix, read)
    return tuple(f.conflict() for f in check_effects(finder, before, after, moves))


def fold(conflicts: tuple[Conflict, ...], findings: tuple[Conflict, ...]
         ) -> tuple[tuple[Conflict, ...], tuple[Conflict, ...]]:
    """A finding at the place of a conflict already reported is told in that conflict's
    message (one address, one conflict to settle); the others are new conflicts."""
    by_address = {c.address: f for f in findings for c in conflicts if c.address == f.address}
    merged = tuple(replace(c, message="; and ".join(
        x for x in (c.message, by_address[c.address].message) if x))
        if c.address in by_address else c for c in conflicts)
    return merged, tuple(f for f in findings if f.address not in by_address)


__all__ = ["LostEffect", "check_effects", "lost_effects"]
