"""Client-side pacing of one endpoint's outstanding requests (UCMA ``IsEndpointThrottled``).

Microsoft servers fail a request sent while 20 are already outstanding on a client connection;
a throttled endpoint therefore keeps at most that many in flight and queues the rest in order.
Runs on the platform's I/O thread only.
"""

from __future__ import annotations

import collections
import concurrent.futures
from collections.abc import Callable

from ucma.runtime.futures import copy_outcome
from ucma.signaling.exceptions import RealTimeException
from ucma.signaling.sip.message import SipRequest, SipResponse

#: The per-connection limit documented for Lync/OCS client connections.
MAX_OUTSTANDING_REQUESTS = 20

Sender = Callable[[SipRequest], "concurrent.futures.Future[SipResponse]"]


class RequestThrottle:
    """Sends through ``sender`` with at most ``limit`` outstanding when enabled; FIFO beyond that."""

    def __init__(self, limit: int = MAX_OUTSTANDING_REQUESTS) -> None:
        self.limit = limit
        self.enabled = True
        self._outstanding = 0
        # Created on first use: most endpoints never queue, and an empty deque costs ~0.8 KB.
        self._queue: collections.deque[tuple[SipRequest, Sender, concurrent.futures.Future[SipResponse]]] | None = None

    @property
    def outstanding(self) -> int:
        """Requests sent and not yet answered."""
        return self._outstanding

    @property
    def queued(self) -> int:
        """Requests waiting for a free slot."""
        return len(self._queue) if self._queue is not None else 0

    def send(self, request: SipRequest, sender: Sender) -> concurrent.futures.Future[SipResponse]:
        """Send now or queue; the returned future gets the final response or the failure."""
        outer: concurrent.futures.Future[SipResponse] = concurrent.futures.Future()
        if self.enabled and self._outstanding >= self.limit:
            if self._queue is None:
                self._queue = collections.deque()
            self._queue.append((request, sender, outer))
        else:
            self._dispatch(request, sender, outer)
        return outer

    def fail_queued(self, error: RealTimeException) -> None:
        """Fail every queued request (the connection is gone); nothing is dropped silently."""
        while self._queue:
            _, _, outer = self._queue.popleft()
            if not outer.done():
                outer.set_exception(error)

    def _dispatch(self, request: SipRequest, sender: Sender, outer: concurrent.futures.Future[SipResponse]) -> None:
        self._outstanding += 1
        try:
            inner = sender(request)
        except Exception as exc:
            self._finished()
            outer.set_exception(exc)
            return
        inner.add_done_callback(lambda f: self._relay(f, outer))

    def _relay(
        self, inner: concurrent.futures.Future[SipResponse], outer: concurrent.futures.Future[SipResponse]
    ) -> None:
        self._finished()
        copy_outcome(inner, outer)

    def _finished(self) -> None:
        self._outstanding -= 1
        while self._queue and (not self.enabled or self._outstanding < self.limit):
            request, sender, outer = self._queue.popleft()
            self._dispatch(request, sender, outer)
