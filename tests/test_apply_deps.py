"""gitops.apply.deps on plain objects: the bundles an injector owns, the conversions a render
drops, and which objects wait on which (the live behaviour: tests/integration/
test_apply_dependencies.py)."""

from __future__ import annotations

from typing import Any

from gitops.apply.deps import conversion_dropped, dependencies, drop_injected_ca


def _hook(ca: str, **annotations: str) -> dict[str, Any]:
    return {"apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "MutatingWebhookConfiguration",
            "metadata": {"name": "h", "annotations": annotations},
            "webhooks": [{"name": "h.x", "clientConfig": {
                "caBundle": ca, "service": {"namespace": "ns", "name": "svc"}}}]}


def _crd(conversion: dict[str, Any] | None) -> dict[str, Any]:
    spec: dict[str, Any] = {"group": "x.io", "names": {"kind": "W", "plural": "ws"}}
    if conversion is not None:
        spec["conversion"] = conversion
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "ws.x.io"}, "spec": spec}


def test_injected_and_empty_bundles_are_left_to_the_injector_others_are_applied() -> None:
    marked = _hook("Cg==", **{"cert-manager.io/inject-ca-from": "ns/cert"})
    empty, own = _hook(""), _hook("LS0tLS1CRUdJTg==")
    for o in (marked, empty, own):
        drop_injected_ca(o)
    assert "caBundle" not in marked["webhooks"][0]["clientConfig"]
    assert "caBundle" not in empty["webhooks"][0]["clientConfig"]
    assert own["webhooks"][0]["clientConfig"]["caBundle"] == "LS0tLS1CRUdJTg=="


def test_a_conversion_is_dropped_only_when_the_live_crd_converts_by_webhook() -> None:
    webhook = {"strategy": "Webhook", "webhook": {"clientConfig": {"caBundle": "x"}}}
    assert conversion_dropped(_crd(None), _crd(webhook))
    assert conversion_dropped(_crd({"strategy": "None"}), _crd(webhook))
    assert not conversion_dropped(_crd(webhook), _crd(webhook))
    assert not conversion_dropped(_crd(None), _crd({"strategy": "None"}))
    assert not conversion_dropped(_crd(None), None)


def test_mutating_webhooks_wait_for_the_workloads_behind_their_service() -> None:
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "svc", "namespace": "ns"},
           "spec": {"selector": {"app": "hook"}}}

    def deploy(name: str, app: str) -> dict[str, Any]:
        return {"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": name, "namespace": "ns"},
                "spec": {"template": {"metadata": {"labels": {"app": app}}}}}

    hook, web = deploy("hook", "hook"), deploy("web", "web")
    deps = dependencies([_hook(""), svc, hook, web, _crd(None)])
    assert deps.backends == (hook,)
    assert len(deps.mutating) == 1
    assert deps.needed == ()  # no custom resource of the CRD: nothing waits for it
