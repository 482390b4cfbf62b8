"""What an apply acts on (`Target`) and how (`ApplyOptions`): plain values the commands
build once and pass to `calculate` and `execute`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from gitops.apply.lease import LEASE_SECONDS
from gitops.apply.results import ProgressEvent
from gitops.cluster import ApplyPolicy
from gitops.inventory import PART_OF, Records, RevisionStatus
from gitops.kube import Kube

Progress = Callable[[ProgressEvent], None]


def no_progress(_: ProgressEvent) -> None:
    return None


@dataclass(frozen=True)
class Target:
    """A cluster as the apply sees it: its API server and where its records live."""

    kube: Kube
    cluster: str
    records_namespace: str = "stackctl-system"

    @property
    def records(self) -> Records:
        return Records(self.kube, cluster=self.cluster, namespace=self.records_namespace)

    @property
    def member_label(self) -> tuple[str, str]:
        """The ApplySet membership label (label, value) every applied object carries."""
        return PART_OF, self.records.applyset_id


@dataclass(frozen=True)
class ApplyOptions:
    """How to apply. `policy` is the cluster's (cluster.yaml `apply:`), the rest the
    command's flags; `description` and `replaced` are what the revision records (a
    rollback describes itself and marks the revision it replaces rolled-back); `dirty`
    that the render came from a working tree with uncommitted changes (`--allow-dirty`)."""

    policy: ApplyPolicy = field(default_factory=ApplyPolicy)
    commit: str | None = None
    rollback: bool = True
    prune: bool = True
    force_conflicts: bool = False
    allow_mass_prune: bool = False
    break_lease: bool = False
    wait: bool = True
    description: str = ""
    replaced: RevisionStatus = RevisionStatus.SUPERSEDED
    dirty: bool = False
    lease_seconds: int = LEASE_SECONDS

    @property
    def force(self) -> bool:
        """Take over fields another field manager owns (the flag, or cluster.yaml's)."""
        return self.force_conflicts or self.policy.force_conflicts
