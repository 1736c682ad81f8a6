"""A fixed-size pool of worker threads and serial dispatchers that share it.

UCMA raises every event and completion callback on worker threads, serialised per queue (one queue
per platform, endpoint or conversation).  :class:`WorkerPool` owns the threads; a
:class:`SerialDispatcher` is such a queue: its tasks run one at a time in submission order on
whichever pool thread is free, so any number of dispatchers share the pool's few threads.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import deque
from collections.abc import Callable
from typing import Protocol

from ucma.signaling.exceptions import ArgumentException, InvalidOperationException

__all__ = [
    "DEFAULT_MAX_WORKERS",
    "HasDispatcher",
    "SerialDispatcher",
    "WorkerPool",
    "default_worker_pool",
    "describe_callable",
]

_log = logging.getLogger("ucma.runtime")

DEFAULT_MAX_WORKERS = 4
"""Threads in a pool created without an explicit size."""

Task = Callable[[], object]


def describe_callable(fn: object) -> str:
    """A name for ``fn`` fit for logs: its qualified name, never a repr that could show bound arguments."""
    name = getattr(fn, "__qualname__", None)
    return name if isinstance(name, str) else type(fn).__qualname__


class WorkerPool:
    """A fixed number of named daemon threads running submitted tasks in FIFO order.

    Threads start on the first :meth:`submit` and never grow in number, whatever the load or the
    number of dispatchers on top.  A task that raises is logged on ``ucma.runtime``; the worker
    goes on with the next task.
    """

    def __init__(self, max_workers: int = DEFAULT_MAX_WORKERS, name: str = "ucma-worker") -> None:
        if max_workers < 1:
            raise ArgumentException("a worker pool needs at least one thread", "max_workers")
        self._max_workers = max_workers
        self._name = name
        self._queue: queue.SimpleQueue[Task | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._shut_down = False

    @property
    def max_workers(self) -> int:
        """How many threads the pool runs once started."""
        return self._max_workers

    @property
    def name(self) -> str:
        """Prefix of the worker thread names (``<name>-0``, ``<name>-1``, ...)."""
        return self._name

    @property
    def threads(self) -> tuple[threading.Thread, ...]:
        """The worker threads started so far (empty until the first task is submitted)."""
        with self._lock:
            return tuple(self._threads)

    @property
    def is_shut_down(self) -> bool:
        """True once :meth:`shutdown` has been called; the pool then refuses new tasks."""
        return self._shut_down

    def submit(self, task: Task) -> None:
        """Queue ``task`` to run on a worker thread; raises InvalidOperationException after shutdown."""
        with self._lock:
            if self._shut_down:
                raise InvalidOperationException(f"worker pool {self._name!r} is shut down")
            if not self._threads:
                self._start_threads()
            # Queued under the lock so shutdown's stop markers always come after every accepted task.
            self._queue.put(task)

    def shutdown(self, wait: bool = True) -> None:
        """Stop accepting tasks; workers finish what is queued, then exit.  Safe to call repeatedly.

        With ``wait`` the call returns once all workers have exited (a worker calling it does not
        wait for itself).
        """
        with self._lock:
            if not self._shut_down:
                self._shut_down = True
                for _ in self._threads:
                    self._queue.put(None)
            threads = list(self._threads)
        if wait:
            current = threading.current_thread()
            for thread in threads:
                if thread is not current:
                    thread.join()

    def _start_threads(self) -> None:
        for index in range(self._max_workers):
            thread = threading.Thread(target=self._work, name=f"{self._name}-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def _work(self) -> None:
        while True:
            task = self._queue.get()
            if task is None:
                return
            try:
                task()
            except Exception:
                _log.exception("task %s on worker pool %r raised", describe_callable(task), self._name)
            # Drop the reference now rather than when the next task arrives.
            del task

    def __repr__(self) -> str:
        state = "shut down" if self._shut_down else f"{len(self._threads)}/{self._max_workers} threads"
        return f"<WorkerPool {self._name!r} {state}>"


class SerialDispatcher:
    """A queue of tasks run one at a time, in submission order, on a shared :class:`WorkerPool`.

    No thread is pinned: while the queue has work, one pool task drains it a batch at a time and
    re-queues itself behind other dispatchers' work, so busy dispatchers cannot starve idle ones.
    A task that raises is logged on ``ucma.runtime`` and the next task runs.
    """

    _BATCH = 32
    """Tasks run per turn on a pool thread before giving other dispatchers a go."""

    def __init__(self, pool: WorkerPool | None = None, name: str = "") -> None:
        self._pool = pool if pool is not None else default_worker_pool()
        self._name = name
        self._lock = threading.Lock()
        self._tasks: deque[Task] = deque()
        self._scheduled = False

    @property
    def pool(self) -> WorkerPool:
        """The pool whose threads run this dispatcher's tasks."""
        return self._pool

    @property
    def name(self) -> str:
        """A label for logs and reprs."""
        return self._name

    def submit(self, task: Task) -> None:
        """Queue ``task`` behind this dispatcher's earlier tasks; raises InvalidOperationException
        if the pool is shut down."""
        with self._lock:
            self._tasks.append(task)
            if self._scheduled:
                return
            try:
                self._pool.submit(self._drain)
            except InvalidOperationException:
                self._tasks.pop()
                raise
            self._scheduled = True

    def _drain(self) -> None:
        budget = self._BATCH
        while True:
            with self._lock:
                if not self._tasks:
                    self._scheduled = False
                    return
                if budget == 0:
                    try:
                        self._pool.submit(self._drain)
                    except InvalidOperationException:
                        budget = -1  # pool is stopping: finish this queue on the current thread
                    else:
                        return
                task = self._tasks.popleft()
            if budget > 0:
                budget -= 1
            try:
                task()
            except Exception:
                _log.exception("task %s on dispatcher %r raised", describe_callable(task), self._name)
            del task

    def __repr__(self) -> str:
        return f"<SerialDispatcher {self._name!r} on {self._pool!r}>"


class HasDispatcher(Protocol):
    """An object whose events and completion callbacks run on its own serial dispatcher.

    UCMA objects (platform, endpoint, conversation) provide ``dispatcher``; :class:`Event` and
    :class:`AsyncOperation` read it each time they queue work, so an object may switch from the
    default pool to its platform's pool when attached.
    """

    @property
    def dispatcher(self) -> SerialDispatcher:
        """The queue that runs this object's events and callbacks."""
        ...


_default_pool: WorkerPool | None = None
_default_pool_lock = threading.Lock()


def default_worker_pool() -> WorkerPool:
    """The process-wide pool for objects not attached to a platform (created on first use,
    re-created if it was shut down)."""
    global _default_pool  # noqa: PLW0603  (one lazily created pool per process)
    with _default_pool_lock:
        if _default_pool is None or _default_pool.is_shut_down:
            _default_pool = WorkerPool(name="ucma-default")
        return _default_pool
