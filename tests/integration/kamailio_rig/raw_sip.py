"""Hand-written SIP REGISTER exchanges over plain sockets, independent of ucma's own SIP code.

The rig uses them to probe a server for readiness, and the rig's tests use them to check the
servers themselves, so a fault in ucma can never hide a fault in the fixture (or the reverse).
"""

from __future__ import annotations

import hashlib
import re
import secrets
import socket
import ssl
from collections.abc import Sequence
from typing import Literal

import attrs

Transport = Literal["udp", "tcp", "tls"]

_MAX_MESSAGE = 65535


@attrs.frozen
class RawResponse:
    """A SIP response as received: status line, headers in order, body."""

    status: int
    reason: str
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def header(self, name: str) -> str | None:
        """First value of header `name` (case-insensitive), or None."""
        wanted = name.lower()
        return next((value for key, value in self.headers if key.lower() == wanted), None)

    def header_values(self, name: str) -> list[str]:
        """All values of header `name` (case-insensitive), in order."""
        wanted = name.lower()
        return [value for key, value in self.headers if key.lower() == wanted]


class ConnectionDropped(ConnectionError):
    """The server closed the stream before a complete response arrived."""


def parse_response(data: bytes) -> RawResponse:
    """Parse one complete SIP response (no header folding, which these servers do not send)."""
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("utf-8", "replace").split("\r\n")
    match = re.fullmatch(r"SIP/2\.0 (\d{3}) ?(.*)", lines[0])
    if match is None:
        raise ValueError(f"not a SIP response: {lines[0][:80]!r}")
    headers = tuple((name.strip(), value.strip()) for name, _, value in (line.partition(":") for line in lines[1:]))
    return RawResponse(status=int(match.group(1)), reason=match.group(2), headers=headers, body=body)


def register_request(
    *,
    user: str,
    domain: str,
    transport: Transport,
    local: tuple[str, int],
    expires: int | None = 0,
    call_id: str | None = None,
    cseq: int = 1,
    extra_headers: Sequence[str] = (),
) -> bytes:
    """A REGISTER for sip:`user`@`domain` sent from `local` (the Via/Contact address)."""
    host, port = local
    lines = [
        f"REGISTER sip:{domain} SIP/2.0",
        f"Via: SIP/2.0/{transport.upper()} {host}:{port};branch=z9hG4bK{secrets.token_hex(8)};rport",
        "Max-Forwards: 70",
        f"From: <sip:{user}@{domain}>;tag={secrets.token_hex(4)}",
        f"To: <sip:{user}@{domain}>",
        f"Call-ID: {call_id or secrets.token_hex(12)}",
        f"CSeq: {cseq} REGISTER",
        f"Contact: <sip:{user}@{host}:{port};transport={transport}>",
    ]
    if expires is not None:
        lines.append(f"Expires: {expires}")
    lines.extend(extra_headers)
    lines.append("Content-Length: 0")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _read_response(stream: socket.socket) -> RawResponse:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = stream.recv(_MAX_MESSAGE)
        if not chunk:
            raise ConnectionDropped(f"connection closed after {len(data)} bytes of a response")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length_match = re.search(rb"(?im)^(?:content-length|l)\s*:\s*(\d+)", head)
    length = int(length_match.group(1)) if length_match else 0
    while len(body) < length:
        chunk = stream.recv(_MAX_MESSAGE)
        if not chunk:
            raise ConnectionDropped("connection closed inside a response body")
        body += chunk
    return parse_response(head + b"\r\n\r\n" + body[:length])


class SipClientSocket:
    """One client socket (UDP, TCP or TLS) to a SIP server; sends requests, reads responses."""

    def __init__(self, host: str, port: int, transport: Transport, *, timeout: float = 2.0,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self.transport: Transport = transport
        if transport == "udp":
            self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self._sock.settimeout(timeout)
            self._sock.connect((host, port))
        else:
            raw = socket.create_connection((host, port), timeout=timeout)
            if transport == "tls":
                if ssl_context is None:
                    raw.close()
                    raise ValueError("TLS needs an ssl_context that trusts the server")
                try:
                    raw = ssl_context.wrap_socket(raw, server_hostname=host)
                except BaseException:
                    raw.close()
                    raise
            self._sock = raw
            self._sock.settimeout(timeout)

    @property
    def local(self) -> tuple[str, int]:
        """The socket's own address, for Via and Contact."""
        host, port = self._sock.getsockname()[:2]
        return str(host), int(port)

    def request(self, payload: bytes) -> RawResponse:
        """Send one request and return the first response that follows."""
        if self.transport == "udp":
            self._sock.send(payload)
            return parse_response(self._sock.recv(_MAX_MESSAGE))
        self._sock.sendall(payload)
        return _read_response(self._sock)

    def register(self, user: str, domain: str, **fields: object) -> RawResponse:
        """Send a REGISTER for `user` built by register_request (keyword fields passed on)."""
        payload = register_request(user=user, domain=domain, transport=self.transport, local=self.local,
                                   **fields)  # type: ignore[arg-type]
        return self.request(payload)

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> SipClientSocket:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _digest_params(challenge: str) -> dict[str, str]:
    return {key.lower(): quoted if quoted else bare
            for key, quoted, bare in re.findall(r'(\w+)\s*=\s*(?:"([^"]*)"|([^\s,]+))', challenge)}


def digest_authorization(challenge: str, *, method: str, uri: str, user: str, password: str,
                         nonce_count: int = 1) -> str:
    """The Authorization value answering a WWW-Authenticate Digest `challenge` (MD5, qop=auth or none)."""
    params = _digest_params(challenge)
    realm, nonce = params["realm"], params["nonce"]

    def md5(text: str) -> str:
        return hashlib.md5(text.encode()).hexdigest()

    ha1, ha2 = md5(f"{user}:{realm}:{password}"), md5(f"{method}:{uri}")
    fields = [f'username="{user}"', f'realm="{realm}"', f'nonce="{nonce}"', f'uri="{uri}"', "algorithm=MD5"]
    if "auth" in params.get("qop", "").split(","):
        cnonce, nc = secrets.token_hex(8), f"{nonce_count:08x}"
        fields += ["qop=auth", f"nc={nc}", f'cnonce="{cnonce}"',
                   f'response="{md5(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")}"']
    else:
        fields.append(f'response="{md5(f"{ha1}:{nonce}:{ha2}")}"')
    if "opaque" in params:
        fields.append(f'opaque="{params["opaque"]}"')
    return "Digest " + ", ".join(fields)


def register_with_digest(client: SipClientSocket, *, user: str, password: str, domain: str, expires: int,
                         call_id: str | None = None, cseq: int = 1) -> RawResponse:
    """REGISTER, answer a 401 challenge once, and return the final response (CSeq grows by one)."""
    call_id = call_id or secrets.token_hex(12)
    first = client.register(user, domain, expires=expires, call_id=call_id, cseq=cseq)
    challenge = first.header("WWW-Authenticate")
    if first.status != 401 or challenge is None:
        return first
    authorization = digest_authorization(challenge, method="REGISTER", uri=f"sip:{domain}", user=user,
                                         password=password)
    return client.register(user, domain, expires=expires, call_id=call_id, cseq=cseq + 1,
                           extra_headers=[f"Authorization: {authorization}"])
