"""Putting the plaintext into kustomize's output: every ENC[...] value replaced by what it
decrypts to (from files whose MAC was checked), encrypted comments dropped, and the `sops`
metadata kustomize passed through removed from each object.

The values are known by their ciphertext: kustomize may rename, relabel, move to another
namespace or copy a value elsewhere (replacements), but it never changes a value's text. A
ciphertext no checked file explains is an error: nothing encrypted reaches a cluster, and
nothing is decrypted that the MAC did not vouch for.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import yaml

from gitops.errors import SecretsError
from gitops.sops.formats import Comment, to_bytes
from gitops.sops.goyaml import GoTime, resolve_plain

_Loader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_B64 = r"[A-Za-z0-9+/=]*"
_ENC = re.compile(rf"(['\"]?)(ENC\[AES256_GCM,data:{_B64},iv:{_B64},tag:{_B64},type:[a-z]+\])\1")
_COMMENT_ITEM = re.compile(
    rf"^[ \t]*- ['\"]?ENC\[AES256_GCM,data:{_B64},iv:{_B64},tag:{_B64},type:comment\]['\"]?"
    r"[ \t]*\n", re.M)
# The top-level `sops:` key of an object and its indented (or blank) lines.
_SOPS_BLOCK = re.compile(r"^sops:[^\n]*\n(?:(?:[ \t][^\n]*)?\n)*", re.M)
# Raw in JSON, not allowed raw in a YAML quoted scalar: C1 controls, line separators, and
# the lone surrogates of bytes that were not UTF-8 (written as escapes, never as bytes).
_YAML_UNSAFE = re.compile("[\x7f-\x9f\u2028\u2029\ud800-\udfff]")
# A string that reads back as itself unquoted, to YAML 1.1 (PyYAML) and 1.2 (Go) alike.
_PLAIN = re.compile(r"[A-Za-z0-9/][A-Za-z0-9._/@+=-]*")


def _yaml11_str(text: str) -> bool:
    try:
        return bool(yaml.load(text, Loader=_Loader) == text)
    except yaml.YAMLError:
        return False


def has_encrypted(text: str) -> bool:
    return "ENC[AES256_GCM," in text


def yaml_scalar(value: Any) -> str:
    """A value as a YAML flow scalar that reads back as the same type and text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, GoTime):
        return str(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return to_bytes(value).decode()  # type: ignore[union-attr]
    text = str(value)
    if _PLAIN.fullmatch(text) and resolve_plain(text) == text and _yaml11_str(text):
        return text  # as kustomize would print it
    text = json.dumps(text, ensure_ascii=False)
    # JSON leaves a few characters raw that YAML does not allow raw in a quoted scalar.
    return _YAML_UNSAFE.sub(lambda m: f"\\u{ord(m.group(0)):04x}", text)


def decrypt_output(text: str, replacements: Mapping[str, Any], *, what: str) -> str:
    """kustomize's output with the plaintext in place of every ENC[...] value."""
    if not has_encrypted(text):
        return text
    text = _COMMENT_ITEM.sub("", text)
    text = _SOPS_BLOCK.sub("", text)
    unknown: list[str] = []

    def put(m: re.Match[str]) -> str:
        value = replacements.get(m.group(2))
        if value is None:
            unknown.append(m.group(2))
            return m.group(0)
        if isinstance(value, Comment):
            return '""'
        return yaml_scalar(value)

    out = _ENC.sub(put, text)
    if unknown or has_encrypted(out):
        raise SecretsError(
            f"{what} renders {len(unknown) or 'some'} SOPS-encrypted value(s) that no "
            "encrypted file it reads explains (for example a value copied into a "
            "kustomization by hand, or a file of another cluster), so they cannot be "
            "checked against a MAC and decrypted.",
            hint="Reference the encrypted file itself from the kustomization (resources, "
            "patches or a secretGenerator), or remove the copied value.")
    return out
