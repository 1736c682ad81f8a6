"""The platform's ``RegistrationManager``: one thread and one timer heap for every refresh.

Registrations, subscriptions and publications of all endpoints schedule their refreshes here,
so the thread count never grows with the number of endpoints. A due entry is not run on this
thread: it is handed to the executor given at scheduling time (normally the platform's I/O
loop), so a slow refresh can never delay the others.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable

_log = logging.getLogger("ucma.runtime")

Executor = Callable[[Callable[[], None]], None]


class RefreshHandle:
    """A scheduled refresh; :meth:`cancel` makes sure it never runs (if it has not started)."""

    __slots__ = ("_callback", "cancelled", "due", "executor")

    def __init__(self, due: float, callback: Callable[[], None], executor: Executor) -> None:
        self.due = due
        self._callback: Callable[[], None] | None = callback
        self.executor = executor
        self.cancelled = False

    def cancel(self) -> None:
        """Drop the refresh; safe from any thread, any number of times."""
        self.cancelled = True
        self._callback = None

    def _take(self) -> Callable[[], None] | None:
        callback, self._callback = self._callback, None
        return None if self.cancelled else callback


class RegistrationManager:
    """Runs scheduled refreshes at their due time on the executor they name."""

    def __init__(self, name: str = "platform", clock: Callable[[], float] = time.monotonic) -> None:
        self._name = name
        self._clock = clock
        self._heap: list[tuple[float, int, RefreshHandle]] = []
        self._counter = itertools.count()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopping = False

    @property
    def thread(self) -> threading.Thread | None:
        """The manager's thread once started."""
        return self._thread

    @property
    def pending(self) -> int:
        """Scheduled entries not yet due (cancelled ones may still be counted until they surface)."""
        with self._cond:
            return len(self._heap)

    def start(self) -> None:
        """Start the thread (idempotent)."""
        with self._cond:
            if self._thread is not None:
                return
            self._stopping = False
            self._thread = threading.Thread(target=self._run, name=f"ucma-registration-{self._name}", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread; pending refreshes are dropped (idempotent)."""
        with self._cond:
            thread = self._thread
            self._stopping = True
            self._heap.clear()
            self._cond.notify_all()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        with self._cond:
            self._thread = None

    def schedule(self, delay: float, callback: Callable[[], None], executor: Executor) -> RefreshHandle:
        """Run ``callback`` through ``executor`` after ``delay`` seconds."""
        handle = RefreshHandle(self._clock() + max(0.0, delay), callback, executor)
        with self._cond:
            heapq.heappush(self._heap, (handle.due, next(self._counter), handle))
            self._cond.notify()
        return handle

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopping:
                    if not self._heap:
                        self._cond.wait()
                        continue
                    wait = self._heap[0][0] - self._clock()
                    if wait <= 0:
                        break
                    self._cond.wait(wait)
                if self._stopping:
                    return
                _, _, handle = heapq.heappop(self._heap)
            callback = handle._take()
            if callback is None:
                continue
            try:
                handle.executor(callback)
            except Exception:
                _log.exception("registration manager %s could not hand over a refresh", self._name)
