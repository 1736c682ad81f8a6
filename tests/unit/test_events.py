"""C#-style events: += / -=, per-instance handlers, ordered delivery on the owner's dispatcher."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import Any

import attrs
import pytest
from dispatch_helpers import WAIT, blocked, drain

from ucma.runtime import (
    AsyncOperation,
    AsyncResult,
    Event,
    EventArgs,
    SerialDispatcher,
    StateChangedEventArgs,
    WorkerPool,
)
from ucma.signaling.exceptions import ArgumentException, ArgumentNullException


@attrs.frozen
class RingEventArgs(EventArgs):
    """Event data of :attr:`Phone.ringing`."""

    caller: str


_ANSWER: AsyncOperation[str] = AsyncOperation("answer")


class Phone:
    """A UCMA-style owner with two events and an operation that fires one before completing."""

    state_changed: Event[StateChangedEventArgs[str]] = Event()
    ringing: Event[RingEventArgs] = Event()

    def __init__(self, dispatcher: SerialDispatcher) -> None:
        self.dispatcher = dispatcher
        self.state = "idle"
        self.lock = threading.Lock()

    def move_to(self, state: str) -> None:
        with self.lock:
            previous, self.state = self.state, state
            self.state_changed.fire(self, StateChangedEventArgs(previous, state))

    def begin_answer(self, user_callback: Any = None) -> AsyncResult[str]:
        return _ANSWER.begin(self, self._start_answer, user_callback)

    def _start_answer(self, result: AsyncResult[str]) -> None:
        self.move_to("answered")
        result.set_result("answered")


class Recorder:
    """An event handler that records ``(sender, args, thread)`` for each call."""

    def __init__(self, expected: int = 1) -> None:
        self.calls: list[tuple[object, EventArgs, threading.Thread]] = []
        self._expected = expected
        self.done = threading.Event()

    def __call__(self, sender: object, args: EventArgs) -> None:
        self.calls.append((sender, args, threading.current_thread()))
        if len(self.calls) >= self._expected:
            self.done.set()

    @property
    def states(self) -> list[str]:
        return [args.state for _, args, _ in self.calls if isinstance(args, StateChangedEventArgs)]


@pytest.fixture
def pool() -> Iterator[WorkerPool]:
    worker_pool = WorkerPool(4, name="test-pool")
    yield worker_pool
    worker_pool.shutdown()


@pytest.fixture
def phone(pool: WorkerPool) -> Phone:
    return Phone(SerialDispatcher(pool, name="phone"))






def test_handler_gets_sender_and_args_on_a_pool_thread(phone: Phone, pool: WorkerPool) -> None:
    handler = Recorder()
    phone.state_changed += handler
    phone.move_to("ringing")
    assert handler.done.wait(WAIT)

    sender, args, thread = handler.calls[0]
    assert sender is phone
    assert args == StateChangedEventArgs("idle", "ringing")
    assert thread in pool.threads


def test_state_changed_event_args_are_immutable_values() -> None:
    args = StateChangedEventArgs(previous_state=1, state=2)
    assert (args.previous_state, args.state) == (1, 2)
    assert isinstance(args, EventArgs)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        args.state = 3  # type: ignore[misc]


def test_plus_equals_adds_and_minus_equals_removes(phone: Phone) -> None:
    first, second = Recorder(), Recorder()
    phone.state_changed += first
    phone.state_changed += second
    assert list(phone.state_changed.handlers) == [first, second]

    phone.state_changed -= first
    phone.state_changed -= Recorder()  # never added: no effect
    assert list(phone.state_changed.handlers) == [second]

    phone.move_to("busy")
    drain(phone.dispatcher)
    assert first.calls == []
    assert second.states == ["busy"]


def test_a_handler_added_twice_runs_twice_until_removed_once(phone: Phone) -> None:
    handler = Recorder()
    phone.state_changed += handler
    phone.state_changed += handler
    phone.move_to("one")
    drain(phone.dispatcher)
    phone.state_changed -= handler
    phone.move_to("two")
    drain(phone.dispatcher)
    assert handler.states == ["one", "one", "two"]


def test_bound_methods_can_be_removed_with_a_fresh_reference(phone: Phone) -> None:
    class Listener:
        def __init__(self) -> None:
            self.states: list[str] = []

        def on_state_changed(self, sender: object, args: StateChangedEventArgs[str]) -> None:
            self.states.append(args.state)

    listener = Listener()
    phone.state_changed += listener.on_state_changed
    phone.state_changed -= listener.on_state_changed
    assert phone.state_changed.handlers == ()


def test_handlers_belong_to_one_instance(pool: WorkerPool) -> None:
    dispatcher = SerialDispatcher(pool)
    left, right = Phone(dispatcher), Phone(dispatcher)
    handler = Recorder()
    left.state_changed += handler
    right.move_to("ringing")
    left.move_to("busy")
    drain(dispatcher)
    assert [sender for sender, _, _ in handler.calls] == [left]
    assert right.state_changed.handlers == ()
    assert left.ringing.handlers == ()


def test_class_access_gives_the_descriptor_and_assignment_is_refused(phone: Phone) -> None:
    assert isinstance(Phone.state_changed, Event)
    with pytest.raises(AttributeError, match=r"\+="):
        phone.state_changed = Phone(phone.dispatcher).state_changed


def test_handler_must_be_callable(phone: Phone) -> None:
    with pytest.raises(ArgumentNullException):
        phone.state_changed += None  # type: ignore[arg-type]
    with pytest.raises(ArgumentException):
        phone.state_changed += "handler"  # type: ignore[arg-type]


def test_owner_without_instance_dict_is_rejected(pool: WorkerPool) -> None:
    class Slotted:
        __slots__ = ("dispatcher",)
        changed: Event[EventArgs] = Event()

        def __init__(self, dispatcher: SerialDispatcher) -> None:
            self.dispatcher = dispatcher

    with pytest.raises(TypeError, match="__dict__"):
        Slotted(SerialDispatcher(pool)).changed.handlers  # noqa: B018


def test_events_of_each_owner_arrive_in_order_while_owners_fire_concurrently(pool: WorkerPool) -> None:
    owners = [Phone(SerialDispatcher(pool, name=f"phone-{i}")) for i in range(8)]
    per_owner = 300
    active = dict.fromkeys(range(len(owners)), False)
    overlaps: list[int] = []
    recorders: list[Recorder] = []
    for index, owner in enumerate(owners):
        recorder = Recorder(expected=per_owner)

        def handler(
            sender: object, args: StateChangedEventArgs[str], index: int = index, recorder: Recorder = recorder
        ) -> None:
            if active[index]:
                overlaps.append(index)
            active[index] = True
            recorder(sender, args)
            active[index] = False

        owner.state_changed += handler
        recorders.append(recorder)

    start = threading.Event()

    def fire_all(owner: Phone) -> None:
        start.wait(WAIT)
        for step in range(per_owner):
            owner.move_to(str(step))

    threads = [threading.Thread(target=fire_all, args=(owner,)) for owner in owners]
    for thread in threads:
        thread.start()
    start.set()
    for thread in threads:
        thread.join(WAIT)

    for recorder in recorders:
        assert recorder.done.wait(WAIT)
        assert recorder.states == [str(step) for step in range(per_owner)]
    assert overlaps == []
    assert len(pool.threads) == pool.max_workers


def test_raising_handler_is_logged_and_delivery_continues(phone: Phone, caplog: pytest.LogCaptureFixture) -> None:
    def broken(sender: object, args: StateChangedEventArgs[str]) -> None:
        raise RuntimeError("handler bug")

    healthy = Recorder(expected=2)
    phone.state_changed += broken
    phone.state_changed += healthy
    with caplog.at_level(logging.ERROR, logger="ucma.runtime"):
        phone.move_to("one")
        phone.move_to("two")
        assert healthy.done.wait(WAIT)

    assert healthy.states == ["one", "two"]
    records = [r for r in caplog.records if r.name == "ucma.runtime"]
    assert len(records) == 2
    assert all(r.exc_info is not None and isinstance(r.exc_info[1], RuntimeError) for r in records)
    assert "Phone.state_changed" in records[0].getMessage()


def test_handler_added_during_delivery_sees_only_later_events(phone: Phone) -> None:
    late = Recorder()

    def subscribe_late(sender: object, args: StateChangedEventArgs[str]) -> None:
        phone.state_changed -= subscribe_late
        phone.state_changed += late

    phone.state_changed += subscribe_late
    phone.move_to("one")
    phone.move_to("two")
    assert late.done.wait(WAIT)
    drain(phone.dispatcher)
    assert late.states == ["two"]


def test_delivery_uses_the_handlers_registered_when_it_runs(phone: Phone) -> None:
    early, late = Recorder(), Recorder()
    phone.state_changed += early
    with blocked(phone.dispatcher):
        phone.move_to("ringing")  # queued behind the blocking task
        phone.state_changed -= early
        phone.state_changed += late
    assert late.done.wait(WAIT)
    drain(phone.dispatcher)
    assert early.calls == []
    assert late.states == ["ringing"]


def test_handler_may_take_the_lock_held_while_firing(phone: Phone) -> None:
    took_lock = threading.Event()

    def needs_lock(sender: object, args: StateChangedEventArgs[str]) -> None:
        if phone.lock.acquire(timeout=WAIT):
            phone.lock.release()
            took_lock.set()

    phone.state_changed += needs_lock
    phone.move_to("ringing")  # fires while holding phone.lock
    assert took_lock.wait(WAIT)


def test_event_fired_by_an_operation_precedes_its_completion_callback(phone: Phone) -> None:
    order: list[str] = []
    done = threading.Event()
    phone.state_changed += lambda sender, args: order.append(f"state {args.state}")

    def on_answered(result: AsyncResult[str]) -> None:
        order.append(f"callback {result.result()}")
        done.set()

    phone.begin_answer(on_answered)
    assert done.wait(WAIT)
    assert order == ["state answered", "callback answered"]


def test_concurrent_subscription_and_unsubscription_lose_nothing(phone: Phone) -> None:
    handlers = [Recorder() for _ in range(800)]
    start = threading.Event()

    def subscribe(chunk: list[Recorder]) -> None:
        start.wait(WAIT)
        for handler in chunk:
            phone.state_changed += handler

    def unsubscribe(chunk: list[Recorder]) -> None:
        start.wait(WAIT)
        for handler in chunk:
            phone.state_changed -= handler

    for action in (subscribe, unsubscribe):
        start.clear()
        threads = [threading.Thread(target=action, args=(handlers[i::8],)) for i in range(8)]
        for thread in threads:
            thread.start()
        start.set()
        for thread in threads:
            thread.join(WAIT)
        if action is subscribe:
            assert sorted(map(id, phone.state_changed.handlers)) == sorted(map(id, handlers))
    assert phone.state_changed.handlers == ()
