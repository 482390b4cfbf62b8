"""The state of an upgrade in progress: `.stackctl/upgrade/state.json`.

Written before the first branch or working-tree change and removed last, so an upgrade
interrupted at any point is either not started (no file) or visible to `--status` and
undone by `--abort`. `.stackctl/` ignores itself (its own `.gitignore`), so the state and
the reports never show up in `git status`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from gitops.errors import ConfigError
from gitops.merge import Conflict, ConflictKind
from gitops.oserrors import refusal
from gitops.paths import write_atomic
from gitops.resource import ResourceId
from gitops.stack import STATE_DIR

STATE_VERSION = 1
UPGRADE_DIR = f"{STATE_DIR}/upgrade"
STATE_FILE = f"{UPGRADE_DIR}/state.json"
REPORT_MD = f"{UPGRADE_DIR}/report.md"
REPORT_JSON = f"{UPGRADE_DIR}/report.json"

IMPORTING = "importing"  # only the vendor branch may have moved: --abort puts it back
STARTING = "starting"  # branches or the working tree may be half changed: --abort undoes it
CONFLICTS = "conflicts"  # the merged tree is checked out; conflicts wait for --resolve


@dataclass(frozen=True)
class ConflictRecord:
    """One conflict of the upgrade, where its three versions live, and how it was resolved.

    `base_path`/`ours_path` differ from `conflict.path` when upstream moved the file (ours'
    version is at the old path); None when that side has no such file."""

    id: int
    conflict: Conflict
    base_path: str | None
    ours_path: str | None
    theirs_path: str | None
    resolution: str | None = None
    line_delta: int = 0  # lines the resolution added (+) or removed (-) in a text file

    @property
    def address(self) -> str:
        return self.conflict.address

    @property
    def open(self) -> bool:
        return self.resolution is None

    def to_dict(self) -> dict[str, Any]:
        c = self.conflict
        r = c.resource
        return {
            "id": self.id, "resolution": self.resolution, "lineDelta": self.line_delta,
            "basePath": self.base_path, "oursPath": self.ours_path,
            "theirsPath": self.theirs_path,
            "conflict": {
                **c.to_dict(), "segments": list(c.segments),
                "resourceId": asdict(r) if r is not None else None,
            },
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ConflictRecord:
        c = d["conflict"]
        rid = c.get("resourceId")
        lines, hunk, values = c.get("lines"), c.get("hunk"), c.get("values")
        conflict = Conflict(
            path=c["path"], kind=ConflictKind(c["kind"]),
            resource=ResourceId(**rid) if rid else None, field=c.get("field") or "",
            base=c.get("base"), ours=c.get("ours"), theirs=c.get("theirs"),
            lines=(int(lines[0]), int(lines[1])) if lines else None,
            message=c.get("message") or "", segments=tuple(c.get("segments") or ()),
            hunk=(int(hunk[0]), int(hunk[1])) if hunk else None,
            values=(values["base"], values["ours"], values["theirs"]) if values else None,
        )
        return cls(id=int(d["id"]), conflict=conflict, base_path=d.get("basePath"),
                   ours_path=d.get("oursPath"), theirs_path=d.get("theirsPath"),
                   resolution=d.get("resolution"), line_delta=int(d.get("lineDelta") or 0))


@dataclass(frozen=True)
class UpgradeState:
    phase: str
    name: str
    prefix: str  # the stack root inside the repository ('' at its root)
    original_branch: str
    original_commit: str
    upgrade_branch: str
    vendor_branch: str
    vendor_before: str | None  # the vendor branch's tip before the import (restored on abort)
    base_commit: str  # the previously vendored release on the vendor branch
    vendor_commit: str  # the new release on the vendor branch (the merge's second parent)
    merged_tree: str  # the whole repository's merged tree, without markers
    from_version: str
    to_version: str
    lock_text: str  # stackctl.lock as the merge commit will hold it
    started_at: str
    conflicts: tuple[ConflictRecord, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def open_conflicts(self) -> tuple[ConflictRecord, ...]:
        return tuple(c for c in self.conflicts if c.open)

    def with_conflicts(self, conflicts: tuple[ConflictRecord, ...]) -> UpgradeState:
        return replace(self, conflicts=conflicts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION, "phase": self.phase, "name": self.name,
            "prefix": self.prefix, "originalBranch": self.original_branch,
            "originalCommit": self.original_commit, "upgradeBranch": self.upgrade_branch,
            "vendorBranch": self.vendor_branch, "vendorBefore": self.vendor_before,
            "baseCommit": self.base_commit, "vendorCommit": self.vendor_commit,
            "mergedTree": self.merged_tree, "from": self.from_version, "to": self.to_version,
            "lockText": self.lock_text, "startedAt": self.started_at,
            "conflicts": [c.to_dict() for c in self.conflicts], "extra": self.extra,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> UpgradeState:
        return cls(
            phase=d["phase"], name=d["name"], prefix=d["prefix"],
            original_branch=d["originalBranch"], original_commit=d["originalCommit"],
            upgrade_branch=d["upgradeBranch"], vendor_branch=d["vendorBranch"],
            vendor_before=d.get("vendorBefore"), base_commit=d["baseCommit"],
            vendor_commit=d["vendorCommit"], merged_tree=d["mergedTree"],
            from_version=d["from"], to_version=d["to"], lock_text=d["lockText"],
            started_at=d["startedAt"],
            conflicts=tuple(ConflictRecord.from_dict(c) for c in d.get("conflicts") or ()),
            extra=dict(d.get("extra") or {}),
        )


def ensure_state_dir(root: Path) -> Path:
    """`.stackctl/upgrade/`, with a `.stackctl/.gitignore` that ignores the whole folder."""
    d = root / UPGRADE_DIR
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise refusal(e, action=f"create {d}") or e from e
    ignore = root / STATE_DIR / ".gitignore"
    if not ignore.exists():
        write_atomic(ignore, "# stackctl's local state and reports: never committed\n*\n")
    return d


def save_state(root: Path, state: UpgradeState) -> None:
    ensure_state_dir(root)
    write_atomic(root / STATE_FILE, json.dumps(state.to_dict(), indent=2) + "\n")


def load_state(root: Path) -> UpgradeState | None:
    path = root / STATE_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as e:
        raise ConfigError(f"cannot read the upgrade state: {e.strerror}", path=path) from e
    try:
        data = json.loads(text)
        if data.get("version") != STATE_VERSION:
            raise ValueError(f"unknown state version {data.get('version')!r}")
        return UpgradeState.from_dict(data)
    except (ValueError, KeyError, TypeError) as e:
        raise ConfigError(
            f"the upgrade state is damaged ({e}).", path=path,
            hint="stackctl cannot continue or abort without it: switch back with 'git "
            "switch BRANCH' (and 'git restore .'), delete the upgrade branch and remove "
            f"{STATE_FILE}.") from e


def remove_state(root: Path) -> None:
    (root / STATE_FILE).unlink(missing_ok=True)
