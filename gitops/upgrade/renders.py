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


Results = dict[str, "Rendered | UserError"]


def render_side(stack: Stack, files: git.Files, k: Kustomize, *, label: str,
                progress: Progress | None = None) -> Results:
    """Every cluster of a stack tree (exported to a temporary folder) rendered, or its
    error."""
    say = progress or (lambda _m: None)
    names = clusters_in(files)
    if not names:
        return {}
    with tempfile.TemporaryDirectory(prefix="stackctl-upgrade-") as tmp:
        root = Path(tmp)
        git.write_files(root, files)
        say(f"rendering {len(names)} cluster(s) {label}")
        return render_each(Stack(root=root, name=stack.name, source=stack.source), names,
                           kustomize=k, progress=lambda m: say(f"  {label}: {m}"))


def _changed(b: Rendered, a: Rendered) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The bodies of the objects whose rendered text differs (or that exist on one side
    only): identical objects need no parsing, redaction or field diff."""
    before = {o.id: o.yaml for o in b.objects}
    same = {o.id for o in a.objects if before.get(o.id) == o.yaml}
    return ([o.body for o in b.objects if o.id not in same],
            [o.body for o in a.objects if o.id not in same])


def summarise(before: Results, after: Results, *, base: RefInfo,
              head: RefInfo) -> tuple[tuple[ClusterSummary, ...], Plan | None]:
    """Per-cluster summaries and the plan between the renders that worked."""
    errors: dict[str, tuple[str, str]] = {}
    for name, r in after.items():
        if isinstance(r, UserError):
            errors[name] = ("after", str(r))
    for name, r in before.items():
        if isinstance(r, UserError) and name not in errors:
            errors[name] = ("before", str(r))
    ok_b: dict[str, list[dict[str, Any]]] = {}
    ok_a: dict[str, list[dict[str, Any]]] = {}
    for name in sorted(set(before) | set(after)):
        b, a = before.get(name), after.get(name)
        if name in errors:
            continue
        if isinstance(b, Rendered) and isinstance(a, Rendered):
            ok_b[name], ok_a[name] = _changed(b, a)
        elif isinstance(b, Rendered):
            ok_b[name] = [o.body for o in b.objects]
        elif isinstance(a, Rendered):
            ok_a[name] = [o.body for o in a.objects]
    plan = plan_from_renders(ok_b, ok_a, base=base, head=head, redactor=run_redactor()) \
        if ok_b or ok_a else None
    counts_b = {n: len(r.objects) for n, r in before.items() if isinstance(r, Rendered)}
    counts_a = {n: len(r.objects) for n, r in after.items() if isinstance(r, Rendered)}
    return summarise_clusters(plan, counts_b, counts_a, errors), plan


def cluster_summaries(
    stack: Stack, before: git.Files, after: git.Files, *, base: RefInfo, head: RefInfo,
    kustomize: Kustomize | None = None, progress: Progress | None = None,
) -> tuple[tuple[ClusterSummary, ...], Plan | None, str]:
    """Per-cluster summaries, the plan between the renders that worked, and the kustomize
    version used."""
    k = kustomize or find_kustomize()
    b = render_side(stack, before, k, label="before", progress=progress)
    a = render_side(stack, after, k, label="after", progress=progress)
    clusters, plan = summarise(b, a, base=base, head=head)
    return clusters, plan, k.version
