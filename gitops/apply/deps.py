"""Dependencies between the objects of one apply, beyond the kind order of gitops.kinds:
which CRDs the next objects need served, which CRDs wait on a webhook of the same render,
which workloads back a mutating webhook, and which fields an injector fills in.

    - A custom resource needs its CRD served; nothing else waits for a CRD.
    - A CRD whose conversion webhook is served by a Service of the render cannot convert
      before that Service's workloads run: its custom resources are applied after them.
    - A mutating webhook must exist before the pods it mutates are created (a pod created
      before Istio's sidecar injector runs without a sidecar): it is applied once the
      workloads behind its Service are healthy, before the other workloads (Istio's docs:
      "restart the pods" otherwise).
    - A `caBundle` that cert-manager's cainjector fills in (the object carries one of its
      `inject-ca-from` annotations) belongs to the injector: it is not applied, as the
      aggregated ClusterRole's rules belong to their controller. A placeholder such as
      KServe's `Cg==` would keep the CRD from being established (InvalidCABundle) until
      the injector runs, and re-applying it over an injected bundle is refused. An empty
      `caBundle` (Istio's, for istiod) is not applied either.
    - A CRD whose render no longer converts through a webhook (KServe's InferenceService
      from v0.13) while the live one does: server-side apply cannot remove the injected
      `caBundle` (the injector owns it), and the API server refuses a webhook client config
      without the Webhook strategy. Its conversion is removed with a merge patch first, as
      client-side apply's three-way patch does, and it is dry-run after that.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from gitops.kinds import CRD
from gitops.resource import ResourceId

Obj = dict[str, Any]

# cert-manager's cainjector (cert-manager.io/v1 and the old certmanager.k8s.io names).
INJECT_ANNOTATIONS = (
    "cert-manager.io/inject-ca-from",
    "cert-manager.io/inject-ca-from-secret",
    "cert-manager.io/inject-apiserver-ca",
    "certmanager.k8s.io/inject-ca-from",
    "certmanager.k8s.io/inject-ca-from-secret",
)
MUTATING = ("admissionregistration.k8s.io", "MutatingWebhookConfiguration")
VALIDATING = ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration")
APISERVICE = ("apiregistration.k8s.io", "APIService")
POD_CONTROLLERS = frozenset({
    ("apps", "Deployment"), ("apps", "StatefulSet"), ("apps", "DaemonSet"),
    ("apps", "ReplicaSet"), ("batch", "Job"), ("batch", "CronJob"), ("", "Pod"),
    ("", "ReplicationController"),
})


def _gk(obj: Obj) -> tuple[str, str]:
    rid = ResourceId.of(obj)
    return rid.group, rid.kind


def injected_by(obj: Obj) -> str:
    """The injection annotation and its value ("cert-manager.io/inject-ca-from:
    kubeflow/serving-cert"), or "" when nothing injects the object's CA bundles."""
    ann = (obj.get("metadata") or {}).get("annotations") or {}
    for key in INJECT_ANNOTATIONS:
        if key in ann:
            return f"{key}: {ann[key]}"
    return ""


def _client_configs(obj: Obj) -> list[dict[str, Any]]:
    """The webhook client configs of a webhook configuration or a CRD's conversion."""
    gk = _gk(obj)
    if gk in (MUTATING, VALIDATING):
        return [w["clientConfig"] for w in obj.get("webhooks") or []
                if isinstance(w, dict) and isinstance(w.get("clientConfig"), dict)]
    if gk == CRD:
        conv = (obj.get("spec") or {}).get("conversion") or {}
        cfg = (conv.get("webhook") or {}).get("clientConfig") or conv.get("webhookClientConfig")
        return [cfg] if isinstance(cfg, dict) else []
    return []


def drop_injected_ca(obj: Obj) -> None:
    """Remove the CA bundles an injector fills in (see the module's doc), in place; and
    empty ones everywhere: "" is the same as no bundle to the API server, and Istio's
    webhooks ship it for istiod to fill, so applying it again would only conflict with the
    injector that did."""
    marked = bool(injected_by(obj))
    for cfg in _client_configs(obj):
        if marked or cfg.get("caBundle") == "":
            cfg.pop("caBundle", None)
    if not marked:
        return
    if _gk(obj) == APISERVICE:
        (obj.get("spec") or {}).pop("caBundle", None)


# The merge patch that removes a CRD's webhook conversion, injected bundle included.
DROP_CONVERSION: Obj = {"spec": {"conversion": {"strategy": "None", "webhook": None}}}


def conversion_dropped(desired: Obj, live: Obj | None) -> bool:
    """Whether `desired` (a CRD) stops converting through the webhook its `live` object
    uses (see the module's doc)."""
    if live is None or _gk(desired) != CRD:
        return False
    had = ((live.get("spec") or {}).get("conversion") or {}).get("strategy")
    wants = ((desired.get("spec") or {}).get("conversion") or {}).get("strategy") or "None"
    return had == "Webhook" and wants != "Webhook"


def webhook_services(obj: Obj) -> list[tuple[str, str]]:
    """(namespace, name) of every Service the object's webhooks are served by."""
    out = []
    for cfg in _client_configs(obj):
        svc = cfg.get("service")
        if isinstance(svc, dict) and svc.get("name"):
            out.append((str(svc.get("namespace") or "default"), str(svc["name"])))
    return out


def _template_labels(obj: Obj) -> dict[str, Any]:
    spec = obj.get("spec") or {}
    if _gk(obj) == ("batch", "CronJob"):
        spec = ((spec.get("jobTemplate") or {}).get("spec")) or {}
    return (((spec.get("template") or {}).get("metadata") or {}).get("labels")) or {}


def backends(services: Iterable[tuple[str, str]], objects: Sequence[Obj]) -> list[Obj]:
    """The pod controllers of `objects` whose pods the Services (namespace, name) of
    `objects` select: what must run before a webhook served by them answers."""
    wanted = set(services)
    selectors = []
    for o in objects:
        rid = ResourceId.of(o)
        if (rid.group, rid.kind) == ("", "Service") and (rid.namespace, rid.name) in wanted:
            sel = (o.get("spec") or {}).get("selector") or {}
            if sel:
                selectors.append((rid.namespace, sel))
    out = []
    for o in objects:
        rid = ResourceId.of(o)
        if (rid.group, rid.kind) not in POD_CONTROLLERS:
            continue
        labels = _template_labels(o)
        if any(ns == rid.namespace and all(labels.get(k) == v for k, v in sel.items())
               for ns, sel in selectors):
            out.append(o)
    return out


@dataclass(frozen=True)
class Dependencies:
    """What the objects of one apply wait on, beyond their phase (see the module's doc).

    `crd_of` maps a custom kind (group, kind) to its CRD of the set; `needed` are the CRDs
    whose custom resources are in the set; `late_kinds` the custom kinds whose CRD's
    conversion is served by a Service of the set; `mutating` the mutating webhook
    configurations applied before the workloads, once `backends` are healthy."""

    crd_of: dict[tuple[str, str], Obj] = field(default_factory=dict)
    needed: tuple[Obj, ...] = ()
    late_kinds: frozenset[tuple[str, str]] = frozenset()
    mutating: tuple[Obj, ...] = ()
    backends: tuple[Obj, ...] = ()

    def is_late(self, obj: Obj) -> bool:
        return _gk(obj) in self.late_kinds

    def is_mutating(self, obj: Obj) -> bool:
        return _gk(obj) == MUTATING


def dependencies(objects: Sequence[Obj]) -> Dependencies:
    """The dependencies among `objects` (the objects an apply sends)."""
    crd_of: dict[tuple[str, str], Obj] = {}
    for o in objects:
        if _gk(o) == CRD:
            spec = o.get("spec") or {}
            kind = (spec.get("names") or {}).get("kind")
            if kind:
                crd_of[(str(spec.get("group") or ""), str(kind))] = o
    used = {_gk(o) for o in objects} & set(crd_of)
    services = {(ResourceId.of(o).namespace, ResourceId.of(o).name) for o in objects
                if _gk(o) == ("", "Service")}
    late = frozenset(gk for gk in used
                     if any(s in services for s in webhook_services(crd_of[gk])))
    mutating = tuple(o for o in objects if _gk(o) == MUTATING)
    served_by = [s for m in mutating for s in webhook_services(m)]
    return Dependencies(
        crd_of=crd_of,
        needed=tuple(crd_of[gk] for gk in sorted(used - late)),
        late_kinds=late,
        mutating=mutating,
        backends=tuple(backends(served_by, objects)),
    )
