"""Completing ``concurrent.futures.Future`` objects from the I/O thread, idempotently."""

from __future__ import annotations

import concurrent.futures
import contextlib
from typing import Any, TypeVar

_T = TypeVar("_T")


def settle(future: concurrent.futures.Future[_T], result: _T) -> None:
    """Set ``result`` unless the future is already done (or was cancelled by its owner)."""
    if future.done():
        return
    with contextlib.suppress(concurrent.futures.InvalidStateError):
        future.set_result(result)


def fail(future: concurrent.futures.Future[Any], exc: BaseException) -> None:
    """Set ``exc`` unless the future is already done (or was cancelled by its owner)."""
    if future.done():
        return
    with contextlib.suppress(concurrent.futures.InvalidStateError):
        future.set_exception(exc)


def copy_outcome(source: concurrent.futures.Future[_T], target: concurrent.futures.Future[_T]) -> None:
    """Complete ``target`` the way the (done) ``source`` completed."""
    exc = source.exception()
    if exc is not None:
        fail(target, exc)
    else:
        settle(target, source.result())
