"""Synchronisation helpers for tests of dispatchers, events and async results (waits, never sleeps)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from ucma.runtime.worker_pool import SerialDispatcher

WAIT = 10.0


def drain(dispatcher: SerialDispatcher) -> None:
    """Return once everything queued on ``dispatcher`` so far has run."""
    done = threading.Event()
    dispatcher.submit(done.set)
    assert done.wait(WAIT)


@contextmanager
def blocked(dispatcher: SerialDispatcher) -> Iterator[None]:
    """Keep ``dispatcher`` busy inside the block, so tasks submitted there queue up."""
    started, release = threading.Event(), threading.Event()

    def hold() -> None:
        started.set()
        release.wait(WAIT)

    dispatcher.submit(hold)
    assert started.wait(WAIT)
    try:
        yield
    finally:
        release.set()
