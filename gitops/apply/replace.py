"""Replacing objects whose changed fields cannot change on a live object.

The server-side dry run finds them (a 422 whose every cause refuses an in-place change:
gitops.immutable.is_refusal). `resolve` decides, per object, by kind and policy:

- kinds re-created without losing data (gitops.immutable: Deployment, ReplicaSet,
  DaemonSet, Job, RoleBinding, ClusterRoleBinding, Service, StorageClass; StatefulSet
  with its pods and claims kept) become `replace` changes, unless cluster.yaml says
  `apply.replace: never` or the object is annotated `stackctl.dev/replace: never`;
- kinds whose re-creation destroys data (CRD, PersistentVolumeClaim, PersistentVolume,
  Namespace) are refused, with what changed and the safe way forward;
- any other kind is refused unless annotated `stackctl.dev/replace: always` (which also
  re-creates it on every change, as kapp's `always-replace` does).

Before an object is accepted for replacement, its new version is checked the way its
creation will be: a server-side dry-run create under a generated name (validation,
defaults, admission), so that a replacement never deletes an object that could not be
created again. A StatefulSet whose new selector would not match its running pods is
refused: they would stay, orphaned for good, holding the names its new pods need.

`clear` carries it out, in the apply's phase of each object, just before the phase is
applied: delete (Foreground, or Orphan for a StatefulSet) with the live object's uid as a
precondition, then wait until it is gone; the phase's server-side apply creates it again.
kapp's `fallback-on-replace` (delete, wait, create) and Flux's `force` (delete, apply)
re-create on any Invalid answer; Helm 4's `--force-replace` re-creates every object.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

from gitops.apply.changeset import Action, Change
from gitops.apply.compare import comparable, covers, strip_server_fields
from gitops.apply.results import ProgressEvent, Rejection, Stage, rejection_from
from gitops.cluster import ApplyPolicy
from gitops.diff import ObjectChange, object_change
from gitops.errors import ClusterError
from gitops.immutable import (
    REPLACE_ANNOTATION,
    Recreate,
    annotation,
    immutable_changes,
    recreate_of,
)
from gitops.kube import POLL, Kube, UnreachableError, poll
from gitops.redact import Redactor
from gitops.resource import ResourceId

Obj = dict[str, Any]
GENERATED_SUFFIX = "-"  # the probe's generateName: the object's name and the server's suffix
# Labels and annotations the server or a controller derives from the object's uid or
# history: a re-created object gets new ones, which is no change of the render's.
_DERIVED_LABELS = ("controller-uid", "batch.kubernetes.io/controller-uid")
_DERIVED_ANNOTATIONS = ("deployment.kubernetes.io/revision",)


def strategy_of(obj: Obj) -> Recreate:
    """How an object is re-created: by its kind, else (annotated `always`) foreground."""
    return recreate_of(ResourceId.of(obj)) or Recreate.FOREGROUND


def _value(obj: Mapping[str, Any] | None, path: str) -> Any:
    node: Any = obj
    for part in path.split("."):
        node = node.get(part) if isinstance(node, Mapping) else None
    return node


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":")) \
        if isinstance(value, dict | list) else str(value)
    return text if len(text) <= 120 else text[:117] + "..."


def which_fields(rid: ResourceId, obj: Obj, live: Obj, prior: Obj | None,
                 server_fields: Sequence[str]) -> tuple[str, ...]:
    """The fields that force the replacement, as a person reads them: found against the
    last applied revision (the same table as `stackctl plan`), else the server's (a
    StatefulSet's refusal names only `spec`)."""
    if prior is not None:
        found = immutable_changes(rid, prior, obj)
        if found:
            return found
    if tuple(server_fields) in ((), ("spec",)):
        # Against the live object: a field the render leaves out keeps its default there.
        found = tuple(f for f in immutable_changes(rid, live, obj)
                      if not covers(_value(live, f), _value(obj, f)))
        if found:
            return found
    return tuple(f.lstrip(".") for f in server_fields)


def _refusal(rid: ResourceId, obj: Obj, live: Obj, fields: tuple[str, ...],
             why: str) -> Rejection:
    what = "; ".join(f"{f}: {_short(_value(live, f))} -> {_short(_value(obj, f))}"
                     for f in fields) or "an immutable field"
    return Rejection(rid, "Immutable", f"the render changes {what}, which cannot change on "
                     "a live object.", fields, hint=why)


def _data_hint(rid: ResourceId) -> str:
    if rid.kind == "CustomResourceDefinition":
        return ("Re-creating a CRD deletes every custom resource of its kind, so stackctl "
                "never does it. To keep going, keep the old value in git (a patch in "
                "overlays/ on the CRD); to really move, back up its custom resources, "
                "delete the CRD, apply, and create them again in the new form.")
    if rid.kind == "PersistentVolumeClaim":
        return ("Re-creating a claim would delete it and, by its volume's reclaim policy, "
                "the data on it, so stackctl never does it. To migrate: add a claim under a "
                "new name with the new spec, copy the data across (a Job mounting both), "
                "point the workload at the new claim, then remove the old one from the "
                "render; or keep the old spec in git with a patch.")
    if rid.kind == "PersistentVolume":
        return ("Re-creating a volume could release and lose its data, so stackctl never "
                "does it. Create a volume under a new name and move the claim to it, or "
                "keep the old spec in git with a patch.")
    return ("Re-creating a Namespace deletes everything in it, so stackctl never does it; "
            "keep the old value in git.")


def decide(rid: ResourceId, obj: Obj, live: Obj, fields: tuple[str, ...],
           policy: ApplyPolicy) -> Rejection | None:
    """None when the object may be replaced; else the refusal, with the safe path."""
    strategy, marked = recreate_of(rid), annotation(obj)
    if strategy is Recreate.REFUSE:
        return _refusal(rid, obj, live, fields, _data_hint(rid))
    if marked == "never":
        return _refusal(rid, obj, live, fields, (
            f"It is annotated {REPLACE_ANNOTATION}: never, so stackctl does not re-create it: "
            "change the field back in git, or remove the annotation to let the apply "
            "delete and re-create it."))
    if strategy is None and marked != "always":
        return _refusal(rid, obj, live, fields, (
            f"stackctl re-creates only kinds it knows it can re-create without losing data; "
            f"annotate it {REPLACE_ANNOTATION}: always to have it deleted and re-created on "
            "every change, or change the field back in git."))
    if policy.replace == "never" and marked != "always":
        return _refusal(rid, obj, live, fields, (
            "cluster.yaml sets apply.replace: never: change the field back in git, set "
            f"apply.replace: auto, or annotate the object {REPLACE_ANNOTATION}: always."))
    return None


def selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """A LabelSelector (matchLabels and matchExpressions) against a set of labels."""
    sel = selector or {}
    for k, v in (sel.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for e in sel.get("matchExpressions") or []:
        key, op, values = e.get("key"), e.get("operator"), e.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def orphaned_pods(kube: Kube, obj: Obj, live: Obj) -> list[str]:
    """Pods of the live StatefulSet that its new selector would not match: after an
    orphaning delete they would stay outside it for good."""
    rid = ResourceId.of(obj)
    uid = (live.get("metadata") or {}).get("uid")
    match = ((live.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    selector = ",".join(f"{k}={v}" for k, v in sorted(match.items())) or None
    pods = kube.list("v1", "Pod", namespace=rid.namespace, label_selector=selector)
    new = (obj.get("spec") or {}).get("selector")
    out = []
    for p in pods:
        meta = p.get("metadata") or {}
        if any(r.get("uid") == uid for r in meta.get("ownerReferences") or []) and \
                not selector_matches(new, meta.get("labels") or {}):
            out.append(str(meta.get("name")))
    return sorted(out)


def _orphan_refusal(rid: ResourceId, obj: Obj, live: Obj, pods: list[str]) -> Rejection:
    new = _short((obj.get("spec") or {}).get("selector"))
    return Rejection(
        rid, "Immutable", f"the new spec.selector {new} does not match the labels of its "
        f"pod(s) {', '.join(pods[:5])}{' and more' if len(pods) > 5 else ''}: re-created, "
        "the StatefulSet would leave them running outside it, holding the names and volumes "
        "its own pods need.", ("spec.selector",),
        hint="Apply the change in two steps: first a revision whose pod template carries "
             "the labels the new selector asks for (the StatefulSet rolls its pods onto "
             "them, keeping the old selector), then the new selector; or scale it to 0 "
             "first (its claims stay and the new pods bind them again by name).")


def _derived_removed(obj: Obj) -> Obj:
    out = copy.deepcopy(obj)
    meta = out.get("metadata") or {}
    for key in _DERIVED_ANNOTATIONS:
        (meta.get("annotations") or {}).pop(key, None)
    if meta.get("annotations") == {}:
        del meta["annotations"]
    for node in (meta, _value(out, "spec.template.metadata") or {}):
        for key in _DERIVED_LABELS:
            (node.get("labels") or {}).pop(key, None)
    match = _value(out, "spec.selector.matchLabels")
    if isinstance(match, dict):
        for key in _DERIVED_LABELS:
            match.pop(key, None)
    return out


def probe(kube: Kube, obj: Obj, *, full: bool) -> Obj:
    """The object as the API server would create it (a dry-run create under a generated
    name: validation, defaults, admission), named as the object. Raises ClusterError
    when the server would refuse it."""
    body = copy.deepcopy(obj)
    meta = body["metadata"]
    name = str(meta.pop("name"))
    meta.pop("resourceVersion", None)
    meta["generateName"] = name[:50] + GENERATED_SUFFIX
    answer = kube.create(body, dry_run=True, metadata_only=not full)
    generated = str(answer.setdefault("metadata", {}).get("name") or "")
    answer["metadata"].pop("generateName", None)
    # Values the server derived from the name (a Job's job-name labels) read as the
    # object's own name, as they will once it is created under it.
    return _renamed(answer, generated, name) if generated else answer


def _renamed(node: Any, old: str, new: str) -> Any:
    if isinstance(node, dict):
        return {k: _renamed(v, old, new) for k, v in node.items()}
    if isinstance(node, list):
        return [_renamed(v, old, new) for v in node]
    return new if node == old else node


def field_diff(rid: ResourceId, obj: Obj, live: Obj, answer: Obj, fields: tuple[str, ...],
               redactor: Redactor) -> ObjectChange:
    """What the replacement changes: the live object against the probe's answer, without
    what the server derives anew for any re-created object; the fields that force it."""
    before, after = strip_server_fields(live), strip_server_fields(answer)
    if rid.kind == "Service" and rid.group == "" and not _value(obj, "spec.clusterIP"):
        for side in (before, after):  # a new address is allocated: the dry run shows none
            for key in ("clusterIP", "clusterIPs"):
                (side.get("spec") or {}).pop(key, None)
    found = object_change(rid, _derived_removed(before), _derived_removed(after),
                          redactor=redactor)
    base = found or ObjectChange(rid, "changed", str(live.get("apiVersion")),
                                 str(obj.get("apiVersion")))
    return replace(base, replace=fields)


def resolve(kube: Kube, candidates: Mapping[ResourceId, tuple[Obj, tuple[str, ...]]], *,
            live: Mapping[ResourceId, Obj], policy: ApplyPolicy, fields: bool,
            redactor: Redactor, concurrency: int
            ) -> tuple[dict[ResourceId, Change], list[Rejection]]:
    """Each candidate (object, the fields that force its replacement) as a `replace`
    change, or a rejection saying why not and what to do."""

    def one(rid: ResourceId) -> Change | Rejection:
        obj, forced = candidates[rid]
        current = live[rid]
        refused = decide(rid, obj, current, forced, policy)
        if refused is not None:
            return refused
        try:
            if strategy_of(obj) is Recreate.ORPHAN:
                pods = orphaned_pods(kube, obj, current)
                if pods:
                    return _orphan_refusal(rid, obj, current, pods)
            answer = probe(kube, obj, full=fields)
        except UnreachableError:
            raise
        except ClusterError as e:
            return rejection_from(rid, e, redactor)
        note = f"{', '.join(forced)} cannot change on a live object"
        if annotation(obj) == "always" and not forced:
            note = f"annotated {REPLACE_ANNOTATION}: always"
        return Change(rid, str(obj["apiVersion"]), Action.REPLACE, note,
                      diff=field_diff(rid, obj, current, answer, forced, redactor)
                      if fields else None)

    changes: dict[ResourceId, Change] = {}
    rejections: list[Rejection] = []
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        for rid, got in zip(candidates, pool.map(one, list(candidates)), strict=True):
            if isinstance(got, Rejection):
                rejections.append(got)
            else:
                changes[rid] = got
    return changes, rejections


def wants_always(obj: Obj, live: Obj | None) -> bool:
    """An object annotated `always` that exists and would change."""
    return annotation(obj) == "always" and live is not None and \
        not covers(live, comparable(obj))


def headless_lost(obj: Obj, live: Obj | None) -> tuple[str, ...]:
    """A live headless Service (clusterIP None) the render makes an ordinary one: the
    server accepts the apply and silently keeps it headless."""
    rid = ResourceId.of(obj)
    if live is None or (rid.group, rid.kind) != ("", "Service"):
        return ()
    if _value(live, "spec.clusterIP") == "None" and \
            _value(obj, "spec.clusterIP") in (None, "") and \
            _value(obj, "spec.type") in (None, "ClusterIP"):
        return ("spec.clusterIP",)
    return ()


# --- carrying it out --------------------------------------------------------------------

def clear(kube: Kube, objects: Sequence[Obj], reasons: Mapping[ResourceId, str], *,
          deadline: float, progress: Callable[[ProgressEvent], None], redactor: Redactor,
          concurrency: int) -> list[Rejection]:
    """Delete each object to be re-created and wait until it is gone. Returns what could
    not be deleted (nothing else has been changed for those)."""

    def one(obj: Obj) -> Rejection | None:
        rid = ResourceId.of(obj)
        av = str(obj["apiVersion"])
        try:
            current = kube.get(av, rid.kind, rid.namespace, rid.name)
            if current is None:
                return None
            uid = str((current.get("metadata") or {}).get("uid") or "")
            strategy = strategy_of(obj)
            if strategy is Recreate.ORPHAN:
                pods = orphaned_pods(kube, obj, current)
                if pods:
                    return _orphan_refusal(rid, obj, current, pods)
            propagation = "Orphan" if strategy is Recreate.ORPHAN else "Foreground"
            progress(ProgressEvent(
                Stage.REPLACE, f"replacing {rid} ({reasons.get(rid, '')}): deleting it "
                               f"(propagation {propagation}) to create it again", rid))
            kube.delete(av, rid.kind, rid.namespace, rid.name, propagation=propagation,
                        uid=uid)

            def gone() -> bool | None:
                now = kube.get(av, rid.kind, rid.namespace, rid.name)
                return True if now is None or \
                    (now.get("metadata") or {}).get("uid") != uid else None

            if poll(gone, deadline=deadline, backoff=POLL) is None:
                left = kube.get(av, rid.kind, rid.namespace, rid.name) or {}
                fins = (left.get("metadata") or {}).get("finalizers") or []
                return Rejection(
                    rid, "ReplaceTimeout", "it was deleted to be re-created but is still "
                    "there at the timeout" + (f" (finalizers: {', '.join(fins)})" if fins
                                              else ""),
                    hint="Check what holds it (its finalizers and dependents) and apply again.")
        except UnreachableError:
            raise
        except ClusterError as e:
            return rejection_from(rid, e, redactor)
        return None

    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        found = list(pool.map(one, objects))
    return [r for r in found if r is not None]
