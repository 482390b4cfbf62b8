"""The content-addressed render cache: $STACKCTL_CACHE/render/<k[:2]>/<key>.render.

The key is a sha256 over every input file of a render (sorted relative path and content),
the kustomize version and its flags, so an entry can never be stale: any change to what
kustomize reads gives another key. Entries hold the normalised text and the index of its
objects, never parsed bodies. The folder is safe to delete at any time.

Nothing decrypted is stored in clear. The entry of a render that reads SOPS files is
flagged (`sops`): a lookup that does not say it knows (the cached path that skips the walk)
misses it, so the render walks, finds and decrypts its SOPS files (their MACs checked) and
only then loads it. When those files are read only as whole Secret manifests, the entry is
kustomize's output with the ciphertext (the plaintext goes in after the cache). When
kustomize read decrypted files (generator sources, patches), the entry holds decrypted
values and is sealed (AES-256-GCM) with a key derived from the files' SOPS data keys
(`seal`), so only someone who can decrypt the files can read it.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gitops.paths import cache_dir

FORMAT = 1  # bump when the entry layout or the normalisation changes


def cache_root() -> Path:
    return cache_dir() / "render"


def read_inputs(files: Sequence[tuple[str, Path]]) -> list[tuple[str, bytes | None]]:
    """(relative path, content) of each input file; None for one that cannot be read (a
    dangling symlink): its absence is part of the key too."""
    out: list[tuple[str, bytes | None]] = []
    for rel, path in files:
        try:
            out.append((rel, path.read_bytes()))
        except OSError:
            out.append((rel, None))
    return out


def cache_key(contents: Sequence[tuple[str, bytes | None]], *, version: str,
              flags: Sequence[str]) -> str:
    h = hashlib.sha256()
    h.update(f"stackctl-render/{FORMAT}\0{version}\0{' '.join(flags)}\0".encode())
    for rel, data in sorted(contents, key=lambda c: c[0]):
        h.update(rel.encode("utf-8", "surrogateescape") + b"\0")
        if data is None:
            h.update(b"-\0")
        else:
            h.update(f"{len(data)}\0".encode())
            h.update(data)
    return h.hexdigest()


@dataclass(frozen=True)
class Entry:
    """A cached render: the objects' normalised text (no header) and, per object,
    (apiVersion, group, kind, namespace, name, start, end) offsets into it."""

    kustomize_version: str
    text: str
    index: tuple[tuple[str, str, str, str, str, int, int], ...]
    warnings: tuple[str, ...]


def _path(key: str) -> Path:
    return cache_root() / key[:2] / f"{key}.render"


# An entry is one file: a JSON line (format, key, version, warnings, index), then the text
# as it is, so that neither a store nor a load escapes or scans megabytes of YAML.


def _open_sealed(key: str, seal: bytes) -> tuple[dict[str, Any], str] | None:
    """The meta line and text of a sealed entry: a JSON line (format, key, nonce), then the
    base64 of AES-256-GCM(meta line + text) with the cache key as additional data."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    try:
        with _path(key).open("rb") as f:
            outer = json.loads(f.readline())
            body = base64.b64decode(f.read(), validate=True)
        if outer.get("format") != FORMAT or outer.get("key") != key or not outer.get("sealed"):
            return None
        plain = AESGCM(seal).decrypt(base64.b64decode(outer["nonce"]), body, key.encode())
    except (OSError, ValueError, KeyError, TypeError, AttributeError, binascii.Error,
            InvalidTag):
        return None  # absent, torn, or sealed with other files' keys: a miss
    head, _, text = plain.decode("utf-8").partition("\n")
    return json.loads(head), text


def load(key: str, *, sops: bool = False, seal: bytes | None = None) -> Entry | None:
    """The entry of `key`. `sops`: the caller has decrypted the render's SOPS files (an
    entry flagged sops is a miss otherwise); `seal`: the key of a sealed entry."""
    path = _path(key)
    try:
        if seal is not None:
            opened = _open_sealed(key, seal)
            if opened is None:
                return None
            meta, text = opened
        else:
            with path.open("r", encoding="utf-8", newline="") as f:
                meta = json.loads(f.readline())
                text = f.read()
        if meta.get("format") != FORMAT or meta.get("key") != key or meta.get("sealed"):
            return None
        if bool(meta.get("sops")) != sops:
            return None  # a render of SOPS files is served only after they are decrypted
        if len(text) != meta["length"]:
            return None  # torn
        return Entry(
            kustomize_version=str(meta["kustomize"]),
            text=text,
            index=tuple((a, g, k, ns, n, int(s), int(e))
                        for a, g, k, ns, n, s, e in meta["objects"]),
            warnings=tuple(str(w) for w in meta["warnings"]),
        )
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        # A torn or foreign file is a miss; the next store replaces it.
        return None


def store(key: str, entry: Entry, *, sops: bool = False, seal: bytes | None = None) -> None:
    """Write an entry atomically (flagged `sops`, sealed with `seal` when given); a cache
    that cannot be written is only a lost speed-up."""
    path = _path(key)
    meta: dict[str, Any] = {
        "format": FORMAT, "key": key, "kustomize": entry.kustomize_version,
        "warnings": list(entry.warnings), "objects": [list(i) for i in entry.index],
        "length": len(entry.text)}
    if sops:
        meta["sops"] = True
    import tempfile

    head = json.dumps(meta, ensure_ascii=False, separators=(",", ":")) + "\n"
    if seal is not None:
        import secrets

        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        nonce = secrets.token_bytes(12)
        body = AESGCM(seal).encrypt(nonce, (head + entry.text).encode("utf-8"), key.encode())
        outer = {"format": FORMAT, "key": key, "sealed": True,
                 "nonce": base64.b64encode(nonce).decode()}
        data = (json.dumps(outer) + "\n").encode() + base64.b64encode(body)
    else:
        data = (head + entry.text).encode("utf-8")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".render")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            Path(tmp).replace(path)
        except BaseException:
            with contextlib.suppress(OSError):
                Path(tmp).unlink()
            raise
    except OSError:
        return
