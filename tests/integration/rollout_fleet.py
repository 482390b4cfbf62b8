"""A fleet of clusters for the rollout tests: one deployment repo whose clusters are
namespaces of the one sandbox API server (as `make demo` plays microk8s-dev and eks-prod),
each with its own records (revisions, lease, ApplySet) in a shared records namespace.

Each cluster renders a Namespace, a ConfigMap and a Deployment `web` whose pods carry the
sandbox's labels: `ready-after` (ready only after that delay, as on a real cluster) or
`fail` (never ready: the apply fails and is rolled back).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pygit2

from gitops.inventory import Revisions
from gitops.kube import Kube
from gitops.sandbox import FAIL_LABEL, READY_AFTER_LABEL
from tests.fixtures.gitrepos import commit_all

# Six clusters in three waves: the smallest fleet that shows every rule.
SIX = {"a0": 0, "b0": 0, "c0": 0, "d1": 1, "e1": 1, "f2": 2}

APP = """\
apiVersion: v1
kind: Namespace
metadata: {{name: {ns}}}
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: settings, namespace: {ns}}}
data: {{image: "{image}"}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web, namespace: {ns}}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web{labels}}}}}
    spec: {{containers: [{{name: c, image: "{image}"}}]}}
"""


@dataclass
class FleetRepo:
    root: Path
    kube: Kube
    kubeconfig: Path
    records: str  # the records namespace every cluster shares
    waves: Mapping[str, int] = field(default_factory=lambda: dict(SIX))
    suffix: str = field(default_factory=lambda: uuid.uuid4().hex[:6])
    timeout: str = "20s"
    rollout: str = ""  # stack.yaml's rollout: block, when set

    def ns(self, cluster: str) -> str:
        return f"{cluster}-{self.suffix}"

    def write(self, image: str, *, fail: Iterable[str] = (), ready_after: str | None = None,
              message: str | None = None) -> str:
        """Write every cluster's files for `image` and commit; returns the commit."""
        failing = set(fail)
        stack = "name: fleet\nsource: ./upstream\n" + (
            f"rollout: {self.rollout}\n" if self.rollout else "")
        (self.root / "stack.yaml").write_text(stack)
        for name, wave in self.waves.items():
            d = self.root / "clusters" / name
            d.mkdir(parents=True, exist_ok=True)
            (d / "cluster.yaml").write_text(
                f"kubeconfig: {self.kubeconfig}\nrecordsNamespace: {self.records}\n"
                f"wave: {wave}\napply:\n  timeout: {self.timeout}\n")
            (d / "kustomization.yaml").write_text("resources: [app.yaml]\n")
            labels = (f", {FAIL_LABEL}: 'true'" if name in failing else "") + (
                f", {READY_AFTER_LABEL}: '{ready_after}'" if ready_after else "")
            (d / "app.yaml").write_text(APP.format(ns=self.ns(name), image=image,
                                                   labels=labels))
        repo = (pygit2.Repository(str(self.root)) if (self.root / ".git").exists()
                else pygit2.init_repository(str(self.root), initial_head="main"))
        return commit_all(repo, message or f"roll out {image}")

    def revisions(self, cluster: str) -> Revisions:
        from gitops.inventory import Records

        return Records(self.kube, cluster=cluster, namespace=self.records).revisions()

    def image(self, cluster: str) -> str | None:
        dep = self.kube.get("apps/v1", "Deployment", self.ns(cluster), "web")
        if dep is None:
            return None
        return str(dep["spec"]["template"]["spec"]["containers"][0]["image"])

    def cleanup(self) -> None:
        for name in self.waves:
            self.kube.delete("v1", "Namespace", "", self.ns(name))


def most_running(events: list[tuple[str, str]]) -> int:
    """The most clusters that were running at once, from (kind, cluster) in order."""
    running, top = 0, 0
    for kind, _ in events:
        running += 1 if kind == "start" else -1
        top = max(top, running)
    return top


def stderr_order(err: str) -> list[tuple[str, str]]:
    """The CLI's progress lines (not a terminal) as (kind, cluster), in order."""
    out = []
    for line in err.splitlines():
        if line.startswith("→ ") and line.endswith(": starting"):
            out.append(("start", line[2:-len(": starting")]))
        elif line[:2] in ("✓ ", "✗ ", "⏭ "):
            out.append(("done", line[2:].split(":", 1)[0]))
    return out


def fields(doc: Mapping[str, Any], cluster: str) -> dict[str, Any]:
    """The JSON result's entry of `cluster`."""
    for wave in doc["waves"]:
        for c in wave["clusters"]:
            if c["cluster"] == cluster:
                return dict(c)
    raise KeyError(cluster)
