"""Waves: the selected clusters grouped by cluster.yaml's `wave`, lower first, each wave's
clusters by name (the order `select_clusters` gives)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import groupby

from gitops.cluster import Cluster


@dataclass(frozen=True)
class Wave:
    number: int  # cluster.yaml's `wave`
    clusters: tuple[Cluster, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.clusters)


def plan_waves(clusters: Sequence[Cluster]) -> tuple[Wave, ...]:
    """The waves of `clusters`, in order."""
    ordered = sorted(clusters, key=lambda c: (c.wave, c.name))
    return tuple(Wave(number, tuple(group))
                 for number, group in groupby(ordered, key=lambda c: c.wave))
