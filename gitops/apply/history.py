"""Going back and looking back: `rollback_to` a recorded revision, and the `history` of a
cluster's revisions."""

from __future__ import annotations

from dataclasses import replace

from gitops.apply.execute import apply_objects
from gitops.apply.options import ApplyOptions, Progress, Target, no_progress
from gitops.apply.results import ApplyResult
from gitops.apply.stop import Stop
from gitops.errors import ApplyError
from gitops.inventory import RevisionInfo, Revisions, RevisionStatus
from gitops.redact import Redactor


def rollback_to(target: Target, *, revision: int | None = None,
                options: ApplyOptions | None = None, redactor: Redactor,
                progress: Progress = no_progress, stop: Stop | None = None) -> ApplyResult:
    """Re-apply a recorded revision (default: the deployed one before the current; or the
    current one itself when a later apply did not finish) as a new revision, pruning what
    the current one (and any unfinished later one) has and it has not; the current one is
    marked rolled-back. Rolling back is explicit, so the mass-prune guard does not apply,
    and it takes back fields other managers took (our own recorded state)."""
    revisions = target.records.revisions()
    cluster = target.cluster
    if not revisions:
        raise ApplyError(f"cluster {cluster!r} has no recorded revisions in namespace "
                         f"{target.records_namespace}.",
                         hint=f"Run 'stackctl apply --cluster {cluster}' first.")
    chosen = _target_revision(cluster, revisions, revision)
    objects = target.records.manifests(chosen.revision)
    same = revisions.deployed is not None and revisions.deployed.revision == chosen.revision
    options = replace(options or ApplyOptions(), commit=chosen.commit, rollback=True, prune=True,
                      force_conflicts=True, allow_mass_prune=True, dirty=chosen.dirty,
                      description=f"rollback to revision {chosen.revision}",
                      replaced=RevisionStatus.SUPERSEDED if same
                      else RevisionStatus.ROLLED_BACK)
    return apply_objects(target, objects, options=options, redactor=redactor,
                         progress=progress, stop=stop)


def _target_revision(cluster: str, revisions: Revisions, revision: int | None
                     ) -> RevisionInfo:
    current = revisions.deployed
    if revision is None and current is not None and revisions.unfinished:
        # A later apply did not finish (killed, stopped, failed without a rollback): the
        # cluster is partly at it, and going back means going to the deployed one.
        return current
    if revision is None:
        earlier = [r for r in revisions
                   if r.status in (RevisionStatus.SUPERSEDED, RevisionStatus.ROLLED_BACK)
                   and (current is None or r.revision < current.revision)]
        if not earlier:
            raise ApplyError(f"cluster {cluster!r} has no earlier deployed revision to roll "
                             "back to.", hint="Run 'stackctl history' and pass --to REVISION.")
        return earlier[-1]
    found = revisions.find(revision)
    if found is None:
        known = ", ".join(str(r.revision) for r in revisions)
        raise ApplyError(f"cluster {cluster!r} has no revision {revision}.",
                         hint=f"Recorded revisions: {known}.")
    return found


def history(target: Target) -> Revisions:
    """The recorded revisions of a cluster, oldest first."""
    return target.records.revisions()
