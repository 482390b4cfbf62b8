"""Storage migration of a CRD whose new spec drops a version the cluster still stores.

The API server refuses a CRD that drops a version still listed in its
`status.storedVersions` ("v1alpha1 was previously a storage version, and must remain in
spec.versions"): objects may be stored at it in etcd. Upstream releases retire versions
anyway (Kubeflow v1.10.2 drops knative's domainmappings v1alpha1), so the apply migrates
storage first, the way kube-storage-version-migrator does and the Kubernetes docs ask
("Upgrade existing objects to a new stored version"):

1. apply the CRD as the new spec with each retired version kept, not served and not the
   storage version (`transitional`: the spec allows any number of unserved versions);
2. wait until discovery's `storageVersionHash` of the kind is the new storage version's
   (the API server writes new objects at it from then on: the migrator's trigger);
3. rewrite every custom resource of the kind: a GET-free PUT of each listed object, read
   again on a 409 Conflict (kube-storage-version-migrator's `migrateOneItem`); the server
   stores each at the new storage version; its `managedFields` entries recorded at a
   retired version are moved to the new one (`relabelled`: else no server-side apply of
   the object works once the version is gone);
4. set `status.storedVersions` to the new storage version alone (the CRD's status
   subresource);
5. apply the new spec (the caller, in the same CRD phase).

A failure at any step stops before step 4: the CRD keeps the retired version, the objects
are all readable, and a later apply starts again at step 1.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from gitops.errors import ClusterError
from gitops.kinds import CRD
from gitops.kube import POLL, Kube, KubeApiError, UnknownKindError, poll
from gitops.resource import ResourceId

Obj = dict[str, Any]
CRD_API = "apiextensions.k8s.io/v1"
CONFLICT_RETRIES = 5  # reads and rewrites of one object another writer keeps changing
PROGRESS_EVERY = 100  # objects between two progress events


class MigrationError(ClusterError):
    """A storage migration stopped; the CRD keeps its retired versions."""


@dataclass(frozen=True)
class Migration:
    """A CRD whose live `status.storedVersions` holds versions (`retired`) its new spec
    drops: its objects are rewritten at `storage` before the new spec is applied."""

    id: ResourceId
    group: str
    kind: str
    retired: tuple[str, ...]
    storage: str
    transitional: Obj  # the new spec with the retired versions kept, not served
    objects: int | None  # custom resources found when calculated (None: could not list)

    def describe(self) -> str:
        count = "its" if self.objects is None else f"{self.objects}"
        return (f"storage migration: {count} {self.kind} object(s) stored at "
                f"{', '.join(self.retired)} are rewritten at {self.storage} before the CRD "
                f"drops {', '.join(self.retired)}")


def _versions(crd: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [v for v in (crd.get("spec") or {}).get("versions") or [] if isinstance(v, dict)]


def plan_migrations(kube: Kube, desired: list[Obj], live: Mapping[ResourceId, Obj]
                    ) -> dict[ResourceId, Migration]:
    """The migrations applying `desired` needs: its CRDs whose live versions stored
    objects at a version the new spec no longer lists."""
    out: dict[ResourceId, Migration] = {}
    for crd in desired:
        rid = ResourceId.of(crd)
        current = live.get(rid)
        if (rid.group, rid.kind) != CRD or current is None or crd.get("apiVersion") != CRD_API:
            continue
        names = {str(v.get("name")) for v in _versions(crd)}
        stored = [str(v) for v in (current.get("status") or {}).get("storedVersions") or []]
        retired = tuple(v for v in stored if v not in names)
        storage = next((str(v["name"]) for v in _versions(crd) if v.get("storage")), None)
        if not retired or storage is None:
            continue
        spec = crd.get("spec") or {}
        kind = str((spec.get("names") or {}).get("kind") or "")
        group = str(spec.get("group") or "")
        out[rid] = Migration(rid, group, kind, retired, storage,
                             transitional(crd, current, retired),
                             _count(kube, group, kind, current))
    return out


def transitional(crd: Obj, live: Mapping[str, Any], retired: tuple[str, ...]) -> Obj:
    """The new spec with each retired version kept as the live CRD has it (its schema),
    neither served nor the storage version."""
    out = copy.deepcopy(crd)
    old = {str(v.get("name")): v for v in _versions(live)}
    versions = out["spec"]["versions"]
    for name in retired:
        kept = copy.deepcopy(old.get(name) or {
            "schema": {"openAPIV3Schema": {"type": "object",
                                           "x-kubernetes-preserve-unknown-fields": True}}})
        kept.update(name=name, served=False, storage=False)
        kept.pop("deprecated", None)
        kept.pop("deprecationWarning", None)
        versions.append(kept)
    return out


def _count(kube: Kube, group: str, kind: str, live: Mapping[str, Any]) -> int | None:
    for v in _versions(live):
        if not v.get("served"):
            continue
        try:
            return len(kube.list(f"{group}/{v.get('name')}", kind))
        except (UnknownKindError, KubeApiError):
            continue
    return None


def storage_version_hash(group: str, version: str, kind: str) -> str:
    """Discovery's `storageVersionHash` of a storage version: the first 8 bytes of the
    sha256 of "group/version/kind", base64 (apiserver's storageversionhash.StorageVersionHash)."""
    digest = hashlib.sha256(f"{group}/{version}/{kind}".encode()).digest()
    return base64.b64encode(digest[:8]).decode()


def migrate(kube: Kube, m: Migration, *, deadline: float,
            say: Callable[[str], None]) -> int:
    """Steps 2 to 4 (the transitional CRD is applied and established). Returns the number
    of objects rewritten; raises MigrationError (the CRD keeps its retired versions)."""
    api_version = f"{m.group}/{m.storage}"
    want = storage_version_hash(m.group, m.storage, m.kind)

    def switched() -> bool | None:
        info = kube.group_version(api_version, refresh=True).get(m.kind)
        # An API server without storage version hashes (before 1.15) says nothing: the
        # CRD is Established, which is what there is to wait for.
        return True if info is not None and info.storage_version_hash in ("", want) \
            else None

    if poll(switched, deadline=deadline, backoff=POLL) is None:
        raise MigrationError(
            f"the API server did not switch {m.kind} to storage version {m.storage} in time "
            f"(discovery's storageVersionHash is not {want}); nothing was rewritten and "
            f"{m.id} keeps {', '.join(m.retired)}.",
            hint="Run the apply again; it starts the migration over.")
    try:
        items = kube.list(api_version, m.kind)
    except ClusterError as e:
        raise MigrationError(f"cannot list the {m.kind} objects to migrate: {e.message}",
                             hint="Run the apply again once the API server answers.") from e
    say(f"migrating storage of {m.id}: rewriting {len(items)} {m.kind} object(s) at "
        f"{m.storage}")
    for n, item in enumerate(items, start=1):
        _rewrite(kube, api_version, m, item)
        if n % PROGRESS_EVERY == 0 and n < len(items):
            say(f"migrating storage of {m.id}: {n} of {len(items)} rewritten")
        if time.monotonic() > deadline:
            raise MigrationError(
                f"the storage migration of {m.id} ran out of time after {n} of {len(items)} "
                f"{m.kind} object(s); {m.id} keeps {', '.join(m.retired)}.",
                hint="Give it more time with --timeout and run the apply again; objects "
                     "already rewritten are not rewritten twice.")
    try:
        kube.patch(CRD_API, CRD[1], "", m.id.name,
                   {"status": {"storedVersions": [m.storage]}}, subresource="status")
    except ClusterError as e:
        raise MigrationError(
            f"the {len(items)} {m.kind} object(s) were rewritten at {m.storage}, but "
            f"status.storedVersions of {m.id} could not be set: {e.message}",
            hint="Run the apply again: the rewrite is repeated and the status set.") from e
    say(f"migrated storage of {m.id}: {len(items)} {m.kind} object(s) at {m.storage}; "
        f"status.storedVersions is [{m.storage}]")
    return len(items)


def relabelled(item: Obj, m: Migration) -> Obj:
    """The object with its `managedFields` entries recorded at a retired version moved to
    the new storage version. Server-side apply converts the object to the version of each
    entry to work out who owns what; once the CRD drops the version, every apply of the
    object fails ("request to convert CR to an invalid group/version", kubernetes#111937,
    knative/operator#1184). The field paths are the same in both versions when the CRD
    converts with strategy None (its versions differ only in name); with a conversion
    webhook they may not be, and the owner's next apply records its fields again."""
    retired = {f"{m.group}/{v}" for v in m.retired}
    entries = (item.get("metadata") or {}).get("managedFields") or []
    if not any(e.get("apiVersion") in retired for e in entries):
        return item
    out = copy.deepcopy(item)
    for e in out["metadata"]["managedFields"]:
        if e.get("apiVersion") in retired:
            e["apiVersion"] = f"{m.group}/{m.storage}"
    return out


def _rewrite(kube: Kube, api_version: str, m: Migration, item: Obj) -> None:
    meta = item.get("metadata") or {}
    ns, name = str(meta.get("namespace") or ""), str(meta.get("name") or "")
    where = f"{m.kind} {ns + '/' if ns else ''}{name}"
    for _ in range(CONFLICT_RETRIES):
        try:
            kube.update(relabelled(item, m))
            return
        except KubeApiError as e:
            if e.code == 404:
                return  # deleted meanwhile: nothing left to migrate
            if e.code != 409:
                raise MigrationError(
                    f"cannot rewrite {where} at {m.storage}: {e.server_message}; {m.id} "
                    f"keeps {', '.join(m.retired)}.",
                    hint="Fix the object (it must be valid at the new version) and run "
                         "the apply again.") from e
        # Changed since it was listed: written again by its controller, possibly before
        # the switch; read it and write it once more.
        got = kube.get(api_version, m.kind, ns, name)
        if got is None:
            return
        item = got
    raise MigrationError(
        f"cannot rewrite {where}: it kept changing under the migration; {m.id} keeps "
        f"{', '.join(m.retired)}.", hint="Run the apply again.")
