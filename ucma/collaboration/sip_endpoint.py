"""``SipEndpoint``: the signalling endpoint inside a ``UserEndpoint`` (its ``inner_endpoint``).

It owns the cached connection to the registrar, the REGISTER dialogue, the refresh timer (kept
by the platform's RegistrationManager) and client-side throttling. All its protocol work runs
on the platform's I/O thread; user-visible events go to the owner's dispatcher.
"""

from __future__ import annotations

import concurrent.futures
import enum
import logging
import threading
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import attrs

from ucma.collaboration.request_throttle import RequestThrottle
from ucma.runtime.connections import Connection, SipTransportType
from ucma.runtime.events import Event, EventArgs
from ucma.runtime.futures import copy_outcome
from ucma.runtime.registration_manager import RefreshHandle
from ucma.runtime.worker_pool import SerialDispatcher
from ucma.signaling.authentication import Authenticator
from ucma.signaling.digest_authenticator import DigestAuthenticator
from ucma.signaling.exceptions import (
    ConnectionFailureException,
    RealTimeException,
    RegisterException,
)
from ucma.signaling.message_data import SipMessageData, SipResponseData
from ucma.signaling.registration import (
    Failed,
    Registered,
    RegistrationClient,
    RetryLater,
    SendAgain,
    Unregistered,
)
from ucma.signaling.registration_states import RegistrationState, RegistrationTransitionReason
from ucma.signaling.sip.address import NameAddress
from ucma.signaling.sip.identifiers import new_epid
from ucma.signaling.sip.message import SipRequest, SipResponse
from ucma.signaling.sip.parameters import Parameters
from ucma.signaling.sip.uri import SipUri

if TYPE_CHECKING:
    from ucma.collaboration.platform import CollaborationPlatform
    from ucma.collaboration.user_endpoint import UserEndpoint

_log = logging.getLogger("ucma.collaboration")
_T = TypeVar("_T")

#: Sends of one REGISTER attempt (challenges, 423, redirects) before giving up on a looping registrar.
_MAX_SENDS_PER_ATTEMPT = 8
#: How long a Retry-After may make an attempt wait before it counts as a failed attempt instead.
_MAX_RETRY_AFTER_WAIT = 300.0
#: A de-registration during terminate waits at most this long for the registrar.
UNREGISTER_TIMEOUT = 5.0


class SipAuthenticationProtocols(enum.Flag):
    """UCMA ``SipAuthenticationProtocols`` plus DIGEST for standard SIP servers."""

    NONE = 0
    NTLM = 1
    KERBEROS = 2
    DIGEST = 4


@attrs.frozen
class RegistrationStateChangedEventArgs(EventArgs):
    """``registration_state_changed`` data (UCMA ``RegistrationStateChangedEventArgs``)."""

    previous_state: RegistrationState
    state: RegistrationState
    reason: RegistrationTransitionReason = RegistrationTransitionReason.NONE
    message_data: SipMessageData | None = None


RegisterCallback = Callable[[Registered | None, BaseException | None], None]


class SipEndpoint:
    """Registers the owner with its registrar and keeps the connection to it (UCMA ``SipEndpoint``)."""

    registration_state_changed: Event[RegistrationStateChangedEventArgs] = Event()

    def __init__(self, owner: UserEndpoint, platform: CollaborationPlatform) -> None:
        settings = owner.settings
        self._owner = owner
        self._platform = platform
        self.owner_uri = settings.owner_uri
        self._aor = settings.owner_sip_uri
        self.transport_type: SipTransportType = platform.transport
        self.server = settings.server_name
        default_port = 5061 if self.transport_type is SipTransportType.TLS else 5060
        self.server_port = settings.server_port or default_port
        self.id = settings.endpoint_id or new_epid()
        self.sip_instance = f"<urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, self.owner_uri + ':' + self.id)}>"
        #: UCMA: a user endpoint fails registration when a credential is set and the server never challenges.
        self.allow_no_authentication = False
        self.maximum_register_redirection_attempts = settings.maximum_register_redirection_attempts
        self._throttle = RequestThrottle()
        self._throttle.enabled = not platform.is_server_platform
        self._lock = threading.Lock()
        self._registration_state = RegistrationState.UNREGISTERED
        self._authenticator: Authenticator | None = None
        self._registration: RegistrationClient | None = None
        self._connection: Connection | None = None
        self._refresh: RefreshHandle | None = None
        self._keep_alive: float | None = None
        self.gruu: str | None = None
        self.on_connection_lost: Callable[[BaseException], None] | None = None
        self.on_refresh_failed: Callable[[BaseException], None] | None = None
        self.on_refreshed: Callable[[Registered], None] | None = None

    # --- UCMA properties -------------------------------------------------------------------------

    @property
    def dispatcher(self) -> SerialDispatcher:
        """Events go to the owning endpoint's dispatcher, keeping one order for both."""
        return self._owner.dispatcher

    @property
    def registration_state(self) -> RegistrationState:
        """Current registration state."""
        return self._registration_state

    @property
    def is_endpoint_throttled(self) -> bool:
        """At most 20 outstanding requests (later ones queued in order) when True; client-mode default."""
        return self._throttle.enabled

    @is_endpoint_throttled.setter
    def is_endpoint_throttled(self, value: bool) -> None:
        self._throttle.enabled = bool(value)

    @property
    def authentication_protocol(self) -> SipAuthenticationProtocols:
        """The scheme the registrar challenged with, NONE before a challenge."""
        name = self._authenticator.protocol_name if self._authenticator is not None else ""
        return {
            "Digest": SipAuthenticationProtocols.DIGEST,
            "NTLM": SipAuthenticationProtocols.NTLM,
            "Kerberos": SipAuthenticationProtocols.KERBEROS,
        }.get(name, SipAuthenticationProtocols.NONE)

    @property
    def uri(self) -> str:
        """The owner's URI."""
        return self.owner_uri

    @property
    def connection(self) -> Connection | None:
        """The cached connection to the registrar (None before establish or after a drop)."""
        return self._connection

    @property
    def outstanding_requests(self) -> int:
        """Requests sent and not yet answered."""
        return self._throttle.outstanding

    @property
    def queued_requests(self) -> int:
        """Requests held back by throttling."""
        return self._throttle.queued

    # --- sending ---------------------------------------------------------------------------------

    def send_request(self, request: SipRequest) -> concurrent.futures.Future[SipResponse]:
        """Send an out-of-dialog request on the cached connection, authorised and throttled.

        Thread-safe. The future holds the final response, or ConnectionFailureException /
        OperationTimeoutException.
        """
        outer: concurrent.futures.Future[SipResponse] = concurrent.futures.Future()

        def on_io() -> None:
            inner = self._io_send(request)
            inner.add_done_callback(lambda f: copy_outcome(f, outer))

        self._platform.sip_stack.call_soon(on_io)
        return outer

    def _io_send(self, request: SipRequest) -> concurrent.futures.Future[SipResponse]:
        connection = self._connection
        if connection is None or connection.is_closed:
            failed: concurrent.futures.Future[SipResponse] = concurrent.futures.Future()
            failed.set_exception(
                ConnectionFailureException(
                    f"no connection to {self.server}:{self.server_port}; the endpoint is not registered"
                )
            )
            return failed
        if self._authenticator is not None and request.method != "REGISTER":
            self._authenticator.authorize(request)
        return self._throttle.send(request, connection.send_request)

    # --- registration (I/O thread) -----------------------------------------------------------------

    def _set_registration_state(
        self, state: RegistrationState, reason: RegistrationTransitionReason, message: SipResponse | None = None
    ) -> None:
        with self._lock:
            previous = self._registration_state
            if previous == state:
                return
            self._registration_state = state
        data = SipResponseData(message) if message is not None else None
        self.registration_state_changed.fire(self, RegistrationStateChangedEventArgs(previous, state, reason, data))

    def _make_authenticator(self) -> Authenticator | None:
        credential = self._owner.credential
        if credential is None:
            return None
        return DigestAuthenticator(credential.user_name, credential.password)

    def _io_register(self, on_done: RegisterCallback) -> None:
        """Connect if needed, then REGISTER until the registrar accepts or refuses."""
        self._set_registration_state(RegistrationState.REGISTERING, RegistrationTransitionReason.NONE)
        _RegisterAttempt(self, on_done).start()

    def _io_unregister(self, on_done: Callable[[], None]) -> None:
        """Remove the binding (best effort, bounded in time), then close a client-mode connection."""
        self._cancel_refresh()
        connection = self._connection
        finished = [False]

        def finish() -> None:
            if finished[0]:
                return
            finished[0] = True
            self._drop_connection()
            self._set_registration_state(RegistrationState.UNREGISTERED, RegistrationTransitionReason.NONE)
            on_done()

        if (
            self._registration is None
            or connection is None
            or connection.is_closed
            or not self._registration.registered
        ):
            finish()
            return
        self._set_registration_state(RegistrationState.UNREGISTERING, RegistrationTransitionReason.NONE)
        request = self._registration.create_register(connection.make_via(), unregister=True)
        future = self._throttle.send(request, connection.send_request)
        future.add_done_callback(lambda _: self._platform.sip_stack.call_soon(finish))
        self._platform.sip_stack.call_later(UNREGISTER_TIMEOUT, finish)

    def _io_connect(self, callback: Callable[[Connection | None, BaseException | None], None]) -> None:
        future = self._platform._connect(self.server, self.server_port, self.transport_type)
        self._on_io(future, lambda f: self._io_connected(f, callback))

    def _io_connected(
        self,
        future: concurrent.futures.Future[Connection],
        callback: Callable[[Connection | None, BaseException | None], None],
    ) -> None:
        exc = future.exception()
        if exc is not None:
            callback(None, exc)
            return
        connection = future.result()
        if connection is not self._connection:
            self._connection = connection
            connection.add_close_listener(self._connection_closed)
            self._adopt_connection(connection)
        callback(connection, None)

    def _adopt_connection(self, connection: Connection) -> None:
        contact_uri = connection.contact_uri(self._aor.user)
        contact = NameAddress(contact_uri, None, Parameters([("+sip.instance", f'"{self.sip_instance}"')]))
        if self._registration is None:
            self._authenticator = self._make_authenticator()
            self._registration = RegistrationClient(
                aor=self._aor,
                contact=contact,
                registrar_uri=SipUri(host=self._aor.host, scheme=self._aor.scheme),
                authenticator=self._authenticator,
                requested_expires=self._owner.settings.requested_registration_expires,
                max_redirects=self.maximum_register_redirection_attempts,
                allow_no_authentication=self.allow_no_authentication,
                extra_headers=self._register_headers(),
            )
        else:
            self._registration.replace_contact(contact)

    def _register_headers(self) -> list[tuple[str, str]]:
        headers = [("Supported", "path, gruu, outbound")]
        agent = " ".join(
            a for a in (self._platform.application_user_agent, self._owner.settings.endpoint_user_agent) if a
        )
        headers.append(("User-Agent", f"{agent} ucma/0.1".strip()))
        headers.extend(self._owner.settings.additional_headers)
        return headers

    def _connection_closed(self, connection: Connection, reason: BaseException | None) -> None:
        def on_io() -> None:
            if connection is not self._connection:
                return
            self._connection = None
            error = (
                reason
                if isinstance(reason, RealTimeException)
                else ConnectionFailureException(f"connection to {self.server}:{self.server_port} was lost", reason)
            )
            self._throttle.fail_queued(error)
            self._cancel_refresh()
            if self._registration_state is RegistrationState.REGISTERED:
                self._set_registration_state(
                    RegistrationState.UNREGISTERED, RegistrationTransitionReason.CONNECTION_DROPPED
                )
                if self.on_connection_lost is not None:
                    self.on_connection_lost(error)

        self._platform.sip_stack.call_soon(on_io)

    def _drop_connection(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None and not self._platform.is_server_platform:
            connection.close()

    def _registered(self, step: Registered) -> None:
        self.gruu = step.gruu
        self._set_registration_state(RegistrationState.REGISTERED, RegistrationTransitionReason.NONE, step.response)
        connection = self._connection
        if connection is not None and connection.reliable and not self._platform.is_server_platform:
            interval = (
                float(step.keep_alive_interval)
                if step.keep_alive_interval
                else self._owner.settings.keep_alive_interval
            )
            if interval != self._keep_alive:
                connection.set_keep_alive(interval)
                self._keep_alive = interval
        self._schedule_refresh(step.refresh_after)

    def _schedule_refresh(self, delay: float) -> None:
        self._cancel_refresh()
        self._refresh = self._platform.registration_manager.schedule(
            delay, self._io_refresh, self._platform.sip_stack.call_soon
        )

    def _cancel_refresh(self) -> None:
        if self._refresh is not None:
            self._refresh.cancel()
            self._refresh = None

    def _io_refresh(self) -> None:
        self._refresh = None
        if self._registration_state is not RegistrationState.REGISTERED:
            return

        def done(step: Registered | None, error: BaseException | None) -> None:
            if step is not None:
                if self.on_refreshed is not None:
                    self.on_refreshed(step)
            elif error is not None and self.on_refresh_failed is not None:
                self._set_registration_state(
                    RegistrationState.UNREGISTERED, RegistrationTransitionReason.REGISTRATION_REFRESH
                )
                self.on_refresh_failed(error)

        _RegisterAttempt(self, done).start()

    def _on_io(
        self, future: concurrent.futures.Future[_T], fn: Callable[[concurrent.futures.Future[_T]], None]
    ) -> None:
        """Run ``fn(future)`` on the I/O thread once the future is done."""
        call_soon = self._platform.sip_stack.call_soon
        future.add_done_callback(lambda f: call_soon(lambda: fn(f)))

    def __repr__(self) -> str:
        return f"<SipEndpoint {self.owner_uri} {self._registration_state.name}>"


class _RegisterAttempt:
    """One registration attempt: connect if needed, then REGISTER through challenges, 423s and redirects."""

    def __init__(self, endpoint: SipEndpoint, on_done: RegisterCallback) -> None:
        self._ep = endpoint
        self._on_done = on_done
        self._sends = 0
        self._waits = 0
        self._finished = False

    def start(self) -> None:
        connection = self._ep._connection
        if connection is None or connection.is_closed:
            self._ep._io_connect(self._connected)
        else:
            self._send()

    def _connected(self, connection: Connection | None, error: BaseException | None) -> None:
        if error is not None:
            self._finish(None, error)
        else:
            self._send()

    def _send(self) -> None:
        ep = self._ep
        connection = ep._connection
        registration = ep._registration
        if connection is None or connection.is_closed or registration is None:
            self.start()
            return
        self._sends += 1
        if self._sends > _MAX_SENDS_PER_ATTEMPT:
            self._finish(None, RegisterException("the registrar keeps asking for another REGISTER; giving up"))
            return
        request = registration.create_register(connection.make_via())
        future = ep._throttle.send(request, connection.send_request)
        ep._on_io(future, lambda f: self._response(request, f))

    def _response(self, request: SipRequest, future: concurrent.futures.Future[SipResponse]) -> None:
        error = future.exception()
        if error is not None:
            self._finish(None, error)
            return
        ep = self._ep
        registration = ep._registration
        assert registration is not None  # noqa: S101  (set before any REGISTER is built)
        step = registration.process_response(request, future.result())
        if isinstance(step, Registered):
            ep._registered(step)
            self._finish(step, None)
        elif isinstance(step, SendAgain):
            if step.redirect_target is not None:
                target = step.redirect_target
                ep._drop_connection()
                ep.server = target.host
                ep.server_port = target.port or ep.server_port
                if target.transport in ("tcp", "tls", "udp"):
                    ep.transport_type = SipTransportType[target.transport.upper()]
                self.start()
            else:
                self._send()
        elif isinstance(step, RetryLater):
            self._waits += 1
            if step.delay > _MAX_RETRY_AFTER_WAIT or self._waits > ep._owner.settings.max_register_retries:
                self._finish(
                    None,
                    RegisterException(
                        f"registrar unavailable ({step.response.status_code}), retry after {step.delay:g} s",
                        SipResponseData(step.response),
                    ),
                )
                return
            self._sends = 0  # the send budget guards loops within one wait, not across waits
            ep._platform.registration_manager.schedule(step.delay, self._send, ep._platform.sip_stack.call_soon)
        elif isinstance(step, Failed):
            if step.remove_binding:
                connection = ep._connection
                if connection is not None and not connection.is_closed:
                    cleanup = registration.create_register(connection.make_via(), unregister=True)
                    ep._throttle.send(cleanup, connection.send_request)
            self._finish(None, step.error)
        elif isinstance(step, Unregistered):  # pragma: no cover - attempts never unregister
            self._finish(None, RegisterException("registrar removed the binding"))

    def _finish(self, step: Registered | None, error: BaseException | None) -> None:
        if self._finished:
            return
        self._finished = True
        self._on_done(step, error)
