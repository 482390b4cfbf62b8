"""`stackctl upgrade --resolve ADDRESS --ours|--theirs|--mark`: settle conflicts of the
upgrade in progress, in the working tree.

ADDRESS is a conflict's address as the report prints it (`PATH:RESOURCE:FIELD`), or a
shorter one (`PATH:RESOURCE`, `PATH`) that settles every open conflict under it.

- `--ours` / `--theirs` write that side's value at the conflict's place, read from git (the
  original commit, the new release on the vendor branch), so redacted Secret values are
  applied exactly. A field is set or deleted in its document (other documents byte for
  byte, comments kept); a resource or file is replaced, added or deleted; text lines are
  swapped in place.
- `--mark` changes nothing but the marker: for a conflict you settled by editing the file.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, replace

from gitops import git
from gitops.errors import UpgradeError
from gitops.merge.locate import NotFound, set_document, set_field
from gitops.merge.text import merge_lines
from gitops.merge.yamlmerge import UnparsableYaml
from gitops.stack import Stack
from gitops.upgrade.common import join, open_stack_repo, require_state
from gitops.upgrade.markers import is_marker_line, remove_markers
from gitops.upgrade.state import CONFLICTS, ConflictRecord, UpgradeState, save_state

Progress = Callable[[str], None]
CHOICES = ("ours", "theirs", "mark")


@dataclass(frozen=True)
class Resolution:
    """What --resolve settled, and what is still open."""

    resolved: tuple[ConflictRecord, ...]
    choice: str
    open: tuple[ConflictRecord, ...]


def match(state: UpgradeState, address: str) -> list[ConflictRecord]:
    """The conflicts an address names: exactly one, or every one under a shorter address."""
    exact = [r for r in state.conflicts if r.address == address]
    if exact:
        return exact
    return [r for r in state.conflicts if r.address.startswith(address.rstrip(":") + ":")]


def _listing(records: tuple[ConflictRecord, ...]) -> str:
    return "; ".join(r.address for r in records) or "none"


def resolve(stack: Stack, *, address: str, choice: str,
            progress: Progress | None = None) -> Resolution:
    """Settle the conflicts `address` names with `choice` (ours, theirs or mark)."""
    say = progress or (lambda _m: None)
    if choice not in CHOICES:
        raise UpgradeError(f"unknown resolution {choice!r}: use ours, theirs or mark.")
    repo, prefix = open_stack_repo(stack)
    state = require_state(stack)
    if state.phase != CONFLICTS:
        raise UpgradeError("the upgrade was interrupted before its merged tree was checked "
                           "out, so there is nothing to resolve.",
                           hint="Run 'stackctl upgrade --abort', then start it again.")
    if repo.current_branch() != state.upgrade_branch:
        raise UpgradeError(f"HEAD is not on the upgrade branch {state.upgrade_branch}.",
                           hint=f"Switch back (git switch {state.upgrade_branch}) first.")
    found = match(state, address)
    if not found:
        raise UpgradeError(
            f"no conflict of the upgrade has the address {address!r}. Open conflicts: "
            f"{_listing(state.open_conflicts)}.",
            hint="Copy an address from 'stackctl upgrade --status' or "
            ".stackctl/upgrade/report.md (PATH, PATH:RESOURCE or PATH:RESOURCE:FIELD).")
    todo = [r for r in found if r.open]
    if not todo:
        done = ", ".join(f"{r.address} ({r.resolution})" for r in found)
        raise UpgradeError(
            f"already resolved: {done}.",
            hint="To change your mind, edit the file yourself (the report has all three "
            "values), or start over with 'stackctl upgrade --abort'.")
    updated = {r.id: r for r in state.conflicts}
    by_file: dict[str, list[ConflictRecord]] = {}
    for r in todo:
        by_file.setdefault(r.conflict.path, []).append(r)
    root = repo.root
    for path, records in by_file.items():
        target = root / join(prefix, path)
        current: bytes | None = target.read_bytes() if target.is_file() else None
        if current is not None:
            with contextlib.suppress(UnicodeDecodeError):  # a binary file has no markers
                current = remove_markers(current.decode("utf-8"),
                                         [r.id for r in records]).encode()
        # Bottom-up, so a text resolution never shifts the lines of the next one.
        for r in sorted(records, key=lambda r: -(r.conflict.lines or (0, 0))[0]):
            if choice != "mark":
                current, delta = _apply(repo, state, prefix, r, current, choice,
                                        list(updated.values()))
            else:
                delta = 0
            updated[r.id] = replace(r, resolution=choice if choice != "mark" else "marked",
                                    line_delta=delta)
            say(f"resolved {r.address} ({choice})")
        if current is None:
            if target.is_file() or target.is_symlink():
                target.unlink()
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(current)
    new_state = state.with_conflicts(tuple(updated[r.id] for r in state.conflicts))
    save_state(stack.root, new_state)
    return Resolution(resolved=tuple(updated[r.id] for r in todo), choice=choice,
                      open=new_state.open_conflicts)


def _source(repo: git.Repo, state: UpgradeState, prefix: str, r: ConflictRecord,
            side: str) -> bytes | None:
    commit, path = ((state.original_commit, r.ours_path) if side == "ours"
                    else (state.vendor_commit, r.theirs_path))
    if path is None:
        return None
    full = join(prefix, path)
    folder, _, name = full.rpartition("/")
    files = repo.read_tree(commit, folder)
    entry = files.get(name)
    return entry[1] if entry is not None else None


def _text(data: bytes | None) -> str | None:
    return data.decode("utf-8") if data is not None else None


def _apply(repo: git.Repo, state: UpgradeState, prefix: str, r: ConflictRecord,
           current: bytes | None, side: str,
           records: list[ConflictRecord]) -> tuple[bytes | None, int]:
    """The file's new content after taking `side` for one conflict, and the lines added."""
    c = r.conflict
    source = _source(repo, state, prefix, r, side)
    where = f"{c.path}" + (f" ({c.field})" if c.field else "")
    try:
        if c.lines is not None:
            return _apply_lines(repo, state, prefix, r, current, side, records)
        if c.segments:
            if current is None:
                raise NotFound(c.path)
            text = set_field(current.decode("utf-8"), _text(source), resource=c.resource,
                             segments=c.segments, path=c.path)
            return text.encode(), 0
        if c.resource is not None:
            if current is None:
                if source is None:
                    return None, 0
                return source, 0
            return set_document(current.decode("utf-8"), _text(source),
                                resource=c.resource, path=c.path).encode(), 0
        return source, 0
    except (NotFound, UnparsableYaml, UnicodeDecodeError) as e:
        raise UpgradeError(
            f"cannot apply --{side} to {where}: the place it names is no longer in the file "
            f"({e}); it was edited since the merge.",
            hint=f"Edit the file yourself, then run 'stackctl upgrade --resolve "
            f"'{r.address}' --mark'.") from e


def _apply_lines(repo: git.Repo, state: UpgradeState, prefix: str, r: ConflictRecord,
                 current: bytes | None, side: str,
                 records: list[ConflictRecord]) -> tuple[bytes | None, int]:
    c = r.conflict
    assert c.lines is not None
    sides = {}
    for name, commit, path in (("base", state.base_commit, r.base_path),
                               ("ours", state.original_commit, r.ours_path),
                               ("theirs", state.vendor_commit, r.theirs_path)):
        if path is None:
            sides[name] = ""
            continue
        full = join(prefix, path)
        folder, _, fname = full.rpartition("/")
        entry = repo.read_tree(commit, folder).get(fname)
        sides[name] = entry[1].decode("utf-8") if entry else ""
    # The same merge again, under a neutral name, gives the raw lines of each side (the
    # report's values may be redacted).
    _, raw = merge_lines("conflict.txt", sides["base"], sides["ours"], sides["theirs"])
    found = next((x for x in raw if x.lines == c.lines), None)
    if found is None or current is None:
        raise NotFound(f"lines {c.lines[0]}-{c.lines[1]}")
    ours_lines = str(found.ours).splitlines(keepends=True)
    new_lines = str(found.theirs if side == "theirs" else found.ours).splitlines(keepends=True)
    shift = sum(x.line_delta for x in records
                if x.conflict.path == c.path and x.resolution and x.conflict.lines
                and x.conflict.lines[0] < c.lines[0])
    start = (c.lines[0] if c.field.startswith("after line") else c.lines[0] - 1) + shift
    lines = current.decode("utf-8").splitlines(keepends=True)
    # Markers of other open conflicts above are not lines of the merge.
    logical = [i for i, ln in enumerate(lines) if not is_marker_line(ln)]
    at = logical[start] if start < len(logical) else len(lines)
    if lines[at:at + len(ours_lines)] != ours_lines:
        raise NotFound(c.field)
    lines[at:at + len(ours_lines)] = new_lines
    return "".join(lines).encode(), len(new_lines) - len(ours_lines)
