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
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from gitops import yamlio
from gitops.errors import YamlError
from gitops.merge.kustomization import KUSTOMIZATION_NAMES, is_kustomization, references

SIMILAR = 0.6  # least line overlap (Jaccard) of two kustomization trees for a content move
MARGIN = 0.1  # the best match must beat the second best by this much
MAX_CANDIDATES = 8
MIN_EXACT_BYTES = 64  # a file moved with the same content: only when it says something

UPSTREAM = "upstream-references"
CONTENT = "similar-content"
SAME_FILE = "same-content"
FOLDER = "folder-relocated"


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


@dataclass(frozen=True)
class Relocation:
    """Where `old` went (`new`, None when no evidence is strong enough) and why."""

    old: str
    new: str | None
    evidence: Evidence | None = None
    candidates: tuple[Candidate, ...] = ()


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
    out: set[str] = {""}
    for p in paths:
        parts = p.split("/")
        for i in range(1, len(parts)):
            out.add("/".join(parts[:i]))
    return out


def _resolve(folder: str, ref: str) -> str:
    return posixpath.normpath(posixpath.join(folder, ref.rstrip("/") or "."))


def _parse_refs(data: bytes, path: str) -> list[str] | None:
    try:
        parsed = yamlio.load_safe(data.decode(), path=path)
    except (UnicodeDecodeError, YamlError):
        return None
    return list(dict.fromkeys(references(parsed)))


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


def _stem(name: str) -> str:
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
    return not (_stem(a[0]) == _stem(b[0]) and a[1:] == b[1:])


def new_head(new: str, rest: list[str]) -> str:
    """The new prefix of a relocated path (`new` without the unchanged `rest`)."""
    return new[: len(new) - len("/".join(rest)) - 1] if rest else new


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
    return _stem(posixpath.basename(folder))


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
