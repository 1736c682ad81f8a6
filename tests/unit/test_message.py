"""SipRequest / SipResponse: typed accessors, memo invalidation, validate(), to_bytes() and equality."""

from __future__ import annotations

import pytest

from ucma.signaling import MessageParsingException
from ucma.signaling.sip import CSeq, Headers, NameAddress, SipRequest, SipResponse, parse_message

INVITE = (
    b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/TLS proxy.example.com:5061;branch=z9hG4bKp1, SIP/2.0/UDP 192.0.2.4;branch=z9hG4bKp2\r\n"
    b"v: SIP/2.0/TCP [2001:db8::5];branch=z9hG4bKua;rport=40000;received=192.0.2.77\r\n"
    b"Max-Forwards: 68\r\n"
    b'From: "Alice, A." <sip:alice@atlanta.example.com>;tag=1928301774\r\n'
    b"t: Bob <sip:bob@biloxi.example.com>\r\n"
    b"i: a84b4c76e66710@pc33.atlanta.example.com\r\n"
    b"CSeq: 314159 INVITE\r\n"
    b'm: <sip:alice@pc33.atlanta.example.com;transport=tls>;+sip.instance="<urn:uuid:1,2>";expires=3600;q=0.7\r\n'
    b"Contact: <sip:alice@192.0.2.4>;q=0.1\r\n"
    b"Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>\r\n"
    b"Route: <sip:p3.example.com;lr>\r\n"
    b"Record-Route: <sip:rr1.example.com;lr>\r\n"
    b"Expires: 120\r\n"
    b"Min-Expires: 60\r\n"
    b"Retry-After: 18000 (in a meeting);duration=3600\r\n"
    b"Supported: timer, 100rel\r\n"
    b"k: replaces\r\n"
    b"Require: \r\n"
    b"Content-Type: Application/SDP; charset=utf-8\r\n"
    b"l: 4\r\n"
    b"\r\n"
    b"v=0\n"
)


def _request(data: bytes = INVITE) -> SipRequest:
    message = parse_message(data)
    assert isinstance(message, SipRequest)
    return message


def _minimal(*lines: str, start: str = "OPTIONS sip:b@h SIP/2.0", body: bytes = b"") -> SipRequest | SipResponse:
    return parse_message(("\r\n".join([start, *lines]) + "\r\n\r\n").encode() + body)


# --- accessors -----------------------------------------------------------------------------


def test_start_line_fields() -> None:
    request = _request()
    assert request.method == "INVITE"
    assert request.request_uri_text == "sip:bob@biloxi.example.com"
    assert str(request.request_uri) == "sip:bob@biloxi.example.com"
    assert request.start_line() == "INVITE sip:bob@biloxi.example.com SIP/2.0"


def test_vias_in_order_across_values_and_lines() -> None:
    request = _request()
    assert [v.host for v in request.vias] == ["proxy.example.com", "192.0.2.4", "[2001:db8::5]"]
    assert [v.transport for v in request.vias] == ["TLS", "UDP", "TCP"]
    assert request.vias[2].rport == 40000
    assert request.vias[2].received == "192.0.2.77"
    assert request.top_via.branch == "z9hG4bKp1"
    assert request.top_via.port == 5061


def test_address_fields() -> None:
    request = _request()
    assert request.from_header.display_name == "Alice, A."
    assert request.from_header.tag == "1928301774"
    assert request.to_header.display_name == "Bob"
    assert request.to_header.tag is None
    assert request.call_id == "a84b4c76e66710@pc33.atlanta.example.com"
    assert request.cseq == CSeq(314159, "INVITE")


def test_contacts_routes_and_record_routes() -> None:
    request = _request()
    contacts = request.contacts
    assert [c.uri_text for c in contacts] == ["sip:alice@pc33.atlanta.example.com;transport=tls", "sip:alice@192.0.2.4"]
    assert contacts[0].parameters.get("+sip.instance") == "<urn:uuid:1,2>"
    assert contacts[0].expires == 3600
    assert contacts[0].q == 0.7
    assert [r.uri_text for r in request.routes] == [
        "sip:p1.example.com;lr",
        "sip:p2.example.com;lr",
        "sip:p3.example.com;lr",
    ]
    assert [r.uri_text for r in request.record_routes] == ["sip:rr1.example.com;lr"]


def test_numeric_fields() -> None:
    request = _request()
    assert request.max_forwards == 68
    assert request.expires == 120
    assert request.min_expires == 60
    assert request.retry_after == 18000
    assert request.content_length == 4


def test_content_type_is_lower_cased_without_parameters() -> None:
    assert _request().content_type == "application/sdp"


def test_token_list_spans_every_line_and_compact_form() -> None:
    request = _request()
    assert request.token_list("Supported") == ["timer", "100rel", "replaces"]
    assert request.token_list("k") == ["timer", "100rel", "replaces"]
    assert request.token_list("Require") == []
    assert request.token_list("Unsupported") == []


def test_absent_optional_headers() -> None:
    message = _minimal()
    assert message.contacts == []
    assert message.routes == []
    assert message.record_routes == []
    assert message.vias == []
    assert message.max_forwards is None
    assert message.expires is None
    assert message.min_expires is None
    assert message.content_length is None
    assert message.retry_after is None
    assert message.content_type is None


@pytest.mark.parametrize(
    ("accessor", "header"),
    [("top_via", "Via"), ("from_header", "From"), ("to_header", "To"), ("call_id", "Call-ID"), ("cseq", "CSeq")],
)
def test_missing_required_headers_raise_naming_the_header(accessor: str, header: str) -> None:
    message = _minimal()
    with pytest.raises(MessageParsingException) as info:
        getattr(message, accessor)
    assert header in info.value.reason


def test_contact_wildcard() -> None:
    message = _minimal("Contact: *", "Expires: 0", start="REGISTER sip:h SIP/2.0")
    [contact] = message.contacts
    assert contact.is_wildcard


@pytest.mark.parametrize(
    ("header", "accessor"),
    [
        ("Max-Forwards", "max_forwards"),
        ("Expires", "expires"),
        ("Content-Length", "content_length"),
        ("Call-ID", "call_id"),
    ],
)
def test_conflicting_single_valued_headers_raise(header: str, accessor: str) -> None:
    message = SipRequest("OPTIONS", "sip:b@h", Headers([(header, "10"), (header, "20")]))
    with pytest.raises(MessageParsingException):
        getattr(message, accessor)


def test_conflicting_from_to_cseq_content_type_raise() -> None:
    message = _minimal(
        "From: <sip:a@h>;tag=1",
        "From: <sip:b@h>;tag=2",
        "To: <sip:a@h>",
        "t: <sip:c@h>",
        "CSeq: 1 OPTIONS",
        "CSeq: 2 OPTIONS",
        "Content-Type: text/plain",
        "c: application/sdp",
    )
    for accessor in ("from_header", "to_header", "cseq", "content_type"):
        with pytest.raises(MessageParsingException):
            getattr(message, accessor)


def test_duplicate_identical_single_valued_headers_read_but_fail_validation() -> None:
    message = _minimal("Max-Forwards: 70", "Max-Forwards: 70")
    assert message.max_forwards == 70
    with pytest.raises(MessageParsingException) as info:
        message.validate()
    assert "Max-Forwards" in info.value.reason


@pytest.mark.parametrize(
    ("line", "accessor"),
    [
        ("Max-Forwards: 256", "max_forwards"),
        ("Max-Forwards: -1", "max_forwards"),
        ("Max-Forwards: 7O", "max_forwards"),
        ("Expires: 4294967296", "expires"),
        ("Expires: Thu, 01 Dec 1994 16:00:00 GMT", "expires"),
        ("Min-Expires: x", "min_expires"),
        ("Retry-After: soon", "retry_after"),
        ("Retry-After: 10 (unterminated", "retry_after"),
        ("Content-Type: sdp", "content_type"),
        ("Content-Type: text/plain garbage", "content_type"),
        ("Call-ID: a b", "call_id"),
        ("Call-ID: a@b@c", "call_id"),
        ("CSeq: 1", "cseq"),
        ("Via: SIP/2.0/UDP", "top_via"),
        ("Via: SIP/2.0/UDP h, bogus", "vias"),
        ("From: <sip:a@h", "from_header"),
        ("To: sip:a@h?x=y", "to_header"),
        ("Contact: <sip:a@h>,", "contacts"),
        ("Route: garbage <", "routes"),
        ("Record-Route: <sip:a@h>;;lr", "record_routes"),
    ],
)
def test_malformed_values_raise_on_access(line: str, accessor: str) -> None:
    message = _minimal(line)
    with pytest.raises(MessageParsingException):
        getattr(message, accessor)


def test_malformed_token_list_raises() -> None:
    message = _minimal("Supported: timer,,100rel")
    with pytest.raises(MessageParsingException):
        message.token_list("Supported")


# --- memoised values -----------------------------------------------------------------------


def _snapshot(request: SipRequest) -> dict[str, object]:
    return {
        "top_via": request.top_via.host,
        "vias": len(request.vias),
        "from_tag": request.from_header.tag,
        "to_tag": request.to_header.tag,
        "call_id": request.call_id,
        "cseq": request.cseq.number,
        "contacts": len(request.contacts),
        "routes": len(request.routes),
        "max_forwards": request.max_forwards,
        "expires": request.expires,
        "content_type": request.content_type,
    }


def test_memoised_values_follow_header_changes() -> None:
    request = _request()
    assert _snapshot(request) == {
        "top_via": "proxy.example.com",
        "vias": 3,
        "from_tag": "1928301774",
        "to_tag": None,
        "call_id": "a84b4c76e66710@pc33.atlanta.example.com",
        "cseq": 314159,
        "contacts": 2,
        "routes": 3,
        "max_forwards": 68,
        "expires": 120,
        "content_type": "application/sdp",
    }

    request.headers.set("Via", "SIP/2.0/UDP new.example.com;branch=z9hG4bKn")
    request.headers.set("From", "<sip:carol@h>;tag=9")
    request.headers.set("To", "<sip:bob@h>;tag=8")
    request.headers.set("Call-ID", "other")
    request.headers.set("CSeq", "5 INVITE")
    request.headers.remove("Contact")
    request.headers.add("Route", "<sip:p4.example.com;lr>")
    request.headers.set("Max-Forwards", "10")
    request.headers.remove("Expires")
    request.headers.set("Content-Type", "text/plain")

    assert _snapshot(request) == {
        "top_via": "new.example.com",
        "vias": 1,
        "from_tag": "9",
        "to_tag": "8",
        "call_id": "other",
        "cseq": 5,
        "contacts": 0,
        "routes": 4,
        "max_forwards": 10,
        "expires": None,
        "content_type": "text/plain",
    }


def test_add_invalidates_the_memo_of_a_previously_absent_header() -> None:
    message = _minimal()
    assert message.vias == []
    assert message.expires is None
    message.headers.add("Via", "SIP/2.0/UDP h;branch=z9hG4bK1")
    message.headers.add("Expires", "30")
    assert [v.host for v in message.vias] == ["h"]
    assert message.top_via.host == "h"
    assert message.expires == 30


def test_adding_a_conflicting_line_is_noticed() -> None:
    message = _minimal("Expires: 30")
    assert message.expires == 30
    message.headers.add("Expires", "60")
    with pytest.raises(MessageParsingException):
        _ = message.expires


def test_request_uri_follows_request_uri_text() -> None:
    request = _request()
    assert str(request.request_uri) == "sip:bob@biloxi.example.com"
    request.request_uri_text = "sip:carol@chicago.example.com"
    assert str(request.request_uri) == "sip:carol@chicago.example.com"


# --- validate() ----------------------------------------------------------------------------


def test_validate_accepts_a_complete_valid_request() -> None:
    _request().validate()


def test_validate_does_not_require_optional_or_routing_headers() -> None:
    _minimal().validate()


@pytest.mark.parametrize(
    "lines",
    [
        ("Contact: *", "Contact: <sip:a@h>"),
        ("Contact: *, <sip:a@h>",),
        ("Contact: <sip:a@h>;q=2",),
        ("Contact: <sip:a@h>;expires=x",),
        ("Contact: <sip:a@h:99999>",),
        ("Route: <sip:a@@h>",),
        ("Record-Route: <sip:a@h;;lr>",),
        ("From: <sip:a@h>;tag=1", "From: <sip:a@h>;tag=1"),
        ("Via: SIP/2.0/UDP h;ttl=300",),
        ("Via: SIP/2.0/UDP h;branch",),
        ("Via: SIP/2.0/UDP h;rport=99999",),
        ("Call-ID: a b",),
        ("CSeq: 1 INVITE",),
        ("Date: yesterday",),
        ("Date: Sat, 13 Nov 2010 23:29:00 PST",),
        ('Warning: 399 h "unterminated',),
        ('Warning: 39 h "x"',),
        ("Supported: a b",),
        ("Require: ,x",),
        ("Allow: INVITE;",),
        ("Event: ",),
        ("Event: presence;;id=1",),
        ("Subscription-State: active extra",),
        ("Content-Type: x",),
        ("Content-Length: 0", "Content-Length: 0"),
    ],
)
def test_validate_refuses(lines: tuple[str, ...]) -> None:
    message = _minimal(*lines)
    with pytest.raises(MessageParsingException):
        message.validate()


def test_validate_refuses_headers_in_the_request_uri() -> None:
    message = _minimal(start="OPTIONS sip:b@h?subject=x SIP/2.0")
    with pytest.raises(MessageParsingException):
        message.validate()


def test_validate_refuses_a_malformed_request_uri() -> None:
    message = _minimal(start="OPTIONS sip:b@h:99999 SIP/2.0")
    with pytest.raises(MessageParsingException):
        message.validate()


def test_validate_accepts_well_formed_optional_headers() -> None:
    message = _minimal(
        "Date: Sat, 13 Nov 2010 23:29:00 GMT",
        'Warning: 399 example.com "no", 370 other.example.com "also no"',
        "Event: presence;id=12",
        "Subscription-State: active;expires=3600",
        "Allow: INVITE, ACK, BYE",
        "Retry-After: 5 (busy)",
        "Contact: *",
        start="REGISTER sip:h SIP/2.0",
    )
    message.validate()


def test_validate_accepts_a_warning_whose_text_contains_a_comma() -> None:
    message = _minimal('Warning: 399 example.com "Incompatible, try again"', start="SIP/2.0 488 Not Acceptable Here")
    message.validate()


# --- to_bytes() ----------------------------------------------------------------------------


def test_to_bytes_writes_start_line_headers_blank_line_and_body() -> None:
    headers = Headers([("Via", "SIP/2.0/UDP h;branch=z9hG4bK1"), ("Content-Type", "text/plain")])
    data = SipRequest("MESSAGE", "sip:b@h", headers, b"hello").to_bytes()
    assert data == (
        b"MESSAGE sip:b@h SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP h;branch=z9hG4bK1\r\n"
        b"Content-Type: text/plain\r\n"
        b"Content-Length: 5\r\n"
        b"\r\n"
        b"hello"
    )


def test_to_bytes_content_length_always_states_the_body_length() -> None:
    headers = Headers([("Content-Length", "99"), ("Subject", "x")])
    message = SipResponse(200, "OK", headers, b"abc")
    data = message.to_bytes()
    assert data.count(b"Content-Length") == 1
    assert b"Content-Length: 3\r\n" in data
    assert data.endswith(b"\r\n\r\nabc")
    assert parse_message(data).body == b"abc"


def test_to_bytes_collapses_duplicate_content_lengths_at_the_first_position() -> None:
    headers = Headers([("Subject", "a"), ("l", "1"), ("To", "t"), ("Content-Length", "2"), ("CONTENT-LENGTH", "2")])
    data = SipResponse(200, "OK", headers, b"").to_bytes()
    assert data == b"SIP/2.0 200 OK\r\nSubject: a\r\nl: 0\r\nTo: t\r\n\r\n"


def test_to_bytes_of_a_parsed_message_with_surplus_datagram_bytes_uses_the_framed_body() -> None:
    message = _minimal("Content-Length: 2", body=b"abcdef")
    assert message.body == b"ab"
    assert message.to_bytes().endswith(b"Content-Length: 2\r\n\r\nab")


def test_to_bytes_keeps_utf8() -> None:
    message = SipResponse(200, "D\u00e9j\u00e0", Headers([("Subject", "\u4e2d\u6587")]))
    data = message.to_bytes()
    assert data.startswith("SIP/2.0 200 D\u00e9j\u00e0\r\n".encode())
    assert "Subject: \u4e2d\u6587\r\n".encode() in data


def test_response_start_line_and_classes() -> None:
    assert SipResponse(180, "Ringing").start_line() == "SIP/2.0 180 Ringing"
    assert SipResponse(180).is_provisional
    assert not SipResponse(180).is_success
    assert SipResponse(200).is_success
    assert SipResponse(299).is_success
    assert not SipResponse(300).is_success
    assert not SipResponse(200).is_provisional


# --- equality ------------------------------------------------------------------------------


def test_equal_messages() -> None:
    assert _request() == _request()
    assert parse_message(INVITE) == parse_message(b"\r\n\r\n" + INVITE + b"surplus")


def test_requests_differing_in_any_part_are_unequal() -> None:
    base = SipRequest("OPTIONS", "sip:b@h", Headers([("To", "t")]), b"x")
    assert base == SipRequest("OPTIONS", "sip:b@h", Headers([("to", "t")]), b"x")
    assert base != SipRequest("INFO", "sip:b@h", Headers([("To", "t")]), b"x")
    assert base != SipRequest("OPTIONS", "sip:c@h", Headers([("To", "t")]), b"x")
    assert base != SipRequest("OPTIONS", "sip:b@h", Headers([("To", "u")]), b"x")
    assert base != SipRequest("OPTIONS", "sip:b@h", Headers([("To", "t")]), b"y")


def test_responses_differing_in_any_part_are_unequal() -> None:
    base = SipResponse(200, "OK", Headers([("To", "t")]), b"x")
    assert base == SipResponse(200, "OK", Headers([("t", "t")]), b"x")
    assert base != SipResponse(202, "OK", Headers([("To", "t")]), b"x")
    assert base != SipResponse(200, "Fine", Headers([("To", "t")]), b"x")
    assert base != SipResponse(200, "OK", Headers([("To", "t"), ("X", "1")]), b"x")
    assert base != SipResponse(200, "OK", Headers([("To", "t")]), b"")


def test_a_request_never_equals_a_response() -> None:
    assert SipRequest("OPTIONS", "sip:b@h") != SipResponse(200, "OK")
    assert SipResponse(200, "OK") != SipRequest("OPTIONS", "sip:b@h")


def test_messages_are_not_hashable() -> None:
    with pytest.raises(TypeError):
        hash(SipRequest("OPTIONS", "sip:b@h"))
    with pytest.raises(TypeError):
        hash(SipResponse(200))


def test_a_message_equals_the_parse_of_its_own_bytes() -> None:
    headers = Headers([("Via", "SIP/2.0/UDP h;branch=z9hG4bK1"), ("To", "<sip:b@h>"), ("Content-Type", "text/plain")])
    request = SipRequest("MESSAGE", "sip:b@h", headers, b"hi")
    assert parse_message(request.to_bytes()) == request


def test_repr_never_shows_a_password_in_the_request_uri() -> None:
    request = SipRequest("INVITE", "sip:bob:s3cretWord@h")
    assert "s3cretWord" not in repr(request)


def test_contacts_memo_survives_reading_but_not_writing() -> None:
    message = _minimal("Contact: <sip:a@h>")
    first = message.contacts
    assert message.contacts == first
    message.headers.add("Contact", "<sip:b@h>")
    assert [c.uri_text for c in message.contacts] == ["sip:a@h", "sip:b@h"]
    assert NameAddress("sip:a@h") in message.contacts
