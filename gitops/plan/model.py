"""The plan of a change: per cluster, what the head render changes against the base render."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from gitops.diff import ObjectChange, ObjectSetDiff, diff_object_sets, object_change
from gitops.errors import UserError
from gitops.redact import Redactor

if TYPE_CHECKING:
    from gitops.render import Rendered, RenderedObject
    from gitops.resource import ResourceId

ClusterStatus = Literal["changed", "unchanged", "added", "removed"]

Objects = Sequence[Mapping[str, Any]]
# (cluster names, commit id) -> {cluster: rendered objects}
RenderFn = Callable[[Sequence[str], str], Mapping[str, Objects]]


@dataclass(frozen=True)
class RefInfo:
    """A side of the plan: the ref as the user wrote it and the commit it resolved to."""

    ref: str
    commit: str

    @property
    def short(self) -> str:
        return self.commit[:12]


@dataclass(frozen=True)
class ClusterPlan:
    """One cluster: `added`/`removed` when clusters/<name> exists only at head/base."""

    name: str
    status: ClusterStatus
    diff: ObjectSetDiff
    notes: tuple[str, ...] = ()  # what changes nothing but is worth a line (a kept object)

    @property
    def counts(self) -> dict[str, int]:
        d = self.diff
        return {"added": len(d.added), "removed": len(d.removed), "changed": len(d.changed),
                "unchanged": d.unchanged, "images": len(d.images),
                "fields": sum(len(c.fields) for c in d.changed)}


@dataclass(frozen=True)
class Plan:
    base: RefInfo
    head: RefInfo
    clusters: tuple[ClusterPlan, ...]
    redactor: Redactor
    # Failed checks (a Secret committed in clear where stack.yaml requires SOPS): each a
    # sentence; `stackctl plan` exits 2 when there is one, after printing the plan.
    failed_checks: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        return any(c.status != "unchanged" for c in self.clusters)

    def by_status(self, status: ClusterStatus) -> tuple[ClusterPlan, ...]:
        return tuple(c for c in self.clusters if c.status == status)


def plan_from_renders(
    before: Mapping[str, Objects],
    after: Mapping[str, Objects],
    *,
    base: RefInfo,
    head: RefInfo,
    redactor: Redactor,
) -> Plan:
    """The plan between two renders, given as {cluster: objects}; a cluster missing from
    one side exists only at the other ref (an added or removed cluster)."""
    r = redactor
    # Learn every secret value of both sides first, so that value scrubbing in the output
    # also covers values that appear in objects diffed before the Secret holding them.
    for objs in (*before.values(), *after.values()):
        r.learn(objs)
    clusters = []
    for name in sorted(set(before) | set(after)):
        a, b = before.get(name), after.get(name)
        diff = diff_object_sets(a or (), b or (), redactor=r)
        status: ClusterStatus
        if a is None:
            status = "added"
        elif b is None:
            status = "removed"
        else:
            status = "unchanged" if diff.is_empty else "changed"
        clusters.append(ClusterPlan(name=name, status=status, diff=diff))
    return Plan(base=base, head=head, clusters=tuple(clusters), redactor=r)


def plan_from_rendered(
    before: Mapping[str, Rendered],
    after: Mapping[str, Rendered],
    *,
    base: RefInfo,
    head: RefInfo,
    redactor: Redactor,
) -> Plan:
    """plan_from_renders() for renders as gitops.render returns them, with the same result
    at the cost of what differs: a cluster whose render text is the same at both refs is
    unchanged without a parse, an object whose text is the same at both refs is unchanged
    without a comparison, and the redactor learns each distinct object text once (clusters
    built on one base share nearly all of their objects)."""
    r = redactor
    learned: set[str] = set()
    for side in (before, after):
        for rendered in side.values():
            r.learn_decrypted(rendered.secrets)  # values SOPS files held, wherever they land
        for rendered in side.values():
            for o in rendered.objects:
                if o.yaml not in learned:
                    learned.add(o.yaml)
                    r.learn([_learnable(o)])
    clusters = []
    for name in sorted(set(before) | set(after)):
        a, b = before.get(name), after.get(name)
        status: ClusterStatus
        if a is None or b is None:
            status = "added" if a is None else "removed"
            diff = diff_object_sets([o.body for o in a.objects] if a else (),
                                    [o.body for o in b.objects] if b else (), redactor=r)
        elif _body_text(a) == _body_text(b):
            status, diff = "unchanged", ObjectSetDiff(unchanged=len(b.objects))
        else:
            ia = {o.id: o for o in a.objects}
            ib = {o.id: o for o in b.objects}
            diff = ObjectSetDiff.collect(_change(rid, ia.get(rid), ib.get(rid), r)
                                         for rid in sorted(set(ia) | set(ib)))
            status = "unchanged" if diff.is_empty else "changed"
        clusters.append(ClusterPlan(name=name, status=status, diff=diff))
    return Plan(base=base, head=head, clusters=tuple(clusters), redactor=r)


def _learnable(o: RenderedObject) -> Mapping[str, Any]:
    """What the redactor learns from an object, parsed: a CRD's text without its top-level
    `spec` and `status`, which the redactor never reads in a CRD (redact's
    _copy_sensitive_parts) and which are nearly all of a Kubeflow render's bytes (5.0 of
    5.5 MB); any other object whole. kustomize writes block style, where a line starting in
    column 0 is a top-level key; the whole object is parsed when the cut text is not the
    CRD it should be."""
    if o.id.kind != "CustomResourceDefinition":
        return o.body
    keep, skip = [], False
    for line in o.yaml.split("\n"):
        if line[:1] not in ("", " ", "\t", "#", "-"):
            skip = line.startswith(("spec:", "status:"))
        if not skip:
            keep.append(line)
    from gitops.render import load_safe

    try:
        data = load_safe("\n".join(keep), path=f"the render of {o.id}")
    except UserError:
        return o.body
    if not isinstance(data, dict):
        return o.body
    meta = data.get("metadata")
    if not isinstance(meta, dict) or data.get("kind") != o.id.kind or \
            meta.get("name") != o.id.name:
        return o.body
    out: dict[str, Any] = data
    return out


def _change(rid: ResourceId, a: RenderedObject | None, b: RenderedObject | None,
            r: Redactor) -> ObjectChange | None:
    if a is not None and b is not None and a.yaml == b.yaml:
        return None  # the same text: unchanged, without a parse
    return object_change(rid, a.body if a is not None else None,
                         b.body if b is not None else None, redactor=r)


def _body_text(r: Rendered) -> str:
    """The render without its header (which names the commit)."""
    start = r.text.find("\n---\n")
    return r.text[start:] if start >= 0 else ""
