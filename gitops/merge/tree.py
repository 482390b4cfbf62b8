"""merge_trees: the whole deployment repo merged with a new vendored release.

base and theirs hold the vendored tree only (`vendor/<name>/...`); ours holds the whole repo.
Bytes are compared first, so only files changed on both sides are parsed. Upstream's moves
are applied first (local edits follow the moved file), then kustomization references to
moved paths are rewritten and those that no longer resolve are reported.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from gitops.merge.conflict import (
    CHANGED,
    DELETED,
    PRESENT,
    Conflict,
    ConflictKind,
    MergeKind,
    Redaction,
)
from gitops.merge.filemerge import merge_file
from gitops.merge.moves import Moves, detect_moves
from gitops.merge.references import (
    RewrittenReference,
    UnresolvedReference,
    fix_references,
)
from gitops.merge.relocate import Relocator
from gitops.merge.successors import detect_successors
from gitops.merge.upstreamrefs import UpstreamReferences, dirs_of

# How each file of base ∪ theirs was decided (the report counts them).
TAKEN_UPSTREAM = "taken-upstream"
KEPT_LOCAL = "kept-local"
SAME = "same-both-sides"
CONFLICT = "conflict"


@dataclass(frozen=True)
class TreeMerge:
    """The merged repo and everything a person needs to review it.

    files: the merged tree (path -> bytes), ours' paths outside the vendored tree included;
    deleted: paths ours had that the merge removed (upstream deletions and moves);
    conflicts: every conflict, ours kept in `files` (a file ours deleted stays deleted);
    moves: upstream's file moves old -> new (plus local files that followed a moved folder);
    folder_moves: folders upstream renamed, old -> new;
    merged: files changed on both sides -> the kind of merge used;
    outcomes: counts of how files were decided (taken-upstream, kept-local, ...);
    carried: local edits copied into the new versioned folder upstream switched to while
    keeping the old one (successors.py), old path -> new path.
    """

    files: dict[str, bytes]
    deleted: tuple[str, ...]
    conflicts: tuple[Conflict, ...]
    moves: dict[str, str]
    folder_moves: dict[str, str]
    rewritten_references: tuple[RewrittenReference, ...]
    unresolved_references: tuple[UnresolvedReference, ...]
    merged: dict[str, MergeKind] = field(default_factory=dict)
    outcomes: dict[str, int] = field(default_factory=dict)
    carried: dict[str, str] = field(default_factory=dict)

    @property
    def clean(self) -> bool:
        return not self.conflicts and not self.unresolved_references


def _decode(data: bytes) -> str | None:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _whole(path: str, kind: ConflictKind, message: str) -> Conflict:
    if kind is ConflictKind.DELETED_UPSTREAM:
        return Conflict(path, kind, base=PRESENT, ours=CHANGED, theirs=DELETED, message=message)
    if kind is ConflictKind.DELETED_LOCALLY:
        return Conflict(path, kind, base=PRESENT, ours=DELETED, theirs=CHANGED, message=message)
    return Conflict(path, kind, base=PRESENT if kind is not ConflictKind.BOTH_ADDED else None,
                    ours=CHANGED, theirs=CHANGED, message=message)


@dataclass
class _State:
    redaction: Redaction
    conflicts: list[Conflict] = field(default_factory=list)
    merged: dict[str, MergeKind] = field(default_factory=dict)
    outcomes: Counter[str] = field(default_factory=Counter)

    def merge3(self, path: str, b: bytes | None, o: bytes | None,
               t: bytes | None) -> bytes | None:
        """The merged content of one file (None: absent), recording conflicts."""
        if o == t:
            self.outcomes[SAME] += 1
            return o
        if b == t:
            self.outcomes[KEPT_LOCAL] += 1
            return o
        if b == o:
            self.outcomes[TAKEN_UPSTREAM] += 1
            return t
        if t is None:
            self._conflict(_whole(path, ConflictKind.DELETED_UPSTREAM,
                                  "upstream deleted this file, ours changed it: ours kept"))
            return o
        if o is None:
            self._conflict(_whole(path, ConflictKind.DELETED_LOCALLY,
                                  "ours deleted this file, upstream changed it: it stays "
                                  "deleted"))
            return None
        bs = _decode(b) if b is not None else ""
        os_, ts = _decode(o), _decode(t)
        if bs is None or os_ is None or ts is None:
            self.merged[path] = MergeKind.BINARY
            self._conflict(_whole(path, ConflictKind.BINARY,
                                  "binary file changed on both sides: ours kept"))
            return o
        fm = merge_file(path, bs, os_, ts, redaction=self.redaction)
        self.merged[path] = fm.kind
        if fm.conflicts:
            self.outcomes[CONFLICT] += 1
            self.conflicts.extend(fm.conflicts)
        return fm.text.encode()

    def _conflict(self, c: Conflict) -> None:
        self.outcomes[CONFLICT] += 1
        self.conflicts.append(c)


def merge_trees(
    base: Mapping[str, bytes], ours: Mapping[str, bytes], theirs: Mapping[str, bytes], *,
    vendor_prefix: str, redaction: Redaction | None = None,
) -> TreeMerge:
    """Three-way merge of a deployment repo (ours) with a new vendored release (theirs)
    against the previous one (base). See docs/merge.md."""
    prefix = vendor_prefix.rstrip("/") + "/"
    st = _State(redaction or Redaction())
    # Upstream's own kustomizations say first where their references went (relocate.py).
    upstream = UpstreamReferences.collect(base, theirs)
    moves = detect_moves(base, theirs, hints=upstream)
    upstream.add_moved(base, theirs, moves.files)
    files: dict[str, bytes] = dict(ours)
    origin: dict[str, str] = {}
    moved_new = set(moves.files.values())
    all_moves = dict(moves.files)

    for path in sorted(set(base) | set(theirs)):
        if path in moved_new:
            continue
        new = moves.files.get(path)
        if new is not None:
            o = ours.get(path)
            if o is None and new in ours:
                continue  # ours already made the move: merge below as an ordinary file
            merged = st.merge3(new, base[path], o, theirs[new])
            files.pop(path, None)
            if merged is not None:
                files[new] = merged
                origin[new] = path
            continue
        merged = st.merge3(path, base.get(path), ours.get(path), theirs.get(path))
        if merged is None:
            files.pop(path, None)
        else:
            files[path] = merged
    for old, new in moves.files.items():
        if old not in ours and new in ours:
            merged = st.merge3(new, base[old], ours[new], theirs[new])
            if merged is not None:
                files[new] = merged
    # Local files inside a folder upstream moved follow it (a local patch beside a moved
    # kustomization must stay beside it).
    for path in sorted(ours):
        if not path.startswith(prefix) or path in base or path in theirs:
            continue
        new = moves.map_path(path)
        if new is not None and new not in files and path in files:
            files[new] = files.pop(path)
            origin[new] = path
            all_moves[path] = new
    carried = _carry_to_successors(st, base, ours, theirs, files)
    after_dirs = dirs_of(files)
    relocator = Relocator(base, theirs,
                          exists_after=lambda p: p in files or p in after_dirs,
                          upstream=upstream, file_moves=moves.files)
    rewritten, unresolved = fix_references(
        files, ours=ours, theirs=theirs, vendor_prefix=prefix, relocator=relocator,
        origin=origin)
    for _u, conflict in unresolved:
        st.conflicts.append(conflict)
        st.outcomes[CONFLICT] += 1
    deleted = tuple(sorted(p for p in ours if p not in files))
    return TreeMerge(
        files=files, deleted=deleted, conflicts=tuple(st.conflicts), moves=all_moves,
        folder_moves=dict(moves.folders), rewritten_references=tuple(rewritten),
        unresolved_references=tuple(u for u, _c in unresolved), merged=dict(st.merged),
        outcomes=dict(st.outcomes), carried=carried,
    )


def _carry_to_successors(st: _State, base: Mapping[str, bytes], ours: Mapping[str, bytes],
                         theirs: Mapping[str, bytes], files: dict[str, bytes]
                         ) -> dict[str, str]:
    """Local edits in a folder upstream superseded by a new versioned sibling (and still
    ships) are merged into the sibling's files too: base and ours from the old path, theirs
    from the new one; local files are copied. The old files keep ours."""
    carried: dict[str, str] = {}
    for old_dir, new_dir in detect_successors(base, theirs).items():
        for path in sorted(ours):
            if not path.startswith(old_dir + "/") or ours[path] == base.get(path):
                continue
            new = new_dir + path[len(old_dir):]
            if new in theirs and path in base:
                merged = st.merge3(new, base[path], ours[path], files.get(new, theirs[new]))
                if merged is not None:
                    files[new] = merged
                    carried[path] = new
            elif path not in base and new not in files:
                files[new] = ours[path]
                carried[path] = new
    return carried


__all__ = ["Moves", "TreeMerge", "merge_trees"]
