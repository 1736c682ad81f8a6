"""WorkerPool and SerialDispatcher: bounded threads, per-dispatcher order, fairness, shutdown."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from dispatch_helpers import WAIT, blocked, drain

from ucma.runtime import SerialDispatcher, WorkerPool, default_worker_pool
from ucma.signaling.exceptions import ArgumentException, InvalidOperationException


@pytest.fixture
def pool() -> Iterator[WorkerPool]:
    worker_pool = WorkerPool(4, name="test-pool")
    yield worker_pool
    worker_pool.shutdown()






class Countdown:
    """Sets ``done`` after ``count`` calls to :meth:`tick` from any threads."""

    def __init__(self, count: int) -> None:
        self._remaining = count
        self._lock = threading.Lock()
        self.done = threading.Event()

    def tick(self) -> None:
        with self._lock:
            self._remaining -= 1
            if self._remaining == 0:
                self.done.set()


def test_threads_start_lazily_with_names_and_fixed_count() -> None:
    pool = WorkerPool(3, name="lazy")
    try:
        before_first_task = pool.threads
        assert before_first_task == ()
        ran_on: list[threading.Thread] = []
        done = threading.Event()

        def task() -> None:
            ran_on.append(threading.current_thread())
            done.set()

        pool.submit(task)
        assert done.wait(WAIT)
        threads = pool.threads
        assert len(threads) == 3 == pool.max_workers
        assert sorted(t.name for t in threads) == ["lazy-0", "lazy-1", "lazy-2"]
        assert all(t.daemon for t in threads)
        assert ran_on[0] in threads
    finally:
        pool.shutdown()


def test_default_size_is_small() -> None:
    assert 1 <= WorkerPool().max_workers <= 8


def test_pool_needs_at_least_one_thread() -> None:
    with pytest.raises(ArgumentException):
        WorkerPool(0)


def test_thousands_of_dispatchers_share_the_pools_threads(pool: WorkerPool) -> None:
    baseline = threading.active_count()
    dispatchers = [SerialDispatcher(pool, name=f"endpoint-{i}") for i in range(5000)]
    countdown = Countdown(len(dispatchers))
    seen: set[threading.Thread] = set()
    seen_lock = threading.Lock()

    def task() -> None:
        with seen_lock:
            seen.add(threading.current_thread())
        countdown.tick()

    for dispatcher in dispatchers:
        dispatcher.submit(task)
    assert countdown.done.wait(WAIT)

    assert len(pool.threads) == pool.max_workers
    assert seen <= set(pool.threads)
    assert threading.active_count() <= baseline + pool.max_workers


def test_each_dispatcher_runs_its_tasks_in_order_one_at_a_time(pool: WorkerPool) -> None:
    dispatchers = [SerialDispatcher(pool, name=f"d{i}") for i in range(3)]
    producers, per_producer = 4, 500
    log: dict[int, list[tuple[int, int]]] = {i: [] for i in range(len(dispatchers))}
    running = [False] * len(dispatchers)
    overlaps: list[int] = []
    countdown = Countdown(producers * per_producer)

    def make_task(index: int, producer: int, seq: int) -> Callable[[], None]:
        def task() -> None:
            if running[index]:
                overlaps.append(index)
            running[index] = True
            time.sleep(0)  # let other threads run here, so an overlapping run would be seen
            log[index].append((producer, seq))
            running[index] = False
            countdown.tick()

        return task

    start = threading.Event()

    def produce(producer: int) -> None:
        start.wait(WAIT)
        for seq in range(per_producer):
            index = (seq // 10 + producer) % len(dispatchers)  # bursts, so one dispatcher's queue fills up
            dispatchers[index].submit(make_task(index, producer, seq))

    threads = [threading.Thread(target=produce, args=(p,)) for p in range(producers)]
    for thread in threads:
        thread.start()
    start.set()
    for thread in threads:
        thread.join(WAIT)
    assert countdown.done.wait(WAIT)

    assert overlaps == []
    assert sum(len(entries) for entries in log.values()) == producers * per_producer
    for entries in log.values():
        for producer in range(producers):
            sequence = [seq for p, seq in entries if p == producer]
            assert sequence == sorted(sequence)


def test_busy_dispatcher_does_not_starve_another() -> None:
    pool = WorkerPool(1, name="single")
    try:
        busy, other = SerialDispatcher(pool, name="busy"), SerialDispatcher(pool, name="other")
        order: list[str] = []
        countdown = Countdown(1001)

        def record(label: str) -> Callable[[], None]:
            def task() -> None:
                order.append(label)
                countdown.tick()

            return task

        with blocked(busy):
            for _ in range(1000):
                busy.submit(record("busy"))
            other.submit(record("other"))
        assert countdown.done.wait(WAIT)
        assert order.index("other") < 100
    finally:
        pool.shutdown()


def test_raising_task_is_logged_and_the_worker_carries_on(caplog: pytest.LogCaptureFixture) -> None:
    pool = WorkerPool(1, name="survivor")
    try:
        dispatcher = SerialDispatcher(pool, name="d")

        def explode() -> None:
            raise RuntimeError("boom")

        with caplog.at_level(logging.ERROR, logger="ucma.runtime"):
            pool.submit(explode)
            dispatcher.submit(explode)
            drain(dispatcher)
            after = threading.Event()
            pool.submit(after.set)
            assert after.wait(WAIT)

        failures = [r for r in caplog.records if r.name == "ucma.runtime" and r.exc_info]
        assert len(failures) == 2
        assert all(isinstance(r.exc_info[1], RuntimeError) for r in failures if r.exc_info)
        assert len(pool.threads) == 1
        assert pool.threads[0].is_alive()
    finally:
        pool.shutdown()


def test_shutdown_runs_queued_tasks_refuses_new_ones_and_is_idempotent() -> None:
    pool = WorkerPool(2, name="closing")
    dispatcher = SerialDispatcher(pool)
    countdown = Countdown(10)
    with blocked(dispatcher):
        for _ in range(10):
            dispatcher.submit(countdown.tick)
        pool.shutdown(wait=False)
        assert pool.is_shut_down
    pool.shutdown()
    pool.shutdown()

    assert countdown.done.is_set()
    assert not any(t.is_alive() for t in pool.threads)
    with pytest.raises(InvalidOperationException):
        pool.submit(countdown.tick)
    with pytest.raises(InvalidOperationException):
        dispatcher.submit(countdown.tick)


def test_dispatcher_finishes_a_long_queue_while_the_pool_stops() -> None:
    pool = WorkerPool(1, name="stopping")
    dispatcher = SerialDispatcher(pool)
    countdown = Countdown(200)
    with blocked(dispatcher):
        for _ in range(200):  # longer than one turn, so the dispatcher must re-queue itself
            dispatcher.submit(countdown.tick)
        pool.shutdown(wait=False)
    pool.shutdown()
    assert countdown.done.is_set()


def test_shutdown_called_from_a_worker_does_not_wait_for_itself() -> None:
    pool = WorkerPool(2, name="self-stop")
    returned = threading.Event()

    def stop() -> None:
        pool.shutdown(wait=True)
        returned.set()

    pool.submit(stop)
    assert returned.wait(WAIT)
    pool.shutdown()
    assert not any(t.is_alive() for t in pool.threads)


def test_dispatcher_without_pool_uses_the_process_default() -> None:
    assert default_worker_pool() is default_worker_pool()
    dispatcher = SerialDispatcher()
    assert dispatcher.pool is default_worker_pool()
    ran_on: list[threading.Thread] = []
    done = threading.Event()

    def task() -> None:
        ran_on.append(threading.current_thread())
        done.set()

    dispatcher.submit(task)
    assert done.wait(WAIT)
    assert ran_on[0] in default_worker_pool().threads
