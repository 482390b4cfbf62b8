"""`stackctl plan --live`: the working tree's render against a live cluster.

Each rendered object (prepared as apply prepares it: ApplySet label, default namespace) is
sent as a server-side dry-run apply (field manager `stackctl`, `dryRun=All`, forced, as a
server-side diff does): the answer is the object as the server would store it,
with its defaults and webhook mutations, so comparing it with the live object shows only
what the apply would change. An object absent live is added; an object of the last applied
revision that the render no longer holds is removed (the apply would prune it, unless its
kind is protected). Live objects are read with one LIST per kind and namespace.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from gitops.apply.compare import strip_server_fields
from gitops.apply.ssa import ApiRequestError, Kube, UnknownKindError
from gitops.errors import ClusterError
from gitops.inventory import Records
from gitops.plan.model import Plan, RefInfo, plan_from_renders
from gitops.redact import Redactor, run_redactor
from gitops.resource import ResourceId

Obj = dict[str, Any]
Progress = Callable[[str], None]


def _noop(_: str) -> None:
    return None


def live_sides(
    kube: Kube,
    objects: Sequence[Mapping[str, Any]],
    *,
    cluster: str,
    records_namespace: str = "stackctl-system",
    concurrency: int = 8,
    redactor: Redactor | None = None,
    progress: Progress | None = None,
) -> tuple[list[Obj], list[Obj], RefInfo]:
    """(live objects, what the server would make of the render, the live side's RefInfo):
    the two sides of a live plan, without server-only fields."""
    from gitops.apply.engine import prepare
    from gitops.drift.read import read_live

    say = progress or _noop
    r = redactor or run_redactor()
    records = Records(kube, cluster=cluster, namespace=records_namespace)
    deployed = [x for x in records.revisions() if x.status == "deployed"]
    previous = records.manifests(deployed[-1].revision) if deployed else []
    r.learn(previous)
    r.learn(objects)
    desired, rejected = prepare(kube, [dict(o) for o in objects], records.applyset_id)
    if rejected:
        raise ClusterError(
            f"cluster {cluster!r} cannot take {len(rejected)} object(s) of the render: "
            + "; ".join(x.describe() for x in rejected[:5]) + ".",
            hint="Install the missing CustomResourceDefinitions or fix the apiVersions.")
    wanted = {ResourceId.of(o) for o in desired}
    gone = [o for o in previous if ResourceId.of(o) not in wanted]
    say(f"{cluster}: reading {len(desired) + len(gone)} live object(s)")
    live = read_live(kube, [*desired, *gone], concurrency=concurrency)
    say(f"{cluster}: server-side dry run of {len(desired)} object(s)")

    def predict(obj: Obj) -> tuple[Obj, str]:
        try:
            return kube.apply(obj, dry_run=True, force=True), ""
        except UnknownKindError:
            return obj, ""  # its CRD is part of this render: created by the apply
        except ApiRequestError as e:
            if e.code == 404 and ResourceId.of(obj) not in live.objects:
                return obj, ""  # its namespace is created by the same apply
            return obj, f"{ResourceId.of(obj)}: {e.server_message}"

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        predicted = list(pool.map(predict, desired))
    errors = [err for _, err in predicted if err]
    if errors:
        raise ClusterError(
            f"the API server of cluster {cluster!r} rejects {len(errors)} object(s) of the "
            "render in a dry run: " + r.text("; ".join(errors[:5])) + ".",
            hint="Fix the manifests; 'stackctl apply --dry-run' lists every rejection.")
    before = [strip_server_fields(live.objects[rid])
              for rid in sorted({*wanted, *(ResourceId.of(o) for o in gone)})
              if rid in live.objects]
    after = [strip_server_fields(o) for o, _ in predicted]
    rev = deployed[-1] if deployed else None
    ref = RefInfo(ref=f"{cluster} (live" + (f", revision {rev.revision})" if rev else ")"),
                  commit=(rev.commit if rev and rev.commit else "-"))
    return before, after, ref


def live_plan(
    *,
    name: str,
    kube: Kube,
    objects: Sequence[Mapping[str, Any]],
    records_namespace: str = "stackctl-system",
    head: RefInfo,
    concurrency: int = 8,
    redactor: Redactor | None = None,
    progress: Progress | None = None,
) -> Plan:
    """The plan of applying `objects` (the cluster's render) to the live cluster."""
    r = redactor or run_redactor()
    before, after, base = live_sides(kube, objects, cluster=name,
                                     records_namespace=records_namespace,
                                     concurrency=concurrency, redactor=r, progress=progress)
    return plan_from_renders({name: before}, {name: after}, base=base, head=head, redactor=r)
