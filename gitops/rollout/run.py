"""`rollout`: render the selected clusters, then apply them wave by wave (engine.py), each
through the same apply as `stackctl apply` (deploy.py), keeping `.stackctl/rollout.json`
(state.py) up to date."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from gitops.cluster import Cluster, select_clusters
from gitops.errors import ApplyError, RenderError, UserError
from gitops.redact import Redactor
from gitops.rollout.deploy import Fleet, Job
from gitops.rollout.engine import RolloutProgress, run_waves
from gitops.rollout.results import EventKind, RolloutEvent, RolloutResult
from gitops.rollout.settings import RolloutSettings
from gitops.rollout.state import SavedRollout, StateWriter, load_saved, now
from gitops.rollout.waves import plan_waves
from gitops.stack import Stack


def rollout(stack: Stack, *, clusters: Sequence[str] = (), settings: RolloutSettings,
            redactor: Redactor, stop: threading.Event, progress: RolloutProgress,
            resume: bool = False, dry_run: bool = False,
            allow_dirty: bool = False) -> RolloutResult:
    """Roll the working tree's render out to `clusters` (default: all; with `resume` and no
    names, the clusters of the last rollout). Raises before anything is applied when a
    cluster does not render, when files a cluster renders have uncommitted changes (unless
    `allow_dirty`: the revisions are then recorded dirty), or --resume has no commit to
    compare with."""
    from gitops.git import head_commit_of

    commit = head_commit_of(stack.root)
    if resume and commit is None:
        raise ApplyError("--resume needs a git commit: each cluster's records name the "
                         "commit it runs, and clusters that run this one are skipped, but "
                         f"{stack.root} has no commit.",
                         hint="Commit the deployment repository, then run 'stackctl rollout'.")
    names = list(clusters)
    saved = load_saved(stack.root) if resume and not names else None
    if saved is not None:
        names = list(saved.clusters)
    chosen = select_clusters(stack, names, all_=not names)
    objects, dirty = _render(stack, chosen)
    if dirty and not dry_run and not allow_dirty:
        raise _dirty_error(stack, dirty)
    jobs = [_job(c, objects[c.name]) for c in chosen]
    writer = None if dry_run else StateWriter(stack.root, SavedRollout(
        commit, tuple(c.name for c in chosen), now()))

    def report(e: RolloutEvent) -> None:
        if writer is not None and e.kind is EventKind.DONE and e.result is not None:
            writer.ended(e.cluster, str(e.result.outcome))
        progress(e)

    fleet = Fleet(jobs, commit=commit, redactor=redactor, progress=report, resume=resume,
                  dirty=bool(dirty))
    try:
        if writer is not None:
            writer.start()
        result = run_waves(plan_waves(chosen), deploy=fleet.plan if dry_run else fleet.deploy,
                           check=fleet.check, settings=settings, stop=stop, progress=report,
                           commit=commit, dry_run=dry_run)
    finally:
        fleet.close()
    if writer is not None:
        writer.finish(result.stopped)
    return result


def _render(stack: Stack, clusters: Sequence[Cluster],
            ) -> tuple[dict[str, tuple[dict[str, object], ...]], list[str]]:
    """Every cluster's objects before the first is applied (a commit that does not render
    for one cluster is stopped before it reaches any), and the clusters whose render read
    uncommitted changes."""
    from gitops.render import render_each

    rendered = render_each(stack, [c.name for c in clusters])
    failed = {n: r for n, r in rendered.items() if isinstance(r, UserError)}
    if failed:
        first = next(iter(failed.values()))
        raise RenderError(
            f"{len(failed)} of {len(clusters)} cluster(s) do not render, so nothing was "
            "applied: " + " ".join(f"({n}) {e.message}" for n, e in failed.items()),
            hint=first.hint or "Fix the render (stackctl render --cluster NAME shows it) "
                                "and run the rollout again.")
    done = {n: r for n, r in rendered.items() if not isinstance(r, UserError)}
    dirty = [n for n, r in done.items() if (r.source or "").endswith("+changes")]
    return {n: tuple(dict(o.body) for o in r.objects) for n, r in done.items()}, dirty


def _dirty_error(stack: Stack, clusters: Sequence[str]) -> ApplyError:
    from gitops.git import shown_dirty_paths

    shown = shown_dirty_paths(stack.root)
    return ApplyError(
        f"the working tree has uncommitted changes to files that {len(clusters)} cluster(s) "
        f"render ({', '.join(clusters)})" + (f"; changed: {shown}" if shown else "")
        + ": their revisions would match no commit. Nothing was applied.",
        hint="Commit the changes and run 'stackctl rollout' again, or give --allow-dirty to "
             "roll them out as they are (each revision is then recorded as '<commit>-dirty').")


def _job(cluster: Cluster, objects: tuple[dict[str, object], ...]) -> Job:
    """The cluster's apply target, built here in the command's thread (see deploy.py)."""
    from gitops.apply import Target
    from gitops.kube import Kube, api_client

    try:
        api = api_client(cluster.kubeconfig_path(), cluster.context)
    except UserError as e:
        return Job(cluster, objects, None, e)
    return Job(cluster, objects, Target(Kube(api), cluster.name, cluster.records_namespace))
