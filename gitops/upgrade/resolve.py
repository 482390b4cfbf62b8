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
import posixpath
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ruamel.yaml.scalarstring import ScalarString

from gitops import git
from gitops.errors import UpgradeError
from gitops.merge.conflict import ConflictKind
from gitops.merge.fields import MISSING
from gitops.merge.locate import (
    NotFound,
    document_segments,
    dump_document,
    find_document,
    get,
    join_documents,
    list_key_for,
    load_document,
    put,
    set_document,
    set_field,
)
from gitops.merge.references import replace_reference
from gitops.merge.text import merge_lines
from gitops.merge.yamlmerge import UnparsableYaml
from gitops.stack import Stack
from gitops.upgrade.common import join, open_stack_repo, require_state
from gitops.upgrade.markers import is_marker_line, remove_markers
from gitops.upgrade.state import CONFLICTS, ConflictRecord, UpgradeState, save_state

Progress = Callable[[str], None]
CHOICES = ("ours", "theirs", "mark", "path")


@dataclass(frozen=True)
class Resolution:
    """What --resolve settled, and what is still open."""

    resolved: tuple[ConflictRecord, ...]
    choice: str
    open: tuple[ConflictRecord, ...]


def match(state: UpgradeState, address: str) -> list[ConflictRecord]:
    """The conflicts an address names: exactly one, or every one under a shorter address;
    `#N` names conflict N as --status and the markers number it (an inline patch's address
    holds the whole entry)."""
    if address.startswith("#") and address[1:].isdigit():
        return [r for r in state.conflicts if r.id == int(address[1:])]
    exact = [r for r in state.conflicts if r.address == address]
    if exact:
        return exact
    return [r for r in state.conflicts if r.address.startswith(address.rstrip(":") + ":")]


def _listing(records: tuple[ConflictRecord, ...]) -> str:
    return "; ".join(r.address for r in records) or "none"


def resolve(stack: Stack, *, address: str, choice: str, path: str | None = None,
            progress: Progress | None = None) -> Resolution:
    """Settle the conflicts `address` names with `choice` (ours, theirs, mark, or path:
    an unresolved reference rewritten to `path`)."""
    say = progress or (lambda _m: None)
    if choice not in CHOICES:
        raise UpgradeError(f"unknown resolution {choice!r}: use ours, theirs, mark or path.")
    new_path = path  # `path` names each conflicted file below
    if (choice == "path") != (new_path is not None):
        raise UpgradeError("--path NEW is the resolution of an unresolved reference; give it "
                           "alone, without --ours, --theirs or --mark.")
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
            ".stackctl/upgrade/report.md (PATH, PATH:RESOURCE or PATH:RESOURCE:FIELD), or "
            "give its number as --status shows it ('#3').")
    todo = [r for r in found if r.open]
    _check_choice(todo, choice)
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
            if r.conflict.kind == ConflictKind.UNRESOLVED_REFERENCE and choice != "mark":
                current = _apply_reference(root, prefix, r, current, choice, new_path)
                delta = 0
            elif r.conflict.kind == ConflictKind.NO_EFFECT or choice == "mark":
                delta = 0  # a finding of the effect check: nothing to write
            else:
                current, delta = _apply(repo, state, prefix, r, current, choice,
                                        list(updated.values()))
            recorded = {"mark": "marked", "path": f"path {new_path}"}.get(choice, choice)
            updated[r.id] = replace(r, resolution=recorded, line_delta=delta)
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


def _check_choice(todo: list[ConflictRecord], choice: str) -> None:
    for r in todo:
        kind = r.conflict.kind
        if choice == "path" and kind != ConflictKind.UNRESOLVED_REFERENCE:
            raise UpgradeError(
                f"{r.address} is a {kind} conflict: --path NEW only settles an unresolved "
                "reference.", hint="Use --ours, --theirs or --mark.")
        if choice == "theirs" and kind == ConflictKind.NO_EFFECT:
            raise UpgradeError(
                f"{r.address} is a customization that no longer has an effect: upstream has no "
                "value to take for it.",
                hint="Edit it (the report names the likely successor), then run --resolve "
                "ADDRESS --mark; or keep it as it is with --ours.")


def _apply_reference(root: Path, prefix: str, r: ConflictRecord, current: bytes | None,
                     choice: str, new: str | None) -> bytes | None:
    """An unresolved reference: kept (ours), dropped from its list (theirs), or rewritten
    to `new` (path), which must exist from the kustomization's folder."""
    c = r.conflict
    if current is None or choice == "ours":
        return current
    text = current.decode("utf-8")
    ref = str(c.base)
    if choice == "path":
        assert new is not None
        folder = (root / join(prefix, c.path)).parent
        if not (folder / new.rstrip("/")).exists():
            raise UpgradeError(
                f"{new} does not exist from {posixpath.dirname(c.path) or '.'}/ (where "
                f"{c.path} resolves its references), so it cannot replace {ref}.",
                hint="Give the path relative to that folder, as the other references of the "
                "file are written.")
        out = replace_reference(text, ref, new)
        if out == text:
            raise UpgradeError(f"{ref} is no longer in {c.path}; it was edited since the "
                               "merge.", hint=f"Run 'stackctl upgrade --resolve "
                               f"'{r.address}' --mark'.")
        return out.encode()
    # theirs: upstream deleted the target; the entry goes (a patch or generator file
    # reference takes its whole entry with it).
    segments = c.segments
    if segments and segments[-1] in ("path", "env"):
        segments = segments[:-1]
    try:
        return set_field(text, None, resource=None, segments=segments, path=c.path).encode()
    except (NotFound, UnparsableYaml) as e:
        raise UpgradeError(
            f"cannot drop {ref} from {c.path}: the entry is no longer there ({e}).",
            hint=f"Edit the file, then run 'stackctl upgrade --resolve '{r.address}' "
            "--mark'.") from e


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
        if c.hunk is not None:
            return _apply_hunk(repo, state, prefix, r, current, side, records)
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


def _side_text(repo: git.Repo, commit: str, prefix: str, path: str | None) -> str:
    if path is None:
        return ""
    folder, _, name = join(prefix, path).rpartition("/")
    entry = repo.read_tree(commit, folder).get(name)
    return entry[1].decode("utf-8") if entry else ""


def _value_at(text: str, r: ConflictRecord) -> Any:
    c = r.conflict
    i = find_document(text, c.resource, path=c.path)
    if i is None:
        return MISSING
    return get(load_document(document_segments(text)[i]), c.segments,
               list_key=list_key_for(c.path))


def _apply_hunk(repo: git.Repo, state: UpgradeState, prefix: str, r: ConflictRecord,
                current: bytes | None, side: str,
                records: list[ConflictRecord]) -> tuple[bytes | None, int]:
    """One hunk of a multi-line string value swapped for theirs' lines (or kept)."""
    c = r.conflict
    assert c.hunk is not None
    values = [_value_at(_side_text(repo, commit, prefix, path), r) for commit, path in (
        (state.base_commit, r.base_path), (state.original_commit, r.ours_path),
        (state.vendor_commit, r.theirs_path))]
    if current is None or not all(isinstance(v, str) for v in values):
        raise NotFound(c.field)
    _, raw = merge_lines("value.txt", *values)
    found = next((x for x in raw if x.lines == c.hunk), None)
    if found is None:
        raise NotFound(c.field)
    if side == "ours":
        return current, 0
    text = current.decode("utf-8")
    segs = document_segments(text)
    i = find_document(text, c.resource, path=c.path)
    if i is None:
        raise NotFound(str(c.resource))
    data = load_document(segs[i])
    lk = list_key_for(c.path)
    value = get(data, c.segments, list_key=lk)
    if not isinstance(value, str):
        raise NotFound(c.field)
    shift = sum(x.line_delta for x in records
                if x.conflict.path == c.path and x.conflict.segments == c.segments
                and x.resolution and x.conflict.hunk and x.conflict.hunk[0] < c.hunk[0])
    insertion = c.field.endswith(f"@after-L{c.hunk[0]}")
    start = (c.hunk[0] if insertion else c.hunk[0] - 1) + shift
    lines = value.splitlines(keepends=True)
    ours_lines = str(found.ours).splitlines(keepends=True)
    new_lines = str(found.theirs).splitlines(keepends=True)
    if lines[start:start + len(ours_lines)] != ours_lines:
        raise NotFound(c.field)
    lines[start:start + len(ours_lines)] = new_lines
    new_value = "".join(lines)
    put(data, c.segments, type(value)(new_value) if isinstance(value, ScalarString)
        else new_value, list_key=lk)
    segs[i] = dump_document(data, segs[i], text)
    return join_documents(segs).encode(), len(new_lines) - len(ours_lines)


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
