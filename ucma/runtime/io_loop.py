"""One I/O thread per platform: a ``selectors`` loop that runs socket handlers, callbacks and timers.

Everything that touches a socket or a SIP transaction runs on this thread, so none of that state
needs a lock.  Other threads hand work over with :meth:`IoLoop.call_soon` and
:meth:`IoLoop.call_later`, which wake the loop through a socket pair.  A handler, callback or
timer that raises is logged on ``ucma.runtime`` and the loop goes on: no input can kill it.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import math
import selectors
import socket
import threading
import time
from collections import deque
from collections.abc import Callable

from ucma.runtime.worker_pool import describe_callable
from ucma.signaling.exceptions import ArgumentException, InvalidOperationException

__all__ = ["EVENT_READ", "EVENT_WRITE", "IoLoop", "SocketHandler", "TimerHandle"]

_log = logging.getLogger("ucma.runtime")

EVENT_READ = selectors.EVENT_READ
EVENT_WRITE = selectors.EVENT_WRITE

SocketHandler = Callable[[int], None]
"""Called on the I/O thread with the ready events (``EVENT_READ`` / ``EVENT_WRITE`` bits)."""

_COMPACT_MIN = 256
"""Cancelled timers tolerated in the heap before it is rebuilt without them."""


class TimerHandle:
    """A callback scheduled by :meth:`IoLoop.call_later`; :meth:`cancel` stops it if it has not run."""

    __slots__ = ("_callback", "_in_heap", "_loop", "cancelled", "when")

    def __init__(self, when: float, callback: Callable[[], None], loop: IoLoop) -> None:
        self.when = when
        self._callback: Callable[[], None] | None = callback
        self._loop = loop
        self._in_heap = False
        self.cancelled = False

    def cancel(self) -> None:
        """Make sure the callback never runs (if it has not started); thread-safe, idempotent."""
        if not self.cancelled:
            self.cancelled = True
            if self._callback is not None:
                self._callback = None
                if self._in_heap:
                    self._loop._timer_cancelled()

    def _take(self) -> Callable[[], None] | None:
        callback, self._callback = self._callback, None
        return None if self.cancelled else callback

    def __repr__(self) -> str:
        state = "cancelled" if self.cancelled else ("pending" if self._callback is not None else "done")
        return f"<TimerHandle {state} at {self.when:.3f}>"


class IoLoop:
    """A single named daemon thread (``ucma-io-<name>``) multiplexing sockets, callbacks and timers.

    Callbacks run in the order they were queued; timers in due order (monotonic clock).  Sockets
    are registered from the loop thread only and :meth:`stop` closes every one still registered.
    """

    def __init__(self, name: str = "platform") -> None:
        self._name = name
        self._lock = threading.Lock()
        self._ready: deque[Callable[[], None]] = deque()
        self._timers: list[tuple[float, int, TimerHandle]] = []
        self._timer_seq = itertools.count()
        self._cancelled_timers = 0
        self._selector: selectors.BaseSelector | None = None
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self._wake_pending = False
        self._thread: threading.Thread | None = None
        self._started = False
        self._stopping = False
        self._stopped = threading.Event()

    # --- lifecycle -----------------------------------------------------------------------------

    @property
    def name(self) -> str:
        """The suffix of the thread name."""
        return self._name

    @property
    def thread(self) -> threading.Thread | None:
        """The I/O thread, None before :meth:`start`."""
        return self._thread

    @property
    def is_running(self) -> bool:
        """True between :meth:`start` and :meth:`stop`."""
        return self._started and not self._stopping

    def in_loop_thread(self) -> bool:
        """True when called on the I/O thread."""
        return self._thread is not None and threading.current_thread() is self._thread

    def start(self) -> None:
        """Start the I/O thread; a second call does nothing, a call after :meth:`stop` raises."""
        with self._lock:
            if self._stopping:
                raise InvalidOperationException(f"I/O loop {self._name!r} was stopped and cannot be restarted")
            if self._started:
                return
            self._selector = selectors.DefaultSelector()
            self._wake_r, self._wake_w = socket.socketpair()
            self._wake_r.setblocking(False)
            self._wake_w.setblocking(False)
            self._selector.register(self._wake_r, EVENT_READ, None)
            self._thread = threading.Thread(target=self._run, name=f"ucma-io-{self._name}", daemon=True)
            self._started = True
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread and close every registered socket; idempotent.

        Waits up to ``timeout`` seconds for the thread to exit unless called on the I/O thread
        itself (the loop then ends once the current callback returns).  Callbacks queued before
        the stop still run once (so work handed over is never silently lost), timers do not,
        and later ``call_soon`` calls are refused.
        """
        with self._lock:
            already = self._stopping
            self._stopping = True
            started = self._started
        if not started:
            self._stopped.set()
            return
        if not already:
            self._wake()
        if not self.in_loop_thread() and self._thread is not None:
            self._thread.join(timeout)

    def wait_stopped(self, timeout: float | None = None) -> bool:
        """Block until the loop has exited and closed its sockets; False on timeout."""
        return self._stopped.wait(timeout)

    # --- scheduling ----------------------------------------------------------------------------

    def call_soon(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the I/O thread after the callbacks queued before it; thread-safe.

        After :meth:`stop` the callback is dropped (logged at DEBUG); use :meth:`try_call_soon`
        to learn whether it was accepted.  Callbacks accepted before :meth:`stop` still run
        while the loop winds down.
        """
        if not self.try_call_soon(fn):
            _log.debug("I/O loop %r is stopped; dropped callback %s", self._name, describe_callable(fn))

    def try_call_soon(self, fn: Callable[[], None]) -> bool:
        """Like :meth:`call_soon`; returns False (and drops ``fn``) once the loop is stopping."""
        with self._lock:
            if self._stopping:
                return False
            self._ready.append(fn)
            wake = self._started and not self._wake_pending and not self.in_loop_thread()
            if wake:
                self._wake_pending = True
        if wake:
            self._wake()
        return True

    def call_later(self, delay: float, fn: Callable[[], None]) -> TimerHandle:
        """Run ``fn`` on the I/O thread in ``delay`` seconds (monotonic); thread-safe.

        Returns a handle whose ``cancel()`` stops the callback from running.
        """
        if math.isnan(delay) or delay < 0:
            raise ArgumentException("delay must be a non-negative number of seconds", "delay")
        handle = TimerHandle(time.monotonic() + delay, fn, self)
        if self.in_loop_thread():
            self._push_timer(handle)
        else:
            self.call_soon(lambda: self._push_timer(handle))
        return handle

    @property
    def pending_timers(self) -> int:
        """Timers in the heap that are neither cancelled nor run (approximate off the I/O thread)."""
        return max(0, len(self._timers) - self._cancelled_timers)

    def _push_timer(self, handle: TimerHandle) -> None:
        if handle._callback is None:
            return  # cancelled before it reached the heap
        handle._in_heap = True
        heapq.heappush(self._timers, (handle.when, next(self._timer_seq), handle))

    def _timer_cancelled(self) -> None:
        self._cancelled_timers += 1

    # --- sockets (I/O thread only) --------------------------------------------------------------

    def register(self, sock: socket.socket, events: int, handler: SocketHandler) -> None:
        """Watch ``sock`` for ``events`` and call ``handler(ready_events)``; I/O thread only."""
        self._require_loop_thread()
        assert self._selector is not None  # noqa: S101  (set by start, before the thread runs)
        self._selector.register(sock, events, handler)

    def modify(self, sock: socket.socket, events: int) -> None:
        """Change the events watched for ``sock`` (which must be registered); I/O thread only."""
        self._require_loop_thread()
        assert self._selector is not None  # noqa: S101
        key = self._selector.get_key(sock)
        if key.events != events:
            self._selector.modify(sock, events, key.data)

    def unregister(self, sock: socket.socket) -> None:
        """Stop watching ``sock`` (no error if it is not watched); I/O thread only."""
        self._require_loop_thread()
        if self._selector is None:
            return
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(sock)

    @property
    def registered_sockets(self) -> int:
        """Sockets watched, the wake-up socket excluded."""
        selector = self._selector
        if selector is None:
            return 0
        try:
            return max(0, len(selector.get_map()) - 1)
        except RuntimeError:  # closed
            return 0

    def _require_loop_thread(self) -> None:
        if not self.in_loop_thread():
            raise InvalidOperationException("sockets are registered on the I/O thread only (use call_soon)")

    # --- the loop ------------------------------------------------------------------------------

    def _wake(self) -> None:
        wake_w = self._wake_w
        if wake_w is None:
            return
        try:
            wake_w.send(b"\0")
        except (BlockingIOError, InterruptedError):
            pass  # the pipe is full: the loop is awake anyway
        except OSError:
            pass  # closed during stop

    def _run(self) -> None:
        selector = self._selector
        assert selector is not None  # noqa: S101
        try:
            while not self._stop_requested():
                events = selector.select(self._timeout())
                for key, mask in events:
                    if key.data is None:
                        self._drain_wakeup()
                        continue
                    self._run_handler(key.data, mask)
                    if self._stop_requested():
                        break
                if self._stop_requested():
                    break
                self._run_timers()
                self._run_ready()
        except Exception:
            _log.exception("I/O loop %r failed", self._name)  # a selector failure, not a handler's
        finally:
            self._shutdown()

    def _stop_requested(self) -> bool:
        return self._stopping

    def _timeout(self) -> float | None:
        if self._ready:
            return 0
        timers = self._timers
        while timers and timers[0][2].cancelled:
            heapq.heappop(timers)
            self._cancelled_timers = max(0, self._cancelled_timers - 1)
        if not timers:
            return None
        return max(0.0, timers[0][0] - time.monotonic())

    def _drain_wakeup(self) -> None:
        wake_r = self._wake_r
        assert wake_r is not None  # noqa: S101
        try:
            while wake_r.recv(4096):
                pass
        except (BlockingIOError, InterruptedError):
            pass
        with self._lock:
            self._wake_pending = False

    def _run_handler(self, handler: SocketHandler, mask: int) -> None:
        try:
            handler(mask)
        except Exception:
            _log.exception("socket handler %s raised on I/O loop %r", describe_callable(handler), self._name)

    def _run_timers(self) -> None:
        timers = self._timers
        if self._cancelled_timers > _COMPACT_MIN and self._cancelled_timers > len(timers) // 2:
            self._timers = timers = [entry for entry in timers if not entry[2].cancelled]
            heapq.heapify(timers)
            self._cancelled_timers = 0
        now = time.monotonic()
        while timers and timers[0][0] <= now:
            _, _, handle = heapq.heappop(timers)
            was_cancelled = handle.cancelled
            callback = handle._take()
            if callback is None:
                if was_cancelled:
                    self._cancelled_timers = max(0, self._cancelled_timers - 1)
                continue
            self._run_callback(callback)
            if self._stop_requested():
                return

    def _run_ready(self) -> None:
        with self._lock:
            batch, self._ready = self._ready, deque()
        while batch:
            self._run_callback(batch.popleft())
            if self._stop_requested():
                if batch:
                    with self._lock:  # the rest still runs once, in _shutdown, before later ones
                        batch.extend(self._ready)
                        self._ready = batch
                return

    def _run_callback(self, fn: Callable[[], None]) -> None:
        try:
            fn()
        except Exception:
            _log.exception("callback %s raised on I/O loop %r", describe_callable(fn), self._name)

    def _shutdown(self) -> None:
        with self._lock:
            self._stopping = True
            batch, self._ready = self._ready, deque()
        # Accepted work still runs once, so futures it would complete are not left pending.
        while batch:
            self._run_callback(batch.popleft())
        selector = self._selector
        if selector is not None:
            for key in list(selector.get_map().values()):
                sock = key.fileobj
                with contextlib.suppress(KeyError, ValueError):
                    selector.unregister(sock)
                if isinstance(sock, socket.socket) and sock is not self._wake_r:
                    with contextlib.suppress(OSError):
                        sock.close()
            selector.close()
        for end in (self._wake_r, self._wake_w):
            if end is not None:
                end.close()
        self._timers.clear()
        self._stopped.set()

    def __repr__(self) -> str:
        if self._stopping:
            state = "stopped"
        elif self._started:
            state = "running"
        else:
            state = "not started"
        return f"<IoLoop {self._name!r} {state}>"
