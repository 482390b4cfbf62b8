"""Shamir's secret sharing over GF(2^8), as SOPS uses it for key groups (its shamir package,
taken from HashiCorp Vault): each group decrypts one part, the last byte of a part is its x
coordinate, and `shamir_threshold` parts give the data key by Lagrange interpolation at 0."""

from __future__ import annotations

from collections.abc import Sequence


def _mul(a: int, b: int) -> int:
    """Multiplication in GF(2^8) modulo x^8 + x^4 + x^3 + x + 1 (AES's field)."""
    out = 0
    while b:
        if b & 1:
            out ^= a
        a = ((a << 1) ^ 0x11B) if a & 0x80 else a << 1
        b >>= 1
    return out


def _inv(a: int) -> int:
    out = 1
    for _ in range(254):  # a^254 = a^-1 in GF(2^8)
        out = _mul(out, a)
    return out


def combine(parts: Sequence[bytes]) -> bytes:
    if len(parts) < 2:
        raise ValueError("fewer than two parts cannot give the secret")
    size = len(parts[0])
    if size < 2 or any(len(p) != size for p in parts):
        raise ValueError("parts of different lengths")
    xs = [p[-1] for p in parts]
    if len(set(xs)) != len(xs):
        raise ValueError("duplicate part")
    secret = bytearray()
    for i in range(size - 1):
        acc = 0
        for j, p in enumerate(parts):
            basis = 1
            for k, xk in enumerate(xs):
                if k != j:
                    basis = _mul(basis, _mul(xk, _inv(xs[j] ^ xk)))
            acc ^= _mul(p[i], basis)
        secret.append(acc)
    return bytes(secret)
