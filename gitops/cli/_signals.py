"""SIGINT and SIGTERM: what they do to a command.

Outside the apply engine, SIGTERM ends a command the way Ctrl-C does (`Terminated`, a
KeyboardInterrupt: the same cleanup runs), with exit code 143 and a message rather than a
silent death. While the engine changes a cluster (`stopping`), both only ask it to stop
through a gitops.apply.stop.Stop, which it checks at safe points: the first signal stops
the apply and rolls it back, the second skips the rollback, a third ends the process at
once (the default action). Handlers run only in the main thread; an apply in a worker
thread sees the same Stop at its next safe point.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gitops.apply.stop import Stop

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Terminated(KeyboardInterrupt):
    """SIGTERM outside the apply engine: ends the command as Ctrl-C does."""


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise Terminated()


@contextmanager
def terminable() -> Iterator[None]:
    """SIGTERM raises Terminated while the command runs (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def stopping(stop: Stop) -> Iterator[Stop]:
    """While the engine runs: SIGINT and SIGTERM ask `stop` to stop (main thread only;
    elsewhere the caller's handlers stay)."""
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    from gitops.apply.stop import StopReason

    received = 0

    def handler(signum: int, frame: FrameType | None) -> None:
        nonlocal received
        received += 1
        # Only a list append: no lock is taken in a handler (the main thread may hold it).
        stop.request(StopReason.of_signal(signum))
        if received >= 2:
            for s in SIGNALS:  # a third signal ends the process at once
                signal.signal(s, signal.SIG_DFL)

    previous: dict[int, Any] = {s: signal.signal(s, handler) for s in SIGNALS}
    try:
        yield stop
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
