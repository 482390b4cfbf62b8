"""Files and folders upstream moved or renamed between base and theirs.

Passes over the files base has and theirs lacks (deleted) and theirs has and base lacks
(added), none quadratic:
0. upstream's own references (relocate.UpstreamReferences, when given): a file under a
   folder upstream's kustomizations now reference elsewhere goes to the same path there;
1. exact content: added files indexed by content hash; among equal contents the candidate
   with the same basename and the longest common path suffix wins;
2. similar content: candidates share the basename (index by basename), ranked by common path
   suffix; accepted when their line sets overlap enough (Jaccard >= 0.5);
3. whole folders: every move votes for folder renames (`apps/x/f` -> `applications/x/f`
   votes `apps` -> `applications` and `apps/x` -> `applications/x`); a folder that vanished
   upstream maps to its most voted new folder, and the remaining deleted files under it move
   to the same relative path there when theirs has it, however much their content changed
   (Kubeflow `common/istio-1-9` -> `common/istio-1-11`);
4. weak moves checked against the strong ones (upstream's references, the same content of
   64 bytes or more) before 3: a move found only by similar content or by the same few
   bytes (an overlay's tiny kustomization reads the same in every component) goes where
   the strong moves of its folder went, when theirs has that path (Kubeflow v1.9.1's
   `contrib/ray/.../overlays/kubeflow/kustomization.yaml` reads exactly like spark's, but
   ray went to `experimental/ray/`); without such evidence it stays only if it keeps the
   file in its component (`plausible`): the example stack's v1.4 deletes
   `apps/usage-reporter` and adds `apps/model-registry`, whose deployment.yaml and
   kustomization.yaml look alike, and no local edit may go from one to the other.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gitops.merge.upstreamrefs import UpstreamReferences

SIMILARITY = 0.5
MIN_EXACT_BYTES = 64  # tiny files (an empty kustomization) match too much by content alone
MAX_CANDIDATES = 8


@dataclass(frozen=True)
class Moves:
    """Upstream's moves: `files` old path -> new path; `folders` vanished folder -> new."""

    files: dict[str, str] = field(default_factory=dict)
    folders: dict[str, str] = field(default_factory=dict)

    def map_path(self, path: str) -> str | None:
        """Where a path of base (file or folder) went, or None if it did not move."""
        if path in self.files:
            return self.files[path]
        parts = path.split("/")
        for i in range(len(parts), 0, -1):
            head = "/".join(parts[:i])
            if head in self.folders:
                rest = "/".join(parts[i:])
                return self.folders[head] + ("/" + rest if rest else "")
        return None


def _suffix_len(a: list[str], b: list[str]) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[-1 - n] == b[-1 - n]:
        n += 1
    return n


@functools.lru_cache(maxsize=4096)
def _lines(data: bytes) -> frozenset[bytes]:
    """A file's set of stripped, non-empty lines (once per content: the similarity pass
    compares one file with several candidates)."""
    return frozenset(s for line in data.splitlines() if (s := line.strip()))


def similarity(a: bytes, b: bytes, common: frozenset[bytes] = frozenset()) -> float:
    """Jaccard index of the two files' sets of lines, leaving out `common` lines (those most
    files of the same name share, such as `kind: Kustomization`): they say nothing."""
    la, lb = _lines(a) - common, _lines(b) - common
    if not la or not lb:
        return 0.0
    return len(la & lb) / len(la | lb)


def _common_lines(paths: list[str], trees: list[Mapping[str, bytes]]) -> frozenset[bytes]:
    """Lines found in more than a fifth of the given files (at least 3 of them)."""
    df: Counter[bytes] = Counter()
    for p in paths:
        for tree in trees:
            if p in tree:
                df.update(_lines(tree[p]))
                break
    limit = max(2, len(paths) // 5)
    return frozenset(line for line, n in df.items() if n > limit)


def detect_moves(base: Mapping[str, bytes], theirs: Mapping[str, bytes],
                 hints: UpstreamReferences | None = None) -> Moves:
    deleted = sorted(p for p in base if p not in theirs)
    added = sorted(p for p in theirs if p not in base)
    if not deleted or not added:
        return Moves()
    files: dict[str, str] = {}
    free = set(added)
    weak: set[str] = set()  # moves on similar content or a few equal bytes only

    # 0. upstream's own references
    if hints:
        for old in deleted:
            new, _, _ = hints.lookup(old, free.__contains__)
            if new is not None:
                files[old] = new
                free.discard(new)

    def best(old: str, candidates: list[str]) -> list[str]:
        op = old.split("/")
        return sorted(candidates, key=lambda c: (c.rsplit("/", 1)[-1] != op[-1],
                                                 -_suffix_len(op, c.split("/")), c))

    # 1. exact content
    by_hash: dict[bytes, list[str]] = defaultdict(list)
    for p in added:
        by_hash[hashlib.sha1(theirs[p]).digest()].append(p)
    for old in deleted:
        if old in files:
            continue
        data = base[old]
        cands = [c for c in by_hash.get(hashlib.sha1(data).digest(), []) if c in free]
        base_name = old.rsplit("/", 1)[-1]
        if len(data) < MIN_EXACT_BYTES:
            cands = [c for c in cands if c.rsplit("/", 1)[-1] == base_name]
        if cands:
            new = best(old, cands)[0]
            files[old] = new
            free.discard(new)
            if len(data) < MIN_EXACT_BYTES:
                weak.add(old)
    # 2. similar content, same basename
    by_name: dict[str, list[str]] = defaultdict(list)
    for p in added:
        by_name[p.rsplit("/", 1)[-1]].append(p)
    del_by_name: dict[str, list[str]] = defaultdict(list)
    for p in deleted:
        if p not in files:
            del_by_name[p.rsplit("/", 1)[-1]].append(p)
    common: dict[str, frozenset[bytes]] = {}
    for old in deleted:
        if old in files:
            continue
        name = old.rsplit("/", 1)[-1]
        cands = [c for c in by_name.get(name, []) if c in free]
        if not cands:
            continue
        if name not in common:
            common[name] = _common_lines(del_by_name[name] + by_name[name], [base, theirs])
        op = old.split("/")
        ranked = best(old, cands)[:MAX_CANDIDATES]
        scored = [(similarity(base[old], theirs[c], common[name]),
                   _suffix_len(op, c.split("/")), c) for c in ranked]
        scored = [s for s in scored if s[0] >= SIMILARITY]
        if scored:
            new = max(scored, key=lambda s: (s[0], s[1]))[2]
            files[old] = new
            free.discard(new)
            weak.add(old)
    # 4. weak moves against the folder evidence of the strong ones (done before 3, so
    # that a folder is never moved on weak moves alone)
    _follow_folders(files, weak, free)
    # 3. whole folders
    folders = _folder_moves(files, base, theirs)
    for old in deleted:
        if old in files:
            continue
        parts = old.split("/")
        for i in range(len(parts) - 1, 0, -1):
            head = "/".join(parts[:i])
            if head in folders:
                new = folders[head] + "/" + "/".join(parts[i:])
                if new in free:
                    files[old] = new
                    free.discard(new)
                break
    return Moves(files=files, folders=_folder_moves(files, base, theirs))


def _votes_of(old: str, new: str) -> list[tuple[str, str]]:
    """The folder renames one file move votes for (`apps/x/f` -> `applications/x/f`:
    `apps` -> `applications`, `apps/x` -> `applications/x`)."""
    op, np_ = old.split("/"), new.split("/")
    s = _suffix_len(op, np_)
    po, pn = op[: len(op) - s], np_[: len(np_) - s]
    if not po or not pn:
        return []
    tail = op[len(op) - s: -1]  # the common folders below the renamed one
    return [("/".join(po + tail[:k]), "/".join(pn + tail[:k])) for k in range(len(tail) + 1)]


def _stem(name: str) -> str:
    return re.sub(r"[-_.]?v?\d+", "", name) or name


def plausible(old: str, new: str) -> bool:
    """A move that keeps the file in its component: the new folder is the old one, a
    folder below or above it, the old one moved into a wrapper folder, or a folder whose
    name differs only in its version (`apps/foo/x` -> `apps/foo/base/x`,
    `common/oidc-authservice/base/x` -> `common/oidc-client/oidc-authservice/base/x`,
    `common/istio-1-9-0/x` -> `common/istio-1-9/x`; not `apps/usage-reporter/x` ->
    `apps/model-registry/x`)."""
    op, np_ = old.split("/")[:-1], new.split("/")[:-1]
    i = 0
    while i < min(len(op), len(np_)) and op[i] == np_[i]:
        i += 1
    a, b = op[i:], np_[i:]
    if not a or not b:
        return True  # one folder is within the other
    if a == b[len(b) - len(a):] or b == a[len(a) - len(b):]:
        return True  # moved into (or out of) a wrapper folder
    return _stem(a[0]) == _stem(b[0]) and a[1:] == b[1:]


def _follow_folders(files: dict[str, str], weak: set[str], free: set[str]) -> None:
    """Weak moves go where the strong moves of their folders went; one with no such
    evidence stays only when it is plausible on its own, else the file is no move."""
    votes: dict[str, Counter[str]] = defaultdict(Counter)
    for old, new in files.items():
        if old not in weak:
            for a, b in _votes_of(old, new):
                votes[a][b] += 1
    for old in sorted(weak):
        new = files[old]
        parts = old.split("/")
        for i in range(len(parts) - 1, 0, -1):
            head = "/".join(parts[:i])
            if not votes.get(head):
                continue
            target = max(votes[head].items(), key=lambda kv: (kv[1], kv[0]))[0]
            expected = target + "/" + "/".join(parts[i:])
            if expected != new and expected in free:
                files[old] = expected
                free.discard(expected)
                free.add(new)
            break
        else:
            if not plausible(old, new):
                del files[old]
                free.add(new)


def _dirs(paths: Mapping[str, bytes]) -> set[str]:
    out: set[str] = set()
    for p in paths:
        parts = p.split("/")
        for i in range(1, len(parts)):
            out.add("/".join(parts[:i]))
    return out


def _folder_moves(files: Mapping[str, str], base: Mapping[str, bytes],
                  theirs: Mapping[str, bytes]) -> dict[str, str]:
    votes: dict[str, Counter[str]] = defaultdict(Counter)
    for old, new in files.items():
        for a, b in _votes_of(old, new):
            votes[a][b] += 1
    theirs_dirs = _dirs(theirs)
    size: Counter[str] = Counter()
    for p in base:
        parts = p.split("/")
        for i in range(1, len(parts)):
            size["/".join(parts[:i])] += 1
    out: dict[str, str] = {}
    for old_dir, counter in votes.items():
        if old_dir in theirs_dirs:
            continue  # the folder still exists upstream: not a folder move
        new_dir, n = max(counter.items(), key=lambda kv: (kv[1], kv[0]))
        # Half of the folder's files must have gone there: one look-alike file is no move.
        if new_dir in theirs_dirs and 2 * n >= size[old_dir]:
            out[old_dir] = new_dir
    return out
