"""Upstream's own references as evidence of moves: the strongest evidence relocate.py
has. A kustomization upstream ships in both releases whose reference changed in place from
X to Y, X gone and Y new, votes `X -> Y`, and, with the common tail of the two paths
stripped, `old folder -> new folder` at each level (docs/merge.md, "References: rewritten
only on evidence").
"""

from __future__ import annotations

import difflib
import functools
import posixpath
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from gitops import yamlio
from gitops.errors import YamlError
from gitops.merge.kustomization import is_kustomization, references

UPSTREAM = "upstream-references"


@dataclass(frozen=True)
class Evidence:
    """Why a path is taken to have moved: `kind` (upstream-references, similar-content,
    same-content, folder-relocated) and a sentence naming the files or scores."""

    kind: str
    detail: str


@dataclass(frozen=True)
class Candidate:
    """A place a deleted path may have gone to that was not taken, and why not."""

    path: str
    score: float | None
    why: str


@dataclass
class _Votes:
    count: int = 0
    examples: list[tuple[str, str, str]] = field(default_factory=list)  # file, old, new
    refs: set[str] = field(default_factory=set)  # the distinct old references voting

    @property
    def distinct(self) -> int:
        return len(self.refs)

    def add(self, example: tuple[str, str, str], ref: str) -> None:
        self.count += 1
        self.refs.add(ref)
        if len(self.examples) < 3:
            self.examples.append(example)


def dirs_of(paths: Iterable[str]) -> set[str]:
    """Every folder holding a path ('' for the root); a folder already seen ends the walk
    up from a path (its parents are in too)."""
    out: set[str] = {""}
    for p in paths:
        d = p.rpartition("/")[0]
        while d and d not in out:
            out.add(d)
            d = d.rpartition("/")[0]
    return out


def _resolve(folder: str, ref: str) -> str:
    return posixpath.normpath(posixpath.join(folder, ref.rstrip("/") or "."))


@functools.lru_cache(maxsize=8192)
def kustomization_refs(data: bytes) -> tuple[str, ...] | None:
    """The references of a kustomization's text, in order (None: not YAML); parsed once
    per text for the merge's several readers (moves, successors, relocations)."""
    try:
        parsed = yamlio.load_safe(data.decode(), path="kustomization")
    except (UnicodeDecodeError, YamlError):
        return None
    return tuple(references(parsed))


def _parse_refs(data: bytes, path: str) -> list[str] | None:
    refs = kustomization_refs(data)
    return None if refs is None else list(dict.fromkeys(refs))


def _suffix_len(a: list[str], b: list[str]) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[-1 - n] == b[-1 - n]:
        n += 1
    return n


def _join(head: str, rest: list[str]) -> str:
    return "/".join([head, *rest]) if rest else head


class UpstreamReferences:
    """Votes `old prefix -> new prefix` from upstream's kustomizations whose references
    changed in place between base and theirs (see the module docstring)."""

    def __init__(self) -> None:
        self.moves: dict[str, dict[str, _Votes]] = defaultdict(dict)
        self.replacements: dict[str, dict[str, _Votes]] = defaultdict(dict)
        self.reverse: dict[str, set[str]] = defaultdict(set)  # new prefix -> old prefixes
        self._dirs: tuple[set[str], set[str]] = (set(), set())

    @classmethod
    def collect(cls, base: Mapping[str, bytes], theirs: Mapping[str, bytes]
                ) -> UpstreamReferences:
        """Votes of the kustomizations upstream ships at the same path in both releases
        (add those it moved with `add_moved`)."""
        out = cls()
        out._dirs = (dirs_of(base), dirs_of(theirs))
        for path in theirs:
            if is_kustomization(path) and path in base:
                out._compare(base, theirs, path, path)
        return out

    def add_moved(self, base: Mapping[str, bytes], theirs: Mapping[str, bytes],
                  moves: Mapping[str, str]) -> UpstreamReferences:
        """Also the votes of kustomizations upstream moved (`moves`: old -> new path)."""
        for old, new in moves.items():
            if is_kustomization(new) and old in base and new in theirs:
                self._compare(base, theirs, new, old)
        return self

    def _compare(self, base: Mapping[str, bytes], theirs: Mapping[str, bytes], path: str,
                 old_path: str) -> None:
        data, old_data = theirs[path], base[old_path]
        if old_data == data:
            return
        b_refs, t_refs = _parse_refs(old_data, old_path), _parse_refs(data, path)
        if b_refs is None or t_refs is None:
            return
        base_dirs, their_dirs = self._dirs
        b_folder, t_folder = posixpath.dirname(old_path), posixpath.dirname(path)
        b_abs = [_resolve(b_folder, r) for r in b_refs]
        t_abs = [_resolve(t_folder, r) for r in t_refs]
        sm = difflib.SequenceMatcher(None, b_abs, t_abs, autojunk=False)
        for tag, i1, i2, j1, j2 in sm.get_opcodes():
            if tag != "replace":
                continue
            for k, (x, y) in enumerate(zip(b_abs[i1:i2], t_abs[j1:j2], strict=False)):
                old_ref, new_ref = b_refs[i1 + k], t_refs[j1 + k]
                gone = x not in theirs and x not in their_dirs
                new = y not in base and y not in base_dirs
                # A reference whose text is the same in a kustomization upstream moved
                # moved with it: that says nothing the file move did not.
                if old_ref != new_ref and x != y and gone and new:
                    self._vote(x, y, (path, old_ref, new_ref))

    def _vote(self, x: str, y: str, example: tuple[str, str, str]) -> None:
        xp, yp = x.split("/"), y.split("/")
        s = _suffix_len(xp, yp)
        if s == 0:
            self.replacements[x].setdefault(y, _Votes()).add(example, x)
            return
        xh, yh, tail = xp[: len(xp) - s], yp[: len(yp) - s], xp[len(xp) - s:]
        if not xh or not yh:
            return
        for k in range(len(tail) + 1):
            old, new = "/".join(xh + tail[:k]), "/".join(yh + tail[:k])
            self.moves[old].setdefault(new, _Votes()).add(example, x)
            self.reverse[new].add(old)

    def __bool__(self) -> bool:
        return bool(self.moves or self.replacements)

    def lookup(self, path: str, usable: Callable[[str], bool]
               ) -> tuple[str | None, Evidence | None, tuple[Candidate, ...]]:
        """The new place of `path` on the longest voted prefix whose new place is usable,
        with its evidence; else no place, and as candidates the tied places or the paths
        upstream's references put in this one's place (a replacement is no move)."""
        parts = path.split("/")
        for i in range(len(parts), 0, -1):
            head = "/".join(parts[:i])
            if head not in self.moves:
                continue
            rest = parts[i:]
            # A folder renamed to another name (not a version of it, not wrapped in or
            # out of a folder) takes two references saying so: one reference replaced by
            # another component's (`apps/usage-reporter/upstream/base` by
            # `apps/model-registry/upstream/base`) is no move.
            options = {_join(n, rest): v for n, v in self.moves[head].items()
                       if usable(_join(n, rest))
                       and (v.distinct >= 2 or not is_rename(head, n))}
            if not options:
                continue
            ranked = sorted(options.items(), key=lambda kv: (-kv[1].count, kv[0]))
            if len(ranked) > 1 and ranked[0][1].count == ranked[1][1].count:
                return None, None, tuple(
                    Candidate(p, None, f"upstream's references moved {head} here "
                              f"{v.count} time(s), as often as elsewhere")
                    for p, v in ranked if v.count == ranked[0][1].count)
            new, votes = ranked[0]
            file, old_ref, new_ref = votes.examples[0]
            more = f" (and {votes.count - 1} more)" if votes.count > 1 else ""
            return new, Evidence(UPSTREAM, (
                f"upstream's {file} changed {old_ref} to {new_ref}{more}: {head} moved to "
                f"{new_head(new, rest)}")), ()
        replaced = tuple(
            Candidate(n, None, f"upstream's {v.examples[0][0]} uses it in this one's place "
                      "(a replacement, not a move)")
            for n, v in sorted(self.replacements.get(path, {}).items()) if usable(n))
        return None, None, replaced

    def claimed_by(self, new: str, exists_base: Callable[[str], bool]) -> str | None:
        """The deleted path upstream's references send to `new`, if any."""
        parts = new.split("/")
        for i in range(len(parts), 0, -1):
            head = "/".join(parts[:i])
            for old_head in sorted(self.reverse.get(head, ())):
                old = _join(old_head, parts[i:])
                if exists_base(old):
                    return old
        return None


def stem(name: str) -> str:
    return re.sub(r"[-_.]?v?\d+", "", name) or name


def is_rename(old: str, new: str) -> bool:
    """The two folder paths differ by a folder renamed to another name: not a version of
    it (`istio-1-17` -> `istio`), not a folder wrapped around it or taken away
    (`cert-manager/cert-manager` -> `cert-manager`)."""
    a, b = old.split("/"), new.split("/")
    i = 0
    while i < min(len(a), len(b)) and a[i] == b[i]:
        i += 1
    a, b = a[i:], b[i:]
    if not a or not b or a == b[len(b) - len(a):] or b == a[len(a) - len(b):]:
        return False
    return not (stem(a[0]) == stem(b[0]) and a[1:] == b[1:])


def new_head(new: str, rest: list[str]) -> str:
    """The new prefix of a relocated path (`new` without the unchanged `rest`)."""
    return new[: len(new) - len("/".join(rest)) - 1] if rest else new


__all__ = [
    "UPSTREAM",
    "Candidate",
    "Evidence",
    "UpstreamReferences",
    "dirs_of",
    "is_rename",
    "stem",
]
