"""Revisions and the ApplySet inventory of a cluster, stored in the cluster itself.

Each apply records a revision: the manifests it applied (gzip-compressed JSON, split into
chunks below the 1 MiB object size limit, since Kubeflow's render is 5-10 MB of YAML), the
git commit, the user, the time and the object count. They are Secrets, not ConfigMaps,
because the manifests hold Secret values: reading them needs Secret-level RBAC, as with Helm's
release storage. Names are `stackctl.<cluster>.v<N>` (further chunks `...v<N>.c<i>`).

The inventory is ApplySet-compatible (KEP-3659, kubectl's `--applyset`): a parent Secret
`stackctl.<cluster>.applyset` with the label `applyset.kubernetes.io/id`, the annotations
`applyset.kubernetes.io/tooling`, `contains-group-kinds` and `additional-namespaces`, and
the label `applyset.kubernetes.io/part-of=<id>` on every member.
"""

from __future__ import annotations

import base64
import datetime as dt
import getpass
import gzip
import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from gitops import __version__
from gitops.errors import ClusterError
from gitops.kube import Kube, KubeApiError
from gitops.kube.client import METADATA_LIST, METADATA_ONLY
from gitops.resource import ResourceId

PART_OF = "applyset.kubernetes.io/part-of"
APPLYSET_ID = "applyset.kubernetes.io/id"
TOOLING = "applyset.kubernetes.io/tooling"
GROUP_KINDS = "applyset.kubernetes.io/contains-group-kinds"
ADDITIONAL_NS = "applyset.kubernetes.io/additional-namespaces"

L_OWNER = "app.kubernetes.io/managed-by"
L_CLUSTER = "stackctl.dev/cluster"
L_REVISION = "stackctl.dev/revision"
L_STATUS = "stackctl.dev/status"
L_CHUNK = "stackctl.dev/chunk"
A_COMMIT = "stackctl.dev/commit"
A_USER = "stackctl.dev/user"
A_TIME = "stackctl.dev/time"
A_OBJECTS = "stackctl.dev/objects"
A_CHUNKS = "stackctl.dev/chunks"
A_DIGEST = "stackctl.dev/digest"
A_DESCRIPTION = "stackctl.dev/description"
A_REPLACED = "stackctl.dev/replaced"  # JSON list of the objects the revision re-creates
A_DIRTY = "stackctl.dev/dirty"  # "true": applied from a working tree with uncommitted changes
SECRET_TYPE = "stackctl.dev/revision"
DATA_KEY = "manifests.json.gz"

# Base64 grows data by 4/3: 700 KiB of gzip stays under the 1 MiB Secret limit with room
# for metadata.
CHUNK_BYTES = 700 * 1024



class RevisionStatus(StrEnum):
    """The status label of a recorded revision."""

    PENDING = "pending"  # being applied (or its apply stopped: then abandoned)
    DEPLOYED = "deployed"  # the current one: applied and healthy
    FAILED = "failed"
    ROLLED_BACK = "rolled-back"  # replaced by an explicit rollback to another one
    SUPERSEDED = "superseded"  # replaced by a later deployed one


def applyset_id(name: str, namespace: str, kind: str, group: str) -> str:
    """The ApplySet id kubectl computes for a parent (kubectl/pkg/cmd/apply/applyset.go):
    `applyset-<base64url, no padding, of sha256("<name>.<namespace>.<kind>.<group>")>-v1`."""
    digest = hashlib.sha256(".".join((name, namespace, kind, group)).encode()).digest()
    return "applyset-" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode() + "-v1"


def parent_name(cluster: str) -> str:
    return f"stackctl.{cluster}.applyset"


def cluster_applyset_id(cluster: str, records_namespace: str) -> str:
    return applyset_id(parent_name(cluster), records_namespace, "Secret", "")


def secret_name(cluster: str, revision: int, chunk: int = 0) -> str:
    base = f"stackctl.{cluster}.v{revision}"
    return base if chunk == 0 else f"{base}.c{chunk}"


# -- manifests payload ----------------------------------------------------------------
def encode_manifests(objects: Sequence[dict[str, Any]]) -> bytes:
    text = json.dumps(list(objects), sort_keys=True, separators=(",", ":"))
    return gzip.compress(text.encode(), compresslevel=6, mtime=0)


def decode_manifests(blob: bytes) -> list[dict[str, Any]]:
    data = json.loads(gzip.decompress(blob).decode())
    if not isinstance(data, list):
        raise ValueError("manifests payload is not a list")
    return data


def split_chunks(blob: bytes, size: int = CHUNK_BYTES) -> list[bytes]:
    return [blob[i:i + size] for i in range(0, len(blob), size)] or [b""]


@dataclass(frozen=True)
class RevisionInfo:
    revision: int
    status: RevisionStatus | str  # a str only for a label stackctl does not know
    commit: str
    user: str
    time: str
    object_count: int
    description: str = ""
    chunks: int = 1
    replaced: tuple[str, ...] = ()  # objects deleted and re-created by this revision
    dirty: bool = False  # applied from a working tree with uncommitted changes to its render

    @property
    def source(self) -> str:
        """The commit, '-dirty' appended as `git describe --dirty` does."""
        return f"{self.commit}-dirty" if self.dirty and self.commit else self.commit


class Revisions(tuple[RevisionInfo, ...]):
    """The recorded revisions of a cluster, oldest first."""

    __slots__ = ()

    def latest(self, status: RevisionStatus | None = None) -> RevisionInfo | None:
        """The newest revision (with `status`, when given)."""
        found = [r for r in self if status is None or r.status == status]
        return found[-1] if found else None

    @property
    def deployed(self) -> RevisionInfo | None:
        """The latest deployed revision: what the cluster runs, by stackctl's records."""
        return self.latest(RevisionStatus.DEPLOYED)

    @property
    def pending(self) -> tuple[RevisionInfo, ...]:
        return tuple(r for r in self if r.status == RevisionStatus.PENDING)

    @property
    def unfinished(self) -> tuple[RevisionInfo, ...]:
        """The revisions after the latest deployed one that did not finish: pending (its
        apply was killed, lost its lease, or still runs) or failed (and not rolled back,
        or not all the way). What they created may still be live."""
        dep = self.deployed
        return tuple(r for r in self if (dep is None or r.revision > dep.revision)
                     and r.status in (RevisionStatus.PENDING, RevisionStatus.FAILED))

    @property
    def next_number(self) -> int:
        return max((r.revision for r in self), default=0) + 1

    def find(self, revision: int) -> RevisionInfo | None:
        return next((r for r in self if r.revision == revision), None)


def _status(value: str) -> RevisionStatus | str:
    try:
        return RevisionStatus(value)
    except ValueError:
        return value


def _now() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def current_user() -> str:
    for var in ("STACKCTL_USER", "GITLAB_USER_LOGIN", "GITHUB_ACTOR"):
        if os.environ.get(var):
            return os.environ[var]
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"


def _info(secret: dict[str, Any]) -> RevisionInfo:
    meta = secret.get("metadata") or {}
    labels, ann = meta.get("labels") or {}, meta.get("annotations") or {}
    return RevisionInfo(
        revision=int(labels.get(L_REVISION, 0)),
        status=_status(str(labels.get(L_STATUS, ""))),
        commit=str(ann.get(A_COMMIT, "")),
        user=str(ann.get(A_USER, "")),
        time=str(ann.get(A_TIME, "")),
        object_count=int(ann.get(A_OBJECTS, 0) or 0),
        description=str(ann.get(A_DESCRIPTION, "")),
        chunks=int(ann.get(A_CHUNKS, 1) or 1),
        replaced=_replaced(ann.get(A_REPLACED)),
        dirty=str(ann.get(A_DIRTY, "")).lower() == "true",
    )


def _replaced(value: Any) -> tuple[str, ...]:
    try:
        found = json.loads(str(value)) if value else []
    except ValueError:
        return ()
    return tuple(str(x) for x in found) if isinstance(found, list) else ()


class Records:
    """The revisions and the ApplySet parent of one cluster, in its records namespace."""

    def __init__(self, kube: Kube, *, cluster: str, namespace: str) -> None:
        self.kube = kube
        self.cluster = cluster
        self.namespace = namespace
        self.applyset_id = cluster_applyset_id(cluster, namespace)

    @property
    def _secrets(self) -> str:
        return f"/api/v1/namespaces/{self.namespace}/secrets"

    def ensure_namespace(self) -> None:
        try:
            self.kube.request("GET", f"/api/v1/namespaces/{self.namespace}")
        except KubeApiError as e:
            if e.code != 404:
                raise
            try:
                self.kube.request("POST", "/api/v1/namespaces", body={
                    "apiVersion": "v1", "kind": "Namespace",
                    "metadata": {"name": self.namespace, "labels": {L_OWNER: "stackctl"}},
                })
            except KubeApiError as e2:
                if e2.code != 409:
                    raise

    def revisions(self) -> Revisions:
        """Every recorded revision of the cluster, oldest first. Read as metadata only:
        the manifests each revision holds (up to 700 KiB a chunk) are not needed here."""
        try:
            doc = self.kube.request("GET", self._secrets, query={
                "labelSelector": f"{L_CLUSTER}={self.cluster},{L_CHUNK}=0",
            }, accept=METADATA_LIST)
        except KubeApiError as e:
            if e.code == 404:
                return Revisions()
            raise
        infos = [_info(s) for s in doc.get("items") or []]
        return Revisions(sorted(infos, key=lambda i: i.revision))

    def latest(self, *, status: RevisionStatus | None = None) -> RevisionInfo | None:
        """The newest recorded revision (with `status`, when given)."""
        return self.revisions().latest(status)

    def manifests(self, revision: int) -> list[dict[str, Any]]:
        first = self._get(secret_name(self.cluster, revision))
        if first is None:
            raise ClusterError(
                f"revision {revision} of cluster {self.cluster!r} is not recorded in namespace "
                f"{self.namespace}.",
                hint=f"Run 'stackctl history --cluster {self.cluster}' for the revisions.",
            )
        info = _info(first)
        parts = [first]
        for i in range(1, info.chunks):
            part = self._get(secret_name(self.cluster, revision, i))
            if part is None:
                raise ClusterError(
                    f"revision {revision} of cluster {self.cluster!r} is incomplete: chunk {i} "
                    f"of {info.chunks} ({secret_name(self.cluster, revision, i)}) is missing.",
                    hint="Roll back to another revision, or apply again from git.",
                )
            parts.append(part)
        blob = b"".join(base64.b64decode((p.get("data") or {}).get(DATA_KEY, "")) for p in parts)
        digest = ((first.get("metadata") or {}).get("annotations") or {}).get(A_DIGEST)
        if digest and hashlib.sha256(blob).hexdigest() != digest:
            raise ClusterError(
                f"revision {revision} of cluster {self.cluster!r} is corrupt (digest mismatch).",
                hint="Roll back to another revision, or apply again from git.",
            )
        return decode_manifests(blob)

    def _get(self, name: str) -> dict[str, Any] | None:
        try:
            return self.kube.request("GET", f"{self._secrets}/{name}")
        except KubeApiError as e:
            if e.code == 404:
                return None
            raise

    def write(self, revision: int, objects: Sequence[dict[str, Any]], *,
              status: RevisionStatus,
              commit: str | None, description: str = "",
              replaced: Sequence[str] = (), dirty: bool = False) -> RevisionInfo:
        blob = encode_manifests(objects)
        chunks = split_chunks(blob)
        for i in reversed(range(len(chunks))):  # chunk 0 last: it makes the revision visible
            labels = {L_OWNER: "stackctl", L_CLUSTER: self.cluster,
                      L_REVISION: str(revision), L_CHUNK: str(i)}
            annotations: dict[str, str] = {A_CHUNKS: str(len(chunks))}
            if i == 0:
                labels[L_STATUS] = str(status)
                annotations.update({
                    A_COMMIT: commit or "", A_USER: current_user(), A_TIME: _now(),
                    A_OBJECTS: str(len(objects)), A_DIGEST: hashlib.sha256(blob).hexdigest(),
                    A_DESCRIPTION: description,
                })
                if replaced:
                    annotations[A_REPLACED] = json.dumps(list(replaced))
                if dirty:
                    annotations[A_DIRTY] = "true"
            body = {
                "apiVersion": "v1", "kind": "Secret", "type": SECRET_TYPE,
                "metadata": {"name": secret_name(self.cluster, revision, i),
                             "namespace": self.namespace, "labels": labels,
                             "annotations": annotations},
                "data": {DATA_KEY: base64.b64encode(chunks[i]).decode()},
            }
            self.kube.apply(body, force=True)
        info = self.info(revision)
        assert info is not None
        return info

    def info(self, revision: int) -> RevisionInfo | None:
        secret = self._get(secret_name(self.cluster, revision))
        return _info(secret) if secret is not None else None

    def set_status(self, revision: int, status: RevisionStatus, *,
                   description: str | None = None) -> None:
        meta: dict[str, Any] = {"labels": {L_STATUS: str(status)}}
        if description is not None:
            meta["annotations"] = {A_DESCRIPTION: description}
        self.kube.request(
            "PATCH", f"{self._secrets}/{secret_name(self.cluster, revision)}",
            body={"metadata": meta}, content_type="application/merge-patch+json",
        )

    def parent_group_kinds(self) -> list[tuple[str, str]]:
        """(group, kind) of every group-kind the ApplySet parent says members may have:
        widened before an apply creates anything, narrowed only once one completes."""
        try:
            parent = self.kube.request("GET", f"{self._secrets}/{parent_name(self.cluster)}",
                                       accept=METADATA_ONLY)
        except KubeApiError as e:
            if e.code == 404:
                return []
            raise
        text = ((parent.get("metadata") or {}).get("annotations") or {}).get(GROUP_KINDS)
        out = []
        for gk in str(text or "").split(","):
            kind, _, group = gk.strip().partition(".")
            if kind:
                out.append((group, kind))
        return out

    def write_parent(self, members: Iterable[ResourceId]) -> None:
        """Create or update the ApplySet parent with the group-kinds and namespaces of the
        members, as kubectl does before and after an apply."""
        ids = list(members)
        group_kinds = sorted({r.group_kind for r in ids})
        namespaces = sorted({r.namespace for r in ids if r.namespace} - {self.namespace})
        self.kube.apply({
            "apiVersion": "v1", "kind": "Secret", "type": SECRET_TYPE,
            "metadata": {
                "name": parent_name(self.cluster), "namespace": self.namespace,
                "labels": {APPLYSET_ID: self.applyset_id, L_OWNER: "stackctl",
                           L_CLUSTER: self.cluster},
                "annotations": {
                    TOOLING: f"stackctl/v{__version__}",
                    GROUP_KINDS: ",".join(group_kinds),
                    ADDITIONAL_NS: ",".join(namespaces),
                },
            },
        }, force=True)
