"""SipStack over real loopback sockets, against tiny peers written with ``socket`` and ``ssl`` in the test.

Every wait is on a future, an event or a socket timeout; nothing sleeps to synchronise.
"""

from __future__ import annotations

import concurrent.futures
import datetime
import ipaddress
import logging
import queue
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path

import attrs
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ucma.runtime.connections import Connection, SipTransportType, StreamConnection
from ucma.runtime.sip_stack import ServerTransactionHandle, SipStack
from ucma.runtime.tls import default_client_ssl_context
from ucma.runtime.worker_pool import WorkerPool
from ucma.signaling.digest import DigestSession
from ucma.signaling.exceptions import (
    ArgumentException,
    ConnectionFailureException,
    InvalidOperationException,
    OperationTimeoutException,
    TlsFailureException,
    TlsFailureReason,
)
from ucma.signaling.sip import (
    KeepAlive,
    NameAddress,
    Parameters,
    SipRequest,
    SipResponse,
    StreamParser,
    make_request,
    make_response,
    new_call_id,
    new_tag,
    parse_message,
)
from ucma.signaling.sip.auth_headers import Challenge
from ucma.signaling.transaction_timers import TimerSettings

WAIT = 5.0
ALICE = "sip:alice@example.com"
FAST = TimerSettings(t1=0.02, t2=0.08, t4=0.1)


# --- certificates ---------------------------------------------------------------------------------


@attrs.frozen
class Pki:
    ca_file: str
    server_cert: str
    server_key: str
    client_cert: str
    client_key: str
    client_cn: str

    def server_context(self, *, require_client_cert: bool = False) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.server_cert, self.server_key)
        if require_client_cert:
            context.load_verify_locations(self.ca_file)
            context.verify_mode = ssl.CERT_REQUIRED
        return context

    def client_context(self, *, with_cert: bool = False) -> ssl.SSLContext:
        context = default_client_ssl_context(self.ca_file)
        if with_cert:
            context.load_cert_chain(self.client_cert, self.client_key)
        return context


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write(path: Path, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate) -> tuple[str, str]:
    key_path, cert_path = path.with_suffix(".key"), path.with_suffix(".crt")
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return str(cert_path), str(key_path)


def _issue(
    ca_key: ec.EllipticCurvePrivateKey,
    ca_name: x509.Name,
    cn: str,
    *,
    sans: list[x509.GeneralName] | None = None,
    usage: x509.ObjectIdentifier,
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return key, builder.sign(ca_key, hashes.SHA256())


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A throwaway CA, a server certificate for 127.0.0.1/localhost and a client certificate."""
    directory = tmp_path_factory.mktemp("pki")
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("ucma test CA")
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                key_encipherment=False, data_encipherment=False, key_agreement=False, encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_file, _ = _write(directory / "ca", ca_key, ca_cert)
    server = _issue(
        ca_key,
        ca_name,
        "sip.test",
        sans=[x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))],
        usage=ExtendedKeyUsageOID.SERVER_AUTH,
    )
    server_cert, server_key = _write(directory / "server", *server)
    client = _issue(ca_key, ca_name, "app.client.test", usage=ExtendedKeyUsageOID.CLIENT_AUTH)
    client_cert, client_key = _write(directory / "client", *client)
    return Pki(ca_file, server_cert, server_key, client_cert, client_key, "app.client.test")


# --- stacks and peers -----------------------------------------------------------------------------

MakeStack = Callable[..., SipStack]


@pytest.fixture
def make_stack() -> Iterator[MakeStack]:
    stacks: list[SipStack] = []
    pools: list[WorkerPool] = []

    def make(*, workers: int = 2, **options: object) -> SipStack:
        pool = WorkerPool(workers, name=f"test-worker{len(pools)}")
        stack = SipStack(name=f"test{len(stacks)}", worker_pool=pool, **options)  # type: ignore[arg-type]
        stack.start()
        stacks.append(stack)
        pools.append(pool)
        return stack

    yield make
    for stack in stacks:
        stack.stop()
    for pool in pools:
        pool.shutdown()


@pytest.fixture
def stack(make_stack: MakeStack) -> SipStack:
    return make_stack()


@pytest.fixture
def tcp_server() -> Iterator[socket.socket]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(512)
    server.settimeout(WAIT)
    yield server
    server.close()


@pytest.fixture
def udp_peer() -> Iterator[socket.socket]:
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind(("127.0.0.1", 0))
    peer.settimeout(WAIT)
    yield peer
    peer.close()


class PeerStream:
    """The far end of a TCP/TLS connection, driven by the test thread with blocking reads."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        sock.settimeout(WAIT)
        self._parser = StreamParser()
        self._pending: deque[SipRequest | SipResponse | KeepAlive] = deque()

    def read(self) -> SipRequest | SipResponse | KeepAlive:
        while not self._pending:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError("the stack closed the connection")
            self._pending.extend(self._parser.feed(data))
        return self._pending.popleft()

    def read_message(self) -> SipRequest | SipResponse:
        while True:
            item = self.read()
            if not isinstance(item, KeepAlive):
                return item

    def read_request(self) -> SipRequest:
        item = self.read_message()
        assert isinstance(item, SipRequest)
        return item

    def read_response(self) -> SipResponse:
        item = self.read_message()
        assert isinstance(item, SipResponse)
        return item

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def nothing_more(self) -> bool:
        """True when no further data is waiting (checked without blocking)."""
        if self._pending:
            return False
        self.sock.setblocking(False)
        try:
            data = self.sock.recv(65536)
        except (BlockingIOError, ssl.SSLWantReadError):
            return True
        finally:
            self.sock.settimeout(WAIT)
        return not data  # EOF: nothing more will come


def accept(server: socket.socket) -> PeerStream:
    sock, _ = server.accept()
    return PeerStream(sock)


def accept_tls(server: socket.socket, context: ssl.SSLContext) -> PeerStream:
    sock, _ = server.accept()
    sock.settimeout(WAIT)
    return PeerStream(context.wrap_socket(sock, server_side=True))


def port_of(sock: socket.socket) -> int:
    return int(sock.getsockname()[1])


def request(
    connection: Connection,
    method: str = "OPTIONS",
    cseq: int = 1,
    *,
    body: bytes = b"",
    headers: tuple[tuple[str, str], ...] = (),
) -> SipRequest:
    return make_request(
        method,
        "sip:example.com",
        via=connection.make_via(),
        from_header=NameAddress(ALICE, parameters=Parameters([("tag", new_tag())])),
        to_header=NameAddress(ALICE),
        call_id=new_call_id(),
        cseq=cseq,
        headers=headers,
        body=body,
        content_type="text/plain" if body else None,
    )


def raw_request(method: str, branch: str, sent_by: str, transport: str = "UDP", cseq: int = 1) -> bytes:
    return (
        f"{method} sip:service@127.0.0.1 SIP/2.0\r\n"
        f"Via: SIP/2.0/{transport} {sent_by};branch={branch}\r\n"
        "Max-Forwards: 70\r\n"
        "From: <sip:peer@example.com>;tag=p1\r\n"
        "To: <sip:service@example.com>\r\n"
        f"Call-ID: call-{branch}\r\n"
        f"CSeq: {cseq} {method}\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


class CloseLog:
    """Records close-listener calls and lets the test wait for the first."""

    def __init__(self, connection: Connection) -> None:
        self.calls: list[tuple[Connection, BaseException | None]] = []
        self.event = threading.Event()
        connection.add_close_listener(self)

    def __call__(self, connection: Connection, reason: BaseException | None) -> None:
        self.calls.append((connection, reason))
        self.event.set()

    def wait(self) -> BaseException | None:
        assert self.event.wait(WAIT), "close listener was not called"
        return self.calls[0][1]


def connect_tcp(stack: SipStack, server: socket.socket) -> tuple[Connection, PeerStream]:
    future = stack.connect("127.0.0.1", port_of(server), SipTransportType.TCP)
    peer = accept(server)
    return future.result(WAIT), peer


# --- request / response over each transport -------------------------------------------------------


def test_udp_request_gets_its_final_response(stack: SipStack, udp_peer: socket.socket) -> None:
    flow = stack.connect("127.0.0.1", port_of(udp_peer), SipTransportType.UDP).result(WAIT)
    assert flow.transport is SipTransportType.UDP and not flow.reliable
    future = flow.send_request(request(flow, "REGISTER"))
    data, source = udp_peer.recvfrom(65536)
    received = parse_message(data)
    assert isinstance(received, SipRequest) and received.method == "REGISTER"
    assert source == flow.local_address
    via = received.top_via
    assert via.transport == "UDP" and via.is_rfc3261_branch and "rport" in via.parameters
    assert (via.host, via.port) == flow.local_address
    udp_peer.sendto(make_response(received, 401).to_bytes(), source)
    assert future.result(WAIT).status_code == 401


def test_tcp_request_sees_provisional_then_final(stack: SipStack, tcp_server: socket.socket) -> None:
    connection, peer = connect_tcp(stack, tcp_server)
    assert connection.reliable and connection.remote_address == ("127.0.0.1", port_of(tcp_server))
    provisional: queue.Queue[SipResponse] = queue.Queue()
    future = connection.send_request(request(connection, "REGISTER"), on_response=provisional.put)
    received = peer.read_request()
    assert received.top_via.transport == "TCP"
    peer.send(make_response(received, 100).to_bytes())
    assert provisional.get(timeout=WAIT).status_code == 100
    assert not future.done()
    peer.send(make_response(received, 200, to_tag="t1").to_bytes())
    assert future.result(WAIT).status_code == 200


def test_tls_request_with_a_trusted_private_ca(stack: SipStack, tcp_server: socket.socket, pki: Pki) -> None:
    future = stack.connect(
        "127.0.0.1", port_of(tcp_server), SipTransportType.TLS, ssl_context=pki.client_context()
    )
    peer = accept_tls(tcp_server, pki.server_context())
    connection = future.result(WAIT)
    assert connection.transport is SipTransportType.TLS
    assert isinstance(connection, StreamConnection) and connection.peer_certificate is not None
    assert str(connection.contact_uri("alice")).endswith(";transport=tls")
    sent = connection.send_request(request(connection, "REGISTER"))
    received = peer.read_request()
    assert received.top_via.transport == "TLS"
    peer.send(make_response(received, 401).to_bytes())
    assert sent.result(WAIT).status_code == 401


def test_tls_default_context_rejects_a_private_ca(stack: SipStack, tcp_server: socket.socket, pki: Pki) -> None:
    future = stack.connect("127.0.0.1", port_of(tcp_server), SipTransportType.TLS)
    with pytest.raises((ssl.SSLError, OSError)):
        accept_tls(tcp_server, pki.server_context())
    with pytest.raises(TlsFailureException) as info:
        future.result(WAIT)
    assert info.value.failure_reason is TlsFailureReason.REMOTE_CERTIFICATE_REJECTED
    assert "ssl_context" in str(info.value) and "ca_file" in str(info.value)


def test_tls_host_name_mismatch_is_reported(stack: SipStack, tcp_server: socket.socket, pki: Pki) -> None:
    future = stack.connect(
        "127.0.0.1",
        port_of(tcp_server),
        SipTransportType.TLS,
        ssl_context=pki.client_context(),
        server_hostname="sip.elsewhere.example",
    )
    with pytest.raises((ssl.SSLError, OSError)):
        accept_tls(tcp_server, pki.server_context())
    with pytest.raises(TlsFailureException) as info:
        future.result(WAIT)
    assert info.value.failure_reason is TlsFailureReason.HOST_NAME_MISMATCH
    assert "sip.elsewhere.example" in str(info.value)


def test_host_names_are_resolved_off_the_io_thread(
    stack: SipStack, tcp_server: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: list[str] = []
    real = socket.getaddrinfo

    def recording(*args: object, **kwargs: object) -> object:
        threads.append(threading.current_thread().name)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "getaddrinfo", recording)
    future = stack.connect("localhost", port_of(tcp_server), SipTransportType.TCP)
    accept(tcp_server)
    assert future.result(WAIT).remote_address[1] == port_of(tcp_server)
    assert threads and all(not name.startswith("ucma-io-") for name in threads)


def test_an_unresolvable_host_fails_with_connection_failure(stack: SipStack, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*_args: object, **_kwargs: object) -> object:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", fail)
    with pytest.raises(ConnectionFailureException, match=r"cannot resolve 'sip\.nowhere\.invalid'"):
        stack.connect("sip.nowhere.invalid", 5061, SipTransportType.TLS).result(WAIT)


def test_via_and_contact_describe_the_local_end(stack: SipStack, tcp_server: socket.socket) -> None:
    connection, _peer = connect_tcp(stack, tcp_server)
    host, port = connection.local_address
    via = connection.make_via()
    assert str(via).startswith(f"SIP/2.0/TCP {host}:{port};branch=z9hG4bK")
    assert via.branch != connection.make_via().branch
    contact = connection.contact_uri("alice", ob="")
    assert str(contact) == f"sip:alice@{host}:{port};transport=tcp;ob"
    assert str(connection.contact_uri(None)) == f"sip:{host}:{port};transport=tcp"


def test_futures_complete_on_the_io_thread(stack: SipStack, udp_peer: socket.socket) -> None:
    flow = stack.connect("127.0.0.1", port_of(udp_peer), SipTransportType.UDP).result(WAIT)
    future = flow.send_request(request(flow))
    where: queue.Queue[threading.Thread] = queue.Queue()
    future.add_done_callback(lambda _f: where.put(threading.current_thread()))
    data, source = udp_peer.recvfrom(65536)
    udp_peer.sendto(make_response(parse_message(data), 200).to_bytes(), source)  # type: ignore[arg-type]
    assert where.get(timeout=WAIT) is stack.io_thread


# --- timers ---------------------------------------------------------------------------------------


def test_udp_request_is_retransmitted_then_times_out(make_stack: MakeStack, udp_peer: socket.socket) -> None:
    stack = make_stack(timer_settings=FAST)
    flow = stack.connect("127.0.0.1", port_of(udp_peer), SipTransportType.UDP).result(WAIT)
    sent = request(flow, "REGISTER")
    future = flow.send_request(sent)
    copies: list[bytes] = []
    udp_peer.settimeout(4 * FAST.t2)  # longer than any retransmission interval
    deadline = time.monotonic() + WAIT
    while not future.done() and time.monotonic() < deadline:
        try:
            copies.append(udp_peer.recvfrom(65536)[0])
        except TimeoutError:
            continue
    with pytest.raises(OperationTimeoutException, match="no final response to REGISTER"):
        future.result(WAIT)
    assert len(copies) >= 4
    assert all(copy == copies[0] for copy in copies)
    assert stack.stats.live_transactions == 0


def test_tcp_request_times_out_with_timer_f_without_retransmitting(
    make_stack: MakeStack, tcp_server: socket.socket
) -> None:
    stack = make_stack(timer_settings=FAST)
    connection, peer = connect_tcp(stack, tcp_server)
    started = time.monotonic()
    future = connection.send_request(request(connection))
    peer.read_request()
    with pytest.raises(OperationTimeoutException):
        future.result(WAIT)
    assert time.monotonic() - started >= FAST.transaction_timeout * 0.9
    assert peer.nothing_more()
    assert not connection.is_closed


# --- failures -------------------------------------------------------------------------------------


def test_connection_refused_fails_quickly(stack: SipStack) -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # bound, not listening: the kernel answers RST
    port = port_of(closed)
    try:
        started = time.monotonic()
        future = stack.connect("127.0.0.1", port, SipTransportType.TCP)
        with pytest.raises(ConnectionFailureException) as info:
            future.result(WAIT)
        assert time.monotonic() - started < 2
    finally:
        closed.close()
    message = str(info.value)
    assert f"127.0.0.1:{port}" in message and "refused" in message and "listening" in message


def test_udp_port_unreachable_fails_the_request_quickly(stack: SipStack, udp_peer: socket.socket) -> None:
    port = port_of(udp_peer)
    udp_peer.close()  # nothing listens there any more: ICMP port unreachable
    flow = stack.connect("127.0.0.1", port, SipTransportType.UDP).result(WAIT)
    closes = CloseLog(flow)
    with pytest.raises(ConnectionFailureException, match="refused"):
        flow.send_request(request(flow)).result(WAIT)
    assert isinstance(closes.wait(), ConnectionFailureException)


def test_tls_handshake_that_never_completes_times_out(stack: SipStack, tcp_server: socket.socket) -> None:
    future = stack.connect("127.0.0.1", port_of(tcp_server), SipTransportType.TLS, timeout=0.3)
    peer = accept(tcp_server)  # accepts TCP, never speaks TLS
    with pytest.raises(ConnectionFailureException, match=r"TLS handshake .* did not complete within 0\.3 s"):
        future.result(WAIT)
    peer.sock.close()


def test_server_closing_fails_pending_requests_at_once(stack: SipStack, tcp_server: socket.socket) -> None:
    connection, peer = connect_tcp(stack, tcp_server)
    closes = CloseLog(connection)
    future = connection.send_request(request(connection, "REGISTER"))
    peer.read_request()
    started = time.monotonic()
    peer.sock.close()
    with pytest.raises(ConnectionFailureException, match="REGISTER"):
        future.result(WAIT)
    assert time.monotonic() - started < 2  # not Timer F's 32 s
    reason = closes.wait()
    assert isinstance(reason, ConnectionFailureException) and "closed" in str(reason)
    assert connection.is_closed and len(closes.calls) == 1
    assert stack.stats.open_connections == 0 and stack.stats.live_transactions == 0


def test_a_close_listener_added_after_the_close_is_still_told(stack: SipStack, tcp_server: socket.socket) -> None:
    connection, peer = connect_tcp(stack, tcp_server)
    first = CloseLog(connection)
    peer.sock.close()
    first.wait()
    late = CloseLog(connection)
    assert isinstance(late.wait(), ConnectionFailureException)


def test_local_close_fails_pending_requests_and_refuses_new_ones(stack: SipStack, tcp_server: socket.socket) -> None:
    connection, peer = connect_tcp(stack, tcp_server)
    closes = CloseLog(connection)
    pending = connection.send_request(request(connection))
    peer.read_request()
    connection.close()
    assert closes.wait() is None
    with pytest.raises(ConnectionFailureException, match="closed"):
        pending.result(WAIT)
    with pytest.raises(ConnectionFailureException, match="closed"):
        connection.send_request(request(connection)).result(WAIT)
    with pytest.raises(EOFError):
        peer.read()


def test_request_without_a_branch_fails_with_argument_exception(stack: SipStack, tcp_server: socket.socket) -> None:
    connection, _peer = connect_tcp(stack, tcp_server)
    bad = request(connection)
    bad.headers.set("Via", "SIP/2.0/TCP 127.0.0.1:5060")
    with pytest.raises(ArgumentException):
        connection.send_request(bad).result(WAIT)


def test_garbage_closes_that_connection_only(
    stack: SipStack, tcp_server: socket.socket, caplog: pytest.LogCaptureFixture
) -> None:
    connection, peer = connect_tcp(stack, tcp_server)
    closes = CloseLog(connection)
    with caplog.at_level(logging.WARNING, logger="ucma"):
        peer.send(b"THIS IS NOT SIP AT ALL\r\n\r\n")
        reason = closes.wait()
    assert isinstance(reason, ConnectionFailureException) and "malformed" in str(reason)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "malformed" in warnings[0].getMessage()
    # The I/O thread lives on: a second connection works.
    second, peer2 = connect_tcp(stack, tcp_server)
    future = second.send_request(request(second))
    peer2.send(make_response(peer2.read_request(), 200).to_bytes())
    assert future.result(WAIT).status_code == 200


def test_garbage_datagram_is_dropped_and_the_flow_still_works(
    stack: SipStack, udp_peer: socket.socket, caplog: pytest.LogCaptureFixture
) -> None:
    flow = stack.connect("127.0.0.1", port_of(udp_peer), SipTransportType.UDP).result(WAIT)
    with caplog.at_level(logging.WARNING, logger="ucma"):
        udp_peer.sendto(b"\x00\xffgarbage\r\n\r\n", flow.local_address)
        future = flow.send_request(request(flow))
        data, source = udp_peer.recvfrom(65536)
        udp_peer.sendto(make_response(parse_message(data), 200).to_bytes(), source)  # type: ignore[arg-type]
        assert future.result(WAIT).status_code == 200
    assert any("malformed UDP datagram" in r.getMessage() for r in caplog.records)
    assert not flow.is_closed


def test_stray_responses_are_dropped(
    stack: SipStack, tcp_server: socket.socket, caplog: pytest.LogCaptureFixture
) -> None:
    connection, peer = connect_tcp(stack, tcp_server)
    future = connection.send_request(request(connection))
    received = peer.read_request()
    stray = make_response(received, 200)
    stray.headers.set("Via", "SIP/2.0/TCP 127.0.0.1:1;branch=z9hG4bKnotours")
    with caplog.at_level(logging.DEBUG, logger="ucma.runtime"):
        peer.send(stray.to_bytes() + make_response(received, 202).to_bytes())
        assert future.result(WAIT).status_code == 202
    assert any("stray" in r.getMessage() for r in caplog.records)


def test_pipelined_responses_reach_their_own_requests(stack: SipStack, tcp_server: socket.socket) -> None:
    connection, peer = connect_tcp(stack, tcp_server)
    futures = [connection.send_request(request(connection, cseq=n)) for n in (1, 2, 3)]
    received = [peer.read_request() for _ in futures]
    wire = b"".join(make_response(r, 200 + r.cseq.number).to_bytes() for r in reversed(received))
    peer.send(wire[:100])
    peer.send(wire[100:] + b"\r\n")  # a stray CRLF pong between messages is fine
    assert [f.result(WAIT).status_code for f in futures] == [201, 202, 203]
    assert not connection.is_closed


def test_a_peer_that_does_not_read_is_cut_off(make_stack: MakeStack) -> None:
    stack = make_stack(max_outbound_bytes=256 * 1024)
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(WAIT)
    try:
        connection, _peer = connect_tcp(stack, server)
        closes = CloseLog(connection)
        body = b"x" * (512 * 1024)
        futures = []
        for n in range(64):
            futures.append(connection.send_request(request(connection, cseq=n + 1, body=body)))
            if closes.event.is_set():
                break
        reason = closes.wait()
        assert isinstance(reason, ConnectionFailureException) and "not reading" in str(reason)
        for future in futures:
            assert isinstance(future.exception(WAIT), ConnectionFailureException)
    finally:
        server.close()


# --- keep-alive -----------------------------------------------------------------------------------


def test_keep_alive_pings_when_idle_and_accepts_pongs(stack: SipStack, tcp_server: socket.socket) -> None:
    connection, peer = connect_tcp(stack, tcp_server)
    connection.set_keep_alive(0.05, pong_timeout=1.0)
    for _ in range(3):
        assert peer.read() == KeepAlive(ping=True)
        peer.send(b"\r\n")
    assert not connection.is_closed
    connection.set_keep_alive(None)


def test_keep_alive_without_pong_closes_the_connection(stack: SipStack, tcp_server: socket.socket) -> None:
    connection, peer = connect_tcp(stack, tcp_server)
    closes = CloseLog(connection)
    pending = connection.send_request(request(connection))
    connection.set_keep_alive(0.05, pong_timeout=0.1)
    peer.read_request()
    assert peer.read() == KeepAlive(ping=True)
    reason = closes.wait()
    assert isinstance(reason, ConnectionFailureException) and "keep-alive pong missing" in str(reason)
    with pytest.raises(ConnectionFailureException, match="keep-alive pong missing"):
        pending.result(WAIT)


def test_pings_from_the_peer_are_answered_with_pongs(stack: SipStack, tcp_server: socket.socket) -> None:
    _connection, peer = connect_tcp(stack, tcp_server)
    peer.send(b"\r\n\r\n")
    assert peer.read() == KeepAlive(ping=False)


# --- incoming requests ----------------------------------------------------------------------------


class Handler:
    """A request handler that answers with ``status`` and records the requests it saw."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.seen: queue.Queue[tuple[SipRequest, ServerTransactionHandle]] = queue.Queue()

    def __call__(self, request: SipRequest, handle: ServerTransactionHandle) -> None:
        assert not threading.current_thread().name.startswith("ucma-io-")
        self.seen.put((request, handle))
        handle.respond(handle.create_response(self.status))


def test_incoming_udp_request_is_handled_once_and_its_response_retransmitted(
    make_stack: MakeStack, udp_peer: socket.socket
) -> None:
    stack = make_stack(workers=1)
    handler = Handler()
    stack.request_handler = handler
    host, port = stack.listen("127.0.0.1", 0, SipTransportType.UDP)
    sent_by = f"127.0.0.1:{port_of(udp_peer)}"
    first = raw_request("OPTIONS", "z9hG4bKfirst", sent_by)
    udp_peer.sendto(first, (host, port))
    answer = udp_peer.recvfrom(65536)[0]
    udp_peer.sendto(first, (host, port))  # a retransmission
    again = udp_peer.recvfrom(65536)[0]
    assert again == answer
    response = parse_message(answer)
    assert isinstance(response, SipResponse) and response.status_code == 200 and response.to_header.tag
    udp_peer.sendto(raw_request("OPTIONS", "z9hG4bKsecond", sent_by), (host, port))
    assert parse_message(udp_peer.recvfrom(65536)[0]).top_via.branch == "z9hG4bKsecond"
    branches = [handler.seen.get(timeout=WAIT)[0].top_via.branch for _ in range(2)]
    assert branches == ["z9hG4bKfirst", "z9hG4bKsecond"]  # one worker: a duplicate would have run between
    assert handler.seen.empty()


def test_listen_tcp_serves_requests_and_answers_bad_ones_with_400(stack: SipStack) -> None:
    handler = Handler(202)
    accepted: queue.Queue[Connection] = queue.Queue()
    stack.request_handler = handler
    stack.connection_accepted = accepted.put
    host, port = stack.listen("127.0.0.1", 0, SipTransportType.TCP)
    client = socket.create_connection((host, port), timeout=WAIT)
    peer = PeerStream(client)
    sent_by = f"127.0.0.1:{client.getsockname()[1]}"
    broken = raw_request("OPTIONS", "z9hG4bKbroken", sent_by, "TCP").replace(b"CSeq: 1 OPTIONS", b"CSeq: x")
    peer.send(broken)
    assert peer.read_response().status_code == 400
    peer.send(raw_request("OPTIONS", "z9hG4bKgood", sent_by, "TCP"))
    assert peer.read_response().status_code == 202
    server_side = accepted.get(timeout=WAIT)
    assert not server_side.outbound and server_side.remote_address == client.getsockname()
    client.close()


def test_a_raising_handler_gets_a_500_sent_and_no_handler_means_501(stack: SipStack) -> None:
    host, port = stack.listen("127.0.0.1", 0, SipTransportType.TCP)
    client = socket.create_connection((host, port), timeout=WAIT)
    peer = PeerStream(client)
    sent_by = f"127.0.0.1:{client.getsockname()[1]}"
    peer.send(raw_request("OPTIONS", "z9hG4bKnohandler", sent_by, "TCP"))
    assert peer.read_response().status_code == 501

    def broken(_request: SipRequest, _handle: ServerTransactionHandle) -> None:
        raise RuntimeError("application bug")

    stack.request_handler = broken
    peer.send(raw_request("MESSAGE", "z9hG4bKraises", sent_by, "TCP"))
    assert peer.read_response().status_code == 500
    client.close()


def test_a_handle_refuses_a_second_final_response(stack: SipStack, udp_peer: socket.socket) -> None:
    handles: queue.Queue[ServerTransactionHandle] = queue.Queue()
    stack.request_handler = lambda _r, handle: handles.put(handle)
    host, port = stack.listen("127.0.0.1", 0, SipTransportType.UDP)
    udp_peer.sendto(raw_request("INFO", "z9hG4bKtwice", f"127.0.0.1:{port_of(udp_peer)}"), (host, port))
    handle = handles.get(timeout=WAIT)
    handle.respond(180)
    handle.respond(200)
    with pytest.raises(InvalidOperationException):
        handle.respond(486)
    codes = [parse_message(udp_peer.recvfrom(65536)[0]).status_code for _ in range(2)]  # type: ignore[union-attr]
    assert codes == [180, 200]


def test_mutual_tls_listener_accepts_a_client_with_a_certificate(make_stack: MakeStack, pki: Pki) -> None:
    server = make_stack()
    accepted: queue.Queue[Connection] = queue.Queue()
    server.connection_accepted = accepted.put
    server.request_handler = Handler()
    mutual = pki.server_context(require_client_cert=True)
    host, port = server.listen("127.0.0.1", 0, SipTransportType.TLS, ssl_context=mutual)
    client = make_stack()
    connection = client.connect(
        host, port, SipTransportType.TLS, ssl_context=pki.client_context(with_cert=True)
    ).result(WAIT)
    assert connection.send_request(request(connection)).result(WAIT).status_code == 200
    inbound = accepted.get(timeout=WAIT)
    assert isinstance(inbound, StreamConnection) and inbound.peer_certificate is not None
    subject = dict(item for part in inbound.peer_certificate["subject"] for item in part)
    assert subject["commonName"] == pki.client_cn


def test_mutual_tls_listener_rejects_a_client_without_a_certificate(make_stack: MakeStack, pki: Pki) -> None:
    server = make_stack()
    mutual = pki.server_context(require_client_cert=True)
    host, port = server.listen("127.0.0.1", 0, SipTransportType.TLS, ssl_context=mutual)
    client = make_stack()
    context = pki.client_context()
    context.maximum_version = ssl.TLSVersion.TLSv1_2  # so the refusal comes inside the handshake
    with pytest.raises(TlsFailureException):
        client.connect(host, port, SipTransportType.TLS, ssl_context=context).result(WAIT)


def test_listen_on_a_busy_port_fails_with_connection_failure(stack: SipStack, tcp_server: socket.socket) -> None:
    with pytest.raises(ConnectionFailureException, match="cannot listen"):
        stack.listen("127.0.0.1", port_of(tcp_server), SipTransportType.TCP)


# --- logging --------------------------------------------------------------------------------------


def test_message_logs_never_contain_a_password_derived_digest(
    stack: SipStack, tcp_server: socket.socket, caplog: pytest.LogCaptureFixture
) -> None:
    connection, peer = connect_tcp(stack, tcp_server)
    challenge = Challenge.parse('Digest realm="example.com", nonce="6a2f00c9", qop="auth", algorithm=MD5')
    first = request(connection, "REGISTER")
    credentials = DigestSession("alice", "correct horse").answer(challenge, "REGISTER", first.request_uri_text)
    digest = credentials.get("response")
    assert digest
    first.headers.set("Authorization", str(credentials))
    with caplog.at_level(logging.DEBUG, logger="ucma.sip"):
        future = connection.send_request(first)
        received = peer.read_request()
        assert received.headers.get("Authorization") == str(credentials)  # the wire keeps it, of course
        peer.send(make_response(received, 200).to_bytes())
        assert future.result(WAIT).status_code == 200
    text = caplog.text
    assert digest not in text and "correct horse" not in text
    assert "Authorization: Digest username=\"alice\"" in text and "response=<redacted>" in text
    directions = [r.getMessage().split(" ", 3)[:3] for r in caplog.records if r.name == "ucma.sip"]
    assert ["sent", "TCP", "to"] in directions and ["received", "TCP", "from"] in directions


# --- threads and shutdown -------------------------------------------------------------------------


def test_thread_count_is_constant_with_200_connections(make_stack: MakeStack) -> None:
    server = make_stack(workers=2)
    server.request_handler = Handler()
    host, port = server.listen("127.0.0.1", 0, SipTransportType.TCP)
    client = make_stack(workers=2)
    warm = [concurrent.futures.Future[None]() for _ in range(2)]
    for pool_future, stack_ in zip(warm, (server, client), strict=True):
        stack_.worker_pool.submit(lambda f=pool_future: f.set_result(None))  # type: ignore[misc]
    for future in warm:
        future.result(WAIT)
    before = threading.active_count()
    connections = [client.connect(host, port, SipTransportType.TCP) for _ in range(200)]
    opened = [future.result(WAIT) for future in connections]
    answers = [c.send_request(request(c)) for c in opened]
    assert all(a.result(WAIT).status_code == 200 for a in answers)
    assert threading.active_count() == before
    assert client.stats.io_threads == 1 and client.stats.open_connections == 200
    assert server.stats.io_threads == 1 and server.stats.open_connections == 200


def test_stop_closes_everything_and_joins_the_thread(
    make_stack: MakeStack, tcp_server: socket.socket, udp_peer: socket.socket
) -> None:
    stack = make_stack()
    host, port = stack.listen("127.0.0.1", 0, SipTransportType.TCP)
    connection, peer = connect_tcp(stack, tcp_server)
    flow = stack.connect("127.0.0.1", port_of(udp_peer), SipTransportType.UDP).result(WAIT)
    closes = [CloseLog(connection), CloseLog(flow)]
    pending = connection.send_request(request(connection))
    peer.read_request()
    thread = stack.io_thread
    assert thread is not None
    stack.stop()
    assert not thread.is_alive()
    assert connection.is_closed and flow.is_closed
    assert all(isinstance(log.wait(), ConnectionFailureException) for log in closes)
    with pytest.raises(ConnectionFailureException):
        pending.result(WAIT)
    with pytest.raises(EOFError):
        peer.read()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((host, port), timeout=WAIT).close()
    assert stack.stats == type(stack.stats)(0, 0, 0, 0, 0)
    stack.stop()  # idempotent
    with pytest.raises(InvalidOperationException):
        stack.connect("127.0.0.1", port, SipTransportType.TCP)
    with pytest.raises(ConnectionFailureException, match="stopped"):
        connection.send_request(request(connection)).result(WAIT)
