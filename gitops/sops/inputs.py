"""The SOPS files a render reads, found in the kustomization graph and decrypted.

Only files kustomize actually reads count (a `resources` entry, a patch, a generator's
`envs`/`files`, a transformer config): an encrypted file that merely lies in a folder of the
graph, say for another cluster and another key, is not decrypted and needs no key.

Two ways into kustomize (docs/secrets.md):
- after the build: a whole Secret manifest listed in `resources` whose identity (apiVersion,
  kind, name, namespace) is in clear, as `sops --encrypted-regex '^(data|stringData)$'`
  writes it. kustomize reads it encrypted and passes the ENC[...] values through; stackctl
  puts the plaintext into kustomize's output (gitops.sops.output). As Flux does, nothing
  decrypted is written anywhere.
- before the build: everything else (generator sources, patches, a manifest whose name is
  encrypted). kustomize can only read files, so these are written decrypted into a private
  folder on a RAM-backed filesystem, removed when the build ends (gitops.sops.mirror).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from gitops.errors import YamlError
from gitops.kustomize import _refs, find_kustomization, is_remote
from gitops.sops.decrypt import Decrypted, decrypt_file
from gitops.sops.formats import may_be_sops
from gitops.yamlio import load_safe

Role = Literal["resource", "source"]
# Fields whose entries are whole manifests; every other path field is read otherwise.
_RESOURCE_FIELDS = ("resources", "crds")
_IDENTITY = (("apiVersion",), ("kind",), ("metadata", "name"), ("metadata", "namespace"),
             ("metadata", "generateName"))


@dataclass(frozen=True)
class SecretInput:
    rel: str  # as messages name it (relative to the repo)
    path: Path  # where the render reads it
    role: Role
    decrypted: Decrypted

    @property
    def after_build(self) -> bool:
        """Read by kustomize encrypted, decrypted in its output: a whole v1 Secret manifest
        with its identity in clear."""
        d = self.decrypted
        if self.role != "resource" or d.format not in ("yaml", "json") or not d.documents:
            return False
        if any(path in _IDENTITY for _, path, _ in d.values):
            return False
        return all(isinstance(doc, dict) and doc.get("kind") == "Secret"
                   and doc.get("apiVersion") == "v1" for doc in d.documents)


@dataclass(frozen=True)
class SecretInputs:
    files: tuple[SecretInput, ...]

    @property
    def before_build(self) -> tuple[SecretInput, ...]:
        return tuple(f for f in self.files if not f.after_build)

    def secrets(self) -> frozenset[str]:
        return frozenset(v for f in self.files for v in f.decrypted.secret_values())

    def replacements(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in self.files:
            out.update(f.decrypted.replacements)
        return out

    def names(self) -> tuple[str, ...]:
        return tuple(f.rel for f in self.files)

    def seal_key(self, cache_key: str) -> bytes | None:
        """A key for a cache entry holding decrypted values: derived from the data keys of
        every file decrypted, so only someone who can decrypt them can read the entry. None
        when a file was decrypted by the sops program (its data key is not known)."""
        keys = []
        for f in sorted(self.files, key=lambda f: f.rel):
            if f.decrypted.data_key is None:
                return None
            keys.append(hashlib.sha256(f.rel.encode()).digest() + f.decrypted.data_key)
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=cache_key.encode(),
                    info=b"stackctl render cache entry").derive(b"".join(keys))


def referenced_files(directories: Iterable[Path]) -> dict[Path, Role]:
    """Every local file the kustomizations of `directories` read, with its role (a file
    listed both as a resource and as a source counts as a source)."""
    out: dict[Path, Role] = {}
    for d in directories:
        kfile = find_kustomization(d)
        if kfile is None:
            continue
        try:
            doc = load_safe(kfile.read_text(encoding="utf-8"), path=kfile)
        except (OSError, UnicodeDecodeError, YamlError):
            continue  # kustomize reports it
        if not isinstance(doc, dict):
            continue
        for fld, ref in _refs(doc):
            if is_remote(ref, d):
                continue
            p = Path(os.path.normpath(d / ref))
            role: Role = "resource" if fld in _RESOURCE_FIELDS else "source"
            if out.get(p) != "source":
                out[p] = role
    return out


def find_secret_inputs(directories: Iterable[Path], read: Callable[[Path], bytes | None],
                       base: Path) -> SecretInputs | None:
    """The SOPS files among the files the kustomizations read, decrypted (MAC checked);
    None when there are none. `read` gives a file's content (None: unreadable)."""
    found: list[SecretInput] = []
    for path, role in sorted(referenced_files(directories).items()):
        data = read(path)
        if data is None or not may_be_sops(data):
            continue
        rel = os.path.relpath(path, base)
        d = decrypt_file(data, name=rel, path=path)
        if d is not None:
            found.append(SecretInput(rel=rel, path=path, role=role, decrypted=d))
    return SecretInputs(tuple(found)) if found else None
