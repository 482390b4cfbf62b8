"""Plan output forms (text, markdown, json): secrets never shown, markdown that values
cannot break, the size budget, the JSON schema."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import pytest

from gitops.plan import (
    SCHEMA,
    Plan,
    RefInfo,
    plan_from_renders,
    render_json,
    render_markdown,
    render_text,
)
from gitops.redact import Redactor

BASE = RefInfo("main", "a" * 40)
HEAD = RefInfo("feature", "b" * 40)

SECRETS = {
    "db": "db-pass-0ld-value", "db2": "db-pass-n3w-value", "token": "ghp_tokenvalue123",
    "env": "env-secret-value-42", "cm": "cm-apikey-value-7", "applied": "applied-pass-99",
}


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def render(objs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return objs


def secret_objects(password: str) -> list[dict[str, Any]]:
    last = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "old"},
            "stringData": {"password": SECRETS["applied"]}}
    return [
        {"apiVersion": "v1", "kind": "Secret", "metadata": {
            "name": "db", "namespace": "ml",
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration":
                            json.dumps(last)}},
         "data": {"password": b64(password)}, "stringData": {"token": SECRETS["token"]}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "app", "namespace": "ml"},
         "data": {"API_KEY": SECRETS["cm"] + password[-3:], "level": password[-3:],
                  # The same value as the Secret, under a key with an innocent name.
                  "copy": password}},
        {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": {"name": "web", "namespace": "ml"},
         "spec": {"template": {"spec": {"containers": [{
             "name": "web", "image": f"reg/web:{password[-3:]}",
             "env": [{"name": "DB_PASSWORD", "value": password},
                     {"name": "SESSION_SECRET", "value": SECRETS["env"] + password[-3:]}],
         }]}}}},
    ]


def make(before: dict[str, list[dict[str, Any]]], after: dict[str, list[dict[str, Any]]],
         ) -> Plan:
    return plan_from_renders(before, after, base=BASE, head=HEAD,
                             redactor=Redactor(salt=b"test"))


def test_known_secret_values_never_appear_in_any_output_form() -> None:
    p = make({"dev": secret_objects(SECRETS["db"])}, {"dev": secret_objects(SECRETS["db2"])})
    assert p.changed
    outputs = {
        "text": render_text(p), "markdown": render_markdown(p), "json": render_json(p),
        "text-small": render_text(p, max_bytes=1024),
        "markdown-small": render_markdown(p, max_bytes=1024),
        "json-small": render_json(p, max_bytes=1024),
    }
    forbidden = [v for s in SECRETS.values() for v in (s, b64(s))]
    for form, out in outputs.items():
        for value in forbidden:
            assert value not in out, (form, value)
    # The change is still visible: two different hashes for the changed password.
    full = outputs["text"]
    line = next(ln for ln in full.splitlines() if "data.password" in ln)
    before, after = re.findall(r"<redacted sha256:[0-9a-f]{8}>", line)
    assert before != after
    assert "<redacted sha256:" in json.loads(outputs["json"])["clusters"][0]["objects"][0][
        "fields"][0]["before"]


def test_clusters_are_changed_unchanged_added_or_removed() -> None:
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "n"},
          "data": {"a": "1"}}
    p = make({"dev": [cm], "prod": [cm], "old": [cm]},
             {"dev": [cm], "prod": [{**cm, "data": {"a": "2"}}], "new": [cm]})
    assert [(c.name, c.status) for c in p.clusters] == [
        ("dev", "unchanged"), ("new", "added"), ("old", "removed"), ("prod", "changed")]
    text = render_text(p)
    assert "cluster dev: unchanged (1 objects)" in text
    assert "cluster new: added (only at head): 1 added" in text
    assert "cluster old: removed (only at base): 0 added, 1 removed" in text
    # A string that reads as a number is quoted: "1" and 1 differ to Kubernetes.
    assert "~    data.a: \"1\" -> \"2\"" in text
    md = render_markdown(p)
    assert "| `dev` | unchanged | 0 | 0 | 0 | 0 |" in md
    assert "| `old` | removed cluster | 0 | 1 | 0 | 0 |" in md
    assert md.count("<details>") == 3  # dev, being unchanged, has no section


def test_nothing_changed_is_not_a_finding() -> None:
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}
    assert not make({"dev": [cm]}, {"dev": [cm]}).changed


def _outside_fences(md: str) -> list[str]:
    out, fence = [], None
    for line in md.splitlines():
        m = re.match(r"^(`{3,})", line)
        if fence is None and m:
            fence = m.group(1)
        elif fence is not None and line.strip() == fence:
            fence = None
        elif fence is None:
            out.append(line)
    assert fence is None, "an unclosed fence"
    return out


def test_values_with_backticks_or_html_cannot_break_the_markdown() -> None:
    nasty = "x\n```\n</details>\n<script>alert(1)</script>\n````` end"
    def cm(v: str) -> dict[str, Any]:
        return {"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "c`</details>`", "namespace": "n"},
                "data": {"script": v, "one": v.replace("\n", " ")}}
    p = make({"dev": [cm("a\nb\n")]}, {"dev": [cm(nasty)]})
    md = render_markdown(p)
    outside = _outside_fences(md)
    assert "<script>" not in "\n".join(outside)
    assert sum(ln.count("</details>") for ln in outside) == 1
    assert sum(ln.count("<details>") for ln in outside) == 1
    assert "alert(1)" in md  # shown, inside a fence


def big_plan(objects: int = 120, fields: int = 60) -> Plan:
    def cm(i: int, v: str) -> dict[str, Any]:
        return {"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": f"cm-{i:03d}", "namespace": "n"},
                "data": {f"key-{j:03d}": f"{v}-{j}-" + "x" * 30 for j in range(fields)}}
    return make({"dev": [cm(i, "old") for i in range(objects)] + [cm(999, "same")]},
                {"dev": [cm(i, "new") for i in range(objects)] + [cm(999, "same")]})


def test_a_big_markdown_plan_stays_under_the_budget_and_says_what_it_elided() -> None:
    p = big_plan()
    full = render_text(p)
    assert len(full.encode()) > 400_000
    md = render_markdown(p)
    assert len(md.encode()) <= 65_536
    m = re.search(r"the field changes of (\d+) object\(s\) \(([\d,]+) field changes\)", md)
    assert m is not None
    assert int(m.group(2).replace(",", "")) == int(m.group(1)) * 60
    assert md.count(": 60 field changes, elided") == int(m.group(1))
    # No line is cut: every line is a whole line of the unbudgeted markdown, or the note.
    whole = set(render_markdown(p, max_bytes=None).splitlines())
    assert all(ln in whole or "elided" in ln.lower() for ln in md.splitlines())
    _outside_fences(md)


def test_the_budget_also_applies_to_text_and_json_when_asked() -> None:
    p = big_plan()
    text = render_text(p, max_bytes=20_000)
    assert len(text.encode()) <= 20_000 and "note: This plan exceeds the 20,000-byte" in text
    data = json.loads(render_json(p, max_bytes=100_000))
    assert data["elided"]["objects"] > 0
    elided = [o for o in data["clusters"][0]["objects"] if o["fieldsElided"]]
    assert elided and all(o["fields"] == [] and o["fieldCount"] == 60 for o in elided)


def test_a_budget_too_small_for_any_object_keeps_the_summary() -> None:
    p = big_plan(objects=400, fields=2)
    md = render_markdown(p, max_bytes=2_000)
    assert len(md.encode()) <= 2_000
    assert "| `dev` | changed | 0 | 0 | 400 | 0 |" in md
    assert "reduced to their counts" in md


@pytest.mark.parametrize("form", ["json"])
def test_json_is_stable_and_follows_the_documented_schema(form: str) -> None:
    p = make({"dev": secret_objects(SECRETS["db"])}, {"dev": secret_objects(SECRETS["db2"])})
    a, b = render_json(p), render_json(p)
    assert a == b
    data = json.loads(a)
    assert list(data) == ["apiVersion", "base", "head", "changed", "summary", "elided",
                          "failedChecks", "clusters", "redacted"]
    assert data["redacted"] == {"values": a.count("<redacted sha256:"), "distinct": 2}
    assert data["apiVersion"] == SCHEMA
    assert data["base"] == {"ref": "main", "commit": "a" * 40}
    (cluster,) = data["clusters"]
    assert list(cluster) == ["name", "status", "counts", "objectsElided", "images", "objects"]
    obj = cluster["objects"][0]
    assert list(obj) == ["action", "id", "apiVersion", "apiVersionChanged", "crdVersions",
                         "replace", "images", "fieldCount", "fieldsElided", "fields"]
    assert cluster["images"] == [{
        "object": {"group": "apps", "kind": "Deployment", "namespace": "ml", "name": "web"},
        "location": "spec.template.spec.containers[name=web]", "container": "web",
        "before": "reg/web:lue", "after": "reg/web:lue"}] or cluster["images"] == []
