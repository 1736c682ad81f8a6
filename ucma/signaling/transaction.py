"""RFC 3261 section 17 client and server transactions as sans-IO state machines.

Each transaction takes explicit inputs (``start``, a received message, a response from the
transaction user, a timer expiry, a transport error) and returns the actions the runtime must
carry out, in order. The runtime owns the sockets and the clock: it sends what
:class:`SendMessage` holds, arms and disarms timers on :class:`StartTimer` / :class:`CancelTimer`
and calls :meth:`Transaction.timer_fired` when one expires. An expiry for a timer that was
cancelled or re-armed since is recognised and ignored, so the runtime may deliver stale ones.

Requests the TU hands in and responses it sends are trusted to be well formed; malformed input
from the network never raises here (it is absorbed), but misuse by the TU raises
:class:`InvalidOperationException` or :class:`ArgumentException`.
"""

from __future__ import annotations

import enum
from typing import TypeAlias

import attrs

from ucma.signaling.exceptions import ArgumentException, InvalidOperationException, MessageParsingException
from ucma.signaling.sip.builders import make_response
from ucma.signaling.sip.headers import Headers
from ucma.signaling.sip.message import SipRequest, SipResponse
from ucma.signaling.transaction_timers import DEFAULT_TIMER_SETTINGS, TIMER_NAMES, TimerName, TimerSettings

__all__ = [
    "CancelTimer",
    "ClientTransaction",
    "DeliverRequest",
    "DeliverResponse",
    "InviteClientTransaction",
    "InviteServerTransaction",
    "NonInviteClientTransaction",
    "NonInviteServerTransaction",
    "SendMessage",
    "ServerTransaction",
    "StartTimer",
    "Terminated",
    "Transaction",
    "TransactionAction",
    "TransactionState",
    "TransactionTimedOut",
    "TransportFailed",
    "create_client_transaction",
    "create_server_transaction",
    "make_non_2xx_ack",
]


class TransactionState(enum.Enum):
    """The states of RFC 3261 figures 5-8 (CALLING and CONFIRMED occur only in INVITE transactions)."""

    CALLING = "Calling"
    TRYING = "Trying"
    PROCEEDING = "Proceeding"
    COMPLETED = "Completed"
    CONFIRMED = "Confirmed"
    TERMINATED = "Terminated"


# --- actions ------------------------------------------------------------------------------------


@attrs.frozen
class SendMessage:
    """Hand ``message`` to the transport, to the same destination (or connection) as the transaction's."""

    message: SipRequest | SipResponse


@attrs.frozen
class StartTimer:
    """Arm timer ``name`` to expire in ``delay_seconds``, then call ``timer_fired(name, generation)``.

    Starting a timer that is already armed re-arms it; ``generation`` (never 0) lets the
    transaction tell this arming from earlier ones whose expiry may still be in flight.
    """

    name: TimerName
    delay_seconds: float
    generation: int = 0


@attrs.frozen
class CancelTimer:
    """Disarm timer ``name`` (an expiry already in flight is ignored by the transaction)."""

    name: TimerName


@attrs.frozen
class DeliverResponse:
    """Pass a response up to the transaction user (never a retransmission of a final response)."""

    response: SipResponse


@attrs.frozen
class DeliverRequest:
    """Pass the request that created a server transaction up to the transaction user (once)."""

    request: SipRequest


@attrs.frozen
class TransactionTimedOut:
    """Timer B/F (no final response: the TU treats it as 408) or H (no ACK for a final response) expired."""


@attrs.frozen
class TransportFailed:
    """The transport could not deliver what the transaction sent; the TU treats the request as failed."""


@attrs.frozen
class Terminated:
    """The transaction reached Terminated: the runtime forgets it (and any timers it still holds)."""


TransactionAction: TypeAlias = (
    SendMessage
    | StartTimer
    | CancelTimer
    | DeliverResponse
    | DeliverRequest
    | TransactionTimedOut
    | TransportFailed
    | Terminated
)


# --- shared machinery ---------------------------------------------------------------------------


class _TimerBook:
    """The armed timers and the generation each was armed with, so stale expiries are recognised."""

    __slots__ = ("_armed", "_last_generation")

    def __init__(self) -> None:
        self._armed: dict[TimerName, int] = {}
        self._last_generation = 0

    def start(self, name: TimerName, delay: float) -> StartTimer:
        self._last_generation += 1
        self._armed[name] = self._last_generation
        return StartTimer(name, delay, self._last_generation)

    def cancel(self, name: TimerName, out: list[TransactionAction]) -> None:
        if self._armed.pop(name, None) is not None:
            out.append(CancelTimer(name))

    def cancel_all(self, out: list[TransactionAction]) -> None:
        out.extend(CancelTimer(name) for name in self._armed)
        self._armed.clear()

    def consume(self, name: TimerName, generation: int | None) -> bool:
        """True (and disarm) when this expiry is for the current arming of ``name``."""
        armed = self._armed.get(name)
        if armed is None or (generation is not None and generation != armed):
            return False
        del self._armed[name]
        return True

    def names(self) -> frozenset[TimerName]:
        return frozenset(self._armed)


class Transaction:
    """What all four transaction kinds share: the request, the transport kind, timers and termination."""

    _INITIAL_STATE = TransactionState.TRYING

    def __init__(
        self, request: SipRequest, *, reliable: bool, settings: TimerSettings = DEFAULT_TIMER_SETTINGS
    ) -> None:
        _check_transaction_headers(request)
        self.request = request
        self.reliable = reliable
        self.settings = settings
        self._state = self._INITIAL_STATE
        self._started = False
        self._timers = _TimerBook()

    @property
    def state(self) -> TransactionState:
        """The RFC 3261 state the transaction is in."""
        return self._state

    @property
    def started(self) -> bool:
        """True once :meth:`start` has been called."""
        return self._started

    @property
    def is_terminated(self) -> bool:
        """True in the Terminated state; a terminated transaction ignores every input."""
        return self._state is TransactionState.TERMINATED

    @property
    def armed_timers(self) -> frozenset[TimerName]:
        """Timers currently started and neither cancelled nor expired."""
        return self._timers.names()

    def start(self) -> list[TransactionAction]:
        """Begin: a client sends its request, a server passes its request to the TU."""
        if self._started:
            raise InvalidOperationException(f"the {self.request.method} transaction has already been started")
        self._started = True
        return self._on_start()

    def timer_fired(self, name: TimerName, generation: int | None = None) -> list[TransactionAction]:
        """Timer ``name`` expired; ignored unless it is armed (and, with ``generation``, armed that time)."""
        if name not in TIMER_NAMES:
            raise ArgumentException(f"unknown transaction timer {name!r}", "name")
        if not self._timers.consume(name, generation):
            return []
        return self._on_timer(name)

    def transport_error(self) -> list[TransactionAction]:
        """The transport failed to send a message of this transaction: inform the TU and terminate."""
        self._require_started()
        if self.is_terminated:
            return []
        return self._terminate([], TransportFailed())

    def _on_start(self) -> list[TransactionAction]:
        raise NotImplementedError

    def _on_timer(self, name: TimerName) -> list[TransactionAction]:
        raise NotImplementedError

    def _require_started(self) -> None:
        if not self._started:
            raise InvalidOperationException(f"the {self.request.method} transaction has not been started")

    def _terminate(
        self, out: list[TransactionAction], notice: TransactionAction | None = None
    ) -> list[TransactionAction]:
        """Disarm every timer, tell the TU why (``notice``) if it is not a normal end, and terminate."""
        self._timers.cancel_all(out)
        if notice is not None:
            out.append(notice)
        self._state = TransactionState.TERMINATED
        out.append(Terminated())
        return out

    def _wait_then_terminate(
        self, name: TimerName, delay: float, out: list[TransactionAction]
    ) -> list[TransactionAction]:
        """Arm a wait timer (D, I, J, K), or end now when it is zero (reliable transports)."""
        if delay <= 0:
            return self._terminate(out)
        out.append(self._timers.start(name, delay))
        return out

    def __repr__(self) -> str:
        kind = "reliable" if self.reliable else "unreliable"
        return f"<{type(self).__name__} {self.request.method} {self._state.value} ({kind})>"


def _check_transaction_headers(request: SipRequest) -> None:
    """Require the headers transactions and their matching read (RFC 3261 section 8.1.1)."""
    try:
        _ = (request.top_via, request.call_id, request.from_header, request.to_header)
        cseq = request.cseq
    except MessageParsingException as exc:
        raise ArgumentException(f"request cannot form a transaction: {exc.reason}", "request") from exc
    if cseq.method != request.method:
        raise ArgumentException("CSeq method does not match the request method", "request")


def _check_status(response: SipResponse) -> None:
    if not 100 <= response.status_code <= 699:
        raise ArgumentException("status code must be in 100..699", "response")


# --- client transactions ------------------------------------------------------------------------


class ClientTransaction(Transaction):
    """Sends a request, retransmits it on unreliable transports, and passes responses to the TU once.

    The request must carry a top Via with an RFC 3261 branch (``z9hG4bK...``): responses are
    matched on it (section 17.1.3).
    """

    def __init__(
        self, request: SipRequest, *, reliable: bool, settings: TimerSettings = DEFAULT_TIMER_SETTINGS
    ) -> None:
        super().__init__(request, reliable=reliable, settings=settings)
        _check_client_request(request)
        #: The latest response received (provisional or final), None before any.
        self.last_response: SipResponse | None = None

    def receive_response(self, response: SipResponse) -> list[TransactionAction]:
        """A response matching this transaction arrived from the network."""
        self._require_started()
        if self.is_terminated:
            return []
        return self._on_response(response)

    def _on_response(self, response: SipResponse) -> list[TransactionAction]:
        raise NotImplementedError


def _check_client_request(request: SipRequest) -> None:
    if request.method == "ACK":
        raise ArgumentException("ACK is never sent in a client transaction of its own", "request")
    if not request.top_via.is_rfc3261_branch:
        raise ArgumentException("the top Via needs an RFC 3261 branch (see new_branch())", "request")


class NonInviteClientTransaction(ClientTransaction):
    """RFC 3261 section 17.1.2 (figure 6): Trying -> Proceeding -> Completed -> Terminated.

    Timer E retransmits on unreliable transports (T1, doubling up to T2; T2 once a provisional
    response arrived), Timer F ends the wait at 64*T1, Timer K absorbs response retransmissions.
    """

    _INITIAL_STATE = TransactionState.TRYING

    def __init__(
        self, request: SipRequest, *, reliable: bool, settings: TimerSettings = DEFAULT_TIMER_SETTINGS
    ) -> None:
        if request.method == "INVITE":
            raise ArgumentException("INVITE needs an InviteClientTransaction", "request")
        super().__init__(request, reliable=reliable, settings=settings)
        self._e_interval = settings.t1

    def _on_start(self) -> list[TransactionAction]:
        out: list[TransactionAction] = [SendMessage(self.request)]
        if not self.reliable:
            out.append(self._timers.start("E", self._e_interval))
        out.append(self._timers.start("F", self.settings.transaction_timeout))
        return out

    def transport_error(self) -> list[TransactionAction]:
        """Like :meth:`Transaction.transport_error`, but ignored in Completed: the TU has its answer."""
        self._require_started()
        if self._state is TransactionState.COMPLETED:
            return []
        return super().transport_error()

    def _on_response(self, response: SipResponse) -> list[TransactionAction]:
        if self._state not in (TransactionState.TRYING, TransactionState.PROCEEDING):
            return []  # Completed absorbs retransmitted responses.
        self.last_response = response
        if response.status_code < 200:
            self._state = TransactionState.PROCEEDING
            return [DeliverResponse(response)]
        out: list[TransactionAction] = []
        self._timers.cancel("E", out)
        self._timers.cancel("F", out)
        out.append(DeliverResponse(response))
        self._state = TransactionState.COMPLETED
        return self._wait_then_terminate("K", self.settings.timer_k(self.reliable), out)

    def _on_timer(self, name: TimerName) -> list[TransactionAction]:
        state = self._state
        if name == "E" and state in (TransactionState.TRYING, TransactionState.PROCEEDING):
            if state is TransactionState.PROCEEDING:
                self._e_interval = self.settings.t2
            else:
                self._e_interval = self.settings.next_timer_e(self._e_interval)
            return [SendMessage(self.request), self._timers.start("E", self._e_interval)]
        if name == "F" and state in (TransactionState.TRYING, TransactionState.PROCEEDING):
            return self._terminate([], TransactionTimedOut())
        if name == "K" and state is TransactionState.COMPLETED:
            return self._terminate([])
        return []


class InviteClientTransaction(ClientTransaction):
    """RFC 3261 section 17.1.1 (figure 5): Calling -> Proceeding -> Completed -> Terminated.

    Timer A retransmits the INVITE on unreliable transports (T1, doubling without cap) until
    Timer B (64*T1) or a response. A 2xx ends the transaction at once (the TU ACKs it); a
    300-699 is ACKed here, and Timer D keeps re-ACKing its retransmissions.
    """

    _INITIAL_STATE = TransactionState.CALLING

    def __init__(
        self, request: SipRequest, *, reliable: bool, settings: TimerSettings = DEFAULT_TIMER_SETTINGS
    ) -> None:
        if request.method != "INVITE":
            raise ArgumentException("an InviteClientTransaction needs an INVITE", "request")
        super().__init__(request, reliable=reliable, settings=settings)
        self._a_interval = settings.t1
        #: The ACK sent for a 300-699 response, None until one arrived.
        self.ack: SipRequest | None = None

    def _on_start(self) -> list[TransactionAction]:
        out: list[TransactionAction] = [SendMessage(self.request)]
        if not self.reliable:
            out.append(self._timers.start("A", self._a_interval))
        out.append(self._timers.start("B", self.settings.transaction_timeout))
        return out

    def _on_response(self, response: SipResponse) -> list[TransactionAction]:
        state = self._state
        if state is TransactionState.COMPLETED:
            # A retransmitted 300-699: ACK it again, do not tell the TU twice.
            if response.status_code >= 300 and self.ack is not None:
                return [SendMessage(self.ack)]
            return []
        if state not in (TransactionState.CALLING, TransactionState.PROCEEDING):
            return []
        self.last_response = response
        out: list[TransactionAction] = []
        self._timers.cancel("A", out)
        self._timers.cancel("B", out)
        if response.status_code < 200:
            self._state = TransactionState.PROCEEDING
            out.append(DeliverResponse(response))
            return out
        if response.status_code < 300:
            out.append(DeliverResponse(response))
            return self._terminate(out)
        self.ack = make_non_2xx_ack(self.request, response)
        out.append(SendMessage(self.ack))
        out.append(DeliverResponse(response))
        self._state = TransactionState.COMPLETED
        return self._wait_then_terminate("D", self.settings.timer_d(self.reliable), out)

    def _on_timer(self, name: TimerName) -> list[TransactionAction]:
        state = self._state
        if name == "A" and state is TransactionState.CALLING:
            self._a_interval = self.settings.next_timer_a(self._a_interval)
            return [SendMessage(self.request), self._timers.start("A", self._a_interval)]
        if name == "B" and state is TransactionState.CALLING:
            return self._terminate([], TransactionTimedOut())
        if name == "D" and state is TransactionState.COMPLETED:
            return self._terminate([])
        return []


def make_non_2xx_ack(invite: SipRequest, response: SipResponse) -> SipRequest:
    """The ACK for a 300-699 response to ``invite`` (RFC 3261 section 17.1.1.3).

    Request-URI, From, Call-ID, CSeq number and Route come from the INVITE, To (with the
    UAS's tag) from the response, and the only Via is the INVITE's top Via, so the ACK shares
    the INVITE's branch.
    """
    src = invite.headers
    headers = Headers()
    headers.add("Via", str(invite.top_via))
    headers.add("Max-Forwards", src.get("max-forwards") or "70")
    for route in src.get_all("route"):
        headers.add("Route", route)
    headers.add("From", src.get("from") or str(invite.from_header))
    headers.add("To", response.headers.get("to") or src.get("to") or str(invite.to_header))
    headers.add("Call-ID", invite.call_id)
    headers.add("CSeq", f"{invite.cseq.number} ACK")
    return SipRequest("ACK", invite.request_uri_text, headers)


# --- server transactions ------------------------------------------------------------------------


class ServerTransaction(Transaction):
    """Passes a request to the TU once, sends the TU's responses and answers retransmissions."""

    def __init__(
        self, request: SipRequest, *, reliable: bool, settings: TimerSettings = DEFAULT_TIMER_SETTINGS
    ) -> None:
        if request.method == "ACK":
            raise ArgumentException("an ACK never creates a server transaction", "request")
        super().__init__(request, reliable=reliable, settings=settings)
        #: The latest response sent (what a request retransmission is answered with).
        self.last_response: SipResponse | None = None

    def receive_request(self, request: SipRequest) -> list[TransactionAction]:
        """A request matching this transaction arrived: a retransmission (or, for INVITE, the ACK)."""
        self._require_started()
        if self.is_terminated:
            return []
        return self._on_request(request)

    def send_response(self, response: SipResponse) -> list[TransactionAction]:
        """The TU answers the request; raises :class:`InvalidOperationException` once a final was sent."""
        self._require_started()
        _check_status(response)
        if self._state not in (TransactionState.TRYING, TransactionState.PROCEEDING):
            raise InvalidOperationException(
                f"cannot send {response.status_code} in the {self._state.value} state of the "
                f"{self.request.method} server transaction"
            )
        self.last_response = response
        return self._on_send(response)

    def _on_request(self, request: SipRequest) -> list[TransactionAction]:
        raise NotImplementedError

    def _on_send(self, response: SipResponse) -> list[TransactionAction]:
        raise NotImplementedError


class NonInviteServerTransaction(ServerTransaction):
    """RFC 3261 section 17.2.2 (figure 8): Trying -> Proceeding -> Completed -> Terminated.

    Retransmissions are absorbed in Trying and answered with the last response in Proceeding
    and Completed; Timer J (64*T1 on unreliable transports) bounds the Completed state.
    """

    _INITIAL_STATE = TransactionState.TRYING

    def __init__(
        self, request: SipRequest, *, reliable: bool, settings: TimerSettings = DEFAULT_TIMER_SETTINGS
    ) -> None:
        if request.method == "INVITE":
            raise ArgumentException("INVITE needs an InviteServerTransaction", "request")
        super().__init__(request, reliable=reliable, settings=settings)

    def _on_start(self) -> list[TransactionAction]:
        return [DeliverRequest(self.request)]

    def _on_request(self, request: SipRequest) -> list[TransactionAction]:
        if request.method == self.request.method and self.last_response is not None:
            return [SendMessage(self.last_response)]
        return []

    def _on_send(self, response: SipResponse) -> list[TransactionAction]:
        out: list[TransactionAction] = [SendMessage(response)]
        if response.status_code < 200:
            self._state = TransactionState.PROCEEDING
            return out
        self._state = TransactionState.COMPLETED
        return self._wait_then_terminate("J", self.settings.timer_j(self.reliable), out)

    def _on_timer(self, name: TimerName) -> list[TransactionAction]:
        if name == "J" and self._state is TransactionState.COMPLETED:
            return self._terminate([])
        return []


class InviteServerTransaction(ServerTransaction):
    """RFC 3261 section 17.2.1 (figure 7): Proceeding -> Completed -> Confirmed -> Terminated.

    A 100 Trying goes out at once unless ``send_trying`` is False (the RFC allows leaving it to
    a TU that answers within 200 ms). A 2xx ends the transaction (the TU retransmits it until
    the ACK); a 300-699 is retransmitted by Timer G on unreliable transports until the ACK, or
    until Timer H gives up. Timer I absorbs further ACKs in Confirmed.
    """

    _INITIAL_STATE = TransactionState.PROCEEDING

    def __init__(
        self,
        request: SipRequest,
        *,
        reliable: bool,
        settings: TimerSettings = DEFAULT_TIMER_SETTINGS,
        send_trying: bool = True,
    ) -> None:
        if request.method != "INVITE":
            raise ArgumentException("an InviteServerTransaction needs an INVITE", "request")
        super().__init__(request, reliable=reliable, settings=settings)
        self.send_trying = send_trying
        self._g_interval = settings.t1

    def _on_start(self) -> list[TransactionAction]:
        out: list[TransactionAction] = []
        if self.send_trying:
            trying = make_response(self.request, 100)
            self.last_response = trying
            out.append(SendMessage(trying))
        out.append(DeliverRequest(self.request))
        return out

    def _on_request(self, request: SipRequest) -> list[TransactionAction]:
        state = self._state
        if request.method == "ACK":
            if state is not TransactionState.COMPLETED:
                return []  # Confirmed absorbs repeated ACKs.
            out: list[TransactionAction] = []
            self._timers.cancel("G", out)
            self._timers.cancel("H", out)
            self._state = TransactionState.CONFIRMED
            return self._wait_then_terminate("I", self.settings.timer_i(self.reliable), out)
        if (
            request.method == "INVITE"
            and state in (TransactionState.PROCEEDING, TransactionState.COMPLETED)
            and self.last_response is not None
        ):
            return [SendMessage(self.last_response)]
        return []

    def _on_send(self, response: SipResponse) -> list[TransactionAction]:
        out: list[TransactionAction] = [SendMessage(response)]
        if response.status_code < 200:
            return out
        if response.status_code < 300:
            return self._terminate(out)
        self._state = TransactionState.COMPLETED
        if not self.reliable:
            out.append(self._timers.start("G", self._g_interval))
        out.append(self._timers.start("H", self.settings.transaction_timeout))
        return out

    def _on_timer(self, name: TimerName) -> list[TransactionAction]:
        state = self._state
        if name == "G" and state is TransactionState.COMPLETED and self.last_response is not None:
            self._g_interval = self.settings.next_timer_g(self._g_interval)
            return [SendMessage(self.last_response), self._timers.start("G", self._g_interval)]
        if name == "H" and state is TransactionState.COMPLETED:
            return self._terminate([], TransactionTimedOut())
        if name == "I" and state is TransactionState.CONFIRMED:
            return self._terminate([])
        return []


# --- factories ----------------------------------------------------------------------------------


def create_client_transaction(
    request: SipRequest, *, reliable: bool, settings: TimerSettings = DEFAULT_TIMER_SETTINGS
) -> ClientTransaction:
    """The client transaction kind ``request``'s method needs (call :meth:`Transaction.start` next)."""
    if request.method == "INVITE":
        return InviteClientTransaction(request, reliable=reliable, settings=settings)
    return NonInviteClientTransaction(request, reliable=reliable, settings=settings)


def create_server_transaction(
    request: SipRequest, *, reliable: bool, settings: TimerSettings = DEFAULT_TIMER_SETTINGS
) -> ServerTransaction:
    """The server transaction kind a new inbound ``request`` needs (call :meth:`Transaction.start` next).

    Raises :class:`ArgumentException` for an ACK (an unmatched ACK goes to the TU) and for a
    request without parseable Via, From, To, Call-ID and CSeq (answer it with 400 instead).
    """
    if request.method == "INVITE":
        return InviteServerTransaction(request, reliable=reliable, settings=settings)
    return NonInviteServerTransaction(request, reliable=reliable, settings=settings)
