"""Fan-out on a CI system: the clusters and their waves in the forms CI engines read, so
that each cluster is applied by its own job (`stackctl rollout --cluster NAME`), on a
runner that can reach it, in wave order.

    rows(waves)                         one dict per cluster (text and JSON)
    github_outputs(waves, settings)     `name=value` lines for $GITHUB_OUTPUT: one matrix
                                        per wave (wave1, wave2, ... by position), the count,
                                        max-parallel and the bake time
    gitlab_pipeline(waves, settings)    a child pipeline: a stage per wave (a delayed bake
                                        stage between waves), a job per cluster
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from gitops.cluster import kubeconfig_env_var
from gitops.rollout.settings import RolloutSettings
from gitops.rollout.waves import Wave

# The job template a generated GitLab child pipeline extends (pipelines/gitlab/).
GITLAB_INCLUDE = "pipelines/gitlab/stackctl-cluster.gitlab-ci.yml"
GITLAB_TEMPLATE = ".stackctl-cluster"
GITLAB_BAKE_TEMPLATE = ".stackctl-bake"


def rows(waves: Sequence[Wave]) -> list[dict[str, Any]]:
    return [{"cluster": c.name, "wave": w.number, "context": c.context,
             "recordsNamespace": c.records_namespace,
             "kubeconfigVariable": kubeconfig_env_var(c.name)}
            for w in waves for c in w.clusters]


def text_lines(waves: Sequence[Wave]) -> list[str]:
    table = rows(waves)
    width = max([len("CLUSTER"), *(len(r["cluster"]) for r in table)])
    out = [f"{'WAVE':<5} {'CLUSTER':<{width}}  KUBECONFIG VARIABLE"]
    out += [f"{r['wave']:<5} {r['cluster']:<{width}}  {r['kubeconfigVariable']}"
            for r in table]
    return out


def to_json(waves: Sequence[Wave], settings: RolloutSettings) -> str:
    return json.dumps({
        "rollout": {"maxParallel": settings.max_parallel, "maxFailures": settings.max_failures,
                    "bakeSeconds": settings.bake_time},
        "waves": [{"wave": w.number, "clusters": [r for r in rows([w])]} for w in waves],
    }, indent=2)


def github_outputs(waves: Sequence[Wave], settings: RolloutSettings) -> list[str]:
    """Lines to append to $GITHUB_OUTPUT. A workflow cannot make jobs at run time, so it
    has one job per wave position (wave1, wave2, ...), each `needs` the one before and runs
    `strategy.matrix: ${{ fromJSON(needs.<job>.outputs.wave1) }}`; an empty wave's output
    is `{"include":[]}` and the workflow skips that job."""
    out = [f"waves={len(waves)}", f"max-parallel={settings.max_parallel}",
           f"bake-seconds={round(settings.bake_time)}",
           "matrix=" + _matrix([c for w in waves for c in _entries(w)])]
    out += [f"wave{i}={_matrix(_entries(w))}" for i, w in enumerate(waves, start=1)]
    return out


def _entries(wave: Wave) -> list[dict[str, Any]]:
    """A matrix entry per cluster: its name, and the repository secret holding its
    kubeconfig (`KUBECONFIG_EKS_PROD`: a workflow reads `secrets[matrix.secret]`)."""
    return [{"cluster": c.name, "wave": wave.number,
             "secret": kubeconfig_env_var(c.name).removeprefix("STACKCTL_")}
            for c in wave.clusters]


def _matrix(entries: list[dict[str, Any]]) -> str:
    return json.dumps({"include": entries}, separators=(",", ":"))


def gitlab_pipeline(waves: Sequence[Wave], settings: RolloutSettings, *,
                    include: str = GITLAB_INCLUDE, commit: str | None = None) -> str:
    """A child pipeline (GitLab's `trigger: include: artifact:`): stage wave-N per wave,
    one job per cluster extending the included `.stackctl-cluster`; at most maxParallel
    jobs of a wave at once, by chaining: a wave's k-th job `needs` its (k - maxParallel)-th
    (GitLab has no per-stage limit), so a failed job also keeps its chain from starting.
    With a bake time, a delayed job (`when: delayed`) holds the next wave."""
    from gitops.yamlio import dump_safe

    stages: list[str] = []
    jobs: dict[str, Any] = {}
    bake = round(settings.bake_time)
    for i, wave in enumerate(waves):
        stage = f"wave-{wave.number}"
        stages.append(stage)
        names = [_job_name(c.name) for c in wave.clusters]
        for k, (cluster, name) in enumerate(zip(wave.clusters, names, strict=True)):
            job: dict[str, Any] = {"extends": GITLAB_TEMPLATE, "stage": stage,
                                   "variables": {"STACKCTL_CLUSTER": cluster.name}}
            if k >= settings.max_parallel:
                job["needs"] = [names[k - settings.max_parallel]]
            jobs[name] = job
        if bake > 0 and i < len(waves) - 1:
            stages.append(f"bake-{wave.number}")
            jobs[f"bake after wave {wave.number}"] = {
                "extends": GITLAB_BAKE_TEMPLATE, "stage": f"bake-{wave.number}",
                "when": "delayed", "start_in": f"{bake} seconds"}
    head = ("# Generated by 'stackctl clusters --format gitlab'"
            + (f" at commit {commit}" if commit else "") + ": do not edit.\n")
    return head + dump_safe({"include": [{"local": include}], "stages": stages, **jobs})


def _job_name(cluster: str) -> str:
    return f"rollout {cluster}"
