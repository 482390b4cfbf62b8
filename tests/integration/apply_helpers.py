"""Fixtures and object builders for the apply integration tests.

They run on the sandbox's real API server: the team fixtures `kube_client` and `namespace`
(tests/fixtures/sandbox.py), or, for a developer's own control plane, the kubeconfig named by
$STACKCTL_TEST_KUBECONFIG.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

# The sandbox's failure stage keeps pods carrying this label NotReady (docs/sandbox.md).
from gitops.apply import (
    ApplyOptions,
    ApplyResult,
    ChangeSet,
    Progress,
    Target,
    apply_objects,
    calculate,
)
from gitops.apply.options import no_progress
from gitops.cluster import ApplyPolicy
from gitops.inventory import Revisions
from gitops.kube import Kube
from gitops.redact import Redactor
from gitops.sandbox import FAIL_LABEL

__all__ = ["FAIL_LABEL", "api", "apply", "configmap", "deployment", "dry_run", "ns",
           "revisions", "target", "team_fixture"]


def _to_api_client(value: Any) -> Any:
    return getattr(value, "api_client", value)


def team_fixture(request: pytest.FixtureRequest, name: str) -> Any:
    """A fixture of tests/fixtures/sandbox.py; skip when the sandbox tier is not installed."""
    try:
        return request.getfixturevalue(name)
    except pytest.FixtureLookupError:
        pytest.skip(f"the sandbox fixture {name!r} is not available "
                    "(tests/fixtures/sandbox.py; or set STACKCTL_TEST_KUBECONFIG)")


@pytest.fixture
def api(request: pytest.FixtureRequest) -> Any:
    kubeconfig = os.environ.get("STACKCTL_TEST_KUBECONFIG")
    if kubeconfig:
        from kubernetes import config

        return config.new_client_from_config(kubeconfig)
    return _to_api_client(team_fixture(request, "kube_client"))


@pytest.fixture
def ns(request: pytest.FixtureRequest, api: Any) -> Iterator[str]:
    if not os.environ.get("STACKCTL_TEST_KUBECONFIG"):
        yield str(team_fixture(request, "namespace"))
        return
    kube = Kube(api)
    name = f"t-{uuid.uuid4().hex[:10]}"
    kube.request("POST", "/api/v1/namespaces",
                 body={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    yield name
    kube.delete("v1", "Namespace", "", name)


def configmap(name: str, ns: str, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": ns}, "data": dict(data) or {"k": "v"}}


def deployment(name: str, ns: str, image: str = "registry.local/web:1", *,
               replicas: int = 2, fail: bool = False) -> dict[str, Any]:
    labels = {"app": name}
    pod_labels = {**labels, **({FAIL_LABEL: "true"} if fail else {})}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": pod_labels},
                              "spec": {"containers": [{"name": "main", "image": image}]}}},
    }


def target(api: Any, ns: str, cluster: str | None = None) -> Target:
    """The apply target of a test: cluster `cluster` (default: the namespace's name) with
    its records in the namespace."""
    return Target(Kube.of(api), cluster or ns, ns)


def apply(api: Any, ns: str, objects: list[dict[str, Any]], *, policy: ApplyPolicy,
          cluster: str | None = None, progress: Progress = no_progress,
          redactor: Redactor | None = None, **options: Any) -> ApplyResult:
    """Apply `objects` as the CLI does (calculate, then execute)."""
    return apply_objects(target(api, ns, cluster), objects,
                         options=ApplyOptions(policy=policy, **options),
                         redactor=redactor or Redactor(), progress=progress)


def dry_run(api: Any, ns: str, objects: list[dict[str, Any]], *, policy: ApplyPolicy,
            redactor: Redactor | None = None, **options: Any) -> ChangeSet:
    """The change set `apply --dry-run` shows."""
    return calculate(target(api, ns), objects, options=ApplyOptions(policy=policy, **options),
                     redactor=redactor or Redactor(), fields=True)


def revisions(api: Any, ns: str, cluster: str | None = None) -> Revisions:
    return target(api, ns, cluster).records.revisions()
