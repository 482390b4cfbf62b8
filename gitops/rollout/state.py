"""The local record of the last rollout: `.stackctl/rollout.json`.

What a cluster runs is known by the cluster itself (each revision records its commit), and
that is what `--resume` trusts to skip clusters. This file adds what only this machine
knows: which clusters the stopped rollout selected (so `stackctl rollout --resume` without
`--cluster` continues the same selection) and how each ended, written after every cluster
so that a rollout killed outright still leaves it. `.stackctl/` ignores itself in git.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from gitops.paths import write_atomic
from gitops.stack import STATE_DIR

STATE_FILE = f"{STATE_DIR}/rollout.json"
FORMAT = 1


@dataclass(frozen=True)
class SavedRollout:
    commit: str | None
    clusters: tuple[str, ...]  # the selection, in wave order
    started: str
    outcomes: tuple[tuple[str, str], ...] = ()  # (cluster, outcome) as they ended
    finished: bool = False
    stopped: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "commit": self.commit, "clusters": list(self.clusters),
                "started": self.started, "outcomes": dict(self.outcomes),
                "finished": self.finished, "stopped": self.stopped}


def now() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def load_saved(root: Path) -> SavedRollout | None:
    """The last rollout's record; None when there is none (or it cannot be read: it is only
    a convenience, the clusters' records are the truth)."""
    try:
        data = json.loads((root / STATE_FILE).read_text(encoding="utf-8"))
        if data.get("format") != FORMAT:
            return None
        return SavedRollout(
            commit=data.get("commit"), clusters=tuple(str(c) for c in data["clusters"]),
            started=str(data.get("started") or ""),
            outcomes=tuple((str(k), str(v)) for k, v in (data.get("outcomes") or {}).items()),
            finished=bool(data.get("finished")), stopped=str(data.get("stopped") or ""))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


@dataclass
class StateWriter:
    """Keeps `.stackctl/rollout.json` up to date from the scheduler's threads."""

    root: Path
    saved: SavedRollout
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _write(self) -> None:
        ignore = self.root / STATE_DIR / ".gitignore"
        if not ignore.exists():
            write_atomic(ignore, "# stackctl's local state and reports: never committed\n*\n")
        write_atomic(self.root / STATE_FILE, json.dumps(self.saved.to_dict(), indent=2) + "\n")

    def start(self) -> None:
        with self._lock:
            self._write()

    def ended(self, cluster: str, outcome: str) -> None:
        with self._lock:
            outcomes = dict(self.saved.outcomes)
            outcomes[cluster] = outcome
            self.saved = replace(self.saved, outcomes=tuple(outcomes.items()))
            self._write()

    def finish(self, stopped: str) -> None:
        with self._lock:
            self.saved = replace(self.saved, finished=True, stopped=stopped)
            self._write()
