"""The RegistrationManager: one thread, due-time order, cancellation, hand-over to an executor."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from ucma.runtime.registration_manager import RegistrationManager


class ManualClock:
    """A clock the test moves; the manager's waits are woken by scheduling."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_refreshes_run_in_due_order_on_the_given_executor() -> None:
    manager = RegistrationManager("t")
    manager.start()
    ran: list[str] = []
    threads: set[str] = set()
    done = threading.Event()

    def executor(fn: Callable[[], None]) -> None:
        threads.add(threading.current_thread().name)
        fn()

    def record(name: str) -> Callable[[], None]:
        def run() -> None:
            ran.append(name)
            if len(ran) == 3:
                done.set()

        return run

    manager.schedule(0.06, record("late"), executor)
    manager.schedule(0.0, record("now"), executor)
    manager.schedule(0.03, record("soon"), executor)
    assert done.wait(5)
    manager.stop()
    assert ran == ["now", "soon", "late"]
    assert threads == {"ucma-registration-t"}


def test_cancelled_refresh_never_runs() -> None:
    clock = ManualClock()
    manager = RegistrationManager("c", clock=clock)
    manager.start()
    ran: list[str] = []
    finished = threading.Event()
    handle = manager.schedule(10, lambda: ran.append("cancelled"), lambda fn: fn())
    manager.schedule(20, lambda: (ran.append("kept"), finished.set()), lambda fn: fn())
    handle.cancel()
    clock.now = 30
    manager.schedule(0, lambda: None, lambda fn: fn())  # wakes the thread to look at the new time
    assert finished.wait(5)
    manager.stop()
    assert ran == ["kept"]


def test_one_thread_for_ten_thousand_refreshes() -> None:
    manager = RegistrationManager("many")
    before = threading.active_count()
    manager.start()
    count = 10_000
    seen = threading.Semaphore(0)
    lock = threading.Lock()
    total = [0]

    def tick() -> None:
        with lock:
            total[0] += 1
            if total[0] == count:
                seen.release()

    for i in range(count):
        manager.schedule((i % 50) / 1000, tick, lambda fn: fn())
    assert threading.active_count() == before + 1
    assert seen.acquire(timeout=10)
    manager.stop()


def test_executor_failure_is_logged_and_later_refreshes_still_run(caplog: pytest.LogCaptureFixture) -> None:
    manager = RegistrationManager("err")
    manager.start()
    done = threading.Event()

    def broken(fn: Callable[[], None]) -> None:
        raise RuntimeError("executor gone")

    manager.schedule(0, lambda: None, broken)
    manager.schedule(0.01, done.set, lambda fn: fn())
    assert done.wait(5)
    manager.stop()
    assert any("could not hand over a refresh" in r.getMessage() and r.exc_info for r in caplog.records)


def test_stop_drops_pending_refreshes_and_is_idempotent() -> None:
    manager = RegistrationManager("stop")
    manager.start()
    ran: list[int] = []
    manager.schedule(60, lambda: ran.append(1), lambda fn: fn())
    manager.stop()
    manager.stop()
    assert manager.pending == 0
    assert manager.thread is None
    assert ran == []
