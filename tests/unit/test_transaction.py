"""RFC 3261 section 17 transaction state machines, driven by a virtual clock.

:class:`FakeClock` plays the runtime: it applies StartTimer/CancelTimer actions, advances
virtual time and fires due timers in order, logging every action with the time it happened.
Expected schedules are the RFC's (T1 = 0.5 s, T2 = 4 s, T4 = 5 s unless a test says otherwise).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ucma.signaling.exceptions import ArgumentException, InvalidOperationException
from ucma.signaling.sip import (
    NameAddress,
    Parameters,
    SipRequest,
    SipResponse,
    Via,
    make_request,
    make_response,
    new_branch,
    new_call_id,
    new_tag,
    parse_message,
)
from ucma.signaling.transaction import (
    CancelTimer,
    DeliverRequest,
    DeliverResponse,
    InviteClientTransaction,
    InviteServerTransaction,
    NonInviteClientTransaction,
    NonInviteServerTransaction,
    SendMessage,
    StartTimer,
    Terminated,
    Transaction,
    TransactionAction,
    TransactionState,
    TransactionTimedOut,
    TransportFailed,
    create_client_transaction,
    create_server_transaction,
    make_non_2xx_ack,
)
from ucma.signaling.transaction_timers import TimerName, TimerSettings

T1, T2, T4 = 0.5, 4.0, 5.0
TIMEOUT = 64 * T1


# --- helpers ------------------------------------------------------------------------------------


def wire_request(message: SipRequest) -> SipRequest:
    """``message`` as the peer receives it: serialised and parsed again."""
    parsed = parse_message(message.to_bytes())
    assert isinstance(parsed, SipRequest)
    return parsed


def wire_response(message: SipResponse) -> SipResponse:
    """``message`` as the peer receives it: serialised and parsed again."""
    parsed = parse_message(message.to_bytes())
    assert isinstance(parsed, SipResponse)
    return parsed


def request(method: str = "REGISTER", *, routes: Sequence[str] = ()) -> SipRequest:
    """A request as a UAC builds it, after a trip over the wire."""
    built = make_request(
        method,
        "sip:bob@example.com",
        via=Via("UDP", "192.0.2.10", 5060, Parameters([("branch", new_branch())])),
        from_header=NameAddress("sip:alice@example.com", parameters=Parameters([("tag", new_tag())])),
        to_header=NameAddress("sip:bob@example.com"),
        call_id=new_call_id("192.0.2.10"),
        cseq=7,
        headers=[("Route", route) for route in routes],
    )
    return wire_request(built)


def response(req: SipRequest, status: int, *, to_tag: str = "uas-tag-1") -> SipResponse:
    """The UAS's answer to ``req`` as the UAC receives it."""
    return wire_response(make_response(req, status, to_tag=to_tag))


class FakeClock:
    """Virtual time for one transaction: arms/disarms timers from actions and fires them in due order."""

    def __init__(self, transaction: Transaction) -> None:
        self.transaction = transaction
        self.now = 0.0
        self.log: list[tuple[float, TransactionAction]] = []
        self._timers: dict[str, tuple[float, int, int]] = {}  # name -> (due, arming order, generation)
        self._armings = 0

    def apply(self, actions: list[TransactionAction]) -> list[TransactionAction]:
        """Record ``actions`` at the current time and apply the timer ones; return them."""
        for action in actions:
            self.log.append((self.now, action))
            if isinstance(action, StartTimer):
                assert action.delay_seconds > 0, "zero-length timers should end the transaction at once"
                self._armings += 1
                self._timers[action.name] = (self.now + action.delay_seconds, self._armings, action.generation)
            elif isinstance(action, CancelTimer):
                assert action.name in self._timers, f"cancelled timer {action.name} is not armed"
                del self._timers[action.name]
        return actions

    def advance(self, seconds: float) -> None:
        """Move time forward, firing every timer that falls due on the way, earliest first."""
        target = self.now + seconds
        while self._timers:
            name, (due, _, generation) = min(self._timers.items(), key=lambda item: item[1][:2])
            if due > target + 1e-9:
                break
            del self._timers[name]
            self.now = due
            self.apply(self.transaction.timer_fired(_timer(name), generation))
        self.now = target

    def advance_to(self, when: float) -> None:
        """Move time forward to absolute time ``when``."""
        self.advance(when - self.now)

    @property
    def pending(self) -> set[str]:
        """Timers armed in the runtime's view."""
        return set(self._timers)

    def sent(self) -> list[tuple[float, SipRequest | SipResponse]]:
        """Every SendMessage so far, with its time."""
        return [(when, action.message) for when, action in self.log if isinstance(action, SendMessage)]

    def send_times(self) -> list[float]:
        """When each SendMessage happened."""
        return [when for when, _ in self.sent()]

    def delays(self, name: str) -> list[float]:
        """The delay of every StartTimer for ``name``, in order."""
        return [a.delay_seconds for _, a in self.log if isinstance(a, StartTimer) and a.name == name]

    def starts(self) -> list[tuple[str, float]]:
        """Every StartTimer so far as (name, delay)."""
        return [(a.name, a.delay_seconds) for _, a in self.log if isinstance(a, StartTimer)]

    def times_of(self, kind: type) -> list[float]:
        """When each action of type ``kind`` happened."""
        return [when for when, action in self.log if isinstance(action, kind)]


def _timer(name: str) -> TimerName:
    names: dict[str, TimerName] = {n: n for n in ("A", "B", "D", "E", "F", "G", "H", "I", "J", "K")}
    return names[name]


def timers_started(actions: Sequence[TransactionAction]) -> list[tuple[str, float]]:
    """The StartTimer actions among ``actions`` as (name, delay)."""
    return [(a.name, a.delay_seconds) for a in actions if isinstance(a, StartTimer)]


def timers_cancelled(actions: Sequence[TransactionAction]) -> set[str]:
    """The names of the CancelTimer actions among ``actions``."""
    return {a.name for a in actions if isinstance(a, CancelTimer)}


def started(transaction: Transaction) -> FakeClock:
    """A clock for ``transaction`` with its start() actions applied at time 0."""
    clock = FakeClock(transaction)
    clock.apply(transaction.start())
    return clock


def cumulative(start: float, intervals: Sequence[float]) -> list[float]:
    """Times at which timers with successive ``intervals`` fire, starting at ``start``."""
    out = []
    for interval in intervals:
        start += interval
        out.append(start)
    return out


def capped_doubling(first: float, cap: float, until: float) -> list[float]:
    """RFC 3261 E/G intervals (doubling from ``first``, capped at ``cap``) whose firings come before ``until``."""
    intervals, elapsed, interval = [], 0.0, first
    while elapsed + interval < until:
        intervals.append(interval)
        elapsed += interval
        interval = min(2 * interval, cap)
    return intervals


def assert_ended_cleanly(clock: FakeClock) -> None:
    """Terminated exactly once, as the last action, with no timer left armed on either side."""
    assert clock.transaction.state is TransactionState.TERMINATED
    assert [type(a) for _, a in clock.log].count(Terminated) == 1
    assert isinstance(clock.log[-1][1], Terminated)
    assert clock.pending == set()
    assert clock.transaction.armed_timers == frozenset()


# --- timer settings -----------------------------------------------------------------------------


def test_default_timer_values_are_rfc3261s() -> None:
    settings = TimerSettings()
    assert (settings.t1, settings.t2, settings.t4) == (T1, T2, T4)
    assert settings.transaction_timeout == 32.0
    assert (settings.timer_d(reliable=False), settings.timer_d(reliable=True)) == (32.0, 0.0)
    assert (settings.timer_j(reliable=False), settings.timer_j(reliable=True)) == (32.0, 0.0)
    assert (settings.timer_k(reliable=False), settings.timer_k(reliable=True)) == (T4, 0.0)
    assert (settings.timer_i(reliable=False), settings.timer_i(reliable=True)) == (T4, 0.0)


def test_derived_timers_follow_configured_t1_and_t4() -> None:
    settings = TimerSettings(t1=0.25, t2=2.0, t4=3.0)
    assert settings.transaction_timeout == 16.0
    assert settings.timer_j(reliable=False) == 16.0
    assert settings.timer_k(reliable=False) == 3.0
    assert settings.next_timer_e(1.5) == 2.0
    assert settings.next_timer_a(8.0) == 16.0


@pytest.mark.parametrize(
    "kwargs",
    [{"t1": 0}, {"t1": -1.0}, {"t2": math.nan}, {"t4": math.inf}, {"t1": 5.0, "t2": 4.0}, {"timer_d_unreliable": -1}],
)
def test_timer_settings_reject_unusable_values(kwargs: dict[str, float]) -> None:
    with pytest.raises(ArgumentException):
        TimerSettings(**kwargs)


# --- non-INVITE client (RFC 3261 section 17.1.2) ------------------------------------------------


def test_non_invite_client_retransmits_on_timer_e_and_times_out_on_timer_f() -> None:
    req = request()
    tx = NonInviteClientTransaction(req, reliable=False)
    clock = started(tx)
    assert tx.state is TransactionState.TRYING

    clock.advance(100)

    expected_intervals = capped_doubling(T1, T2, TIMEOUT)
    assert expected_intervals[:6] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert clock.delays("E")[: len(expected_intervals)] == expected_intervals
    assert clock.send_times() == [0.0, *cumulative(0.0, expected_intervals)]
    assert all(message is req for _, message in clock.sent())
    assert clock.times_of(TransactionTimedOut) == [TIMEOUT]
    assert clock.times_of(Terminated) == [TIMEOUT]
    assert_ended_cleanly(clock)


def test_non_invite_client_on_reliable_transport_sends_once_and_times_out() -> None:
    tx = NonInviteClientTransaction(request(), reliable=True)
    clock = started(tx)

    clock.advance(100)

    assert clock.send_times() == [0.0]
    assert clock.delays("E") == []
    assert clock.delays("F") == [TIMEOUT]
    assert clock.times_of(TransactionTimedOut) == [TIMEOUT]
    assert_ended_cleanly(clock)


def test_provisional_response_moves_to_proceeding_where_e_retransmits_every_t2() -> None:
    req = request()
    tx = NonInviteClientTransaction(req, reliable=False)
    clock = started(tx)
    clock.advance(0.7)  # first retransmission went out at 0.5; Timer E is due at 1.5
    trying = response(req, 100)

    assert clock.apply(tx.receive_response(trying)) == [DeliverResponse(trying)]
    assert tx.state is TransactionState.PROCEEDING
    ringing = response(req, 180)
    assert clock.apply(tx.receive_response(ringing)) == [DeliverResponse(ringing)]

    clock.advance(100)

    after_provisional = [t for t in clock.send_times() if t > 0.7]
    assert after_provisional[0] == 1.5
    gaps = [b - a for a, b in itertools.pairwise(after_provisional)]
    assert gaps == [T2] * len(gaps)
    assert len(gaps) >= 7
    assert after_provisional[-1] + T2 > TIMEOUT
    assert clock.times_of(TransactionTimedOut) == [TIMEOUT]
    assert_ended_cleanly(clock)


@pytest.mark.parametrize("status", [200, 404, 503])
@pytest.mark.parametrize("provisional_first", [False, True])
def test_final_response_completes_then_timer_k_terminates(status: int, provisional_first: bool) -> None:
    req = request()
    tx = NonInviteClientTransaction(req, reliable=False)
    clock = started(tx)
    clock.advance(1.0)
    if provisional_first:
        clock.apply(tx.receive_response(response(req, 100)))
    final = response(req, status)

    actions = clock.apply(tx.receive_response(final))

    assert timers_cancelled(actions) == {"E", "F"}
    assert [a for a in actions if isinstance(a, DeliverResponse)] == [DeliverResponse(final)]
    assert tx.state is TransactionState.COMPLETED
    assert tx.last_response is final
    assert clock.pending == {"K"}
    assert clock.delays("K") == [T4]

    clock.advance(T4 / 2)
    retransmitted = response(req, status)
    assert clock.apply(tx.receive_response(retransmitted)) == []
    assert clock.apply(tx.receive_response(response(req, 100))) == []

    clock.advance(T4)
    assert clock.times_of(Terminated) == [1.0 + T4]
    assert [t for t in clock.send_times() if t > 1.0] == []
    assert_ended_cleanly(clock)


def test_final_response_on_reliable_transport_terminates_at_once() -> None:
    req = request()
    tx = NonInviteClientTransaction(req, reliable=True)
    clock = started(tx)
    final = response(req, 200)

    actions = clock.apply(tx.receive_response(final))

    assert actions == [CancelTimer("F"), DeliverResponse(final), Terminated()]
    assert_ended_cleanly(clock)
    assert tx.receive_response(response(req, 200)) == []


@pytest.mark.parametrize("reliable", [False, True])
@pytest.mark.parametrize("provisional_first", [False, True])
def test_non_invite_client_transport_error_fails_and_terminates(reliable: bool, provisional_first: bool) -> None:
    req = request()
    tx = NonInviteClientTransaction(req, reliable=reliable)
    clock = started(tx)
    if provisional_first:
        clock.apply(tx.receive_response(response(req, 100)))

    actions = clock.apply(tx.transport_error())

    assert [a for a in actions if not isinstance(a, CancelTimer)] == [TransportFailed(), Terminated()]
    assert_ended_cleanly(clock)
    assert tx.transport_error() == []


def test_transport_error_after_the_final_response_is_not_reported() -> None:
    req = request()
    tx = NonInviteClientTransaction(req, reliable=False)
    clock = started(tx)
    clock.apply(tx.receive_response(response(req, 200)))

    assert tx.transport_error() == []
    assert tx.state is TransactionState.COMPLETED


def test_custom_timer_settings_drive_the_client_schedule() -> None:
    settings = TimerSettings(t1=0.25, t2=1.0, t4=2.0)
    req = request()
    tx = NonInviteClientTransaction(req, reliable=False, settings=settings)
    clock = started(tx)

    clock.advance(30)

    intervals = capped_doubling(0.25, 1.0, 16.0)
    assert intervals[:4] == [0.25, 0.5, 1.0, 1.0]
    assert clock.send_times() == pytest.approx([0.0, *cumulative(0.0, intervals)])
    assert clock.times_of(TransactionTimedOut) == [16.0]


# --- stale timer expiries -----------------------------------------------------------------------


def test_expiry_of_a_cancelled_timer_is_ignored() -> None:
    req = request()
    tx = NonInviteClientTransaction(req, reliable=False)
    clock = started(tx)
    starts = [a for _, a in clock.log if isinstance(a, StartTimer)]
    clock.apply(tx.receive_response(response(req, 200)))

    for start in starts:  # E and F were cancelled by the final response
        assert tx.timer_fired(start.name, start.generation) == []
        assert tx.timer_fired(start.name) == []
    assert tx.state is TransactionState.COMPLETED


def test_expiry_of_an_earlier_arming_is_ignored_after_restart() -> None:
    tx = NonInviteClientTransaction(request(), reliable=False)
    clock = started(tx)
    first_e = next(a for _, a in clock.log if isinstance(a, StartTimer) and a.name == "E")
    clock.advance(T1)  # E fired and was re-armed with a new generation
    second_e = [a for _, a in clock.log if isinstance(a, StartTimer) and a.name == "E"][-1]
    assert second_e.generation != first_e.generation

    assert tx.timer_fired("E", first_e.generation) == []
    actions = tx.timer_fired("E", second_e.generation)
    assert isinstance(actions[0], SendMessage)


def test_timer_that_does_not_belong_to_the_state_is_ignored() -> None:
    tx = NonInviteClientTransaction(request(), reliable=False)
    started(tx)
    for name in ("A", "B", "D", "G", "H", "I", "J", "K"):
        assert tx.timer_fired(_timer(name)) == []
    assert tx.state is TransactionState.TRYING


def test_unknown_timer_name_is_refused() -> None:
    tx = NonInviteClientTransaction(request(), reliable=False)
    started(tx)
    with pytest.raises(ArgumentException):
        tx.timer_fired("C")  # type: ignore[arg-type]


def test_inputs_after_termination_do_nothing() -> None:
    req = request()
    tx = NonInviteClientTransaction(req, reliable=False)
    clock = started(tx)
    clock.advance(100)
    assert tx.state is TransactionState.TERMINATED

    assert tx.receive_response(response(req, 200)) == []
    assert tx.transport_error() == []
    assert tx.timer_fired("F") == []


# --- client misuse ------------------------------------------------------------------------------


def test_client_transaction_cannot_start_twice_or_receive_before_start() -> None:
    req = request()
    tx = NonInviteClientTransaction(req, reliable=False)
    with pytest.raises(InvalidOperationException):
        tx.receive_response(response(req, 200))
    with pytest.raises(InvalidOperationException):
        tx.transport_error()
    tx.start()
    with pytest.raises(InvalidOperationException):
        tx.start()


def test_client_transaction_needs_an_rfc3261_branch() -> None:
    built = make_request(
        "OPTIONS",
        "sip:example.com",
        via=Via("UDP", "192.0.2.10", 5060, Parameters([("branch", "1234")])),
        from_header=NameAddress("sip:alice@example.com", parameters=Parameters([("tag", "a")])),
        to_header=NameAddress("sip:example.com"),
        call_id="c1",
        cseq=1,
    )
    with pytest.raises(ArgumentException):
        NonInviteClientTransaction(built, reliable=True)


def test_client_transaction_refuses_requests_missing_transaction_headers() -> None:
    req = request()
    req.headers.remove("CSeq")
    with pytest.raises(ArgumentException):
        NonInviteClientTransaction(req, reliable=True)


@pytest.mark.parametrize(
    ("cls", "method"),
    [
        (NonInviteClientTransaction, "INVITE"),
        (NonInviteClientTransaction, "ACK"),
        (InviteClientTransaction, "REGISTER"),
        (NonInviteServerTransaction, "INVITE"),
        (NonInviteServerTransaction, "ACK"),
        (InviteServerTransaction, "SUBSCRIBE"),
    ],
)
def test_transaction_kinds_refuse_other_methods(cls: type[Transaction], method: str) -> None:
    with pytest.raises(ArgumentException):
        cls(request(method), reliable=False)


def test_factories_pick_the_kind_by_method() -> None:
    assert isinstance(create_client_transaction(request("INVITE"), reliable=False), InviteClientTransaction)
    assert isinstance(create_client_transaction(request("SUBSCRIBE"), reliable=False), NonInviteClientTransaction)
    assert isinstance(create_server_transaction(request("INVITE"), reliable=False), InviteServerTransaction)
    assert isinstance(create_server_transaction(request("NOTIFY"), reliable=False), NonInviteServerTransaction)


# --- non-INVITE server (RFC 3261 section 17.2.2) ------------------------------------------------


def test_non_invite_server_delivers_request_once_and_absorbs_retransmissions_in_trying() -> None:
    req = request("NOTIFY")
    tx = NonInviteServerTransaction(req, reliable=False)
    clock = started(tx)

    assert [a for _, a in clock.log] == [DeliverRequest(req)]
    assert tx.state is TransactionState.TRYING
    assert clock.apply(tx.receive_request(wire_request(req))) == []


def test_non_invite_server_resends_last_provisional_in_proceeding() -> None:
    req = request("SUBSCRIBE")
    tx = NonInviteServerTransaction(req, reliable=False)
    clock = started(tx)
    trying = make_response(req, 100)
    assert clock.apply(tx.send_response(trying)) == [SendMessage(trying)]
    assert tx.state is TransactionState.PROCEEDING

    assert clock.apply(tx.receive_request(wire_request(req))) == [SendMessage(trying)]
    other = make_response(req, 183)
    clock.apply(tx.send_response(other))
    assert clock.apply(tx.receive_request(wire_request(req))) == [SendMessage(other)]
    assert clock.pending == set()


@pytest.mark.parametrize("via_proceeding", [False, True])
def test_non_invite_server_answers_retransmissions_with_the_final_until_timer_j(via_proceeding: bool) -> None:
    req = request("REGISTER")
    tx = NonInviteServerTransaction(req, reliable=False)
    clock = started(tx)
    if via_proceeding:
        clock.apply(tx.send_response(make_response(req, 100)))
    clock.advance(0.3)
    final = make_response(req, 200, to_tag=new_tag())

    actions = clock.apply(tx.send_response(final))
    assert actions[0] == SendMessage(final)
    assert timers_started(actions) == [("J", TIMEOUT)]
    assert tx.state is TransactionState.COMPLETED

    clock.advance(10)
    assert clock.apply(tx.receive_request(wire_request(req))) == [SendMessage(final)]
    clock.advance(TIMEOUT)

    assert clock.times_of(Terminated) == [0.3 + TIMEOUT]
    assert clock.times_of(DeliverRequest) == [0.0]
    assert_ended_cleanly(clock)
    assert tx.receive_request(wire_request(req)) == []


def test_timer_j_follows_t1() -> None:
    req = request("PUBLISH")
    tx = NonInviteServerTransaction(req, reliable=False, settings=TimerSettings(t1=0.1, t2=0.4))
    clock = started(tx)
    clock.apply(tx.send_response(make_response(req, 200)))
    clock.advance(100)
    assert clock.times_of(Terminated) == [pytest.approx(6.4)]


def test_non_invite_server_on_reliable_transport_terminates_after_the_final() -> None:
    req = request("MESSAGE")
    tx = NonInviteServerTransaction(req, reliable=True)
    clock = started(tx)
    final = make_response(req, 200)

    assert clock.apply(tx.send_response(final)) == [SendMessage(final), Terminated()]
    assert_ended_cleanly(clock)


@pytest.mark.parametrize("second_status", [100, 200, 486])
def test_non_invite_server_refuses_a_response_after_the_final(second_status: int) -> None:
    req = request("SERVICE")
    tx = NonInviteServerTransaction(req, reliable=False)
    started(tx)
    tx.send_response(make_response(req, 200))

    with pytest.raises(InvalidOperationException):
        tx.send_response(make_response(req, second_status))
    assert tx.state is TransactionState.COMPLETED


def test_server_transaction_refuses_responses_before_start() -> None:
    req = request("INFO")
    tx = NonInviteServerTransaction(req, reliable=False)
    with pytest.raises(InvalidOperationException):
        tx.send_response(make_response(req, 200))


@pytest.mark.parametrize("reliable", [False, True])
@pytest.mark.parametrize("final_sent", [False, True])
def test_non_invite_server_transport_error_fails_and_terminates(reliable: bool, final_sent: bool) -> None:
    req = request("NOTIFY")
    tx = NonInviteServerTransaction(req, reliable=reliable)
    clock = started(tx)
    clock.apply(tx.send_response(make_response(req, 100)))
    if final_sent and not reliable:
        clock.apply(tx.send_response(make_response(req, 200)))

    actions = clock.apply(tx.transport_error())

    assert [a for a in actions if not isinstance(a, CancelTimer)] == [TransportFailed(), Terminated()]
    assert_ended_cleanly(clock)
    for _, action in clock.log:  # expiries of timers armed before the error arrive late
        if isinstance(action, StartTimer):
            assert tx.timer_fired(action.name, action.generation) == []


# --- INVITE client (RFC 3261 section 17.1.1) ----------------------------------------------------


def test_invite_client_doubles_timer_a_without_cap_until_timer_b() -> None:
    req = request("INVITE")
    tx = InviteClientTransaction(req, reliable=False)
    clock = started(tx)
    assert tx.state is TransactionState.CALLING

    clock.advance(100)

    fired_intervals, interval, elapsed = [], T1, 0.0
    while elapsed + interval < TIMEOUT:
        fired_intervals.append(interval)
        elapsed += interval
        interval *= 2
    assert max(fired_intervals) > T2  # no T2 cap, unlike Timer E
    assert clock.send_times() == [0.0, *cumulative(0.0, fired_intervals)]
    assert clock.delays("A") == [T1 * 2**n for n in range(len(fired_intervals) + 1)]
    assert clock.times_of(TransactionTimedOut) == [TIMEOUT]
    assert_ended_cleanly(clock)


def test_invite_client_on_reliable_transport_never_retransmits() -> None:
    tx = InviteClientTransaction(request("INVITE"), reliable=True)
    clock = started(tx)
    clock.advance(100)
    assert clock.send_times() == [0.0]
    assert clock.delays("A") == []
    assert clock.times_of(TransactionTimedOut) == [TIMEOUT]


def test_invite_provisional_stops_retransmission_and_timer_b() -> None:
    req = request("INVITE")
    tx = InviteClientTransaction(req, reliable=False)
    clock = started(tx)
    clock.advance(1.0)
    ringing = response(req, 180)

    actions = clock.apply(tx.receive_response(ringing))

    assert timers_cancelled(actions) == {"A", "B"}
    assert [a for a in actions if not isinstance(a, CancelTimer)] == [DeliverResponse(ringing)]
    assert tx.state is TransactionState.PROCEEDING
    clock.advance(300)
    assert clock.send_times() == [0.0, 0.5]
    assert tx.state is TransactionState.PROCEEDING


@pytest.mark.parametrize("provisional_first", [False, True])
def test_invite_2xx_is_delivered_and_ends_the_transaction(provisional_first: bool) -> None:
    req = request("INVITE")
    tx = InviteClientTransaction(req, reliable=False)
    clock = started(tx)
    if provisional_first:
        clock.apply(tx.receive_response(response(req, 180)))
    ok = response(req, 200)

    actions = clock.apply(tx.receive_response(ok))

    assert [a for a in actions if not isinstance(a, CancelTimer)] == [DeliverResponse(ok), Terminated()]
    assert not any(isinstance(m, SipRequest) and m.method == "ACK" for _, m in clock.sent())
    assert_ended_cleanly(clock)


def test_invite_failure_is_acked_delivered_once_and_absorbed_until_timer_d() -> None:
    req = request("INVITE", routes=["<sip:proxy1.example.com;lr>", "<sip:proxy2.example.com;lr>"])
    tx = InviteClientTransaction(req, reliable=False)
    clock = started(tx)
    clock.advance(0.7)
    busy = response(req, 486, to_tag="callee-tag")

    actions = clock.apply(tx.receive_response(busy))

    sent = [a.message for a in actions if isinstance(a, SendMessage)]
    assert len(sent) == 1
    ack = sent[0]
    assert isinstance(ack, SipRequest)
    assert [a for a in actions if isinstance(a, DeliverResponse)] == [DeliverResponse(busy)]
    assert tx.state is TransactionState.COMPLETED
    assert clock.delays("D") == [32.0]

    # RFC 3261 section 17.1.1.3: the ACK's fields.
    on_wire = wire_request(ack)
    assert on_wire.method == "ACK"
    assert on_wire.request_uri_text == req.request_uri_text
    assert len(on_wire.vias) == 1
    assert on_wire.top_via == req.top_via
    assert on_wire.from_header == req.from_header
    assert on_wire.to_header.tag == "callee-tag"
    assert on_wire.call_id == req.call_id
    assert (on_wire.cseq.number, on_wire.cseq.method) == (req.cseq.number, "ACK")
    assert on_wire.headers.get_all("Route") == req.headers.get_all("Route")

    clock.advance(10)
    assert clock.apply(tx.receive_response(response(req, 486, to_tag="callee-tag"))) == [SendMessage(ack)]
    clock.advance(32)
    assert clock.times_of(Terminated) == [0.7 + 32.0]
    assert len(clock.times_of(DeliverResponse)) == 1
    assert_ended_cleanly(clock)


def test_invite_failure_on_reliable_transport_acks_and_terminates_at_once() -> None:
    req = request("INVITE")
    tx = InviteClientTransaction(req, reliable=True)
    clock = started(tx)
    clock.apply(tx.receive_response(response(req, 180)))
    busy = response(req, 603)

    actions = clock.apply(tx.receive_response(busy))

    kinds = [type(a) for a in actions]
    assert kinds == [SendMessage, DeliverResponse, Terminated]
    assert_ended_cleanly(clock)


def test_invite_client_transport_error_in_completed_fails() -> None:
    req = request("INVITE")
    tx = InviteClientTransaction(req, reliable=False)
    clock = started(tx)
    clock.apply(tx.receive_response(response(req, 404)))

    actions = clock.apply(tx.transport_error())

    assert actions == [CancelTimer("D"), TransportFailed(), Terminated()]
    assert_ended_cleanly(clock)


# --- INVITE server (RFC 3261 section 17.2.1) ----------------------------------------------------


def test_invite_server_sends_100_trying_and_delivers_the_invite() -> None:
    req = request("INVITE")
    tx = InviteServerTransaction(req, reliable=False)

    actions = tx.start()

    assert tx.state is TransactionState.PROCEEDING
    assert [type(a) for a in actions] == [SendMessage, DeliverRequest]
    trying = actions[0]
    assert isinstance(trying, SendMessage) and isinstance(trying.message, SipResponse)
    assert trying.message.status_code == 100
    assert trying.message.to_header.tag is None
    assert tx.receive_request(wire_request(req)) == [SendMessage(trying.message)]


def test_invite_server_without_automatic_trying_resends_the_tus_provisional() -> None:
    req = request("INVITE")
    tx = InviteServerTransaction(req, reliable=False, send_trying=False)
    clock = started(tx)

    assert [a for _, a in clock.log] == [DeliverRequest(req)]
    assert tx.receive_request(wire_request(req)) == []
    ringing = make_response(req, 180, to_tag=new_tag())
    clock.apply(tx.send_response(ringing))
    assert tx.receive_request(wire_request(req)) == [SendMessage(ringing)]


def test_invite_server_2xx_ends_the_transaction() -> None:
    req = request("INVITE")
    tx = InviteServerTransaction(req, reliable=False)
    clock = started(tx)
    ok = make_response(req, 200, to_tag=new_tag())

    assert clock.apply(tx.send_response(ok)) == [SendMessage(ok), Terminated()]
    assert_ended_cleanly(clock)


def test_invite_server_retransmits_failure_on_timer_g_until_timer_h() -> None:
    req = request("INVITE")
    tx = InviteServerTransaction(req, reliable=False)
    clock = started(tx)
    busy = make_response(req, 486, to_tag=new_tag())

    clock.apply(tx.send_response(busy))
    assert tx.state is TransactionState.COMPLETED
    clock.advance(100)

    intervals = capped_doubling(T1, T2, TIMEOUT)
    resent = [when for when, message in clock.sent() if message is busy]
    assert resent == [0.0, *cumulative(0.0, intervals)]
    assert clock.delays("G")[: len(intervals)] == intervals
    assert clock.times_of(TransactionTimedOut) == [TIMEOUT]
    assert_ended_cleanly(clock)


def test_invite_server_resends_final_on_invite_retransmission_in_completed() -> None:
    req = request("INVITE")
    tx = InviteServerTransaction(req, reliable=False)
    clock = started(tx)
    busy = make_response(req, 480, to_tag=new_tag())
    clock.apply(tx.send_response(busy))

    assert clock.apply(tx.receive_request(wire_request(req))) == [SendMessage(busy)]
    assert clock.times_of(DeliverRequest) == [0.0]


def test_ack_confirms_stops_g_and_h_and_timer_i_terminates() -> None:
    invite = request("INVITE")
    uac = InviteClientTransaction(invite, reliable=False)
    uac.start()
    tx = InviteServerTransaction(invite, reliable=False)
    clock = started(tx)
    busy = make_response(invite, 486, to_tag=new_tag())
    clock.apply(tx.send_response(busy))
    clock.advance(1.0)
    ack = next(a.message for a in uac.receive_response(wire_response(busy)) if isinstance(a, SendMessage))
    assert isinstance(ack, SipRequest)

    actions = clock.apply(tx.receive_request(wire_request(ack)))

    assert timers_cancelled(actions) == {"G", "H"}
    assert timers_started(actions) == [("I", T4)]
    assert len(actions) == 3
    assert tx.state is TransactionState.CONFIRMED
    assert clock.apply(tx.receive_request(wire_request(ack))) == []
    assert clock.apply(tx.receive_request(wire_request(invite))) == []
    clock.advance(T4)
    assert clock.times_of(Terminated) == [1.0 + T4]
    assert [when for when, _ in clock.sent()] == [0.0, 0.0, 0.5]  # 100, 486, one G retransmission
    assert_ended_cleanly(clock)


def test_invite_server_on_reliable_transport_has_no_timer_g_and_ends_on_ack() -> None:
    req = request("INVITE")
    tx = InviteServerTransaction(req, reliable=True)
    clock = started(tx)
    busy = make_response(req, 486, to_tag=new_tag())

    clock.apply(tx.send_response(busy))
    assert clock.pending == {"H"}
    actions = clock.apply(tx.receive_request(wire_request(make_non_2xx_ack_for(req, busy))))

    assert actions == [CancelTimer("H"), Terminated()]
    assert_ended_cleanly(clock)


def test_invite_server_refuses_provisional_after_final() -> None:
    req = request("INVITE")
    tx = InviteServerTransaction(req, reliable=False)
    started(tx)
    tx.send_response(make_response(req, 404))
    with pytest.raises(InvalidOperationException):
        tx.send_response(make_response(req, 180))


def test_invite_server_transport_error_in_proceeding_fails() -> None:
    tx = InviteServerTransaction(request("INVITE"), reliable=True)
    clock = started(tx)
    assert clock.apply(tx.transport_error()) == [TransportFailed(), Terminated()]
    assert_ended_cleanly(clock)


def make_non_2xx_ack_for(invite: SipRequest, final: SipResponse) -> SipRequest:
    """The ACK the UAC's INVITE client transaction sends for ``final``."""
    uac = InviteClientTransaction(invite, reliable=True)
    uac.start()
    sent = [a.message for a in uac.receive_response(wire_response(final)) if isinstance(a, SendMessage)]
    assert len(sent) == 1 and isinstance(sent[0], SipRequest)
    return sent[0]


# --- invariants over arbitrary input sequences --------------------------------------------------

_STATE_ORDER = {
    TransactionState.CALLING: 0,
    TransactionState.TRYING: 0,
    TransactionState.PROCEEDING: 1,
    TransactionState.COMPLETED: 2,
    TransactionState.CONFIRMED: 3,
    TransactionState.TERMINATED: 4,
}

_client_steps = st.lists(
    st.one_of(
        st.tuples(st.just("advance"), st.floats(min_value=0.01, max_value=20.0)),
        st.tuples(st.just("response"), st.sampled_from([100, 180, 200, 202, 302, 404, 486, 503])),
        st.tuples(st.just("transport_error"), st.none()),
        st.tuples(st.just("stale"), st.sampled_from(["A", "B", "D", "E", "F", "K"])),
    ),
    max_size=25,
)
_server_steps = st.lists(
    st.one_of(
        st.tuples(st.just("advance"), st.floats(min_value=0.01, max_value=20.0)),
        st.tuples(st.just("send"), st.sampled_from([100, 180, 200, 202, 302, 404, 486, 503])),
        st.tuples(st.just("retransmission"), st.none()),
        st.tuples(st.just("ack"), st.none()),
        st.tuples(st.just("transport_error"), st.none()),
        st.tuples(st.just("stale"), st.sampled_from(["G", "H", "I", "J"])),
    ),
    max_size=25,
)


def _check_invariants(clock: FakeClock, states: list[TransactionState]) -> None:
    ranks = [_STATE_ORDER[s] for s in states]
    assert ranks == sorted(ranks), f"state went backwards: {states}"
    actions = [a for _, a in clock.log]
    assert actions.count(Terminated()) <= 1
    if clock.transaction.state is TransactionState.TERMINATED:
        assert_ended_cleanly(clock)
    else:
        assert Terminated() not in actions
        assert clock.pending == set(clock.transaction.armed_timers)


@pytest.mark.parametrize("invite", [False, True])
@pytest.mark.parametrize("reliable", [False, True])
@given(steps=_client_steps)
def test_client_invariants_hold_for_any_input_sequence(
    invite: bool, reliable: bool, steps: list[tuple[str, object]]
) -> None:
    req = request("INVITE" if invite else "SUBSCRIBE")
    tx = create_client_transaction(req, reliable=reliable)
    clock = started(tx)
    states = [tx.state]
    for kind, arg in steps:
        if kind == "advance":
            assert isinstance(arg, float)
            clock.advance(arg)
        elif kind == "response":
            assert isinstance(arg, int)
            clock.apply(tx.receive_response(response(req, arg)))
        elif kind == "transport_error":
            clock.apply(tx.transport_error())
        else:
            assert isinstance(arg, str)
            clock.apply(tx.timer_fired(_timer(arg), generation=0))
        states.append(tx.state)
    _check_invariants(clock, states)
    finals = [a for _, a in clock.log if isinstance(a, DeliverResponse) and a.response.status_code >= 200]
    assert len(finals) <= 1
    actions = [a for _, a in clock.log]
    assert actions.count(TransactionTimedOut()) + len(finals) <= 1
    assert actions.count(TransactionTimedOut()) + actions.count(TransportFailed()) <= 1


@pytest.mark.parametrize("invite", [False, True])
@pytest.mark.parametrize("reliable", [False, True])
@given(steps=_server_steps)
def test_server_invariants_hold_for_any_input_sequence(
    invite: bool, reliable: bool, steps: list[tuple[str, object]]
) -> None:
    req = request("INVITE" if invite else "NOTIFY")
    tx = create_server_transaction(req, reliable=reliable)
    clock = started(tx)
    states = [tx.state]
    final_sent = False
    for kind, arg in steps:
        if kind == "advance":
            assert isinstance(arg, float)
            clock.advance(arg)
        elif kind == "send":
            assert isinstance(arg, int)
            try:
                clock.apply(tx.send_response(make_response(req, arg, to_tag="uas")))
            except InvalidOperationException:
                assert final_sent or tx.state is TransactionState.TERMINATED
            else:
                assert not final_sent
                final_sent = arg >= 200
        elif kind == "retransmission":
            clock.apply(tx.receive_request(wire_request(req)))
        elif kind == "ack":
            if tx.last_response is not None:
                clock.apply(tx.receive_request(make_non_2xx_ack(req, tx.last_response)))
        elif kind == "transport_error":
            clock.apply(tx.transport_error())
        else:
            assert isinstance(arg, str)
            clock.apply(tx.timer_fired(_timer(arg), generation=0))
        states.append(tx.state)
    _check_invariants(clock, states)
    assert clock.times_of(DeliverRequest) == [0.0]
    ended = clock.times_of(Terminated)
    assert not ended or all(when <= ended[0] for when in clock.send_times())
