"""`Kube`: the requests stackctl sends to an API server, through the official client.

Requests go through `ApiClient.call_api` with paths built from discovery, so that any kind
(built-in or custom) is handled the same way, as kubectl's dynamic client does. Server-side
apply is a PATCH with content type `application/apply-patch+yaml` (JSON is valid YAML), field
manager `stackctl`, and `force=true` only when the user asked to take over conflicting fields
(https://kubernetes.io/docs/reference/using-api/server-side-apply/#conflicts). A request
that fails transiently (a 429, a restarting server) is sent again (gitops.kube.poll).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from gitops.kube.errors import (
    KubeApiError,
    UnknownKindError,
    answer_error,
    client_failure,
    translate,
)
from gitops.kube.poll import retrying
from gitops.resource import split_api_version

FIELD_MANAGER = "stackctl"
# The Accept header that asks for an object's metadata only (as kubectl get's server-side
# "-o name" and the metadata informers do), for any verb that returns an object or a list.
METADATA_ONLY = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"
METADATA_LIST = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"


@dataclass(frozen=True)
class ResourceInfo:
    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    # The hash discovery gives of the resource's storage version (its group, version and
    # kind): it changes once the API server stores new writes at another version.
    storage_version_hash: str = ""

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


class Kube:
    """A thin, thread-safe layer over an ApiClient: discovery cached once per run, raw JSON
    requests, retries of transient failures, and every failure as a ClusterError."""

    def __init__(self, api: Any) -> None:
        self.api = api
        self._lock = threading.Lock()
        self._resources: dict[str, dict[str, ResourceInfo]] = {}  # group/version -> kind

    @classmethod
    def of(cls, client: Any) -> Kube:
        """`client` itself when it is a Kube, else a Kube over that ApiClient."""
        return client if isinstance(client, Kube) else cls(client)

    @property
    def host(self) -> str:
        return str(self.api.configuration.host)

    # -- requests ---------------------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        timeout: float = 60.0,
        accept: str = "application/json",
    ) -> dict[str, Any]:
        return self.request_full(method, path, query=query, body=body,
                                 content_type=content_type, timeout=timeout, accept=accept)[1]

    def request_full(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        timeout: float = 60.0,
        accept: str = "application/json",
        verb: str | None = None,
    ) -> tuple[int, dict[str, Any]]:
        """(HTTP status, decoded body) of a request; raises ClusterError subclasses. `verb`
        says what the request does when that is not its method ("APPLY" for a server-side
        apply PATCH), for the retry of transient failures."""
        url_path = path + ("?" + urlencode(query) if query else "")
        headers = {"Accept": accept, "Content-Type": content_type}

        def send() -> tuple[int, dict[str, Any]]:
            return self._send(method, path, url_path, headers, body, timeout)

        return retrying(send, verb=verb or method)

    def _send(self, method: str, path: str, url_path: str, headers: dict[str, str],
              body: Any, timeout: float) -> tuple[int, dict[str, Any]]:
        method_, url, headers_, body_, _ = self.api.param_serialize(
            method, url_path, header_params=dict(headers), body=body,
            auth_settings=["BearerToken"],
        )
        action = f"{method} {path}"
        try:
            resp = self.api.call_api(method_, url, header_params=headers_, body=body_,
                                     _request_timeout=timeout)
            data = resp.read()
        except Exception as e:
            if not client_failure(e):
                raise  # not the client's failure: a bug, with its own traceback
            raise translate(e, action, server=self.host) from e
        text = data.decode("utf-8") if isinstance(data, bytes) else str(data or "")
        if 200 <= resp.status < 300:
            return int(resp.status), (json.loads(text) if text else {})
        raise answer_error(int(resp.status), text, action, headers=resp.headers,
                           configuration=self.api.configuration)

    # -- discovery --------------------------------------------------------------------
    def _load_group_version(self, api_version: str) -> dict[str, ResourceInfo]:
        group, version = split_api_version(api_version)
        path = f"/apis/{api_version}" if group else f"/api/{version}"
        try:
            doc = self.request("GET", path)
        except KubeApiError as e:
            if e.code == 404:
                return {}
            raise
        kinds: dict[str, ResourceInfo] = {}
        for res in doc.get("resources") or []:
            if "/" in str(res.get("name", "")):
                continue  # subresources such as deployments/scale
            kinds[str(res["kind"])] = ResourceInfo(
                group=group, version=version, kind=str(res["kind"]),
                plural=str(res["name"]), namespaced=bool(res.get("namespaced")),
                storage_version_hash=str(res.get("storageVersionHash") or ""),
            )
        return kinds

    def resource(self, api_version: str, kind: str, *, refresh: bool = False) -> ResourceInfo:
        """The resource serving `kind` at `api_version`; looked up once per group/version
        per run (again with refresh=True, after CRDs are established)."""
        with self._lock:
            cached = self._resources.get(api_version)
        if cached is None or (refresh and kind not in cached):
            cached = self._load_group_version(api_version)
            with self._lock:
                self._resources[api_version] = cached
        info = cached.get(kind)
        if info is None:
            raise UnknownKindError(
                f"the cluster does not serve {kind} in {api_version}.",
                hint="Install its CustomResourceDefinition (in the same apply, or first), "
                     "or fix the apiVersion.",
            )
        return info

    def group_version(self, api_version: str, *, refresh: bool = False
                      ) -> dict[str, ResourceInfo]:
        """The kinds served at `api_version` (discovery, cached once per run; read again
        with `refresh`)."""
        with self._lock:
            cached = None if refresh else self._resources.get(api_version)
        if cached is None:
            cached = self._load_group_version(api_version)
            with self._lock:
                self._resources[api_version] = cached
        return cached

    def preferred_version(self, group: str) -> str | None:
        """The apiVersion the server prefers for `group` ("v1" for the core group); None
        when it does not serve the group."""
        if not group:
            return "v1"
        try:
            doc = self.request("GET", f"/apis/{quote(group, safe='')}")
        except KubeApiError as e:
            if e.code == 404:
                return None
            raise
        preferred = (doc.get("preferredVersion") or {}).get("groupVersion")
        return str(preferred) if preferred else None

    def knows(self, api_version: str, kind: str) -> bool:
        try:
            self.resource(api_version, kind, refresh=True)
        except UnknownKindError:
            return False
        return True

    # -- paths ------------------------------------------------------------------------
    def collection_path(self, info: ResourceInfo, namespace: str = "") -> str:
        base = f"/apis/{info.group}/{info.version}" if info.group else f"/api/{info.version}"
        if info.namespaced and namespace:
            return f"{base}/namespaces/{quote(namespace, safe='')}/{info.plural}"
        return f"{base}/{info.plural}"

    def object_path(self, info: ResourceInfo, namespace: str, name: str) -> str:
        return self.collection_path(info, namespace) + "/" + quote(name, safe="")

    def info_of(self, obj: dict[str, Any]) -> ResourceInfo:
        return self.resource(str(obj.get("apiVersion") or ""), str(obj.get("kind") or ""))

    # -- verbs ------------------------------------------------------------------------
    def apply(self, obj: dict[str, Any], *, dry_run: bool = False,
              force: bool = False) -> dict[str, Any]:
        return self.apply_full(obj, dry_run=dry_run, force=force)[1]

    def apply_full(self, obj: dict[str, Any], *, dry_run: bool = False,
                   force: bool = False, metadata_only: bool = False,
                   ) -> tuple[int, dict[str, Any]]:
        """Server-side apply; the status is 201 when the object was created. With
        `metadata_only` the server answers with the object's metadata alone
        (PartialObjectMetadata): a large object (a CRD's schema) is then neither encoded
        by the server nor decoded here when the caller only needs the outcome."""
        info = self.info_of(obj)
        meta = obj.get("metadata") or {}
        query = {"fieldManager": FIELD_MANAGER}
        if force:
            query["force"] = "true"
        if dry_run:
            query["dryRun"] = "All"
        path = self.object_path(info, str(meta.get("namespace") or ""), str(meta["name"]))
        # Serialized here: the client would otherwise walk the whole body in
        # sanitize_for_serialization and then json.dumps it; a string is sent as it is.
        return self.request_full("PATCH", path, query=query,
                                 body=json.dumps(obj, separators=(",", ":")),
                                 content_type="application/apply-patch+yaml",
                                 accept=METADATA_ONLY if metadata_only else "application/json",
                                 verb="APPLY")

    def get(self, api_version: str, kind: str, namespace: str, name: str
            ) -> dict[str, Any] | None:
        info = self.resource(api_version, kind)
        try:
            got = self.request("GET", self.object_path(info, namespace, name))
        except KubeApiError as e:
            if e.code == 404:
                return None
            raise
        got.setdefault("apiVersion", api_version)
        got.setdefault("kind", kind)
        return got

    def list(self, api_version: str, kind: str, *, namespace: str = "",
             label_selector: str | None = None, field_selector: str | None = None,
             ) -> list[dict[str, Any]]:
        info = self.resource(api_version, kind)
        query: dict[str, str] = {}
        if label_selector:
            query["labelSelector"] = label_selector
        if field_selector:
            query["fieldSelector"] = field_selector
        items: list[dict[str, Any]] = []
        while True:
            doc = self.request("GET", self.collection_path(info, namespace), query=query or None)
            for item in doc.get("items") or []:
                item.setdefault("apiVersion", info.api_version)
                item.setdefault("kind", kind)
                items.append(item)
            token = (doc.get("metadata") or {}).get("continue")
            if not token:
                return items
            query["continue"] = str(token)

    def delete(self, api_version: str, kind: str, namespace: str, name: str, *,
               propagation: str = "Background", dry_run: bool = False,
               uid: str | None = None,
               preconditions: dict[str, str] | None = None) -> bool:
        """Delete an object; False when it was already gone. With `uid`, only that very
        object; with `preconditions` (uid, resourceVersion), only while it is still that
        version: otherwise the server answers 409 Conflict (a KubeApiError)."""
        info = self.resource(api_version, kind)
        body: dict[str, Any] = {"apiVersion": "v1", "kind": "DeleteOptions",
                                "propagationPolicy": propagation}
        if dry_run:
            body["dryRun"] = ["All"]
        if uid or preconditions:
            body["preconditions"] = {**(preconditions or {}), **({"uid": uid} if uid else {})}
        try:
            self.request("DELETE", self.object_path(info, namespace, name), body=body)
        except KubeApiError as e:
            if e.code == 404:
                return False
            raise
        return True

    def create(self, obj: dict[str, Any], *, dry_run: bool = False,
               metadata_only: bool = False) -> dict[str, Any]:
        """Create (POST) an object; with `dry_run` the server validates and admits it and
        answers with the object it would store, storing nothing."""
        info = self.info_of(obj)
        ns = str((obj.get("metadata") or {}).get("namespace") or "")
        query = {"fieldManager": FIELD_MANAGER}
        if dry_run:
            query["dryRun"] = "All"
        return self.request("POST", self.collection_path(info, ns), query=query, body=obj,
                            accept=METADATA_ONLY if metadata_only else "application/json")

    def update(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Replace (PUT) an object as it is, `metadata.resourceVersion` included: a 409
        Conflict when it changed since it was read (not retried: the caller reads it
        again)."""
        info = self.info_of(obj)
        meta = obj.get("metadata") or {}
        path = self.object_path(info, str(meta.get("namespace") or ""), str(meta["name"]))
        return self.request("PUT", path, query={"fieldManager": FIELD_MANAGER}, body=obj)

    def patch(self, api_version: str, kind: str, namespace: str, name: str,
              body: dict[str, Any], *, subresource: str = "") -> dict[str, Any]:
        """A JSON merge patch of an object (or of its `subresource`, such as `status`)."""
        info = self.resource(api_version, kind)
        path = self.object_path(info, namespace, name) + (f"/{subresource}" if subresource
                                                          else "")
        return self.request("PATCH", path, query={"fieldManager": FIELD_MANAGER}, body=body,
                            content_type="application/merge-patch+json")
