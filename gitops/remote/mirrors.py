"""Mirrors: URL prefixes replaced before every fetch of a remote base, git and https alike.

    # stack.yaml
    mirrors:
      https://github.com/: file:///srv/mirrors/github.com/

    STACKCTL_MIRRORS='https://github.com/=file:///srv/mirrors/github.com/'   # CI

The longest matching prefix wins; the environment's entries override stack.yaml's for the
same prefix. A git repository's URL (`https://github.com/argoproj/argo-workflows`) and a
file's URL are both mapped, so one entry serves an internal git server, an Artifactory or
Nexus remote, or a folder holding git repositories and files at the URLs' paths. SSH forms
(`git@github.com:org/repo`) are also matched in their https form when no prefix matches
them as written.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from gitops.errors import ConfigError
from gitops.yamlio import load_safe

ENV = "STACKCTL_MIRRORS"
_SCP = re.compile(r"^[\w.-]+@(?P<host>[\w.-]+):(?P<path>.*)$")
_SSH = re.compile(r"^ssh://(?:[^@/]+@)?(?P<host>[^/:]+)(?::\d+)?/(?P<path>.*)$")


@dataclass(frozen=True)
class Mirrored:
    """A URL after the mirrors: where to fetch, and the rule that applied (if any)."""

    url: str  # as written in the kustomization (or the repository's URL)
    fetch: str  # where it is fetched from
    prefix: str | None = None
    replacement: str | None = None

    def describe(self) -> str:
        """`file:///srv/... (mirror of https://github.com/)` or the URL itself."""
        if self.prefix is None:
            return self.fetch
        return f"{self.fetch} (the mirror {self.prefix} -> {self.replacement})"


@dataclass(frozen=True)
class Mirrors:
    rules: tuple[tuple[str, str], ...] = ()  # (prefix, replacement), longest prefix first

    @classmethod
    def of(cls, mapping: Mapping[str, str]) -> Mirrors:
        return cls(rules=tuple(sorted(mapping.items(), key=lambda kv: (-len(kv[0]), kv[0]))))

    def apply(self, url: str) -> Mirrored:
        for candidate in (url, https_form(url)):
            if candidate is None:
                continue
            for prefix, replacement in self.rules:
                if candidate.startswith(prefix):
                    return Mirrored(url=url, fetch=replacement + candidate[len(prefix):],
                                    prefix=prefix, replacement=replacement)
        return Mirrored(url=url, fetch=url)

    def __bool__(self) -> bool:
        return bool(self.rules)


def https_form(url: str) -> str | None:
    """`git@github.com:org/repo` and `ssh://git@github.com/org/repo` as
    `https://github.com/org/repo`; None for other URLs."""
    m = _SCP.match(url) if "://" not in url else _SSH.match(url)
    if m is None:
        return None
    return f"https://{m.group('host')}/{m.group('path').lstrip('/')}"


def _check(mapping: Mapping[object, object], where: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in mapping.items():
        if not isinstance(k, str) or not isinstance(v, str) or not k or not v:
            raise ConfigError(
                f"{where}: every mirror maps a URL prefix to a replacement prefix, both "
                f"strings, but {k!r} maps to {v!r}.",
                hint="Write e.g. 'https://github.com/: file:///srv/mirrors/github.com/'.")
        if k.endswith("/") != v.endswith("/"):
            raise ConfigError(
                f"{where}: the mirror {k} -> {v} ends one side with '/' and not the other, "
                "so the URLs it maps would be glued wrongly.",
                hint="End both with '/' (or neither).")
        out[k] = v
    return out


def parse_env(text: str) -> dict[str, str]:
    """STACKCTL_MIRRORS: `PREFIX=REPLACEMENT` pairs separated by commas, semicolons or
    whitespace, or a YAML/JSON mapping (`{"https://github.com/": "file:///srv/..."}`)."""
    text = text.strip()
    if not text:
        return {}
    if text.startswith("{"):
        try:
            doc = load_safe(text, path=ENV)
        except ConfigError as e:
            raise ConfigError(f"{ENV} is not a valid mapping: {e.message}",
                              hint="Write PREFIX=REPLACEMENT pairs or a JSON mapping.") from e
        if not isinstance(doc, dict):
            raise ConfigError(f"{ENV} must be a mapping of URL prefixes to replacements.")
        return _check(doc, ENV)
    pairs: dict[object, object] = {}
    for item in re.split(r"[\s,;]+", text):
        prefix, sep, replacement = item.partition("=")
        if not sep:
            raise ConfigError(
                f"{ENV}: {item!r} is not PREFIX=REPLACEMENT.",
                hint="Separate pairs with commas or spaces, e.g. "
                "'https://github.com/=file:///srv/mirrors/github.com/'.")
        pairs[prefix] = replacement
    return _check(pairs, ENV)


def load_mirrors(configured: Mapping[str, str] | None = None,
                 env: Mapping[str, str] | None = None) -> Mirrors:
    """stack.yaml's mirrors, overridden per prefix by STACKCTL_MIRRORS."""
    merged = dict(configured or {})
    merged.update(parse_env((env if env is not None else os.environ).get(ENV, "")))
    return Mirrors.of(merged)


def check_configured(value: object, *, path: object) -> dict[str, str]:
    """stack.yaml's `mirrors:` value, validated."""
    if not isinstance(value, Mapping):
        raise ConfigError("'mirrors' must be a mapping of URL prefixes to replacements",
                          path=str(path))
    return _check(value, f"{path}: mirrors")
