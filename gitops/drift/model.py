"""The values a drift check returns: per field, per object, per cluster, and the report."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from gitops.diff import ObjectSetDiff
from gitops.errors import ExitCode
from gitops.inventory import RevisionInfo
from gitops.redact import Redactor
from gitops.resource import ResourceId

FieldAction = Literal["changed", "removed"]
ObjectState = Literal["changed", "missing", "extra"]
ClusterStatus = Literal["in-sync", "drift", "error", "never-applied"]
GitState = Literal["same", "differs", "error", "not-checked"]


@dataclass(frozen=True)
class Manager:
    """A field manager of a live object, as its managedFields entry names it."""

    name: str
    operation: str  # Apply or Update
    subresource: str = ""
    time: str = ""

    def describe(self) -> str:
        sub = f" of {self.subresource}" if self.subresource else ""
        when = f" at {self.time}" if self.time else ""
        return f"{self.name} ({self.operation}{sub}{when})"


@dataclass(frozen=True)
class FieldDrift:
    """One field stackctl applied whose live value is not the applied one.

    `desired` and `live` are redacted (a Secret value reads `<redacted sha256:...>`);
    `live` is None when the field is gone. `managers` own the field now (none when it was
    removed); `owned_by_stackctl` says whether stackctl's own entry still lists it."""

    path: str
    action: FieldAction
    desired: Any
    live: Any
    managers: tuple[Manager, ...] = ()
    owned_by_stackctl: bool = False

    @property
    def changed_by(self) -> tuple[Manager, ...]:
        """The managers other than stackctl's Apply that own the field now."""
        return tuple(m for m in self.managers
                     if not (m.name == "stackctl" and m.operation == "Apply"))


@dataclass(frozen=True)
class ObjectDrift:
    """An object of the revision that is missing or changed live, or a live object that
    carries stackctl's ApplySet label without being in the revision (`extra`)."""

    id: ResourceId
    api_version: str
    state: ObjectState
    fields: tuple[FieldDrift, ...] = ()
    # For a missing object whose kind the cluster no longer serves, and similar notes.
    note: str = ""
    # The live object's other managers, latest first: who may have removed a field that
    # no manager owns any more.
    writers: tuple[Manager, ...] = ()


@dataclass(frozen=True)
class GitComparison:
    """The working tree's render against the last applied revision."""

    state: GitState
    head_commit: str = ""
    diff: ObjectSetDiff | None = None
    error: str = ""
    uncommitted: bool = False  # the working tree's render holds uncommitted changes
    applied_dirty: bool = False  # the revision was applied from such a working tree


@dataclass(frozen=True)
class TreeRender:
    """A working tree's render, and whether any of its inputs differs from HEAD."""

    objects: Sequence[Mapping[str, Any]]
    uncommitted: bool = False


@dataclass(frozen=True)
class HealOutcome:
    """What `--heal` re-applied (through the apply engine) and the revision it recorded."""

    revision: int | None
    created: tuple[ResourceId, ...] = ()
    configured: tuple[ResourceId, ...] = ()
    error: str = ""
    drift_before: tuple[ObjectDrift, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.error


@dataclass(frozen=True)
class ClusterDrift:
    name: str
    revision: RevisionInfo | None = None
    checked: int = 0  # objects of the revision compared
    objects: tuple[ObjectDrift, ...] = ()
    git: GitComparison = field(default_factory=lambda: GitComparison("not-checked"))
    error: str = ""
    notes: tuple[str, ...] = ()
    heal: HealOutcome | None = None

    never_applied: bool = False  # no deployed revision is recorded

    @property
    def status(self) -> ClusterStatus:
        if self.never_applied:
            return "never-applied"
        if self.error:
            return "error"
        if self.objects or self.git.state == "differs":
            return "drift"
        if self.git.state == "error":
            return "error"
        return "in-sync"

    def of_state(self, state: ObjectState) -> tuple[ObjectDrift, ...]:
        return tuple(o for o in self.objects if o.state == state)

    @property
    def counts(self) -> dict[str, int]:
        return {"changed": len(self.of_state("changed")), "missing": len(self.of_state("missing")),
                "extra": len(self.of_state("extra")),
                "fields": sum(len(o.fields) for o in self.objects)}

    @property
    def exit_code(self) -> ExitCode:
        """2 when the cluster (or its git render) could not be checked, 1 on drift."""
        if self.status in ("error", "never-applied") or self.git.state == "error":
            return ExitCode.ERROR
        if self.heal is not None and not self.heal.ok:
            return ExitCode.ERROR  # the healing apply failed (and was rolled back)
        return ExitCode.FINDING if self.status == "drift" else ExitCode.OK


@dataclass(frozen=True)
class DriftReport:
    clusters: tuple[ClusterDrift, ...]
    redactor: Redactor
    checked_at: str
    healed: bool = False  # --heal was given

    @property
    def exit_code(self) -> ExitCode:
        """2 when a cluster could not be checked, else 1 when one drifted, else 0."""
        return max((c.exit_code for c in self.clusters), default=ExitCode.OK)

    def by_status(self, status: ClusterStatus) -> tuple[ClusterDrift, ...]:
        return tuple(c for c in self.clusters if c.status == status)


def value_at(obj: Any, loc: tuple[Any, ...]) -> Any:
    """The value at a location (dict keys and list indices) of a plain object."""
    for step in loc:
        obj = obj[step]
    return obj
