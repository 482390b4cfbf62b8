"""The change set: what an apply would change on a cluster, calculated before anything
changes (kapp's ClusterChangeSet, Flux's ChangeSet), then shown (`apply --dry-run`,
`plan --live`) or executed (`apply`).

Each object of the render gets one `Change` with its `Action`; each object the previous
revision held and the render no longer does is a prune candidate (delete, or keep when its
kind is protected). Objects whose CRD or Namespace comes with the same set are `deferred`:
they cannot be validated before those exist, and are created after them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from gitops.apply.migrate import Migration
from gitops.apply.options import Target
from gitops.apply.results import Rejection
from gitops.diff import ObjectChange
from gitops.inventory import RevisionInfo, Revisions
from gitops.redact import Redactor
from gitops.resource import ResourceId

Obj = dict[str, Any]


class Action(StrEnum):
    """What an apply does to one object."""

    CREATE = "create"
    UPDATE = "update"  # sent to server-side apply (with fields: only when a field changes)
    REPLACE = "replace"  # deleted and re-created: a field it changes cannot change in place
    UNCHANGED = "unchanged"
    DELETE = "delete"  # pruned: in the previous revision, no longer in the render
    KEEP = "keep"  # a prune candidate of a protected kind: left in the cluster

    @property
    def sends(self) -> bool:
        """Whether the object is sent to the API server (applied)."""
        return self in (Action.CREATE, Action.UPDATE, Action.REPLACE)


@dataclass(frozen=True)
class Change:
    """One object's change. `diff` holds its redacted field changes and images (for a
    change set calculated with fields); `note` says why (deferred, a prune's reason, what
    forces a replacement, a CRD's storage migration)."""

    id: ResourceId
    api_version: str
    action: Action
    note: str = ""
    deferred: bool = False
    diff: ObjectChange | None = None


@dataclass(frozen=True)
class ChangeSet:
    """What applying `desired` to the target changes, as calculated (read-only) by
    `gitops.apply.calculate`. `revisions` are the records as read, `previous` the latest
    deployed revision and `previous_objects` its manifests; `changes` holds every desired
    object (in the render's order), then the prune candidates. The redactor that made the
    diffs, and scrubs every message of the run, travels with it."""

    target: Target
    redactor: Redactor
    revisions: Revisions
    desired: tuple[Obj, ...]
    changes: tuple[Change, ...]
    previous_objects: tuple[Obj, ...] = ()
    rejections: tuple[Rejection, ...] = ()
    fields: bool = False
    migrations: tuple[Migration, ...] = ()  # CRDs whose stored versions are migrated first

    @property
    def previous(self) -> RevisionInfo | None:
        return self.revisions.deployed

    @property
    def ok(self) -> bool:
        return not self.rejections

    @property
    def abandoned(self) -> tuple[int, ...]:
        """Pending revisions: applies that stopped before they finished (if a running
        apply left one, the lease says so before anything is changed)."""
        return tuple(r.revision for r in self.revisions.pending)

    @property
    def changed(self) -> bool:
        """Whether applying changes anything: an object sent, deleted, or kept (a render
        that only drops a protected object is a new revision: the kept object is no
        longer the set's, which drift and `settle` go by)."""
        return any(c.action.sends or c.action in (Action.DELETE, Action.KEEP)
                   for c in self.changes)

    @property
    def prune(self) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if c.action in (Action.DELETE, Action.KEEP))

    @property
    def deferred(self) -> frozenset[ResourceId]:
        return frozenset(c.id for c in self.changes if c.deferred)

    def to_apply(self) -> list[Obj]:
        """The desired objects to send, in the render's order."""
        send = {c.id for c in self.changes if c.action.sends}
        return [o for o in self.desired if ResourceId.of(o) in send]

    @property
    def replacements(self) -> dict[ResourceId, str]:
        """The objects to re-create, with why."""
        return {c.id: c.note for c in self.changes if c.action is Action.REPLACE}

    def count(self, action: Action) -> int:
        return sum(1 for c in self.changes if c.action == action)

    def by_id(self) -> dict[ResourceId, Change]:
        return {c.id: c for c in self.changes}
