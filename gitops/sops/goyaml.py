"""YAML as Go's yaml.v3 reads it, for SOPS: the `sops` program decodes each scalar node into
`interface{}`, so its MAC hashes YAML 1.2 booleans (`yes` is a string), Go's integer syntax
(`0o17`, `017`, `0x1F`, `1_000`), and timestamps as time values written back by
time.MarshalText. A YAML 1.1 parser (PyYAML) would see other values and the MAC would fail.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import yaml as pyyaml


class FormatError(Exception):
    """The file cannot be read as SOPS reads its format (message says why)."""


class GoTime(str):
    """A YAML timestamp as Go's time.Time.MarshalText writes it (RFC 3339, nanoseconds)."""

    __slots__ = ()


def go_float(v: float) -> str:
    """strconv.FormatFloat(v, 'f', -1, 64): shortest round-trip digits, no exponent."""
    if v != v:
        return "NaN"
    if v in (float("inf"), float("-inf")):
        return "+Inf" if v > 0 else "-Inf"
    from decimal import Decimal

    text = format(Decimal(repr(v)), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


_TS = re.compile(
    r"(\d{4})-(\d{1,2})-(\d{1,2})"
    r"(?:(?:[Tt](\d{1,2}):(\d{1,2}):(\d{1,2})(\.\d+)?(Z|[+-]\d{2}:\d{2}))"
    r"|(?: (\d{1,2}):(\d{1,2}):(\d{1,2})(\.\d+)?))?")


def go_time(text: str) -> GoTime | None:
    """A YAML timestamp in one of yaml.v3's formats, as time.MarshalText writes it; None
    when `text` is not one."""
    m = _TS.fullmatch(text)
    if m is None:
        return None
    g = m.groups()
    y, mo, d = int(g[0]), int(g[1]), int(g[2])
    if g[3] is not None:
        hh, mm, ss, frac, zone = int(g[3]), int(g[4]), int(g[5]), g[6], g[7]
    elif g[8] is not None:
        hh, mm, ss, frac, zone = int(g[8]), int(g[9]), int(g[10]), g[11], "Z"
    else:
        hh = mm = ss = 0
        frac, zone = None, "Z"
    if zone == "Z":
        tz = UTC
    else:
        sign = 1 if zone[0] == "+" else -1
        tz = timezone(sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])))
    try:
        datetime(y, mo, d, hh, mm, ss, tzinfo=tz)
    except ValueError:
        return None
    nanos = (frac or ".")[1:10].ljust(9, "0") if frac else ""
    nanos = nanos.rstrip("0")
    offset = "Z" if tz is UTC or tz.utcoffset(None) == timedelta(0) else zone
    return GoTime(f"{y:04d}-{mo:02d}-{d:02d}T{hh:02d}:{mm:02d}:{ss:02d}"
                  + (f".{nanos}" if nanos else "") + offset)


_PLAIN_TAG = "!stackctl-plain"


class _Loader(pyyaml.SafeLoader):
    """Composes nodes only; plain scalars without an explicit tag keep a marker tag, so that
    they are resolved by Go's rules below rather than YAML 1.1's."""

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        if kind is pyyaml.ScalarNode and implicit and implicit[0]:
            return _PLAIN_TAG
        return super().resolve(kind, value, implicit)  # type: ignore[no-untyped-call]


_YAML_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_GO_INT = re.compile(r"[-+]?(0[xX][0-9a-fA-F]+|0[oO]?[0-7]*|0[bB][01]+|[1-9][0-9]*)")
_NULLS = ("", "~", "null", "Null", "NULL")


def _go_int(text: str) -> int | None:
    """strconv.ParseInt(s, 0, 64) (or ParseUint for large positives), underscores removed."""
    plain = text.replace("_", "")
    if not _GO_INT.fullmatch(plain):
        return None
    sign = -1 if plain.startswith("-") else 1
    body = plain.lstrip("+-")
    low = body.lower()
    if low.startswith("0x"):
        n = int(body[2:], 16)
    elif low.startswith("0b"):
        n = int(body[2:], 2)
    elif low.startswith("0o"):
        n = int(body[2:], 8)
    elif body.startswith("0") and len(body) > 1:
        n = int(body[1:], 8)  # Go's base-0 parse reads a leading 0 as octal
    else:
        n = int(body)
    n *= sign
    return n if -(2**63) <= n < 2**64 else None


def resolve_plain(text: str) -> Any:
    """A plain YAML scalar as yaml.v3 decodes it into interface{}."""
    if text in ("true", "True", "TRUE"):
        return True
    if text in ("false", "False", "FALSE"):
        return False
    if text in _NULLS:
        return None
    if text in (".nan", ".NaN", ".NAN"):
        return float("nan")
    if text in (".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"):
        return float("inf")
    if text in ("-.inf", "-.Inf", "-.INF"):
        return float("-inf")
    if not text or text[0] not in "+-.0123456789":
        return text
    if text[0] == ".":
        try:
            return float(text)
        except ValueError:
            return text
    ts = go_time(text)
    if ts is not None:
        return ts
    n = _go_int(text)
    if n is not None:
        return n
    plain = text.replace("_", "")
    if _YAML_FLOAT.fullmatch(plain):
        return float(plain)
    return text


def _scalar(node: pyyaml.ScalarNode) -> Any:
    tag = node.tag
    if tag == _PLAIN_TAG:
        return resolve_plain(node.value)
    short = tag.replace("tag:yaml.org,2002:", "!!")
    if short == "!!binary":
        try:
            return base64.b64decode(node.value, validate=False).decode("utf-8", "surrogateescape")
        except (binascii.Error, ValueError) as e:
            raise FormatError("invalid !!binary value") from e
    if short in ("!!int", "!!float", "!!bool", "!!null", "!!timestamp"):
        v = resolve_plain(node.value)
        return float(v) if short == "!!float" and isinstance(v, int) else v
    return node.value  # !!str, quoted, block scalars and custom tags


def _node(node: pyyaml.Node) -> Any:
    if isinstance(node, pyyaml.MappingNode):
        out: dict[str, Any] = {}
        for k, v in node.value:
            key = _node(k)
            if isinstance(key, dict | list):
                raise FormatError("a mapping key that is not a scalar")
            name = key if isinstance(key, str) else _key_text(key)
            if name in out:
                raise FormatError(f"duplicate key {name!r}")
            out[name] = _node(v)
        return out
    if isinstance(node, pyyaml.SequenceNode):
        return [_node(x) for x in node.value]
    assert isinstance(node, pyyaml.ScalarNode)
    return _scalar(node)


def _key_text(key: Any) -> str:
    if key is None:
        return "null"
    if isinstance(key, bool):
        return "True" if key else "False"
    return go_float(key) if isinstance(key, float) else str(key)


def load_yaml(data: bytes) -> list[Any]:
    """The documents of a YAML file as plain data, scalars typed as yaml.v3 types them
    (mappings only: SOPS refuses other documents)."""
    try:
        text = data.decode("utf-8")
        nodes = list(pyyaml.compose_all(text, Loader=_Loader))
    except (UnicodeDecodeError, pyyaml.YAMLError) as e:
        raise FormatError(f"invalid YAML: {str(e).splitlines()[0]}") from e
    docs: list[Any] = []
    for n in nodes:
        if n is None:
            continue
        value = _node(n)
        if value is None:
            continue
        if not isinstance(value, dict):
            raise FormatError("a YAML document that is not a mapping")
        docs.append(value)
    return docs
