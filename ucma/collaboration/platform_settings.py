"""Settings of a ``CollaborationPlatform``: client mode (one connection per endpoint) or server mode."""

from __future__ import annotations

import ssl

from ucma.runtime.connections import SipTransportType
from ucma.signaling.exceptions import ArgumentException
from ucma.signaling.transaction_timers import DEFAULT_TIMER_SETTINGS, TimerSettings

#: Worker threads for callbacks and events of one platform (bounded, whatever the endpoint count).
DEFAULT_WORKER_THREADS = 4


def _check_transport(transport: SipTransportType, allowed: tuple[SipTransportType, ...]) -> None:
    if transport not in allowed:
        names = ", ".join(t.name for t in allowed)
        raise ArgumentException(f"transport must be one of {names}", "transport")


class ClientPlatformSettings:
    """Client mode: every endpoint gets its own connection to its registrar (UCMA ``ClientPlatformSettings``).

    ``ssl_context`` replaces the default TLS context (which verifies the server certificate and
    host name against the system CAs); pass one that trusts your private CA rather than one that
    verifies nothing.
    """

    def __init__(
        self,
        application_user_agent: str | None,
        transport: SipTransportType = SipTransportType.TLS,
        *,
        ssl_context: ssl.SSLContext | None = None,
        worker_threads: int = DEFAULT_WORKER_THREADS,
        sip_timer_settings: TimerSettings = DEFAULT_TIMER_SETTINGS,
    ) -> None:
        _check_transport(transport, (SipTransportType.TCP, SipTransportType.TLS, SipTransportType.UDP))
        if worker_threads < 1:
            raise ArgumentException("worker_threads must be at least 1", "worker_threads")
        self.application_user_agent = application_user_agent or ""
        self.transport = transport
        self.ssl_context = ssl_context
        self.worker_threads = worker_threads
        #: RFC 3261 T1/T2/T4 (ours, not UCMA's): a request times out after 64*T1 without a final response.
        self.sip_timer_settings = sip_timer_settings


class ServerPlatformSettings:
    """Server mode: listens on ``localhost:port`` and shares connections among its endpoints.

    With ``certificate`` (a PEM file holding certificate and key, or a ``(certfile, keyfile)``
    pair) or ``server_ssl_context`` the platform listens with TLS and presents that certificate
    on outgoing connections too (mutual TLS); without, it uses TCP.
    """

    def __init__(
        self,
        application_user_agent: str | None,
        localhost: str,
        port: int,
        gruu: str | None = None,
        certificate: str | tuple[str, str] | None = None,
        *,
        ssl_context: ssl.SSLContext | None = None,
        server_ssl_context: ssl.SSLContext | None = None,
        listening_ip_address: str = "127.0.0.1",
        worker_threads: int = DEFAULT_WORKER_THREADS,
        sip_timer_settings: TimerSettings = DEFAULT_TIMER_SETTINGS,
    ) -> None:
        if not localhost:
            raise ArgumentException("localhost must be the FQDN of this machine", "localhost")
        if not 0 <= port <= 65535:
            raise ArgumentException("port must be in 0..65535", "port")
        if worker_threads < 1:
            raise ArgumentException("worker_threads must be at least 1", "worker_threads")
        self.application_user_agent = application_user_agent or ""
        self.localhost = localhost
        self.listening_port = port
        self.gruu = gruu
        self.certificate = certificate
        self.ssl_context = ssl_context
        self.server_ssl_context = server_ssl_context
        self.listening_ip_address = listening_ip_address
        self.worker_threads = worker_threads
        #: RFC 3261 T1/T2/T4 (ours, not UCMA's): a request times out after 64*T1 without a final response.
        self.sip_timer_settings = sip_timer_settings

    @property
    def transport(self) -> SipTransportType:
        """TLS (mutual TLS) when a certificate is configured, else TCP."""
        if self.certificate is not None or self.server_ssl_context is not None:
            return SipTransportType.TLS
        return SipTransportType.TCP
