"""TLS contexts with safe defaults, and the mapping of handshake errors to :class:`TlsFailureException`.

Clients verify the server's certificate chain and host name unless the caller passes a context
of its own (``ssl.create_default_context`` semantics, TLS 1.2 or newer).  Every ``ssl`` error a
handshake raises becomes a :class:`TlsFailureException` whose ``failure_reason`` says what went
wrong and whose message says what to check, including how to trust a private CA.
"""

from __future__ import annotations

import ssl

from ucma.signaling.exceptions import TlsFailureException, TlsFailureReason

__all__ = [
    "default_client_ssl_context",
    "default_server_ssl_context",
    "tls_failure_from_error",
]

# OpenSSL X509_V_ERR_* codes (x509_vfy.h) that name the problem precisely.
_CERT_NOT_YET_VALID = 9
_CERT_HAS_EXPIRED = 10
_HOSTNAME_MISMATCH = 62
_IP_ADDRESS_MISMATCH = 64

# Alerts a peer sends when it refuses the certificate we presented (OpenSSL reason codes).
_OUR_CERT_REFUSED_ALERTS = frozenset(
    {
        "SSLV3_ALERT_BAD_CERTIFICATE",
        "SSLV3_ALERT_CERTIFICATE_EXPIRED",
        "SSLV3_ALERT_CERTIFICATE_REVOKED",
        "SSLV3_ALERT_CERTIFICATE_UNKNOWN",
        "SSLV3_ALERT_UNSUPPORTED_CERTIFICATE",
        "TLSV1_ALERT_UNKNOWN_CA",
        "TLSV1_ALERT_ACCESS_DENIED",
        "TLSV13_ALERT_CERTIFICATE_REQUIRED",
    }
)
_NOT_TLS_REASONS = frozenset({"WRONG_VERSION_NUMBER", "HTTP_REQUEST", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG"})
_VERSION_REASONS = frozenset({"UNSUPPORTED_PROTOCOL", "TLSV1_ALERT_PROTOCOL_VERSION", "NO_PROTOCOLS_AVAILABLE"})

_TRUST_HINT = (
    "if the server uses a private CA, trust it: pass ssl_context=default_client_ssl_context(ca_file='<ca.pem>') "
    "(or a context on which you called load_verify_locations), or install the CA in the system trust store"
)


def default_client_ssl_context(ca_file: str | None = None) -> ssl.SSLContext:
    """A client context that verifies the server certificate and host name, TLS 1.2 or newer.

    ``ca_file`` (PEM) adds a private CA to the system's trusted roots.
    """
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca_file)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def default_server_ssl_context(
    cert_file: str, key_file: str | None = None, *, client_ca_file: str | None = None
) -> ssl.SSLContext:
    """A listening context presenting ``cert_file``; with ``client_ca_file`` clients must present a
    certificate issued by that CA (mutual TLS).  TLS 1.2 or newer.

    Raises :class:`TlsFailureException` when the certificate, key or CA file cannot be loaded.
    """
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert_file, key_file)
        if client_ca_file is not None:
            context.load_verify_locations(cafile=client_ca_file)
            context.verify_mode = ssl.CERT_REQUIRED
    except (OSError, ssl.SSLError) as exc:
        # The file names are the caller's; the error text never contains key material.
        raise TlsFailureException(
            f"cannot load the TLS certificate, key or client CA file: {_describe(exc)}",
            exc,
            TlsFailureReason.LOCAL_CERTIFICATE_REJECTED,
        ) from None
    return context


def tls_failure_from_error(
    exc: BaseException, peer: str, *, server_hostname: str | None = None, server_side: bool = False
) -> TlsFailureException:
    """A :class:`TlsFailureException` for an error raised by a TLS handshake with ``peer`` (``host:port``).

    ``server_side`` is True when we are the listening end (the peer is a client).
    """
    if isinstance(exc, ssl.SSLCertVerificationError):
        return _verification_failure(exc, peer, server_hostname, server_side)
    if isinstance(exc, (ssl.SSLEOFError, ConnectionError)):
        who = "the client" if server_side else peer
        hint = (
            "" if server_side else ": check that it is a TLS port, that it accepts TLS 1.2 or newer, "
            "and whether it requires a client certificate"
        )
        return TlsFailureException(f"{who} closed the connection during the TLS handshake{hint}", exc)
    reason = getattr(exc, "reason", None) or ""
    if reason in _OUR_CERT_REFUSED_ALERTS:
        if server_side:
            return TlsFailureException(
                f"the client {peer} refused our certificate ({_describe(exc)})",
                exc,
                TlsFailureReason.LOCAL_CERTIFICATE_REJECTED,
            )
        return TlsFailureException(
            f"{peer} refused our client certificate ({_describe(exc)}): check the certificate loaded into the "
            "ssl_context (load_cert_chain) and that the server trusts its issuer",
            exc,
            TlsFailureReason.LOCAL_CERTIFICATE_REJECTED,
        )
    if reason == "PEER_DID_NOT_RETURN_A_CERTIFICATE":
        return TlsFailureException(
            f"the client {peer} presented no certificate, but this listener requires one (mutual TLS)",
            exc,
            TlsFailureReason.REMOTE_CERTIFICATE_REJECTED,
        )
    if reason == "SSLV3_ALERT_HANDSHAKE_FAILURE":
        return TlsFailureException(
            f"TLS handshake with {peer} failed ({_describe(exc)}): no common protocol version or cipher, "
            "or the server requires a client certificate",
            exc,
        )
    if reason in _NOT_TLS_REASONS:
        return TlsFailureException(
            f"{peer} did not answer with TLS ({_describe(exc)}): check that the port is a TLS port, not TCP", exc
        )
    if reason in _VERSION_REASONS:
        return TlsFailureException(
            f"{peer} and this client share no TLS version ({_describe(exc)}); TLS 1.2 or newer is required", exc
        )
    return TlsFailureException(f"TLS handshake with {peer} failed: {_describe(exc)}", exc)


def _verification_failure(
    exc: ssl.SSLCertVerificationError, peer: str, server_hostname: str | None, server_side: bool
) -> TlsFailureException:
    code = exc.verify_code
    detail = exc.verify_message or _describe(exc)
    if server_side:
        return TlsFailureException(
            f"the certificate of the client {peer} is not trusted ({detail}): load its issuing CA into the "
            "listening ssl_context (load_verify_locations)",
            exc,
            TlsFailureReason.REMOTE_CERTIFICATE_REJECTED,
        )
    if code in (_HOSTNAME_MISMATCH, _IP_ADDRESS_MISMATCH):
        name = server_hostname or peer
        return TlsFailureException(
            f"the certificate of {peer} is not valid for {name!r} ({detail}): connect with the host name the "
            "certificate names (its subjectAltName), or pass server_hostname",
            exc,
            TlsFailureReason.HOST_NAME_MISMATCH,
        )
    if code in (_CERT_HAS_EXPIRED, _CERT_NOT_YET_VALID):
        return TlsFailureException(
            f"the certificate of {peer} is not valid now ({detail}): check the server's certificate and this "
            "machine's clock",
            exc,
            TlsFailureReason.CERTIFICATE_EXPIRED,
        )
    return TlsFailureException(
        f"the certificate of {peer} is not trusted ({detail}); {_TRUST_HINT}",
        exc,
        TlsFailureReason.REMOTE_CERTIFICATE_REJECTED,
    )


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError):
        reason = exc.reason or ""
        text = exc.strerror or str(exc)
        return f"{reason.lower().replace('_', ' ')}" if reason else text
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__
