"""What the upgrade does to each cluster, from its renders before and after: objects added,
removed and changed, image changes, API and CRD version changes. That is all the report
shows, so that is all this computes; the field changes are `stackctl plan`'s.

- An object whose rendered text is the same before and after is unchanged, without a
  parse: kustomize serialises deterministically (docs/render.md).
- Every other text is parsed once (libyaml) for all clusters, and each pair of versions is
  compared once (`gitops.diff.object_change(..., fields=False)`): the clusters of a stack
  share most objects (the two clusters of the Kubeflow scenarios ~600).
- Two versions whose texts differ are still unchanged when they are equal once lists are
  matched by key (a reordered mapping or container list), as `stackctl plan` counts them.
- The redactor learns the secret values of every parsed object first (as `stackctl plan`
  does); only the objects whose images changed are redacted, for the values the report
  shows.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gitops.diff import ObjectChange, ObjectSetDiff, object_change
from gitops.redact import Redactor
from gitops.render import Rendered, RenderedObject

Pair = tuple[str | None, str | None]  # (text before, text after) of one object


class Comparison:
    """Clusters' renders compared object by object, sharing parses and comparisons across
    clusters. `diff(before, after)` per cluster, after `prepare()` of every cluster."""

    def __init__(self, redactor: Redactor) -> None:
        self._redactor = redactor
        self._bodies: dict[str, Mapping[str, Any]] = {}
        self._changes: dict[Pair, ObjectChange | None] = {}

    def _body(self, o: RenderedObject | None) -> Mapping[str, Any] | None:
        if o is None:
            return None
        body = self._bodies.get(o.yaml)
        if body is None:
            body = self._bodies[o.yaml] = o.body
            self._redactor.learn([body])
        return body

    def prepare(self, before: Rendered | None, after: Rendered | None) -> None:
        """Parse (once) the objects of a cluster that differ, learning their secret values:
        every cluster is prepared before any is compared, so that what the redactor knows
        when it redacts does not depend on the order of the clusters."""
        for b, a in _split(before, after)[0]:
            self._body(b)
            self._body(a)

    def diff(self, before: Rendered | None, after: Rendered | None) -> ObjectSetDiff:
        """The objects added, removed and changed in a cluster (no field changes)."""
        pairs, unchanged = _split(before, after)
        return ObjectSetDiff.collect((self._change(b, a) for b, a in pairs),
                                     unchanged=unchanged)

    def _change(self, b: Side, a: Side) -> ObjectChange | None:
        """One object's change, computed once per distinct (before, after) text pair."""
        pair = (b.yaml if b else None, a.yaml if a else None)
        if pair not in self._changes:
            rid = a.id if a is not None else b.id if b is not None else None
            assert rid is not None  # an object exists on one side at least
            self._changes[pair] = object_change(
                rid, self._body(b), self._body(a), redactor=self._redactor, fields=False)
        return self._changes[pair]


Side = RenderedObject | None


def _split(before: Rendered | None, after: Rendered | None) -> tuple[list[tuple[Side, Side]], int]:
    """(before, after) of every object of a cluster whose text is not the same on both
    sides, in identity order (None on the side where it does not exist), and the number of
    objects whose text is."""
    b = {o.id: o for o in before.objects} if before is not None else {}
    a = {o.id: o for o in after.objects} if after is not None else {}
    pairs: list[tuple[Side, Side]] = []
    identical = 0
    for rid in sorted(b.keys() | a.keys()):
        ob, oa = b.get(rid), a.get(rid)
        if ob is not None and oa is not None and ob.yaml == oa.yaml:
            identical += 1
        else:
            pairs.append((ob, oa))
    return pairs, identical
