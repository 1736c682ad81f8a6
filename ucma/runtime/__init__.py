"""The threaded runtime under UCMA objects: worker pool, serial dispatchers, AsyncResult, events.

Everything an application sees run "later" (completion callbacks, event handlers) runs on a
bounded :class:`WorkerPool`, serialised per owner by a :class:`SerialDispatcher`, and never while
ucma holds one of its locks.
"""

from __future__ import annotations

from ucma.runtime.async_result import AsyncCallback, AsyncOperation, AsyncResult
from ucma.runtime.events import BoundEvent, Event, EventArgs, EventHandler, StateChangedEventArgs
from ucma.runtime.worker_pool import (
    DEFAULT_MAX_WORKERS,
    HasDispatcher,
    SerialDispatcher,
    WorkerPool,
    default_worker_pool,
)

__all__ = [
    "DEFAULT_MAX_WORKERS",
    "AsyncCallback",
    "AsyncOperation",
    "AsyncResult",
    "BoundEvent",
    "Event",
    "EventArgs",
    "EventHandler",
    "HasDispatcher",
    "SerialDispatcher",
    "StateChangedEventArgs",
    "WorkerPool",
    "default_worker_pool",
]
