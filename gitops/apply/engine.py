"""The apply orchestration: validate, order, apply, wait, prune, record, and roll back.

    lease -> read records and live objects -> decide what changed -> dry-run everything that
    changed (all rejections listed, nothing applied) -> record a pending revision -> apply
    phase by phase (CRDs wait Established; objects that needed a CRD or a Namespace of the
    same set are dry-run right after those phases) -> wait for health -> prune -> record.
    On an apply error or a health failure: re-apply the previous revision, delete what the
    failed attempt created, wait again, record both.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from gitops.apply.compare import comparable, covers, strip_server_fields
from gitops.apply.lease import ClusterLease
from gitops.apply.order import Phase, crd_kinds, group_by_phase, phase_of
from gitops.apply.prune import PruneAction, execute_prune, is_protected, plan_prune
from gitops.apply.results import (
    ApplyResult,
    Failure,
    ObjectAction,
    ObjectFailure,
    ProgressEvent,
    Rejection,
    RollbackResult,
    rejection_from,
    scrub,
)
from gitops.apply.ssa import ApiRequestError, Kube, UnknownKindError, UnreachableError
from gitops.apply.wait import (
    FIRST_POLL_SECONDS,
    POLL_GROWTH,
    POLL_SECONDS,
    HealthReport,
    wait_healthy,
)
from gitops.cluster import ApplyPolicy
from gitops.errors import ApplyError, ClusterError
from gitops.health import Status
from gitops.inventory import PART_OF, Records, RevisionInfo
from gitops.redact import run_redactor
from gitops.resource import ResourceId

Progress = Callable[[ProgressEvent], None]
Obj = dict[str, Any]
CRD = ("apiextensions.k8s.io", "CustomResourceDefinition")
AGGREGATED = ("rbac.authorization.k8s.io", "ClusterRole")


def _kube(client: Any) -> Kube:
    return client if isinstance(client, Kube) else Kube(client)


def _noop(_: ProgressEvent) -> None:
    return None


@dataclass
class _Ctx:
    kube: Kube
    records: Records
    policy: ApplyPolicy
    progress: Progress
    force: bool
    deadline: float = 0.0
    selector: str = ""
    prior: dict[ResourceId, Obj] = field(default_factory=dict)


# -- preparing the desired set --------------------------------------------------------
def _crd_scopes(objects: Sequence[Obj]) -> dict[tuple[str, str], bool]:
    scopes: dict[tuple[str, str], bool] = {}
    for obj in objects:
        rid = ResourceId.of(obj)
        if (rid.group, rid.kind) == CRD:
            spec = obj.get("spec") or {}
            kind = (spec.get("names") or {}).get("kind")
            if kind:
                scopes[(str(spec.get("group") or ""), str(kind))] = (
                    spec.get("scope", "Namespaced") == "Namespaced")
    return scopes


def prepare(kube: Kube, objects: Sequence[Obj], applyset_id: str
            ) -> tuple[list[Obj], list[Rejection]]:
    """Copies of the objects with the ApplySet membership label, the default namespace on
    namespaced objects that lack one (as kubectl does), and no namespace on cluster-scoped
    ones; plus rejections for kinds the cluster does not serve and no CRD of the set defines."""
    scopes = _crd_scopes(objects)
    # Discovery of every group/version at once, rather than one after another below.
    versions = sorted({str(o.get("apiVersion") or "") for o in objects} - {""})
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(kube.group_version, versions))
    out: list[Obj] = []
    rejections: list[Rejection] = []
    seen: dict[ResourceId, int] = {}
    for i, obj in enumerate(objects):
        o = json.loads(json.dumps(obj))  # a deep copy, several times faster than deepcopy
        meta = o.setdefault("metadata", {})
        if not o.get("apiVersion") or not o.get("kind") or not meta.get("name"):
            raise ApplyError(
                f"object #{i + 1} of the render has no apiVersion, kind or metadata.name "
                f"({o.get('kind') or '?'} {meta.get('name') or meta.get('generateName') or '?'}).",
                hint="Every object stackctl applies needs a fixed name; fix the manifest.",
            )
        meta["labels"] = {**(meta.get("labels") or {}), PART_OF: applyset_id}
        rid = ResourceId.of(o)
        if (rid.group, rid.kind) == AGGREGATED and o.get("aggregationRule"):
            # The clusterrole-aggregation-controller owns .rules of an aggregated role:
            # applying them (often `rules: []`) would conflict with it on every re-apply.
            o.pop("rules", None)
        try:
            namespaced: bool | None = kube.resource(str(o["apiVersion"]), rid.kind).namespaced
        except UnknownKindError as e:
            namespaced = scopes.get((rid.group, rid.kind))
            if namespaced is None:
                rejections.append(rejection_from(rid, e))
        if namespaced and not meta.get("namespace"):
            meta["namespace"] = "default"
        elif namespaced is False and meta.get("namespace"):
            del meta["namespace"]
        rid = ResourceId.of(o)
        if rid in seen:
            raise ApplyError(
                f"{rid} appears twice in the render (objects #{seen[rid] + 1} and #{i + 1}).",
                hint="Each object must appear once; fix the kustomization.",
            )
        seen[rid] = i
        out.append(o)
    return out, rejections


def _read_live(ctx: _Ctx, objects: Sequence[Obj]) -> dict[ResourceId, Obj]:
    """Live members of the ApplySet, one LIST per kind (cluster-wide, by label)."""
    kinds = sorted({(str(o["apiVersion"]), str(o["kind"])) for o in objects})

    def one(key: tuple[str, str]) -> list[Obj]:
        try:
            return ctx.kube.list(key[0], key[1], label_selector=ctx.selector)
        except UnknownKindError:
            return []

    # A kind served at two versions (Istio's v1alpha3 and v1beta1 VirtualServices) is listed
    # once per version: keep each object as read at the version the render asks for.
    wanted = {ResourceId.of(o): str(o["apiVersion"]) for o in objects}
    live: dict[ResourceId, Obj] = {}
    with ThreadPoolExecutor(max_workers=ctx.policy.concurrency) as pool:
        for (api_version, _), items in zip(kinds, pool.map(one, kinds), strict=True):
            for item in items:
                rid = ResourceId.of(item)
                if wanted.get(rid, api_version) == api_version:
                    live[rid] = item
    return live


def _unchanged(obj: Obj, live: Obj | None, prior: Obj | None) -> bool:
    return live is not None and prior == obj and covers(live, comparable(obj))


# -- applying -------------------------------------------------------------------------
def _apply_many(
    ctx: _Ctx, objects: Sequence[Obj], *, dry_run: bool, force: bool,
    full: bool = False, concurrency: int | None = None,
) -> tuple[dict[ResourceId, tuple[str, Obj]], list[Rejection]]:
    """Server-side apply each object (concurrently). Returns {id: (created|configured,
    response)} and the rejections; raises UnreachableError when the server is gone. The
    response is the whole object only with `full` (a plan needs it), else its metadata."""

    def one(obj: Obj) -> tuple[ResourceId, tuple[str, Obj] | Rejection]:
        rid = ResourceId.of(obj)
        try:
            code, body = ctx.kube.apply_full(obj, dry_run=dry_run, force=force,
                                             metadata_only=not full)
        except UnreachableError:
            raise
        except ClusterError as e:
            return rid, rejection_from(rid, e)
        if not dry_run:
            ctx.progress(ProgressEvent("apply", "created" if code == 201 else "configured", rid))
        return rid, ("created" if code == 201 else "configured", body)

    done: dict[ResourceId, tuple[str, Obj]] = {}
    rejections: list[Rejection] = []
    with ThreadPoolExecutor(max_workers=concurrency or ctx.policy.concurrency) as pool:
        futures = [pool.submit(one, o) for o in objects]
        errors: list[BaseException] = []
        for f in futures:
            try:
                rid, outcome = f.result()
            except UnreachableError as e:
                errors.append(e)
                continue
            if isinstance(outcome, Rejection):
                rejections.append(outcome)
            else:
                done[rid] = outcome
        if errors:
            raise errors[0]
    return done, sorted(rejections, key=lambda r: r.id)


def _deadline_wait(ctx: _Ctx, objects: Sequence[Obj], what: str) -> HealthReport:
    def on_wait(waiting: list[tuple[ResourceId, Status]]) -> None:
        head = ", ".join(f"{r} ({s.reason})" for r, s in waiting[:3])
        more = f" and {len(waiting) - 3} more" if len(waiting) > 3 else ""
        left = max(0, int(ctx.deadline - time.monotonic()))
        ctx.progress(ProgressEvent(
            "wait", f"waiting for {what}: {len(waiting)} of {len(objects)} pending: "
                    f"{head}{more} [{left}s left]",
            phase=what, pending=tuple((r, scrub(s.reason)) for r, s in waiting),
            total=len(objects), seconds_left=left))

    return wait_healthy(ctx.kube, objects, selector=ctx.selector, deadline=ctx.deadline,
                        on_wait=on_wait, concurrency=ctx.policy.concurrency)


def _wait_served(ctx: _Ctx, crds: Sequence[Obj]) -> None:
    """Wait (up to the deadline) until discovery serves every version of the CRDs.

    The discovery controller lists a CRD's versions only once the CRD is Established
    (apiextensions-apiserver, discovery_controller.go), and a discovery document is a few
    KiB where a LIST of Kubeflow's CRDs is megabytes of schemas: polling discovery, then
    confirming the Established conditions with one LIST, is much cheaper than polling the
    CRDs. What is not served by the deadline is reported by the health wait that follows."""
    want: dict[tuple[str, str], ResourceId] = {}
    for crd in crds:
        spec = crd.get("spec") or {}
        kind = str((spec.get("names") or {}).get("kind") or "")
        for v in spec.get("versions") or []:
            if kind and v.get("served", True):
                want[(f"{spec.get('group')}/{v.get('name')}", kind)] = ResourceId.of(crd)
    interval = FIRST_POLL_SECONDS
    with ThreadPoolExecutor(max_workers=ctx.policy.concurrency) as pool:
        while want:
            versions = sorted({av for av, _ in want})
            served = dict(zip(versions, pool.map(
                lambda av: ctx.kube.group_version(av, refresh=True), versions), strict=True))
            want = {key: rid for key, rid in want.items() if key[1] not in served[key[0]]}
            if not want or time.monotonic() >= ctx.deadline:
                return
            pending = tuple(sorted({(rid, "waiting to be established (not served yet)")
                                    for rid in want.values()}))
            ctx.progress(ProgressEvent(
                "wait", f"waiting for CRDs to be established: {len(pending)} of {len(crds)} "
                        "pending", phase="CRDs to be established", pending=pending,
                total=len(crds), seconds_left=max(0, int(ctx.deadline - time.monotonic()))))
            time.sleep(min(interval, max(0.0, ctx.deadline - time.monotonic())))
            interval = min(POLL_SECONDS, interval * POLL_GROWTH)


def _health_failure(report: HealthReport, what: str) -> Failure:
    bad = report.unhealthy
    explained = {r: tuple(scrub(line) for line in lines) for r, lines in report.explanations}
    objs = tuple(ObjectFailure(r, scrub(s.reason), explained.get(r, ())) for r, s in bad
                 if r in explained) or tuple(ObjectFailure(r, scrub(s.reason))
                                             for r, s in bad[:10])
    if report.timed_out:
        summary = (f"{len(bad)} object(s) did not become healthy within the timeout while "
                   f"waiting for {what}")
    else:
        summary = f"{len(bad)} object(s) failed while waiting for {what}"
    return Failure("health", summary, objs)


@dataclass
class _Outcome:
    actions: dict[ResourceId, ObjectAction] = field(default_factory=dict)
    created: list[Obj] = field(default_factory=list)
    failure: Failure | None = None
    health: HealthReport | None = None


def _run_phases(ctx: _Ctx, todo: Sequence[Obj], deferred: set[ResourceId], *,
                wait_for: Sequence[Obj] | None, force: bool) -> _Outcome:
    """Apply `todo` phase by phase; dry-run `deferred` ones once their CRDs and Namespaces
    exist; then wait for `wait_for` (None: no wait)."""
    out = _Outcome()
    phases = group_by_phase(todo)
    late_done = not deferred
    for phase, objs in phases:
        if not late_done and phase > Phase.NAMESPACES:
            late = [o for o in todo if ResourceId.of(o) in deferred]
            ctx.progress(ProgressEvent(
                "validate", f"dry-run of {len(late)} object(s) that needed a CRD or "
                            "Namespace of this set"))
            for o in late:
                ctx.kube.resource(str(o["apiVersion"]), str(o["kind"]), refresh=True)
            _, rej = _apply_many(ctx, late, dry_run=True, force=force)
            late_done = True
            if rej:
                out.failure = Failure("validate", f"{len(rej)} object(s) rejected by the "
                                      "API server", tuple(ObjectFailure(
                                          r.id, r.reason, (r.describe(),)) for r in rej))
                return out
        ctx.progress(ProgressEvent("phase", f"applying {len(objs)} {phase.label}",
                                   phase=phase.label, total=len(objs)))
        done, rej = _apply_many(ctx, objs, dry_run=False, force=force)
        by_id = {ResourceId.of(o): o for o in objs}
        for rid, (action, _) in done.items():
            out.actions[rid] = ObjectAction(rid, action)
            if action == "created":
                out.created.append(by_id[rid])
        for r in rej:
            out.actions[r.id] = ObjectAction(r.id, "failed", message=r.describe())
        if rej:
            out.failure = Failure("apply", f"{len(rej)} object(s) failed to apply",
                                  tuple(ObjectFailure(r.id, r.reason, (r.describe(),))
                                        for r in rej))
            return out
        if phase is Phase.CRDS:
            _wait_served(ctx, objs)
            report = _deadline_wait(ctx, objs, "CRDs to be established")
            if not report.ok:
                out.failure = _health_failure(report, "CRDs to be established")
                out.health = report
                return out
    if wait_for is not None and wait_for:
        ctx.progress(ProgressEvent("wait", f"waiting for {len(wait_for)} object(s) to be "
                                           "healthy"))
        out.health = _deadline_wait(ctx, wait_for, "the rollout")
        if not out.health.ok:
            out.failure = _health_failure(out.health, "the rollout")
    return out


def _delete_created(ctx: _Ctx, created: Sequence[Obj], keep: set[ResourceId]
                    ) -> tuple[list[ResourceId], list[ResourceId]]:
    deleted: list[ResourceId] = []
    kept: list[ResourceId] = []
    # Reverse phase order: webhooks and workloads before the namespaces they live in.
    for obj in sorted(created, key=lambda o: (-phase_of(ResourceId.of(o)), ResourceId.of(o))):
        rid = ResourceId.of(obj)
        if rid in keep:
            continue
        if is_protected(obj, ctx.policy.protected_kinds):
            kept.append(rid)
            continue
        ctx.kube.delete(str(obj["apiVersion"]), rid.kind, rid.namespace, rid.name)
        ctx.progress(ProgressEvent("rollback", "deleted (created by the failed attempt)", rid))
        deleted.append(rid)
    return deleted, kept


def _rollback(ctx: _Ctx, *, failed_revision: int, prev: RevisionInfo | None,
              prev_objects: Sequence[Obj], created: Sequence[Obj],
              touched: set[ResourceId], wait: bool) -> RollbackResult:
    try:
        reapplied = 0
        outcome = _Outcome()
        if prev is not None:
            # Only what the failed attempt sent can differ from the previous revision.
            # Protected kinds are not rolled back (cluster.yaml `protectedKinds`): the API
            # server refuses to take a CRD back to versions without its new storage version
            # ("v1 was previously a storage version, and must remain in spec.versions").
            restore = [o for o in prev_objects if ResourceId.of(o) in touched
                       and not is_protected(o, ctx.policy.protected_kinds)]
            ctx.progress(ProgressEvent(
                "rollback", f"re-applying {len(restore)} object(s) of revision "
                            f"{prev.revision}"))
            ctx.deadline = time.monotonic() + ctx.policy.timeout
            # Our own previous state: take back fields the failed attempt moved.
            outcome = _run_phases(ctx, restore, set(), wait_for=None, force=True)
            reapplied = len(outcome.actions)
        keep = {ResourceId.of(o) for o in prev_objects}
        deleted, kept = _delete_created(ctx, created, keep)
        failure = outcome.failure
        if failure is None and prev is not None and wait:
            ctx.progress(ProgressEvent("rollback", f"waiting for revision {prev.revision} to "
                                                   "be healthy again"))
            ctx.deadline = time.monotonic() + ctx.policy.timeout
            report = _deadline_wait(ctx, prev_objects, "the rollback")
            if not report.ok:
                failure = _health_failure(report, "the rollback")
        healthy = failure is None
        error = failure.summary if failure else ""
        recorded: int | None = None
        if prev is not None:
            recorded = failed_revision + 1
            ctx.records.write(
                recorded, prev_objects, status="deployed" if healthy else "failed",
                commit=prev.commit,
                description=f"automatic rollback to revision {prev.revision} after "
                            f"revision {failed_revision} failed",
            )
            ctx.records.set_status(prev.revision, "superseded")
            ctx.records.write_parent(keep)
        else:
            ctx.records.write_parent([])
        return RollbackResult(prev.revision if prev else None, recorded, reapplied,
                              tuple(deleted), tuple(kept), healthy, error, failure)
    except UnreachableError:
        raise
    except ClusterError as e:
        return RollbackResult(prev.revision if prev else None, None, 0, (), (), False, str(e))


# -- the entry points -----------------------------------------------------------------
def apply_objects(
    client: Any,
    objects: Sequence[Obj],
    *,
    cluster: str,
    records_namespace: str = "stackctl-system",
    policy: ApplyPolicy | None = None,
    commit: str | None = None,
    dry_run: bool = False,
    rollback: bool = True,
    prune: bool = True,
    force_conflicts: bool = False,
    allow_mass_prune: bool = False,
    break_lease: bool = False,
    wait: bool = True,
    progress: Progress | None = None,
) -> ApplyResult:
    """Apply `objects` (plain dicts) to a cluster as a new revision; see the module doc."""
    return _execute(
        _kube(client), objects, cluster=cluster, records_namespace=records_namespace,
        policy=policy or ApplyPolicy(), commit=commit, dry_run=dry_run, rollback=rollback,
        prune=prune, force=force_conflicts or (policy.force_conflicts if policy else False),
        allow_mass_prune=allow_mass_prune, break_lease=break_lease, wait=wait,
        progress=progress or _noop, description="", replaced_status="superseded",
    )


def _execute(
    kube: Kube, objects: Sequence[Obj], *, cluster: str, records_namespace: str,
    policy: ApplyPolicy, commit: str | None, dry_run: bool, rollback: bool, prune: bool,
    force: bool, allow_mass_prune: bool, break_lease: bool, wait: bool, progress: Progress,
    description: str, replaced_status: str,
) -> ApplyResult:
    # Before anything can print: every message of this run (progress, rejections quoting a
    # Secret, errors) is scrubbed of the secret values of the objects it applies.
    run_redactor().learn(objects)
    records = Records(kube, cluster=cluster, namespace=records_namespace)
    ctx = _Ctx(kube, records, policy, progress, force,
               selector=f"{PART_OF}={records.applyset_id}")
    if dry_run:
        return _plan(ctx, objects, cluster=cluster, prune=prune,
                     allow_mass_prune=allow_mass_prune)
    records.ensure_namespace()
    progress(ProgressEvent("lease", f"taking the apply lease of cluster {cluster}"))
    with ClusterLease(kube, cluster=cluster, namespace=records_namespace,
                      break_lease=break_lease) as lease:
        taken = lease.taken_over.holder if lease.taken_over else None
        result = _apply_locked(ctx, objects, cluster=cluster, commit=commit,
                               rollback=rollback, prune=prune, force=force,
                               allow_mass_prune=allow_mass_prune, wait=wait,
                               description=description, replaced_status=replaced_status)
    if taken:
        from dataclasses import replace

        result = replace(result, lease_taken_over=taken)
    return result


def _load_state(ctx: _Ctx) -> tuple[list[RevisionInfo], RevisionInfo | None, list[Obj]]:
    revisions = ctx.records.revisions()
    deployed = [r for r in revisions if r.status == "deployed"]
    prev = deployed[-1] if deployed else None
    prev_objects = ctx.records.manifests(prev.revision) if prev else []
    run_redactor().learn(prev_objects)
    return revisions, prev, prev_objects


def _apply_locked(
    ctx: _Ctx, objects: Sequence[Obj], *, cluster: str, commit: str | None, rollback: bool,
    prune: bool, force: bool, allow_mass_prune: bool, wait: bool, description: str,
    replaced_status: str,
) -> ApplyResult:
    progress, records, kube = ctx.progress, ctx.records, ctx.kube
    revisions, prev, prev_objects = _load_state(ctx)
    abandoned = tuple(r.revision for r in revisions if r.status == "pending")
    for n in abandoned:
        records.set_status(n, "failed", description="abandoned: the apply stopped before "
                                                    "it finished")
        progress(ProgressEvent("record", f"revision {n} was left pending by an apply that "
                                         "stopped; marked failed"))
    desired, rejections = prepare(kube, objects, records.applyset_id)
    if rejections:
        return ApplyResult(cluster, None, False, False, (), rejections=tuple(rejections),
                           abandoned=abandoned)
    desired_ids = [ResourceId.of(o) for o in desired]
    prune_plan: list[PruneAction] = []
    if prune and prev_objects:
        prune_plan = plan_prune(prev_objects, desired_ids,
                                protected_kinds=ctx.policy.protected_kinds,
                                allow_mass_prune=allow_mass_prune)
    elif not desired and not allow_mass_prune:
        plan_prune([], [], protected_kinds=(), allow_mass_prune=False)

    progress(ProgressEvent("read", f"reading live state of {len(desired)} objects"))
    ctx.prior = {ResourceId.of(o): o for o in prev_objects}
    live = _read_live(ctx, desired)
    todo = [o for o in desired
            if not _unchanged(o, live.get(ResourceId.of(o)), ctx.prior.get(ResourceId.of(o)))]
    todo_ids = {ResourceId.of(o) for o in todo}
    unchanged = [ObjectAction(r, "unchanged") for r in desired_ids if r not in todo_ids]
    deletes = [a for a in prune_plan if a.action == "delete"]
    if not todo and not deletes and prev is not None:
        progress(ProgressEvent("done", f"no changes; revision {prev.revision} is current"))
        return ApplyResult(cluster, prev.revision, False, False, tuple(unchanged),
                           prune=tuple(prune_plan), abandoned=abandoned)

    # Validate: a server-side dry run of everything that will be sent.
    deferred = _deferred(ctx, desired, todo)
    checked = [o for o in todo if ResourceId.of(o) not in deferred]
    progress(ProgressEvent("validate", f"server-side dry run of {len(checked)} object(s)"
                           + (f"; {len(deferred)} wait for their CRD or Namespace"
                              if deferred else "")))
    _, rejected = _apply_many(ctx, checked, dry_run=True, force=force)
    if rejected:
        return ApplyResult(cluster, None, False, False, tuple(unchanged),
                           rejections=tuple(rejected), abandoned=abandoned)

    revision = max((r.revision for r in revisions), default=0) + 1
    progress(ProgressEvent("record", f"recording revision {revision} (pending)"))
    records.write(revision, desired, status="pending", commit=commit, description=description)
    records.write_parent({*desired_ids, *(ResourceId.of(o) for o in prev_objects)})

    ctx.deadline = time.monotonic() + ctx.policy.timeout
    outcome = _run_phases(ctx, todo, deferred, wait_for=desired if wait else None, force=force)
    actions = {**{a.id: a for a in unchanged}, **outcome.actions}
    ordered = tuple(actions[r] if r in actions else ObjectAction(r, "skipped")
                    for r in desired_ids)
    if outcome.failure is not None:
        records.set_status(revision, "failed", description=outcome.failure.summary)
        progress(ProgressEvent("failed", outcome.failure.summary))
        rb: RollbackResult | None = None
        if rollback:
            rb = _rollback(ctx, failed_revision=revision, prev=prev, prev_objects=prev_objects,
                           created=outcome.created, wait=wait,
                           touched={r for r, a in outcome.actions.items()
                                    if a.action != "unchanged"})
        return ApplyResult(cluster, revision, False, True, ordered, health=outcome.health,
                           failure=outcome.failure, rollback=rb, abandoned=abandoned)

    pruned: list[PruneAction] = []
    if prune_plan:
        progress(ProgressEvent("prune", f"pruning {len(deletes)} object(s) no longer in the "
                                        "render"))
        pruned = execute_prune(kube, prune_plan)
    records.write_parent(desired_ids)
    records.set_status(revision, "deployed")
    if prev is not None:
        records.set_status(prev.revision, replaced_status)
    progress(ProgressEvent("done", f"revision {revision} deployed"))
    return ApplyResult(cluster, revision, False, True, ordered, prune=tuple(pruned),
                       health=outcome.health, abandoned=abandoned)


def _deferred(ctx: _Ctx, desired: Sequence[Obj], todo: Sequence[Obj]) -> set[ResourceId]:
    """Objects that cannot be dry-run yet: their kind comes from a CRD of this set that is
    not served yet, or their namespace is created by this set."""
    new_kinds = crd_kinds(desired)
    set_namespaces = {ResourceId.of(o).name for o in desired
                      if (ResourceId.of(o).group, ResourceId.of(o).kind) == ("", "Namespace")}
    existing: set[str] = set()
    if set_namespaces:
        existing = {str((n.get("metadata") or {}).get("name"))
                    for n in ctx.kube.list("v1", "Namespace")}
    served: dict[tuple[str, str], bool] = {}  # one discovery request per kind, not object
    out: set[ResourceId] = set()
    for o in todo:
        rid = ResourceId.of(o)
        key = (str(o["apiVersion"]), rid.kind)
        if (rid.group, rid.kind) in new_kinds and key not in served:
            served[key] = ctx.kube.knows(*key)
        needs_crd = (rid.group, rid.kind) in new_kinds and not served[key]
        needs_ns = rid.namespace in set_namespaces and rid.namespace not in existing
        if needs_crd or needs_ns:
            out.add(rid)
    return out


def _plan(ctx: _Ctx, objects: Sequence[Obj], *, cluster: str, prune: bool,
          allow_mass_prune: bool) -> ApplyResult:
    """--dry-run: what an apply would create, update (field by field) and delete."""
    revisions = ctx.records.revisions() if _namespace_exists(ctx) else []
    deployed = [r for r in revisions if r.status == "deployed"]
    prev_objects = ctx.records.manifests(deployed[-1].revision) if deployed else []
    run_redactor().learn(prev_objects)
    desired, rejections = prepare(ctx.kube, objects, ctx.records.applyset_id)
    if rejections:
        return ApplyResult(cluster, None, True, False, (), rejections=tuple(rejections))
    prune_plan = (plan_prune(prev_objects, [ResourceId.of(o) for o in desired],
                             protected_kinds=ctx.policy.protected_kinds,
                             allow_mass_prune=allow_mass_prune)
                  if prune and prev_objects else [])
    ctx.prior = {ResourceId.of(o): o for o in prev_objects}
    live = _read_live(ctx, desired)
    todo = [o for o in desired
            if not _unchanged(o, live.get(ResourceId.of(o)), ctx.prior.get(ResourceId.of(o)))]
    deferred = _deferred(ctx, desired, todo)
    checked = [o for o in todo if ResourceId.of(o) not in deferred]
    ctx.progress(ProgressEvent("validate", f"server-side dry run of {len(checked)} object(s)"))
    done, rejected = _apply_many(ctx, checked, dry_run=True, force=ctx.force, full=True)
    actions: list[ObjectAction] = []
    for o in desired:
        rid = ResourceId.of(o)
        if o not in todo:
            actions.append(ObjectAction(rid, "unchanged"))
        elif rid in deferred:
            actions.append(ObjectAction(rid, "create", message="after its CRD or Namespace"))
        elif rid in done:
            verb, after = done[rid]
            if verb == "created":
                actions.append(ObjectAction(rid, "create"))
                continue
            before = live.get(rid) or ctx.kube.get(str(o["apiVersion"]), rid.kind,
                                                   rid.namespace, rid.name) or {}
            actions.append(_update(rid, before, after))
    return ApplyResult(cluster, None, True, any(a.action != "unchanged" for a in actions)
                       or any(a.action == "delete" for a in prune_plan),
                       tuple(actions), prune=tuple(prune_plan), rejections=tuple(rejected))


def _update(rid: ResourceId, before: Obj, after: Obj) -> ObjectAction:
    """A dry run's update: the fields the server-side dry run changes on the live object,
    found and shown the way `stackctl plan` shows them (gitops.diff, gitops.plan.lines),
    with Secret values redacted by the run's redactor."""
    from gitops.diff import field_changes as diff_fields
    from gitops.plan.lines import field_lines

    redactor = run_redactor()
    fields = diff_fields(strip_server_fields(before), strip_server_fields(after),
                         redactor=redactor)
    lines = tuple(ln for f in fields for ln in field_lines(f, redactor, indent=" "))
    return ObjectAction(rid, "update" if fields else "unchanged", lines, fields=fields)


def _namespace_exists(ctx: _Ctx) -> bool:
    try:
        ctx.kube.request("GET", f"/api/v1/namespaces/{ctx.records.namespace}")
    except ApiRequestError as e:
        if e.code == 404:
            return False
        raise
    return True


def rollback_to(
    client: Any,
    *,
    cluster: str,
    records_namespace: str = "stackctl-system",
    revision: int | None = None,
    policy: ApplyPolicy | None = None,
    break_lease: bool = False,
    wait: bool = True,
    progress: Progress | None = None,
) -> ApplyResult:
    """Re-apply a recorded revision (default: the deployed one before the current) as a new
    revision, pruning what the current one has and it has not; the current one is marked
    rolled-back. Rolling back is explicit, so the mass-prune guard does not apply."""
    kube = _kube(client)
    records = Records(kube, cluster=cluster, namespace=records_namespace)
    revisions = records.revisions()
    if not revisions:
        raise ApplyError(f"cluster {cluster!r} has no recorded revisions in namespace "
                         f"{records_namespace}.", hint=f"Run 'stackctl apply --cluster {cluster}'"
                                                      " first.")
    current = [r for r in revisions if r.status == "deployed"]
    if revision is None:
        earlier = [r for r in revisions if r.status in ("superseded", "rolled-back")
                   and (not current or r.revision < current[-1].revision)]
        if not earlier:
            raise ApplyError(f"cluster {cluster!r} has no earlier deployed revision to roll "
                             "back to.", hint="Run 'stackctl history' and pass --to REVISION.")
        target = earlier[-1]
    else:
        found = [r for r in revisions if r.revision == revision]
        if not found:
            known = ", ".join(str(r.revision) for r in revisions)
            raise ApplyError(f"cluster {cluster!r} has no revision {revision}.",
                             hint=f"Recorded revisions: {known}.")
        target = found[0]
    objects = records.manifests(target.revision)
    return _execute(
        kube, objects, cluster=cluster, records_namespace=records_namespace,
        policy=policy or ApplyPolicy(), commit=target.commit, dry_run=False, rollback=True,
        prune=True, force=True, allow_mass_prune=True, break_lease=break_lease, wait=wait,
        progress=progress or _noop, description=f"rollback to revision {target.revision}",
        replaced_status="rolled-back",
    )


def history(client: Any, *, cluster: str, records_namespace: str = "stackctl-system"
            ) -> list[RevisionInfo]:
    """The recorded revisions of a cluster, oldest first."""
    return Records(_kube(client), cluster=cluster, namespace=records_namespace).revisions()
