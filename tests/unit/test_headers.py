"""The Headers container (order, case, compact forms, injection refusal) and the Via and CSeq values."""

from __future__ import annotations

import pytest

from ucma.signaling import ArgumentException, MessageParsingException
from ucma.signaling.sip import (
    BRANCH_MAGIC_COOKIE,
    COMPACT_FORMS,
    CSeq,
    Headers,
    Parameters,
    Via,
    canonical_name,
    header_key,
    parse_cseq,
    parse_via_list,
)

# --- Headers container ---------------------------------------------------------------------

COMPACT = {
    "v": "Via",
    "f": "From",
    "t": "To",
    "i": "Call-ID",
    "m": "Contact",
    "l": "Content-Length",
    "c": "Content-Type",
    "k": "Supported",
    "e": "Content-Encoding",
    "o": "Event",
    "u": "Allow-Events",
    "s": "Subject",
    "r": "Refer-To",
    "b": "Referred-By",
    "x": "Session-Expires",
}


@pytest.mark.parametrize(("short", "full"), COMPACT.items())
def test_compact_names_are_the_same_header_as_full_names(short: str, full: str) -> None:
    headers = Headers([(short, "one"), (full, "two"), (short.upper(), "three"), (full.upper(), "four")])
    assert headers.get_all(full) == ["one", "two", "three", "four"]
    assert headers.get_all(short) == ["one", "two", "three", "four"]
    assert headers.get(full.lower()) == "one"
    assert header_key(short) == full.lower()
    assert canonical_name(short) == full
    assert COMPACT_FORMS[short] == full


def test_lookups_are_case_insensitive_for_known_and_unknown_names() -> None:
    headers = Headers([("call-id", "abc"), ("X-Custom-Thing", "1"), ("x-custom-thing", "2")])
    assert headers.get("CALL-ID") == "abc"
    assert headers.get("Call-Id") == "abc"
    assert headers.get_all("X-CUSTOM-THING") == ["1", "2"]
    assert "x-CUSTOM-thing" in headers
    assert "Call-ID" in headers
    assert "Subject" not in headers


def test_get_of_an_absent_header() -> None:
    headers = Headers()
    assert headers.get("Subject") is None
    assert headers.get("Subject", "dflt") == "dflt"
    assert headers.get_all("Subject") == []


def test_canonical_names() -> None:
    assert canonical_name("call-id") == "Call-ID"
    assert canonical_name("CSEQ") == "CSeq"
    assert canonical_name("www-authenticate") == "WWW-Authenticate"
    assert canonical_name("X-Unknown") == "X-Unknown"


def test_iteration_keeps_wire_order_and_the_names_as_given() -> None:
    fields = [("Via", "a"), ("f", "b"), ("v", "c"), ("X-A", "d")]
    headers = Headers(fields)
    assert list(headers) == fields
    assert len(headers) == 4


def test_add_appends_a_line() -> None:
    headers = Headers([("Via", "a"), ("To", "t")])
    headers.add("v", "b")
    assert list(headers) == [("Via", "a"), ("To", "t"), ("v", "b")]
    assert headers.get_all("Via") == ["a", "b"]


def test_set_replaces_every_line_at_the_first_ones_position() -> None:
    headers = Headers([("Via", "a"), ("To", "t"), ("v", "b"), ("From", "f")])
    headers.set("VIA", "c")
    assert list(headers) == [("VIA", "c"), ("To", "t"), ("From", "f")]
    assert headers.get_all("via") == ["c"]


def test_set_of_an_absent_header_appends_it() -> None:
    headers = Headers([("To", "t")])
    headers.set("Subject", "s")
    assert list(headers) == [("To", "t"), ("Subject", "s")]


def test_remove_deletes_every_line_and_counts_them() -> None:
    headers = Headers([("Via", "a"), ("To", "t"), ("v", "b")])
    assert headers.remove("VIA") == 2
    assert list(headers) == [("To", "t")]
    assert "Via" not in headers
    assert headers.remove("Via") == 0


def test_copy_is_independent() -> None:
    headers = Headers([("Via", "a")])
    copy = headers.copy()
    copy.add("Via", "b")
    headers.set("To", "t")
    assert headers.get_all("Via") == ["a"]
    assert copy.get_all("Via") == ["a", "b"]
    assert "To" not in copy


def test_equality_compares_lines_in_order_with_names_folded() -> None:
    assert Headers([("v", "a"), ("To", "t")]) == Headers([("Via", "a"), ("to", "t")])
    assert Headers([("Via", "a"), ("To", "t")]) != Headers([("To", "t"), ("Via", "a")])
    assert Headers([("Via", "a")]) != Headers([("Via", "A")])
    assert Headers([("Via", "a")]) != Headers([("Via", "a"), ("Via", "a")])
    assert Headers() == Headers()


def test_headers_are_not_hashable() -> None:
    with pytest.raises(TypeError):
        hash(Headers())


@pytest.mark.parametrize(
    "value", ["a\r\nInjected: 1", "a\nInjected: 1", "a\rb", "a\x00b", "\x01", "a\x1fb", "a\x7fb", "\x0b", "\x0c"]
)
def test_values_with_line_breaks_or_control_characters_are_refused(value: str) -> None:
    headers = Headers([("To", "t")])
    with pytest.raises(ArgumentException):
        headers.add("Subject", value)
    with pytest.raises(ArgumentException):
        headers.set("Subject", value)
    with pytest.raises(ArgumentException):
        Headers([("Subject", value)])
    assert list(headers) == [("To", "t")]


@pytest.mark.parametrize(
    "name", ["", "Bad Name", "Via:", "X\r\nY", "X\n", "X\x00", "Na\u00efve", "(x)", "a/b", "a@b", 'a"b']
)
def test_names_that_are_not_tokens_are_refused(name: str) -> None:
    headers = Headers()
    with pytest.raises(ArgumentException):
        headers.add(name, "x")
    with pytest.raises(ArgumentException):
        headers.set(name, "x")
    assert len(headers) == 0


def test_tab_and_utf8_in_values_are_allowed() -> None:
    headers = Headers()
    headers.add("Subject", "a\tb \u00e9\u4e2d")
    assert headers.get("Subject") == "a\tb \u00e9\u4e2d"


# --- Via -----------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["UDP", "TCP", "TLS", "SCTP", "WS", "WSS", "tls-sctp"])
def test_via_transports(transport: str) -> None:
    [via] = parse_via_list(f"SIP/2.0/{transport} host.example.com")
    assert via.transport == transport.upper()
    assert via.protocol_name == "SIP"
    assert via.protocol_version == "2.0"
    assert via.host == "host.example.com"
    assert via.port is None
    assert via.sent_by == "host.example.com"


def test_via_ipv6_sent_by_with_port() -> None:
    [via] = parse_via_list("SIP/2.0/TCP [2001:db8::9:1]:5061;branch=z9hG4bK1")
    assert via.host == "[2001:db8::9:1]"
    assert via.port == 5061
    assert via.sent_by == "[2001:db8::9:1]:5061"


def test_via_whitespace_around_separators_is_allowed() -> None:
    [via] = parse_via_list("SIP / 2.0 / UDP  192.0.2.1 : 5060 ; branch = z9hG4bKx ; rport ; received = 192.0.2.9")
    assert via.host == "192.0.2.1"
    assert via.port == 5060
    assert via.branch == "z9hG4bKx"
    assert via.received == "192.0.2.9"
    assert "rport" in via.parameters


def test_several_vias_in_one_value_keep_their_order() -> None:
    vias = parse_via_list('SIP/2.0/UDP a;x="1,2" , SIP/2.0/TCP b:5060,SIP/2.0/TLS [::1]')
    assert [v.host for v in vias] == ["a", "b", "[::1]"]
    assert [v.transport for v in vias] == ["UDP", "TCP", "TLS"]
    assert vias[0].parameters.get("x") == "1,2"


def test_rport_flag_versus_value() -> None:
    [flag] = parse_via_list("SIP/2.0/UDP h;rport")
    assert flag.rport is None
    assert flag.parameters.get("rport") == ""
    [valued] = parse_via_list("SIP/2.0/UDP h;rport=5061")
    assert valued.rport == 5061
    [absent] = parse_via_list("SIP/2.0/UDP h")
    assert absent.rport is None
    assert "rport" not in absent.parameters


@pytest.mark.parametrize("value", ["70000", "abc", "-1"])
def test_bad_rport_values_are_refused(value: str) -> None:
    [via] = parse_via_list(f"SIP/2.0/UDP h;rport={value}")
    with pytest.raises(MessageParsingException):
        _ = via.rport
    with pytest.raises(MessageParsingException):
        via.validate()


def test_received_branch_and_maddr() -> None:
    [via] = parse_via_list("SIP/2.0/UDP h;branch=z9hG4bK74bf9;received=[2001:db8::1];maddr=239.255.255.1;ttl=16")
    assert via.branch == "z9hG4bK74bf9"
    assert via.is_rfc3261_branch
    assert via.received == "[2001:db8::1]"
    assert via.maddr == "239.255.255.1"
    assert via.ttl == 16
    via.validate()


def test_rfc2543_branch_is_recognised() -> None:
    [via] = parse_via_list("SIP/2.0/UDP h;branch=1")
    assert not via.is_rfc3261_branch
    [none] = parse_via_list("SIP/2.0/UDP h")
    assert none.branch is None
    assert not none.is_rfc3261_branch


@pytest.mark.parametrize(("ttl", "ok"), [("0", True), ("255", True), ("256", False), ("-1", False), ("x", False)])
def test_ttl_range(ttl: str, ok: bool) -> None:
    [via] = parse_via_list(f"SIP/2.0/UDP h;maddr=239.1.1.1;ttl={ttl}")
    if ok:
        assert via.ttl == int(ttl)
        via.validate()
    else:
        with pytest.raises(MessageParsingException):
            via.validate()


def test_branch_without_value_fails_validation() -> None:
    [via] = parse_via_list("SIP/2.0/UDP h;branch")
    with pytest.raises(MessageParsingException):
        via.validate()


@pytest.mark.parametrize(
    "text",
    [
        "",
        "SIP/2.0/UDP",
        "SIP/2.0 UDP h",
        "SIP/UDP h",
        "SIP/2.0/UDP h;;branch=z9hG4bK1",
        "SIP/2.0/UDP h;",
        "SIP/2.0/UDP h;branch=",
        "SIP/2.0/UDP h:70000",
        "SIP/2.0/UDP h:",
        "SIP/2.0/UDP h garbage",
        "SIP/2.0/UDP h,",
        "SIP/2.0/UDP h,,SIP/2.0/UDP g",
        'SIP/2.0/UDP h;x="open',
        "SIP/2.0/UDP [::1",
        "SIP/2.0/UDPh",
    ],
)
def test_malformed_vias_are_refused(text: str) -> None:
    with pytest.raises(MessageParsingException):
        parse_via_list(text)


def test_via_string_form_parses_back() -> None:
    via = Via("tls", "[2001:db8::1]", 5061, Parameters([("branch", "z9hG4bKa"), ("rport", ""), ("x", '"a,b"')]))
    text = str(via)
    assert text == 'SIP/2.0/tls [2001:db8::1]:5061;branch=z9hG4bKa;rport;x="a,b"'
    [back] = parse_via_list(text)
    assert back.transport == "TLS"
    assert (back.host, back.port, back.parameters) == (via.host, via.port, via.parameters)


def test_branch_magic_cookie() -> None:
    assert BRANCH_MAGIC_COOKIE == "z9hG4bK"


# --- CSeq ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "number", "method"),
    [
        ("1 INVITE", 1, "INVITE"),
        ("  0\tREGISTER ", 0, "REGISTER"),
        ("4294967295 ACK", 2**32 - 1, "ACK"),
        ("7 ext-Method!", 7, "ext-Method!"),
    ],
)
def test_cseq_values(text: str, number: int, method: str) -> None:
    assert parse_cseq(text) == CSeq(number, method)


@pytest.mark.parametrize(
    "text",
    ["4294967296 INVITE", "99999999999 INVITE", "INVITE", "1", "1 INVITE x", "-1 INVITE", "1 INV(ITE", "", "1INVITE"],
)
def test_malformed_cseq_values_are_refused(text: str) -> None:
    with pytest.raises(MessageParsingException):
        parse_cseq(text)


def test_cseq_string_form() -> None:
    assert str(CSeq(42, "BYE")) == "42 BYE"
