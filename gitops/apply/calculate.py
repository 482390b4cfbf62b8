"""`calculate`: what applying a set of objects to a cluster would change, read-only.

    records (revisions, the latest deployed one's manifests, and those of revisions after
    it that did not finish) -> prepare the desired set -> prune candidates (with the
    mass-prune guards) -> live state (gitops.kube.read_live) -> the no-change test
    (compare.py) -> objects deferred behind a CRD or Namespace of the set -> a server-side
    dry run of every other object that would be sent (a CRD that drops a stored version in
    its storage migration's first form: migrate.py) -> what cannot change in place is
    replaced or refused (replace.py) -> per object: create, update, replace, unchanged; per
    prune candidate still a live member of the set: delete, keep.

`apply --dry-run`, `plan --live` and `apply` all go through here, so they agree. With
`fields`, the dry run returns whole objects and each change carries its field changes
(gitops.diff, redacted); without, the dry run only validates (metadata answers) and an
object that would be sent is an update.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from gitops.apply.changeset import Action, Change, ChangeSet
from gitops.apply.compare import comparable, covers, strip_server_fields
from gitops.apply.deps import conversion_dropped
from gitops.apply.migrate import plan_migrations
from gitops.apply.options import ApplyOptions, Progress, Target, no_progress
from gitops.apply.prepare import deferred, prepare
from gitops.apply.prune import leftovers, members_only, plan_prune
from gitops.apply.replace import headless_lost, resolve, wants_always, which_fields
from gitops.apply.results import Outcome, ProgressEvent, Rejection, Stage
from gitops.apply.send import send_all
from gitops.diff import ObjectChange, object_change
from gitops.inventory import Records, Revisions
from gitops.kube import read_live
from gitops.redact import Redactor
from gitops.resource import ResourceId

Obj = dict[str, Any]
AFTER_CRD_OR_NAMESPACE = "after its CRD or Namespace"
AFTER_CRD = "validated after its CRD changes"
AFTER_CONVERSION = "validated after its conversion webhook is removed"


def unchanged(obj: Obj, live: Obj | None, prior: Obj | None) -> bool:
    """The no-change test: the last revision applied exactly this, and every desired field
    has the desired value live. Anything else is sent to server-side apply, so a wrong
    "changed" verdict only costs a request, never correctness."""
    return live is not None and prior == obj and covers(live, comparable(obj))


def calculate(
    target: Target,
    objects: Sequence[Obj],
    *,
    options: ApplyOptions,
    redactor: Redactor,
    fields: bool = False,
    progress: Progress = no_progress,
) -> ChangeSet:
    """The change set of applying `objects` (plain dicts, as rendered) to the target.
    Changes nothing on the cluster; raises MassPruneError before reading live state when
    the prune guards refuse."""
    kube, records = target.kube, target.records
    # Before anything can print: every message of this run (progress, rejections quoting a
    # Secret, errors) is scrubbed of the secret values of the objects it applies.
    redactor.learn(objects)
    revisions = records.revisions()
    previous = revisions.deployed
    prev_objects = records.manifests(previous.revision) if previous else []
    redactor.learn(prev_objects)
    unfinished = _unfinished(records, revisions) if options.prune else {}
    redactor.learn([obj for _, obj in unfinished.values()])
    desired, rejections = prepare(kube, objects, records.applyset_id, redactor)
    base = ChangeSet(target, redactor, revisions, tuple(desired), (), tuple(prev_objects),
                     fields=fields)
    if rejections:
        return replace(base, rejections=tuple(rejections))
    desired_ids = [ResourceId.of(o) for o in desired]
    prune: list[Change] = []
    if options.prune and prev_objects:
        prune = plan_prune(prev_objects, desired_ids,
                           protected_kinds=options.policy.protected_kinds,
                           allow_mass_prune=options.allow_mass_prune)
    elif not desired and not options.allow_mass_prune:
        plan_prune([], [], protected_kinds=(), allow_mass_prune=False)  # refuses

    progress(ProgressEvent(Stage.READ, f"reading live state of {len(desired)} objects"))
    prior = {ResourceId.of(o): o for o in prev_objects}
    live = read_live(kube, desired, label=target.member_label,
                     concurrency=options.policy.concurrency).objects
    candidates = [prior[c.id] for c in prune]
    wanted = {*desired_ids, *(c.id for c in prune)}
    candidates += [o for rid, (_, o) in sorted(unfinished.items()) if rid not in wanted]
    members = read_live(kube, candidates, label=target.member_label, find_unlabelled=True,
                        concurrency=options.policy.concurrency)
    prune = members_only(prune, members) + leftovers(
        unfinished, wanted, members, protected_kinds=options.policy.protected_kinds)
    same = {rid for rid, o in zip(desired_ids, desired, strict=True)
            if unchanged(o, live.get(rid), prior.get(rid))}
    todo = [o for rid, o in zip(desired_ids, desired, strict=True) if rid not in same]
    later = deferred(kube, desired, todo) if todo else set()
    dropping = {ResourceId.of(o) for o in todo
                if conversion_dropped(o, live.get(ResourceId.of(o)))}
    later |= dropping
    checked = [o for o in todo if ResourceId.of(o) not in later]
    progress(ProgressEvent(Stage.VALIDATE, f"server-side dry run of {len(checked)} object(s)"
                           + (f"; {len(later)} wait for their CRD or Namespace"
                              if later else "")
                           + (f"; {len(same)} unchanged" if same else "")))
    # A CRD that drops a version the cluster still stores is applied first with that
    # version kept (migrate.py): that form is what the dry run checks.
    migrations = plan_migrations(kube, checked, live)
    answers, rejected = send_all(kube, [migrations[r].transitional if r in migrations else o
                                        for r, o in ((ResourceId.of(o), o) for o in checked)],
                                 redactor=redactor, dry_run=True, force=options.force,
                                 full=fields, concurrency=options.policy.concurrency)
    replacing, rejected = _replacements(target, checked, answers, rejected, live, prior,
                                        options=options, redactor=redactor, fields=fields)
    said = [f"{len(replacing)} object(s) to replace"] if replacing else []
    said += [f"{len(migrations)} CRD storage migration(s)"] if migrations else []
    if said:
        progress(ProgressEvent(Stage.VALIDATE, ", ".join(said)))

    def change(rid: ResourceId, obj: Obj) -> Change:
        av = str(obj["apiVersion"])
        if rid in same:
            return Change(rid, av, Action.UNCHANGED)
        if rid in replacing:
            return replacing[rid]
        if rid in migrations and rid in answers:
            m = migrations[rid]
            after = _without_versions(answers[rid][1], m.retired) if fields else None
            found = _diff(rid, live[rid], after, redactor) if after is not None else None
            return Change(rid, av, Action.UPDATE, m.describe(), diff=found)
        if rid in later and rid in live:
            return Change(rid, av, Action.UPDATE,
                          AFTER_CONVERSION if rid in dropping else AFTER_CRD, deferred=True,
                          diff=_diff(rid, live[rid], obj, redactor) if fields else None)
        if rid in later:
            return Change(rid, av, Action.CREATE, AFTER_CRD_OR_NAMESPACE, deferred=True,
                          diff=_diff(rid, None, obj, redactor) if fields else None)
        if rid not in answers:  # rejected: listed with the rejections
            return Change(rid, av, Action.UPDATE if rid in live else Action.CREATE)
        outcome, after = answers[rid]
        if outcome is Outcome.CREATED:
            return Change(rid, av, Action.CREATE,
                          diff=_diff(rid, None, after, redactor) if fields else None)
        if not fields:
            return Change(rid, av, Action.UPDATE)
        before = live.get(rid) or kube.get(av, rid.kind, rid.namespace, rid.name) or {}
        found = _diff(rid, before, after, redactor)
        return Change(rid, av, Action.UPDATE if found else Action.UNCHANGED, diff=found)

    changes = [change(rid, o) for rid, o in zip(desired_ids, desired, strict=True)]
    for c in prune:
        if fields and c.action is Action.DELETE:
            before = members.objects.get(c.id) or prior.get(c.id) or {}
            c = replace(c, diff=_diff(c.id, before, None, redactor))
        changes.append(c)
    return replace(base, changes=tuple(changes), rejections=tuple(rejected),
                   migrations=tuple(migrations.values()))


def _replacements(target: Target, checked: Sequence[Obj],
                  answers: Mapping[ResourceId, tuple[Outcome, Obj]],
                  rejected: Sequence[Rejection], live: Mapping[ResourceId, Obj],
                  prior: Mapping[ResourceId, Obj], *, options: ApplyOptions,
                  redactor: Redactor, fields: bool,
                  ) -> tuple[dict[ResourceId, Change], list[Rejection]]:
    """The objects to re-create (replace.py): those the dry run refused to change in
    place, those annotated to be re-created on every change, a headless Service the render
    makes an ordinary one; the others' rejections, and the refused replacements'."""
    by_id = {ResourceId.of(o): o for o in checked}
    candidates: dict[ResourceId, tuple[Obj, tuple[str, ...]]] = {}
    kept: list[Rejection] = []
    for r in rejected:
        if r.reason == "Immutable" and r.id in live and r.id in by_id:
            obj = by_id[r.id]
            candidates[r.id] = (obj, which_fields(r.id, obj, live[r.id], prior.get(r.id),
                                                  r.fields))
        else:
            kept.append(r)
    for rid in answers:
        obj, current = by_id[rid], live.get(rid)
        lost = headless_lost(obj, current)
        if lost or wants_always(obj, current):
            candidates[rid] = (obj, lost)
    if not candidates:
        return {}, kept
    changes, refused = resolve(target.kube, candidates, live=live, policy=options.policy,
                               fields=fields, redactor=redactor,
                               concurrency=options.policy.concurrency)
    return changes, sorted([*kept, *refused], key=lambda r: r.id)


def _without_versions(crd: Obj, names: Sequence[str]) -> Obj:
    """A CRD answer without the versions a migration keeps only for its duration."""
    out = dict(crd)
    spec = dict(out.get("spec") or {})
    spec["versions"] = [v for v in spec.get("versions") or [] if v.get("name") not in names]
    out["spec"] = spec
    return out


def _unfinished(records: Records, revisions: Revisions) -> dict[ResourceId, tuple[int, Obj]]:
    """The objects of the revisions after the latest deployed one that did not finish
    (killed, stopped, or failed without a full rollback), by id, the newest revision's
    version of each: they were recorded before anything was applied, so whatever such an
    apply may have created is among them."""
    out: dict[ResourceId, tuple[int, Obj]] = {}
    for info in revisions.unfinished:
        for obj in records.manifests(info.revision):
            out[ResourceId.of(obj)] = (info.revision, obj)
    return out


def _diff(rid: ResourceId, before: Obj | None, after: Obj | None,
          redactor: Redactor) -> ObjectChange | None:
    return object_change(rid, strip_server_fields(before) if before is not None else None,
                         strip_server_fields(after) if after is not None else None,
                         redactor=redactor)
