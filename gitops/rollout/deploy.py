"""One cluster of a rollout: the same apply as `stackctl apply` (calculate, then execute
under the cluster's lease: dry run, ordered apply, health wait, prune, record, automatic
rollback), its dry run, and the health check between waves.

A `Fleet` is prepared in the command's thread (renders, API clients: loading a kubeconfig
is not thread-safe in the Kubernetes client, which writes certificates to shared temporary
files), then its methods run in the scheduler's worker threads, each on its own cluster's
client. They return values and never raise a UserError: a cluster that cannot be applied
is a FAILED line of the table, with its one-line reason.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gitops.apply import (
    Action,
    ApplyOptions,
    ApplyResult,
    ChangeSet,
    ProgressEvent,
    Target,
    calculate,
    execute,
)
from gitops.apply.wait import wait_healthy
from gitops.cluster import Cluster
from gitops.errors import UserError
from gitops.redact import Redactor
from gitops.rollout.engine import RolloutProgress
from gitops.rollout.results import Changes, ClusterResult, EventKind, Outcome, RolloutEvent

Obj = dict[str, Any]
_SIGN = {Action.CREATE: "+", Action.UPDATE: "~", Action.DELETE: "-"}
REASON_CHARS = 400  # a table cell; the apply's own command shows everything


@dataclass(frozen=True)
class Job:
    """A cluster, its rendered objects, and its apply target (or why it has none: a
    kubeconfig that cannot be loaded fails that cluster alone)."""

    cluster: Cluster
    objects: tuple[Obj, ...]
    target: Target | None
    error: UserError | None = None


class Fleet:
    """The clusters of one rollout, ready to apply: the run's redactor (one for all: every
    line any cluster prints is scrubbed of every secret value the run has seen), the commit
    to record, and whether clusters that deployed it are skipped (--resume)."""

    def __init__(self, jobs: Sequence[Job], *, commit: str | None, redactor: Redactor,
                 progress: RolloutProgress, resume: bool = False, dirty: bool = False,
                 ) -> None:
        self.jobs = {j.cluster.name: j for j in jobs}
        self.dirty = dirty
        self.commit = commit
        self.redactor = redactor
        self.progress = progress
        self.resume = resume

    def close(self) -> None:
        for job in self.jobs.values():
            if job.target is not None:
                job.target.kube.api.close()

    def options(self, cluster: Cluster) -> ApplyOptions:
        """What `stackctl apply --cluster NAME` would use, with the commit to record."""
        return ApplyOptions(policy=cluster.policy, commit=self.commit,
                            prune=cluster.policy.prune, dirty=self.dirty,
                            description=f"stackctl rollout, wave {cluster.wave}")

    @staticmethod
    def _check_identity(cluster: Cluster, target: Target) -> None:
        """Refuse a cluster whose kubeconfig reaches another cluster than cluster.yaml pins
        (raises IdentityMismatchError, before anything else is read)."""
        from gitops.kube.identity import endpoint

        endpoint(target.kube).check(cluster.identity, cluster=cluster.name,
                                    file=cluster.config_file)

    def _steps(self, cluster: Cluster) -> Any:
        def step(e: ProgressEvent) -> None:
            self.progress(RolloutEvent(EventKind.STEP, cluster.wave, cluster.name, step=e))
        return step

    def _line(self, text: str) -> str:
        one = " ".join(self.redactor.text(text, pairs="=").split())
        return one if len(one) <= REASON_CHARS else one[:REASON_CHARS - 1] + "…"

    def _failed(self, cluster: Cluster, reason: str, **kw: Any) -> ClusterResult:
        return ClusterResult(cluster.name, cluster.wave, Outcome.FAILED,
                             reason=self._line(reason), **kw)

    def _already(self, cluster: Cluster, target: Target) -> ClusterResult | None:
        """With --resume: SKIPPED when the cluster's deployed revision records this commit
        (its own records, which also know what CI jobs and earlier runs deployed)."""
        if not (self.resume and self.commit):
            return None
        deployed = target.records.revisions().deployed
        if deployed is None or deployed.commit != self.commit:
            return None
        return ClusterResult(cluster.name, cluster.wave, Outcome.SKIPPED,
                             revision=deployed.revision,
                             reason=f"revision {deployed.revision} already deploys commit "
                                    f"{self.commit[:12]}")

    # -- apply ----------------------------------------------------------------------
    def deploy(self, cluster: Cluster) -> ClusterResult:
        job = self.jobs[cluster.name]
        if job.target is None:
            return self._failed(cluster, job.error.message if job.error else "no target")
        try:
            self._check_identity(cluster, job.target)
            skipped = self._already(cluster, job.target)
            if skipped is not None:
                return skipped
            options = self.options(cluster)
            steps = self._steps(cluster)
            cs = calculate(job.target, list(job.objects), options=options,
                           redactor=self.redactor, progress=steps)
            return self._result(cluster, execute(cs, options, steps))
        except UserError as e:  # unreachable, lease held, mass prune refused, ...
            return self._failed(cluster, e.message)

    def _result(self, cluster: Cluster, r: ApplyResult) -> ClusterResult:
        if r.rejections:
            first = r.rejections[0]
            return self._failed(cluster, f"{len(r.rejections)} object(s) rejected by the "
                                         f"server-side dry run, nothing applied: "
                                         f"{first.describe()}")
        if r.failure is None:
            outcome = Outcome.DEPLOYED if r.changed else Outcome.UNCHANGED
            return ClusterResult(cluster.name, cluster.wave, outcome, revision=r.revision)
        rb = r.rollback
        if rb is None:
            after = "not rolled back"
        elif rb.error:
            after = f"the rollback failed too: {rb.error}"
        elif rb.to_revision is None:
            after = (f"no earlier revision: the {len(rb.deleted)} object(s) it created were "
                     "deleted")
        else:
            after = (f"rolled back to revision {rb.to_revision}"
                     + ("" if rb.healthy else ", which is NOT healthy"))
        objects = r.failure.objects
        which = f" ({objects[0].id}: {objects[0].reason})" if objects else ""
        return self._failed(cluster, f"{r.failure.summary}{which}; {after}", revision=r.revision,
                            rolled_back_to=rb.to_revision if rb else None)

    # -- dry run --------------------------------------------------------------------
    def plan(self, cluster: Cluster) -> ClusterResult:
        """What applying would change (a server-side dry run, field by field), nothing
        changed."""
        job = self.jobs[cluster.name]
        if job.target is None:
            return self._failed(cluster, job.error.message if job.error else "no target")
        try:
            self._check_identity(cluster, job.target)
            skipped = self._already(cluster, job.target)
            if skipped is not None:
                return skipped
            cs = calculate(job.target, list(job.objects), options=self.options(cluster),
                           redactor=self.redactor, fields=True,
                           progress=self._steps(cluster))
        except UserError as e:
            return self._failed(cluster, e.message)
        if cs.rejections:
            return self._failed(cluster, f"{len(cs.rejections)} object(s) would be rejected: "
                                         f"{cs.rejections[0].describe()}",
                                changes=changes_of(cs))
        current = cs.previous.revision if cs.previous else None
        return ClusterResult(cluster.name, cluster.wave, Outcome.PLANNED, revision=current,
                             changes=changes_of(cs))

    # -- between waves --------------------------------------------------------------
    def check(self, cluster: Cluster) -> str | None:
        """None when the cluster's deployed revision is healthy live (read once, now);
        else why not, in one line."""
        job = self.jobs[cluster.name]
        if job.target is None:
            return None  # never reached: it failed before anything was applied
        try:
            records = job.target.records
            deployed = records.revisions().deployed
            if deployed is None:
                return None  # nothing of ours runs there (a first apply rolled back)
            objects = records.manifests(deployed.revision)
            report = wait_healthy(job.target.kube, objects, label=job.target.member_label,
                                  deadline=time.monotonic(),
                                  concurrency=cluster.policy.concurrency)
        except UserError as e:
            return self._line(f"its health could not be read: {e.message}")
        if report.ok:
            return None
        bad = report.unhealthy
        first, status = bad[0]
        return self._line(f"{len(bad)} object(s) of revision {deployed.revision} not ready, "
                          f"{first}: {status.reason}")


def changes_of(cs: ChangeSet) -> Changes:
    lines = []
    for c in cs.changes:
        if c.action.sends or c.action is Action.DELETE:
            note = f" ({c.note})" if c.note and c.action is not Action.DELETE else ""
            lines.append(f"{_SIGN[c.action]} {c.id}{note}")
        elif c.action is Action.KEEP:
            lines.append(f"  keep {c.id}: {c.note}")
    return Changes(create=cs.count(Action.CREATE), update=cs.count(Action.UPDATE),
                   delete=cs.count(Action.DELETE), unchanged=cs.count(Action.UNCHANGED),
                   lines=tuple(lines))
