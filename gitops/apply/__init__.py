"""Apply a cluster's rendered objects with validation, ordering, health, prune and rollback.

The modules, by noun: `engine` (the orchestration), `order` (phases), `ssa` (server-side
apply, discovery and the other requests), `compare` (the no-change test and plans), `wait`
(the health poller), `prune`, `lease`, `results` (the returned values).
"""

from __future__ import annotations

from typing import Any

# Exported lazily: gitops.inventory imports gitops.apply.ssa, and the engine imports
# gitops.inventory, so eager imports here would be circular.
_EXPORTS = {
    "apply_objects": "engine", "history": "engine", "prepare": "engine", "rollback_to": "engine",
    "MassPruneError": "prune", "PruneAction": "prune",
    "ApplyResult": "results", "Failure": "results", "ObjectAction": "results",
    "ObjectFailure": "results", "ProgressEvent": "results", "Rejection": "results",
    "RollbackResult": "results",
    "ApiRequestError": "ssa", "Kube": "ssa", "UnreachableError": "ssa",
    "LeaseHeldError": "lease",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'gitops.apply' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"gitops.apply.{module}"), name)
