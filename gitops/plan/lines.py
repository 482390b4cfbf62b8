"""The lines of one object's change, shared by the text and markdown forms.

    + Deployment.apps/model-registry -n mlstack
    - Deployment.apps/usage-reporter -n mlstack
    ~ Deployment.apps/web -n mlstack
    ~     spec.replicas: 1 -> 3
    +     metadata.labels.tier: web
    ~     data["app.conf"]:
          @@ -2,1 +2,1 @@
    -         log_level = info
    +         log_level = debug

The first column is the change's sign, so a markdown `diff` fence colours the lines.
"""

from __future__ import annotations

import difflib
import json
import re
from typing import Any

from gitops.diff import FieldChange, ImageChange, ObjectChange
from gitops.immutable import Recreate, recreate_of
from gitops.redact import Redactor

VALUE_LIMIT = 300  # characters of one value shown inline; longer ones are shortened
TEXT_LINES_LIMIT = 40  # lines of a multi-line value's diff

_SIGN = {"added": "+", "removed": "-", "changed": "~"}
# Strings that would read as another type unquoted: "1" and 1 differ to Kubernetes.
_NON_STRING = re.compile(
    r"^(?:true|false|yes|no|on|off|null|~|[-+]?(?:\d[\d_]*)?\.?\d+(?:[eE][-+]?\d+)?)$",
    re.IGNORECASE)


def scrub(value: Any, redactor: Redactor) -> Any:
    """A value with every known secret value scrubbed from its strings (the last guard:
    structured redaction already hid Secret data and sensitive keys)."""
    if isinstance(value, str):
        return redactor.text(value, pairs=False)
    if isinstance(value, dict):
        return {k: scrub(v, redactor) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v, redactor) for v in value]
    return value


def fmt_value(value: Any, redactor: Redactor, *, limit: int = VALUE_LIMIT) -> str:
    """One line: plain strings as they are, other values as compact JSON, shortened with
    a visible marker beyond `limit` characters."""
    value = scrub(value, redactor)
    if isinstance(value, str) and value and value == value.strip() and "\n" not in value \
            and " -> " not in value and not value.startswith(("{", "[", '"')) \
            and not _NON_STRING.match(value):
        text = value
    else:
        text = json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    if len(text) > limit:
        text = f"{text[:limit]}… ({len(text)} characters)"
    return text


def _multiline(v: Any) -> bool:
    return isinstance(v, str) and "\n" in v.rstrip("\n")


def field_lines(f: FieldChange, redactor: Redactor, indent: str = "    ") -> list[str]:
    sign = _SIGN[f.action]
    if f.action == "changed" and _multiline(f.before) and _multiline(f.after):
        a = str(scrub(f.before, redactor)).splitlines()
        b = str(scrub(f.after, redactor)).splitlines()
        out = [f"~{indent}{f.path}:"]
        body = [ln for ln in difflib.unified_diff(a, b, n=1, lineterm="")
                if not ln.startswith(("---", "+++"))]
        for ln in body[:TEXT_LINES_LIMIT]:
            if ln.startswith("@@"):
                out.append(f" {indent}    {ln}")
            else:
                out.append(f"{ln[:1] or ' '}{indent}    {_clip(ln[1:])}")
        if len(body) > TEXT_LINES_LIMIT:
            out.append(f" {indent}    … {len(body) - TEXT_LINES_LIMIT} more diff lines")
        return out
    value = f.after if f.action == "added" else f.before
    if f.action != "changed" and _multiline(value):
        lines = str(scrub(value, redactor)).splitlines()
        out = [f"{sign}{indent}{f.path}: |"]
        out += [f"{sign}{indent}    {_clip(ln)}" for ln in lines[:TEXT_LINES_LIMIT]]
        if len(lines) > TEXT_LINES_LIMIT:
            out.append(f"{sign}{indent}    … {len(lines) - TEXT_LINES_LIMIT} more lines")
        return out
    if f.action == "added":
        return [f"+{indent}{f.path}: {fmt_value(f.after, redactor)}"]
    if f.action == "removed":
        return [f"-{indent}{f.path}: {fmt_value(f.before, redactor)}"]
    return [f"~{indent}{f.path}: {fmt_value(f.before, redactor)} -> "
            f"{fmt_value(f.after, redactor)}"]


def _clip(line: str) -> str:
    return line if len(line) <= VALUE_LIMIT else f"{line[:VALUE_LIMIT]}… ({len(line)} characters)"


def replace_note(c: ObjectChange) -> str:
    """`replace: spec.selector` for an object the apply re-creates, `cannot change:
    spec.scope` for one whose re-creation would destroy data (the apply refuses it)."""
    if not c.replace:
        return ""
    word = "cannot change" if recreate_of(c.id) is Recreate.REFUSE else "replace"
    return f"{word}: {', '.join(c.replace)}"


def header(c: ObjectChange) -> str:
    notes = []
    if c.api_version_changed:
        notes.append(f"apiVersion {c.api_version_before} -> {c.api_version_after}")
    if c.replace:
        notes.append(replace_note(c))
    return f"{_SIGN[c.action]} {c.id}" + (f" ({'; '.join(notes)})" if notes else "")


def entry_lines(c: ObjectChange, redactor: Redactor) -> list[str]:
    """Every line of one object's change."""
    out = [header(c)]
    for f in c.fields:
        out += field_lines(f, redactor)
    return out


def entry_summary(c: ObjectChange) -> str:
    """The one line that replaces an object's field changes when the plan is too big."""
    n = len(c.fields)
    return f"{header(c)}: {n} field change{'s' if n != 1 else ''}, elided"


def image_line(i: ImageChange) -> str:
    before, after = i.before or "(none)", i.after or "(none)"
    return f"{i.id} [{i.container}]: {before} -> {after}"


def flag_lines(changes: tuple[ObjectChange, ...]) -> list[str]:
    """API version and CRD version changes, and objects whose fields cannot change in
    place (replaced on apply, or refused), which deserve a reviewer's eye."""
    out = []
    for c in changes:
        if c.api_version_changed:
            out.append(f"{c.id}: apiVersion {c.api_version_before} -> {c.api_version_after}")
        if c.crd_versions is not None:
            out.append(f"{c.id}: {c.crd_versions.describe()}")
        if c.replace:
            fields = ", ".join(c.replace)
            if recreate_of(c.id) is Recreate.REFUSE:
                out.append(f"{c.id}: {fields} cannot change on a live object, and re-creating "
                           "it would destroy data: apply refuses it (docs/apply.md)")
            else:
                out.append(f"{c.id}: replaced on apply (deleted and re-created): {fields} "
                           "cannot change on a live object")
    return out
