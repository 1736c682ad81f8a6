"""MS-SIPAE NTLM: signature buffers, the OC 2007 R2 capture byte for byte, and our client against our server."""

from __future__ import annotations

import base64
import itertools
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ucma.signaling.digest_authenticator import DigestAuthenticator
from ucma.signaling.exceptions import (
    ArgumentException,
    AuthenticationException,
    AuthenticationFailureReason,
    MessageParsingException,
)
from ucma.signaling.ntlm import filetime_from_unix, product_version
from ucma.signaling.sip import Headers, NameAddress, Parameters, SipRequest, SipResponse, Via, parse_message
from ucma.signaling.sip.auth_headers import Credentials
from ucma.signaling.sip.builders import make_request, make_response
from ucma.signaling.sipae import (
    DEFAULT_REALM,
    MessageSignatureException,
    MsSipaeAuthenticator,
    NtlmAccount,
    ServerVerdict,
    SignatureFailure,
    SipaeNtlmServer,
    choose_authenticator,
    signature_buffer,
)

# --- Vector A: the captured OC 2007 R2 REGISTER and OCS 2007 R2 200 OK (SIPE's test file) ----

A_TARGET = "cosmo-ocs-r2.cosmo.local"
A_TYPE2 = (
    "TlRMTVNTUAACAAAAAAAAADgAAADzgpji3Ruq9OfiGNEAAAAAAAAAAJYAlgA4AAAABQLODgAAAA8CAAoAQwBPAFMATQBPAAEAGABDAE8AU"
    "wBNAE8ALQBPAEMAUwAtAFIAMgAEABYAYwBvAHMAbQBvAC4AbABvAGMAYQBsAAMAMABjAG8AcwBtAG8ALQBvAGMAcwAtAHIAMgAuAGMAbw"
    "BzAG0AbwAuAGwAbwBjAGEAbAAFABYAYwBvAHMAbQBvAC4AbABvAGMAYQBsAAAAAAA="
)
A_TYPE3 = (
    "TlRMTVNTUAADAAAAGAAYAHIAAADGAMYAigAAAAoACgBIAAAACAAIAFIAAAAYABgAWgAAABAAEABQAQAAVYKYYgUCzg4AAAAPQwBPAFMATQB"
    "PAFUAcwBlAHIAQwBPAFMATQBPAC0ATwBDAFMALQBSADIAoeku/k4Hi/fFwASazGFmwtauh1yw/apBjcDIAK527KYG0rn769BHMQEBAAAAAA"
    "AAWVGaFye5ygHWrodcsP2qQQAAAAACAAoAQwBPAFMATQBPAAEAGABDAE8AUwBNAE8ALQBPAEMAUwAtAFIAMgAEABYAYwBvAHMAbQBvAC4Ab"
    "ABvAGMAYQBsAAMAMABjAG8AcwBtAG8ALQBvAGMAcwAtAHIAMgAuAGMAbwBzAG0AbwAuAGwAbwBjAGEAbAAFABYAYwBvAHMAbQBvAC4AbABv"
    "AGMAYQBsAAAAAAAAAAAAMctznhyoCkmFkeiueXEV5A=="
)
A_PROXY_AUTHORIZATION = (
    f'NTLM qop="auth", realm="SIP Communications Service", opaque="2BDBAC9D", targetname="{A_TARGET}", version=4, '
    f'gssapi-data="{A_TYPE3}", crand="13317733", cnum="1", response="0100000029618e9651b65a7764000000"'
)
A_AUTHENTICATION_INFO = (
    'NTLM rspauth="01000000E615438A917661BE64000000", srand="9616454F", snum="1", opaque="2BDBAC9D", qop="auth", '
    f'targetname="{A_TARGET}", realm="SIP Communications Service"'
)
A_REQUEST_HEADERS = [
    ("Via", "SIP/2.0/TLS 192.168.172.6:12723"),
    ("Max-Forwards", "70"),
    ("From", "<sip:user@cosmo.local>;tag=3e49177a52;epid=c8ca638a15"),
    ("To", "<sip:user@cosmo.local>"),
    ("Call-ID", "4037df9284354df39065195bd57a4b14"),
    ("CSeq", "3 REGISTER"),
    (
        "Contact",
        '<sip:192.168.172.6:12723;transport=tls;ms-opaque=fad3dfab32>;methods="INVITE, MESSAGE, INFO, OPTIONS, BYE, '
        'CANCEL, NOTIFY, ACK, REFER, BENOTIFY";proxy=replace;'
        '+sip.instance="<urn:uuid:34D859DB-6585-5F91-A3B4-DE853C15347D>"',
    ),
    ("User-Agent", "UCCAPI/3.5.6907.0 OC/3.5.6907.0 (Microsoft Office Communicator 2007 R2)"),
    ("Supported", "gruu-10, adhoclist, msrtc-event-categories"),
    ("Supported", "ms-forking"),
    ("ms-keep-alive", "UAC;hop-hop=yes"),
    ("Event", "registration"),
]
A_RESPONSE_HEADERS = [
    ("ms-keep-alive", "UAS; tcp=no; hop-hop=yes; end-end=no; timeout=300"),
    ("Authentication-Info", A_AUTHENTICATION_INFO),
    ("From", '"User"<sip:user@cosmo.local>;tag=3e49177a52;epid=c8ca638a15'),
    ("To", "<sip:user@cosmo.local>;tag=5E61CCD925D17E043D9A74835A88F664"),
    ("Call-ID", "4037df9284354df39065195bd57a4b14"),
    ("CSeq", "3 REGISTER"),
    ("Via", "SIP/2.0/TLS 192.168.172.6:12723;ms-received-port=12723;ms-received-cid=2600"),
    (
        "Contact",
        "<sip:192.168.172.6:12723;transport=tls;ms-opaque=fad3dfab32;ms-received-cid=2600>;expires=7200;"
        '+sip.instance="<urn:uuid:34d859db-6585-5f91-a3b4-de853c15347d>";'
        'gruu="sip:user@cosmo.local;opaque=user:epid:21nYNIVlkV-jtN6FPBU0fQAA;gruu"',
    ),
    ("Expires", "7200"),
    ("presence-state", 'register-action="added"'),
    (
        "Allow-Events",
        "vnd-microsoft-provisioning,vnd-microsoft-roaming-contacts,vnd-microsoft-roaming-ACL,presence,"
        "presence.wpending,vnd-microsoft-roaming-self,vnd-microsoft-provisioning-v2",
    ),
    ("Supported", "adhoclist"),
    ("Server", "RTC/3.5"),
    ("Supported", "msrtc-event-categories"),
]
A_REQUEST_BUFFER = (
    f"<NTLM><13317733><1><SIP Communications Service><{A_TARGET}><4037df9284354df39065195bd57a4b14><3><REGISTER>"
    "<sip:user@cosmo.local><3e49177a52><sip:user@cosmo.local><><><><>"
)
A_RESPONSE_BUFFER = (
    f"<NTLM><9616454F><1><SIP Communications Service><{A_TARGET}><4037df9284354df39065195bd57a4b14><3><REGISTER>"
    "<sip:user@cosmo.local><3e49177a52><sip:user@cosmo.local><5E61CCD925D17E043D9A74835A88F664><><><7200><200>"
)
A_FILETIME = int.from_bytes(bytes.fromhex("59519A1727B9CA01"), "little")


def _text(start_line: str, headers: list[tuple[str, str]]) -> bytes:
    lines = [start_line, *(f"{name}: {value}" for name, value in headers), "Content-Length: 0", "", ""]
    return "\r\n".join(lines).encode()


def a_request(*, signed: bool = True) -> SipRequest:
    """The captured REGISTER as parsed off the wire (optionally without its Proxy-Authorization)."""
    headers = [*A_REQUEST_HEADERS, ("Proxy-Authorization", A_PROXY_AUTHORIZATION)] if signed else A_REQUEST_HEADERS
    message = parse_message(_text("REGISTER sip:cosmo.local SIP/2.0", headers))
    assert isinstance(message, SipRequest)
    return message


def a_response(*, signed: bool = True) -> SipResponse:
    headers = A_RESPONSE_HEADERS if signed else [h for h in A_RESPONSE_HEADERS if h[0] != "Authentication-Info"]
    message = parse_message(_text("SIP/2.0 200 OK", headers))
    assert isinstance(message, SipResponse)
    return message


def feeder(*chunks: bytes) -> Callable[[int], bytes]:
    """A ``random_bytes`` that hands out ``chunks`` in order (and checks the sizes asked for)."""
    queue = iter(chunks)

    def random_bytes(size: int) -> bytes:
        chunk = next(queue)
        assert len(chunk) == size
        return chunk

    return random_bytes


def counter_bytes() -> Callable[[int], bytes]:
    """Deterministic, never-repeating ``random_bytes`` for round trips."""
    numbers = itertools.count(1)
    return lambda size: next(numbers).to_bytes(size, "big")


def a_server(**overrides: object) -> SipaeNtlmServer:
    options: dict[str, object] = {
        "targetname": A_TARGET,
        "netbios_domain": "COSMO",
        "netbios_computer": "COSMO-OCS-R2",
        "dns_domain": "cosmo.local",
        "ntlm_version": product_version(5, 2, 3790),
        "random_bytes": feeder(bytes.fromhex("DD1BAAF4E7E218D1"), bytes.fromhex("2BDBAC9D"), bytes.fromhex("9616454F")),
    }
    options.update(overrides)
    return SipaeNtlmServer([NtlmAccount("User", "COSMO", "Pa$$word")], **options)  # type: ignore[arg-type]


def a_first_leg() -> SipRequest:
    request = a_request(signed=False)
    request.headers.add(
        "Proxy-Authorization",
        f'NTLM qop="auth", realm="SIP Communications Service", targetname="{A_TARGET}", gssapi-data="", version=4',
    )
    return request


# --- the signature buffer -------------------------------------------------------------------


def test_vector_a_buffers_from_the_parsed_capture() -> None:
    request_buffer = signature_buffer(
        a_request(), scheme="NTLM", rand="13317733", num="1", realm=DEFAULT_REALM, targetname=A_TARGET, version=4
    )
    response_buffer = signature_buffer(
        a_response(), scheme="NTLM", rand="9616454F", num="1", realm=DEFAULT_REALM, targetname=A_TARGET, version=4
    )
    assert request_buffer == A_REQUEST_BUFFER
    assert response_buffer == A_RESPONSE_BUFFER


def test_vector_a_buffers_from_messages_built_in_code() -> None:
    request = SipRequest("REGISTER", "sip:cosmo.local", Headers(A_REQUEST_HEADERS))
    response = SipResponse(200, "OK", Headers(A_RESPONSE_HEADERS))
    common = {"scheme": "NTLM", "num": "1", "realm": DEFAULT_REALM, "targetname": A_TARGET, "version": 4}
    assert signature_buffer(request, rand="13317733", **common) == A_REQUEST_BUFFER  # type: ignore[arg-type]
    assert signature_buffer(response, rand="9616454F", **common) == A_RESPONSE_BUFFER  # type: ignore[arg-type]


def test_version_4_buffer_keeps_the_case_of_a_signed_180_from_a_mobile_client() -> None:
    # SIPE's "v4 signature string" test: upper-case header names and an upper-case SIP: in P-Asserted-Identity.
    raw = _text(
        "SIP/2.0 180 Ringing",
        [
            (
                "Authentication-Info",
                'NTLM rspauth="010000003EA8D688BA51D5CD64000000", srand="1B6D47A1", snum="11", opaque="357E6F72", '
                f'qop="auth", targetname="LOC-COMPANYT-FE03.COMPANY.COM", realm="{DEFAULT_REALM}"',
            ),
            ("Via", "SIP/2.0/tls 192.168.44.10:50230;received=10.117.245.254;ms-received-port=50230"),
            ("FROM", '"Sender"<sip:sender@company.com>;tag=2420628112;epid=54392f1bbf01'),
            ("TO", '"recipient"<sip:recipient@company.com>;tag=7aee15546a;epid=3102EB8BD1'),
            ("CSEQ", "1 INVITE"),
            ("CALL-ID", "41CEg82ECa0AC8i3DD7mE673t9CF4b19DAxF780x"),
            ("CONTACT", "<sip:recipient@company.com;opaque=user:epid:-gLwenLTVVqy-Ak8TJn1ZAAA;gruu>;text;audio;video"),
            ("SUPPORTED", "gruu-10"),
            ("P-ASSERTED-IDENTITY", '"recipient"<SIP:recipient@company.com>'),
        ],
    )
    message = parse_message(raw)
    buffer = signature_buffer(
        message,
        scheme="NTLM",
        rand="1B6D47A1",
        num="11",
        realm=DEFAULT_REALM,
        targetname="LOC-COMPANYT-FE03.COMPANY.COM",
        version=4,
    )
    assert buffer == (
        "<NTLM><1B6D47A1><11><SIP Communications Service><LOC-COMPANYT-FE03.COMPANY.COM>"
        "<41CEg82ECa0AC8i3DD7mE673t9CF4b19DAxF780x><1><INVITE><sip:sender@company.com><2420628112>"
        "<sip:recipient@company.com><7aee15546a><SIP:recipient@company.com><><><180>"
    )


def test_version_2_buffer_leaves_out_to_uri_and_asserted_identity() -> None:
    raw = _text(
        "SIP/2.0 200 OK",
        [
            ("From", '"Gabriel Burt"<sip:gabriel@ocs.provo.novell.com>;tag=2947328781;epid=1234567890'),
            ("To", "<sip:gabriel@ocs.provo.novell.com>;tag=B816D65C2300A32CFA6D371F2AF537FD"),
            ("Call-ID", "8592g5DCBa1694i5887m0D0Bt2247b3F38xAE9Fx"),
            ("CSeq", "3 REGISTER"),
            ("Via", "SIP/2.0/TLS 164.99.194.49:10409;branch=z9hG4bKE0E37DBAF252C3255BAD"),
            ("Contact", "<sip:164.99.195.20:10409;transport=tls;ms-received-cid=1E00>;expires=900"),
            ("Expires", "900"),
            ("P-Asserted-Identity", "<sip:gabriel@ocs.provo.novell.com>"),
        ],
    )
    buffer = signature_buffer(
        parse_message(raw),
        scheme="NTLM",
        rand="0878F41B",
        num="1",
        realm=DEFAULT_REALM,
        targetname="ocs1.ocs.provo.novell.com",
        version=2,
    )
    assert buffer == (
        "<NTLM><0878F41B><1><SIP Communications Service><ocs1.ocs.provo.novell.com>"
        "<8592g5DCBa1694i5887m0D0Bt2247b3F38xAE9Fx><3><REGISTER><sip:gabriel@ocs.provo.novell.com><2947328781>"
        "<B816D65C2300A32CFA6D371F2AF537FD><900><200>"
    )


def _tail(request: SipRequest) -> str:
    """The PAI sip, PAI tel and Expires fields of a v4 request buffer."""
    buffer = signature_buffer(request, scheme="NTLM", rand="r", num="1", realm="R", targetname="T", version=4)
    return buffer.split("<sip:bob@example.com>")[-1]


def _plain_request(*extra: tuple[str, str]) -> SipRequest:
    headers = [
        ("From", "<sip:alice@example.com>;tag=1"),
        ("To", "<sip:bob@example.com>"),
        ("Call-ID", "c1"),
        ("CSeq", "7 INVITE"),
        ("Contact", "<sip:alice@192.0.2.1>;expires=60"),
        *extra,
    ]
    return SipRequest("INVITE", "sip:bob@example.com", Headers(headers))


@pytest.mark.parametrize(
    ("extra", "tail"),
    [
        ((), "<><><><>"),
        ((("Expires", "3600"),), "<><><><3600>"),
        (
            (("P-Asserted-Identity", "<sip:a@example.com>, <tel:+14255550100>"),),
            "<><sip:a@example.com><tel:+14255550100><>",
        ),
        (
            (("P-Asserted-Identity", "<tel:+1555>"), ("P-Asserted-Identity", '"A" <sip:a@example.com>')),
            "<><sip:a@example.com><tel:+1555><>",
        ),
        ((("P-Preferred-Identity", "<sip:p@example.com>"),), "<><sip:p@example.com><><>"),
        (
            (("P-Preferred-Identity", "<sip:p@example.com>"), ("P-Asserted-Identity", "<sip:a@example.com>")),
            "<><sip:a@example.com><><>",
        ),
    ],
)
def test_identity_and_expires_fields(extra: tuple[tuple[str, str], ...], tail: str) -> None:
    assert _tail(_plain_request(*extra)) == tail


def test_buffer_of_a_message_with_a_malformed_cseq_is_refused() -> None:
    request = _plain_request()
    request.headers.set("CSeq", "seven INVITE")
    with pytest.raises(MessageParsingException):
        _tail(request)


# --- Vector A through the authenticator and the server ----------------------------------------


def a_client() -> MsSipaeAuthenticator:
    return MsSipaeAuthenticator(
        "User",
        "Pa$$word",
        "COSMO",
        "COSMO-OCS-R2",
        random_bytes=feeder(
            bytes.fromhex("D6AE875CB0FDAA41"),
            bytes.fromhex("6742FBE37BB1946B49D86A525BD29A9B"),
            bytes.fromhex("13317733"),
        ),
        now=lambda: A_FILETIME,
        ntlm_version=product_version(5, 2, 3790),
    )


def a_407() -> SipResponse:
    challenge = (
        f'NTLM opaque="2BDBAC9D", gssapi-data="{A_TYPE2}", targetname="{A_TARGET}", '
        'realm="SIP Communications Service", version=4'
    )
    return SipResponse(407, "Proxy Authentication Required", Headers([("Proxy-Authenticate", challenge)]))


def test_vector_a_client_writes_the_captured_proxy_authorization() -> None:
    client = a_client()
    request = a_request(signed=False)
    client.handle_challenge(a_first_leg(), a_407())
    client.authorize(request)
    assert request.headers.get("Proxy-Authorization") == A_PROXY_AUTHORIZATION
    assert client.protocol_name == "NTLM"
    assert client.was_challenged


def test_vector_a_client_accepts_the_captured_rspauth_once() -> None:
    client = a_client()
    request = a_request(signed=False)
    client.handle_challenge(a_first_leg(), a_407())
    client.authorize(request)
    established_before = client.is_established
    client.process_success(request, a_response())
    assert (established_before, client.is_established) == (False, True)
    with pytest.raises(MessageSignatureException) as caught:
        client.process_success(request, a_response())
    assert caught.value.failure is SignatureFailure.REPLAYED


def test_vector_a_server_issues_the_captured_challenge() -> None:
    server = a_server()
    verdict = server.process_request(a_first_leg())
    assert not verdict.accepted
    assert verdict.status_code == 401
    assert verdict.challenge is not None
    assert verdict.challenge.get("opaque") == "2BDBAC9D"
    assert verdict.challenge.get("gssapi-data") == A_TYPE2
    assert str(verdict.challenge) == (
        f'NTLM opaque="2BDBAC9D", gssapi-data="{A_TYPE2}", targetname="{A_TARGET}", '
        'realm="SIP Communications Service", version=4'
    )


def test_vector_a_server_verifies_the_captured_request_and_writes_the_captured_rspauth() -> None:
    server = a_server()
    server.process_request(a_first_leg())
    verdict = server.process_request(a_request())
    assert verdict.accepted, verdict.rejection
    assert verdict.association is not None
    assert (verdict.association.user_name, verdict.association.domain_name) == ("User", "COSMO")
    response = a_response(signed=False)
    verdict.association.sign(response)
    assert response.headers.get("Authentication-Info") == A_AUTHENTICATION_INFO


def test_vector_a_server_rejects_the_captured_request_a_second_time() -> None:
    server = a_server()
    server.process_request(a_first_leg())
    assert server.process_request(a_request()).accepted
    again = server.process_request(a_request())
    assert not again.accepted
    assert isinstance(again.rejection, MessageSignatureException)
    assert again.challenge is not None and again.challenge.get("gssapi-data") is None


def test_vector_a_authenticate_without_a_pending_challenge_is_refused() -> None:
    verdict = a_server().process_request(a_request())
    assert isinstance(verdict.rejection, MessageSignatureException)
    assert verdict.rejection.failure is SignatureFailure.NO_SECURITY_ASSOCIATION


def test_vector_a_server_refuses_a_tampered_signature_on_the_authenticate() -> None:
    server = a_server()
    server.process_request(a_first_leg())
    request = a_request()
    request.headers.set("Call-ID", "4037df9284354df39065195bd57a4b15")
    verdict = server.process_request(request)
    assert isinstance(verdict.rejection, MessageSignatureException)
    assert verdict.rejection.failure is SignatureFailure.BAD_SIGNATURE


# --- round trips: our client against our server ---------------------------------------------

TARGET = "ocs.contoso.com"
AOR = "sip:alice@contoso.com"
PASSWORD = "correct horse battery staple"


def make_server(**options: object) -> SipaeNtlmServer:
    options.setdefault("random_bytes", counter_bytes())
    return SipaeNtlmServer([NtlmAccount("alice", "CONTOSO", PASSWORD)], targetname=TARGET, **options)  # type: ignore[arg-type]


def make_client(password: str = PASSWORD, **options: object) -> MsSipaeAuthenticator:
    options.setdefault("random_bytes", counter_bytes())
    options.setdefault("now", lambda: filetime_from_unix(1_700_000_000))
    return MsSipaeAuthenticator("CONTOSO\\alice", password, workstation="PC1", **options)  # type: ignore[arg-type]


_cseq = itertools.count(1)


def request(method: str = "REGISTER", *extra: tuple[str, str]) -> SipRequest:
    return make_request(
        method,
        "sip:contoso.com",
        via=Via("TLS", "192.0.2.1", 5061, Parameters([("branch", f"z9hG4bK{next(_cseq)}")])),
        from_header=NameAddress(AOR, None, Parameters([("tag", "a1b2"), ("epid", "0102030405")])),
        to_header=NameAddress(AOR),
        call_id="reg-1@192.0.2.1",
        cseq=next(_cseq),
        headers=extra,
    )


def wire(message: SipRequest | SipResponse) -> SipRequest | SipResponse:
    return parse_message(message.to_bytes())


def serve(server: SipaeNtlmServer, sent: SipRequest) -> tuple[ServerVerdict, SipResponse]:
    """What the registrar answers: its challenge, or a signed 200 with Expires."""
    seen = wire(sent)
    assert isinstance(seen, SipRequest)
    verdict = server.process_request(seen)
    if verdict.accepted:
        assert verdict.association is not None
        response = make_response(seen, 200, to_tag="srv1", headers=[("Expires", "7200")])
        verdict.association.sign(response)
    else:
        assert verdict.challenge is not None
        response = make_response(
            seen, verdict.status_code, to_tag="srv1", headers=[(verdict.challenge_header, str(verdict.challenge))]
        )
    received = wire(response)
    assert isinstance(received, SipResponse)
    return verdict, received


def handshake(client: MsSipaeAuthenticator, server: SipaeNtlmServer) -> list[SipRequest]:
    """Register until a 200 comes back; return the requests as sent."""
    sent: list[SipRequest] = []
    for _ in range(4):
        outgoing = request()
        client.authorize(outgoing)
        sent.append(outgoing)
        _, response = serve(server, outgoing)
        if response.status_code == 200:
            client.process_success(outgoing, response)
            return sent
        client.handle_challenge(outgoing, response)
    raise AssertionError("no 200 after four requests")


def credentials(message: SipRequest, header: str = "Authorization") -> Credentials:
    value = message.headers.get(header)
    assert value is not None
    return Credentials.parse(value)


def signed_by_client(client: MsSipaeAuthenticator) -> SipRequest:
    outgoing = request("SUBSCRIBE")
    client.authorize(outgoing)
    return outgoing


@pytest.mark.parametrize("version", [4, 3, 2])
def test_handshake_legs_on_the_wire(version: int) -> None:
    client, server = make_client(), make_server(version=version)
    first, second, third = handshake(client, server)
    version_text = f", version={version}" if version > 2 else ""
    assert first.headers.get("Authorization") is None
    assert second.headers.get("Authorization") == (
        f'NTLM qop="auth", realm="{DEFAULT_REALM}", targetname="{TARGET}", gssapi-data=""{version_text}'
    )
    answer = credentials(third)
    assert answer.get("opaque") is not None
    token = base64.b64decode(answer.get("gssapi-data") or "")
    assert token.startswith(b"NTLMSSP\x00\x03\x00\x00\x00")
    assert (answer.get("cnum") == "1") is (version >= 4)
    assert client.is_established


@pytest.mark.parametrize("version", [4, 3, 2])
def test_signed_exchange_both_ways_with_advancing_numbers(version: int) -> None:
    client, server = make_client(), make_server(version=version)
    handshake(client, server)
    first_number = 2 if version >= 4 else 1
    for expected in range(first_number, first_number + 3):
        outgoing = signed_by_client(client)
        sent = credentials(outgoing)
        assert sent.get("cnum") == str(expected)
        assert sent.get("gssapi-data") is None
        verdict, response = serve(server, outgoing)
        assert verdict.accepted, verdict.rejection
        client.process_success(outgoing, response)
        info = Credentials.parse(response.headers.get("Authentication-Info") or "")
        assert info.get("snum") == str(expected - first_number + 2)


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("From", f"<{AOR}>;tag=evil;epid=0102030405"),
        ("To", "<sip:mallory@contoso.com>"),
        ("Call-ID", "reg-2@192.0.2.1"),
        ("CSeq", "999999 SUBSCRIBE"),
        ("Expires", "0"),
        ("P-Asserted-Identity", "<sip:ceo@contoso.com>"),
    ],
)
def test_server_rejects_a_request_whose_signed_header_was_changed(header: str, value: str) -> None:
    client, server = make_client(), make_server()
    handshake(client, server)
    outgoing = signed_by_client(client)
    outgoing.headers.set(header, value)
    verdict, response = serve(server, outgoing)
    assert not verdict.accepted
    assert isinstance(verdict.rejection, MessageSignatureException)
    assert verdict.rejection.failure is SignatureFailure.BAD_SIGNATURE
    assert response.status_code == 401


def test_headers_outside_the_buffer_may_change() -> None:
    client, server = make_client(), make_server()
    handshake(client, server)
    outgoing = signed_by_client(client)
    outgoing.headers.set("User-Agent", "changed in transit")
    assert serve(server, outgoing)[0].accepted


def test_server_rejects_a_replayed_request_and_accepts_reordered_ones() -> None:
    client, server = make_client(), make_server()
    handshake(client, server)
    first, second = signed_by_client(client), signed_by_client(client)
    assert serve(server, second)[0].accepted
    assert serve(server, first)[0].accepted  # older but inside the window
    replay = serve(server, first)[0]
    assert isinstance(replay.rejection, MessageSignatureException)
    assert replay.rejection.failure is SignatureFailure.REPLAYED


def test_server_rejects_a_cnum_below_the_replay_window() -> None:
    client, server = make_client(), make_server()
    handshake(client, server)
    old = signed_by_client(client)
    newer = [signed_by_client(client) for _ in range(256)]
    assert serve(server, newer[-1])[0].accepted
    verdict = serve(server, old)[0]
    assert isinstance(verdict.rejection, MessageSignatureException)
    assert verdict.rejection.failure is SignatureFailure.REPLAYED
    assert serve(server, newer[0])[0].accepted  # exactly at the window's lower edge


def test_client_rejects_tampered_unsigned_and_replayed_responses() -> None:
    client, server = make_client(), make_server()
    handshake(client, server)
    outgoing = signed_by_client(client)
    _, response = serve(server, outgoing)
    tampered = wire(response)
    assert isinstance(tampered, SipResponse)
    tampered.headers.set("Expires", "1")
    with pytest.raises(MessageSignatureException) as caught:
        client.process_success(outgoing, tampered)
    assert caught.value.failure is SignatureFailure.BAD_SIGNATURE
    unsigned = wire(response)
    assert isinstance(unsigned, SipResponse)
    unsigned.headers.remove("Authentication-Info")
    with pytest.raises(MessageSignatureException) as caught:
        client.process_success(outgoing, unsigned)
    assert caught.value.failure is SignatureFailure.UNSIGNED
    client.process_success(outgoing, response)
    with pytest.raises(MessageSignatureException) as caught:
        client.process_success(outgoing, response)
    assert caught.value.failure is SignatureFailure.REPLAYED


def test_client_discards_a_response_signed_for_another_target() -> None:
    client, server = make_client(), make_server()
    handshake(client, server)
    outgoing = signed_by_client(client)
    _, response = serve(server, outgoing)
    info = response.headers.get("Authentication-Info") or ""
    response.headers.set("Authentication-Info", info.replace(TARGET, "other.contoso.com"))
    with pytest.raises(MessageSignatureException) as caught:
        client.process_success(outgoing, response)
    assert caught.value.failure is SignatureFailure.NO_SECURITY_ASSOCIATION


def test_client_lets_unsigned_provisional_and_challenge_responses_through() -> None:
    client, server = make_client(), make_server()
    handshake(client, server)
    outgoing = signed_by_client(client)
    seen = wire(outgoing)
    assert isinstance(seen, SipRequest)
    client.verify_incoming(make_response(seen, 100))
    client.verify_incoming(make_response(seen, 401, headers=[("WWW-Authenticate", str(server.first_leg_challenge()))]))
    with pytest.raises(MessageSignatureException):
        client.verify_incoming(make_response(seen, 486))


def test_server_originated_requests_are_verified() -> None:
    client, server = make_client(), make_server()
    sent = handshake(client, server)
    association = server.association(credentials(sent[-1]).get("opaque") or "")
    assert association is not None
    notify = make_request(
        "BENOTIFY",
        "sip:alice@192.0.2.1:5061;transport=tls",
        via=Via("TLS", "198.51.100.7", 5061, Parameters([("branch", "z9hG4bKsrv1")])),
        from_header=NameAddress(AOR, None, Parameters([("tag", "srv9")])),
        to_header=NameAddress(AOR, None, Parameters([("tag", "a1b2")])),
        call_id="sub-1",
        cseq=4,
        headers=[("Event", "vnd-microsoft-roaming-self")],
    )
    association.sign(notify)
    received = wire(notify)
    client.verify_incoming(received)
    with pytest.raises(MessageSignatureException) as caught:
        client.verify_incoming(received)
    assert caught.value.failure is SignatureFailure.REPLAYED
    forged = wire(notify)
    forged.headers.set("Event", "vnd-microsoft-roaming-self")
    forged.headers.set("CSeq", "5 BENOTIFY")
    with pytest.raises(MessageSignatureException) as caught:
        client.verify_incoming(forged)
    assert caught.value.failure is SignatureFailure.BAD_SIGNATURE
    forged.headers.remove("Authentication-Info")
    with pytest.raises(MessageSignatureException) as caught:
        client.verify_incoming(forged)
    assert caught.value.failure is SignatureFailure.UNSIGNED


def test_responses_we_send_are_signed_for_the_server() -> None:
    client, server = make_client(), make_server()
    sent = handshake(client, server)
    association = server.association(credentials(sent[-1]).get("opaque") or "")
    assert association is not None
    inbound = wire(request("NOTIFY"))
    assert isinstance(inbound, SipRequest)
    ok = make_response(inbound, 200)
    client.sign_response(ok)
    association.verify(wire(ok))


def test_wrong_password_is_invalid_credentials() -> None:
    client, server = make_client(password="wrong"), make_server()
    outgoing = request()
    client.authorize(outgoing)
    for _ in range(2):
        _, response = serve(server, outgoing)
        client.handle_challenge(outgoing, response)
        outgoing = request()
        client.authorize(outgoing)
    verdict, response = serve(server, outgoing)
    assert isinstance(verdict.rejection, AuthenticationException)
    assert verdict.rejection.failure_reason is AuthenticationFailureReason.INVALID_CREDENTIALS
    with pytest.raises(AuthenticationException) as caught:
        client.handle_challenge(outgoing, response)
    assert caught.value.failure_reason is AuthenticationFailureReason.INVALID_CREDENTIALS
    assert "wrong" not in str(caught.value)
    assert PASSWORD not in str(verdict.rejection)


def test_server_expiring_the_sa_restarts_the_handshake() -> None:
    client, server = make_client(), make_server()
    sent = handshake(client, server)
    old_opaque = credentials(sent[-1]).get("opaque") or ""
    assert server.forget(old_opaque)
    outgoing = signed_by_client(client)
    verdict, response = serve(server, outgoing)
    assert isinstance(verdict.rejection, MessageSignatureException)
    assert verdict.rejection.failure is SignatureFailure.NO_SECURITY_ASSOCIATION
    client.handle_challenge(outgoing, response)  # a fresh challenge, not a refusal
    again = handshake(client, server)
    assert credentials(again[0]).get("gssapi-data") == ""
    new_opaque = credentials(again[-1]).get("opaque")
    assert new_opaque not in (None, old_opaque)
    assert serve(server, signed_by_client(client))[0].accepted


def test_client_reauthentication_drops_the_sa() -> None:
    client, server = make_client(), make_server()
    sent = handshake(client, server)
    association = server.association(credentials(sent[-1]).get("opaque") or "")
    assert association is not None
    client.reauthenticate()
    unsigned = request()
    client.authorize(unsigned)
    assert "Authorization" not in unsigned.headers
    notify = wire(request("NOTIFY"))
    association.sign(notify)
    with pytest.raises(MessageSignatureException) as caught:
        client.verify_incoming(notify)
    assert caught.value.failure is SignatureFailure.NO_SECURITY_ASSOCIATION
    handshake(client, server)
    assert serve(server, signed_by_client(client))[0].accepted


def test_proxy_challenge_uses_the_proxy_headers() -> None:
    client, server = make_client(), make_server(proxy=True)
    sent = handshake(client, server)
    assert "Authorization" not in sent[-1].headers
    assert credentials(sent[-1], "Proxy-Authorization").get("gssapi-data")
    outgoing = signed_by_client(client)
    verdict, response = serve(server, outgoing)
    assert verdict.accepted
    assert "Proxy-Authentication-Info" in response.headers
    client.process_success(outgoing, response)


def test_server_timestamp_in_the_challenge_is_used_and_still_verifies() -> None:
    def clock() -> int:
        raise AssertionError("the client must use the server's MsvAvTimestamp")

    client = make_client(now=clock)
    server = make_server(now=lambda: filetime_from_unix(1_600_000_000))
    handshake(client, server)
    assert serve(server, signed_by_client(client))[0].accepted


def test_user_name_forms() -> None:
    split = MsSipaeAuthenticator("CONTOSO\\alice", PASSWORD, workstation="PC")
    assert (split.user_name, split.domain) == ("alice", "CONTOSO")
    upn = MsSipaeAuthenticator("alice@contoso.com", PASSWORD, workstation="PC")
    assert (upn.user_name, upn.domain) == ("alice@contoso.com", "")
    assert MsSipaeAuthenticator("alice", PASSWORD).workstation


# --- scheme choice and failures -------------------------------------------------------------


def challenge_response(*challenges: str, status: int = 401) -> SipResponse:
    header = "WWW-Authenticate" if status == 401 else "Proxy-Authenticate"
    return SipResponse(status, "Unauthorized", Headers([(header, c) for c in challenges]))


NTLM_OFFER = f'NTLM realm="{DEFAULT_REALM}", targetname="{TARGET}", version=4'
DIGEST_OFFER = 'Digest realm="contoso.com", nonce="abc", qop="auth"'


def test_digest_only_offer_is_no_common_protocol() -> None:
    with pytest.raises(AuthenticationException) as caught:
        make_client().handle_challenge(request(), challenge_response(DIGEST_OFFER))
    assert caught.value.failure_reason is AuthenticationFailureReason.NO_COMMON_PROTOCOLS
    assert caught.value.supported_authentication_protocols == ("Digest",)


def test_choose_authenticator_prefers_ntlm_then_digest() -> None:
    both = challenge_response(DIGEST_OFFER, NTLM_OFFER)
    assert isinstance(choose_authenticator(both, "alice", PASSWORD, "CONTOSO", workstation="PC"), MsSipaeAuthenticator)
    proxy = challenge_response(NTLM_OFFER, status=407)
    assert isinstance(choose_authenticator(proxy, "alice", PASSWORD, workstation="PC"), MsSipaeAuthenticator)
    assert isinstance(choose_authenticator(challenge_response(DIGEST_OFFER), "alice", PASSWORD), DigestAuthenticator)
    with pytest.raises(AuthenticationException) as caught:
        choose_authenticator(challenge_response('Kerberos realm="x", targetname="sip/x"'), "alice", PASSWORD)
    assert caught.value.failure_reason is AuthenticationFailureReason.NO_COMMON_PROTOCOLS
    assert caught.value.supported_authentication_protocols == ("Kerberos",)


def test_kerberos_and_ntlm_offered_answers_ntlm_only() -> None:
    client = make_client()
    kerberos = f'Kerberos realm="{DEFAULT_REALM}", targetname="sip/{TARGET}", version=4'
    client.handle_challenge(request(), challenge_response(kerberos, NTLM_OFFER))
    outgoing = request()
    client.authorize(outgoing)
    assert [Credentials.parse(v).scheme for v in outgoing.headers.get_all("Authorization")] == ["NTLM"]


def test_a_repeated_first_leg_is_refused_instead_of_looping() -> None:
    client = make_client()
    first = request()
    client.handle_challenge(first, challenge_response(NTLM_OFFER))
    second = request()
    client.authorize(second)
    with pytest.raises(AuthenticationException) as caught:
        client.handle_challenge(second, challenge_response(NTLM_OFFER))
    assert caught.value.failure_reason is not AuthenticationFailureReason.INVALID_CREDENTIALS


def test_handle_challenge_needs_a_401_or_407() -> None:
    with pytest.raises(ArgumentException):
        make_client().handle_challenge(request(), SipResponse(403, "Forbidden"))


def test_nothing_is_checked_before_any_ntlm_challenge() -> None:
    client = make_client()
    outgoing = request()
    client.authorize(outgoing)
    assert "Authorization" not in outgoing.headers
    seen = wire(outgoing)
    assert isinstance(seen, SipRequest)
    client.process_success(outgoing, make_response(seen, 200))
    assert not client.was_challenged and client.protocol_name == ""


def test_secrets_stay_out_of_reprs_and_messages() -> None:
    client, server = make_client(), make_server()
    sent = handshake(client, server)
    answer = sent[-1].headers.get("Authorization") or ""
    token = Credentials.parse(answer).get("gssapi-data") or ""
    signature = Credentials.parse(answer).get("response") or ""
    texts = [
        repr(client),
        str(client),
        repr(server),
        repr(NtlmAccount("alice", "CONTOSO", PASSWORD)),
        repr(Credentials.parse(answer)),
        repr(server.association(Credentials.parse(answer).get("opaque") or "")),
        repr(sent[-1]),
    ]
    for text in texts:
        assert PASSWORD not in text
        assert token[:24] not in text
        assert signature not in text


# --- hostile input --------------------------------------------------------------------------

_HOSTILE_TEXT = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E, exclude_characters='"\\'))


def _hostile_tokens() -> st.SearchStrategy[str]:
    genuine = base64.b64decode(A_TYPE2)
    mutated = st.builds(
        lambda cut, flips: base64.b64encode(bytes(b ^ flips.get(i, 0) for i, b in enumerate(genuine[:cut]))).decode(),
        st.integers(0, len(genuine)),
        st.dictionaries(st.integers(0, len(genuine) - 1), st.integers(1, 255), max_size=4),
    )
    encoded = st.binary(max_size=200).map(lambda b: base64.b64encode(b).decode())
    return st.one_of(_HOSTILE_TEXT, encoded, mutated).filter(bool)  # "" is the legitimate first leg


@settings(max_examples=150)
@given(_hostile_tokens())
def test_hostile_challenge_tokens_raise_only_documented_exceptions(token: str) -> None:
    offer = f'NTLM opaque="01020304", gssapi-data="{token}", targetname="{TARGET}", realm="{DEFAULT_REALM}", version=4'
    client = make_client()
    try:
        client.handle_challenge(request(), challenge_response(offer))
    except (MessageParsingException, AuthenticationException):
        return
    outgoing = request()
    client.authorize(outgoing)
    assert credentials(outgoing).get("gssapi-data")


@settings(max_examples=150)
@given(_hostile_tokens())
def test_hostile_authenticate_tokens_are_refused_by_the_server(token: str) -> None:
    server = make_server()
    opening = request()
    opening.headers.set(
        "Authorization", f'NTLM qop="auth", realm="{DEFAULT_REALM}", targetname="{TARGET}", gssapi-data="", version=4'
    )
    verdict = server.process_request(opening)
    assert verdict.challenge is not None
    opaque = verdict.challenge.get("opaque")
    answer = request()
    answer.headers.set(
        "Authorization",
        f'NTLM qop="auth", realm="{DEFAULT_REALM}", opaque="{opaque}", targetname="{TARGET}", version=4, '
        f'gssapi-data="{token}", crand="00000001", cnum="1", response="{"0" * 32}"',
    )
    result = server.process_request(answer)
    assert not result.accepted
    assert result.rejection is not None


@settings(max_examples=150)
@given(_HOSTILE_TEXT, _HOSTILE_TEXT, _HOSTILE_TEXT)
def test_hostile_signature_params_raise_only_signature_exceptions(rspauth: str, srand: str, snum: str) -> None:
    client, server = make_client(), make_server()
    handshake(client, server)
    outgoing = signed_by_client(client)
    _, response = serve(server, outgoing)
    opaque = Credentials.parse(response.headers.get("Authentication-Info") or "").get("opaque")
    response.headers.set(
        "Authentication-Info",
        f'NTLM rspauth="{rspauth}", srand="{srand}", snum="{snum}", opaque="{opaque}", qop="auth", '
        f'targetname="{TARGET}", realm="{DEFAULT_REALM}"',
    )
    with pytest.raises(MessageSignatureException):
        client.process_success(outgoing, response)
