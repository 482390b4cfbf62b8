"""A SOPS file's `sops` metadata: the master keys its data key is encrypted for (in key
groups, with a Shamir threshold when there are several), the MAC, the encryption rules."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from gitops.sops.tree import Rules

# Master key kinds as SOPS names them in the metadata, what identifies one, and how
# messages name the kind.
KINDS: dict[str, tuple[tuple[str, ...], str]] = {
    "age": (("recipient",), "age"),
    "pgp": (("fp",), "PGP"),
    "kms": (("arn",), "AWS KMS"),
    "gcp_kms": (("resource_id",), "GCP KMS"),
    "azure_kv": (("vault_url", "name"), "Azure Key Vault"),
    "hc_vault": (("vault_address", "engine_path", "key_name"), "HashiCorp Vault"),
    "hckms": (("key_id",), "HuaweiCloud KMS"),
}


class MetadataError(Exception):
    """The `sops` metadata is not what SOPS writes (the message says what is wrong)."""


@dataclass(frozen=True)
class MasterKey:
    kind: str  # a key of KINDS
    id: str  # the recipient, fingerprint, ARN, ...
    enc: str = field(repr=False)  # the data key (or its Shamir part), encrypted for it

    def describe(self) -> str:
        return f"{KINDS[self.kind][1]} {self.id}"


@dataclass(frozen=True)
class Metadata:
    groups: tuple[tuple[MasterKey, ...], ...]
    threshold: int  # key groups needed (Shamir); 1 with one group
    lastmodified: str  # as SOPS formats it: the MAC's additional data
    mac: str
    rules: Rules
    version: str

    @property
    def keys(self) -> tuple[MasterKey, ...]:
        return tuple(k for g in self.groups for k in g)

    def recipients(self) -> str:
        """'age age1..., PGP 85D7...' for messages (with the Shamir threshold if any)."""
        if len(self.groups) == 1:
            return ", ".join(k.describe() for k in self.groups[0]) or "no master key"
        parts = ["group {}: {}".format(i, ", ".join(k.describe() for k in g) or "empty")
                 for i, g in enumerate(self.groups, 1)]
        return f"{self.threshold} of {len(self.groups)} key groups ({'; '.join(parts)})"


def _group(entry: dict[str, Any]) -> tuple[MasterKey, ...]:
    keys: list[MasterKey] = []
    for kind, (idents, _label) in KINDS.items():
        for k in entry.get(kind) or ():
            if not isinstance(k, dict):
                raise MetadataError(f"an entry of {kind} is not a mapping")
            ident = "/".join(str(k.get(i) or "") for i in idents).strip("/")
            keys.append(MasterKey(kind=kind, id=ident, enc=str(k.get("enc") or "")))
    return tuple(keys)


def _rfc3339(text: str) -> str:
    """time.Parse(RFC3339) then Format(RFC3339), as SOPS does before it uses the time as
    the MAC's additional data: fractions dropped, a zero offset written Z."""
    try:
        t = datetime.fromisoformat(text)
    except ValueError as e:
        raise MetadataError(f"lastmodified {text!r} is not an RFC 3339 time") from e
    if t.tzinfo is None:
        raise MetadataError(f"lastmodified {text!r} has no time zone")
    off = t.utcoffset() or timedelta(0)
    base = t.strftime("%Y-%m-%dT%H:%M:%S")
    if off == timedelta(0):
        return base + "Z"
    sign = "+" if off > timedelta(0) else "-"
    minutes = abs(int(off.total_seconds())) // 60
    return f"{base}{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def _bool(v: Any) -> bool:
    if isinstance(v, str):
        return v.strip().lower() in ("true", "1", "t")
    return bool(v)


def parse_metadata(meta: dict[str, Any]) -> Metadata:
    groups_raw = meta.get("key_groups")
    if groups_raw:
        if not isinstance(groups_raw, list):
            raise MetadataError("key_groups is not a list")
        groups = tuple(_group(g if isinstance(g, dict) else {}) for g in groups_raw)
    else:
        groups = (_group(meta),)
    try:
        threshold = int(meta.get("shamir_threshold") or 0)
    except (TypeError, ValueError) as e:
        raise MetadataError("shamir_threshold is not a number") from e
    if len(groups) > 1 and threshold <= 0:
        threshold = len(groups)  # SOPS's default: every group
    rules_set = [k for k in ("unencrypted_suffix", "encrypted_suffix", "unencrypted_regex",
                             "encrypted_regex", "unencrypted_comment_regex",
                             "encrypted_comment_regex") if meta.get(k)]
    if len(rules_set) > 1:
        raise MetadataError("more than one of " + ", ".join(rules_set) + " is set")
    unenc_suffix = str(meta.get("unencrypted_suffix") or "")
    if not rules_set:
        unenc_suffix = "_unencrypted"  # SOPS's default rule
    rules = Rules(
        unencrypted_suffix=unenc_suffix,
        encrypted_suffix=str(meta.get("encrypted_suffix") or ""),
        unencrypted_regex=str(meta.get("unencrypted_regex") or ""),
        encrypted_regex=str(meta.get("encrypted_regex") or ""),
        by_comments=bool(meta.get("unencrypted_comment_regex")
                         or meta.get("encrypted_comment_regex")),
        mac_only_encrypted=_bool(meta.get("mac_only_encrypted", False)),
    )
    lastmodified = meta.get("lastmodified")
    if isinstance(lastmodified, datetime):
        lastmodified = lastmodified.replace(tzinfo=lastmodified.tzinfo or UTC).isoformat()
    if not isinstance(lastmodified, str) or not isinstance(meta.get("mac"), str):
        raise MetadataError("lastmodified or mac is missing")
    return Metadata(groups=groups, threshold=max(threshold, 1),
                    lastmodified=_rfc3339(lastmodified), mac=str(meta["mac"]), rules=rules,
                    version=str(meta.get("version") or ""))
