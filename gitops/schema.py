"""A small validator for the YAML configuration files people write.

It reads the file with the round-trip loader so that every message can name the line.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gitops.errors import ConfigError


@dataclass(frozen=True)
class Field:
    """One key of a mapping: its type(s), whether it is required, and nested fields."""

    types: tuple[type, ...]
    required: bool = False
    fields: Mapping[str, Field] | None = None  # for nested mappings
    items: tuple[type, ...] | None = None  # for lists: the type of each item
    doc: str = ""
    choices: tuple[Any, ...] = field(default=())


_TYPE_NAMES = {str: "a string", int: "an integer", bool: "true or false", list: "a list",
               dict: "a mapping", float: "a number"}


def _line(node: Any, key: str | None = None) -> int | None:
    lc = getattr(node, "lc", None)
    if lc is None:
        return None
    try:
        if key is not None:
            return int(lc.key(key)[0]) + 1
        return int(lc.line) + 1
    except (KeyError, TypeError, AttributeError):
        return None


def line_of(node: Any, key: str | None = None) -> int | None:
    """The 1-based line of a round-trip node (or of its `key`), for a message."""
    return _line(node, key)


def _type_ok(value: Any, types: tuple[type, ...]) -> bool:
    if isinstance(value, bool) and bool not in types:
        return False  # YAML's `yes` is not an integer
    return isinstance(value, types)


def _describe(types: tuple[type, ...]) -> str:
    return " or ".join(_TYPE_NAMES.get(t, t.__name__) for t in types)


def validate(node: Any, spec: Mapping[str, Field], *, path: Path, where: str = "") -> None:
    if not isinstance(node, dict):
        raise ConfigError(
            f"{where or 'the document'} must be a mapping of keys to values",
            path=path, line=_line(node),
        )
    for key in node:
        if key not in spec:
            known = ", ".join(spec)
            raise ConfigError(
                f"unknown key {where + str(key)!r}", path=path, line=_line(node, str(key)),
                hint=f"Known keys here: {known}.",
            )
    for key, f in spec.items():
        name = where + key
        if key not in node or node[key] is None:
            if f.required:
                raise ConfigError(f"missing required key {name!r}", path=path, line=_line(node),
                                  hint=f.doc or None)
            continue
        value = node[key]
        if not _type_ok(value, f.types):
            raise ConfigError(
                f"{name!r} must be {_describe(f.types)}, not {value!r}",
                path=path, line=_line(node, key), hint=f.doc or None,
            )
        if f.choices and value not in f.choices:
            raise ConfigError(
                f"{name!r} must be one of {', '.join(map(str, f.choices))}, not {value!r}",
                path=path, line=_line(node, key),
            )
        if f.fields is not None:
            validate(value, f.fields, path=path, where=f"{name}.")
        if f.items is not None:
            for i, item in enumerate(value):
                if not _type_ok(item, f.items):
                    raise ConfigError(
                        f"{name}[{i}] must be {_describe(f.items)}, not {item!r}",
                        path=path, line=_line(node, key),
                    )


def load_config(path: Path, spec: Mapping[str, Field]) -> dict[str, Any]:
    """Read and validate a one-document YAML config file; return it as plain data."""
    from gitops.yamlio import check_depth, decode, load_all_rt  # ruamel: where a file is read

    try:
        text = decode(path.read_bytes(), path=path)
    except FileNotFoundError as e:
        raise ConfigError("file not found", path=path) from e
    except OSError as e:
        raise ConfigError(f"cannot read the file: {e.strerror}", path=path) from e
    check_depth(text, path=path)
    docs = [d for d in load_all_rt(text, path=path) if d is not None]
    if len(docs) != 1:
        raise ConfigError(f"expected exactly one YAML document, found {len(docs)}", path=path)
    validate(docs[0], spec, path=path)
    plain: dict[str, Any] = _plain(docs[0])
    return plain


def _plain(node: Any) -> Any:
    if isinstance(node, dict):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    if isinstance(node, str):
        return str(node)
    return node
