"""SOPS's values and MAC: `ENC[AES256_GCM,...]` values decrypted with the data key (the
path of the value as additional data), and the MAC over every value (or, with
`mac_only_encrypted`, over the encrypted ones) checked, as sops.Tree.Decrypt does.

The walk visits values in document order; a sequence item keeps the path of its sequence,
as in SOPS (`walkSlice`). A value is decrypted when it is an ENC[...] string; a value the
file's rules (`encrypted_regex`, `unencrypted_suffix`, ...) say must be encrypted but is
not is refused, like `sops decrypt` refuses it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from gitops.sops.formats import Comment, to_bytes
from gitops.sops.goyaml import GoTime, go_time

ENC_VALUE = re.compile(r"ENC\[AES256_GCM,data:(.+),iv:(.+),tag:(.+),type:(.+)\]")
# sops.MACOnlyEncryptedInitialization: a MAC over only the encrypted values starts with
# these bytes, so that it never equals the MAC of the same file without the option.
MAC_ONLY_ENCRYPTED_INIT = bytes([
    0x8A, 0x3F, 0xD2, 0xAD, 0x54, 0xCE, 0x66, 0x52, 0x7B, 0x10, 0x34, 0xF3, 0xD1, 0x47, 0xBE,
    0x0B, 0x0B, 0x97, 0x5B, 0x3B, 0xF4, 0x4F, 0x72, 0xC6, 0xFD, 0xAD, 0xEC, 0x81, 0x76, 0xF2,
    0x7D, 0x69])
_TRUE = ("1", "t", "T", "TRUE", "true", "True")
_FALSE = ("0", "f", "F", "FALSE", "false", "False")
_INT = re.compile(r"[+-]?[0-9]+")


class ValueError_(Exception):
    """A value cannot be decrypted (wrong key, tampered value) or has an unknown type."""


def is_encrypted_value(v: Any) -> bool:
    return isinstance(v, str) and ENC_VALUE.match(v) is not None


def _b64(s: str) -> bytes:
    try:
        return base64.b64decode(s, validate=True)
    except (binascii.Error, ValueError) as e:
        raise ValueError_("invalid base64 in an encrypted value") from e


def decrypt_value(text: str, key: bytes, additional_data: str) -> Any:
    """An ENC[...] value's plaintext, typed as SOPS types it (aes.Cipher.Decrypt)."""
    if text == "":
        return ""
    m = ENC_VALUE.match(text)
    if m is None:
        raise ValueError_("not an encrypted value")
    data, iv, tag, kind = _b64(m.group(1)), _b64(m.group(2)), _b64(m.group(3)), m.group(4)
    try:
        raw = AESGCM(key).decrypt(iv, data + tag, additional_data.encode("utf-8",
                                                                         "surrogateescape"))
    except (InvalidTag, ValueError) as e:
        raise ValueError_("does not authenticate (a wrong data key or a tampered value)") from e
    return typed(raw, kind)


def typed(raw: bytes, kind: str) -> Any:
    text = raw.decode("utf-8", "surrogateescape")
    if kind == "str":
        return text
    if kind == "int":
        if not _INT.fullmatch(text):
            raise ValueError_(f"invalid int value {kind}")
        return int(text)
    if kind == "float":
        try:
            return float(text)
        except ValueError as e:
            raise ValueError_("invalid float value") from e
    if kind == "bool":
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ValueError_("invalid bool value")
    if kind == "bytes":
        return text
    if kind == "time":
        t = go_time(text)
        return t if t is not None else GoTime(text)
    if kind == "comment":
        return Comment(text)
    raise ValueError_(f"unknown value type {kind!r}")


@dataclass(frozen=True)
class Rules:
    """Which values a file's metadata says are encrypted (sops.Tree.shouldBeEncrypted, for
    the path rules; the comment rules cannot be checked on a tree without comments)."""

    unencrypted_suffix: str = ""
    encrypted_suffix: str = ""
    unencrypted_regex: str = ""
    encrypted_regex: str = ""
    by_comments: bool = False  # encrypted_comment_regex or unencrypted_comment_regex set
    mac_only_encrypted: bool = False

    @property
    def selective(self) -> bool:
        """The file names the values to encrypt (`--encrypted-regex ...`), rather than SOPS's
        default of encrypting every value."""
        return bool(self.encrypted_suffix or self.unencrypted_regex or self.encrypted_regex
                    or self.by_comments
                    or self.unencrypted_suffix not in ("", "_unencrypted"))

    def should_be_encrypted(self, path: tuple[str, ...]) -> bool | None:
        """True/False, or None when only the comments could tell."""
        if self.by_comments:
            return None
        enc = True
        if self.unencrypted_suffix and any(p.endswith(self.unencrypted_suffix) for p in path):
            enc = False
        if self.encrypted_suffix:
            enc = any(p.endswith(self.encrypted_suffix) for p in path)
        if self.unencrypted_regex and any(re.search(self.unencrypted_regex, p) for p in path):
            enc = False
        if self.encrypted_regex:
            enc = any(re.search(self.encrypted_regex, p) for p in path)
        return enc


@dataclass
class Walk:
    """One pass over a file's documents: the decrypted documents, the MAC of the
    plaintext, and each decrypted value with its path (for the redactor) and its ciphertext
    (to put the plaintext back into kustomize's output of a whole encrypted manifest).

    `open_value(ciphertext, path)` gives a value's plaintext: AES-GCM with the data key, or
    the value the `sops` program decrypted at the same place."""

    rules: Rules
    open_value: Callable[[str, tuple[str, ...]], Any]
    decrypted: list[tuple[int, tuple[str, ...], Any]] = field(default_factory=list)
    replacements: dict[str, Any] = field(default_factory=dict)

    def run(self, documents: tuple[Any, ...]) -> tuple[tuple[Any, ...], str]:
        h = hashlib.sha512()
        if self.rules.mac_only_encrypted:
            h.update(MAC_ONLY_ENCRYPTED_INIT)
        out = []
        for i, doc in enumerate(documents):
            out.append(self._node(doc, (), i, h))
        return tuple(out), h.hexdigest().upper()

    def _node(self, node: Any, path: tuple[str, ...], doc: int, h: Any) -> Any:
        if isinstance(node, dict):
            return {k: self._node(v, (*path, str(k)), doc, h) for k, v in node.items()}
        if isinstance(node, list):
            items = [self._node(x, path, doc, h) for x in node]
            return [x for x in items if not isinstance(x, Comment)]
        if node is None:
            return None  # SOPS neither decrypts nor hashes a null
        rule = self.rules.should_be_encrypted(path)
        encrypted = is_encrypted_value(node) if rule is None else rule
        if encrypted and node != "":
            if not is_encrypted_value(node):
                raise ValueError_(f"the value at {':'.join(path)} is not encrypted, though "
                                  "the file's rules say it must be")
            value = self.open_value(node, path)
            if not isinstance(value, Comment):
                self.decrypted.append((doc, path, value))
                self.replacements[node] = value
        else:
            value = node
        if encrypted or not self.rules.mac_only_encrypted:
            b = to_bytes(value)
            if b is not None:
                h.update(b)
        return value


def mac_matches(stored: str, computed: str) -> bool:
    return hmac.compare_digest(stored.encode(), computed.encode())


def iter_leaves(node: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    if isinstance(node, dict):
        for k, v in node.items():
            yield from iter_leaves(v, (*path, str(k)))
    elif isinstance(node, list):
        for x in node:
            yield from iter_leaves(x, path)
    else:
        yield path, node
