"""The Conflict value: one place where base, ours and theirs disagree and a person decides.

A conflict is a result, not an error: the merge keeps ours (the local value) in the file,
records the conflict and carries on with everything else.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from gitops.redact import Redactor
from gitops.resource import ResourceId

ENV_SALT = "STACKCTL_REDACT_SALT"  # the same variable as gitops.redact: one salt per run


class ConflictKind(StrEnum):
    """Why a conflict was recorded (the `kind` in report.json)."""

    BOTH_CHANGED = "both-changed"
    """Both sides changed the same scalar, atomic list or text lines to different values."""
    DELETED_UPSTREAM = "deleted-upstream"
    """Upstream deleted a file, resource or list entry that ours edited: ours is kept."""
    DELETED_LOCALLY = "deleted-locally"
    """Ours deleted a file, resource or list entry that upstream changed: it stays deleted."""
    BOTH_ADDED = "both-added"
    """Both sides added the same file, resource, key or entry with different content."""
    BINARY = "binary"
    """A file that is not UTF-8 text changed on both sides: ours is kept."""
    UNRESOLVED_REFERENCE = "unresolved-reference"
    """A local kustomization's reference whose target upstream deleted, with no new place
    on strong enough evidence: kept as it is (the cluster no longer renders) until a person
    gives the new path (--resolve ADDRESS --path NEW), drops it (--theirs) or edits it."""
    NO_EFFECT = "no-effect"
    """A local customization that changed what a cluster deploys before the upgrade and
    changes nothing after it (an image name no container uses any more, a patch whose
    target is gone, a vendor edit overridden further up): kept as it is, reported with its
    likely successor until a person edits it (--mark) or accepts it (--ours)."""


class MergeKind(StrEnum):
    """How a file changed on both sides was merged (counted per kind in the report)."""

    YAML = "yaml"
    KUSTOMIZATION = "kustomization"
    TEXT = "text"
    BINARY = "binary"


# Deletion conflicts have no field value to show; these stand in for the whole thing.
PRESENT = "<present>"
CHANGED = "<changed>"
DELETED = "<deleted>"
ABSENT = "<absent>"


@dataclass(frozen=True)
class Conflict:
    """One conflict: where (file, resource, field path) and what (base, ours, theirs).

    `field` is a path such as `spec.template.spec.containers[name=app].image`; empty for a
    whole file or resource. Values are plain data (str, int, float, bool, None, lists, dicts);
    Secret data is already redacted to a salted hash. `lines` is the 1-based inclusive
    range of ours' lines for a text conflict.
    """

    path: str
    kind: ConflictKind
    resource: ResourceId | None = None
    field: str = ""
    base: Any = None
    ours: Any = None
    theirs: Any = None
    lines: tuple[int, int] | None = None
    message: str = ""
    segments: tuple[str, ...] = ()
    """The field path as segments (`containers[name=web]` for a keyed list entry)."""
    hunk: tuple[int, int] | None = None
    """For a hunk of a multi-line string value: the 1-based inclusive range of ours' lines
    of the value (the field reads `FIELD@L12-13`); base/ours/theirs hold the hunk's lines."""
    values: tuple[Any, Any, Any] | None = None
    """The whole base, ours and theirs values when base/ours/theirs show only a hunk."""

    @property
    def resource_key(self) -> str:
        """`group/kind/namespace/name` (core group and cluster scope empty), or ''."""
        r = self.resource
        return f"{r.group}/{r.kind}/{r.namespace}/{r.name}" if r is not None else ""

    @property
    def address(self) -> str:
        """`PATH[:RESOURCE[:FIELD]]`, the form `stackctl upgrade --resolve` takes."""
        parts = [self.path]
        if self.resource is not None or self.field:
            parts.append(self.resource_key)
        if self.field:
            parts.append(self.field)
        return ":".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "kind": str(self.kind),
            "resource": self.resource_key or None,
            "field": self.field,
            "lines": list(self.lines) if self.lines is not None else None,
            "base": self.base,
            "ours": self.ours,
            "theirs": self.theirs,
            "message": self.message,
            "address": self.address,
            "hunk": list(self.hunk) if self.hunk is not None else None,
            "values": None if self.values is None else dict(
                zip(("base", "ours", "theirs"), self.values, strict=True)),
        }


# --------------------------------------------------------------------------- secrets

_SENSITIVE_FILE = re.compile(r"secret|passw|token|credential|private[-_.]?key", re.IGNORECASE)


def default_salt() -> bytes:
    """The run's salt: $STACKCTL_REDACT_SALT when set, else random per process."""
    env = os.environ.get(ENV_SALT)
    return env.encode() if env else _PROCESS_SALT


_PROCESS_SALT = secrets.token_bytes(16)


@dataclass(frozen=True)
class Redaction:
    """Hides secret values behind `<redacted sha256:xxxxxxxx>`, the format of gitops.redact:
    equal values show equal hashes within one run, the value itself never appears.

    With the run's `redactor` (the one `plan` uses), conflict values are redacted as plan
    redacts them: every leaf of a field whose name is sensitive (`redact.sensitiveKeys`: an
    env var `API_TOKEN`, a ConfigMap key `db_password`), the secret values it learned
    (a Secret's value quoted in an env var or a config file) in any other string, and
    `password: x` / `password=x` pairs in text lines."""

    salt: bytes = field(default_factory=default_salt)
    redactor: Redactor | None = None

    def mark(self, value: Any) -> str:
        if self.redactor is not None:
            return self.redactor.mark(value)
        raw = value if isinstance(value, bytes) else str(value).encode()
        return f"<redacted sha256:{hmac.new(self.salt, raw, hashlib.sha256).hexdigest()[:8]}>"

    def value(self, value: Any) -> Any:
        """Every leaf of `value` hashed; the stand-ins for deleted or absent stay readable."""
        if value is None or value in (PRESENT, CHANGED, DELETED, ABSENT):
            return value
        if isinstance(value, dict):
            return {k: self.value(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.value(v) for v in value]
        return self.mark(value)

    def field_value(self, field_path: str, value: Any) -> Any:
        """A conflict value of a field that is not a Secret's data: hashed whole when the
        field's name is sensitive, else with known secret values scrubbed from its text."""
        r = self.redactor
        if r is None or value is None or value in (PRESENT, CHANGED, DELETED, ABSENT):
            return value
        if any(r.is_sensitive(name) for name in _field_names(field_path)):
            return self.value(value)
        return self._scrub(value)

    def _scrub(self, value: Any) -> Any:
        assert self.redactor is not None
        if isinstance(value, dict):
            return {k: (self.value(v) if self.redactor.is_sensitive(str(k))
                        else self._scrub(v)) for k, v in value.items()}
        if isinstance(value, list):
            return [self._scrub(v) for v in value]
        if isinstance(value, str):
            return self.redactor.text(value)
        if not isinstance(value, bool) and str(value) in self.redactor.known_values:
            return self.mark(value)
        return value

    def lines(self, text: str) -> str:
        """Text lines in conflict (a config file, an env file): known secret values and
        sensitive `name: value` / `name=value` pairs redacted."""
        return self.redactor.text(text) if self.redactor is not None and text else text


_NAME_SELECTOR = re.compile(r"\[name=([^\]]*)\]")


def _field_names(field_path: str) -> list[str]:
    """The names a field path gives its value: its last key, and the `name` of the list
    item it sits in (`env[name=API_TOKEN].value`)."""
    last = field_path.rsplit(".", 1)[-1].split("[", 1)[0]
    names = [last] if last else []
    selectors = _NAME_SELECTOR.findall(field_path)
    if selectors:
        names.append(selectors[-1])
    return names


def is_secret_field(resource: ResourceId | None, field_path: str) -> bool:
    """A Secret's data (any field under data/stringData, or the whole object)."""
    if resource is None or resource.kind != "Secret" or resource.group != "":
        return False
    head = field_path.split(".", 1)[0].split("[", 1)[0]
    return head in ("", "data", "stringData")


def is_sensitive_file(path: str) -> bool:
    """Text files whose name says they hold secrets (a secretGenerator's `secret.env`)."""
    return bool(_SENSITIVE_FILE.search(path.rsplit("/", 1)[-1]))
