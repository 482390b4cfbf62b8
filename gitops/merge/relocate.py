"""Where a path upstream deleted went, and on what evidence: the basis of every reference
rewrite. A reference is rewritten only on strong evidence, named in the report; anything
weaker is an unresolved reference a person settles (docs/merge.md, "Moves and references").

1. Upstream's own references (strongest). A kustomization upstream ships in both releases
   whose reference changed in place from X to Y (its `example/kustomization.yaml` went from
   `../common/istio-1-17/istio-crds/base` to `../common/istio/istio-crds/base`), where X is
   gone and Y is new, says that X moved to Y. The common tail of the two paths is stripped,
   so the pair also says `common/istio-1-17` -> `common/istio`: a path under the old folder
   maps to the same path under the new one when theirs has it, on the longest voted prefix.
   Two new places voted equally for one prefix are a tie: no rewrite. A reference replaced
   by a path with nothing in common (`istio-install/base` -> `istio-install/overlays/
   oauth2-proxy`) is a replacement, not a move: used only when no folder evidence applies.
2. Content (next). The kustomization tree a folder reference points at (the kustomization
   and every local file it reads, recursively) against the trees of the new folders of the
   same name (version numbers aside: `gw-1`, `gw-2`): the best is taken when its lines
   overlap by SIMILAR or more, beats the next by MARGIN, and is not where another deleted
   folder went (a better match of its own, or upstream's references).
   `contrib/security/PSS/dynamic/baseline` never becomes `.../restricted`: that name
   differs, and restricted went to its own new place.
3. A file reference follows upstream's references, a file moved with the same content, or
   its folder when the folder relocates on evidence.
"""

from __future__ import annotations

import difflib
import posixpath
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from gitops.merge.kustomization import KUSTOMIZATION_NAMES, is_kustomization
from gitops.merge.upstreamrefs import (
    UPSTREAM,
    Candidate,
    Evidence,
    UpstreamReferences,
    _parse_refs,
    _resolve,
    _suffix_len,
    dirs_of,
    stem,
)

SIMILAR = 0.6  # least line overlap (Jaccard) of two kustomization trees for a content move
MARGIN = 0.1  # the best match must beat the second best by this much
MAX_CANDIDATES = 8
MIN_EXACT_BYTES = 64  # a file moved with the same content: only when it says something

CONTENT = "similar-content"
SAME_FILE = "same-content"
FOLDER = "folder-relocated"


@dataclass(frozen=True)
class Relocation:
    """Where `old` went (`new`, None when no evidence is strong enough) and why."""

    old: str
    new: str | None
    evidence: Evidence | None = None
    candidates: tuple[Candidate, ...] = ()


# ------------------------------------------------------------------------------ content


def _lines(data: bytes) -> frozenset[bytes]:
    return frozenset(s for line in data.splitlines() if (s := line.strip())
                     and not s.startswith(b"#"))


class _Trees:
    """Kustomization trees of one side: the lines of every file a folder's kustomization
    reads, recursively (memoised)."""

    def __init__(self, files: Mapping[str, bytes]) -> None:
        self.files = files
        self.dirs = dirs_of(files)
        self._memo: dict[str, frozenset[bytes]] = {}
        self._file_lines: dict[str, frozenset[bytes]] = {}

    def kustomization(self, folder: str) -> str | None:
        for name in KUSTOMIZATION_NAMES:
            p = f"{folder}/{name}" if folder else name
            if p in self.files:
                return p
        return None

    def file_lines(self, path: str) -> frozenset[bytes]:
        if path not in self._file_lines:
            self._file_lines[path] = _lines(self.files[path])
        return self._file_lines[path]

    def lines(self, folder: str) -> frozenset[bytes]:
        if folder in self._memo:
            return self._memo[folder]
        self._memo[folder] = frozenset()  # a cycle reads nothing twice
        out: set[bytes] = set()
        k = self.kustomization(folder)
        if k is not None:
            out |= self.file_lines(k)
            for ref in _parse_refs(self.files[k], k) or ():
                target = _resolve(folder, ref)
                if target in self.files:
                    out |= self.file_lines(target)
                elif target in self.dirs:
                    out |= self.lines(target)
        result = frozenset(out)
        self._memo[folder] = result
        return result


def _name(folder: str) -> str:
    """A folder's name without version numbers: content moves keep the name (`istio-1-9`
    and `istio-1-11` are one name, `baseline` and `restricted` two)."""
    return stem(posixpath.basename(folder))


def _jaccard(a: frozenset[bytes], b: frozenset[bytes], common: frozenset[bytes]) -> float:
    la, lb = a - common, b - common
    if not la or not lb:
        return 0.0
    return len(la & lb) / len(la | lb)


# ------------------------------------------------------------------------------ locator


class Relocator:
    """Answers `locate(old)` for paths of base that no longer exist after the merge."""

    def __init__(self, base: Mapping[str, bytes], theirs: Mapping[str, bytes], *,
                 exists_after: Callable[[str], bool], upstream: UpstreamReferences,
                 file_moves: Mapping[str, str]) -> None:
        self.base, self.theirs = base, theirs
        self.exists_after = exists_after
        self.upstream = upstream
        self.file_moves = file_moves
        self._base_dirs = dirs_of(base)
        self._trees: tuple[_Trees, _Trees] | None = None
        self._common: frozenset[bytes] | None = None
        self._kdirs: tuple[dict[str, list[str]], dict[str, list[str]]] | None = None
        self._memo: dict[str, Relocation] = {}

    def exists_base(self, path: str) -> bool:
        return path in self.base or path in self._base_dirs

    def _usable(self, path: str) -> bool:
        return self.exists_after(path) and not self.exists_base(path)

    def _kind(self, files: Mapping[str, bytes], path: str) -> str:
        if path in files:
            return "file"
        return "kustomization" if any(f"{path}/{n}" in files for n in KUSTOMIZATION_NAMES) \
            else "folder"

    def locate(self, old: str) -> Relocation:
        if old not in self._memo:
            self._memo[old] = self._locate(old)
        return self._memo[old]

    def _locate(self, old: str) -> Relocation:
        # A new place of the same kind only: a kustomization folder for a kustomization
        # folder (not the plain folder a file of it went to), a file for a file.
        kind = self._kind(self.base, old)

        def usable(path: str) -> bool:
            return self._usable(path) and self._kind(self.theirs, path) == kind

        new, ev, hints = self.upstream.lookup(old, usable)
        if new is not None:
            return Relocation(old, new, ev)
        if hints and "as often" in hints[0].why:
            return Relocation(old, None, None, hints)  # a tie: no content guess either
        found = self._locate_file(old) if old in self.base else self._by_content(old)
        if found.new is None and hints:
            return Relocation(old, None, None, hints + found.candidates)
        return found

    def _locate_file(self, old: str) -> Relocation:
        moved = self.file_moves.get(old)
        if moved is not None and self._usable(moved) \
                and self.base[old] == self.theirs.get(moved) \
                and len(self.base[old]) >= MIN_EXACT_BYTES:
            return Relocation(old, moved, Evidence(SAME_FILE, f"{moved} has the same content"))
        folder, name = posixpath.split(old)
        if folder:
            up = self.locate(folder)
            if up.new is not None and up.evidence is not None \
                    and self._usable(f"{up.new}/{name}"):
                return Relocation(old, f"{up.new}/{name}", Evidence(
                    FOLDER, f"its folder {folder} moved to {up.new} ({up.evidence.detail})"))
        cands = (Candidate(moved, None, "moved by similar content only, not strong enough"),) \
            if moved is not None and self._usable(moved) else ()
        return Relocation(old, None, None, cands)

    # --- content similarity -------------------------------------------------------------

    def _setup(self) -> tuple[_Trees, _Trees]:
        if self._trees is None:
            self._trees = (_Trees(self.base), _Trees(self.theirs))
            df: Counter[bytes] = Counter()
            for tree in self._trees:
                for p in tree.files:
                    df.update(tree.file_lines(p))
            n = len(self.base) + len(self.theirs)
            limit = max(3, n // 50)
            self._common = frozenset(line for line, c in df.items() if c > limit)
            kdirs: tuple[dict[str, list[str]], dict[str, list[str]]] = (
                defaultdict(list), defaultdict(list))
            for side, tree in enumerate(self._trees):
                other = self._trees[1 - side]
                for p in tree.files:
                    if is_kustomization(p):
                        folder = posixpath.dirname(p)
                        if folder not in other.dirs:  # deleted (base) or new (theirs)
                            kdirs[side][_name(folder)].append(folder)
            self._kdirs = kdirs
        return self._trees

    def _ranked(self, path: str, pool: list[str]) -> list[str]:
        pp = path.split("/")
        return sorted(pool, key=lambda c: (-_suffix_len(pp, c.split("/")),
                                           -difflib.SequenceMatcher(None, path, c).ratio(),
                                           c))[:MAX_CANDIDATES]

    def score(self, old: str, new: str) -> float:
        bt, tt = self._setup()
        assert self._common is not None
        return _jaccard(bt.lines(old), tt.lines(new), self._common)

    def _by_content(self, old: str) -> Relocation:
        bt, _ = self._setup()
        assert self._kdirs is not None
        if bt.kustomization(old) is None:
            return Relocation(old, None)
        pool = [c for c in self._kdirs[1].get(_name(old), []) if self._usable(c)]
        scored = sorted(((self.score(old, c), c) for c in self._ranked(old, pool)),
                        key=lambda sc: (-sc[0], sc[1]))
        if not scored:
            return Relocation(old, None)
        best_score, best = scored[0]
        second = scored[1][0] if len(scored) > 1 else 0.0
        cands = [Candidate(c, round(s, 2), "") for s, c in scored[:3]]
        why = ""
        if best_score < SIMILAR:
            why = f"only {best_score:.2f} similar (at least {SIMILAR} needed)"
        elif best_score - second < MARGIN:
            why = (f"{best_score:.2f} similar, as close as {scored[1][1]} "
                   f"({second:.2f}): a tie")
        else:
            other = self.upstream.claimed_by(best, self.exists_base)
            if other is not None and other != old:
                why = f"upstream's references send {other} there"
            else:
                rival = self._rival(old, best, best_score)
                if rival is not None:
                    why = f"{rival[1]} matches it better ({rival[0]:.2f})"
        if why:
            cands[0] = Candidate(best, round(best_score, 2), why)
            return Relocation(old, None, None, tuple(cands))
        detail = (f"its kustomization tree is {best_score:.2f} similar to {best}'s"
                  + (f" (next best {scored[1][1]}: {second:.2f})" if len(scored) > 1 else ""))
        return Relocation(old, best, Evidence(CONTENT, detail))

    def _rival(self, old: str, new: str, score: float) -> tuple[float, str] | None:
        """Another deleted folder of the same name that matches `new` better."""
        assert self._kdirs is not None
        pool = [c for c in self._kdirs[0].get(_name(new), [])
                if c != old and not self.exists_after(c)]
        best: tuple[float, str] | None = None
        for c in self._ranked(new, pool):
            s = self.score(c, new)
            if s > score and (best is None or s > best[0]):
                best = (s, c)
        return best


__all__ = ["CONTENT", "FOLDER", "SAME_FILE", "UPSTREAM", "Candidate", "Evidence",
           "Relocation", "Relocator", "UpstreamReferences"]
