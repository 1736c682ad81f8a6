"""SIP connections over real sockets: TCP and TLS streams, UDP flows, and the code that opens them.

A :class:`Connection` is what a transaction is sent over: one TCP or TLS connection, or one UDP
flow (a local socket plus a remote address).  All socket work happens on the owning stack's I/O
thread; the public methods of :class:`Connection` are thread-safe and hop there.  Connections
frame and parse SIP (bounded by :class:`ParserLimits`), answer and send RFC 5626 keep-alives,
and hand every message to their :class:`ConnectionHost` (the :class:`~ucma.runtime.sip_stack.SipStack`),
which owns the transactions.

Every message sent or received is logged at DEBUG on ``ucma.sip``, with credentials redacted.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import enum
import errno
import ipaddress
import logging
import os
import socket
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from ucma.runtime.futures import fail, settle
from ucma.runtime.io_loop import EVENT_READ, EVENT_WRITE, IoLoop, TimerHandle
from ucma.runtime.tls import tls_failure_from_error
from ucma.signaling.exceptions import (
    ArgumentException,
    ConnectionFailureException,
    MessageParsingException,
    RealTimeException,
    TlsFailureException,
)
from ucma.signaling.sip.header_values import Via
from ucma.signaling.sip.identifiers import new_branch
from ucma.signaling.sip.message import SipRequest, SipResponse
from ucma.signaling.sip.parameters import Parameters
from ucma.signaling.sip.parser import KeepAlive, ParserLimits, StreamParser, parse_message
from ucma.signaling.sip.redaction import redact
from ucma.signaling.sip.uri import SipUri

__all__ = [
    "DEFAULT_KEEP_ALIVE_PONG_TIMEOUT",
    "DEFAULT_MAX_OUTBOUND_BYTES",
    "CloseListener",
    "Connection",
    "ConnectionHost",
    "SipTransportType",
    "StreamConnection",
    "UdpFlow",
]

_log = logging.getLogger("ucma.runtime")
_sip_log = logging.getLogger("ucma.sip")

DEFAULT_MAX_OUTBOUND_BYTES = 8 * 1024 * 1024
"""Bytes a stream may queue for a peer that does not read before it is closed."""

DEFAULT_KEEP_ALIVE_PONG_TIMEOUT = 10.0
"""Seconds to wait for the CRLF pong after a CRLFCRLF keep-alive ping (RFC 5626 section 4.4.1)."""

_READ_SIZE = 65536
_READ_ROUNDS = 16
_WRITE_CHUNK = 256 * 1024
_UDP_MAX_DATAGRAM = 65535
_UDP_MAX_FLOWS = 4096
_TRACE_LIMIT = 16384
_HANDSHAKE_TIMEOUT = 10.0
_ACCEPTS_PER_EVENT = 64
_WARNING_INTERVAL = 1.0


class SipTransportType(enum.Enum):
    """The transport of a connection (UCMA ``Microsoft.Rtc.Signaling.SipTransportType``, plus UDP)."""

    NONE = 0
    TCP = 1
    TLS = 2
    UDP = 3

    @property
    def reliable(self) -> bool:
        """True for the stream transports (no retransmissions, RFC 3261 section 17)."""
        return self in (SipTransportType.TCP, SipTransportType.TLS)

    @property
    def via_transport(self) -> str:
        """The Via transport token (``TCP``, ``TLS``, ``UDP``)."""
        return self.name

    @property
    def uri_transport(self) -> str:
        """The ``transport=`` URI parameter value (``tcp``, ``tls``, ``udp``)."""
        return self.name.lower()


CloseListener = Callable[["Connection", "BaseException | None"], None]
"""Told once that a connection closed: ``(connection, reason)``; ``reason`` is None for a local close."""


class ConnectionHost(Protocol):
    """What a connection needs from its stack (implemented by :class:`~ucma.runtime.sip_stack.SipStack`)."""

    @property
    def loop(self) -> IoLoop:
        """The I/O loop the connection's sockets live on."""
        ...

    @property
    def limits(self) -> ParserLimits:
        """Bounds for inbound messages."""
        ...

    @property
    def max_outbound_bytes(self) -> int:
        """Bound for a stream's outbound queue."""
        ...

    def _connection_opened(self, connection: Connection) -> None: ...

    def _message_received(self, connection: Connection, message: SipRequest | SipResponse) -> None: ...

    def _connection_closed(self, connection: Connection, reason: BaseException | None) -> None: ...

    def _start_client_transaction(
        self,
        connection: Connection,
        request: SipRequest,
        on_response: Callable[[SipResponse], None] | None,
        future: concurrent.futures.Future[SipResponse],
    ) -> None: ...

    def _advertised_address(self, connection: Connection) -> tuple[str, int]: ...


# --- helpers ------------------------------------------------------------------------------------


def format_host(host: str) -> str:
    """``host`` as it appears in a Via or URI: IPv6 literals in brackets."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def format_address(address: tuple[str, int]) -> str:
    """``host:port`` (``[v6]:port``) for logs and messages."""
    return f"{format_host(address[0])}:{address[1]}"


def is_ip_literal(host: str) -> bool:
    """True for an IPv4 or IPv6 address (brackets allowed), which needs no DNS lookup."""
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def _address(sockaddr: Any) -> tuple[str, int]:
    return (str(sockaddr[0]), int(sockaddr[1]))


def _describe_os_error(exc: OSError) -> str:
    return exc.strerror or str(exc) or type(exc).__name__


def _trace(
    direction: str, connection: Connection, message: SipRequest | SipResponse, data: bytes | None = None
) -> None:
    """Log one message at DEBUG on ``ucma.sip`` with credentials redacted (and long bodies cut)."""
    if not _sip_log.isEnabledFor(logging.DEBUG):
        return
    raw = data if data is not None else message.to_bytes()
    text = raw[:_TRACE_LIMIT].decode("utf-8", "replace")
    if len(raw) > _TRACE_LIMIT:
        text += f"\n... ({len(raw) - _TRACE_LIMIT} more bytes)"
    arrow = "to" if direction == "sent" else "from"
    _sip_log.debug(
        "%s %s %s %s (%d bytes)\n%s",
        direction,
        connection.transport.name,
        arrow,
        format_address(connection.remote_address),
        len(raw),
        redact(text),
    )


class _WarningLimiter:
    """At most one WARNING per interval; the rest go to DEBUG (a flood of garbage cannot flood logs)."""

    __slots__ = ("_next",)

    def __init__(self) -> None:
        self._next = 0.0

    def level(self) -> int:
        now = time.monotonic()
        if now >= self._next:
            self._next = now + _WARNING_INTERVAL
            return logging.WARNING
        return logging.DEBUG


# --- connections --------------------------------------------------------------------------------


class Connection:
    """One TCP or TLS connection, or one UDP flow, owned by a SIP stack.

    Public methods are thread-safe.  Futures it returns are completed on the I/O thread, so
    their done-callbacks run there and must be short (hop elsewhere for real work).  Close
    listeners also run on the I/O thread.
    """

    def __init__(
        self,
        host: ConnectionHost,
        transport: SipTransportType,
        local_address: tuple[str, int],
        remote_address: tuple[str, int],
        *,
        outbound: bool,
    ) -> None:
        self._host = host
        self._transport = transport
        self._local_address = local_address
        self._remote_address = remote_address
        self._outbound = outbound
        self._lock = threading.Lock()
        self._closed = False
        self._close_reason: BaseException | None = None
        self._listeners: list[CloseListener] = []
        #: Transactions running over this connection (I/O thread only; owned by the stack).
        self._transactions: set[Any] = set()

    # --- what it is ----------------------------------------------------------------------------

    @property
    def transport(self) -> SipTransportType:
        """TCP, TLS or UDP."""
        return self._transport

    @property
    def reliable(self) -> bool:
        """True for TCP and TLS (transactions do not retransmit)."""
        return self._transport.reliable

    @property
    def local_address(self) -> tuple[str, int]:
        """The local ``(host, port)`` of the socket."""
        return self._local_address

    @property
    def remote_address(self) -> tuple[str, int]:
        """The peer's ``(host, port)``."""
        return self._remote_address

    @property
    def outbound(self) -> bool:
        """True for a connection this side opened (False for an accepted one or an inbound UDP flow)."""
        return self._outbound

    @property
    def is_closed(self) -> bool:
        """True once the connection closed (locally, by the peer, or on an error)."""
        return self._closed

    @property
    def close_reason(self) -> BaseException | None:
        """Why the connection closed (None while open or after a local :meth:`close`)."""
        return self._close_reason

    @property
    def pending_transactions(self) -> int:
        """Transactions still running over this connection."""
        return len(self._transactions)

    # --- building messages for it --------------------------------------------------------------

    def make_via(self) -> Via:
        """A Via for a new request sent here: ``SIP/2.0/<transport> host:port;branch=<new>;rport``."""
        host, port = self._host._advertised_address(self)
        params = Parameters([("branch", new_branch()), ("rport", "")])
        return Via(self._transport.via_transport, format_host(host), port, params)

    def contact_uri(self, user: str | None = None, *, sips: bool = False, **uri_params: str) -> SipUri:
        """A Contact URI reaching this side over this connection.

        ``sip:user@host:port;transport=tcp|tls|udp`` plus ``uri_params`` (``""`` makes a flag
        parameter); ``sips=True`` uses the ``sips:`` scheme (TLS only).
        """
        if sips and self._transport is not SipTransportType.TLS:
            raise ArgumentException("a sips: contact needs a TLS connection", "sips")
        host, port = self._host._advertised_address(self)
        params = [("transport", self._transport.uri_transport), *uri_params.items()]
        return SipUri(
            host=format_host(host),
            user=user,
            scheme="sips" if sips else "sip",
            port=port,
            parameters=Parameters(params),
        )

    # --- using it ------------------------------------------------------------------------------

    def send_request(
        self, request: SipRequest, *, on_response: Callable[[SipResponse], None] | None = None
    ) -> concurrent.futures.Future[SipResponse]:
        """Send ``request`` in a new client transaction; never blocks, thread-safe.

        The request's top Via must already be set (normally from :meth:`make_via`).  The future
        gets the final response, or :class:`OperationTimeoutException` (Timer B/F), or
        :class:`ConnectionFailureException` (transport error, connection lost or closed while
        pending), or :class:`ArgumentException` for a request no transaction can be built from.
        ``on_response`` sees provisional responses, on the I/O thread.
        """
        future: concurrent.futures.Future[SipResponse] = concurrent.futures.Future()
        loop = self._host.loop
        if loop.in_loop_thread():
            self._host._start_client_transaction(self, request, on_response, future)
        elif not loop.try_call_soon(lambda: self._host._start_client_transaction(self, request, on_response, future)):
            future.set_exception(
                ConnectionFailureException(f"cannot send {request.method} to {self._peer}: the SIP stack is stopped")
            )
        return future

    def close(self) -> None:
        """Close the connection (a UDP flow forgets its peer); pending requests fail.  Thread-safe."""
        loop = self._host.loop
        if loop.in_loop_thread():
            self._close(None)
        elif not loop.try_call_soon(lambda: self._close(None)):
            self._close_stopped()

    def add_close_listener(self, listener: CloseListener) -> None:
        """Call ``listener(connection, reason)`` once when the connection closes (at once, on the I/O
        thread, if it is closed already).  Thread-safe."""
        with self._lock:
            if not self._closed:
                self._listeners.append(listener)
                return
        reason = self._close_reason
        if not self._host.loop.try_call_soon(lambda: self._call_listener(listener, reason)):
            self._call_listener(listener, reason)

    def remove_close_listener(self, listener: CloseListener) -> None:
        """Forget ``listener`` (no error if it was not added).  Thread-safe."""
        with self._lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def set_keep_alive(self, interval: float | None, *, pong_timeout: float = DEFAULT_KEEP_ALIVE_PONG_TIMEOUT) -> None:
        """Send a CRLFCRLF ping after ``interval`` seconds without receiving anything (None or 0: stop).

        If no CRLF pong (or any other data) arrives within ``pong_timeout`` seconds, the
        connection closes with ``ConnectionFailureException("keep-alive pong missing ...")``.
        RFC 5626 keep-alives for UDP use STUN, so on a UDP flow this does nothing.  Thread-safe.
        """
        if interval is not None and not interval >= 0:
            raise ArgumentException("keep-alive interval must be None or a non-negative number of seconds", "interval")
        if not pong_timeout > 0:
            raise ArgumentException("pong timeout must be a positive number of seconds", "pong_timeout")
        value = interval or None
        loop = self._host.loop
        if loop.in_loop_thread():
            self._set_keep_alive(value, pong_timeout)
        else:
            loop.try_call_soon(lambda: self._set_keep_alive(value, pong_timeout))

    # --- internals (I/O thread) ----------------------------------------------------------------

    @property
    def _peer(self) -> str:
        return format_address(self._remote_address)

    def _send_message(self, message: SipRequest | SipResponse) -> bool:
        """Queue ``message`` for the peer; False when it cannot be sent (the transaction failed)."""
        if self._closed:
            return False
        data = message.to_bytes()
        _trace("sent", self, message, data)
        return self._write(data)

    def _deliver(self, message: SipRequest | SipResponse) -> None:
        _trace("received", self, message)
        try:
            self._host._message_received(self, message)
        except Exception:
            _log.exception("handling a message from %s failed", self._peer)

    def _write(self, data: bytes) -> bool:
        raise NotImplementedError

    def _set_keep_alive(self, interval: float | None, pong_timeout: float) -> None:
        """Streams override this; UDP flows have no CRLF keep-alive."""

    def _release(self) -> None:
        """Give back the socket resources; called once, on close."""

    def _close(self, reason: BaseException | None) -> None:
        """Close now, fail what is pending and tell the listeners (once)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._close_reason = reason
            listeners, self._listeners = self._listeners, []
        try:
            self._release()
        except Exception:
            _log.exception("releasing the connection to %s failed", self._peer)
        if reason is None:
            _log.debug("closed %s connection to %s", self._transport.name, self._peer)
        else:
            _log.info("%s connection to %s closed: %s", self._transport.name, self._peer, reason)
        self._host._connection_closed(self, reason)
        for listener in listeners:
            self._call_listener(listener, reason)

    def _close_stopped(self) -> None:
        """The loop is gone: mark closed and tell listeners on the calling thread."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            listeners, self._listeners = self._listeners, []
        for listener in listeners:
            self._call_listener(listener, None)

    def _call_listener(self, listener: CloseListener, reason: BaseException | None) -> None:
        try:
            listener(self, reason)
        except Exception:
            _log.exception("close listener of the connection to %s raised", self._peer)

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return (
            f"<{type(self).__name__} {self._transport.name} {format_address(self._local_address)} -> "
            f"{self._peer} {state}>"
        )


class StreamConnection(Connection):
    """A TCP or TLS connection: framed by :class:`StreamParser`, bounded outbound queue, keep-alives."""

    def __init__(
        self,
        host: ConnectionHost,
        sock: socket.socket,
        transport: SipTransportType,
        *,
        outbound: bool,
        server_hostname: str | None = None,
    ) -> None:
        super().__init__(
            host, transport, _address(sock.getsockname()), _address(sock.getpeername()), outbound=outbound
        )
        self._sock = sock
        self._server_hostname = server_hostname
        self._peer_certificate: dict[str, Any] | None = None
        if isinstance(sock, ssl.SSLSocket):
            self._peer_certificate = sock.getpeercert() or None
        self._parser = StreamParser(host.limits)
        self._out = bytearray()
        self._events = EVENT_READ
        self._last_received = time.monotonic()
        self._keep_alive: float | None = None
        self._pong_timeout = DEFAULT_KEEP_ALIVE_PONG_TIMEOUT
        self._keep_alive_timer: TimerHandle | None = None
        self._pong_timer: TimerHandle | None = None
        self._read_scheduled = False

    @property
    def server_hostname(self) -> str | None:
        """The name the server certificate was checked against (TLS client connections)."""
        return self._server_hostname

    @property
    def peer_certificate(self) -> dict[str, Any] | None:
        """The peer's verified certificate (``ssl.SSLSocket.getpeercert()``), None if none was verified."""
        return self._peer_certificate

    @property
    def keep_alive_interval(self) -> float | None:
        """The keep-alive interval in force, None when off."""
        return self._keep_alive

    @property
    def outbound_queued(self) -> int:
        """Bytes accepted for sending that the kernel has not taken yet."""
        return len(self._out)

    def _attach(self) -> None:
        self._host.loop.register(self._sock, self._events, self._on_events)

    # --- I/O ----------------------------------------------------------------------------------

    def _on_events(self, mask: int) -> None:
        if self._out:
            self._flush()
        elif self._events & EVENT_WRITE:
            self._set_events(EVENT_READ)  # a TLS read that wanted to write has had its chance
        if not self._closed:
            self._read()

    def _resume_read(self) -> None:
        self._read_scheduled = False
        if not self._closed:
            self._read()

    def _read(self) -> None:
        for _ in range(_READ_ROUNDS):
            try:
                data = self._sock.recv(_READ_SIZE)
            except (BlockingIOError, InterruptedError, ssl.SSLWantReadError):
                return
            except ssl.SSLWantWriteError:
                self._set_events(EVENT_READ | EVENT_WRITE)
                return
            except ssl.SSLError as exc:
                self._close(self._tls_read_failure(exc))
                return
            except OSError as exc:
                self._close(
                    ConnectionFailureException(
                        f"connection to {self._peer} failed: {_describe_os_error(exc)}", exc
                    )
                )
                return
            if not data:
                self._close(ConnectionFailureException(f"{self._peer} closed the {self._transport.name} connection"))
                return
            self._received(data)
            if self._closed:
                return
        # More may be buffered (TLS keeps decrypted data the selector cannot see): continue soon.
        if not self._read_scheduled:
            self._read_scheduled = True
            self._host.loop.call_soon(self._resume_read)

    def _received(self, data: bytes) -> None:
        self._last_received = time.monotonic()
        if self._pong_timer is not None:
            self._pong_timer.cancel()
            self._pong_timer = None
        try:
            items = self._parser.feed(data)
        except MessageParsingException as exc:
            _log.warning(
                "closing the %s connection to %s: it sent malformed SIP (%s)", self._transport.name, self._peer, exc
            )
            self._close(ConnectionFailureException(f"{self._peer} sent malformed SIP ({exc}); connection closed", exc))
            return
        for item in items:
            if self._closed:
                return
            if isinstance(item, KeepAlive):
                if item.ping:
                    _sip_log.debug("keep-alive ping from %s, sending pong", self._peer)
                    self._write(b"\r\n")
                continue
            self._deliver(item)

    def _write(self, data: bytes) -> bool:
        if self._closed:
            return False
        limit = self._host.max_outbound_bytes
        if len(self._out) + len(data) > limit:
            self._close(
                ConnectionFailureException(
                    f"{self._peer} is not reading: more than {limit} bytes would be queued; connection closed"
                )
            )
            return False
        self._out += data
        self._flush()
        return not self._closed

    def _flush(self) -> None:
        out = self._out
        while out:
            try:
                sent = self._sock.send(out[:_WRITE_CHUNK])
            except (BlockingIOError, InterruptedError, ssl.SSLWantWriteError):
                self._set_events(EVENT_READ | EVENT_WRITE)
                return
            except ssl.SSLWantReadError:
                self._set_events(EVENT_READ)  # retried on the next read event
                return
            except ssl.SSLError as exc:
                self._close(self._tls_read_failure(exc))
                return
            except OSError as exc:
                self._close(
                    ConnectionFailureException(f"sending to {self._peer} failed: {_describe_os_error(exc)}", exc)
                )
                return
            del out[:sent]
        self._set_events(EVENT_READ)

    def _set_events(self, events: int) -> None:
        if events != self._events and not self._closed:
            self._events = events
            self._host.loop.modify(self._sock, events)

    def _tls_read_failure(self, exc: ssl.SSLError) -> RealTimeException:
        failure = tls_failure_from_error(exc, self._peer, server_side=not self._outbound)
        return ConnectionFailureException(f"TLS connection to {self._peer} failed: {failure}", failure)

    # --- keep-alive ---------------------------------------------------------------------------

    def _set_keep_alive(self, interval: float | None, pong_timeout: float) -> None:
        if self._closed:
            return
        for timer in (self._keep_alive_timer, self._pong_timer):
            if timer is not None:
                timer.cancel()
        self._keep_alive_timer = self._pong_timer = None
        self._keep_alive = interval
        self._pong_timeout = pong_timeout
        if interval is not None:
            due = max(0.0, self._last_received + interval - time.monotonic())
            self._keep_alive_timer = self._host.loop.call_later(due, self._keep_alive_due)

    def _keep_alive_due(self) -> None:
        self._keep_alive_timer = None
        interval = self._keep_alive
        if self._closed or interval is None:
            return
        now = time.monotonic()
        idle_until = self._last_received + interval
        if now < idle_until:
            self._keep_alive_timer = self._host.loop.call_later(idle_until - now, self._keep_alive_due)
            return
        _sip_log.debug("keep-alive ping to %s", self._peer)
        if not self._write(b"\r\n\r\n"):
            return
        if self._pong_timer is None:
            self._pong_timer = self._host.loop.call_later(self._pong_timeout, self._pong_missing)
        self._keep_alive_timer = self._host.loop.call_later(interval, self._keep_alive_due)

    def _pong_missing(self) -> None:
        self._pong_timer = None
        if self._closed:
            return
        self._close(
            ConnectionFailureException(
                f"keep-alive pong missing: {self._peer} did not answer a ping within {self._pong_timeout:g} s"
            )
        )

    def _release(self) -> None:
        for timer in (self._keep_alive_timer, self._pong_timer):
            if timer is not None:
                timer.cancel()
        self._keep_alive_timer = self._pong_timer = None
        self._out.clear()
        loop = self._host.loop
        if loop.in_loop_thread():
            loop.unregister(self._sock)
        with contextlib.suppress(OSError):
            self._sock.close()


class UdpFlow(Connection):
    """One peer on a UDP socket: requests to it get retransmitted; datagrams from it are delivered."""

    def __init__(
        self,
        host: ConnectionHost,
        endpoint: UdpEndpoint,
        local_address: tuple[str, int],
        remote_address: tuple[str, int],
        *,
        outbound: bool,
    ) -> None:
        super().__init__(host, SipTransportType.UDP, local_address, remote_address, outbound=outbound)
        self._endpoint = endpoint

    def _write(self, data: bytes) -> bool:
        return self._endpoint.send(self, data)

    def _release(self) -> None:
        self._endpoint.forget(self)


class UdpEndpoint:
    """One UDP socket on the I/O thread and the flows (peers) that share it.

    A client flow gets a connected socket of its own (so ICMP "port unreachable" fails it
    at once); a listening socket serves every peer that writes to it, one flow per address.
    """

    def __init__(self, host: ConnectionHost, sock: socket.socket, *, connected: bool) -> None:
        self._host = host
        self._sock = sock
        self._connected = connected
        self._flows: dict[tuple[str, int], UdpFlow] = {}
        self._closed = False
        self._warnings = _WarningLimiter()
        self.local_address = _address(sock.getsockname())

    @property
    def flows(self) -> int:
        """Peers currently known."""
        return len(self._flows)

    @property
    def family(self) -> int:
        """The address family of the socket."""
        return int(self._sock.family)

    def attach(self) -> None:
        self._host.loop.register(self._sock, EVENT_READ, self._on_events)

    def flow_for(self, remote: tuple[str, int], *, outbound: bool) -> UdpFlow:
        """The flow to ``remote``, created if new."""
        flow = self._flows.get(remote)
        if flow is None or flow.is_closed:
            if len(self._flows) >= _UDP_MAX_FLOWS:
                self._evict_idle()
            flow = UdpFlow(self._host, self, self._local_address_for(remote), remote, outbound=outbound)
            self._flows[remote] = flow
            self._host._connection_opened(flow)
        return flow

    def _local_address_for(self, remote: tuple[str, int]) -> tuple[str, int]:
        host, port = self.local_address
        if not ipaddress.ip_address(host).is_unspecified:
            return (host, port)
        # A wildcard socket: ask the routing table which source address reaches the peer.
        probe = socket.socket(self._sock.family, socket.SOCK_DGRAM)
        try:
            probe.connect(remote)
            return (_address(probe.getsockname())[0], port)
        except OSError:
            return (host, port)
        finally:
            probe.close()

    def _evict_idle(self) -> None:
        for remote, flow in list(self._flows.items()):
            if not flow._transactions and not flow.outbound:
                del self._flows[remote]
                flow._close(None)
                if len(self._flows) < _UDP_MAX_FLOWS:
                    return

    def send(self, flow: UdpFlow, data: bytes) -> bool:
        if self._closed:
            return False
        try:
            if self._connected:
                self._sock.send(data)
            else:
                self._sock.sendto(data, flow.remote_address)
        except (BlockingIOError, InterruptedError):
            # A full socket buffer is packet loss: the transaction retransmits.
            _log.debug("UDP send buffer full; datagram to %s dropped", flow._peer)
            return True
        except ConnectionRefusedError as exc:
            flow._close(self._refused(flow, exc))
            return False
        except OSError as exc:
            _log.warning("sending a UDP datagram to %s failed: %s", flow._peer, _describe_os_error(exc))
            return False
        return True

    def _refused(self, flow: UdpFlow, exc: OSError) -> ConnectionFailureException:
        return ConnectionFailureException(
            f"{flow._peer} refused UDP (ICMP port unreachable): check that the server is running and listening "
            f"on UDP port {flow.remote_address[1]}",
            exc,
        )

    def _on_events(self, mask: int) -> None:
        for _ in range(_READ_ROUNDS):
            if self._closed:
                return
            try:
                data, sockaddr = self._sock.recvfrom(_UDP_MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionRefusedError as exc:
                if self._connected:
                    for flow in list(self._flows.values()):
                        flow._close(self._refused(flow, exc))
                continue
            except OSError as exc:
                _log.warning("receiving on UDP %s failed: %s", format_address(self.local_address), exc)
                return
            self._datagram(data, _address(sockaddr))

    def _datagram(self, data: bytes, remote: tuple[str, int]) -> None:
        if not data.strip(b"\r\n\0 "):
            return  # a keep-alive datagram
        try:
            message = parse_message(data, self._host.limits)
        except MessageParsingException as exc:
            _log.log(
                self._warnings.level(),
                "dropped a malformed UDP datagram of %d bytes from %s: %s",
                len(data),
                format_address(remote),
                exc,
            )
            return
        if self._connected:
            flow = next(iter(self._flows.values()), None)
            if flow is None or flow.remote_address != remote:
                _log.debug("dropped a UDP datagram from unexpected %s", format_address(remote))
                return
        else:
            flow = self.flow_for(remote, outbound=False)
        flow._deliver(message)

    def forget(self, flow: UdpFlow) -> None:
        if self._flows.get(flow.remote_address) is flow:
            del self._flows[flow.remote_address]
        if self._connected:
            self.close()

    def close(self) -> None:
        """Close the socket and every flow on it."""
        if self._closed:
            return
        self._closed = True
        for flow in list(self._flows.values()):
            flow._close(None)
        self._flows.clear()
        loop = self._host.loop
        if loop.in_loop_thread():
            loop.unregister(self._sock)
        with contextlib.suppress(OSError):
            self._sock.close()


# --- opening connections ------------------------------------------------------------------------

Address = tuple[int, Any]
"""``(address family, sockaddr)`` of one resolved address."""


class StreamConnector:
    """Opens one outbound TCP or TLS connection on the I/O thread.

    Tries each resolved address in turn (non-blocking connect), then runs the TLS handshake;
    the whole attempt is bounded by ``timeout``.  Every failure becomes a
    :class:`ConnectionFailureException` or :class:`TlsFailureException` saying what to check.
    """

    def __init__(
        self,
        host: ConnectionHost,
        transport: SipTransportType,
        display: str,
        addresses: list[Address],
        future: concurrent.futures.Future[Connection],
        *,
        timeout: float,
        ssl_context: ssl.SSLContext | None,
        server_hostname: str | None,
        on_finished: Callable[[StreamConnector], None],
    ) -> None:
        self._host = host
        self._transport = transport
        self._display = display
        self._addresses = list(addresses)
        self.future = future
        self._timeout = timeout
        self._ssl_context = ssl_context
        self._server_hostname = server_hostname
        self._on_finished = on_finished
        self._sock: socket.socket | None = None
        self._timer: TimerHandle | None = None
        self._last_error: OSError | None = None
        self._handshaking = False
        self._done = False

    def start(self) -> None:
        self._timer = self._host.loop.call_later(self._timeout, self._timed_out)
        self._try_next()

    def cancel(self, reason: RealTimeException) -> None:
        """Give up (the stack is stopping)."""
        self._fail(reason)

    def _try_next(self) -> None:
        while self._addresses and not self._done:
            family, sockaddr = self._addresses.pop(0)
            try:
                sock = socket.socket(family, socket.SOCK_STREAM)
            except OSError as exc:
                self._last_error = exc
                continue
            sock.setblocking(False)
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            code = sock.connect_ex(sockaddr)
            if code in (0, errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EAGAIN):
                self._sock = sock
                self._host.loop.register(sock, EVENT_WRITE, self._on_connect_event)
                return
            sock.close()
            self._last_error = OSError(code, os.strerror(code))
        self._fail(self._connect_failure(self._last_error))

    def _on_connect_event(self, mask: int) -> None:
        sock = self._sock
        if sock is None or self._done:
            return
        code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        self._host.loop.unregister(sock)
        if code != 0:
            sock.close()
            self._sock = None
            self._last_error = OSError(code, os.strerror(code))
            self._try_next()
            return
        if self._transport is SipTransportType.TLS:
            self._start_tls(sock)
        else:
            self._succeed(sock)

    def _start_tls(self, sock: socket.socket) -> None:
        assert self._ssl_context is not None  # noqa: S101  (the stack supplies a default)
        try:
            tls = self._ssl_context.wrap_socket(
                sock, server_hostname=self._server_hostname, do_handshake_on_connect=False
            )
        except (ssl.SSLError, OSError, ValueError) as exc:
            sock.close()
            self._sock = None
            self._fail(TlsFailureException(f"cannot start TLS with {self._display}: {exc}", exc))
            return
        self._sock = tls
        self._handshaking = True
        TlsHandshake(self._host.loop, tls, self._handshake_done, self._handshake_failed).start()

    def _handshake_done(self) -> None:
        if self._done:
            return
        assert self._sock is not None  # noqa: S101
        self._succeed(self._sock)

    def _handshake_failed(self, exc: BaseException) -> None:
        self._close_socket()
        self._fail(tls_failure_from_error(exc, self._display, server_hostname=self._server_hostname))

    def _succeed(self, sock: socket.socket) -> None:
        if self._done:
            sock.close()
            return
        try:
            connection = StreamConnection(
                self._host, sock, self._transport, outbound=True, server_hostname=self._server_hostname
            )
        except OSError as exc:  # the peer reset the connection already (getpeername fails)
            sock.close()
            self._sock = None
            self._fail(self._connect_failure(exc))
            return
        self._sock = None
        self._finish()
        connection._attach()
        self._host._connection_opened(connection)
        _log.debug("connected %s", connection)
        settle(self.future, connection)

    def _timed_out(self) -> None:
        self._timer = None
        if self._done:
            return
        stage = "TLS handshake" if self._handshaking else "connection"
        self._close_socket()
        self._fail(
            ConnectionFailureException(
                f"{stage} to {self._display} ({self._transport.name}) did not complete within {self._timeout:g} s: "
                "check the host name, the port, and any firewall in between"
            )
        )

    def _connect_failure(self, exc: OSError | None) -> ConnectionFailureException:
        where = f"{self._display} ({self._transport.name})"
        if exc is None:
            return ConnectionFailureException(f"no address to connect to for {where}")
        if exc.errno == errno.ECONNREFUSED:
            return ConnectionFailureException(
                f"connection to {where} was refused: check that the server is running and listening on that port",
                exc,
            )
        if exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EADDRNOTAVAIL):
            return ConnectionFailureException(
                f"{where} is unreachable ({_describe_os_error(exc)}): check the address and the network route", exc
            )
        if exc.errno == errno.ETIMEDOUT:
            return ConnectionFailureException(
                f"connection to {where} timed out: check the host name, the port, and any firewall", exc
            )
        return ConnectionFailureException(f"cannot connect to {where}: {_describe_os_error(exc)}", exc)

    def _close_socket(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            self._host.loop.unregister(sock)
            with contextlib.suppress(OSError):
                sock.close()

    def _fail(self, exc: BaseException) -> None:
        if self._done:
            return
        self._close_socket()
        self._finish()
        _log.debug("connecting to %s failed: %s", self._display, exc)
        fail(self.future, exc)

    def _finish(self) -> None:
        self._done = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._on_finished(self)


class TlsHandshake:
    """Drives a non-blocking TLS handshake on the I/O thread, then hands the socket over."""

    def __init__(
        self,
        loop: IoLoop,
        sock: ssl.SSLSocket,
        on_done: Callable[[], None],
        on_failed: Callable[[BaseException], None],
    ) -> None:
        self._loop = loop
        self._sock = sock
        self._on_done = on_done
        self._on_failed = on_failed
        self._events = 0

    def start(self) -> None:
        self._events = EVENT_READ | EVENT_WRITE
        self._loop.register(self._sock, self._events, self._step)
        self._step(0)

    def _step(self, mask: int) -> None:
        try:
            self._sock.do_handshake()
        except ssl.SSLWantReadError:
            self._watch(EVENT_READ)
            return
        except ssl.SSLWantWriteError:
            self._watch(EVENT_WRITE)
            return
        except (ssl.SSLError, OSError, ValueError) as exc:
            self._loop.unregister(self._sock)
            self._on_failed(exc)
            return
        self._loop.unregister(self._sock)
        self._on_done()

    def _watch(self, events: int) -> None:
        if events != self._events:
            self._events = events
            self._loop.modify(self._sock, events)


class StreamListener:
    """A listening TCP/TLS socket: accepted connections (after the TLS handshake) join the stack."""

    def __init__(
        self,
        host: ConnectionHost,
        sock: socket.socket,
        transport: SipTransportType,
        ssl_context: ssl.SSLContext | None,
    ) -> None:
        self._host = host
        self._sock = sock
        self._transport = transport
        self._ssl_context = ssl_context
        self._closed = False
        self._handshakes: dict[ssl.SSLSocket, TimerHandle] = {}
        self._warnings = _WarningLimiter()
        self.address = _address(sock.getsockname())

    @property
    def transport(self) -> SipTransportType:
        """TCP or TLS."""
        return self._transport

    @property
    def family(self) -> int:
        """The address family of the listening socket."""
        return int(self._sock.family)

    def attach(self) -> None:
        self._host.loop.register(self._sock, EVENT_READ, self._on_events)

    def _on_events(self, mask: int) -> None:
        for _ in range(_ACCEPTS_PER_EVENT):
            if self._closed:
                return
            try:
                sock, sockaddr = self._sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # EMFILE and friends: log, keep listening
                _log.log(self._warnings.level(), "accepting on %s failed: %s", format_address(self.address), exc)
                return
            sock.setblocking(False)
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._ssl_context is None:
                self._accepted(sock)
            else:
                self._start_tls(sock, _address(sockaddr))

    def _start_tls(self, sock: socket.socket, peer: tuple[str, int]) -> None:
        assert self._ssl_context is not None  # noqa: S101
        try:
            tls = self._ssl_context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        except (ssl.SSLError, OSError) as exc:
            _log.warning("cannot start TLS with %s: %s", format_address(peer), exc)
            sock.close()
            return

        def done() -> None:
            self._handshake_finished(tls)
            self._accepted(tls)

        def failed(exc: BaseException) -> None:
            self._handshake_finished(tls)
            failure = tls_failure_from_error(exc, format_address(peer), server_side=True)
            _log.log(self._warnings.level(), "TLS handshake with client %s failed: %s", format_address(peer), failure)
            tls.close()

        def timed_out() -> None:
            if self._handshakes.pop(tls, None) is None:
                return
            _log.info("TLS handshake with client %s timed out", format_address(peer))
            self._host.loop.unregister(tls)
            tls.close()

        self._handshakes[tls] = self._host.loop.call_later(_HANDSHAKE_TIMEOUT, timed_out)
        TlsHandshake(self._host.loop, tls, done, failed).start()

    def _handshake_finished(self, tls: ssl.SSLSocket) -> None:
        timer = self._handshakes.pop(tls, None)
        if timer is not None:
            timer.cancel()

    def _accepted(self, sock: socket.socket) -> None:
        try:
            connection = StreamConnection(self._host, sock, self._transport, outbound=False)
        except OSError:  # reset before we looked at it
            sock.close()
            return
        connection._attach()
        self._host._connection_opened(connection)
        _log.debug("accepted %s", connection)

    def close(self) -> None:
        """Stop accepting; handshakes in progress are dropped."""
        if self._closed:
            return
        self._closed = True
        loop = self._host.loop
        for tls, timer in list(self._handshakes.items()):
            timer.cancel()
            loop.unregister(tls)
            tls.close()
        self._handshakes.clear()
        loop.unregister(self._sock)
        with contextlib.suppress(OSError):
            self._sock.close()
