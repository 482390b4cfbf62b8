"""Sending objects to server-side apply, concurrently, with every refusal a Rejection."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from gitops.apply.results import Outcome, Rejection, rejection_from
from gitops.errors import ClusterError
from gitops.kube import Kube, UnreachableError
from gitops.redact import Redactor
from gitops.resource import ResourceId

Obj = dict[str, Any]


def send_all(
    kube: Kube, objects: Sequence[Obj], *, redactor: Redactor, dry_run: bool, force: bool,
    concurrency: int, full: bool = False,
    on_applied: Callable[[ResourceId, Outcome], None] | None = None,
) -> tuple[dict[ResourceId, tuple[Outcome, Obj]], list[Rejection]]:
    """Server-side apply each object (`concurrency` at a time; transient failures are
    retried by gitops.kube). Returns {id: (created|configured, answer)} and the
    rejections; raises UnreachableError when the server is gone. The answer is the whole
    object only with `full` (a field diff needs it), else its metadata."""

    def one(obj: Obj) -> tuple[ResourceId, tuple[Outcome, Obj] | Rejection]:
        rid = ResourceId.of(obj)
        try:
            code, body = kube.apply_full(obj, dry_run=dry_run, force=force,
                                         metadata_only=not full)
        except UnreachableError:
            raise
        except ClusterError as e:
            return rid, rejection_from(rid, e, redactor)
        outcome = Outcome.CREATED if code == 201 else Outcome.CONFIGURED
        if on_applied is not None:
            on_applied(rid, outcome)
        return rid, (outcome, body)

    done: dict[ResourceId, tuple[Outcome, Obj]] = {}
    rejections: list[Rejection] = []
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        futures = [pool.submit(one, o) for o in objects]
        errors: list[BaseException] = []
        for f in futures:
            try:
                rid, outcome = f.result()
            except UnreachableError as e:
                errors.append(e)
                continue
            if isinstance(outcome, Rejection):
                rejections.append(outcome)
            else:
                done[rid] = outcome
        if errors:
            raise errors[0]
    return done, sorted(rejections, key=lambda r: r.id)
