"""AsyncResult and AsyncOperation: UCMA's begin/end pattern and the blocking form built on it."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator
from concurrent.futures import Future, InvalidStateError
from contextlib import contextmanager

import pytest
from dispatch_helpers import WAIT, blocked, drain

from ucma.runtime import AsyncCallback, AsyncOperation, AsyncResult, SerialDispatcher, WorkerPool
from ucma.signaling.exceptions import (
    ArgumentException,
    ArgumentNullException,
    FailureResponseException,
    InvalidOperationException,
    OperationTimeoutException,
)

_CONNECT: AsyncOperation[str] = AsyncOperation("connect")
_DISCONNECT: AsyncOperation[None] = AsyncOperation("disconnect")


class Connection:
    """A UCMA-style object whose ``connect`` operation is written once and exposed three ways.

    The starter holds the object's (non-reentrant) lock while it checks state and, when
    ``inline_outcome`` is set, while it completes the result; :meth:`complete_pending` also
    completes under the lock.  A callback run under that lock would fail to take it again.
    """

    def __init__(self, dispatcher: SerialDispatcher) -> None:
        self.dispatcher = dispatcher
        self.terminated = False
        self.inline_outcome: str | Exception | None = None
        self.pending: list[AsyncResult[str]] = []
        self.started = threading.Event()  # set when a connect is left pending
        self._lock = threading.Lock()

    def begin_connect(self, user_callback: AsyncCallback[str] | None = None, state: object = None) -> AsyncResult[str]:
        return _CONNECT.begin(self, self._start_connect, user_callback, state)

    def end_connect(self, result: AsyncResult[str]) -> str:
        return _CONNECT.end(self, result)

    def connect(self, timeout: float | None = None) -> str:
        return _CONNECT.run(self, self._start_connect, timeout)

    def begin_disconnect(self, user_callback: AsyncCallback[None] | None = None) -> AsyncResult[None]:
        return _DISCONNECT.begin(self, lambda result: result.set_result(None), user_callback)

    def complete_pending(self, outcome: str | Exception) -> None:
        with self._locked():
            pending, self.pending = self.pending, []
            for result in pending:
                _complete(result, outcome)

    def _start_connect(self, result: AsyncResult[str]) -> None:
        with self._locked():
            if self.terminated:
                raise InvalidOperationException("connection is terminated")
            if self.inline_outcome is None:
                self.pending.append(result)
                self.started.set()
            else:
                _complete(result, self.inline_outcome)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        if not self._lock.acquire(timeout=WAIT):
            raise AssertionError("Connection lock is held by this thread: a callback ran under it")
        try:
            yield
        finally:
            self._lock.release()


def _complete(result: AsyncResult[str], outcome: str | Exception) -> None:
    if isinstance(outcome, Exception):
        result.set_exception(outcome)
    else:
        result.set_result(outcome)


class Recorder:
    """A user callback that records each call and the thread it ran on."""

    def __init__(self) -> None:
        self.calls: list[tuple[AsyncResult[str], threading.Thread]] = []
        self.called = threading.Event()

    def __call__(self, result: AsyncResult[str]) -> None:
        self.calls.append((result, threading.current_thread()))
        self.called.set()


@pytest.fixture
def pool() -> Iterator[WorkerPool]:
    worker_pool = WorkerPool(4, name="test-pool")
    yield worker_pool
    worker_pool.shutdown()


@pytest.fixture
def dispatcher(pool: WorkerPool) -> SerialDispatcher:
    return SerialDispatcher(pool, name="connection")


@pytest.fixture
def connection(dispatcher: SerialDispatcher) -> Connection:
    return Connection(dispatcher)






def test_callback_runs_once_on_a_pool_thread(connection: Connection, pool: WorkerPool) -> None:
    callback = Recorder()
    result = connection.begin_connect(callback)
    assert not result.is_completed

    connection.complete_pending("connected")
    assert callback.called.wait(WAIT)
    drain(connection.dispatcher)

    assert len(callback.calls) == 1
    called_with, thread = callback.calls[0]
    assert called_with is result
    assert thread in pool.threads
    assert thread is not threading.current_thread()
    assert not result.completed_synchronously
    assert connection.end_connect(result) == "connected"


def test_synchronous_completion_is_flagged_and_the_callback_still_goes_to_the_pool(
    connection: Connection, pool: WorkerPool
) -> None:
    connection.inline_outcome = "already connected"
    callback = Recorder()
    with blocked(connection.dispatcher):
        result = connection.begin_connect(callback)
        assert result.is_completed
        assert result.completed_synchronously
        assert callback.calls == []  # queued behind the blocking task, not run inside begin_connect
    assert callback.called.wait(WAIT)
    drain(connection.dispatcher)
    assert len(callback.calls) == 1
    assert callback.calls[0][1] in pool.threads


def test_completion_on_another_thread_is_not_synchronous(connection: Connection) -> None:
    result = connection.begin_connect()
    worker = threading.Thread(target=connection.complete_pending, args=("connected",))
    worker.start()
    worker.join(WAIT)
    assert result.is_completed
    assert not result.completed_synchronously


def test_end_twice_raises_invalid_operation(connection: Connection) -> None:
    connection.inline_outcome = "connected"
    result = connection.begin_connect()
    assert connection.end_connect(result) == "connected"
    with pytest.raises(InvalidOperationException, match="end_connect"):
        connection.end_connect(result)


def test_end_with_a_result_from_another_object_raises_argument_exception(dispatcher: SerialDispatcher) -> None:
    first, second = Connection(dispatcher), Connection(dispatcher)
    first.inline_outcome = "connected"
    result = first.begin_connect()
    with pytest.raises(ArgumentException) as caught:
        second.end_connect(result)
    assert caught.value.param_name == "result"
    assert first.end_connect(result) == "connected"  # the failed attempt did not consume the result


def test_end_with_a_result_from_another_operation_raises_argument_exception(connection: Connection) -> None:
    result = connection.begin_disconnect()
    with pytest.raises(ArgumentException, match="begin_disconnect"):
        connection.end_connect(result)  # type: ignore[arg-type]


def test_end_rejects_none_and_foreign_objects(connection: Connection) -> None:
    with pytest.raises(ArgumentNullException):
        connection.end_connect(None)  # type: ignore[arg-type]
    plain: Future[str] = Future()
    with pytest.raises(ArgumentException):
        connection.end_connect(plain)  # type: ignore[arg-type]


def test_end_reraises_the_operations_exception(connection: Connection) -> None:
    failure = FailureResponseException("404 Not Found")
    result = connection.begin_connect()
    connection.complete_pending(failure)
    with pytest.raises(FailureResponseException) as caught:
        connection.end_connect(result)
    assert caught.value is failure


def test_end_waits_for_the_operation(connection: Connection) -> None:
    result = connection.begin_connect()
    returned: list[str] = []
    ended = threading.Event()

    def end() -> None:
        returned.append(connection.end_connect(result))
        ended.set()

    waiter = threading.Thread(target=end)
    waiter.start()
    assert not ended.wait(0.05)
    connection.complete_pending("late")
    assert ended.wait(WAIT)
    waiter.join(WAIT)
    assert returned == ["late"]


def test_blocking_call_returns_the_value(connection: Connection) -> None:
    connection.inline_outcome = "connected"
    assert connection.connect(timeout=WAIT) == "connected"


def test_blocking_call_waits_for_completion_on_another_thread(connection: Connection) -> None:
    def complete_when_started() -> None:
        if connection.started.wait(WAIT):
            connection.complete_pending("remote")

    helper = threading.Thread(target=complete_when_started)
    helper.start()
    assert connection.connect(timeout=WAIT) == "remote"
    helper.join(WAIT)


def test_blocking_call_raises_the_operations_exception(connection: Connection) -> None:
    connection.inline_outcome = FailureResponseException("403 Forbidden")
    with pytest.raises(FailureResponseException, match="403"):
        connection.connect()


def test_blocking_call_times_out_and_the_operation_continues(connection: Connection) -> None:
    with pytest.raises(OperationTimeoutException) as caught:
        connection.connect(timeout=0.01)
    assert "Connection.connect" in caught.value.message
    assert "0.01 seconds" in caught.value.message

    (result,) = connection.pending
    assert not result.is_completed
    connection.complete_pending("finally")
    assert result.result(WAIT) == "finally"


def test_blocking_call_rejects_a_negative_timeout(connection: Connection) -> None:
    with pytest.raises(ArgumentException):
        connection.connect(timeout=-1)


def test_async_wait_handle_is_set_on_completion(connection: Connection) -> None:
    result = connection.begin_connect()
    handle = result.async_wait_handle
    assert handle is result.async_wait_handle
    assert not handle.wait(0)
    connection.complete_pending("connected")
    assert handle.wait(WAIT)


def test_async_wait_handle_created_after_completion_is_already_set(connection: Connection) -> None:
    connection.inline_outcome = "connected"
    result = connection.begin_connect()
    assert result.async_wait_handle.wait(0)


def test_begin_raises_invalid_operation_itself_and_never_calls_back(connection: Connection) -> None:
    connection.terminated = True
    callback = Recorder()
    with pytest.raises(InvalidOperationException, match="terminated"):
        connection.begin_connect(callback)
    drain(connection.dispatcher)
    assert callback.calls == []


def test_blocking_call_raises_invalid_operation_from_the_starter(connection: Connection) -> None:
    connection.terminated = True
    with pytest.raises(InvalidOperationException):
        connection.connect(timeout=WAIT)


def test_callback_can_start_another_operation_on_the_same_object(connection: Connection) -> None:
    second_done = threading.Event()
    outcomes: list[str] = []

    def finally_done(result: AsyncResult[str]) -> None:
        outcomes.append(connection.end_connect(result))
        second_done.set()

    def then_again(result: AsyncResult[str]) -> None:
        outcomes.append(connection.end_connect(result))
        connection.begin_connect(finally_done)

    connection.inline_outcome = "first"
    connection.begin_connect(then_again)  # completed under the object's lock
    assert second_done.wait(WAIT)
    assert outcomes == ["first", "first"]


def test_callback_completed_under_the_owners_lock_can_take_that_lock(connection: Connection) -> None:
    entered = threading.Event()

    def reenter(result: AsyncResult[str]) -> None:
        connection.begin_connect()  # takes the lock that complete_pending held when completing
        entered.set()

    connection.begin_connect(reenter)
    connection.complete_pending("connected")
    assert entered.wait(WAIT)


def test_raising_callback_is_logged_and_later_callbacks_still_run(
    connection: Connection, caplog: pytest.LogCaptureFixture
) -> None:
    def explode(result: AsyncResult[str]) -> None:
        raise RuntimeError("application bug")

    later = Recorder()
    connection.inline_outcome = "connected"
    with caplog.at_level(logging.ERROR, logger="ucma.runtime"):
        connection.begin_connect(explode)
        connection.begin_connect(later)
        assert later.called.wait(WAIT)

    (record,) = [r for r in caplog.records if r.name == "ucma.runtime"]
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], RuntimeError)
    assert "Connection.connect" in record.getMessage()


def test_result_carries_state_owner_and_operation(connection: Connection) -> None:
    token = object()
    result = connection.begin_connect(state=token)
    assert result.async_state is token
    assert result.owner is connection
    assert result.operation_name == "connect"
    assert "Connection.connect" in repr(result)


def test_result_cannot_be_cancelled(connection: Connection) -> None:
    result = connection.begin_connect()
    assert not result.cancel()
    connection.complete_pending("connected")
    assert connection.end_connect(result) == "connected"


def test_done_callbacks_run_on_the_owners_dispatcher(connection: Connection, pool: WorkerPool) -> None:
    ran_on: list[threading.Thread] = []
    done = threading.Event()

    def on_done(future: Future[str]) -> None:
        ran_on.append(threading.current_thread())
        done.set()

    result = connection.begin_connect()
    result.add_done_callback(on_done)
    connection.complete_pending("connected")
    assert done.wait(WAIT)
    assert ran_on[0] in pool.threads


def test_try_set_reports_whether_it_completed(dispatcher: SerialDispatcher) -> None:
    result: AsyncResult[int] = AsyncResult(object(), "probe", dispatcher)
    assert result.try_set_result(1)
    assert not result.try_set_result(2)
    assert not result.try_set_exception(RuntimeError("late"))
    with pytest.raises(InvalidStateError):
        result.set_result(3)
    assert result.result() == 1


def test_complete_with_captures_value_or_exception(dispatcher: SerialDispatcher) -> None:
    ok: AsyncResult[int] = AsyncResult(object(), "probe", dispatcher)
    ok.complete_with(lambda: 42)
    assert ok.result() == 42

    def fail() -> int:
        raise ValueError("bad input")

    failed: AsyncResult[int] = AsyncResult(object(), "probe", dispatcher)
    failed.complete_with(fail)
    assert isinstance(failed.exception(), ValueError)


def test_user_callback_must_be_callable(connection: Connection) -> None:
    with pytest.raises(ArgumentException):
        connection.begin_connect("not callable")  # type: ignore[arg-type]


def test_asyncio_can_await_a_result(connection: Connection) -> None:
    async def main() -> str:
        result = connection.begin_connect()
        threading.Thread(target=connection.complete_pending, args=("awaited",)).start()
        return await asyncio.wrap_future(result)

    assert asyncio.run(main()) == "awaited"
