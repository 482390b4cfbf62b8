"""Line-based three-way merge (diff3) for text files: .env, .properties, .conf and the rest.

Each side's changes are computed against base with difflib. Changes to base lines that
neither overlap nor touch merge cleanly; overlapping or adjacent changes that differ are a
conflict (as in `git merge-file`, an insertion at a line the other side changed is one too).
A conflict keeps ours' lines and writes no conflict markers: the merged tree stays valid input
for kustomize (a marker in a generator's .env would silently become a ConfigMap key), and the
report gives each conflict's line range in the merged file with the three versions.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from gitops.merge.conflict import Conflict, ConflictKind, Redaction, is_sensitive_file


@dataclass(frozen=True)
class _Change:
    """Base lines [b1, b2) replaced by side lines [s1, s2)."""

    b1: int
    b2: int
    s1: int
    s2: int


def _changes(base: list[str], side: list[str]) -> list[_Change]:
    sm = difflib.SequenceMatcher(None, base, side, autojunk=False)
    return [_Change(i1, i2, j1, j2) for tag, i1, i2, j1, j2 in sm.get_opcodes()
            if tag != "equal"]


def merge_lines(
    path: str, base: str, ours: str, theirs: str, *, redaction: Redaction | None = None,
) -> tuple[str, list[Conflict]]:
    """The merged text and its conflicts (ours kept in each conflicting region)."""
    b = base.splitlines(keepends=True)
    o = ours.splitlines(keepends=True)
    t = theirs.splitlines(keepends=True)
    oc, tc = _changes(b, o), _changes(b, t)
    tagged = sorted([(c.b1, c.b2, 0, c) for c in oc] + [(c.b1, c.b2, 1, c) for c in tc],
                    key=lambda x: (x[0], x[1]))
    out: list[str] = []
    conflicts: list[Conflict] = []
    pos = 0  # next base line to copy
    i = 0
    secret = is_sensitive_file(path)
    red = redaction or Redaction()
    while i < len(tagged):
        lo, hi = tagged[i][0], tagged[i][1]
        group = [tagged[i]]
        i += 1
        # A group: changes whose base ranges overlap or touch (transitively).
        while i < len(tagged) and tagged[i][0] <= hi:
            hi = max(hi, tagged[i][1])
            group.append(tagged[i])
            i += 1
        out.extend(b[pos:lo])
        pos = hi
        ours_g = [g[3] for g in group if g[2] == 0]
        theirs_g = [g[3] for g in group if g[2] == 1]
        os_, oe = _span(oc, ours_g, lo, hi)
        ts, te = _span(tc, theirs_g, lo, hi)
        o_lines, t_lines = o[os_:oe], t[ts:te]
        if not theirs_g:
            out.extend(o_lines)
        elif not ours_g or o_lines == t_lines:
            out.extend(t_lines)
        else:
            first = len(out) + 1
            out.extend(o_lines)

            def show(lines: list[str]) -> str:
                text = "".join(lines)
                return red.mark(text) if secret and text else red.lines(text)

            conflicts.append(Conflict(
                path=path, kind=ConflictKind.BOTH_CHANGED,
                field=_where(first, len(out)) if o_lines else f"after line {first - 1}",
                base=show(b[lo:hi]), ours=show(o_lines), theirs=show(t_lines),
                lines=(first, len(out)) if o_lines else (first - 1, first - 1),
                message="both sides changed these lines; ours kept",
            ))
    out.extend(b[pos:])
    return "".join(out), conflicts


def _where(first: int, last: int) -> str:
    return f"line {first}" if first == last else f"lines {first}-{last}"


def _span(all_changes: list[_Change], group: list[_Change], lo: int, hi: int) -> tuple[int, int]:
    """Side line range equivalent to base [lo, hi): offset by every change before lo, and by
    the group's own changes for the end."""
    delta = 0
    for c in all_changes:
        if c in group:
            break
        if c.b2 <= lo:
            delta += (c.s2 - c.s1) - (c.b2 - c.b1)
    start = lo + delta
    end = hi + delta + sum((c.s2 - c.s1) - (c.b2 - c.b1) for c in group)
    return start, end
