"""Benchmark: apply the Kubeflow v1.4.0 example render (~590 objects) with stackctl against
`kubectl apply --server-side` of the same objects (the anchor; the only place stackctl's
repo uses kubectl), each on its own fresh API server, in the same run.

    .venv/bin/python bench/bench_apply.py --kubeconfig A.yaml --anchor-kubeconfig B.yaml

A and B must be two fresh, equivalent control planes (e.g. two `stackctl sandbox up` state
dirs). Webhook failure policies are set to Ignore and CRD conversion webhooks to None
(Kubeflow's webhooks have no backend on a sandbox), as a test overlay would. v1.4.0 predates
Kubernetes 1.22: webhook configurations are converted from admissionregistration v1beta1 to
v1, and objects of other removed API versions (v1beta1 CRDs, with their custom resources)
are left out; the count is printed. kubectl runs with --force-conflicts: Kubeflow's
aggregated ClusterRoles declare `rules: []`, which the aggregation controller owns, so a
plain re-apply conflicts (stackctl leaves `rules` of aggregated ClusterRoles to that
controller). kubectl needs two passes when a render holds CRDs and
their custom resources (the second after the CRDs are established); both are counted.
Measures: first apply, and a no-change re-apply. stackctl is timed without the health wait
(`wait=False`), since kubectl does not wait either; its wait is reported separately when
--with-wait is given.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tarfile
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ARCHIVE = ROOT.parent / "shared/upstream/kubeflow-manifests/kubeflow-manifests-v1.4.0.tar.gz"
KUBECTL = "/usr/bin/kubectl"


def render(archive: Path, work: Path) -> list[dict[str, Any]]:
    from gitops.paths import sandbox_bin_dir
    from gitops.yamlio import load_all_safe

    with tarfile.open(archive) as tar:
        tar.extractall(work, filter="data")
    example = next(work.rglob("example/kustomization.yaml")).parent
    out = subprocess.run([str(sandbox_bin_dir() / "kustomize"), "build", str(example)],
                         capture_output=True, text=True, check=True).stdout
    objects = [d for d in load_all_safe(out) if isinstance(d, dict)]
    objects = _servable(objects)
    for obj in objects:
        if obj.get("kind") in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"):
            for hook in obj.get("webhooks") or []:
                hook["failurePolicy"] = "Ignore"
        # A CRD conversion webhook cannot be made non-blocking: with no backend every read
        # of its kind fails, so the overlay serves only the storage version.
        if obj.get("kind") == "CustomResourceDefinition":
            spec = obj.get("spec") or {}
            if (spec.get("conversion") or {}).get("strategy") == "Webhook":
                spec["conversion"] = {"strategy": "None"}
    return objects


REMOVED = {"apiextensions.k8s.io/v1beta1", "rbac.authorization.k8s.io/v1beta1",
           "extensions/v1beta1", "networking.k8s.io/v1beta1", "policy/v1beta1",
           "batch/v1beta1", "scheduling.k8s.io/v1beta1", "storage.k8s.io/v1beta1",
           "apiregistration.k8s.io/v1beta1", "coordination.k8s.io/v1beta1"}
BUILTIN_GROUPS = {"", "apps", "batch", "rbac.authorization.k8s.io", "policy",
                  "networking.k8s.io", "admissionregistration.k8s.io", "storage.k8s.io",
                  "scheduling.k8s.io", "apiextensions.k8s.io", "autoscaling",
                  "apiregistration.k8s.io", "coordination.k8s.io", "certificates.k8s.io"}


def _servable(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What a Kubernetes 1.34 server accepts of a pre-1.22 render (see the module doc)."""
    kept: list[dict[str, Any]] = []
    for obj in objects:
        if obj.get("apiVersion") == "admissionregistration.k8s.io/v1beta1":
            obj["apiVersion"] = "admissionregistration.k8s.io/v1"
            for hook in obj.get("webhooks") or []:
                hook.setdefault("sideEffects", "None")
                hook.setdefault("admissionReviewVersions", ["v1beta1"])
        if obj.get("apiVersion") in ("autoscaling/v2beta2", "autoscaling/v2beta1"):
            obj["apiVersion"] = "autoscaling/v2"  # v2beta2's schema is v2's
        if obj.get("apiVersion") not in REMOVED:
            kept.append(obj)
    crd_groups = {(o["spec"]["group"], o["spec"]["names"]["kind"]) for o in kept
                  if o.get("kind") == "CustomResourceDefinition"}
    out = []
    for obj in kept:
        group = str(obj.get("apiVersion", "")).rpartition("/")[0]
        if group in BUILTIN_GROUPS or (group, obj.get("kind")) in crd_groups:
            out.append(obj)
    print(f"left out {len(objects) - len(out)} objects of API versions Kubernetes 1.34 "
          "no longer serves (and custom resources of v1beta1 CRDs)")
    return out


def kubectl_apply(kubeconfig: str, manifest: Path) -> tuple[float, int]:
    """Seconds and passes for kubectl to apply everything (repeats while kinds are missing)."""
    start = time.perf_counter()
    last = ""
    for attempt in range(1, 6):
        proc = subprocess.run(
            [KUBECTL, "--kubeconfig", kubeconfig, "apply", "--server-side",
             "--field-manager", "kubectl-bench", "--force-conflicts", "-f", str(manifest)],
            capture_output=True, text=True, check=False)
        if proc.returncode == 0:
            return time.perf_counter() - start, attempt
        if "no matches for kind" not in proc.stderr and "ensure CRDs" not in proc.stderr:
            raise SystemExit(f"kubectl apply failed: {proc.stderr[-2000:]}")
        last = proc.stderr
        time.sleep(1)
    raise SystemExit(f"kubectl apply did not converge in 5 passes: {last[-1500:]}")


def stackctl_apply(kubeconfig: str, objects: list[dict[str, Any]], *, wait: bool) -> Any:
    from kubernetes import config

    from gitops.apply import apply_objects
    from gitops.cluster import ApplyPolicy

    api = config.new_client_from_config(kubeconfig)
    start = time.perf_counter()
    result = apply_objects(api, objects, cluster="kubeflow-bench",
                           records_namespace="stackctl-system",
                           policy=ApplyPolicy(timeout=600, concurrency=8), wait=wait)
    elapsed = time.perf_counter() - start
    if not result.ok:
        raise SystemExit(f"stackctl apply failed: {result.rejections[:5]} {result.failure}")
    return elapsed, result


def main() -> int:
    warnings.filterwarnings("ignore")
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kubeconfig", required=True, help="fresh control plane for stackctl")
    ap.add_argument("--anchor-kubeconfig", required=True, help="fresh one for kubectl")
    ap.add_argument("--archive", type=Path, default=ARCHIVE)
    ap.add_argument("--json", type=Path, help="also write the numbers here")
    args = ap.parse_args()
    if not args.archive.is_file():
        print(f"skipped: {args.archive} not found")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        t0 = time.perf_counter()
        objects = render(args.archive, work / "src")
        print(f"rendered {len(objects)} objects in {time.perf_counter() - t0:.1f}s")
        manifest = work / "all.json"
        manifest.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}))

        k_first, passes = kubectl_apply(args.anchor_kubeconfig, manifest)
        k_again, _ = kubectl_apply(args.anchor_kubeconfig, manifest)
        s_first, first = stackctl_apply(args.kubeconfig, objects, wait=False)
        s_again, again = stackctl_apply(args.kubeconfig, objects, wait=False)

    nums = {
        "objects": len(objects),
        "kubectl_first_s": round(k_first, 2), "kubectl_first_passes": passes,
        "kubectl_reapply_s": round(k_again, 2),
        "stackctl_first_s": round(s_first, 2), "stackctl_reapply_s": round(s_again, 2),
        "first_ratio_kubectl_over_stackctl": round(k_first / s_first, 2),
        "reapply_ratio_kubectl_over_stackctl": round(k_again / s_again, 2),
        "stackctl_reapply_unchanged": again.count("unchanged"),
        "stackctl_first_created": first.count("created"),
    }
    print(f"first apply:    kubectl {k_first:6.2f}s ({passes} passes)   stackctl "
          f"{s_first:6.2f}s   kubectl/stackctl = {nums['first_ratio_kubectl_over_stackctl']}x")
    print(f"no-change:      kubectl {k_again:6.2f}s              stackctl "
          f"{s_again:6.2f}s   kubectl/stackctl = {nums['reapply_ratio_kubectl_over_stackctl']}x")
    if args.json:
        args.json.write_text(json.dumps(nums, indent=2) + "\n")
    ok = s_first <= k_first and k_again >= 3 * s_again
    print("targets met" if ok else "TARGETS NOT MET (first <= kubectl, re-apply 3x faster)")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
