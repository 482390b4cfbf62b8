"""Benchmark: apply the Kubeflow v1.4.0 example render (587 objects) with stackctl against
`kubectl apply --server-side` of the same objects (the anchor; the only place stackctl's
repo uses kubectl), each on its own fresh API server, in the same run.

    .venv/bin/python bench/bench_apply.py                 # 3 runs, fresh sandboxes each
    .venv/bin/python bench/bench_apply.py --runs 1 --kubeconfig A --anchor-kubeconfig B

Each run starts two fresh sandboxes (gitops.sandbox), one per tool, and stops them after.
The render is made servable the way a test overlay for Kubernetes 1.34 would:
- webhook failure policies set to Ignore and CRD conversion webhooks to None (Kubeflow's
  webhooks have no backend on a sandbox; a conversion webhook without one breaks every read
  of its kind, so only the storage version is served);
- v1.4.0 predates Kubernetes 1.22 and holds 84 objects of API versions 1.34 no longer serves:
  24 apiextensions.k8s.io/v1beta1 CRDs (Istio 1.9, metacontroller, dex, Kubeflow's
  notebooks, poddefaults, tensorboards, ...), so also the 51 custom resources of those CRDs,
  6 rbac.authorization.k8s.io/v1beta1 objects and 3 policy/v1beta1 PodDisruptionBudgets.
  They are converted to the served versions (`crd_v1`; RBAC, PDBs, admission webhooks and
  autoscaling/v2beta2 have the same schema under the new version), so all 587 are applied.
kubectl runs with --force-conflicts: Kubeflow's aggregated ClusterRoles declare `rules: []`,
which the aggregation controller owns, so a plain re-apply conflicts (stackctl leaves `rules`
of aggregated ClusterRoles to that controller). kubectl needs a second pass when a render
holds CRDs and their custom resources (the second after the CRDs are established); the
passes are counted in its time. Measures: first apply, and a no-change re-apply; stackctl is
timed without the health wait (`wait=False`), since kubectl does not wait either. The ratio
is kubectl's time over stackctl's; the medians over the runs are reported, with the 1-minute
load average before and after each run (the machine is shared).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import warnings
from collections.abc import Iterator
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


# Kinds whose removed API version has a served successor with the same schema.
SAME_SCHEMA = {
    "admissionregistration.k8s.io/v1beta1": "admissionregistration.k8s.io/v1",
    "rbac.authorization.k8s.io/v1beta1": "rbac.authorization.k8s.io/v1",
    "autoscaling/v2beta2": "autoscaling/v2",
    "policy/v1beta1": "policy/v1",  # PodDisruptionBudgets only in v1.4.0
}
ANY_OBJECT = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}


def crd_v1(crd: dict[str, Any]) -> dict[str, Any]:
    """An apiextensions.k8s.io/v1beta1 CRD as v1, the way the API server converts a stored
    v1beta1 CRD (apiextensions-apiserver's v1beta1 -> v1 conversion): the top-level version,
    validation, subresources and printer columns go into each version. v1 requires a
    structural schema: a CRD that kept unknown fields in v1beta1 (preserveUnknownFields
    unset or true: Kubeflow's notebooks, poddefaults, ...; their schemas are not all
    structural) gets an open schema that keeps them, as it effectively had."""
    spec = dict(crd["spec"])
    versions = [dict(v) for v in spec.pop("versions", None) or []] or [
        {"name": spec["version"], "served": True, "storage": True}]
    spec.pop("version", None)
    validation = spec.pop("validation", None)
    subresources = spec.pop("subresources", None)
    columns = spec.pop("additionalPrinterColumns", None)
    keeps_unknown = spec.pop("preserveUnknownFields", True) is not False
    for v in versions:
        schema = v.get("schema") or validation
        v["schema"] = {"openAPIV3Schema": ANY_OBJECT} if keeps_unknown or not schema else schema
        if subresources and "subresources" not in v:
            v["subresources"] = subresources
        cols = v.pop("additionalPrinterColumns", None) or columns
        if cols:
            v["additionalPrinterColumns"] = [
                {("jsonPath" if k == "JSONPath" else k): x for k, x in c.items()} for c in cols]
    spec["versions"] = versions
    meta = dict(crd.get("metadata") or {})
    if spec["group"].endswith((".k8s.io", ".kubernetes.io")):
        # v1 asks CRDs of protected groups (metacontroller.k8s.io) for an API review link;
        # v1beta1 CRDs were grandfathered. The value KEP-1111 gives for unapproved ones:
        meta["annotations"] = {**(meta.get("annotations") or {}),
                               "api-approved.kubernetes.io": "unapproved, experimental-only"}
    return {**crd, "apiVersion": "apiextensions.k8s.io/v1", "metadata": meta, "spec": spec}


def _servable(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The render as a Kubernetes 1.34 server accepts it (see the module doc)."""
    out = []
    for obj in objects:
        api_version = obj.get("apiVersion")
        if api_version == "apiextensions.k8s.io/v1beta1":
            obj = crd_v1(obj)
        elif api_version in SAME_SCHEMA:
            obj["apiVersion"] = SAME_SCHEMA[str(api_version)]
            if api_version == "admissionregistration.k8s.io/v1beta1":
                for hook in obj.get("webhooks") or []:  # v1 requires both (v1beta1 defaults)
                    hook.setdefault("sideEffects", "None")
                    hook.setdefault("admissionReviewVersions", ["v1beta1"])
        out.append(obj)
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

    from gitops.apply import ApplyOptions, Target, apply_objects
    from gitops.cluster import ApplyPolicy
    from gitops.kube import Kube
    from gitops.redact import Redactor

    api = config.new_client_from_config(kubeconfig)
    start = time.perf_counter()
    result = apply_objects(Target(Kube(api), "kubeflow-bench", "stackctl-system"), objects,
                           options=ApplyOptions(policy=ApplyPolicy(timeout=600), wait=wait),
                           redactor=Redactor())
    elapsed = time.perf_counter() - start
    if not result.ok:
        raise SystemExit(f"stackctl apply failed: {result.rejections[:5]} {result.failure}")
    return elapsed, result


@contextlib.contextmanager
def fresh_sandboxes(given: tuple[str | None, str | None]) -> Iterator[tuple[str, str]]:
    """The two kubeconfigs: the given ones, or two fresh sandboxes started for this run."""
    if given[0] and given[1]:
        yield given[0], given[1]
        return
    from gitops import sandbox

    with tempfile.TemporaryDirectory() as tmp:
        dirs = [Path(tmp) / "stackctl", Path(tmp) / "kubectl"]
        try:
            infos = [sandbox.up(d, name=f"bench-{d.name}", die_with_caller=True) for d in dirs]
            yield str(infos[0].kubeconfig), str(infos[1].kubeconfig)
        finally:
            for d in dirs:
                sandbox.down(d)


def one_run(objects: list[dict[str, Any]], manifest: Path,
            given: tuple[str | None, str | None]) -> dict[str, Any]:
    with fresh_sandboxes(given) as (mine, anchor):
        load_before = os.getloadavg()[0]
        k_first, passes = kubectl_apply(anchor, manifest)
        k_again, _ = kubectl_apply(anchor, manifest)
        s_first, first = stackctl_apply(mine, objects, wait=False)
        s_again, again = stackctl_apply(mine, objects, wait=False)
        load_after = os.getloadavg()[0]
    return {
        "kubectl_first_s": round(k_first, 2), "kubectl_first_passes": passes,
        "kubectl_reapply_s": round(k_again, 2),
        "stackctl_first_s": round(s_first, 2), "stackctl_reapply_s": round(s_again, 2),
        "first_ratio": round(k_first / s_first, 2),
        "reapply_ratio": round(k_again / s_again, 2),
        "stackctl_first_created": first.count("created"),
        "stackctl_reapply_unchanged": again.count("unchanged"),
        "load_1min_before": round(load_before, 2), "load_1min_after": round(load_after, 2),
    }


def main() -> int:
    warnings.filterwarnings("ignore")
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kubeconfig", help="a fresh control plane for stackctl "
                    "(default: start a fresh sandbox per run)")
    ap.add_argument("--anchor-kubeconfig", help="a fresh one for kubectl (default: likewise)")
    ap.add_argument("--runs", type=int, default=3, help="runs, each on fresh sandboxes")
    ap.add_argument("--archive", type=Path, default=ARCHIVE)
    ap.add_argument("--json", type=Path, help="also write the numbers here")
    args = ap.parse_args()
    if not args.archive.is_file():
        print(f"skipped: {args.archive} not found")
        return 0
    given = (args.kubeconfig, args.anchor_kubeconfig)
    if any(given) and args.runs > 1:
        raise SystemExit("--kubeconfig/--anchor-kubeconfig name one fresh pair: use --runs 1")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        t0 = time.perf_counter()
        objects = render(args.archive, work / "src")
        print(f"rendered {len(objects)} objects in {time.perf_counter() - t0:.1f}s")
        manifest = work / "all.json"
        manifest.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}))
        runs = []
        for i in range(args.runs):
            nums = one_run(objects, manifest, given)
            runs.append(nums)
            print(f"run {i + 1}: first apply kubectl {nums['kubectl_first_s']:.2f}s "
                  f"({nums['kubectl_first_passes']} passes), stackctl "
                  f"{nums['stackctl_first_s']:.2f}s = {nums['first_ratio']}x; no-change "
                  f"kubectl {nums['kubectl_reapply_s']:.2f}s, stackctl "
                  f"{nums['stackctl_reapply_s']:.2f}s = {nums['reapply_ratio']}x; load "
                  f"{nums['load_1min_before']} -> {nums['load_1min_after']}")
    first = statistics.median(r["first_ratio"] for r in runs)
    again = statistics.median(r["reapply_ratio"] for r in runs)
    summary = {"objects": len(objects), "runs": runs, "median_first_ratio": first,
               "median_reapply_ratio": again, "cpus": os.cpu_count()}
    print(f"median kubectl/stackctl: first apply {first}x (target >= 1), no-change "
          f"{again}x (target >= 3)")
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n")
    ok = first >= 1.0 and again >= 3.0
    print("targets met" if ok else "TARGETS NOT MET")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
