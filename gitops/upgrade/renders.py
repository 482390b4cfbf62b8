"""What the upgrade does to each cluster: every `clusters/<name>` rendered with kustomize
from the tree before (the current branch) and after (the merged tree), compared object by
object (compare.py). A cluster that fails to render on either side is reported with
kustomize's message; only a missing or unusable kustomize binary stops the upgrade (before
it changes anything)."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from gitops import git
from gitops.errors import KustomizeError, UserError
from gitops.kustomize import Kustomize, find_kustomize
from gitops.redact import Redactor
from gitops.render import Rendered, render_each
from gitops.stack import CLUSTERS_DIR, Stack
from gitops.upgrade.compare import Comparison
from gitops.upgrade.report import ClusterSummary

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
                commit: str | None = None, progress: Progress | None = None) -> Results:
    """Every cluster of a stack tree rendered, or its error. `commit`: the tree is that
    commit's, checked out at stack.root with no tracked file changed; each cluster renders
    in place where its render says that every file it read is the commit's version (the
    inputs the render cache keys on), which saves exporting the tree. The others, and
    every cluster without `commit`, render from the tree exported to a temporary folder."""
    say = progress or (lambda _m: None)
    names = clusters_in(files)
    if not names:
        return {}
    say(f"rendering {len(names)} cluster(s) {label}")

    def tell(message: str) -> None:
        say(f"  {label}: {message}")

    done: Results = {}
    if commit is not None:
        for name, r in render_each(stack, names, kustomize=k).items():
            if isinstance(r, Rendered) and r.source == commit:
                done[name] = r
                tell(f"{name}: {len(r.objects)} objects" + (" (cached)" if r.cache_hit
                                                            else ""))
    rest = [n for n in names if n not in done]
    if rest:
        with tempfile.TemporaryDirectory(prefix="stackctl-upgrade-") as tmp:
            root = Path(tmp)
            git.write_files(root, files)
            found = render_each(Stack(root=root, name=stack.name, source=stack.source),
                                rest, kustomize=k, progress=tell)
        # The folder is gone once rendered: an error names the stack's own paths instead.
        done.update({n: _without(r, root, label) for n, r in found.items()})
    return {n: done[n] for n in names}


def _without(r: Rendered | UserError, root: Path, label: str) -> Rendered | UserError:
    """A render error with the temporary folder it was rendered in taken out of its
    message (paths read from the stack's root, as the repository has them)."""
    if not isinstance(r, UserError) or str(root) not in str(r):
        return r
    def clean(text: str) -> str:
        return text.replace(f"{root}/", "").replace(str(root), ".")
    where = "the merged tree" if label == "after" else "the current branch"
    return KustomizeError(f"{clean(r.message)} (rendered from {where}, exported to a "
                          "temporary folder)", hint=clean(r.hint) if r.hint else None)


class SideRenders:
    """The before and after renders, each side in a thread of its own (kustomize runs in
    other processes, the clusters of a side in parallel), so that they run while the
    calling thread merges and writes git objects. As a context manager it waits for them,
    unless the block fails (see close)."""

    def __init__(self, stack: Stack, kustomize: Kustomize, *,
                 progress: Progress | None = None) -> None:
        self._stack, self._kustomize, self._progress = stack, kustomize, progress
        self._quiet = False
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="stackctl-render")

    def _say(self, message: str) -> None:
        if self._progress is not None and not self._quiet:
            self._progress(message)

    def start(self, label: str, files: git.Files, *,
              commit: str | None = None) -> Future[Results]:
        """Render every cluster of a tree in the background (`commit`: see render_side)."""
        return self._pool.submit(render_side, self._stack, files, self._kustomize,
                                 label=label, commit=commit, progress=self._say)

    def close(self, *, wait: bool = True) -> None:
        """Wait for the renders, or (`wait=False`, on a failure) let the running ones end
        on their own, silently: they only write temporary folders and the render cache,
        and the failure is shown without waiting for kustomize."""
        self._quiet = not wait
        self._pool.shutdown(wait=wait, cancel_futures=True)

    def __enter__(self) -> SideRenders:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        self.close(wait=kind is None)


def summarise(before: Mapping[str, Rendered | UserError],
              after: Mapping[str, Rendered | UserError], *,
              redactor: Redactor) -> tuple[ClusterSummary, ...]:
    """Per-cluster summaries: what changes between the renders that worked, or the render
    error (of the after side when both failed)."""
    errors: dict[str, tuple[str, str]] = {}
    for name, r in after.items():
        if isinstance(r, UserError):
            errors[name] = ("after", str(r))
    for name, r in before.items():
        if isinstance(r, UserError) and name not in errors:
            errors[name] = ("before", str(r))
    ok: dict[str, tuple[Rendered | None, Rendered | None]] = {}
    for name in sorted((set(before) | set(after)) - set(errors)):
        b, a = before.get(name), after.get(name)
        ok[name] = (b if isinstance(b, Rendered) else None,
                    a if isinstance(a, Rendered) else None)
    compare = Comparison(redactor)
    for pair in ok.values():  # values SOPS files held, known before any object is shown
        for one in pair:
            if one is not None:
                redactor.learn_decrypted(one.secrets)
    for b, a in ok.values():
        compare.prepare(b, a)
    out = []
    for name in sorted(set(ok) | set(errors)):
        b, a = before.get(name), after.get(name)
        count_b = len(b.objects) if isinstance(b, Rendered) else None
        count_a = len(a.objects) if isinstance(a, Rendered) else None
        if name in errors:
            side, message = errors[name]
            out.append(ClusterSummary(name=name, status="failed", objects_before=count_b,
                                      objects_after=count_a, error=message, error_side=side))
            continue
        rb, ra = ok[name]
        diff = compare.diff(rb, ra)
        status = ("added" if rb is None else "removed" if ra is None
                  else "unchanged" if diff.is_empty else "changed")
        out.append(ClusterSummary.of_diff(name, status, diff, count_b, count_a))
    return tuple(out)


def render_both(
    stack: Stack, before: git.Files, after: git.Files, *,
    kustomize: Kustomize | None = None, progress: Progress | None = None,
) -> tuple[Results, Results, str]:
    """Every cluster rendered from both trees, and the kustomize version used (summarise
    them with the run's redactor)."""
    k = kustomize or find_kustomize()
    with SideRenders(stack, k, progress=progress) as sides:
        b, a = sides.start("before", before), sides.start("after", after)
        return b.result(), a.result(), k.version
