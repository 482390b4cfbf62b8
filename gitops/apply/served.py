"""Waiting until the API server serves the versions of CRDs an apply just sent."""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from gitops.apply.results import ProgressEvent, Stage, scrub
from gitops.apply.run import Run
from gitops.health import Health, Status, status_of
from gitops.kube import POLL, Kube, KubeApiError, ResourceInfo, poll
from gitops.resource import ResourceId

Obj = dict[str, Any]


def routed(kube: Kube, info: ResourceInfo) -> bool:
    """True when the API server routes requests for `info` to a handler that serves its
    version: a LIST of one item answers anything but 404.

    Discovery listing a version does not prove that: the CRD handler keeps the serving
    information it built for a CRD's previous spec until its own informer callback drops
    it, and that callback waits on the lock under which serving information of other CRDs
    is being built (apiextensions-apiserver, customresource_handler.go,
    updateCustomResourceDefinition). Meanwhile a request at a version the new spec adds
    answers a bare "404 page not found". Measured on the sandbox after 59 of Kubeflow's
    CRDs moved from v1.8.1 to v1.11.0 at once: 8-11 s of 404s for Sidecar at
    networking.istio.io/v1 after discovery listed it."""
    try:
        kube.request("GET", kube.collection_path(info), query={"limit": "1"})
    except KubeApiError as e:
        return e.code != 404  # 403 and the like: answered by the chain, not refused as unknown
    return True


def wait_served(run: Run, crds: Sequence[Obj]) -> bool:
    """Wait (up to the deadline) until every version of the CRDs is served: listed by
    discovery and routed (`routed`); False when one is not served by then, or cannot be
    (the caller's health wait says why).

    The discovery controller lists a CRD's versions only once the CRD is Established
    (apiextensions-apiserver, discovery_controller.go), and a discovery document is a few
    KiB where a LIST of Kubeflow's CRDs is megabytes of schemas: polling discovery is much
    cheaper than polling the CRDs. Only the CRDs still not served are read, to show their
    conditions and to stop at once when one cannot be established (InvalidCABundle,
    NamesAccepted=False) rather than at the deadline."""
    want: dict[tuple[str, str], ResourceId] = {}
    for crd in crds:
        spec = crd.get("spec") or {}
        kind = str((spec.get("names") or {}).get("kind") or "")
        for v in spec.get("versions") or []:
            if kind and v.get("served", True):
                want[(f"{spec.get('group')}/{v.get('name')}", kind)] = ResourceId.of(crd)
    kube = run.target.kube

    def status(rid: ResourceId) -> Status:
        live = kube.get("apiextensions.k8s.io/v1", rid.kind, "", rid.name)
        return status_of(live) if live else Status(Health.IN_PROGRESS, "not found yet")

    def attempt(pool: ThreadPoolExecutor) -> bool | None:
        nonlocal want
        versions = sorted({av for av, _ in want})
        served = dict(zip(versions, pool.map(
            lambda av: kube.group_version(av, refresh=True), versions), strict=True))
        listed = [(av, kind) for av, kind in want if kind in served[av]]
        answer = dict(zip(listed, pool.map(lambda k: routed(kube, served[k[0]][k[1]]), listed),
                          strict=True))
        want = {key: rid for key, rid in want.items() if not answer.get(key)}
        if not want:
            return True
        ids = sorted(set(want.values()))
        states = dict(zip(ids, pool.map(status, ids), strict=True))
        if any(s.health is Health.FAILED for s in states.values()):
            return False
        if time.monotonic() < run.deadline:
            pending = tuple((rid, scrub(run.redactor, s.reason if not s.ready else
                                        "established, versions not served yet"))
                            for rid, s in states.items())
            run.progress(ProgressEvent(
                Stage.WAIT, f"waiting for CRDs to be established: {len(pending)} of "
                            f"{len(crds)} pending", phase="CRDs to be established",
                pending=pending, total=len(crds),
                seconds_left=max(0, int(run.deadline - time.monotonic()))))
        return None

    if not want:
        return True
    with ThreadPoolExecutor(max_workers=max(1, run.concurrency)) as pool:
        return bool(poll(lambda: attempt(pool), deadline=run.deadline, backoff=POLL,
                         sleep=run.sleep))
