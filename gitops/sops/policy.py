"""`secrets: {require: sops}` in stack.yaml: Secrets in git must be SOPS-encrypted.

A clear-text secret is, among the files a cluster's kustomizations read:
- a Secret manifest (in `resources`, or a patch) with a non-empty `data`/`stringData` value,
  in a file that is not SOPS-encrypted;
- a `secretGenerator` with non-empty `literals` (the kustomization holds them in clear);
- a `secretGenerator` `envs`/`env`/`files` source that is not SOPS-encrypted.

`render` warns about each; `plan` fails (exit 2) when the head commit adds one that the base
did not have, so a pull request that commits a secret in clear fails its check. Paths that
match `secrets.exclude` (globs from the repo root, e.g. `vendor/**` for an upstream's demo
Secrets) are accepted.
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gitops.errors import YamlError
from gitops.kustomize import find_kustomization, is_remote

# YAML libraries are imported inside the functions that parse: a cached render reads the
# policy of a stack.yaml without a `secrets:` key without loading them.

STACK_KEY = "secrets"


@dataclass(frozen=True)
class SecretsPolicy:
    require_sops: bool = False
    exclude: tuple[str, ...] = ()

    def excluded(self, rel: str) -> bool:
        """Whether a file (from the repo root) matches an `exclude` glob (`*` also matches
        across folders: `vendor/*` is everything under vendor/)."""
        rel = rel.replace(os.sep, "/")
        return any(fnmatch.fnmatchcase(rel, g) for g in self.exclude)

    @classmethod
    def from_data(cls, data: Mapping[str, Any] | None) -> SecretsPolicy:
        cfg = (data or {}).get(STACK_KEY) or {}
        if not isinstance(cfg, dict):
            return cls()
        return cls(require_sops=cfg.get("require") == "sops",
                   exclude=tuple(str(g) for g in cfg.get("exclude") or ()))

    def union(self, other: SecretsPolicy) -> SecretsPolicy:
        """The policy of a plan: required if either commit requires it, with only the
        exclusions both agree on (a pull request cannot exclude its own clear-text
        Secret, nor drop the requirement for itself)."""
        if self.require_sops and other.require_sops:
            return SecretsPolicy(True, tuple(g for g in self.exclude if g in other.exclude))
        if self.require_sops or other.require_sops:
            return self if self.require_sops else other
        return SecretsPolicy()


def load_policy(root: Path) -> SecretsPolicy:
    """The policy of the stack.yaml at `root` (none: nothing required)."""
    from gitops.stack import STACK_FILE

    path = root / STACK_FILE
    try:
        text = path.read_bytes()
    except OSError:
        return SecretsPolicy()
    if f"{STACK_KEY}:".encode() not in text:
        return SecretsPolicy()  # no secrets: key, and no YAML parse to say so
    from gitops.schema import load_config
    from gitops.stack import STACK_SPEC

    return SecretsPolicy.from_data(load_config(path, STACK_SPEC))


def policy_of(root: Path) -> SecretsPolicy:
    """load_policy, with an invalid stack.yaml (an old commit's) read as no policy."""
    from gitops.errors import UserError

    try:
        return load_policy(root)
    except UserError:
        return SecretsPolicy()


def policy_in_commit(repo: Any, commit: str, path: str) -> SecretsPolicy:
    """The policy of the stack.yaml at `path` in a commit of a pygit2 repository (none when
    it has none or cannot be read there)."""
    from gitops.yamlio import load_safe

    try:
        blob = repo.revparse_single(f"{commit}:{path}")
        raw = blob.read_raw()
        if f"{STACK_KEY}:".encode() not in raw:
            return SecretsPolicy()
        data = load_safe(raw.decode("utf-8"), path=path)
    except (KeyError, ValueError, AttributeError, UnicodeDecodeError, YamlError):
        return SecretsPolicy()
    return SecretsPolicy.from_data(data if isinstance(data, dict) else None)


@dataclass(frozen=True, order=True)
class ClearText:
    """A secret committed in clear: the file (from the repo root) and what it holds."""

    file: str
    what: str  # 'Secret db', 'secretGenerator app-env (literals)', ...

    def __str__(self) -> str:
        return f"{self.file} ({self.what})"


# A Secret document has `kind: Secret` at its top level (YAML) or a "kind": "Secret" pair
# (JSON): only such documents are parsed (Kubeflow's CRDs mention SecretKeySelector a lot).
_SECRET_KIND = re.compile(
    rb"^kind:[ \t]*[\"']?Secret[\"']?[ \t]*(?:#.*)?$" rb'|"kind"\s*:\s*"Secret"', re.M)
_DOC_SEP = re.compile(rb"^---[ \t]*(?:#.*)?$", re.M)
_MAYBE_SECRET = re.compile(rb"kind\"?[ \t]*:[ \t]*[\"']?Secret\b")  # unanchored: fast


def _docs(data: bytes, name: str) -> list[Any]:
    """The documents of a file that declare `kind: Secret` (parsing only those: a release
    file of 5 MB holds one Secret among hundreds of CRD pages)."""
    from gitops.yamlio import load_all_safe

    out: list[Any] = []
    for part in _DOC_SEP.split(data):
        if not _SECRET_KIND.search(part):
            continue
        try:
            out += load_all_safe(part.decode("utf-8"), path=name)
        except (UnicodeDecodeError, YamlError):
            continue  # kustomize reports a broken file
    return out


def _secrets_in(data: bytes, name: str) -> list[str]:
    if not _MAYBE_SECRET.search(data) or not _SECRET_KIND.search(data):
        return []
    out = []
    for doc in _docs(data, name):
        if not (isinstance(doc, dict) and doc.get("kind") == "Secret"
                and str(doc.get("apiVersion") or "v1") == "v1"):
            continue
        values = [v for fld in ("data", "stringData")
                  for v in ((doc.get(fld) or {}).values() if isinstance(doc.get(fld), dict)
                            else ())]
        if any(v not in (None, "") for v in values):
            meta = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
            out.append(f"Secret {(meta or {}).get('name') or '(unnamed)'}")
    return out


def _generator_sources(gen: Mapping[str, Any]) -> Iterable[str]:
    for f in gen.get("files") or ():
        if isinstance(f, str):
            yield f.split("=", 1)[1] if "=" in f else f
    for f in [*(gen.get("envs") or ()), gen.get("env")]:
        if isinstance(f, str):
            yield f


def clear_text_secrets(directories: Iterable[Path], read: Callable[[Path], bytes | None],
                       base: Path, policy: SecretsPolicy) -> tuple[ClearText, ...]:
    """The clear-text secrets the kustomizations of `directories` read (see the module
    docstring), except those `policy` excludes; `read` gives a file's content."""
    from gitops.sops.formats import may_be_sops
    from gitops.yamlio import load_safe

    found: set[ClearText] = set()

    def add(path: Path, what: str) -> None:
        rel = os.path.relpath(path, base)
        if not policy.excluded(rel):
            found.add(ClearText(rel, what))

    for d in directories:
        kfile = find_kustomization(d)
        if kfile is None:
            continue
        try:
            doc = load_safe(kfile.read_text(encoding="utf-8"), path=kfile)
        except (OSError, UnicodeDecodeError, YamlError):
            continue
        if not isinstance(doc, dict):
            continue
        for gen in doc.get("secretGenerator") or ():
            if not isinstance(gen, dict):
                continue
            name = gen.get("name") or "(unnamed)"
            if any(isinstance(lit, str) and "=" in lit and lit.split("=", 1)[1]
                   for lit in gen.get("literals") or ()):
                add(kfile, f"secretGenerator {name}: literals")
            for src in _generator_sources(gen):
                p = Path(os.path.normpath(d / src))
                data = read(p)
                if data and not may_be_sops(data):
                    add(p, f"secretGenerator {name}")
        paths = [e for e in doc.get("resources") or () if isinstance(e, str)]
        paths += [e for e in doc.get("patchesStrategicMerge") or () if isinstance(e, str)]
        paths += [e["path"] for e in doc.get("patches") or ()
                  if isinstance(e, dict) and isinstance(e.get("path"), str)]
        for ref in paths:
            if "\n" in ref or is_remote(ref, d):
                continue
            p = Path(os.path.normpath(d / ref))
            data = read(p)
            if data and not may_be_sops(data):
                for what in _secrets_in(data, str(p)):
                    add(p, what)
    return tuple(sorted(found))
