"""The Kubeflow demo's deployment repo (`make demo-kubeflow`, docs/kubeflow-live.md): the
customizations a platform team makes to a real Kubeflow release, the fixes in git that the
dry run asks for on the way up, and what is checked live after each hop.

Two clusters on the sandbox:
- `platform`: upstream's `example` through the overlay `overlays/platform`, with a registry
  mirror (`images:`), a replica count (`replicas:`), a patch (the dashboard's limits) and an
  edit inside `vendor/` (the user namespace's owner and name, `params.env`);
- `team-ml`: a team's own composition, applied as a cluster of its own on the same API
  server: its namespace, quota, limit range and network policy.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

STACK = "kubeflow"
PLATFORM, TEAM = "platform", "team-ml"
CLUSTERS = (PLATFORM, TEAM)
RELEASES = ("v1.8.1", "v1.9.1", "v1.10.2", "v1.11.0")
MIRROR = "registry.example.com/mirror/jetstack"
MIRRORED = ("cert-manager-controller", "cert-manager-cainjector", "cert-manager-webhook")
DASHBOARD_REPLICAS = 2
DASHBOARD_MEMORY = "768Mi"
PROFILE, OWNER = "team-ml", "lead@example.com"
TEAM_NS = "team-ml-work"
PARAMS = "vendor/kubeflow/common/user-namespace/base/params.env"
OVERLAY = "overlays/platform/kustomization.yaml"

_OVERLAY = f"""\
# The platform team's Kubeflow: upstream's example with the customizations below.
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
- ../../vendor/{STACK}/example
# Registry mirror: cert-manager's images come from the company registry.
images:
{"".join(f"- name: quay.io/jetstack/{i}{chr(10)}  newName: {MIRROR}/{i}{chr(10)}"
         for i in MIRRORED)}\
# Two dashboard replicas.
replicas:
- name: centraldashboard
  count: {DASHBOARD_REPLICAS}
patches:
# The dashboard's limits.
- path: dashboard-limits.yaml
"""

_LIMITS = f"""\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: centraldashboard
  namespace: kubeflow
spec:
  template:
    spec:
      containers:
      - name: centraldashboard
        resources:
          limits:
            cpu: 500m
            memory: {DASHBOARD_MEMORY}
"""

_TEAM = {
    "kustomization.yaml": f"""\
# The ML team's own composition: its namespace and the guard rails around it.
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: {TEAM_NS}
resources:
- namespace.yaml
- quota.yaml
- network-policy.yaml
""",
    "namespace.yaml": f"""\
apiVersion: v1
kind: Namespace
metadata:
  name: {TEAM_NS}
  labels:
    app.kubernetes.io/part-of: team-ml
""",
    "quota.yaml": """\
apiVersion: v1
kind: ResourceQuota
metadata:
  name: team-ml
spec:
  hard:
    requests.cpu: "16"
    requests.memory: 64Gi
    persistentvolumeclaims: "20"
---
apiVersion: v1
kind: LimitRange
metadata:
  name: team-ml
spec:
  limits:
  - type: Container
    default: {cpu: "1", memory: 2Gi}
    defaultRequest: {cpu: 100m, memory: 256Mi}
""",
    "network-policy.yaml": """\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: same-namespace-only
spec:
  podSelector: {}
  ingress:
  - from:
    - podSelector: {}
""",
}


def _cluster_yaml(kubeconfig: Path, context: str) -> str:
    return (f"description: the {{}} cluster, played by the local sandbox\n"
            f"kubeconfig: {kubeconfig}\ncontext: {context}\n"
            "apply:\n  timeout: 10m  # a fresh Kubeflow install is ~600 objects\n")


def write_customizations(repo: Path, *, kubeconfig: Path, context: str) -> list[str]:
    """Write the customizations and both clusters into the working tree; the files
    written, relative to the repo."""
    files: dict[str, str] = {
        OVERLAY: _OVERLAY,
        "overlays/platform/dashboard-limits.yaml": _LIMITS,
        f"clusters/{PLATFORM}/kustomization.yaml": (
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
            "resources:\n- ../../overlays/platform\n"),
        **{f"clusters/{TEAM}/{name}": text for name, text in _TEAM.items()},
    }
    for c in CLUSTERS:
        files[f"clusters/{c}/cluster.yaml"] = _cluster_yaml(kubeconfig, context).format(c)
    for rel, text in files.items():
        p = repo / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")
    params = repo / PARAMS
    params.write_text(f"user={OWNER}\nprofile-name={PROFILE}\n", encoding="utf-8")
    return sorted([*files, PARAMS])


@dataclass(frozen=True)
class Fix:
    """A change in git the server-side dry run of a hop asks for (nothing is wrong with
    stackctl or the cluster: the release itself needs it on a live cluster)."""

    why: str
    patch: str  # an entry of the overlay's `patches:`


# Per release: the fixes its first apply needs, appended to the overlay on the upgrade
# branch (they stay for the later releases, where they match or select nothing).
FIXES: dict[str, tuple[Fix, ...]] = {
    "v1.9.1": (
        Fix("Knative 1.12 drops DomainMapping v1alpha1, which was its storage version: the "
            "API server refuses the CRD until a storage migration empties it, so it stays "
            "listed, not served",
            """\
- target: {kind: CustomResourceDefinition, name: domainmappings.serving.knative.dev}
  patch: |-
    - op: add
      path: /spec/versions/-
      value:
        name: v1alpha1
        served: false
        storage: false
        schema:
          openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
"""),
        Fix("v1.9.1's user namespace selects its Profile by the placeholder name "
            "$(profile-name), which kustomize 5.8 leaves in place (the API server refuses "
            "the name): the team's profile is named here",
            f"""\
- target: {{group: kubeflow.org, kind: Profile}}
  patch: |-
    - op: replace
      path: /metadata/name
      value: {PROFILE}
    - op: replace
      path: /spec/owner/name
      value: {OWNER}
"""),
    ),
}


def add_fixes(repo: Path, release: str) -> list[Fix]:
    """Append the release's fixes to the overlay; the fixes added."""
    fixes = list(FIXES.get(release, ()))
    if fixes:
        p = repo / OVERLAY
        text = p.read_text(encoding="utf-8")
        text += "".join(f"# {release}: {f.why}.\n{f.patch}" for f in fixes)
        p.write_text(text, encoding="utf-8")
    return fixes
