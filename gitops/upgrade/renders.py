"""What the upgrade does to each cluster: every `clusters/<name>` rendered with kustomize
from the tree before (the current branch) and after (the merged tree), compared through
gitops.plan. A cluster that fails to render on either side is reported with kustomize's
message; only a missing or unusable kustomize binary stops the upgrade (before it changes
anything)."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from gitops import git
from gitops.errors import UserError
from gitops.kustomize import Kustomize, find_kustomize
from gitops.plan import Plan, RefInfo, plan_from_renders
from gitops.redact import run_redactor
from gitops.render import Rendered, render_each
from gitops.stack import CLUSTERS_DIR, Stack
from gitops.upgrade.report import ClusterSummary, summarise_clusters

Progress = Callable[[str], None]
_KUSTOMIZATIONS = ("kustomization.yaml", "kustomization.yml", "Kustomization")


def clusters_in(files: Mapping[str, Any]) -> list[str]:
    """The clusters of a stack tree: clusters/<name>/ holding a kustomization."""
    names = set()
    for p in files:
        parts = p.split("/")
        if len(parts) == 3 and parts[0] == CLUSTERS_DIR and parts[2] in _KUSTOMIZATIONS:
            names.add(parts[1])
    return sorted(names)


def _render_files(stack: Stack, files: git.Files, names: list[str], k: Kustomize,
                  say: Progress, label: str) -> dict[str, Rendered | UserError]:
    if not names:
        return {}
    with tempfile.TemporaryDirectory(prefix="stackctl-upgrade-") as tmp:
        root = Path(tmp)
        git.write_files(root, files)
        say(f"rendering {len(names)} cluster(s) {label}")
        return render_each(Stack(root=root, name=stack.name, source=stack.source), names,
                           kustomize=k, progress=lambda m: say(f"  {label}: {m}"))


def cluster_summaries(
    stack: Stack, before: git.Files, after: git.Files, *, base: RefInfo, head: RefInfo,
    kustomize: Kustomize | None = None, progress: Progress | None = None,
) -> tuple[tuple[ClusterSummary, ...], Plan | None, str]:
    """Per-cluster summaries, the plan between the renders that worked, and the kustomize
    version used."""
    say = progress or (lambda _m: None)
    k = kustomize or find_kustomize()
    b = _render_files(stack, before, clusters_in(before), k, say, "before")
    a = _render_files(stack, after, clusters_in(after), k, say, "after")
    errors: dict[str, tuple[str, str]] = {}
    for name, r in a.items():
        if isinstance(r, UserError):
            errors[name] = ("after", str(r))
    for name, r in b.items():
        if isinstance(r, UserError) and name not in errors:
            errors[name] = ("before", str(r))
    ok_b = {n: [o.body for o in r.objects] for n, r in b.items()
            if isinstance(r, Rendered) and n not in errors}
    ok_a = {n: [o.body for o in r.objects] for n, r in a.items()
            if isinstance(r, Rendered) and n not in errors}
    plan = plan_from_renders(ok_b, ok_a, base=base, head=head, redactor=run_redactor()) \
        if ok_b or ok_a else None
    counts_b = {n: len(r.objects) for n, r in b.items() if isinstance(r, Rendered)}
    counts_a = {n: len(r.objects) for n, r in a.items() if isinstance(r, Rendered)}
    return summarise_clusters(plan, counts_b, counts_a, errors), plan, k.version
