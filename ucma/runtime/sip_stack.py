"""``SipStack``: the sans-IO transaction layer run over real sockets by one I/O thread.

One stack per platform owns an :class:`IoLoop` (its only thread), a :class:`TransactionTable`,
the connections it opened or accepted, and its listeners.  Every socket and every transaction is
touched on the I/O thread only; public methods are thread-safe and hop there.  Futures are
completed on the I/O thread, so their done-callbacks run there and must be short.  Incoming
requests are handed to :attr:`SipStack.request_handler` on the worker pool, never on the I/O
thread, so application code cannot stall the network.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import socket
import ssl
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import attrs

from ucma.runtime.connections import (
    DEFAULT_MAX_OUTBOUND_BYTES,
    Address,
    Connection,
    SipTransportType,
    StreamConnector,
    StreamListener,
    UdpEndpoint,
    format_address,
    is_ip_literal,
)
from ucma.runtime.futures import fail, settle
from ucma.runtime.io_loop import IoLoop, TimerHandle
from ucma.runtime.tls import default_client_ssl_context
from ucma.runtime.worker_pool import WorkerPool, describe_callable
from ucma.signaling.exceptions import (
    ArgumentException,
    ConnectionFailureException,
    InvalidOperationException,
    MessageParsingException,
    OperationTimeoutException,
)
from ucma.signaling.sip.builders import make_response
from ucma.signaling.sip.identifiers import new_tag
from ucma.signaling.sip.message import SipRequest, SipResponse
from ucma.signaling.sip.parser import DEFAULT_LIMITS, ParserLimits
from ucma.signaling.transaction import (
    CancelTimer,
    ClientTransaction,
    DeliverRequest,
    DeliverResponse,
    SendMessage,
    ServerTransaction,
    StartTimer,
    Terminated,
    TransactionAction,
    TransactionTimedOut,
    TransportFailed,
    create_client_transaction,
    create_server_transaction,
)
from ucma.signaling.transaction_matching import TransactionTable
from ucma.signaling.transaction_timers import DEFAULT_TIMER_SETTINGS, TimerName, TimerSettings

__all__ = ["RequestHandler", "ServerTransactionHandle", "SipStack", "SipStackStats"]

_log = logging.getLogger("ucma.runtime")

_T = TypeVar("_T")

RequestHandler = Callable[[SipRequest, "ServerTransactionHandle"], None]
"""Receives each new incoming request (never a retransmission) on a worker thread."""

_SYNC_TIMEOUT = 10.0
"""How long a blocking call (``listen``) waits for the I/O thread."""


@attrs.frozen
class SipStackStats:
    """A snapshot for monitoring and tests; ``io_threads`` is always 1 while running."""

    io_threads: int
    open_connections: int
    live_transactions: int
    pending_connects: int
    listeners: int


class _Entry:
    """A transaction and what the runtime keeps for it: its connection and its armed timers."""

    __slots__ = ("connection", "forgotten", "timers", "transaction")

    def __init__(self, transaction: ClientTransaction | ServerTransaction, connection: Connection) -> None:
        self.transaction = transaction
        self.connection = connection
        self.timers: dict[TimerName, TimerHandle] = {}
        self.forgotten = False


class _ClientEntry(_Entry):
    __slots__ = ("future", "on_response")

    def __init__(
        self,
        transaction: ClientTransaction,
        connection: Connection,
        future: concurrent.futures.Future[SipResponse],
        on_response: Callable[[SipResponse], None] | None,
    ) -> None:
        super().__init__(transaction, connection)
        self.future = future
        self.on_response = on_response


class _ServerEntry(_Entry):
    __slots__ = ("guard", "handle")

    def __init__(self, transaction: ServerTransaction, connection: Connection, handle: ServerTransactionHandle) -> None:
        super().__init__(transaction, connection)
        self.handle = handle
        self.guard: TimerHandle | None = None


class ServerTransactionHandle:
    """An incoming request and the way to answer it through its server transaction.

    :meth:`respond` is thread-safe; the transaction retransmits the answer as RFC 3261 requires.
    Responses made with :meth:`create_response` share one To tag.
    """

    def __init__(
        self, stack: SipStack, request: SipRequest, connection: Connection, *, can_respond: bool = True
    ) -> None:
        self._stack = stack
        self._request = request
        self._connection = connection
        self._lock = threading.Lock()
        self._final_sent = not can_respond
        self._can_respond = can_respond
        self._to_tag: str | None = None
        self._entry: _ServerEntry | None = None

    @property
    def request(self) -> SipRequest:
        """The request received."""
        return self._request

    @property
    def connection(self) -> Connection:
        """The connection (or UDP flow) it arrived on; responses go back over it."""
        return self._connection

    @property
    def final_response_sent(self) -> bool:
        """True once a final (2xx-6xx) response was handed to :meth:`respond` (always True for an ACK)."""
        return self._final_sent

    @property
    def to_tag(self) -> str:
        """The To tag :meth:`create_response` adds (the request's own, in a dialog)."""
        with self._lock:
            if self._to_tag is None:
                self._to_tag = self._request.to_header.tag or new_tag()
            return self._to_tag

    def create_response(
        self,
        status_code: int,
        reason_phrase: str | None = None,
        *,
        headers: list[tuple[str, str]] | tuple[tuple[str, str], ...] = (),
        body: bytes = b"",
        content_type: str | None = None,
    ) -> SipResponse:
        """A response to the request (RFC 3261 section 8.2.6) carrying this handle's To tag."""
        return make_response(
            self._request,
            status_code,
            reason_phrase,
            to_tag=self.to_tag,
            headers=headers,
            body=body,
            content_type=content_type,
        )

    def respond(self, response: SipResponse | int) -> None:
        """Send ``response`` (or a response with that status code) through the server transaction.

        Thread-safe and non-blocking.  Raises :class:`InvalidOperationException` once a final
        response was sent (or for an ACK, which is never answered).
        """
        if isinstance(response, int):
            response = self.create_response(response)
        if not 100 <= response.status_code <= 699:
            raise ArgumentException("status code must be in 100..699", "response")
        with self._lock:
            if self._final_sent:
                what = "an ACK is never answered" if not self._can_respond else "a final response was already sent"
                raise InvalidOperationException(f"cannot respond to {self._request.method}: {what}")
            if response.status_code >= 200:
                self._final_sent = True
        self._stack._respond(self, response)

    def __repr__(self) -> str:
        state = "answered" if self._final_sent else "pending"
        peer = format_address(self._connection.remote_address)
        return f"<ServerTransactionHandle {self._request.method} from {peer} {state}>"


class SipStack:
    """The platform's SIP transport and transaction runtime (one I/O thread, whatever the load)."""

    def __init__(
        self,
        *,
        name: str,
        worker_pool: WorkerPool,
        timer_settings: TimerSettings = DEFAULT_TIMER_SETTINGS,
        limits: ParserLimits = DEFAULT_LIMITS,
        max_outbound_bytes: int = DEFAULT_MAX_OUTBOUND_BYTES,
    ) -> None:
        if max_outbound_bytes < 1:
            raise ArgumentException("the outbound queue bound must be positive", "max_outbound_bytes")
        self._name = name
        self._pool = worker_pool
        self._timer_settings = timer_settings
        self._limits = limits
        self._max_outbound_bytes = max_outbound_bytes
        self._loop = IoLoop(name)
        self._lock = threading.Lock()
        self._stopped = False
        self._table = TransactionTable()
        self._entries: dict[ClientTransaction | ServerTransaction, _Entry] = {}
        self._connections: set[Connection] = set()
        self._connectors: set[StreamConnector] = set()
        self._pending_connects: set[concurrent.futures.Future[Connection]] = set()
        self._stream_listeners: list[StreamListener] = []
        self._udp_listeners: list[UdpEndpoint] = []
        #: Receives each new incoming request on the worker pool; None answers 501.
        self.request_handler: RequestHandler | None = None
        #: Told (on the I/O thread) of each connection accepted by a listener.
        self.connection_accepted: Callable[[Connection], None] | None = None

    # --- configuration and state ---------------------------------------------------------------

    @property
    def name(self) -> str:
        """Names the I/O thread (``ucma-io-<name>``)."""
        return self._name

    @property
    def loop(self) -> IoLoop:
        """The I/O loop (advanced use: socket handlers of your own)."""
        return self._loop

    @property
    def io_thread(self) -> threading.Thread | None:
        """The one thread the stack owns (None before :meth:`start`)."""
        return self._loop.thread

    @property
    def is_running(self) -> bool:
        """True between :meth:`start` and :meth:`stop`."""
        return self._loop.is_running and not self._stopped

    @property
    def worker_pool(self) -> WorkerPool:
        """Runs request handlers and DNS lookups."""
        return self._pool

    @property
    def timer_settings(self) -> TimerSettings:
        """T1, T2, T4 of the transactions."""
        return self._timer_settings

    @property
    def limits(self) -> ParserLimits:
        """Bounds on inbound messages."""
        return self._limits

    @property
    def max_outbound_bytes(self) -> int:
        """Bytes a stream may queue for a peer that does not read before it is closed."""
        return self._max_outbound_bytes

    @property
    def connections(self) -> tuple[Connection, ...]:
        """The open connections and UDP flows (a snapshot)."""
        return tuple(self._connections)

    @property
    def thread_count(self) -> int:
        """Threads the stack owns: 1 (the I/O thread) while running, whatever the load; 0 otherwise."""
        thread = self._loop.thread
        return 1 if thread is not None and thread.is_alive() else 0

    @property
    def connection_count(self) -> int:
        """Open connections and UDP flows."""
        return len(self._connections)

    @property
    def transaction_count(self) -> int:
        """Live client and server transactions."""
        return len(self._entries)

    @property
    def stats(self) -> SipStackStats:
        """Threads owned, open connections, live transactions (approximate off the I/O thread)."""
        return SipStackStats(
            io_threads=self.thread_count,
            open_connections=len(self._connections),
            live_transactions=len(self._entries),
            pending_connects=len(self._pending_connects),
            listeners=len(self._stream_listeners) + len(self._udp_listeners),
        )

    def in_loop_thread(self) -> bool:
        """True on the I/O thread."""
        return self._loop.in_loop_thread()

    def call_soon(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the I/O thread (see :meth:`IoLoop.call_soon`)."""
        self._loop.call_soon(fn)

    def call_later(self, delay: float, fn: Callable[[], None]) -> TimerHandle:
        """Run ``fn`` on the I/O thread in ``delay`` seconds (see :meth:`IoLoop.call_later`)."""
        return self._loop.call_later(delay, fn)

    # --- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        """Start the I/O thread; idempotent, but a stopped stack cannot be started again."""
        with self._lock:
            if self._stopped:
                raise InvalidOperationException(f"SIP stack {self._name!r} was stopped and cannot be restarted")
        self._loop.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Close every listener and connection (pending requests fail with ConnectionFailureException,
        close listeners are told), then stop and join the I/O thread.  Idempotent."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        if self._loop.is_running:
            if self._loop.in_loop_thread():
                self._shutdown()
            else:
                done = threading.Event()

                def shutdown() -> None:
                    try:
                        self._shutdown()
                    finally:
                        done.set()

                if self._loop.try_call_soon(shutdown):
                    done.wait(timeout)
        self._loop.stop(timeout)
        # Anything that raced with the loop's end: fail it here rather than leave it pending.
        for future in self._take_pending_connects():
            fail(future, ConnectionFailureException(f"SIP stack {self._name!r} stopped before the connection opened"))

    def _shutdown(self) -> None:
        reason = ConnectionFailureException(f"SIP stack {self._name!r} is stopping")
        for listener in self._stream_listeners:
            listener.close()
        self._stream_listeners.clear()
        for connector in list(self._connectors):
            connector.cancel(reason)
        for future in self._take_pending_connects():
            fail(future, reason)
        for connection in list(self._connections):
            connection._close(reason)
        for endpoint in self._udp_listeners:
            endpoint.close()
        self._udp_listeners.clear()
        for entry in list(self._entries.values()):
            if isinstance(entry, _ClientEntry):
                fail(entry.future, reason)
            self._forget(entry)

    # --- connecting and listening -----------------------------------------------------------------

    def connect(
        self,
        host: str,
        port: int,
        transport: SipTransportType,
        *,
        ssl_context: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
        timeout: float = 10.0,
    ) -> concurrent.futures.Future[Connection]:
        """Open a connection (TCP, TLS) or a UDP flow to ``host:port``; never blocks.

        TLS uses :func:`default_client_ssl_context` unless ``ssl_context`` is given, and checks
        the certificate against ``server_hostname`` (default ``host``).  Host names are resolved
        on the worker pool.  The future fails with :class:`ConnectionFailureException` (refused,
        unreachable, unresolvable, timed out) or :class:`TlsFailureException`.
        """
        if transport not in (SipTransportType.TCP, SipTransportType.TLS, SipTransportType.UDP):
            raise ArgumentException("transport must be TCP, TLS or UDP", "transport")
        if not host:
            raise ArgumentException("host must not be empty", "host")
        if not 0 < port < 65536:
            raise ArgumentException("port must be in 1..65535", "port")
        if not timeout > 0:
            raise ArgumentException("timeout must be positive", "timeout")
        if not self.is_running:
            raise InvalidOperationException(f"SIP stack {self._name!r} is not running")
        if transport is SipTransportType.TLS:
            if ssl_context is None:
                ssl_context = default_client_ssl_context()
            if server_hostname is None:
                server_hostname = host.strip("[]")
        future: concurrent.futures.Future[Connection] = concurrent.futures.Future()
        with self._lock:
            self._pending_connects.add(future)
        future.add_done_callback(self._connect_done)
        display = f"{host}:{port}" if ":" not in host or host.startswith("[") else f"[{host}]:{port}"
        sock_type = socket.SOCK_DGRAM if transport is SipTransportType.UDP else socket.SOCK_STREAM

        def opened(addresses: list[Address]) -> None:
            if transport is SipTransportType.UDP:
                self._open_udp(display, addresses, future)
            else:
                self._open_stream(
                    transport, display, addresses, future, timeout=timeout, ssl_context=ssl_context,
                    server_hostname=server_hostname,
                )

        if is_ip_literal(host):
            literal = host.strip("[]")
            family = socket.AF_INET6 if ":" in literal else socket.AF_INET
            sockaddr: tuple[Any, ...] = (literal, port, 0, 0) if family == socket.AF_INET6 else (literal, port)
            self._on_loop(lambda: opened([(family, sockaddr)]), future)
        else:
            self._resolve(host, port, sock_type, display, future=future, then=opened)
        return future

    def _connect_done(self, future: concurrent.futures.Future[Connection]) -> None:
        with self._lock:
            self._pending_connects.discard(future)

    def _take_pending_connects(self) -> list[concurrent.futures.Future[Connection]]:
        with self._lock:
            futures = list(self._pending_connects)
            self._pending_connects.clear()
        return futures

    def _resolve(
        self,
        host: str,
        port: int,
        sock_type: int,
        display: str,
        *,
        future: concurrent.futures.Future[Connection],
        then: Callable[[list[Address]], None],
    ) -> None:
        def lookup() -> None:
            try:
                infos = socket.getaddrinfo(host, port, type=sock_type)
            except (OSError, UnicodeError) as exc:
                detail = getattr(exc, "strerror", None) or str(exc)
                error = ConnectionFailureException(
                    f"cannot resolve {host!r} ({detail}): check the server name and this machine's DNS", exc
                )
                self._on_loop(lambda: fail(future, error), future)
                return
            addresses: list[Address] = []
            for family, _, _, _, sockaddr in infos:
                if (family, sockaddr) not in addresses:
                    addresses.append((family, sockaddr))
            self._on_loop(lambda: then(addresses), future)

        try:
            self._pool.submit(lookup)
        except InvalidOperationException as exc:
            fail(future, ConnectionFailureException(f"cannot resolve {display}: the worker pool is shut down", exc))

    def _on_loop(self, fn: Callable[[], None], future: concurrent.futures.Future[Any]) -> None:
        """Run ``fn`` on the I/O thread, or fail ``future`` if the stack stopped meanwhile."""
        if not self._loop.try_call_soon(fn):
            fail(future, ConnectionFailureException(f"SIP stack {self._name!r} is stopped"))

    def _open_stream(
        self,
        transport: SipTransportType,
        display: str,
        addresses: list[Address],
        future: concurrent.futures.Future[Connection],
        *,
        timeout: float,
        ssl_context: ssl.SSLContext | None,
        server_hostname: str | None,
    ) -> None:
        if future.done():
            return
        connector = StreamConnector(
            self, transport, display, addresses, future, timeout=timeout, ssl_context=ssl_context,
            server_hostname=server_hostname, on_finished=self._connectors.discard,
        )
        self._connectors.add(connector)
        connector.start()

    def _open_udp(self, display: str, addresses: list[Address], future: concurrent.futures.Future[Connection]) -> None:
        if future.done():
            return
        if not addresses:
            fail(future, ConnectionFailureException(f"no address found for {display}"))
            return
        family, sockaddr = addresses[0]
        remote = (str(sockaddr[0]), int(sockaddr[1]))
        for endpoint in self._udp_listeners:
            if endpoint.family == family:
                settle(future, endpoint.flow_for(remote, outbound=True))
                return
        try:
            sock = socket.socket(family, socket.SOCK_DGRAM)
        except OSError as exc:
            fail(future, ConnectionFailureException(f"cannot open a UDP socket for {display}: {exc}", exc))
            return
        try:
            sock.setblocking(False)
            sock.connect(sockaddr)  # picks the source address; UDP connect sends nothing
            endpoint = UdpEndpoint(self, sock, connected=True)
        except OSError as exc:
            sock.close()
            fail(
                future,
                ConnectionFailureException(
                    f"cannot reach {display} over UDP ({exc.strerror or exc}): check the address and network route", exc
                ),
            )
            return
        endpoint.attach()
        settle(future, endpoint.flow_for(remote, outbound=True))

    def listen(
        self, host: str, port: int, transport: SipTransportType, *, ssl_context: ssl.SSLContext | None = None
    ) -> tuple[str, int]:
        """Accept connections (TCP, TLS) or datagrams (UDP) on ``host:port``; return the bound address.

        Port 0 picks a free port.  TLS needs a server ``ssl_context`` (see
        :func:`~ucma.runtime.tls.default_server_ssl_context`); mutual TLS when it requires client
        certificates.  Raises :class:`ConnectionFailureException` when the address cannot be used.
        Blocks until the I/O thread has bound the socket.
        """
        if transport not in (SipTransportType.TCP, SipTransportType.TLS, SipTransportType.UDP):
            raise ArgumentException("transport must be TCP, TLS or UDP", "transport")
        if transport is SipTransportType.TLS and ssl_context is None:
            raise ArgumentException(
                "listening for TLS needs an ssl_context holding the server certificate", "ssl_context"
            )
        if not 0 <= port < 65536:
            raise ArgumentException("port must be in 0..65535", "port")
        if not self.is_running:
            raise InvalidOperationException(f"SIP stack {self._name!r} is not running")
        sock_type = socket.SOCK_DGRAM if transport is SipTransportType.UDP else socket.SOCK_STREAM
        where = f"{host}:{port} ({transport.name})"
        try:
            infos = socket.getaddrinfo(host or None, port, type=sock_type, flags=socket.AI_PASSIVE)
        except (OSError, UnicodeError) as exc:
            raise ConnectionFailureException(
                f"cannot listen on {where}: cannot resolve {host!r} ({exc})", exc
            ) from None
        family, _, _, _, sockaddr = infos[0]
        return self._run_sync(lambda: self._io_listen(family, sockaddr, transport, ssl_context, where))

    def _io_listen(
        self, family: int, sockaddr: Any, transport: SipTransportType, ssl_context: ssl.SSLContext | None, where: str
    ) -> tuple[str, int]:
        udp = transport is SipTransportType.UDP
        sock = socket.socket(family, socket.SOCK_DGRAM if udp else socket.SOCK_STREAM)
        try:
            if not udp:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(sockaddr)
            if not udp:
                sock.listen(512)
            sock.setblocking(False)
        except OSError as exc:
            sock.close()
            raise ConnectionFailureException(
                f"cannot listen on {where}: {exc.strerror or exc}; choose another address or port", exc
            ) from None
        if udp:
            endpoint = UdpEndpoint(self, sock, connected=False)
            endpoint.attach()
            self._udp_listeners.append(endpoint)
            address = endpoint.local_address
        else:
            listener = StreamListener(self, sock, transport, ssl_context)
            listener.attach()
            self._stream_listeners.append(listener)
            address = listener.address
        _log.info("listening on %s (%s)", format_address(address), transport.name)
        return address

    def _run_sync(self, fn: Callable[[], _T]) -> _T:
        if self._loop.in_loop_thread():
            return fn()
        future: concurrent.futures.Future[_T] = concurrent.futures.Future()

        def run() -> None:
            try:
                future.set_result(fn())
            except BaseException as exc:
                future.set_exception(exc)

        if not self._loop.try_call_soon(run):
            raise InvalidOperationException(f"SIP stack {self._name!r} is stopped")
        return future.result(_SYNC_TIMEOUT)

    # --- ConnectionHost (I/O thread) ------------------------------------------------------------

    def _advertised_address(self, connection: Connection) -> tuple[str, int]:
        """Where peers reach us over ``connection``: its local address, or our listening port for
        the same transport (so a Contact from an outbound connection points at the listener)."""
        host, port = connection.local_address
        if connection.outbound:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            if connection.transport is SipTransportType.UDP:
                for endpoint in self._udp_listeners:
                    if endpoint.family == family:
                        return (host, endpoint.local_address[1])
            else:
                for listener in self._stream_listeners:
                    if listener.transport is connection.transport and listener.family == family:
                        return (host, listener.address[1])
        return (host, port)

    def _connection_opened(self, connection: Connection) -> None:
        self._connections.add(connection)
        if not connection.outbound and connection.transport.reliable:
            hook = self.connection_accepted
            if hook is not None:
                try:
                    hook(connection)
                except Exception:
                    _log.exception("connection_accepted hook %s raised", describe_callable(hook))

    def _connection_closed(self, connection: Connection, reason: BaseException | None) -> None:
        self._connections.discard(connection)
        if not connection._transactions:
            return
        peer = format_address(connection.remote_address)
        for entry in list(connection._transactions):
            if isinstance(entry, _ClientEntry) and not entry.future.done():
                method = entry.transaction.request.method
                if isinstance(reason, ConnectionFailureException):
                    error = ConnectionFailureException(f"no final response to {method}: {reason.message}", reason)
                elif reason is None:
                    error = ConnectionFailureException(
                        f"the connection to {peer} was closed before the final response to {method} arrived"
                    )
                else:
                    error = ConnectionFailureException(
                        f"the connection to {peer} was lost before the final response to {method} arrived ({reason})",
                        reason,
                    )
                fail(entry.future, error)
            self._forget(entry)

    def _start_client_transaction(
        self,
        connection: Connection,
        request: SipRequest,
        on_response: Callable[[SipResponse], None] | None,
        future: concurrent.futures.Future[SipResponse],
    ) -> None:
        if connection.is_closed:
            reason = connection.close_reason
            detail = f" ({reason})" if reason is not None else ""
            fail(
                future,
                ConnectionFailureException(
                    f"cannot send {request.method}: the connection to {format_address(connection.remote_address)} "
                    f"is closed{detail}",
                    reason,
                ),
            )
            return
        try:
            transaction = create_client_transaction(
                request, reliable=connection.reliable, settings=self._timer_settings
            )
            self._table.add_client(transaction)
        except (ArgumentException, InvalidOperationException) as exc:
            fail(future, exc)
            return
        entry = _ClientEntry(transaction, connection, future, on_response)
        self._entries[transaction] = entry
        connection._transactions.add(entry)
        self._execute(entry, transaction.start())

    def _message_received(self, connection: Connection, message: SipRequest | SipResponse) -> None:
        if isinstance(message, SipResponse):
            self._response_received(connection, message)
        else:
            self._request_received(connection, message)

    # --- transactions (I/O thread) --------------------------------------------------------------

    def _execute(self, entry: _Entry, actions: list[TransactionAction]) -> None:
        """Carry out a transaction's actions in order."""
        send_failed = False
        for action in actions:
            if isinstance(action, SendMessage):
                if not send_failed and not entry.connection._send_message(action.message):
                    send_failed = True
            elif isinstance(action, StartTimer):
                self._start_timer(entry, action)
            elif isinstance(action, CancelTimer):
                timer = entry.timers.pop(action.name, None)
                if timer is not None:
                    timer.cancel()
            elif isinstance(action, DeliverResponse):
                self._deliver_response(entry, action.response)
            elif isinstance(action, DeliverRequest):
                self._deliver_request(entry)
            elif isinstance(action, TransactionTimedOut):
                self._timed_out(entry)
            elif isinstance(action, TransportFailed):
                self._transport_failed(entry)
            elif isinstance(action, Terminated):
                self._forget(entry)
        if send_failed and not entry.transaction.is_terminated:
            self._execute(entry, entry.transaction.transport_error())

    def _start_timer(self, entry: _Entry, action: StartTimer) -> None:
        old = entry.timers.pop(action.name, None)
        if old is not None:
            old.cancel()
        if entry.forgotten:
            return
        name, generation = action.name, action.generation

        def fired() -> None:
            if entry.timers.get(name) is handle:
                del entry.timers[name]
            if entry.forgotten:
                return
            self._execute(entry, entry.transaction.timer_fired(name, generation))

        handle = self._loop.call_later(action.delay_seconds, fired)
        entry.timers[name] = handle

    def _forget(self, entry: _Entry) -> None:
        if entry.forgotten:
            return
        entry.forgotten = True
        for timer in entry.timers.values():
            timer.cancel()
        entry.timers.clear()
        if isinstance(entry, _ServerEntry) and entry.guard is not None:
            entry.guard.cancel()
            entry.guard = None
        self._table.remove(entry.transaction)
        self._entries.pop(entry.transaction, None)
        entry.connection._transactions.discard(entry)
        if isinstance(entry, _ClientEntry) and not entry.future.done():
            fail(
                entry.future,
                ConnectionFailureException(
                    f"the {entry.transaction.request.method} transaction ended without an answer"
                ),
            )

    def _deliver_response(self, entry: _Entry, response: SipResponse) -> None:
        if not isinstance(entry, _ClientEntry):
            return
        if response.status_code < 200:
            callback = entry.on_response
            if callback is not None:
                try:
                    callback(response)
                except Exception:
                    _log.exception("on_response callback %s raised", describe_callable(callback))
            return
        settle(entry.future, response)

    def _timed_out(self, entry: _Entry) -> None:
        request = entry.transaction.request
        peer = format_address(entry.connection.remote_address)
        if isinstance(entry, _ClientEntry):
            seconds = self._timer_settings.transaction_timeout
            fail(
                entry.future,
                OperationTimeoutException(
                    f"no final response to {request.method} from {peer} within {seconds:g} s "
                    f"({entry.connection.transport.name})"
                ),
            )
        else:
            _log.info("no ACK from %s for the final response to %s", peer, request.method)

    def _transport_failed(self, entry: _Entry) -> None:
        request = entry.transaction.request
        peer = format_address(entry.connection.remote_address)
        if isinstance(entry, _ClientEntry):
            reason = entry.connection.close_reason
            detail = f": {reason}" if reason is not None else ""
            fail(
                entry.future,
                ConnectionFailureException(
                    f"could not send {request.method} to {peer} over {entry.connection.transport.name}{detail}", reason
                ),
            )
        else:
            _log.info("could not send the response to %s back to %s", request.method, peer)

    def _response_received(self, connection: Connection, response: SipResponse) -> None:
        try:
            transaction = self._table.match_response(response)
        except MessageParsingException as exc:
            _log.warning(
                "dropped a response from %s with unusable Via/CSeq: %s", format_address(connection.remote_address), exc
            )
            return
        entry = self._entries.get(transaction) if transaction is not None else None
        if transaction is None or entry is None:
            _log.debug(
                "dropped a stray %d response from %s (no matching transaction)",
                response.status_code,
                format_address(connection.remote_address),
            )
            return
        assert isinstance(transaction, ClientTransaction)  # noqa: S101  (the table holds client ones here)
        self._execute(entry, transaction.receive_response(response))

    def _request_received(self, connection: Connection, request: SipRequest) -> None:
        try:
            existing = self._table.match_request(request)
        except MessageParsingException as exc:
            self._reject(connection, request, exc)
            return
        if existing is not None:
            entry = self._entries.get(existing)
            if entry is not None:
                self._execute(entry, existing.receive_request(request))
            return
        if request.method == "ACK":
            # An ACK for a 2xx belongs to the dialog layer above; it is never answered.
            self._hand_to_application(ServerTransactionHandle(self, request, connection, can_respond=False))
            return
        try:
            transaction = create_server_transaction(
                request, reliable=connection.reliable, settings=self._timer_settings
            )
            self._table.add_server(transaction)
        except (ArgumentException, MessageParsingException) as exc:
            self._reject(connection, request, exc)
            return
        except InvalidOperationException:
            return  # raced with an identical request: it is being handled
        handle = ServerTransactionHandle(self, request, connection)
        entry = _ServerEntry(transaction, connection, handle)
        handle._entry = entry
        self._entries[transaction] = entry
        connection._transactions.add(entry)
        if request.method != "INVITE":
            # A handler that never answers must not pin the transaction forever.
            entry.guard = self._loop.call_later(
                self._timer_settings.transaction_timeout, lambda: self._unanswered(entry)
            )
        self._execute(entry, transaction.start())

    def _unanswered(self, entry: _ServerEntry) -> None:
        entry.guard = None
        if entry.forgotten or entry.handle.final_response_sent:
            return
        _log.warning(
            "no final response to %s from %s was given within %g s; transaction dropped",
            entry.transaction.request.method,
            format_address(entry.connection.remote_address),
            self._timer_settings.transaction_timeout,
        )
        self._forget(entry)

    def _reject(self, connection: Connection, request: SipRequest, exc: Exception) -> None:
        """Answer a request we cannot process with 400 (if a response can be built) and log it."""
        detail = exc.reason if isinstance(exc, MessageParsingException) else str(exc)
        _log.warning(
            "malformed %s request from %s: %s", request.method[:32], format_address(connection.remote_address), detail
        )
        if request.method == "ACK":
            return
        try:
            response = make_response(request, 400)
        except (ArgumentException, MessageParsingException):
            return
        connection._send_message(response)

    def _deliver_request(self, entry: _Entry) -> None:
        if isinstance(entry, _ServerEntry):
            self._hand_to_application(entry.handle)

    def _hand_to_application(self, handle: ServerTransactionHandle) -> None:
        handler = self.request_handler
        if handler is None:
            if handle._can_respond:
                handle.respond(501)
            return
        try:
            self._pool.submit(lambda: self._run_handler(handler, handle))
        except InvalidOperationException:
            if handle._can_respond and not handle.final_response_sent:
                handle.respond(503)

    def _run_handler(self, handler: RequestHandler, handle: ServerTransactionHandle) -> None:
        """Worker thread: call the application; a handler that raises gets a 500 sent for it."""
        try:
            handler(handle.request, handle)
        except Exception:
            _log.exception(
                "request handler %s raised on %s; answering 500", describe_callable(handler), handle.request.method
            )
            if not handle.final_response_sent:
                with contextlib.suppress(InvalidOperationException):
                    handle.respond(500)

    def _respond(self, handle: ServerTransactionHandle, response: SipResponse) -> None:
        def send() -> None:
            entry = handle._entry
            if entry is None or entry.forgotten or entry.transaction.is_terminated:
                _log.debug(
                    "response %d to %s not sent: the transaction is over", response.status_code, handle.request.method
                )
                return
            transaction = entry.transaction
            assert isinstance(transaction, ServerTransaction)  # noqa: S101
            try:
                actions = transaction.send_response(response)
            except (InvalidOperationException, ArgumentException) as exc:
                _log.warning("cannot send response %d: %s", response.status_code, exc)
                return
            if response.status_code >= 200 and entry.guard is not None:
                entry.guard.cancel()
                entry.guard = None
            self._execute(entry, actions)

        if self._loop.in_loop_thread():
            send()
        elif not self._loop.try_call_soon(send):
            _log.debug("response %d not sent: the SIP stack is stopped", response.status_code)

    def __repr__(self) -> str:
        state = "running" if self.is_running else ("stopped" if self._stopped else "not started")
        return (
            f"<SipStack {self._name!r} {state} connections={len(self._connections)} "
            f"transactions={len(self._entries)}>"
        )

