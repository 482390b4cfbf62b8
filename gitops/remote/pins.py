"""What stackctl.lock says about each vendored remote base, and how two locks differ.

    remotes:
    - url: https://github.com/argoproj/argo-workflows   # the repository (git) or the file
      kind: git                                         # git | file
      ref: v3.7.3                                       # git: as written; file: null
      commit: bded09fe4abd37cb98d7fc81b4c14a6f5034e9ab  # git: what the ref resolved to
      sha256: null                                      # file: sha256 of its content
      path: vendor/kubeflow/_remotes/git/github.com/argoproj/argo-workflows/v3.7.3
      digest: sha256:...                                # of what `path` holds
      files: 23
      localized:                                        # every entry rewritten to it
      - file: vendor/kubeflow/applications/.../argo/base/kustomization.yaml
        field: resources
        from: https://github.com/argoproj/argo-workflows/manifests/base/...?ref=v3.7.3
        to: ../../../../../../_remotes/git/github.com/argoproj/argo-workflows/v3.7.3/...
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gitops.errors import ConfigError
from gitops.schema import Field, validate
from gitops.source import Version

LOCALIZED_SPEC = {
    "file": Field((str,), required=True),
    "field": Field((str,), required=True),
    "from": Field((str,), required=True),
    "to": Field((str,), required=True),
}

PIN_SPEC = {
    "url": Field((str,), required=True),
    "kind": Field((str,), required=True, choices=("git", "file")),
    "ref": Field((str,)),
    "commit": Field((str,)),
    "sha256": Field((str,)),
    "path": Field((str,)),
    "digest": Field((str,)),
    "files": Field((int,), required=True),
    "localized": Field((list,), required=True, items=(dict,)),
}

_HEX40 = re.compile(r"^[0-9a-f]{40}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class Localized:
    """One kustomization entry that pointed at a remote and now points at its copy."""

    file: str  # the kustomization, from the stack root
    field: str  # resources, patches, configMapGenerator, ...
    original: str  # the entry as upstream wrote it
    local: str  # the entry as vendored

    def to_yaml(self) -> dict[str, Any]:
        return {"file": self.file, "field": self.field, "from": self.original,
                "to": self.local}


@dataclass(frozen=True)
class RemotePin:
    """One remote base as vendored: a git repository at a ref, or a file."""

    url: str
    kind: str  # git | file
    ref: str | None
    commit: str | None  # git
    sha256: str | None  # file
    path: str | None  # the folder holding it, from the stack root (None: only copies)
    digest: str | None  # content digest of `path` (gitops.git.digest)
    files: int
    localized: tuple[Localized, ...]

    @property
    def key(self) -> tuple[str, str, str | None]:
        return (self.kind, self.url, self.ref)

    @property
    def pinned(self) -> str:
        """The commit or the sha256, for messages."""
        return self.commit or self.sha256 or "?"

    @property
    def label(self) -> str:
        return f"{self.url} {self.ref or 'HEAD'}" if self.kind == "git" else self.url

    def to_yaml(self) -> dict[str, Any]:
        return {"url": self.url, "kind": self.kind, "ref": self.ref, "commit": self.commit,
                "sha256": self.sha256, "path": self.path, "digest": self.digest,
                "files": self.files, "localized": [x.to_yaml() for x in self.localized]}


def _safe_path(value: str, where: str, path: Path) -> str:
    parts = value.split("/")
    if value.startswith("/") or ".." in parts or "" in parts or "\\" in value:
        raise ConfigError(f"{where} must be a relative path inside the stack, not {value!r}",
                          path=path,
                          hint="Restore the file from git (git checkout -- stackctl.lock).")
    return value


def pins_from_yaml(nodes: Iterable[Any], *, path: Path, where: str) -> tuple[RemotePin, ...]:
    out: list[RemotePin] = []
    for i, node in enumerate(nodes):
        at = f"{where}remotes[{i}]."
        validate(node, PIN_SPEC, path=path, where=at)
        d: Mapping[str, Any] = node
        kind = str(d["kind"])
        commit = str(d["commit"]) if d.get("commit") else None
        sha = str(d["sha256"]) if d.get("sha256") else None
        if kind == "git" and (commit is None or not _HEX40.match(commit)):
            raise ConfigError(f"{at}commit must be the 40-digit commit id of a git remote",
                              path=path)
        if kind == "file" and (sha is None or not _HEX64.match(sha)):
            raise ConfigError(f"{at}sha256 must be the 64-digit sha256 of a file remote",
                              path=path)
        localized = []
        for j, item in enumerate(d["localized"]):
            validate(item, LOCALIZED_SPEC, path=path, where=f"{at}localized[{j}].")
            localized.append(Localized(
                file=_safe_path(str(item["file"]), f"{at}localized[{j}].file", path),
                field=str(item["field"]), original=str(item["from"]), local=str(item["to"])))
        pin_path = d.get("path")
        out.append(RemotePin(
            url=str(d["url"]), kind=kind, ref=str(d["ref"]) if d.get("ref") else None,
            commit=commit, sha256=sha,
            path=_safe_path(str(pin_path), f"{at}path", path) if pin_path else None,
            digest=str(d["digest"]) if d.get("digest") else None, files=int(d["files"]),
            localized=tuple(localized)))
    return tuple(out)


# -- changes between two locks ------------------------------------------------------------
@dataclass(frozen=True)
class RemoteChange:
    """A remote base added, removed or changed (a ref bump) by an upgrade."""

    change: str  # added | removed | changed
    url: str  # the new one (the old one when removed)
    before: str | None  # `v3.7.3 (bded09fe4abd)`, or the old file URL
    after: str | None

    def __str__(self) -> str:
        if self.change == "changed" and self.before and "://" in self.before:
            return f"{self.before} -> {self.after}"  # a file: its URL carries the version
        if self.change == "changed":
            return f"{self.url}: {self.before} -> {self.after}"
        return f"{self.url} ({self.after or self.before})"

    def to_dict(self) -> dict[str, Any]:
        return {"change": self.change, "url": self.url, "before": self.before,
                "after": self.after}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RemoteChange:
        return cls(change=str(d["change"]), url=str(d["url"]),
                   before=d.get("before"), after=d.get("after"))


def _family(pin: RemotePin) -> str:
    """What stays the same when a remote's version moves: a git repository, or a file URL
    with its version-like segments blanked (.../download/v0.6.0/... -> .../download/*/...)."""
    if pin.kind == "git":
        return "git " + pin.url
    return "file " + "/".join("*" if Version.parse(s) else s for s in pin.url.split("/"))


def _state(pin: RemotePin, *, changed: bool = False) -> str:
    """`v3.7.3 (bded09fe4abd)` for git; a file's URL when it changed, else its sha256."""
    if pin.kind == "git":
        return f"{pin.ref or 'HEAD'} ({(pin.commit or '')[:12]})"
    return pin.url if changed else f"sha256 {(pin.sha256 or '')[:12]}"


def remote_changes(before: Iterable[RemotePin], after: Iterable[RemotePin]
                   ) -> tuple[RemoteChange, ...]:
    """How the remotes of two lock entries differ: the same repository (or file family) at
    another ref is a change; what has no counterpart is added or removed."""
    old = {p.key: p for p in before}
    new = {p.key: p for p in after}
    gone = [p for k, p in sorted(old.items()) if k not in new]
    came = [p for k, p in sorted(new.items()) if k not in old]
    out: list[RemoteChange] = []
    for p in came:
        match = next((q for q in gone if _family(q) == _family(p)), None)
        if match is not None:
            gone.remove(match)
            out.append(RemoteChange("changed", p.url, _state(match, changed=True),
                                    _state(p, changed=True)))
        else:
            out.append(RemoteChange("added", p.url, None, _state(p)))
    out += [RemoteChange("removed", p.url, _state(p), None) for p in gone]
    return tuple(sorted(out, key=lambda c: (c.url, c.change)))
