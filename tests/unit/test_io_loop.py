"""IoLoop: one named thread running callbacks, timers and socket handlers; robust to failures."""

from __future__ import annotations

import logging
import queue
import socket
import threading
from collections.abc import Iterator

import pytest

from ucma.runtime.io_loop import EVENT_READ, IoLoop
from ucma.signaling.exceptions import ArgumentException, InvalidOperationException

WAIT = 5.0


@pytest.fixture
def loop() -> Iterator[IoLoop]:
    io = IoLoop("test")
    io.start()
    yield io
    io.stop()


def run_on(loop: IoLoop, fn: object) -> object:
    """Run ``fn`` on the loop thread and return its result."""
    results: queue.Queue[object] = queue.Queue()
    loop.call_soon(lambda: results.put(fn()))  # type: ignore[operator]
    return results.get(timeout=WAIT)


def test_one_named_daemon_thread_runs_every_callback(loop: IoLoop) -> None:
    seen: queue.Queue[threading.Thread] = queue.Queue()
    for _ in range(3):
        loop.call_soon(lambda: seen.put(threading.current_thread()))
    threads = {seen.get(timeout=WAIT) for _ in range(3)}
    assert threads == {loop.thread}
    assert loop.thread is not None
    assert loop.thread.name == "ucma-io-test"
    assert loop.thread.daemon


def test_callbacks_run_in_submission_order_across_threads(loop: IoLoop) -> None:
    order: list[int] = []
    done = threading.Event()
    for i in range(100):
        loop.call_soon(lambda i=i: order.append(i))  # type: ignore[misc]
    loop.call_soon(done.set)
    assert done.wait(WAIT)
    assert order == list(range(100))


def test_in_loop_thread_is_true_only_on_the_loop(loop: IoLoop) -> None:
    assert not loop.in_loop_thread()
    assert run_on(loop, loop.in_loop_thread) is True


def test_timers_fire_in_due_order_not_submission_order(loop: IoLoop) -> None:
    fired: queue.Queue[str] = queue.Queue()
    loop.call_later(0.06, lambda: fired.put("late"))
    loop.call_later(0.02, lambda: fired.put("early"))
    loop.call_later(0.0, lambda: fired.put("now"))
    assert [fired.get(timeout=WAIT) for _ in range(3)] == ["now", "early", "late"]


def test_cancelled_timer_never_runs(loop: IoLoop) -> None:
    fired: queue.Queue[str] = queue.Queue()
    handle = loop.call_later(0.02, lambda: fired.put("cancelled"))
    handle.cancel()
    handle.cancel()  # idempotent
    loop.call_later(0.05, lambda: fired.put("kept"))
    assert fired.get(timeout=WAIT) == "kept"
    assert fired.empty()
    assert handle.cancelled


def test_many_cancelled_timers_do_not_accumulate(loop: IoLoop) -> None:
    def schedule_and_cancel() -> None:
        for _ in range(2000):
            loop.call_later(60, lambda: None).cancel()

    run_on(loop, schedule_and_cancel)
    # Run one loop iteration so the heap is compacted.
    done = threading.Event()
    loop.call_later(0, done.set)
    assert done.wait(WAIT)
    assert run_on(loop, lambda: loop.pending_timers) == 0
    assert run_on(loop, lambda: len(loop._timers)) == 0


def test_call_later_from_the_loop_thread_works(loop: IoLoop) -> None:
    fired = threading.Event()

    def schedule() -> None:
        assert loop.in_loop_thread()
        loop.call_later(0.01, fired.set)

    loop.call_soon(schedule)
    assert fired.wait(WAIT)


def test_negative_delay_is_refused(loop: IoLoop) -> None:
    with pytest.raises(ArgumentException):
        loop.call_later(-1, lambda: None)


def test_a_raising_callback_is_logged_and_the_loop_goes_on(loop: IoLoop, caplog: pytest.LogCaptureFixture) -> None:
    def boom() -> None:
        raise RuntimeError("boom")

    after = threading.Event()
    with caplog.at_level(logging.ERROR, logger="ucma.runtime"):
        loop.call_soon(boom)
        loop.call_later(0, boom)
        loop.call_soon(after.set)
        assert after.wait(WAIT)
        survived = threading.Event()
        loop.call_later(0.01, survived.set)
        assert survived.wait(WAIT)
    failures = [r for r in caplog.records if r.exc_info is not None and "boom" in str(r.exc_info[1])]
    assert len(failures) == 2


def test_socket_handler_sees_readable_data_and_survives_a_raising_handler(loop: IoLoop) -> None:
    a, b = socket.socketpair()
    a.setblocking(False)
    received: queue.Queue[bytes] = queue.Queue()
    raised = threading.Event()

    def handler(mask: int) -> None:
        assert mask & EVENT_READ
        data = a.recv(100)
        if data == b"raise":
            raised.set()
            raise RuntimeError("handler failed")
        received.put(data)

    run_on(loop, lambda: loop.register(a, EVENT_READ, handler))
    b.sendall(b"raise")
    assert raised.wait(WAIT)
    # The first call raised; the loop keeps watching the socket.
    b.sendall(b"hello")
    assert received.get(timeout=WAIT) == b"hello"
    b.close()


def test_register_off_the_loop_thread_is_refused(loop: IoLoop) -> None:
    a, b = socket.socketpair()
    try:
        with pytest.raises(InvalidOperationException):
            loop.register(a, EVENT_READ, lambda _m: None)
    finally:
        a.close()
        b.close()


def test_stop_closes_registered_sockets_and_joins_the_thread() -> None:
    io = IoLoop("closer")
    io.start()
    a, b = socket.socketpair()
    run_on(io, lambda: io.register(a, EVENT_READ, lambda _m: None))
    thread = io.thread
    assert thread is not None
    io.stop()
    assert not thread.is_alive()
    assert a.fileno() == -1  # closed by stop
    assert io.wait_stopped(0)
    b.close()


def test_stop_is_idempotent_and_the_loop_cannot_restart() -> None:
    io = IoLoop("once")
    io.start()
    io.start()  # a second start is a no-op
    io.stop()
    io.stop()
    assert not io.is_running
    with pytest.raises(InvalidOperationException):
        io.start()


def test_callbacks_after_stop_are_refused_and_queued_ones_still_run() -> None:
    io = IoLoop("drain")
    io.start()
    gate = threading.Event()
    ran: list[str] = []
    started = threading.Event()

    def block() -> None:
        started.set()
        gate.wait(WAIT)

    io.call_soon(block)
    io.call_soon(lambda: ran.append("queued before stop"))
    assert started.wait(WAIT)
    io.stop(timeout=0)  # requested while the first callback blocks; does not wait
    assert io.try_call_soon(lambda: ran.append("after stop")) is False
    gate.set()
    assert io.wait_stopped(WAIT)
    assert ran == ["queued before stop"]


def test_stop_from_the_loop_thread_does_not_deadlock() -> None:
    io = IoLoop("self-stop")
    io.start()
    io.call_soon(io.stop)
    assert io.wait_stopped(WAIT)
    assert io.thread is not None
    io.thread.join(WAIT)
    assert not io.thread.is_alive()


def test_callbacks_queued_before_start_run_once_started() -> None:
    io = IoLoop("early")
    ran = threading.Event()
    io.call_soon(ran.set)
    io.start()
    try:
        assert ran.wait(WAIT)
    finally:
        io.stop()


def test_cross_thread_calls_from_many_threads_all_run(loop: IoLoop) -> None:
    count = [0]
    done = threading.Event()
    total = 8 * 500

    def bump() -> None:
        count[0] += 1  # runs on the loop thread only, so no lock is needed
        if count[0] == total:
            done.set()

    def producer() -> None:
        for _ in range(500):
            loop.call_soon(bump)

    threads = [threading.Thread(target=producer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT)
    assert done.wait(WAIT)
    assert count[0] == total
