"""The run context: what a command builds once and passes down as a value.

Redaction is not process-wide: each command loads its stack, builds the run's redactor
from that stack's `redact:` settings (and $STACKCTL_REDACT_KEYS / _SALT), and hands it to
every core function that shows a value (plan, drift, apply's change set and progress,
errors). One redactor per run keeps one salt and every secret value any step has seen.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gitops.redact import Redactor
from gitops.stack import Stack, load_stack


@dataclass(frozen=True)
class RunContext:
    stack: Stack
    redactor: Redactor

    @classmethod
    def for_stack(cls, stack: Stack) -> RunContext:
        return cls(stack, Redactor.from_config(stack.root))

    @classmethod
    def load(cls, root: Path | None = None) -> RunContext:
        """The deployment repo found from `root` (default: the working directory up)."""
        return cls.for_stack(load_stack(root))
