"""Building a plan between two commits: which clusters exist at each, render, diff."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import PurePosixPath

from gitops.errors import ConfigError, GitError
from gitops.plan.model import (
    Plan,
    RefInfo,
    RenderFn,
    plan_from_rendered,
    plan_from_renders,
)
from gitops.redact import Redactor
from gitops.sops.policy import ClearText, SecretsPolicy
from gitops.stack import CLUSTERS_DIR, Stack

Progress = Callable[[str], None]

_KUSTOMIZATIONS = ("kustomization.yaml", "kustomization.yml", "Kustomization")


def _prefix(stack: Stack, repo_root: str) -> str:
    """The deployment repo's folder inside the git repository ('' at its root)."""
    from pathlib import Path

    rel = stack.root.resolve().relative_to(Path(repo_root).resolve())
    return "" if str(rel) == "." else PurePosixPath(*rel.parts).as_posix()


def clusters_at(stack: Stack, commit: str) -> list[str]:
    """The clusters (clusters/<name>/ with a kustomization) in the tree of a commit."""
    from gitops.git import open_repo

    repo = open_repo(stack.root)
    prefix = _prefix(stack, str(repo.root))
    base = f"{prefix}/{CLUSTERS_DIR}" if prefix else CLUSTERS_DIR
    files = repo.read_tree(commit, base, with_content=False)
    names = {p.split("/", 1)[0] for p in files
             if p.count("/") == 1 and p.split("/", 1)[1] in _KUSTOMIZATIONS}
    return sorted(names)


def resolve_ref(stack: Stack, ref: str) -> RefInfo:
    from gitops.git import open_repo

    repo = open_repo(stack.root)
    try:
        return RefInfo(ref=ref, commit=repo.resolve(ref))
    except GitError as e:
        raise GitError(
            f"{e.message}: the plan cannot resolve {ref!r}.",
            hint="Give a branch, tag or commit of this repository. In CI, fetch the base "
            "branch first (a shallow clone lacks it): 'git fetch origin main' or "
            "actions/checkout with fetch-depth: 0.",
        ) from e


def policy_at(stack: Stack, commit: str) -> SecretsPolicy:
    """The `secrets:` policy of stack.yaml at a commit (none when it has none or cannot be
    read there)."""
    from gitops.git import open_repo
    from gitops.sops.policy import policy_in_commit
    from gitops.stack import STACK_FILE

    repo = open_repo(stack.root)
    prefix = _prefix(stack, str(repo.root))
    return policy_in_commit(repo.raw, commit, f"{prefix}/{STACK_FILE}" if prefix else STACK_FILE)


def clear_text_check(added: set[ClearText]) -> tuple[str, ...]:
    return tuple(
        f"{c.file} adds a secret in clear text ({c.what}), and stack.yaml requires SOPS "
        f"(secrets.require: sops): encrypt it with 'sops encrypt -i {c.file}' before "
        "merging (docs/secrets.md)" for c in sorted(added))


def make_plan(
    stack: Stack,
    *,
    base: str,
    head: str = "HEAD",
    clusters: Sequence[str] = (),
    redactor: Redactor,
    render: RenderFn | None = None,
    progress: Progress | None = None,
) -> Plan:
    """The plan of what `head` changes against `base`, per cluster, rendered at both commits
    without touching the working tree. `clusters` restricts it to those names."""
    say = progress or (lambda _msg: None)
    b, h = resolve_ref(stack, base), resolve_ref(stack, head)
    at_base, at_head = clusters_at(stack, b.commit), clusters_at(stack, h.commit)
    if clusters:
        unknown = [n for n in clusters if n not in at_base and n not in at_head]
        if unknown:
            known = ", ".join(sorted(set(at_base) | set(at_head))) or "none"
            raise ConfigError(
                f"no cluster named {', '.join(map(repr, unknown))} at {base} or {head}.",
                hint=f"Clusters at these commits: {known}.",
            )
        at_base = [n for n in at_base if n in clusters]
        at_head = [n for n in at_head if n in clusters]
    r = redactor
    if render is None:
        # gitops.render's own renders: compared by text first, so that clusters whose
        # inputs did not change (cached at both commits) cost no parse.
        from gitops.render import Rendered, render_clusters

        # A pull request can neither drop the SOPS requirement for itself nor exclude its
        # own file: the policy is both commits'.
        policy = policy_at(stack, b.commit).union(policy_at(stack, h.commit))

        def side(names: Sequence[str], commit: str) -> dict[str, Rendered]:
            return (render_clusters(stack, list(names), ref=commit, policy=policy)
                    if names else {})

        say(f"rendering {len(at_base)} cluster(s) at {base} ({b.short})")
        rb = side(at_base, b.commit)
        say(f"rendering {len(at_head)} cluster(s) at {head} ({h.short})")
        rh = side(at_head, h.commit) if h.commit != b.commit else rb
        say("comparing")
        plan = plan_from_rendered(rb, rh, base=b, head=h, redactor=r)
        added = ({c for x in rh.values() for c in x.clear_text}
                 - {c for x in rb.values() for c in x.clear_text})
        return replace(plan, failed_checks=clear_text_check(added)) if added else plan
    say(f"rendering {len(at_base)} cluster(s) at {base} ({b.short})")
    before = render(at_base, b.commit)
    say(f"rendering {len(at_head)} cluster(s) at {head} ({h.short})")
    after = render(at_head, h.commit) if h.commit != b.commit else before
    say("comparing")
    return plan_from_renders(before, after, base=b, head=h, redactor=r)
