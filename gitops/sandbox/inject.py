"""The sandbox's CA injector: what cert-manager's cainjector and istiod do on a real
cluster, for the answerer (answer.py) to be trusted.

Into every webhook served by a Service (mutating and validating webhook configurations,
CRD conversion webhooks) whose `caBundle` an injector would fill in — the object carries a
cert-manager `inject-ca-from` annotation, or the bundle is empty or holds no certificate —
it writes the sandbox CA, through an update as cainjector does (field manager
`sandbox-cainjector`). A webhook whose Service names a backend of its own
(`sandbox.stackctl.dev/backend`) keeps the bundle it was given.
"""

from __future__ import annotations

import base64
import binascii
import copy
from typing import Any

from gitops.apply.deps import injected_by
from gitops.errors import ClusterError
from gitops.kube import Kube, KubeApiError
from gitops.kube.client import METADATA_LIST
from gitops.sandbox.egress import BACKEND_ANNOTATION

FIELD_MANAGER = "sandbox-cainjector"
KINDS = (
    ("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration"),
    ("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration"),
    ("apiextensions.k8s.io/v1", "CustomResourceDefinition"),
)


def holds_certificate(bundle: str | None) -> bool:
    try:
        return b"-----BEGIN CERTIFICATE-----" in base64.b64decode(bundle or "", validate=True)
    except (binascii.Error, ValueError):
        return False


def _configs(obj: dict[str, Any]) -> list[dict[str, Any]]:
    if obj.get("kind") == "CustomResourceDefinition":
        conv = (obj.get("spec") or {}).get("conversion") or {}
        cfg = (conv.get("webhook") or {}).get("clientConfig")
        return [cfg] if isinstance(cfg, dict) else []
    return [w["clientConfig"] for w in obj.get("webhooks") or []
            if isinstance(w, dict) and isinstance(w.get("clientConfig"), dict)]


def injected(obj: dict[str, Any], ca_b64: str, own_backend: set[tuple[str, str]]
             ) -> dict[str, Any] | None:
    """`obj` with the sandbox CA in the bundles to inject; None when nothing changes."""
    out = copy.deepcopy(obj)
    marked = bool(injected_by(obj))
    changed = False
    for cfg in _configs(out):
        svc = cfg.get("service")
        if not isinstance(svc, dict):
            continue  # a URL webhook: its own backend, its own bundle
        if (str(svc.get("namespace") or ""), str(svc.get("name") or "")) in own_backend:
            continue
        if (marked or not holds_certificate(cfg.get("caBundle"))) and \
                cfg.get("caBundle") != ca_b64:
            cfg["caBundle"] = ca_b64
            changed = True
    return out if changed else None


class Injector:
    """One pass (`sync`) injects what changed since the last; objects are listed by their
    metadata only (Kubeflow's CRDs are megabytes of schemas) and read when their
    resourceVersion moved."""

    def __init__(self, kube: Kube, ca_pem: bytes) -> None:
        self.kube = kube
        self.ca_b64 = base64.b64encode(ca_pem).decode()
        self._seen: dict[tuple[str, str], str] = {}

    def _own_backends(self) -> set[tuple[str, str]]:
        return {(str(s["metadata"].get("namespace")), str(s["metadata"].get("name")))
                for s in self.kube.list("v1", "Service")
                if BACKEND_ANNOTATION in (s["metadata"].get("annotations") or {})}

    def sync(self) -> int:
        """Inject into what needs it; the number of objects updated."""
        own: set[tuple[str, str]] | None = None
        done = 0
        for api_version, kind in KINDS:
            info = self.kube.resource(api_version, kind)
            listed = self.kube.request("GET", self.kube.collection_path(info),
                                       accept=METADATA_LIST)
            for item in listed.get("items") or []:
                meta = item.get("metadata") or {}
                key = (kind, str(meta.get("name")))
                if self._seen.get(key) == meta.get("resourceVersion"):
                    continue
                obj = self.kube.get(api_version, kind, "", key[1])
                if obj is None:
                    continue
                if own is None:
                    own = self._own_backends()
                new = injected(obj, self.ca_b64, own)
                if new is not None:
                    try:
                        new = self.kube.request(
                            "PUT", self.kube.object_path(info, "", key[1]), body=new,
                            query={"fieldManager": FIELD_MANAGER})
                        done += 1
                    except KubeApiError as e:
                        if e.code in (404, 409):  # gone, or changed: the next pass
                            continue
                        raise
                self._seen[key] = str((new or obj).get("metadata", {}).get("resourceVersion"))
        return done

    def safe_sync(self) -> int:
        try:
            return self.sync()
        except ClusterError:
            return 0  # the API server restarting, say: the next pass tries again
