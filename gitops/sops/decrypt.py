"""Decrypting one SOPS file in memory: the data key from the file's age recipients with the
user's age identities (natively), or through the `sops` program for every other kind of
master key; then every value, with the MAC checked.

    decrypt_file(data, name=..., path=...) -> Decrypted | None   (None: not a SOPS file)

Failures raise SecretsError (exit 2) with one paragraph: which file, the recipients it was
encrypted for, where stackctl looked for keys and what is missing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gitops.errors import SecretsError
from gitops.redact import DEFAULT_SENSITIVE_PATTERNS
from gitops.sops import age, formats, shamir
from gitops.sops.formats import Comment, Format
from gitops.sops.goyaml import FormatError
from gitops.sops.keys import KeyRing, key_ring
from gitops.sops.metadata import Metadata, MetadataError, parse_metadata
from gitops.sops.program import (
    HOW_TO_GET,
    ProgramFailed,
    decrypt_with_program,
    find_sops,
    looked_at,
)
from gitops.sops.tree import (
    ENC_VALUE,
    ValueError_,
    Walk,
    decrypt_value,
    iter_leaves,
    mac_matches,
)

DOCS = "docs/secrets.md"


@dataclass(frozen=True)
class Decrypted:
    """A decrypted file. Nothing here prints a value: reprs leave them out."""

    name: str  # the file as messages name it
    format: Format
    recipients: str
    opened_by: str  # 'age identity age1...' or 'the sops program'
    plaintext: bytes = field(repr=False)  # the file as `sops decrypt` prints it
    documents: tuple[Any, ...] = field(repr=False)
    values: tuple[tuple[int, tuple[str, ...], Any], ...] = field(repr=False)
    replacements: Mapping[str, Any] = field(repr=False)  # ENC[...] -> its plaintext
    data_key: bytes | None = field(repr=False)  # None when the sops program decrypted
    selective: bool = False  # the file's rules chose the values to encrypt

    def secret_values(self) -> frozenset[str]:
        """The decrypted values that are secrets (docs/secrets.md): every value of a dotenv,
        INI or binary file and of a YAML or JSON file that is not a Kubernetes object; in a
        Secret, the values of `data` and `stringData`; in another object, every encrypted
        value when the file's rules chose them (`--encrypted-regex`), else (SOPS encrypted
        it whole, names and all) the values of `data`, `stringData`, `binaryData`, of
        `value` keys (env vars) and of keys with a sensitive name. Never an object's
        apiVersion, kind or metadata."""
        out: set[str] = set()
        for i, path, value in self.values:
            if value is None or isinstance(value, bool) or value == "":
                continue
            doc = self.documents[i]
            if self.format in ("yaml", "json") and _is_object(doc):
                top = path[0] if path else ""
                if top in ("apiVersion", "kind", "metadata"):
                    continue
                if doc.get("kind") == "Secret" and top not in ("data", "stringData"):
                    continue
                if doc.get("kind") != "Secret" and not self.selective and not (
                        top in ("data", "stringData", "binaryData") or path[-1] == "value"
                        or _SENSITIVE.search(path[-1])):
                    continue
            out.add(formats.to_bytes(value).decode("utf-8", "surrogateescape")  # type: ignore[union-attr]
                    if not isinstance(value, str) else value)
        return frozenset(out)


_SENSITIVE = re.compile("|".join(DEFAULT_SENSITIVE_PATTERNS), re.IGNORECASE)


def _is_object(doc: Any) -> bool:
    return isinstance(doc, dict) and isinstance(doc.get("kind"), str) and "apiVersion" in doc


def read_sops(data: bytes, *, name: str, fmt: Format | None = None
              ) -> tuple[formats.Parsed, Metadata] | None:
    """The parsed file and its metadata when `data` is a SOPS file, else None."""
    fmt = fmt or formats.detect_format(name)
    if not formats.may_be_sops(data):
        return None
    try:
        parsed = formats.parse(data, fmt)
    except FormatError as e:
        raise SecretsError(
            f"{name} looks encrypted with SOPS but cannot be read as {fmt}: {e}.",
            hint=f"Check the file with 'sops decrypt {name}'; see {DOCS}.") from e
    if parsed.metadata is None:
        return None
    try:
        return parsed, parse_metadata(parsed.metadata)
    except MetadataError as e:
        raise SecretsError(f"{name} has invalid SOPS metadata: {e}.",
                           hint="Re-encrypt it with sops.") from e


def decrypt_file(data: bytes, *, name: str, path: Path | None = None, fmt: Format | None = None,
                 ring: KeyRing | None = None) -> Decrypted | None:
    """Decrypt a SOPS file held in `data` (`path`, its place on disk, is only given to the
    `sops` program when it is needed). None when `data` is not a SOPS file."""
    found = read_sops(data, name=name, fmt=fmt)
    if found is None:
        return None
    parsed, meta = found
    ring = ring or key_ring()
    key, by = _data_key(meta, ring, name)
    if key is not None:
        return _native(parsed, meta, key, name, by)
    program = find_sops()
    if program is None or path is None:
        raise _no_key(name, meta, ring, program_found=False)
    try:
        out = decrypt_with_program(program, path, parsed.format)
    except ProgramFailed as e:
        raise _no_key(name, meta, ring, program_found=True, detail=e.detail) from None
    return _from_program(parsed, meta, out, name)


def _data_key(meta: Metadata, ring: KeyRing, name: str) -> tuple[bytes | None, str]:
    """The data key from the age stanzas (with a Shamir combination when there are key
    groups), or (None, '') when the identities of the ring open too few groups."""
    parts: list[bytes] = []
    used: list[str] = []
    mine = ring.recipients()
    for group in meta.groups:
        for k in group:
            if k.kind != "age" or k.id not in mine:
                continue
            try:
                part = age.decrypt(age.dearmor(k.enc), ring.identities)
            except age.NoIdentityMatched:
                continue
            except age.AgeError as e:
                raise SecretsError(
                    f"the data key of {name}, encrypted for age {k.id}, cannot be decrypted: "
                    f"{e}.", hint="The file's metadata was damaged: restore the file from "
                    "git or re-encrypt it with sops.") from e
            parts.append(part)
            used.append(k.id)
            break
    if len(meta.groups) == 1:
        return (parts[0], f"age identity {used[0]}") if parts else (None, "")
    if len(parts) < meta.threshold:
        return None, ""
    try:
        return shamir.combine(parts[:meta.threshold]), "age identities " + ", ".join(used)
    except ValueError as e:
        raise SecretsError(f"the key groups of {name} do not combine: {e}.",
                           hint="Re-encrypt the file with sops.") from e


def _tampered(name: str, what: str) -> SecretsError:
    return SecretsError(
        f"{name} was modified after it was encrypted: {what}. stackctl refuses to render "
        "it (sops reports this as a MAC mismatch).",
        hint="Restore the file from git, or re-encrypt it from a trusted copy with 'sops "
        f"encrypt'; see {DOCS}.")


def _native(parsed: formats.Parsed, meta: Metadata, key: bytes, name: str,
            by: str) -> Decrypted:
    def open_value(text: str, path: tuple[str, ...]) -> Any:
        try:
            return decrypt_value(text, key, ":".join(path) + ":")
        except ValueError_ as e:
            where = ":".join(path) or "the top"
            raise _tampered(name, f"the value at {where} {e}") from None

    walk = Walk(rules=meta.rules, open_value=open_value)
    try:
        docs, mac = walk.run(parsed.documents)
        stored = decrypt_value(meta.mac, key, meta.lastmodified)
    except ValueError_ as e:
        raise _tampered(name, f"its MAC {e}") from None
    except FormatError as e:
        raise SecretsError(f"{name} holds a value SOPS cannot hold: {e}.",
                           hint="Re-encrypt it with sops.") from e
    if not isinstance(stored, str) or not mac_matches(stored, mac):
        raise _tampered(name, "its MAC does not match its values")
    return Decrypted(name=name, format=parsed.format, recipients=meta.recipients(),
                     opened_by=by, plaintext=formats.emit(parsed.format, docs),
                     documents=docs, values=tuple(walk.decrypted),
                     replacements=dict(walk.replacements), data_key=key,
                     selective=meta.rules.selective)


def _from_program(parsed: formats.Parsed, meta: Metadata, out: bytes, name: str) -> Decrypted:
    """The `sops` program's output, aligned with the encrypted documents value by value to
    know what each ENC[...] value decrypts to (the program checked the MAC)."""
    if parsed.format == "binary":
        plain_docs: tuple[Any, ...] = ({"data": out.decode("utf-8", "surrogateescape")},)
    else:
        try:
            plain_docs = formats.parse(out, parsed.format).documents
        except FormatError as e:
            raise SecretsError(f"the output of 'sops decrypt {name}' cannot be read: {e}.",
                               hint="Check the sops version (3.9 or newer).") from e
    enc = [v for d in parsed.documents for _, v in iter_leaves(d) if not _is_comment(v)]
    plain = [v for d in plain_docs for _, v in iter_leaves(d)]
    if len(enc) != len(plain):
        raise SecretsError(f"the output of 'sops decrypt {name}' does not have the shape of "
                           "the file.", hint="Check the sops version (3.9 or newer).")
    mapping = {e: p for e, p in zip(enc, plain, strict=True)
               if isinstance(e, str) and ENC_VALUE.match(e)}

    def open_value(text: str, path: tuple[str, ...]) -> Any:
        return Comment("") if _is_comment(text) else mapping[text]

    walk = Walk(rules=meta.rules, open_value=open_value)
    docs, _mac = walk.run(parsed.documents)
    return Decrypted(name=name, format=parsed.format, recipients=meta.recipients(),
                     opened_by="the sops program", plaintext=out, documents=docs,
                     values=tuple(walk.decrypted), replacements=dict(walk.replacements),
                     data_key=None, selective=meta.rules.selective)


def _is_comment(v: Any) -> bool:
    m = ENC_VALUE.match(v) if isinstance(v, str) else None
    return m is not None and m.group(4) == "comment"


def _no_key(name: str, meta: Metadata, ring: KeyRing, *, program_found: bool,
            detail: str = "") -> SecretsError:
    kinds = {k.kind for k in meta.keys}
    others = sorted({"age recipients of plugins, SSH or post-quantum keys"
                     if k.kind == "age" else k.describe().rsplit(" ", 1)[0]
                     for k in meta.keys if k.kind != "age" or not native_age(k.id)})
    lines = [f"no key of this environment decrypts {name}, which is encrypted for "
             f"{meta.recipients()}."]
    if "age" in kinds:
        mine = ring.recipients()
        opened = sum(1 for g in meta.groups if any(k.id in mine for k in g))
        if not ring.identities:
            verdict = "."
        elif opened and len(meta.groups) > 1:
            verdict = (f"; they open {opened} of the {meta.threshold} key groups needed.")
        else:
            verdict = "; none of them is a recipient of the file."
        lines.append(f"Age identities looked for: {ring.where()}{verdict}")
    if program_found:
        lines.append(f"The sops program failed: {detail}.")
    elif others or ring.needs_program:
        need = ", ".join(others + list(ring.needs_program))
        lines.append(f"{need} need{'s' if len(others) + len(ring.needs_program) == 1 else ''}"
                     f" the sops program, which was not found (looked at {looked_at()}).")
    hint = ""
    if (others or ring.needs_program) and not program_found:
        hint = HOW_TO_GET + " "
    if "age" in kinds:
        hint += ("Give stackctl the private key of one of the age recipients: an age "
                 "identity in $SOPS_AGE_KEY_FILE, $SOPS_AGE_KEY or "
                 "~/.config/sops/age/keys.txt (in CI, from a secret). ")
    if others:
        hint += "The sops program uses PGP, KMS and Vault keys with their usual credentials. "
    hint += f"See {DOCS}."
    return SecretsError(" ".join(lines), hint=hint)


def native_age(recipient: str) -> bool:
    """An X25519 recipient (age1 + bech32, whose alphabet has no '1'), which stackctl opens
    itself; plugin (age1name1...), post-quantum (age1pq1...) and SSH ones are not."""
    return recipient.startswith("age1") and recipient.count("1") == 1
