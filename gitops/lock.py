"""stackctl.lock: what is vendored, the source of truth for rebuilds and upgrades.

    # stackctl.lock: what is vendored. Written by 'stackctl vendor import'; do not edit.
    version: 1
    vendor:
    - name: kubeflow                     # vendor/<name>/ and the branch vendor/<name>
      source: https://github.com/kubeflow/manifests   # as in stack.yaml or --source
      sourceKind: git                    # git | archive | archive-folder | release-folder
      ref: v1.4                          # the ref that was asked for
      resolved: v1.4.1                   # the tag, branch or commit id it resolved to
      resolvedKind: tag                  # tag | branch | commit | release
      commit: 0f8a...                    # upstream commit id (git sources), else null
      archiveSha256: null                # sha256 of the archive file (archive kinds)
      digest: sha256:5c1e...             # content digest of the imported tree
      files: 1215                        # number of files imported
      path: vendor/kubeflow              # where the import lives, from the stack root
      importedAt: '2025-01-31T10:00:00Z' # UTC
      vendorBranch: vendor/kubeflow
      vendorCommit: 9d2b...              # the import's commit on the vendor branch
      upstreamDigest: sha256:...         # only with remotes: the release before localizing
      remotes: [...]                     # only with remotes: see gitops/remote/pins.py
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gitops.errors import ConfigError
from gitops.remote.pins import RemotePin, pins_from_yaml
from gitops.repopath import physically_inside, relative_inside
from gitops.schema import Field, line_of, validate
from gitops.stack import LOCK_FILE
from gitops.yamlio import check_depth, decode, dump_safe, load_all_rt

LOCK_VERSION = 1
HEADER = "# stackctl.lock: what is vendored. Written by 'stackctl vendor import'; do not edit.\n"

ENTRY_SPEC = {
    "name": Field((str,), required=True),
    "source": Field((str,), required=True),
    "sourceKind": Field((str,), required=True,
                        choices=("git", "archive", "archive-folder", "release-folder")),
    "ref": Field((str,), required=True),
    "resolved": Field((str,), required=True),
    "resolvedKind": Field((str,), required=True,
                          choices=("tag", "branch", "commit", "release")),
    "commit": Field((str,)),
    "archiveSha256": Field((str,)),
    "digest": Field((str,), required=True),
    "files": Field((int,), required=True),
    "path": Field((str,), required=True),
    "importedAt": Field((str,), required=True),
    "vendorBranch": Field((str,), required=True),
    "vendorCommit": Field((str,), required=True),
    "upstreamDigest": Field((str,)),
    "remotes": Field((list,), items=(dict,)),
}

LOCK_SPEC = {
    "version": Field((int,), required=True, choices=(LOCK_VERSION,)),
    "vendor": Field((list,), required=True, items=(dict,)),
}


@dataclass(frozen=True)
class LockEntry:
    """One vendored upstream."""

    name: str
    source: str
    source_kind: str
    ref: str
    resolved: str
    resolved_kind: str
    commit: str | None
    archive_sha256: str | None
    digest: str
    files: int
    path: str
    imported_at: str
    vendor_branch: str
    vendor_commit: str
    # The remote bases vendored beside the release (gitops.remote); `digest` is then the
    # digest of the localized tree and `upstream_digest` that of the release as fetched.
    upstream_digest: str | None = None
    remotes: tuple[RemotePin, ...] = ()

    def to_yaml(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name, "source": self.source, "sourceKind": self.source_kind,
            "ref": self.ref, "resolved": self.resolved, "resolvedKind": self.resolved_kind,
            "commit": self.commit, "archiveSha256": self.archive_sha256,
            "digest": self.digest, "files": self.files, "path": self.path,
            "importedAt": self.imported_at, "vendorBranch": self.vendor_branch,
            "vendorCommit": self.vendor_commit,
        }
        if self.remotes:  # locks without remotes keep their old form
            out["upstreamDigest"] = self.upstream_digest
            out["remotes"] = [r.to_yaml() for r in self.remotes]
        return out

    @classmethod
    def from_yaml(cls, d: dict[str, Any], *, path: Path | str = LOCK_FILE,
                  where: str = "") -> LockEntry:
        return cls(
            name=str(d["name"]), source=str(d["source"]), source_kind=str(d["sourceKind"]),
            ref=str(d["ref"]), resolved=str(d["resolved"]),
            resolved_kind=str(d["resolvedKind"]),
            commit=str(d["commit"]) if d.get("commit") else None,
            archive_sha256=str(d["archiveSha256"]) if d.get("archiveSha256") else None,
            digest=str(d["digest"]), files=int(d["files"]), path=str(d["path"]),
            imported_at=str(d["importedAt"]), vendor_branch=str(d["vendorBranch"]),
            vendor_commit=str(d["vendorCommit"]),
            upstream_digest=str(d["upstreamDigest"]) if d.get("upstreamDigest") else None,
            remotes=pins_from_yaml(d.get("remotes") or (), path=Path(path), where=where),
        )


@dataclass(frozen=True)
class Lock:
    entries: tuple[LockEntry, ...] = ()

    def get(self, name: str) -> LockEntry | None:
        for e in self.entries:
            if e.name == name:
                return e
        return None

    def with_entry(self, entry: LockEntry) -> Lock:
        """This lock with `entry` added, or replacing the entry of the same name."""
        others = [e for e in self.entries if e.name != entry.name]
        return Lock(entries=tuple(sorted([*others, entry], key=lambda e: e.name)))


def render_lock(lock: Lock) -> str:
    data = {"version": LOCK_VERSION, "vendor": [e.to_yaml() for e in lock.entries]}
    return HEADER + dump_safe(data)


def parse_lock(text: str, *, path: Path | str = LOCK_FILE) -> Lock:
    check_depth(text, path=path)
    docs = [d for d in load_all_rt(text, path=path) if d is not None]
    if len(docs) != 1:
        raise ConfigError(f"expected exactly one YAML document, found {len(docs)}.", path=path,
                          hint="Restore the file from git (git checkout -- stackctl.lock).")
    doc = docs[0]
    validate(doc, LOCK_SPEC, path=Path(path))
    entries = []
    for i, node in enumerate(doc["vendor"]):
        validate(node, ENTRY_SPEC, path=Path(path), where=f"vendor[{i}].")
        _check_places(node, i, path)
        entries.append(LockEntry.from_yaml(dict(node), path=path, where=f"vendor[{i}]."))
    return Lock(entries=tuple(entries))


def _check_places(node: Any, i: int, path: Path | str) -> None:
    """The lock names a folder stackctl reads and a branch it moves: the folder must be
    inside the repository, the branch the entry's own vendor branch (never main)."""
    where = f"vendor[{i}]."
    if not relative_inside(str(node["path"])):
        raise ConfigError(
            f"{where}path {str(node['path'])!r} is not a path inside the repository; it must "
            "be relative to the stack's folder and stay below it (vendor/<name>).",
            path=path, line=line_of(node, "path"),
            hint=f"Restore the file from git (git checkout -- {LOCK_FILE}).")
    want = f"vendor/{node['name']}"
    if str(node["vendorBranch"]) != want:
        raise ConfigError(
            f"{where}vendorBranch {str(node['vendorBranch'])!r} is not the vendor branch of "
            f"{str(node['name'])!r}, which is {want!r}; stackctl moves that branch and will "
            "not move another.",
            path=path, line=line_of(node, "vendorBranch"),
            hint=f"Restore the file from git (git checkout -- {LOCK_FILE}).")


def read_lock(root: Path) -> Lock | None:
    """The lock of the deployment repo at `root`, or None when nothing was vendored yet."""
    path = root / LOCK_FILE
    try:
        data = physically_inside(root, path, what=LOCK_FILE, file=path).read_bytes()
    except FileNotFoundError:
        return None
    except OSError as e:
        raise ConfigError(f"cannot read the file: {e.strerror}", path=path) from e
    return parse_lock(decode(data, path=path), path=path)
