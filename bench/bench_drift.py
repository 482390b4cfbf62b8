"""Benchmark: drift check of the Kubeflow v1.4.0 example render (587 objects) applied to a
sandbox, against a per-object GET loop with the Python client, in the same run.

    .venv/bin/python bench/bench_drift.py [--kubeconfig K] [--runs 5]

Without --kubeconfig a fresh sandbox is started (and stopped at the end). The render is
prepared as bench/bench_apply.py prepares it (webhooks non-blocking, objects of API versions
Kubernetes 1.34 no longer serves converted to served ones) and applied with stackctl's apply engine
(without the health wait). Then, round after round (bench/_common.interleaved):

- stackctl: `gitops.drift.check_cluster` with a fresh client: read the revision records,
  discovery, one LIST per kind and namespace (plus one by ApplySet label per namespaced
  kind), and the field-by-field comparison of every object on stackctl's fields;
- anchor: one GET per object of the revision, sequentially, through the official kubernetes
  client's ApiClient (the same HTTP stack, discovery already cached), reading only.

The check must find the freshly applied cluster in sync (no false drift on real Kubeflow
objects); then one field is changed by another manager and one object deleted, and the
check must find exactly those.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _common import command_line, interleaved, median, table  # noqa: E402
from bench_apply import ARCHIVE, render  # noqa: E402

CLUSTER = "kubeflow-bench"
RECORDS = "stackctl-system"
TARGET_S = 3.0


def apply(kubeconfig: Path, objects: list[dict[str, Any]]) -> None:
    from gitops.apply import ApplyOptions, Outcome, Target, apply_objects
    from gitops.cluster import ApplyPolicy
    from gitops.kube import Kube, api_client
    from gitops.redact import Redactor

    result = apply_objects(
        Target(Kube(api_client(kubeconfig)), CLUSTER, RECORDS), objects,
        options=ApplyOptions(policy=ApplyPolicy(timeout=600, concurrency=8), wait=False),
        redactor=Redactor())
    if not result.ok:
        raise SystemExit(f"stackctl apply failed: {result.rejections[:5]} {result.failure}")
    print(f"applied revision {result.revision}: {result.count(Outcome.CREATED)} created, "
          f"{result.count(Outcome.CONFIGURED)} configured, "
          f"{result.count(Outcome.UNCHANGED)} unchanged")


def stackctl_check(kubeconfig: Path) -> Any:
    from gitops.drift import check_cluster
    from gitops.kube import Kube, api_client
    from gitops.redact import Redactor

    kube = Kube(api_client(kubeconfig))
    return check_cluster(kube, cluster=CLUSTER, records_namespace=RECORDS, redactor=Redactor())


def get_loop(kube: Any, objects: list[dict[str, Any]]) -> int:
    found = 0
    for obj in objects:
        meta = obj["metadata"]
        if kube.get(obj["apiVersion"], obj["kind"], meta.get("namespace", ""),
                    meta["name"]) is not None:
            found += 1
    return found


def describe(d: Any) -> list[str]:
    out = []
    for o in d.objects:
        out.append(f"  {o.state} {o.id}")
        out += [f"    {f.path}: {f.desired!r} -> {f.live!r} "
                f"({', '.join(m.describe() for m in f.managers) or 'no owner'})"
                for f in o.fields[:5]]
    return out


def run(kubeconfig: Path, archive: Path, runs: int, out_json: Path | None) -> int:
    from gitops.inventory import Records
    from gitops.kube import Kube, api_client

    with tempfile.TemporaryDirectory() as tmp:
        objects = render(archive, Path(tmp))
    apply(kubeconfig, objects)
    kube = Kube(api_client(kubeconfig))
    records = Records(kube, cluster=CLUSTER, namespace=RECORDS)
    latest = records.revisions().deployed
    assert latest is not None
    revision = records.manifests(latest.revision)
    for obj in revision:  # the anchor's discovery, once, outside the timing
        kube.resource(obj["apiVersion"], obj["kind"])

    first = stackctl_check(kubeconfig)
    print(f"revision {latest.revision}: {first.checked} objects; fresh check: {first.status}, "
          f"{len(first.objects)} drifted object(s), {first.counts['fields']} field(s)")
    print("\n".join(describe(first)))
    in_sync = first.status == "in-sync"

    load_before = os.getloadavg()[0]
    times = interleaved({"stackctl drift check": lambda: stackctl_check(kubeconfig),
                         "GET loop": lambda: get_loop(kube, revision)}, runs)
    load_after = os.getloadavg()[0]
    s, g = median(times["stackctl drift check"]), median(times["GET loop"])
    found = get_loop(kube, revision)

    # Drift on purpose: another manager changes a field, an object is deleted.
    dep = next(o for o in revision if o["kind"] == "Deployment")
    cm = next(o for o in revision if o["kind"] == "ConfigMap")
    info = kube.resource(dep["apiVersion"], "Deployment")
    kube.request("PATCH", kube.object_path(info, dep["metadata"]["namespace"],
                                           dep["metadata"]["name"]),
                 query={"fieldManager": "bench-intruder"}, body={"spec": {"replicas": 7}},
                 content_type="application/merge-patch+json")
    kube.delete("v1", "ConfigMap", cm["metadata"]["namespace"], cm["metadata"]["name"])
    drifted = stackctl_check(kubeconfig)
    states = sorted((o.state, o.id.kind) for o in drifted.objects)
    found_drift = states == [("changed", "Deployment"), ("missing", "ConfigMap")]
    print("after changing one field and deleting one object:")
    print("\n".join(describe(drifted)))

    rows = [["stackctl drift check (LISTs)", f"{s:.2f} s",
             f"{min(times['stackctl drift check']):.2f} s"],
            [f"per-object GET loop ({len(revision)} GETs)", f"{g:.2f} s",
             f"{min(times['GET loop']):.2f} s"]]
    print()
    print(f"{len(revision)} objects ({found} found by the GET loop), {runs} interleaved rounds; "
          f"1-minute load average {load_before:.1f} before, {load_after:.1f} after "
          f"({os.cpu_count()} cores)")
    print(table(["case", "median", "best"], rows))
    print(f"GET loop / drift check = {g / s:.2f}x; target: drift check under {TARGET_S} s")
    print(f"command: {command_line()}")
    nums = {"objects": len(revision), "runs": runs, "drift_check_median_s": round(s, 3),
            "get_loop_median_s": round(g, 3), "ratio_get_over_drift": round(g / s, 2),
            "fresh_apply_in_sync": in_sync, "found_planted_drift": found_drift,
            "load_before": load_before, "load_after": load_after}
    if out_json:
        out_json.write_text(json.dumps(nums, indent=2) + "\n")
    ok = s < TARGET_S and in_sync and found_drift
    print("target met" if ok else "TARGET NOT MET")
    return 0 if ok else 1


def main() -> int:
    warnings.filterwarnings("ignore")
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--kubeconfig", type=Path,
                    help="a control plane to use (default: start a fresh sandbox)")
    ap.add_argument("--archive", type=Path, default=ARCHIVE)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--json", type=Path, help="also write the numbers here")
    args = ap.parse_args()
    if not args.archive.is_file():
        print(f"skipped: {args.archive} not found")
        return 0
    if args.kubeconfig:
        return run(args.kubeconfig, args.archive, args.runs, args.json)
    from gitops import sandbox

    with tempfile.TemporaryDirectory() as state:
        info = sandbox.up(Path(state), name="bench-drift", die_with_caller=True)
        try:
            return run(info.kubeconfig, args.archive, args.runs, args.json)
        finally:
            sandbox.down(Path(state))


if __name__ == "__main__":
    raise SystemExit(main())
