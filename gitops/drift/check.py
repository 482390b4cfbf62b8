"""The drift check of a cluster: its last applied revision against the live objects, and
against git's current render; `--heal` re-applies the revision through the apply engine.

    revision = the latest `deployed` revision (gitops.inventory)
    live     = gitops.kube.read_live: one LIST per kind by the ApplySet label, then where
               the objects it did not find should be
    per object of the revision: missing, or compared on stackctl's fields (compare.py)
    extra    = live objects of the revision's kinds carrying stackctl's ApplySet label that
               the revision does not hold
    git      = the working tree's render, prepared as apply prepares it, diffed with the
               revision (gitops.diff): changes merged but not yet rolled out
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from gitops.apply import ApplyOptions, Outcome, ProgressEvent, Stage, Target, apply_objects
from gitops.apply.prepare import prepare
from gitops.cluster import ApplyPolicy
from gitops.diff import diff_object_sets
from gitops.drift.compare import compare_object, other_writers
from gitops.drift.model import (
    ClusterDrift,
    DriftReport,
    GitComparison,
    HealOutcome,
    ObjectDrift,
    TreeRender,
)
from gitops.errors import UserError
from gitops.inventory import PART_OF, Records, RevisionInfo, RevisionStatus
from gitops.kube import Kube, read_live
from gitops.redact import Redactor
from gitops.resource import ResourceId

Obj = dict[str, Any]
Progress = Callable[[str], None]
RenderFn = Callable[[], Sequence[Mapping[str, Any]] | TreeRender]

_ORDER = {"missing": 0, "changed": 1, "extra": 2}


@dataclass(frozen=True)
class DriftTarget:
    """A cluster to check: how to reach it, where its records are, how to render it."""

    name: str
    connect: Callable[[], Any]  # -> an ApiClient (or a Kube); may raise ClusterError
    records_namespace: str = "stackctl-system"
    render: RenderFn | None = None  # the working tree's render; None: no git comparison
    head_commit: str = ""
    policy: ApplyPolicy = field(default_factory=ApplyPolicy)


def _noop(_: str) -> None:
    return None


def _now() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def check_cluster(
    kube: Kube,
    *,
    cluster: str,
    records_namespace: str = "stackctl-system",
    render: RenderFn | None = None,
    head_commit: str = "",
    redactor: Redactor,
    progress: Progress | None = None,
    concurrency: int = 8,
) -> ClusterDrift:
    """Drift of one cluster (raises ClusterError when it cannot be read)."""
    say = progress or _noop
    r = redactor
    if render is not None:
        # The working tree's render first: it decrypts the cluster's SOPS files, and the
        # redactor must know those values before a field is compared (a value an encrypted
        # patch put into a Deployment is a secret only the render can tell).
        render = _once(render)
        with contextlib.suppress(UserError):
            render()
    records = Records(kube, cluster=cluster, namespace=records_namespace)
    revisions = records.revisions()
    rev = revisions.deployed
    if rev is None:
        what = ("no revision is recorded" if not revisions else
                "no revision is deployed (" + ", ".join(
                    f"{x.revision}: {x.status}" for x in revisions) + ")")
        return ClusterDrift(
            cluster, never_applied=True,
            error=f"cluster {cluster!r} was never applied: {what} in namespace "
                  f"{records_namespace}. Run 'stackctl apply --cluster {cluster}' first.")
    notes = tuple(_unfinished_note(x) for x in revisions.unfinished)
    say(f"{cluster}: reading revision {rev.revision} ({rev.object_count} objects)")
    objects = records.manifests(rev.revision)
    say(f"{cluster}: listing live objects")
    live = read_live(kube, objects, label=(PART_OF, records.applyset_id), members=True,
                     find_unlabelled=True, concurrency=concurrency,
                     kinds=_other_kinds(kube, records, objects))
    found: list[ObjectDrift] = []
    shared: list[str] = []
    ids: set[ResourceId] = set()
    for obj in objects:
        rid = ResourceId.of(obj)
        ids.add(rid)
        av = str(obj.get("apiVersion"))
        if (av, rid.kind) in live.unserved:
            found.append(ObjectDrift(rid, av, "missing",
                                     note=f"the cluster no longer serves {rid.kind} in {av}"))
            continue
        now = live.objects.get(rid)
        if now is None:
            found.append(ObjectDrift(rid, av, "missing"))
            continue
        fields = compare_object(obj, now, redactor=r)
        if fields and _claimed_by_another_set(now, records.applyset_id):
            # An object two deployments both apply (the same CRD from two stacks on one API
            # server) carries the part-of label of whichever applied last: not drift.
            fields = tuple(f for f in fields if PART_OF not in f.path)
            shared.append(f"{rid} is also applied by another ApplySet "
                          f"({_labels(now).get(PART_OF)}), which applied it last")
        if fields:
            found.append(ObjectDrift(rid, av, "changed", fields, writers=other_writers(now)))
    for rid, item in live.members.items():
        if rid not in ids:
            found.append(ObjectDrift(rid, str(item.get("apiVersion")), "extra"))
    found.sort(key=lambda o: (_ORDER[o.state], o.id))
    if any(o.fields for o in found):
        # Values will be printed: learn every secret value of the revision, so that one
        # quoted anywhere else (a ConfigMap holding a copy) is scrubbed too. Not needed
        # when only identities are printed, and it is the costliest step of a clean check.
        r.learn(objects)
    git = GitComparison("not-checked", head_commit=head_commit)
    if render is not None:
        say(f"{cluster}: comparing git's render with revision {rev.revision}")
        git = _git(kube, objects, render, applyset_id=records.applyset_id,
                   head_commit=head_commit, redactor=r)
        git = replace(git, applied_dirty=rev.dirty)
    return ClusterDrift(cluster, rev, len(objects), tuple(found), git,
                        notes=(*notes, *shared))


def _once(render: RenderFn) -> RenderFn:
    """`render`, run at most once: its objects, or its error again."""
    done: list[Sequence[Mapping[str, Any]] | TreeRender | UserError] = []

    def run() -> Sequence[Mapping[str, Any]] | TreeRender:
        if not done:
            try:
                tree = render()
                done.append(tree if isinstance(tree, TreeRender) else list(tree))
            except UserError as e:
                done.append(e)
        result = done[0]
        if isinstance(result, UserError):
            raise result
        return result

    return run


def _unfinished_note(x: RevisionInfo) -> str:
    if x.status == RevisionStatus.PENDING:
        return (f"revision {x.revision} is pending: an apply is running, or stopped before "
                "it finished; what it changed shows as drift until an apply or a rollback "
                "finishes (and prunes what it created)")
    return (f"revision {x.revision} failed and was not rolled back all the way; what it "
            "changed shows as drift until an apply or a rollback prunes what it created")


def _other_kinds(kube: Kube, records: Records, objects: Sequence[Obj]
                 ) -> list[tuple[str, str]]:
    """(apiVersion, kind) of the group-kinds the ApplySet parent names beyond the
    revision's: an apply that did not finish may have created members of them (a custom
    resource of a new kind), which the parent names before they are created."""
    have = {ResourceId.of(o).group_kind for o in objects}
    out = []
    for group, kind in records.parent_group_kinds():
        if (f"{kind}.{group}" if group else kind) in have:
            continue
        version = kube.preferred_version(group)
        if version is not None:
            out.append((version, kind))
    return out


def _labels(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    labels = meta.get("labels") if isinstance(meta, Mapping) else None
    return labels if isinstance(labels, Mapping) else {}


def _claimed_by_another_set(live: Mapping[str, Any], applyset_id: str) -> bool:
    owner = _labels(live).get(PART_OF)
    return isinstance(owner, str) and owner.startswith("applyset-") and owner != applyset_id


def _git(kube: Kube, applied: Sequence[Obj], render: RenderFn, *, applyset_id: str,
         head_commit: str, redactor: Redactor) -> GitComparison:
    try:
        tree = render()
        if not isinstance(tree, TreeRender):
            tree = TreeRender(tree)
        rendered = [dict(o) for o in tree.objects]
        desired, _ = prepare(kube, rendered, applyset_id, redactor)
    except UserError as e:
        return GitComparison("error", head_commit=head_commit, error=redactor.text(str(e)))
    diff = diff_object_sets(applied, desired, redactor=redactor)
    return GitComparison("same" if diff.is_empty else "differs", head_commit=head_commit,
                         diff=diff, uncommitted=tree.uncommitted)


def heal_cluster(kube: Kube, drift: ClusterDrift, *, records_namespace: str,
                 policy: ApplyPolicy, redactor: Redactor,
                 progress: Progress | None = None) -> HealOutcome:
    """Re-apply the cluster's last revision through the apply engine. The engine sends only
    the objects that differ live (its no-change test), with force: healing takes back the
    fields other managers took. Extra objects are left alone (they may be someone's)."""
    say = progress or _noop
    assert drift.revision is not None
    rev = drift.revision
    objects = Records(kube, cluster=drift.name, namespace=records_namespace).manifests(
        rev.revision)

    def on_event(e: ProgressEvent) -> None:
        if e.stage is not Stage.APPLY:
            say(f"{drift.name}: heal: {e.message}" + (f" {e.id}" if e.id else ""))

    result = apply_objects(
        Target(kube, drift.name, records_namespace), objects,
        options=ApplyOptions(policy=policy, commit=rev.commit or None, prune=False,
                             force_conflicts=True, dirty=rev.dirty),
        redactor=redactor, progress=on_event)
    created = tuple(o.id for o in result.objects if o.outcome is Outcome.CREATED)
    configured = tuple(o.id for o in result.objects if o.outcome is Outcome.CONFIGURED)
    error = ""
    if result.rejections:
        error = "; ".join(x.describe() for x in result.rejections[:5])
    elif result.failure is not None:
        error = result.failure.summary
    return HealOutcome(result.revision, created, configured, error,
                       drift_before=drift.objects)


def check_drift(
    targets: Sequence[DriftTarget],
    *,
    heal: bool = False,
    redactor: Redactor,
    progress: Progress | None = None,
    concurrency: int = 8,
) -> DriftReport:
    """Check every target; a cluster that cannot be checked is reported with the reason and
    the others are still checked. With `heal`, a drifted cluster's revision is re-applied
    and the cluster checked again."""
    say = progress or _noop
    r = redactor
    out = []
    for t in targets:
        say(f"{t.name}: connecting")
        try:
            client = t.connect()
            kube = Kube.of(client)
            result = check_cluster(kube, cluster=t.name, records_namespace=t.records_namespace,
                                   render=t.render, head_commit=t.head_commit, redactor=r,
                                   progress=say, concurrency=concurrency)
            healable = [o for o in result.objects if o.state != "extra"]
            if heal and healable and result.revision is not None:
                say(f"{t.name}: healing {len(healable)} object(s) from revision "
                    f"{result.revision.revision}")
                outcome = heal_cluster(kube, result, records_namespace=t.records_namespace,
                                       policy=t.policy, redactor=r, progress=say)
                after = check_cluster(kube, cluster=t.name,
                                      records_namespace=t.records_namespace, redactor=r,
                                      progress=say, concurrency=concurrency)
                result = replace(after, git=result.git, heal=outcome)
        except UserError as e:
            result = ClusterDrift(t.name, error=r.text(str(e)))
        out.append(result)
    return DriftReport(tuple(out), r, _now(), healed=heal)
