"""age (https://age-encryption.org/v1), the part SOPS needs: X25519 identities and the
decryption of a small armored file (SOPS's data key, encrypted to each age recipient).

Written from the age specification (C2SP age.md) and checked against files the real `sops`
and age wrote: an X25519 stanza's file key is unwrapped with ChaCha20-Poly1305 under
HKDF-SHA256(X25519(identity, share), salt = share || our public key,
"age-encryption.org/v1/X25519"); the header MAC is HMAC-SHA256 under HKDF(file key,
"header"); the payload is STREAM (ChaCha20-Poly1305, 64 KiB chunks, 11-byte counter and a
last-chunk flag) under HKDF(file key, salt = 16-byte nonce, "payload").

Other stanza types (ssh-ed25519, ssh-rsa, plugins, post-quantum hybrids, scrypt) are not
handled here: a file whose only usable stanza is one of those goes to the `sops` program.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

INTRO = b"age-encryption.org/v1\n"
X25519_LABEL = b"age-encryption.org/v1/X25519"
ARMOR_BEGIN = "-----BEGIN AGE ENCRYPTED FILE-----"
ARMOR_END = "-----END AGE ENCRYPTED FILE-----"
CHUNK = 64 * 1024
SECRET_HRP = "age-secret-key-"
PUBLIC_HRP = "age"


class AgeError(Exception):
    """A malformed identity or age file (the message names what is wrong, never a key)."""


class NoIdentityMatched(AgeError):
    """None of the identities given can open the file (it was encrypted to others)."""


# ---------------------------------------------------------------------------------------
# Bech32 (BIP 173), without the 90-character limit: age's encoding of keys.

_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_GEN = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)


def _polymod(values: Iterable[int]) -> int:
    chk = 1
    for v in values:
        top = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ v
        for i in range(5):
            chk ^= _GEN[i] if (top >> i) & 1 else 0
    return chk


def _hrp_expand(hrp: str) -> list[int]:
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def _convertbits(data: Iterable[int], frombits: int, tobits: int, pad: bool) -> bytes:
    acc = bits = 0
    out = bytearray()
    maxv = (1 << tobits) - 1
    for v in data:
        acc = (acc << frombits) | v
        bits += frombits
        while bits >= tobits:
            bits -= tobits
            out.append((acc >> bits) & maxv)
    if pad:
        if bits:
            out.append((acc << (tobits - bits)) & maxv)
    elif bits >= frombits or (acc << (tobits - bits)) & maxv:
        raise AgeError("invalid padding in a bech32 string")
    return bytes(out)


def bech32_decode(text: str) -> tuple[str, bytes]:
    """(human-readable part, data) of a bech32 string; age keys are all upper or all lower
    case, like every bech32 string."""
    if text.lower() != text and text.upper() != text:
        raise AgeError("mixed case in a bech32 string")
    s = text.lower()
    pos = s.rfind("1")
    if pos < 1 or pos + 7 > len(s):
        raise AgeError("not a bech32 string")
    hrp, rest = s[:pos], s[pos + 1:]
    try:
        values = [_CHARSET.index(c) for c in rest]
    except ValueError:
        raise AgeError("invalid character in a bech32 string") from None
    if _polymod(_hrp_expand(hrp) + values) != 1:
        raise AgeError("bad bech32 checksum")
    return hrp, _convertbits(values[:-6], 5, 8, pad=False)


def bech32_encode(hrp: str, data: bytes) -> str:
    values = list(_convertbits(data, 8, 5, pad=True))
    poly = _polymod([*_hrp_expand(hrp), *values, 0, 0, 0, 0, 0, 0]) ^ 1
    checksum = [(poly >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(_CHARSET[v] for v in values + checksum)


# ---------------------------------------------------------------------------------------
# Identities


@dataclass(frozen=True)
class Identity:
    """An age X25519 identity (`AGE-SECRET-KEY-1...`). Its repr never shows the key."""

    secret: bytes = field(repr=False)
    recipient: str  # age1...: what SOPS records in the file's metadata

    @classmethod
    def parse(cls, text: str) -> Identity:
        hrp, data = bech32_decode(text.strip())
        if hrp != SECRET_HRP or len(data) != 32:
            raise AgeError("not an age X25519 secret key (AGE-SECRET-KEY-1...)")
        public = X25519PrivateKey.from_private_bytes(data).public_key().public_bytes_raw()
        return cls(secret=data, recipient=bech32_encode(PUBLIC_HRP, public))

    @classmethod
    def generate(cls) -> Identity:
        key = X25519PrivateKey.generate()
        return cls.parse(bech32_encode(SECRET_HRP, key.private_bytes_raw()).upper())

    def encoded(self) -> str:
        """The identity as age writes it: AGE-SECRET-KEY-1... (upper case)."""
        return bech32_encode(SECRET_HRP, self.secret).upper()

    def unwrap(self, share: bytes, body: bytes) -> bytes | None:
        """The file key of an X25519 stanza, or None when the stanza is not for us."""
        if len(share) != 32 or len(body) != 32:
            raise AgeError("invalid X25519 stanza")
        ours = X25519PrivateKey.from_private_bytes(self.secret)
        try:
            shared = ours.exchange(X25519PublicKey.from_public_bytes(share))
        except ValueError as e:  # a low-order point: the all-zero shared secret
            raise AgeError("invalid X25519 stanza (low-order share)") from e
        salt = share + ours.public_key().public_bytes_raw()
        wrap = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt,
                    info=X25519_LABEL).derive(shared)
        try:
            return ChaCha20Poly1305(wrap).decrypt(b"\0" * 12, body, None)
        except InvalidTag:
            return None


_IDENTITY = re.compile(r"AGE-SECRET-KEY-1[0-9A-Z]+")


def parse_identities(text: str, *, several_per_line: bool = False) -> tuple[list[Identity],
                                                                             list[str]]:
    """The X25519 identities of an identities file (one per line; `#` comments and blank
    lines skipped; with `several_per_line`, whitespace-separated as in $SOPS_AGE_KEY), and
    the kinds of the other entries found (plugin, post-quantum), which only the `sops`
    program can use."""
    ids: list[Identity] = []
    others: list[str] = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        words = line.split() if several_per_line else [line.strip()]
        for w in words:
            if w.startswith("AGE-SECRET-KEY-PQ-1"):
                others.append("post-quantum age identity")
            elif w.startswith("AGE-PLUGIN-"):
                others.append("age plugin identity " + w.split("-1", 1)[0])
            elif _IDENTITY.fullmatch(w):
                try:
                    ids.append(Identity.parse(w))
                except AgeError as e:
                    raise AgeError(f"line {n}: {e}") from None
            else:
                raise AgeError(f"line {n} is not an age identity")
    return ids, others


# ---------------------------------------------------------------------------------------
# Files


@dataclass(frozen=True)
class Stanza:
    type: str
    args: tuple[str, ...]
    body: bytes


def _b64raw(s: bytes) -> bytes:
    """age's base64: standard alphabet, no padding, canonical (no stray bits)."""
    if b"=" in s or b"\r" in s or b"\n" in s:
        raise AgeError("non-canonical base64 in the age header")
    try:
        out = base64.b64decode(s + b"=" * (-len(s) % 4), validate=True)
    except (binascii.Error, ValueError) as e:
        raise AgeError("invalid base64 in the age header") from e
    if base64.b64encode(out).rstrip(b"=") != s:
        raise AgeError("non-canonical base64 in the age header")
    return out


def dearmor(text: str) -> bytes:
    """The binary age file inside ASCII armor (what SOPS stores in `enc`)."""
    lines = [ln.strip() for ln in text.strip().splitlines()]
    if len(lines) < 2 or lines[0] != ARMOR_BEGIN or lines[-1] != ARMOR_END:
        raise AgeError("not an armored age file")
    try:
        return base64.b64decode("".join(lines[1:-1]), validate=True)
    except (binascii.Error, ValueError) as e:
        raise AgeError("invalid base64 in the armored age file") from e


def parse_header(data: bytes) -> tuple[list[Stanza], bytes, bytes, bytes]:
    """(stanzas, header bytes covered by the MAC, MAC, payload)."""
    if not data.startswith(INTRO):
        raise AgeError("not an age file (no age-encryption.org/v1 intro)")
    pos = len(INTRO)
    stanzas: list[Stanza] = []
    while True:
        end = data.find(b"\n", pos)
        if end < 0:
            raise AgeError("truncated age header")
        line = data[pos:end]
        if line.startswith(b"--- "):
            mac = _b64raw(line[4:])
            if len(mac) != 32:
                raise AgeError("malformed age header MAC")
            return stanzas, data[:pos + 3], mac, data[end + 1:]
        if not line.startswith(b"-> "):
            raise AgeError("malformed age stanza")
        parts = line[3:].decode("ascii", "replace").split(" ")
        if not parts or not all(parts):
            raise AgeError("malformed age stanza arguments")
        pos = end + 1
        body = bytearray()
        while True:  # body lines of 64 columns; the first shorter one ends it
            end = data.find(b"\n", pos)
            if end < 0:
                raise AgeError("truncated age stanza")
            chunk = data[pos:end]
            pos = end + 1
            if len(chunk) > 64:
                raise AgeError("age stanza line too long")
            body += _b64raw(chunk)
            if len(chunk) < 64:
                break
        stanzas.append(Stanza(parts[0], tuple(parts[1:]), bytes(body)))


def _hkdf(key: bytes, salt: bytes | None, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(key)


def _payload(file_key: bytes, payload: bytes) -> bytes:
    if len(payload) < 16:
        raise AgeError("truncated age payload")
    aead = ChaCha20Poly1305(_hkdf(file_key, payload[:16], b"payload"))
    body = payload[16:]
    out = bytearray()
    counter = 0
    step = CHUNK + 16
    while True:
        chunk = body[:step]
        body = body[step:]
        last = not body
        if len(chunk) < 16 or (not last and len(chunk) != step):
            raise AgeError("truncated age payload")
        nonce = counter.to_bytes(11, "big") + (b"\x01" if last else b"\x00")
        try:
            out += aead.decrypt(nonce, chunk, None)
        except InvalidTag as e:
            raise AgeError("the age payload does not authenticate (tampered or truncated)"
                           ) from e
        if last:
            if len(chunk) == 16 and counter > 0:
                raise AgeError("empty last chunk in the age payload")
            return bytes(out)
        counter += 1


def stanza_kinds(data: bytes) -> list[str]:
    """The stanza types of an age file (X25519, ssh-ed25519, piv-p256, ...)."""
    return [s.type for s in parse_header(data)[0]]


def decrypt(data: bytes, identities: Sequence[Identity]) -> bytes:
    """The plaintext of a binary age file, with the first identity that opens it.
    NoIdentityMatched when none does."""
    stanzas, header, mac, payload = parse_header(data)
    if any(s.type == "scrypt" for s in stanzas) and len(stanzas) != 1:
        raise AgeError("an scrypt stanza must be alone in an age file")
    for s in stanzas:
        if s.type != "X25519":
            continue
        if len(s.args) != 1:
            raise AgeError("invalid X25519 stanza")
        share = _b64raw(s.args[0].encode())
        for ident in identities:
            file_key = ident.unwrap(share, s.body)
            if file_key is None:
                continue
            if len(file_key) != 16:
                raise AgeError("invalid file key size in an X25519 stanza")
            expected = hmac.new(_hkdf(file_key, None, b"header"), header,
                                hashlib.sha256).digest()
            if not hmac.compare_digest(expected, mac):
                raise AgeError("the age header MAC does not match (tampered file)")
            return _payload(file_key, payload)
    raise NoIdentityMatched("no identity matches the file's recipients")
