"""``CollaborationPlatform``: hosts endpoints and owns the threads they all share.

Per platform: one I/O thread (all sockets, transactions and endpoint protocol logic), one
``RegistrationManager`` thread (every refresh timer), and a bounded worker pool (user callbacks
and events). Nothing here grows with the number of endpoints.
"""

from __future__ import annotations

import concurrent.futures
import logging
import ssl
import threading
from typing import TYPE_CHECKING

from ucma.collaboration.platform_settings import ClientPlatformSettings, ServerPlatformSettings
from ucma.runtime.async_result import AsyncCallback, AsyncOperation, AsyncResult
from ucma.runtime.connections import Connection, SipTransportType
from ucma.runtime.registration_manager import RegistrationManager
from ucma.runtime.sip_stack import SipStack
from ucma.runtime.tls import default_client_ssl_context
from ucma.runtime.worker_pool import SerialDispatcher, WorkerPool
from ucma.signaling.exceptions import (
    ArgumentNullException,
    ConnectionFailureException,
    InvalidOperationException,
    RealTimeException,
    TlsFailureException,
)

if TYPE_CHECKING:
    from ucma.collaboration.user_endpoint import UserEndpoint

_log = logging.getLogger("ucma.collaboration")

_STARTUP: AsyncOperation[None] = AsyncOperation("startup")
_SHUTDOWN: AsyncOperation[None] = AsyncOperation("shutdown")

_CREATED, _STARTING, _STARTED, _SHUTTING_DOWN, _SHUT_DOWN = range(5)


class CollaborationPlatform:
    """UCMA ``CollaborationPlatform`` in client or server mode; usable as a context manager."""

    def __init__(self, settings: ClientPlatformSettings | ServerPlatformSettings) -> None:
        if settings is None:
            raise ArgumentNullException("settings")
        self._settings = settings
        self._is_server = isinstance(settings, ServerPlatformSettings)
        self._pool = WorkerPool(settings.worker_threads, name="ucma-worker")
        self._dispatcher = SerialDispatcher(self._pool, "platform")
        self._stack = SipStack(name="platform", worker_pool=self._pool, timer_settings=settings.sip_timer_settings)
        self._registration_manager = RegistrationManager("platform")
        self._lock = threading.Lock()
        self._state = _CREATED
        self._endpoints: set[UserEndpoint] = set()
        self._shared_connections: dict[tuple[str, int, SipTransportType], concurrent.futures.Future[Connection]] = {}
        self._client_context: ssl.SSLContext | None = None
        self.active_listening_address: tuple[str, int] | None = None

    # --- properties --------------------------------------------------------------------------

    @property
    def dispatcher(self) -> SerialDispatcher:
        """Runs the platform's callbacks."""
        return self._dispatcher

    @property
    def settings(self) -> ClientPlatformSettings | ServerPlatformSettings:
        """The settings the platform was created with."""
        return self._settings

    @property
    def is_server_platform(self) -> bool:
        """True in server mode (connections shared among endpoints)."""
        return self._is_server

    @property
    def transport(self) -> SipTransportType:
        """The transport endpoints use."""
        return self._settings.transport

    @property
    def application_user_agent(self) -> str:
        """The application part of the User-Agent header."""
        return self._settings.application_user_agent

    @property
    def is_started(self) -> bool:
        """True between a successful startup and shutdown."""
        return self._state == _STARTED

    @property
    def is_terminated(self) -> bool:
        """True once shutdown began (a platform cannot be started again)."""
        return self._state in (_SHUTTING_DOWN, _SHUT_DOWN)

    @property
    def owned_threads(self) -> list[threading.Thread]:
        """Every thread this platform runs (for monitoring; constant, whatever the endpoint count)."""
        threads = [t for t in (self._stack.io_thread, self._registration_manager.thread) if t is not None]
        return threads + list(self._pool.threads)

    @property
    def sip_stack(self) -> SipStack:
        """The signalling stack (advanced use)."""
        return self._stack

    @property
    def registration_manager(self) -> RegistrationManager:
        """The refresh scheduler shared by all endpoints."""
        return self._registration_manager

    @property
    def worker_pool(self) -> WorkerPool:
        """The bounded pool that runs callbacks and events."""
        return self._pool

    # --- startup / shutdown ------------------------------------------------------------------

    def begin_startup(
        self, user_callback: AsyncCallback[None] | None = None, state: object = None
    ) -> AsyncResult[None]:
        """Start the threads (and listen, in server mode)."""
        return _STARTUP.begin(self, self._start_startup, user_callback, state)

    def end_startup(self, result: AsyncResult[None]) -> None:
        """Wait for startup; raises ConnectionFailureException if the listening port is unusable."""
        _STARTUP.end(self, result)

    def startup(self, timeout: float | None = None) -> None:
        """Blocking startup."""
        _STARTUP.run(self, self._start_startup, timeout)

    def _start_startup(self, result: AsyncResult[None]) -> None:
        with self._lock:
            if self._state != _CREATED:
                raise InvalidOperationException("the platform was already started or has been shut down")
            self._state = _STARTING
        try:
            self._stack.start()
            self._registration_manager.start()
            if isinstance(self._settings, ServerPlatformSettings):
                self._listen(self._settings)
        except RealTimeException as exc:
            self._stop_threads()
            with self._lock:
                self._state = _SHUT_DOWN
            result.set_exception(exc)
            return
        except OSError as exc:
            self._stop_threads()
            with self._lock:
                self._state = _SHUT_DOWN
            result.set_exception(ConnectionFailureException(f"platform could not start: {exc}", exc))
            return
        with self._lock:
            self._state = _STARTED
        result.set_result(None)

    def _listen(self, settings: ServerPlatformSettings) -> None:
        server_context = settings.server_ssl_context
        if server_context is None and settings.certificate is not None:
            server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            _load_certificate(server_context, settings.certificate)
        self.active_listening_address = self._stack.listen(
            settings.listening_ip_address, settings.listening_port, settings.transport, ssl_context=server_context
        )

    def begin_shutdown(
        self, user_callback: AsyncCallback[None] | None = None, state: object = None
    ) -> AsyncResult[None]:
        """Terminate every endpoint, then stop the threads. Never raises; repeat calls are allowed."""
        return _SHUTDOWN.begin(self, self._start_shutdown, user_callback, state)

    def end_shutdown(self, result: AsyncResult[None]) -> None:
        """Wait for shutdown."""
        _SHUTDOWN.end(self, result)

    def shutdown(self, timeout: float | None = None) -> None:
        """Blocking shutdown."""
        _SHUTDOWN.run(self, self._start_shutdown, timeout)

    def _start_shutdown(self, result: AsyncResult[None]) -> None:
        with self._lock:
            if self._state in (_SHUTTING_DOWN, _SHUT_DOWN):
                already = True
            else:
                already = False
                self._state = _SHUTTING_DOWN
            endpoints = list(self._endpoints)
        if already or not endpoints:
            self._finish_shutdown(result)
            return
        remaining = [len(endpoints)]
        lock = threading.Lock()

        def one_done(_: AsyncResult[None]) -> None:
            with lock:
                remaining[0] -= 1
                last = remaining[0] == 0
            if last:
                # Leave the pool thread before stopping the pool it runs on.
                threading.Thread(target=self._finish_shutdown, args=(result,), name="ucma-shutdown").start()

        for endpoint in endpoints:
            endpoint.begin_terminate(one_done)

    def _finish_shutdown(self, result: AsyncResult[None]) -> None:
        self._stop_threads()
        with self._lock:
            self._state = _SHUT_DOWN
        result.try_set_result(None)

    def _stop_threads(self) -> None:
        self._registration_manager.stop()
        self._stack.stop()
        self._pool.shutdown(wait=True)  # a pool thread calling this does not wait for itself

    def __enter__(self) -> CollaborationPlatform:
        self.startup()
        return self

    def __exit__(self, *_: object) -> None:
        self.shutdown()

    # --- services for endpoints ----------------------------------------------------------------

    def _attach(self, endpoint: UserEndpoint) -> None:
        with self._lock:
            if self.is_terminated:
                raise InvalidOperationException("the platform has been shut down")
            self._endpoints.add(endpoint)

    def _detach(self, endpoint: UserEndpoint) -> None:
        with self._lock:
            self._endpoints.discard(endpoint)

    def _client_ssl_context(self) -> ssl.SSLContext:
        if self._settings.ssl_context is not None:
            return self._settings.ssl_context
        if self._client_context is None:
            context = default_client_ssl_context()
            cert = getattr(self._settings, "certificate", None)
            if cert is not None:  # server mode with a certificate: present it outbound too (mutual TLS)
                _load_certificate(context, cert)
            self._client_context = context
        return self._client_context

    def _connect(self, host: str, port: int, transport: SipTransportType) -> concurrent.futures.Future[Connection]:
        """A connection to ``host:port``: new per endpoint in client mode, shared in server mode."""
        ssl_context = self._client_ssl_context() if transport is SipTransportType.TLS else None
        if not self._is_server:
            return self._stack.connect(host, port, transport, ssl_context=ssl_context, server_hostname=host)
        key = (host.lower(), port, transport)
        with self._lock:
            existing = self._shared_connections.get(key)
            if existing is not None and not (
                existing.done() and (existing.exception() is not None or existing.result().is_closed)
            ):
                return existing
            future = self._stack.connect(host, port, transport, ssl_context=ssl_context, server_hostname=host)
            self._shared_connections[key] = future
            return future

    def _run_on_io_thread(self, fn: object) -> None:
        self._stack.call_soon(fn)  # type: ignore[arg-type]

    def __repr__(self) -> str:
        mode = "server" if self._is_server else "client"
        return f"<CollaborationPlatform {mode} {self.transport.name} endpoints={len(self._endpoints)}>"


def _load_certificate(context: ssl.SSLContext, certificate: str | tuple[str, str]) -> None:
    """Load the platform certificate (one PEM, or certificate and key files) into ``context``."""
    try:
        if isinstance(certificate, tuple):
            context.load_cert_chain(certificate[0], certificate[1])
        else:
            context.load_cert_chain(certificate)
    except (OSError, ssl.SSLError) as exc:
        raise TlsFailureException(f"cannot load the platform certificate: {exc}", exc) from None
