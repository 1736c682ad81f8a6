"""UCMA's asynchronous pattern: ``begin_x``/``end_x`` with an IAsyncResult, plus a blocking ``x``.

:class:`AsyncResult` is a :class:`concurrent.futures.Future` that also carries the IAsyncResult
members.  :class:`AsyncOperation` lets an object write an operation once, as a *starter*, and
expose it three ways::

    _ESTABLISH: AsyncOperation[SipResponseData] = AsyncOperation("establish")

    def begin_establish(self, user_callback=None, state=None):
        return _ESTABLISH.begin(self, self._start_establish, user_callback, state)

    def end_establish(self, result):
        return _ESTABLISH.end(self, result)

    def establish(self, timeout=None):
        return _ESTABLISH.run(self, self._start_establish, timeout)

The owner provides ``dispatcher`` (:class:`~ucma.runtime.worker_pool.HasDispatcher`); user
callbacks and done-callbacks run there, after any event the operation queued before completing.
The starter ``_start_establish(result)`` checks the object's state (raising
InvalidOperationException straight out of ``begin_establish``) and starts work that later
completes ``result``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, InvalidStateError
from contextlib import contextmanager
from typing import Any, Generic, TypeVar

from ucma.runtime.worker_pool import HasDispatcher, SerialDispatcher
from ucma.signaling.exceptions import (
    ArgumentException,
    ArgumentNullException,
    InvalidOperationException,
    OperationTimeoutException,
)

__all__ = ["AsyncCallback", "AsyncOperation", "AsyncResult"]

_log = logging.getLogger("ucma.runtime")

T = TypeVar("T")


class AsyncResult(Future[T]):
    """The handle of one ``begin_x`` call: a Future that is also UCMA's IAsyncResult.

    It remembers the owner and operation that created it, so ``end_x`` can reject foreign
    results.  It cannot be cancelled (UCMA operations are stopped through their owner, e.g. by
    terminating it).  Completion callbacks, including those added with :meth:`add_done_callback`,
    run on the owner's dispatcher, never on the completing thread.
    """

    def __init__(
        self,
        owner: object,
        operation_name: str,
        dispatcher: SerialDispatcher,
        user_callback: AsyncCallback[T] | None = None,
        state: object = None,
    ) -> None:
        super().__init__()
        # RUNNING from the start: the operation is under way and Future.cancel() must not succeed.
        self.set_running_or_notify_cancel()
        # Names below must not clash with Future's own private attributes (_state, _result, ...).
        self._owner = owner
        self._operation_name = operation_name
        self._dispatcher = dispatcher
        self._user_callback = user_callback
        self._async_state = state
        self._lock = threading.Lock()
        self._wait_handle: threading.Event | None = None
        self._completed_synchronously = False
        self._begin_thread: int | None = None
        self._ended = False

    @property
    def owner(self) -> object:
        """The object whose ``begin_x`` created this result."""
        return self._owner

    @property
    def operation_name(self) -> str:
        """The operation that created this result (``"establish"`` for ``begin_establish``)."""
        return self._operation_name

    @property
    def async_state(self) -> object:
        """The ``state`` passed to ``begin_x``."""
        return self._async_state

    @property
    def is_completed(self) -> bool:
        """True once the operation has finished, successfully or not."""
        return self.done()

    @property
    def completed_synchronously(self) -> bool:
        """True if the operation finished on the caller's thread before ``begin_x`` returned."""
        return self._completed_synchronously

    @property
    def async_wait_handle(self) -> threading.Event:
        """An event set when the operation finishes; created on first access.  Wait on it, never set it."""
        with self._lock:
            if self._wait_handle is None:
                self._wait_handle = threading.Event()
                if self.done():
                    self._wait_handle.set()
            return self._wait_handle

    def set_result(self, result: T) -> None:
        """Complete the operation with ``result``; raises InvalidStateError if already complete."""
        with self._lock:
            self._mark_completing()
            super().set_result(result)
            self._signal_wait_handle()

    def set_exception(self, exception: BaseException | None) -> None:
        """Fail the operation with ``exception``; raises InvalidStateError if already complete."""
        with self._lock:
            self._mark_completing()
            super().set_exception(exception)
            self._signal_wait_handle()

    def try_set_result(self, result: T) -> bool:
        """Complete with ``result`` unless already complete; says whether this call completed it."""
        try:
            self.set_result(result)
        except InvalidStateError:
            return False
        return True

    def try_set_exception(self, exception: BaseException) -> bool:
        """Fail with ``exception`` unless already complete; says whether this call completed it."""
        try:
            self.set_exception(exception)
        except InvalidStateError:
            return False
        return True

    def complete_with(self, work: Callable[[], T]) -> None:
        """Run ``work`` and complete with its return value, or fail with the exception it raises."""
        try:
            value = work()
        except Exception as error:
            self.set_exception(error)
        else:
            self.set_result(value)

    def cancel(self) -> bool:
        """Always False: an operation is not cancelled through its result."""
        return False

    def add_done_callback(self, fn: Callable[[Future[T]], object]) -> None:
        """Call ``fn(self)`` on the owner's dispatcher once the operation is complete."""
        super().add_done_callback(lambda _: self._dispatcher.submit(lambda: fn(self)))

    def _mark_completing(self) -> None:
        # Caller holds self._lock; only the thread inside begin_x has _begin_thread set to its id.
        if not self.done() and self._begin_thread == threading.get_ident():
            self._completed_synchronously = True

    def _signal_wait_handle(self) -> None:
        if self._wait_handle is not None:
            self._wait_handle.set()

    @contextmanager
    def _begin_scope(self) -> Iterator[None]:
        """Mark the calling thread as inside ``begin_x`` so a completion on it counts as synchronous."""
        with self._lock:
            self._begin_thread = threading.get_ident()
        try:
            yield
        finally:
            with self._lock:
                self._begin_thread = None

    def _arm_user_callback(self) -> None:
        """Queue the user callback on the dispatcher once complete (at once if already complete)."""
        if self._user_callback is not None:
            Future.add_done_callback(self, self._queue_user_callback)

    def _queue_user_callback(self, _: Future[T]) -> None:
        self._dispatcher.submit(self._run_user_callback)

    def _run_user_callback(self) -> None:
        callback = self._user_callback
        self._user_callback = None  # run once, and do not keep the application's closure alive
        if callback is None:
            return
        try:
            callback(self)
        except Exception:
            _log.exception("callback for %s.%s raised", type(self._owner).__name__, self._operation_name)

    def _claim_end(self) -> bool:
        """Record that ``end_x`` was called; False if it already was."""
        with self._lock:
            if self._ended:
                return False
            self._ended = True
            return True

    def __repr__(self) -> str:
        state = "completed" if self.done() else "pending"
        return f"<AsyncResult {type(self._owner).__name__}.{self._operation_name} {state}>"


AsyncCallback = Callable[[AsyncResult[T]], object]
"""UCMA's ``AsyncCallback``: called once with the completed result, on the owner's dispatcher."""


class AsyncOperation(Generic[T]):
    """One named operation of a UCMA class, exposed as ``begin_x``, ``end_x`` and blocking ``x``.

    Create one per operation at class or module level; the owner passed to each method supplies
    the dispatcher that runs callbacks.
    """

    def __init__(self, name: str) -> None:
        self._name = name

    @property
    def name(self) -> str:
        """The operation's name without prefix (``"establish"``)."""
        return self._name

    def begin(
        self,
        owner: HasDispatcher,
        starter: Callable[[AsyncResult[T]], None],
        user_callback: AsyncCallback[T] | None = None,
        state: object = None,
    ) -> AsyncResult[T]:
        """Start the operation and return its result handle.

        Exceptions from ``starter`` (typically InvalidOperationException for a wrong object state)
        propagate and no callback is ever made.  ``user_callback`` runs once, on the owner's
        dispatcher, even if the starter completed the result before returning.
        """
        if user_callback is not None and not callable(user_callback):
            raise ArgumentException("user_callback must be callable", "user_callback")
        result: AsyncResult[T] = AsyncResult(owner, self._name, owner.dispatcher, user_callback, state)
        with result._begin_scope():
            starter(result)
        result._arm_user_callback()
        return result

    def end(self, owner: object, result: AsyncResult[T]) -> T:
        """Wait for ``result`` and return its value or raise the operation's exception.

        Raises ArgumentNullException for None, ArgumentException for a result not made by this
        operation on ``owner``, InvalidOperationException if end was already called for it.
        """
        self._check_result(owner, result)
        if not result._claim_end():
            raise InvalidOperationException(f"end_{self._name} was already called for this result")
        return result.result()

    def run(self, owner: HasDispatcher, starter: Callable[[AsyncResult[T]], None], timeout: float | None = None) -> T:
        """Run the operation and block until it finishes, at most ``timeout`` seconds (None: no limit).

        On timeout raises OperationTimeoutException; the operation itself carries on.
        """
        if timeout is not None and timeout < 0:
            raise ArgumentException("timeout must be None or at least 0", "timeout")
        result = self.begin(owner, starter)
        if not result.async_wait_handle.wait(timeout):
            raise OperationTimeoutException(
                f"{type(owner).__name__}.{self._name} did not complete within {timeout:g} seconds"
            )
        return self.end(owner, result)

    def _check_result(self, owner: object, result: Any) -> None:
        if result is None:
            raise ArgumentNullException("result")
        if not isinstance(result, AsyncResult):
            raise ArgumentException(f"expected the AsyncResult returned by begin_{self._name}", "result")
        if result.owner is not owner or result.operation_name != self._name:
            raise ArgumentException(
                f"result came from {type(result.owner).__name__}.begin_{result.operation_name}, "
                f"not from begin_{self._name} on this {type(owner).__name__}",
                "result",
            )

    def __repr__(self) -> str:
        return f"AsyncOperation({self._name!r})"
