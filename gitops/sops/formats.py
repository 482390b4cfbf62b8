"""SOPS's file formats, read the way the `sops` program reads them and written the way
`sops decrypt` writes them (for dotenv, INI and binary byte for byte; YAML and JSON as
equivalent data, comments dropped).

A file is read into `Parsed`: its documents (plain Python data in document order: dicts keep
key order, which the MAC depends on) and its `sops` metadata, unflattened. Scalars of YAML
files resolve as Go's yaml.v3 resolves them (gitops.sops.goyaml), since the MAC hashes the
values SOPS saw, not what a YAML 1.1 parser would see.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Literal

import yaml as pyyaml

from gitops.sops.goyaml import FormatError, GoTime, go_float, load_yaml

Format = Literal["yaml", "json", "dotenv", "ini", "binary"]
METADATA_KEY = "sops"
FLAT_PREFIX = "sops_"


class Comment(str):
    """A comment SOPS encrypted as a sequence item (type:comment): not data, not MACed."""

    __slots__ = ()


@dataclass(frozen=True)
class Parsed:
    format: Format
    documents: tuple[Any, ...]
    metadata: dict[str, Any] | None  # None: not a SOPS file


def detect_format(name: str) -> Format:
    """SOPS's choice of format by file name: .yaml/.yml, .json, .env, .ini, else binary."""
    lower = name.lower()
    if lower.endswith((".yaml", ".yml")):
        return "yaml"
    if lower.endswith(".json"):
        return "json"
    if lower.endswith(".env"):
        return "dotenv"
    if lower.endswith(".ini"):
        return "ini"
    return "binary"


# A cheap test before any parse: every SOPS file holds at least its MAC, an ENC[...] value.
_ENC = b"ENC[AES256_GCM,data:"
_MARKERS = (b"sops:", b'"sops"', b"sops_mac=", b"[sops]")


def may_be_sops(data: bytes) -> bool:
    return _ENC in data and any(m in data for m in _MARKERS)


# ---------------------------------------------------------------------------------------
# The bytes SOPS's MAC hashes


def to_bytes(v: Any) -> bytes | None:
    """The bytes SOPS's MAC hashes for a value (ToBytes); None for a null (never hashed)."""
    if v is None or isinstance(v, Comment):
        return None
    if isinstance(v, bool):
        return b"True" if v else b"False"
    if isinstance(v, int):
        return str(v).encode()
    if isinstance(v, float):
        return go_float(v).encode()
    if isinstance(v, bytes):
        return v
    if isinstance(v, str):
        return v.encode("utf-8", "surrogateescape")
    raise FormatError(f"cannot hash a value of type {type(v).__name__}")


# ---------------------------------------------------------------------------------------
# JSON


def _json_int(text: str) -> int | float:
    n = int(text)
    return n if -(2**63) <= n < 2**63 else float(text)


def _load_json(data: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(data.decode("utf-8"), parse_int=_json_int, parse_float=float,
                         parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
    except (UnicodeDecodeError, ValueError) as e:
        raise FormatError(f"invalid JSON: {e}") from e
    if not isinstance(doc, dict):
        raise FormatError("a JSON document that is not an object")
    return doc


# ---------------------------------------------------------------------------------------
# Flattened metadata (dotenv, INI): age__list_0__map_enc -> {"age": [{"enc": ...}]}

_SEP = re.compile(r"__(map|list)_")


def unflatten(flat: dict[str, Any]) -> dict[str, Any]:
    root: dict[str, Any] = {}
    for key, value in flat.items():
        parts = _SEP.split(key)
        tokens: list[str | int] = [parts[0]]
        for kind, name in zip(parts[1::2], parts[2::2], strict=True):
            tokens.append(int(name) if kind == "list" else name)
        node: Any = root
        for tok, nxt in zip(tokens, [*tokens[1:], None], strict=True):
            if nxt is None:
                node[tok] = value
                break
            child: Any = [] if isinstance(nxt, int) else {}
            if isinstance(node, dict):
                node = node.setdefault(tok, child)
            else:
                assert isinstance(tok, int)
                while len(node) <= tok:
                    node.append(None)
                if node[tok] is None:
                    node[tok] = child
                node = node[tok]
    return root


# ---------------------------------------------------------------------------------------
# dotenv and INI


def _load_dotenv(data: bytes) -> tuple[dict[str, Any], dict[str, Any]]:
    values: dict[str, Any] = {}
    meta: dict[str, Any] = {}
    for raw in data.split(b"\n"):
        if not raw or raw.startswith(b"#"):
            continue
        line = raw.decode("utf-8", "surrogateescape")
        if "=" not in line:
            raise FormatError(f"invalid dotenv line (no '='): {line[:40]!r}")
        k, v = line.split("=", 1)
        v = v.replace("\\n", "\n")
        if k.startswith(FLAT_PREFIX):
            meta[k[len(FLAT_PREFIX):]] = v
        else:
            values[k] = v
    return values, meta


_SECTION = re.compile(r"\[(.*)\]")


def _load_ini(data: bytes) -> dict[str, dict[str, Any]]:
    """INI as SOPS writes it (go-ini): [sections], `key = value` lines, `;`/`#` comments.
    Keys before the first section belong to DEFAULT."""
    sections: dict[str, dict[str, Any]] = {}
    current = sections.setdefault("DEFAULT", {})
    for raw in data.decode("utf-8", "surrogateescape").splitlines():
        line = raw.strip()
        if not line or line.startswith((";", "#")):
            continue
        m = _SECTION.fullmatch(line)
        if m:
            current = sections.setdefault(m.group(1).strip(), {})
            continue
        sep = min((i for i in (line.find("="), line.find(":")) if i >= 0), default=-1)
        if sep < 0:
            raise FormatError(f"invalid INI line: {line[:40]!r}")
        key, value = line[:sep].strip(), line[sep + 1:].strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'`":
            value = value[1:-1]
        current[key] = value
    if not sections["DEFAULT"]:
        del sections["DEFAULT"]
    return sections


# ---------------------------------------------------------------------------------------
# Reading


def parse(data: bytes, fmt: Format) -> Parsed:
    """The documents and SOPS metadata of a file (metadata None: not a SOPS file)."""
    if fmt == "yaml":
        docs = load_yaml(data)
        meta = docs[0].get(METADATA_KEY) if docs else None
        docs = [{k: v for k, v in d.items() if k != METADATA_KEY} for d in docs]
        return Parsed(fmt, tuple(docs), meta if isinstance(meta, dict) else None)
    if fmt in ("json", "binary"):
        try:
            doc = _load_json(data)
        except FormatError:
            if fmt == "binary":
                return Parsed(fmt, (), None)  # a plain binary file
            raise
        meta = doc.pop(METADATA_KEY, None)
        if fmt == "binary" and not isinstance(doc.get("data"), str):
            return Parsed(fmt, (), None)
        return Parsed(fmt, (doc,), meta if isinstance(meta, dict) else None)
    if fmt == "dotenv":
        values, flat = _load_dotenv(data)
        return Parsed(fmt, (values,), unflatten(flat) if flat else None)
    sections = _load_ini(data)
    flat_ini = sections.pop(METADATA_KEY, None)
    meta_ini = (unflatten({k: v.replace("\\n", "\n") for k, v in flat_ini.items()})
                if flat_ini else None)
    return Parsed(fmt, (sections,), meta_ini)


# ---------------------------------------------------------------------------------------
# Writing the plaintext


class _Dumper(pyyaml.SafeDumper):
    pass


def _time_repr(d: pyyaml.SafeDumper, v: GoTime) -> pyyaml.ScalarNode:
    return d.represent_scalar("tag:yaml.org,2002:timestamp", str(v))


def _str_repr(d: pyyaml.SafeDumper, v: str) -> pyyaml.ScalarNode:
    style = "|" if "\n" in v and not v.endswith((" ", "\t")) else None
    return d.represent_scalar("tag:yaml.org,2002:str", v, style=style)


_Dumper.add_representer(GoTime, _time_repr)
_Dumper.add_representer(str, _str_repr)


def _drop_comments(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _drop_comments(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_drop_comments(x) for x in v if not isinstance(x, Comment)]
    return v


def val_to_string(v: Any) -> str:
    """How dotenv and INI write a value that is not a string (their own values are always
    strings; a decrypted typed value is the only other kind)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return go_float(v)
    if v is None:
        return ""
    return str(v)


def _ini_value(v: str) -> str:
    # go-ini's writer: multi-line values in triple quotes, values with comment characters
    # in backquotes, values with surrounding spaces in double quotes.
    if "\n" in v:
        return f'"""{v}"""'
    if "#" in v or ";" in v:
        return f"`{v}`"
    if v != v.strip():
        return f'"{v}"'
    return v


def emit(fmt: Format, documents: tuple[Any, ...]) -> bytes:
    """The decrypted file as `sops decrypt` writes it (YAML and JSON: the same data)."""
    docs = [_drop_comments(d) for d in documents]
    if fmt == "yaml":
        out = pyyaml.dump_all(docs, Dumper=_Dumper, sort_keys=False, default_flow_style=False,
                              allow_unicode=True, width=4096, explicit_start=len(docs) > 1)
        return out.encode("utf-8", "surrogateescape")
    if fmt == "json":
        return (json.dumps(docs[0], indent="\t", ensure_ascii=False) + "\n").encode(
            "utf-8", "surrogateescape")
    if fmt == "binary":
        return str(docs[0].get("data", "")).encode("utf-8", "surrogateescape")
    if fmt == "dotenv":
        lines = []
        for k, v in docs[0].items():
            text = v.replace("\n", "\\n") if isinstance(v, str) else val_to_string(v)
            lines.append(f"{k}={text}\n")
        return "".join(lines).encode("utf-8", "surrogateescape")
    blocks = []
    for name, items in docs[0].items():
        width = max((len(k) for k in items), default=0)
        body = "".join(f"{k.ljust(width)} = {_ini_value(val_to_string(v))}\n"
                       for k, v in items.items())
        head = "" if name == "DEFAULT" else f"[{name}]\n"
        blocks.append(head + body)
    return "\n".join(blocks).encode("utf-8", "surrogateescape")

