"""Secret values never reach an output of stackctl: plans, drift reports, apply progress,
error messages and logs all go through a `Redactor`: one per run, built by the command from
the stack (`Redactor.from_config`) and passed down as a value to everything that prints.

What is redacted (see docs/secrets.md):
- every value of a Secret's `data` and `stringData` (also in `kind: List` items);
- annotations that hold a whole manifest, such as `kubectl.kubernetes.io/last-applied-
  configuration` (a Secret's last-applied copy holds its data: kubectl shows it in clear);
- ConfigMap `data`/`binaryData` values and container `env[].value`s whose key or name matches
  a sensitive pattern (password, token, secret, ...; configurable);
- container `env[].value`s equal to a value of a Secret the run has seen, and any field
  (but an object's kind, apiVersion, name and namespace) equal to a value decrypted from a
  SOPS file (`learn_decrypted`);
- in free text (API server messages, errors, plan values), the secret values the run has
  seen, in clear and in base64, where they stand as whole tokens and look like secrets
  (long or mixed enough, `secret_like`); weaker ones only in messages (errors, API server
  messages), as whole tokens. An API server rejecting a Secret may quote its value (Argo CD
  leaked those, argo-cd#16193), but scrubbing `test` from every string printed
  `the grea<redacted>` and `Service<redacted>` for `Service/dex` (docs/secrets.md says
  exactly what is scrubbed).

A redacted value reads `<redacted sha256:1a2b3c4d>`: the first 8 hex digits of an HMAC-SHA256
of the value keyed by a salt. Equal values show the same hash within one run, so reviewers
can tell that a value changed and whether two values are equal. The salt is random per run
unless STACKCTL_REDACT_SALT is set: a hash that is the same in every public pull-request
comment would let anyone test guesses of a weak password offline, so stable hashes across
runs are an explicit choice (set the variable from a CI secret).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import copy
import hashlib
import hmac
import json
import os
import re
import secrets
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from gitops.scrub import (
    AFTER_TOKEN,
    BEFORE_TOKEN,
    MARK,
    MARK_SPLIT,
    NAME_PARTS,
    NEVER,
    PAIR,
    PAIR_EQ,
    secret_like,
)

ENV_KEYS = "STACKCTL_REDACT_KEYS"
_UNDECODABLE = re.compile("[\udc80-\udcff]+")  # bytes decoded with surrogateescape
ENV_SALT = "STACKCTL_REDACT_SALT"

DEFAULT_SENSITIVE_PATTERNS: tuple[str, ...] = (
    "passw(or)?d", "passwd", "secret", "token", "api[-_.]?key", "credential",
    "private[-_.]?key", "auth",
)

# Annotations whose value is a whole manifest (so it may carry a Secret's data).
MANIFEST_ANNOTATIONS: tuple[str, ...] = (
    "kubectl.kubernetes.io/last-applied-configuration",
    "kapp.k14s.io/original",
    "objectset.rio.cattle.io/applied",
)

# Known secret values shorter than this are not scrubbed from free text: "1" or "true"
# would otherwise be erased from every message. Structured redaction has no such limit.
MIN_SCRUB_LENGTH = 4
# A decrypted value longer than this (a binary keystore) is redacted where a field holds it,
# but not searched for in free text line by line.
MAX_SCRUB_LENGTH = 64 * 1024

def _is_manifest_annotation(key: str) -> bool:
    return key in MANIFEST_ANNOTATIONS or key.endswith("/last-applied-configuration")


def _is_secret(obj: Mapping[str, Any]) -> bool:
    return obj.get("kind") == "Secret" and str(obj.get("apiVersion") or "v1") == "v1"


class Redactor:
    """Redacts objects and text for one run (one salt, one set of known secret values).

    `redact(obj)` returns a redacted deep copy and learns the secret values it hid;
    `learn(objs)` only learns; `text(s)` scrubs every learned value from a string.

    Thread-safe: a rollout applies several clusters at once with one redactor, so that a
    value one cluster's apply learns is scrubbed from every line printed. Learning and the
    scrub pattern's rebuild hold a lock; without it, a `text()` rebuilding the pattern
    while another thread learned a value could keep a pattern that lacks that value.
    """

    def __init__(
        self,
        *,
        sensitive_patterns: Sequence[str] = DEFAULT_SENSITIVE_PATTERNS,
        salt: bytes | None = None,
    ) -> None:
        self.patterns = tuple(sensitive_patterns)
        self._sensitive = (
            re.compile("|".join(f"(?:{p})" for p in self.patterns), re.IGNORECASE)
            if self.patterns else None
        )
        self._salt = salt if salt is not None else secrets.token_bytes(16)
        self._known: set[str] = set()
        # Values of Secrets (data, stringData) and of decrypted SOPS files: an env var that
        # holds one of them exactly is redacted whatever its name.
        self._secret_values: set[str] = set()
        # Values decrypted from SOPS files: redacted wherever a field holds one exactly.
        self._decrypted: set[str] = set()
        # Object kinds, names, namespaces and API groups seen, and their dash/dot-separated
        # parts: a secret value equal to one of them is printed in every object name anyway,
        # so scrubbing it from free text would only garble names ('<redacted>-dev').
        self._public: set[str] = set()
        self._scrub_re: re.Pattern[str] | None = None
        self._quoted_re: re.Pattern[str] | None = None  # every known value, for messages
        self._lock = threading.RLock()  # reentrant: learning a manifest redacts it

    @classmethod
    def from_config(cls, root: Path | None = None,
                    environ: Mapping[str, str] | None = None) -> Redactor:
        """The run's redactor: default patterns, plus stack.yaml's `redact.sensitiveKeys`
        (which replace the defaults when `redact.replaceDefaults` is true), plus the
        comma-separated regular expressions of $STACKCTL_REDACT_KEYS; salt from
        $STACKCTL_REDACT_SALT or random."""
        env = os.environ if environ is None else environ
        patterns = list(DEFAULT_SENSITIVE_PATTERNS)
        if root is not None:
            cfg = _stack_redact_config(root)
            keys = [str(k) for k in cfg.get("sensitiveKeys") or []]
            patterns = keys if cfg.get("replaceDefaults") else patterns + keys
        extra = [p.strip() for p in env.get(ENV_KEYS, "").split(",") if p.strip()]
        patterns += extra
        for p in patterns:
            _check_pattern(p)
        salt_text = env.get(ENV_SALT)
        return cls(sensitive_patterns=patterns,
                   salt=salt_text.encode() if salt_text else None)

    # --- values ---------------------------------------------------------------------------

    def is_sensitive(self, key: str) -> bool:
        return bool(self._sensitive is not None and self._sensitive.search(key))

    def mark(self, value: Any) -> str:
        """`<redacted sha256:xxxxxxxx>` for a value (bytes, text or data)."""
        raw = (value if isinstance(value, bytes)
               else str(value).encode("utf-8", "surrogateescape"))  # a decrypted binary
        digest = hmac.new(self._salt, raw, hashlib.sha256).hexdigest()[:8]
        return f"<redacted sha256:{digest}>"

    def _mark_data(self, value: Any) -> str:
        """A Secret `data` value is base64: hash the decoded bytes, so that it shows the
        same hash as an equal `stringData` value."""
        text = str(value)
        try:
            decoded = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            return self.mark(text)
        return self.mark(decoded)

    # --- learning -------------------------------------------------------------------------

    @property
    def known_values(self) -> frozenset[str]:
        with self._lock:
            return frozenset(self._known)

    def add_known(self, value: Any) -> None:
        """Remember a secret value (and its base64 and decoded forms) for `text()`."""
        with self._lock:
            self._add_known(value)

    def _add_known(self, value: Any) -> None:
        if value is None or isinstance(value, bool | dict | list):
            return
        text = str(value)
        forms = {text}
        if len(text) >= MIN_SCRUB_LENGTH:
            forms.add(base64.b64encode(text.encode("utf-8", "surrogateescape")).decode())
            try:
                decoded = base64.b64decode(text, validate=True).decode()
            except (binascii.Error, ValueError, UnicodeDecodeError):
                decoded = ""
            if decoded and decoded.isprintable():
                forms.add(decoded)
        escaped = json.dumps(text)[1:-1]
        if escaped != text:
            forms.add(escaped)  # as quoted in JSON error bodies
        for f in forms:
            if len(f) >= MIN_SCRUB_LENGTH:
                self._known.add(f)
                # A value quoted in JSON or YAML error text appears escaped.
                for line in f.splitlines():
                    if len(line.strip()) >= MIN_SCRUB_LENGTH:
                        self._known.add(line.strip())
        self._scrub_re = self._quoted_re = None

    def learn(self, objs: Iterable[Mapping[str, Any]]) -> None:
        """Remember the secret values of objects (and their public names)."""
        for obj in objs:
            part = _copy_sensitive_parts(obj)
            with self._lock:
                self._walk(part)

    def learn_decrypted(self, values: Iterable[str]) -> None:
        """Remember values decrypted from SOPS files (a render's `secrets`): they are secret
        wherever they land, in a Secret or in a field a patch set (values shorter than
        MIN_SCRUB_LENGTH only in Secrets, which are redacted whole anyway)."""
        with self._lock:
            for v in values:
                if len(v) < MIN_SCRUB_LENGTH:
                    continue  # a field holding `a` or `80` elsewhere is not this secret
                self._decrypted.add(v)
                self._secret_values.add(v)
                if len(v) > MAX_SCRUB_LENGTH:
                    continue  # a keystore: hidden where it is a field, not searched for
                self._add_known(v)
                # Bytes that are not UTF-8 print as U+FFFD: the runs between are known too.
                for run in _UNDECODABLE.split(v) if _UNDECODABLE.search(v) else ():
                    if len(run) >= MIN_SCRUB_LENGTH:
                        self._add_known(run)

    # --- objects --------------------------------------------------------------------------

    def redact(self, obj: Any) -> Any:
        """A redacted deep copy of an object (or of any data holding objects)."""
        copied = copy.deepcopy(obj)
        with self._lock:
            return self._walk(copied)

    def _walk(self, node: Any) -> Any:
        if isinstance(node, list):
            return [self._walk(x) for x in node]
        if not isinstance(node, dict):
            return node
        if "kind" in node and "apiVersion" in node:
            self._object(node)
        for k, v in node.items():
            if isinstance(v, dict | list):
                node[k] = self._walk(v)
        return node

    def _learn_public(self, obj: Mapping[str, Any]) -> None:
        meta = obj.get("metadata")
        names = [str(obj.get("apiVersion") or "").rpartition("/")[0], str(obj.get("kind") or "")]
        if isinstance(meta, dict):
            names += [str(meta.get("name") or ""), str(meta.get("namespace") or "")]
        for name in names:
            if name:
                before = len(self._public)
                self._public.add(name)
                self._public.update(p for p in NAME_PARTS.split(name) if p)
                if len(self._public) != before:
                    self._scrub_re = self._quoted_re = None

    def _object(self, obj: dict[str, Any]) -> None:
        self._learn_public(obj)
        meta = obj.get("metadata")
        if isinstance(meta, dict):
            ann = meta.get("annotations")
            if isinstance(ann, dict):
                for k in list(ann):
                    if _is_manifest_annotation(str(k)) and ann[k] is not None:
                        self._learn_manifest(ann[k])
                        ann[k] = self.mark(ann[k])
        kind = obj.get("kind")
        if self._decrypted:
            self._decrypted_fields(obj)
        if _is_secret(obj):
            for field in ("data", "stringData"):
                values = obj.get(field)
                if values is not None and not isinstance(values, dict):
                    # Not a map: the API server refuses it, quoting it ("expected map,
                    # got &{value}"); it is still what the author meant as secret.
                    self.add_known(values)
                    obj[field] = self.mark(values)
                if isinstance(values, dict):
                    for k, v in values.items():
                        self.add_known(v)
                        self._learn_secret_value(v, data=field == "data")
                        values[k] = (self._mark_data(v) if field == "data"
                                     else self.mark(v))
        elif kind == "ConfigMap" and str(obj.get("apiVersion")) == "v1":
            for field in ("data", "binaryData"):
                values = obj.get(field)
                if isinstance(values, dict):
                    for k, v in values.items():
                        if self.is_sensitive(str(k)):
                            self.add_known(v)
                            values[k] = (self._mark_data(v) if field == "binaryData"
                                         else self.mark(v))
                        elif field == "data" and isinstance(v, str):
                            # A config file held in a ConfigMap: its `password: x` lines.
                            values[k] = self.text(v, message=False)
        self._env(obj)

    def _learn_secret_value(self, value: Any, *, data: bool) -> None:
        if value is None or isinstance(value, bool | dict | list):
            return
        text = str(value)
        if data:
            with contextlib.suppress(binascii.Error, ValueError, UnicodeDecodeError):
                text = base64.b64decode(text, validate=True).decode()
        if text:
            self._secret_values.add(text)

    def _decrypted_fields(self, obj: dict[str, Any]) -> None:
        """Any string field equal to a decrypted SOPS value, but the object's identity."""
        def walk(node: Any, top: bool) -> None:
            items = (node.items() if isinstance(node, dict)
                     else enumerate(node) if isinstance(node, list) else ())
            for k, v in items:
                if top and k in ("apiVersion", "kind"):
                    continue
                if isinstance(v, str):
                    if v in self._decrypted and not MARK.fullmatch(v):
                        node[k] = self.mark(v)
                elif isinstance(v, dict | list):
                    if top and k == "metadata" and isinstance(v, dict):
                        walk({mk: mv for mk, mv in v.items()
                              if mk not in ("name", "namespace", "generateName")}, False)
                        for mk, mv in v.items():
                            if mk in ("labels", "annotations") and isinstance(mv, dict):
                                walk(mv, False)
                        continue
                    walk(v, False)

        walk(obj, True)

    def _env(self, node: Any) -> None:
        """Every `env` list of containers anywhere in the object (pod templates, CRs)."""
        if isinstance(node, list):
            for x in node:
                self._env(x)
            return
        if not isinstance(node, dict):
            return
        env = node.get("env")
        if isinstance(env, list) and ("image" in node or "name" in node):
            for var in env:
                if not isinstance(var, dict) or "value" not in var:
                    continue
                value = var["value"]
                if self.is_sensitive(str(var.get("name") or "")) or (
                        isinstance(value, str) and value in self._secret_values):
                    self.add_known(value)
                    var["value"] = self.mark(value)
        for k, v in node.items():
            if k != "env" and isinstance(v, dict | list):
                self._env(v)

    def _learn_manifest(self, text: Any) -> None:
        """Learn the secret values held by a last-applied copy of a manifest."""
        try:
            inner = json.loads(str(text))
        except ValueError:
            return
        if isinstance(inner, dict):
            self.redact(inner)

    # --- text -----------------------------------------------------------------------------

    def text(self, text: str, *, pairs: bool | str = True,
             message: bool | None = None) -> str:
        """`text` with known secret values replaced by their mark where they stand as whole
        tokens (never inside a longer word or name): the values that look like secrets
        (`secret_like`) always; in a `message` (default: when `pairs` is on: errors, API
        server messages, crash logs) every known value of 4 characters or more. And (with
        `pairs`) `name=value`/`name: value` pairs of sensitive names redacted
        (`pairs="="`: only `name=value`, for messages that quote names before a colon).
        Object kinds, names and namespaces are never touched, nor marks already there."""
        if not text:
            return text
        if self._known:
            with self._lock:
                strong, every = self._patterns()
            pattern = every if (bool(pairs) if message is None else message) else strong
            if pattern is not NEVER:
                parts = MARK_SPLIT.split(text)  # odd items: marks, left as they are
                text = "".join(
                    part if i % 2 else pattern.sub(lambda m: self.mark(m.group(0)), part)
                    for i, part in enumerate(parts))
        # Every pair is tested, not the text first: a pattern anchored to the end of a key
        # (`dsn$`) would not match a whole message.
        if pairs and self._sensitive is not None:
            text = (PAIR_EQ if pairs == "=" else PAIR).sub(self._pair, text)
        return text

    def _patterns(self) -> tuple[re.Pattern[str], re.Pattern[str]]:
        """(the secret-like known values, every known value), each as whole tokens, the
        longest first."""
        if self._scrub_re is None or self._quoted_re is None:
            values = sorted(self._known - self._public, key=len, reverse=True)
            strong = [re.escape(v) for v in values if secret_like(v)]
            every = [re.escape(v) for v in values]
            self._scrub_re = (re.compile(f"{BEFORE_TOKEN}(?:{'|'.join(strong)}){AFTER_TOKEN}")
                              if strong else NEVER)
            self._quoted_re = (re.compile(f"{BEFORE_TOKEN}(?:{'|'.join(every)}){AFTER_TOKEN}")
                               if every else NEVER)
        return self._scrub_re, self._quoted_re

    def _pair(self, m: re.Match[str]) -> str:
        key, sep, value = m.group("key"), m.group("sep"), m.group("value")
        if not self.is_sensitive(key) or MARK.fullmatch(value) or value.startswith("<redacted"):
            return m.group(0)
        return f"{key}{sep}{self.mark(value)}"


def _copy_sensitive_parts(obj: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of what redaction reads and rewrites in an object, leaving out the big parts
    that can hold no secret value (a CRD's schema, status, managedFields), so that learning
    from hundreds of live objects does not deep-copy megabytes."""
    crd = obj.get("kind") == "CustomResourceDefinition"
    out: dict[str, Any] = {}
    for k, v in obj.items():
        if k == "status" or (k == "spec" and crd):
            continue
        if k == "metadata" and isinstance(v, dict):
            v = {mk: mv for mk, mv in v.items() if mk != "managedFields"}
        out[k] = copy.deepcopy(v) if isinstance(v, dict | list) else v
    return out


def _check_pattern(pattern: str) -> None:
    from gitops.errors import ConfigError

    try:
        re.compile(pattern)
    except re.error as e:
        raise ConfigError(
            f"invalid sensitive-key pattern {pattern!r}: {e}",
            hint=f"Fix the pattern in stack.yaml's redact.sensitiveKeys or ${ENV_KEYS} "
            "(comma-separated regular expressions, matched case-insensitively).",
        ) from e


def _stack_redact_config(root: Path) -> dict[str, Any]:
    from gitops.schema import load_config
    from gitops.stack import STACK_FILE, STACK_SPEC

    path = root / STACK_FILE
    if not path.is_file():
        return {}
    data = load_config(path, STACK_SPEC)
    cfg = data.get("redact") or {}
    return cfg if isinstance(cfg, dict) else {}


def scrub_message(text: str, redactor: Redactor | None = None) -> str:
    """An error or log message with the run's known secret values (with the run's
    `redactor`) and sensitive `name=value` pairs redacted. Never raises: it runs inside
    the error handler."""
    try:
        return (redactor or Redactor()).text(text, pairs="=")
    except Exception:  # the message must still be shown; redaction is best effort here
        return text
