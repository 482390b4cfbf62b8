"""Multi-line string values merged by their content, not as one scalar.

A config file inside a ConfigMap (dex's `config.yaml`), a script, a JSON document: a local
edit of one line and an upstream change six lines away are no conflict (`git merge-file`
merges them; merging the string as one value would not).

1. Structured: where the value parses as YAML (or JSON) mappings or lists on all three
   sides, and ours' text is exactly what a dump of its parse gives back (so nothing of its
   formatting is lost), it is merged as data, with the field rules of the merge; a clean
   result is dumped back in ours' layout.
2. Lines: otherwise (or when the structured merge conflicts) a three-way line merge
   (text.merge_lines); only overlapping hunks conflict. Each conflict addresses its hunk,
   `FIELD@L12-13` (lines of ours' value), shows the hunk's base, ours and theirs lines,
   and carries the three whole values for report.json. Ours' lines stay in the value.
"""

from __future__ import annotations

import io
import json
from typing import TYPE_CHECKING, Any

from ruamel.yaml.scalarstring import ScalarString

from gitops import yamlio
from gitops.merge.conflict import Conflict, ConflictKind
from gitops.merge.text import merge_lines

if TYPE_CHECKING:
    from gitops.merge.fields import FieldMerge


def is_multiline(b: Any, o: Any, t: Any) -> bool:
    """Three strings (base may be any string), ours or theirs over more than one line."""
    return (isinstance(o, str) and isinstance(t, str) and isinstance(b, str)
            and ("\n" in o.rstrip("\n") or "\n" in t.rstrip("\n")))


def hunk_suffix(lines: tuple[int, int], insertion: bool) -> str:
    a, z = lines
    if insertion:
        return f"@after-L{a}"
    return f"@L{a}" if a == z else f"@L{a}-{z}"


def merge_string(fm: FieldMerge, b: str, o: str, t: str, fpath: tuple[str, ...]) -> Any:
    """The merged value (ours' string type kept), recording conflicts on `fm`."""
    structured = _structured(fm, b, o, t, fpath)
    if structured is not None:
        fm.changed = True
        return _like(o, structured)
    merged, hunks = merge_lines(fm.path, b, o, t)
    if not hunks:
        fm.changed = fm.changed or merged != o
        return _like(o, merged) if merged != o else o
    from gitops.merge.fields import field_string

    base_field = field_string(fpath)
    for h in hunks:
        assert h.lines is not None
        insertion = h.field.startswith("after line")
        a, z = h.lines
        what = f"{base_field}, " + (f"after line {a}" if insertion else
                                    f"line {a}" if a == z else f"lines {a}-{z}")
        fm.conflicts.append(Conflict(
            path=fm.path, kind=ConflictKind.BOTH_CHANGED, resource=fm.resource,
            field=base_field + hunk_suffix(h.lines, insertion), segments=fpath,
            base=fm.shown(base_field, h.base), ours=fm.shown(base_field, h.ours),
            theirs=fm.shown(base_field, h.theirs),
            message=f"both sides changed these lines of the value ({what}); ours kept",
            hunk=h.lines,
            values=(fm.shown(base_field, b), fm.shown(base_field, o),
                    fm.shown(base_field, t)),
        ))
    fm.changed = fm.changed or merged != o
    return _like(o, merged) if merged != o else o


def _like(o: str, value: str) -> Any:
    """`value` in ours' scalar style (a `|` block stays a block)."""
    return type(o)(value) if isinstance(o, ScalarString) else value


def _structured(fm: FieldMerge, b: str, o: str, t: str, fpath: tuple[str, ...]) -> str | None:
    """The clean structured merge of three YAML or JSON texts, or None."""
    js = _json_merge(fm, b, o, t)
    if js is not None:
        return js
    return _yaml_merge(fm, b, o, t)


def _json_merge(fm: FieldMerge, b: str, o: str, t: str) -> str | None:
    try:
        pb, po, pt = json.loads(b), json.loads(o), json.loads(t)
    except ValueError:
        return None
    if not all(isinstance(x, dict | list) for x in (pb, po, pt)):
        return None
    indent = _json_indent(o)
    if _json_dump(po, indent, o) != o:
        return None  # ours' layout would not survive a dump: merge the lines instead
    from gitops.merge.fields import FieldMerge

    sub = FieldMerge(path=fm.path, resource=fm.resource, redaction=fm.redaction,
                     list_key=fm.list_key, secret_field=fm.secret_field)
    merged = sub.merge_value(pb, po, pt, ())
    if sub.conflicts:
        return None
    return _json_dump(merged, indent, o)


def _json_indent(text: str) -> int | None:
    for line in text.splitlines()[1:]:
        stripped = line.lstrip(" ")
        if stripped and len(stripped) < len(line):
            return len(line) - len(stripped)
    return None


def _json_dump(value: Any, indent: int | None, like: str) -> str:
    out = json.dumps(value, indent=indent, ensure_ascii=False,
                     separators=None if indent is not None else (", ", ": "))
    return out + ("\n" if like.endswith("\n") else "")


def _yaml_merge(fm: FieldMerge, b: str, o: str, t: str) -> str | None:
    from gitops.merge.yamlmerge import UnparsableYaml, merge_documents, parse_documents

    try:
        docs = [parse_documents(x) for x in (b, o, t)]
    except UnparsableYaml:
        return None
    for side in docs:
        data = [d.data for d in side if d.data is not None]
        if not data or not all(isinstance(x, dict | list) for x in data):
            return None  # plain text (a script) parses as one scalar: not structured
    if not _round_trips(o):
        return None
    try:
        m = merge_documents(fm.path, b, o, t, redaction=fm.redaction)
    except UnparsableYaml:
        return None
    if m.conflicts:
        return None
    return m.text


def _round_trips(text: str) -> bool:
    """Ours' text is exactly what ruamel writes back for it (indentation detected)."""
    y = yamlio.round_trip(*yamlio.detect_indent(text))
    try:
        data = y.load(text)
        buf = io.StringIO()
        y.dump(data, buf)
    except Exception:  # ruamel raises many types; all mean "not this way"
        return False
    return buf.getvalue() == text
