"""Redaction on the real Kubeflow render: the plan from v1.8.0 to v1.9.0 (`example`) hides
every Secret value without a mark inside an object kind or name (before, the weak demo
values `/dex`, `root` and `test` were scrubbed out of words and names: 1,314 marks, 147 of
them glued to a name; now a handful, each standing for a whole value)."""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gitops.plan import plan_from_renders, render_json, render_markdown, render_text
from gitops.plan.model import RefInfo
from gitops.redact import Redactor
from gitops.render import render_path
from gitops.scrub import count_marks, secret_like

pytestmark = [pytest.mark.kubeflow, pytest.mark.slow]

MARK = r"<redacted sha256:[0-9a-f]{8}>"
HEADER = re.compile(r"^\s*[+~-] (\S+?)/(\S+)(?: -n (\S+))?$")


def secret_values(objects: list[dict[str, Any]]) -> set[str]:
    """Every value of every Secret, as written and decoded."""
    out: set[str] = set()
    for o in objects:
        if o.get("kind") != "Secret":
            continue
        for v in (o.get("data") or {}).values():
            out.add(str(v))
            with contextlib.suppress(binascii.Error, ValueError, UnicodeDecodeError):
                out.add(base64.b64decode(str(v), validate=True).decode())
        out.update(str(v) for v in (o.get("stringData") or {}).values())
    return {v for v in out if v}


def test_the_kubeflow_plan_hides_every_secret_value_and_never_cuts_a_kind_or_name(
        kubeflow_tree: Callable[[str], Path], kustomize: Path) -> None:
    before = [dict(o.body) for o in render_path(kubeflow_tree("v1.8.0") / "example").objects]
    after = [dict(o.body) for o in render_path(kubeflow_tree("v1.9.0") / "example").objects]
    plan = plan_from_renders({"example": before}, {"example": after},
                             base=RefInfo("v1.8.0", "a" * 40), head=RefInfo("v1.9.0", "b" * 40),
                             redactor=Redactor(salt=b"kubeflow"))
    text, md = render_text(plan), render_markdown(plan)
    for out in (text, md):
        # No mark glued to a word, a kind or a name ('Service<redacted>', 'non-<redacted>').
        assert re.findall(rf"[A-Za-z0-9_./-]{MARK}|{MARK}[A-Za-z0-9_-]", out) == []
        headers = [m for ln in out.splitlines() if (m := HEADER.match(ln))]
        assert len(headers) > 300
        assert not [m.group(0) for m in headers if "<redacted" in m.group(0)]
    # JSON: no mark in any object's kind, group, namespace or name; no value as a field's.
    doc = json.loads(render_json(plan))
    objects = [o for c in doc["clusters"] for o in c.get("objects") or []]
    assert len(objects) > 300
    assert not [o["id"] for o in objects if "<redacted" in json.dumps(o["id"])]
    shown_in_json = {str(f[side]) for o in objects for f in o["fields"]
                     for side in ("before", "after") if f[side] is not None}
    values = secret_values(before + after)
    assert {"root", "test", "pUBnBOY80SnXgjibTYM9ZWNzY2xreNGQok"} <= values
    for v in values:
        assert v not in shown_in_json, v
        if secret_like(v):
            assert v not in text and v not in md and v not in json.dumps(doc), v
        else:  # a word such as 'root': never shown as a value, though 'non-root' stays
            shown = re.compile(rf"(?:: |-> ){re.escape(v)}(?: ->|$)", re.M)
            assert not shown.search(text) and not shown.search(md), v
    # The Secrets that changed show hashes, and the report counts them.
    assert re.search(rf"data\.\S+: {MARK}", text)
    marks, distinct = count_marks(text)
    assert 0 < marks <= 30 and distinct <= marks
    assert f"redacted: {marks} secret values redacted ({distinct} distinct)" in text
    assert re.search(r"_\d+ secret values? redacted \(\d+ distinct\)", md)
