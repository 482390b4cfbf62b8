"""The one place YAML is configured.

Two readers, for two jobs:
- round trip (ruamel.yaml) for files people write: comments, key order, quoting and
  indentation survive a load and dump, so a merged file differs only where it must;
- fast safe loading (PyYAML's libyaml loader) for machine output such as a 10 MB render.
"""

from __future__ import annotations

import io
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml as pyyaml
from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from gitops.errors import YamlError

_BaseSafeLoader: Any = getattr(pyyaml, "CSafeLoader", pyyaml.SafeLoader)


class _SafeLoader(_BaseSafeLoader):  # type: ignore[misc]
    """PyYAML's safe loader reading a plain `=` as the string kustomize (Go yaml) reads:
    YAML 1.1's `value` type has no constructor, so `delimiter: =` (Kubeflow v1.10.2's
    model-registry replacements) would fail to load."""


_SafeLoader.add_constructor("tag:yaml.org,2002:value",
                            lambda loader, node: loader.construct_scalar(node))
_SafeDumper: Any = getattr(pyyaml, "CSafeDumper", pyyaml.SafeDumper)


def round_trip(mapping: int = 2, sequence: int = 2, offset: int = 0) -> YAML:
    """A ruamel YAML object for editing a person's file in place."""
    y = YAML(typ="rt")
    y.preserve_quotes = True
    y.width = 4096  # never re-wrap long lines a person wrote
    y.indent(mapping=mapping, sequence=sequence, offset=offset)
    y.explicit_start = False
    return y


_SEQ_ITEM = re.compile(r"^( *)- ")
_KEY = re.compile(r"^( *)[^\s#-][^:]*:(\s|$)")


def detect_indent(text: str) -> tuple[int, int, int]:
    """Guess (mapping, sequence, offset) indentation of a YAML text, for round_trip().

    ruamel cannot detect it itself; without this, a file indented as `- item` under its key
    would be rewritten with the default style on every touch.
    """
    mapping = 2
    sequence, offset = 2, 0
    lines = text.splitlines()
    key_indents: list[int] = []
    for i, line in enumerate(lines):
        key = _KEY.match(line)
        if key and line.rstrip().endswith(":") and i + 1 < len(lines):
            nxt = lines[i + 1]
            parent = len(key.group(1))
            item = _SEQ_ITEM.match(nxt)
            if item:
                dash = len(item.group(1)) - parent
                offset = max(dash, 0)
                sequence = offset + 2
                break
            child = _KEY.match(nxt)
            if child and len(child.group(1)) > parent:
                key_indents.append(len(child.group(1)) - parent)
    if key_indents:
        mapping = min(key_indents)
    return mapping, max(sequence, offset + 2), offset


def _where(e: YAMLError | pyyaml.YAMLError) -> int | None:
    mark = getattr(e, "problem_mark", None)
    return mark.line + 1 if mark is not None else None


def _problem(e: YAMLError | pyyaml.YAMLError) -> str:
    problem = getattr(e, "problem", None) or str(e).splitlines()[0]
    context = getattr(e, "context", None)
    return f"{context}, {problem}" if context else str(problem)


def decode(data: bytes, *, path: Path | str) -> str:
    """A person's file as text: UTF-8 (YAML's encoding, and kustomize's), else a YamlError
    naming the line of the first byte that is not."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise YamlError(
            f"the file is not UTF-8 text (the byte 0x{data[e.start]:02x} on line {line} is "
            "not UTF-8).", path=path, line=line,
            hint="Save the file as UTF-8 (for example: iconv -f latin1 -t utf-8), then run "
            "the command again.") from e


MAX_CONFIG_DEPTH = 100


def check_depth(text: str, *, path: Path | str, limit: int = MAX_CONFIG_DEPTH) -> None:
    """A YamlError when collections nest more than `limit` levels deep. Configuration files
    nest a few levels; ruamel's scanner takes time quadratic in the depth of flow
    collections (30 s for 5,000 `[`), so libyaml's event parser (C, linear) looks first.
    Other syntax errors are left to the loader that follows, which names them."""
    depth = 0
    try:
        for event in pyyaml.parse(text, Loader=_BaseSafeLoader):
            if isinstance(event, pyyaml.CollectionStartEvent):
                depth += 1
                if depth > limit:
                    raise YamlError(
                        f"invalid YAML: collections nested more than {limit} levels deep.",
                        path=path, line=_where_event(event),
                        hint="Fix the file and run the command again.")
            elif isinstance(event, pyyaml.CollectionEndEvent):
                depth -= 1
    except pyyaml.YAMLError as e:
        if "nesting depth" in str(e):
            raise YamlError(f"invalid YAML: collections nested more than {limit} levels deep "
                            f"({_problem(e)}).", path=path, line=_where(e),
                            hint="Fix the file and run the command again.") from e


def _where_event(event: Any) -> int | None:
    mark = getattr(event, "start_mark", None)
    return int(mark.line) + 1 if mark is not None else None


def load_all_rt(text: str, *, path: Path | str = "<text>") -> list[Any]:
    """Load every document of a person's YAML file for round-trip editing."""
    y = round_trip(*detect_indent(text))
    try:
        return list(y.load_all(text))
    except (YAMLError, MarkedYAMLError) as e:
        raise YamlError(
            f"invalid YAML: {_problem(e)}", path=path, line=_where(e),
            hint="Fix the file and run the command again.",
        ) from e
    except RecursionError as e:
        # ruamel builds nested collections recursively (libyaml stops at its own limit).
        raise YamlError(
            "invalid YAML: its collections are nested more deeply than stackctl reads "
            f"(about {sys.getrecursionlimit() // 2} levels).", path=path,
            hint="No configuration of stackctl nests more than a few levels: fix the file "
            "and run the command again.") from e


def dump_all_rt(docs: Iterable[Any], *, like: str = "") -> str:
    """Dump round-trip documents with the indentation style of `like` (the original text)."""
    y = round_trip(*detect_indent(like)) if like else round_trip()
    docs = list(docs)
    buf = io.StringIO()
    if len(docs) == 1:
        y.dump(docs[0], buf)
    else:
        y.dump_all(docs, buf)
    return buf.getvalue()


def load_safe(text: str, *, path: Path | str = "<text>") -> Any:
    """Load one document into plain dicts and lists (fast; comments are not kept)."""
    try:
        return pyyaml.load(text, Loader=_SafeLoader)
    except pyyaml.YAMLError as e:
        raise YamlError(
            f"invalid YAML: {_problem(e)}", path=path, line=_where(e),
            hint="Fix the file and run the command again.",
        ) from e


def load_all_safe(text: str, *, path: Path | str = "<text>") -> list[Any]:
    """Load every document into plain data, dropping empty documents."""
    try:
        return [d for d in pyyaml.load_all(text, Loader=_SafeLoader) if d is not None]
    except pyyaml.YAMLError as e:
        raise YamlError(
            f"invalid YAML: {_problem(e)}", path=path, line=_where(e),
            hint="Fix the file and run the command again.",
        ) from e


def dump_safe(data: Any, *, sort_keys: bool = False) -> str:
    """Dump plain data as block YAML, deterministically."""
    out: str = pyyaml.dump(
        data, Dumper=_SafeDumper, sort_keys=sort_keys, default_flow_style=False,
        allow_unicode=True, width=4096,
    )
    return out
