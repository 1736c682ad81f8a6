"""make_request / make_response (RFC 3261 sections 8.1.1 and 8.2.6) and fresh protocol identifiers."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ucma.signaling import ArgumentException
from ucma.signaling.sip import (
    BRANCH_MAGIC_COOKIE,
    NameAddress,
    Parameters,
    SipRequest,
    Via,
    make_request,
    make_response,
    new_branch,
    new_call_id,
    new_epid,
    new_tag,
    parse_message,
    parse_via_list,
    reason_phrase_for,
)
from ucma.signaling.sip.grammar import is_token

RFC4475 = Path(__file__).resolve().parents[1] / "data" / "rfc4475"

VIA = Via("TLS", "client.example.com", 5061, Parameters([("branch", "z9hG4bKabc"), ("rport", "")]))
FROM = NameAddress("sip:alice@example.com", 'Alice, "A"', Parameters([("tag", "f1")]))
TO = NameAddress("sip:bob@example.com", "Bob")
CONTACT = NameAddress("sip:alice@192.0.2.4:5061;transport=tls", None, Parameters([("+sip.instance", '"<urn:uuid:1>"')]))


def _request(method: str = "INVITE", **kwargs: object) -> SipRequest:
    args: dict[str, object] = {
        "via": VIA,
        "from_header": FROM,
        "to_header": TO,
        "call_id": "call-1@example.com",
        "cseq": 7,
    }
    args.update(kwargs)
    return make_request(method, "sip:bob@example.com", **args)  # type: ignore[arg-type]


# --- make_request --------------------------------------------------------------------------


def test_request_headers_in_rfc_order() -> None:
    request = _request(
        contact=CONTACT, headers=[("Supported", "timer"), ("X-A", "1")], body=b"v=0\r\n", content_type="application/sdp"
    )
    assert [name for name, _ in request.headers] == [
        "Via",
        "Max-Forwards",
        "From",
        "To",
        "Call-ID",
        "CSeq",
        "Contact",
        "Supported",
        "X-A",
        "Content-Type",
    ]
    assert request.method == "INVITE"
    assert request.request_uri_text == "sip:bob@example.com"
    assert request.body == b"v=0\r\n"


def test_request_header_values() -> None:
    request = _request(contact=CONTACT)
    assert request.top_via == VIA
    assert request.max_forwards == 70
    assert request.from_header == FROM
    assert request.to_header == TO
    assert request.call_id == "call-1@example.com"
    assert (request.cseq.number, request.cseq.method) == (7, "INVITE")
    assert request.contacts == [CONTACT]
    request.validate()


def test_request_without_contact_or_body() -> None:
    request = _request("OPTIONS")
    assert "Contact" not in request.headers
    assert "Content-Type" not in request.headers
    assert request.cseq.method == "OPTIONS"
    assert request.body == b""


def test_request_with_custom_max_forwards_and_content_type_without_body() -> None:
    request = _request("SUBSCRIBE", max_forwards=0, content_type="application/pidf+xml")
    assert request.max_forwards == 0
    assert request.content_type == "application/pidf+xml"


def test_request_round_trips_through_the_wire() -> None:
    request = _request(contact=CONTACT, body=b"v=0\r\n", content_type="application/sdp")
    parsed = parse_message(request.to_bytes())
    assert isinstance(parsed, SipRequest)
    assert parsed.to_bytes() == request.to_bytes()
    assert (parsed.method, parsed.request_uri_text, parsed.body) == (
        request.method,
        request.request_uri_text,
        request.body,
    )
    assert (parsed.vias, parsed.from_header, parsed.to_header) == (request.vias, request.from_header, request.to_header)
    assert (parsed.call_id, parsed.cseq, parsed.contacts) == (request.call_id, request.cseq, request.contacts)


@pytest.mark.parametrize("method", ["", "IN VITE", "INVITE\r\n", "INV(ITE", "INVITE:", "\u00c9T\u00c9"])
def test_bad_methods_are_refused(method: str) -> None:
    with pytest.raises(ArgumentException):
        _request(method)


@pytest.mark.parametrize("cseq", [-1, 2**31, 2**32])
def test_cseq_out_of_range_is_refused(cseq: int) -> None:
    with pytest.raises(ArgumentException):
        _request(cseq=cseq)


@pytest.mark.parametrize("cseq", [0, 1, 2**31 - 1])
def test_cseq_in_range_is_accepted(cseq: int) -> None:
    assert _request(cseq=cseq).cseq.number == cseq


def test_body_without_content_type_is_refused() -> None:
    with pytest.raises(ArgumentException):
        _request(body=b"v=0")


@pytest.mark.parametrize("max_forwards", [-1, 256])
def test_max_forwards_out_of_range_is_refused(max_forwards: int) -> None:
    with pytest.raises(ArgumentException):
        _request(max_forwards=max_forwards)


@pytest.mark.parametrize("call_id", ["", "a b", "a@b@c"])
def test_invalid_call_ids_are_refused(call_id: str) -> None:
    with pytest.raises(ArgumentException):
        _request(call_id=call_id)


def test_header_injection_through_extra_headers_is_refused() -> None:
    with pytest.raises(ArgumentException):
        _request(headers=[("Subject", "hi\r\nInjected: 1")])
    with pytest.raises(ArgumentException):
        _request(content_type="text/plain\r\nInjected: 1")


def test_header_injection_through_the_request_uri_is_refused() -> None:
    with pytest.raises(ArgumentException):
        make_request(
            "INVITE",
            "sip:bob@example.com SIP/2.0\r\nInjected: 1\r\nX:",
            via=VIA,
            from_header=FROM,
            to_header=TO,
            call_id="c",
            cseq=1,
        )


# --- make_response -------------------------------------------------------------------------

INCOMING = (
    b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP proxy2.example.com:5060;branch=z9hG4bK721e418c4.1, "
    b"SIP/2.0/UDP proxy1.example.com;branch=z9hG4bKa\r\n"
    b"v: SIP/2.0/TCP client.atlanta.example.com:5060;branch=z9hG4bK74b43;received=192.0.2.101;rport=40000\r\n"
    b"Max-Forwards: 68\r\n"
    b"Record-Route: <sip:proxy2.example.com;lr>\r\n"
    b"Record-Route: <sip:proxy1.example.com;lr>\r\n"
    b"f:   Alice   <sip:alice@atlanta.example.com>;tag=9fxced76sl\r\n"
    b"To: Bob <sip:bob@biloxi.example.com>\r\n"
    b"Call-ID: 3848276298220188511@atlanta.example.com\r\n"
    b"CSeq:  2  INVITE\r\n"
    b"Timestamp: 54.2 0.1\r\n"
    b"Contact: <sip:alice@client.atlanta.example.com;transport=tcp>\r\n"
    b"Content-Length: 0\r\n"
    b"\r\n"
)


def _incoming(method: bytes = b"INVITE") -> SipRequest:
    message = parse_message(INCOMING.replace(b"INVITE", method))
    assert isinstance(message, SipRequest)
    return message


def test_response_copies_every_via_line_in_order() -> None:
    request = _incoming()
    response = make_response(request, 180, to_tag="t1")
    assert response.headers.get_all("Via") == request.headers.get_all("Via")
    assert [v.host for v in response.vias] == ["proxy2.example.com", "proxy1.example.com", "client.atlanta.example.com"]
    assert response.vias[2].rport == 40000


def test_response_copies_from_call_id_and_cseq_verbatim() -> None:
    request = _incoming()
    response = make_response(request, 200, to_tag="t1")
    assert response.headers.get("From") == request.headers.get("From")
    assert response.headers.get("Call-ID") == request.headers.get("Call-ID")
    assert response.headers.get("CSeq") == request.headers.get("CSeq")
    assert response.cseq == request.cseq


def test_response_adds_the_to_tag_when_missing() -> None:
    request = _incoming()
    response = make_response(request, 486, to_tag="t1")
    assert response.to_header.tag == "t1"
    assert response.to_header.uri_text == request.to_header.uri_text
    assert response.to_header.display_name == "Bob"


def test_response_keeps_an_existing_to_tag() -> None:
    request = parse_message(
        INCOMING.replace(b"To: Bob <sip:bob@biloxi.example.com>", b"To: <sip:bob@biloxi.example.com>;tag=old")
    )
    assert isinstance(request, SipRequest)
    response = make_response(request, 200, to_tag="new")
    assert response.to_header.tag == "old"
    assert response.headers.get("To") == request.headers.get("To")


def test_100_trying_never_gets_a_to_tag() -> None:
    request = _incoming()
    response = make_response(request, 100, to_tag="t1")
    assert response.to_header.tag is None
    assert response.headers.get("To") == request.headers.get("To")


def test_no_to_tag_is_invented_when_none_is_given() -> None:
    assert make_response(_incoming(), 200).to_header.tag is None


@pytest.mark.parametrize("code", [180, 183, 200, 202, 299])
@pytest.mark.parametrize("method", [b"INVITE", b"SUBSCRIBE"])
def test_record_route_is_copied_for_dialog_creating_responses(method: bytes, code: int) -> None:
    request = _incoming(method)
    response = make_response(request, code, to_tag="t1")
    assert response.headers.get_all("Record-Route") == ["<sip:proxy2.example.com;lr>", "<sip:proxy1.example.com;lr>"]


def test_record_route_is_copied_for_a_2xx_to_refer() -> None:
    response = make_response(_incoming(b"REFER"), 202, to_tag="t1")
    assert response.headers.get_all("Record-Route") == ["<sip:proxy2.example.com;lr>", "<sip:proxy1.example.com;lr>"]


@pytest.mark.parametrize(
    ("method", "code"),
    [(b"INVITE", 100), (b"INVITE", 300), (b"INVITE", 486), (b"INVITE", 603), (b"OPTIONS", 200), (b"MESSAGE", 200)],
)
def test_record_route_is_not_copied_otherwise(method: bytes, code: int) -> None:
    response = make_response(_incoming(method), code, to_tag="t1")
    assert "Record-Route" not in response.headers


def test_timestamp_is_copied_into_100_only() -> None:
    request = _incoming()
    assert make_response(request, 100).headers.get_all("Timestamp") == ["54.2 0.1"]
    assert "Timestamp" not in make_response(request, 180, to_tag="t").headers
    assert "Timestamp" not in make_response(request, 200, to_tag="t").headers


def test_response_does_not_copy_other_request_headers() -> None:
    response = make_response(_incoming(), 200, to_tag="t1")
    for name in ("Max-Forwards", "Contact", "Content-Length"):
        assert name not in response.headers


def test_response_extra_headers_body_and_content_type_come_last() -> None:
    response = make_response(
        _incoming(),
        200,
        to_tag="t1",
        headers=[("Contact", "<sip:bob@192.0.2.4>")],
        body=b"v=0\r\n",
        content_type="application/sdp",
    )
    names = [name for name, _ in response.headers]
    assert names[-2:] == ["Contact", "Content-Type"]
    assert response.body == b"v=0\r\n"
    assert response.content_type == "application/sdp"


def test_response_body_without_content_type_is_refused() -> None:
    with pytest.raises(ArgumentException):
        make_response(_incoming(), 200, body=b"x")


@pytest.mark.parametrize(
    ("code", "phrase"),
    [
        (100, "Trying"),
        (180, "Ringing"),
        (183, "Session Progress"),
        (200, "OK"),
        (202, "Accepted"),
        (302, "Moved Temporarily"),
        (401, "Unauthorized"),
        (407, "Proxy Authentication Required"),
        (408, "Request Timeout"),
        (481, "Call/Transaction Does Not Exist"),
        (486, "Busy Here"),
        (487, "Request Terminated"),
        (500, "Server Internal Error"),
        (503, "Service Unavailable"),
        (603, "Decline"),
    ],
)
def test_default_reason_phrases(code: int, phrase: str) -> None:
    assert make_response(_incoming(), code, to_tag="t").reason_phrase == phrase
    assert reason_phrase_for(code) == phrase


@pytest.mark.parametrize("code", [199, 250, 399, 450, 599, 699])
def test_unknown_codes_get_a_non_empty_phrase(code: int) -> None:
    assert reason_phrase_for(code)
    assert make_response(_incoming(), code, to_tag="t").reason_phrase == reason_phrase_for(code)


def test_explicit_reason_phrase_is_kept() -> None:
    assert make_response(_incoming(), 200, "Fine, thanks", to_tag="t").reason_phrase == "Fine, thanks"
    assert make_response(_incoming(), 200, "", to_tag="t").reason_phrase == ""


@pytest.mark.parametrize("code", [0, 99, 700, 1000, -200])
def test_status_code_out_of_range_is_refused(code: int) -> None:
    with pytest.raises(ArgumentException):
        make_response(_incoming(), code)


@pytest.mark.parametrize("header", ["From", "To", "Call-ID", "CSeq"])
def test_request_missing_a_header_to_copy_is_refused(header: str) -> None:
    request = _incoming()
    request.headers.remove(header)
    with pytest.raises(ArgumentException):
        make_response(request, 200, to_tag="t")


def test_header_injection_through_the_reason_phrase_is_refused() -> None:
    with pytest.raises(ArgumentException):
        make_response(_incoming(), 200, "OK\r\nInjected: 1", to_tag="t")


def test_response_to_an_rfc4475_request_with_escaped_controls_in_to() -> None:
    request = parse_message((RFC4475 / "intmeth.dat").read_bytes())
    assert isinstance(request, SipRequest)
    response = make_response(request, 501, to_tag="t1")
    assert response.status_code == 501
    assert response.headers.get_all("Via") == request.headers.get_all("Via")
    assert response.to_header.tag == "t1"


def test_response_round_trips_through_the_wire() -> None:
    response = make_response(_incoming(), 200, to_tag="t1", body=b"v=0\r\n", content_type="application/sdp")
    parsed = parse_message(response.to_bytes())
    assert parsed.to_bytes() == response.to_bytes()
    assert parsed.vias == response.vias
    assert parsed.body == b"v=0\r\n"


# --- identifiers ---------------------------------------------------------------------------


def test_new_branch_is_an_rfc3261_branch_and_unique() -> None:
    branches = {new_branch() for _ in range(200)}
    assert len(branches) == 200
    for branch in branches:
        assert branch.startswith(BRANCH_MAGIC_COOKIE)
        assert len(branch) > len(BRANCH_MAGIC_COOKIE) + 16
        [via] = parse_via_list(f"SIP/2.0/UDP h;branch={branch}")
        assert via.branch == branch


def test_new_tag_and_call_id_are_unique_tokens() -> None:
    tags = {new_tag() for _ in range(200)}
    assert len(tags) == 200
    assert all(is_token(t) and len(t) >= 8 for t in tags)
    ids = {new_call_id() for _ in range(200)}
    assert len(ids) == 200
    assert all("@" not in i for i in ids)
    assert new_call_id("example.com").endswith("@example.com")


def test_new_epid_is_ten_hex_digits() -> None:
    epid = new_epid()
    assert re.fullmatch(r"[0-9a-f]{10}", epid)
    assert new_epid() != epid
