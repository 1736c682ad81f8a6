"""C#-style events for UCMA objects: ``obj.state_changed += handler``, ``-=``, handlers get ``(sender, args)``.

Declare an :class:`Event` on a class whose instances provide ``dispatcher``
(:class:`~ucma.runtime.worker_pool.HasDispatcher`)::

    class UserEndpoint:
        state_changed: Event[LocalEndpointStateChangedEventArgs] = Event()

        def _set_state(self, new_state):
            ...
            self.state_changed.fire(self, LocalEndpointStateChangedEventArgs(old_state, new_state))

Each instance has its own handler list.  Firing queues one delivery on the owner's dispatcher,
so an owner's events (and its operations' callbacks) reach handlers in the order they were fired,
never on the firing thread and never under the firer's locks.  As in UCMA, a delivery calls the
handlers registered when it runs, so a handler added right after an operation started still sees
the events that operation fires.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar, overload

import attrs

from ucma.runtime.worker_pool import HasDispatcher, describe_callable
from ucma.signaling.exceptions import ArgumentException, ArgumentNullException

__all__ = ["BoundEvent", "Event", "EventArgs", "EventHandler", "StateChangedEventArgs"]

_log = logging.getLogger("ucma.runtime")


class EventArgs:
    """Base class of event data (UCMA ``EventArgs``); subclasses add read-only fields."""

    __slots__ = ()


S = TypeVar("S")
A = TypeVar("A", bound=EventArgs)


@attrs.frozen
class StateChangedEventArgs(EventArgs, Generic[S]):
    """An object moved from ``previous_state`` to ``state`` (UCMA ``StateChangedEventArgs<T>``)."""

    previous_state: S
    state: S


EventHandler = Callable[[Any, A], object]
"""A handler: ``handler(sender, args)``; its return value is ignored."""

_handlers_lock = threading.Lock()
"""Guards every handler list; held only to swap a tuple, never while a handler runs."""


class BoundEvent(Generic[A]):
    """One object's event: its handler list, and :meth:`fire` for the owner to raise it."""

    def __init__(self, owner: HasDispatcher, name: str) -> None:
        self._owner = owner
        self._name = name
        self._handlers: tuple[EventHandler[A], ...] = ()

    @property
    def name(self) -> str:
        """The attribute name of the event on its owner."""
        return self._name

    @property
    def handlers(self) -> tuple[EventHandler[A], ...]:
        """A snapshot of the subscribed handlers, in subscription order."""
        return self._handlers

    def add(self, handler: EventHandler[A]) -> None:
        """Subscribe ``handler``; subscribing it twice makes it run twice per event, as in C#."""
        if handler is None:
            raise ArgumentNullException("handler")
        if not callable(handler):
            raise ArgumentException("an event handler must be callable", "handler")
        with _handlers_lock:
            self._handlers = (*self._handlers, handler)

    def remove(self, handler: EventHandler[A]) -> None:
        """Unsubscribe the most recent subscription equal to ``handler``; no-op if there is none."""
        with _handlers_lock:
            handlers = self._handlers
            for index in range(len(handlers) - 1, -1, -1):
                if handlers[index] == handler:
                    self._handlers = handlers[:index] + handlers[index + 1 :]
                    return

    def __iadd__(self, handler: EventHandler[A]) -> BoundEvent[A]:
        self.add(handler)
        return self

    def __isub__(self, handler: EventHandler[A]) -> BoundEvent[A]:
        self.remove(handler)
        return self

    def fire(self, sender: object, args: A) -> None:
        """Queue delivery of ``(sender, args)`` to the handlers, on the owner's dispatcher."""
        self._owner.dispatcher.submit(lambda: self._deliver(sender, args))

    def _deliver(self, sender: object, args: A) -> None:
        for handler in self._handlers:
            try:
                handler(sender, args)
            except Exception:
                _log.exception(
                    "handler %s of %s.%s raised",
                    describe_callable(handler),
                    type(self._owner).__name__,
                    self._name,
                )

    def __repr__(self) -> str:
        return f"<BoundEvent {type(self._owner).__name__}.{self._name} handlers={len(self._handlers)}>"


class Event(Generic[A]):
    """Descriptor declaring an event on a class; instance access gives that instance's :class:`BoundEvent`.

    The bound event lives in the instance ``__dict__`` under the event's own name (this data
    descriptor shadows it), so owner classes need a ``__dict__``.  Assigning anything but the
    result of ``+=``/``-=`` raises AttributeError.
    """

    def __init__(self) -> None:
        self._name = ""

    def __set_name__(self, owner: type[Any], name: str) -> None:
        self._name = name

    @overload
    def __get__(self, instance: None, owner: type[Any] | None = None) -> Event[A]: ...

    @overload
    def __get__(self, instance: HasDispatcher, owner: type[Any] | None = None) -> BoundEvent[A]: ...

    def __get__(self, instance: HasDispatcher | None, owner: type[Any] | None = None) -> Event[A] | BoundEvent[A]:
        if instance is None:
            return self
        return self._bound(instance)

    def __set__(self, instance: HasDispatcher, value: BoundEvent[A]) -> None:
        if value is not self._bound(instance):
            raise AttributeError(f"event {self._name!r} can only be changed with += and -=")

    def _bound(self, instance: HasDispatcher) -> BoundEvent[A]:
        try:
            storage = vars(instance)
        except TypeError:
            raise TypeError(f"{type(instance).__name__} needs a __dict__ to hold event {self._name!r}") from None
        bound: BoundEvent[A] | None = storage.get(self._name)
        if bound is None:
            # setdefault is atomic, so racing first accesses agree on one BoundEvent.
            bound = storage.setdefault(self._name, BoundEvent(instance, self._name))
        return bound

    def __repr__(self) -> str:
        return f"<Event {self._name!r}>"
