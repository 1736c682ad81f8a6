"""parse_message (one datagram): framing by Content-Length, header syntax, start lines, limits, errors."""

from __future__ import annotations

import pytest

from ucma.signaling import MessageParsingException
from ucma.signaling.sip import DEFAULT_LIMITS, ParserLimits, SipRequest, SipResponse, parse_message

HEAD = (
    b"OPTIONS sip:bob@biloxi.example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP pc33.example.com;branch=z9hG4bK776\r\n"
    b"Call-ID: 843817637684230@998sdasdh09\r\n"
)


def _msg(*lines: bytes, start: bytes = b"OPTIONS sip:b@h SIP/2.0", body: bytes = b"") -> bytes:
    return b"\r\n".join([start, *lines]) + b"\r\n\r\n" + body


def _error(data: bytes, limits: ParserLimits = DEFAULT_LIMITS) -> MessageParsingException:
    with pytest.raises(MessageParsingException) as info:
        parse_message(data, limits)
    return info.value


# --- basic shapes --------------------------------------------------------------------------


def test_request() -> None:
    message = parse_message(HEAD + b"Content-Length: 0\r\n\r\n")
    assert isinstance(message, SipRequest)
    assert message.method == "OPTIONS"
    assert message.request_uri_text == "sip:bob@biloxi.example.com"
    assert message.headers.get("call-id") == "843817637684230@998sdasdh09"
    assert message.body == b""


def test_response() -> None:
    message = parse_message(b"SIP/2.0 486 Busy Here\r\nCSeq: 1 INVITE\r\n\r\n")
    assert isinstance(message, SipResponse)
    assert message.status_code == 486
    assert message.reason_phrase == "Busy Here"


@pytest.mark.parametrize(
    ("line", "code", "reason"),
    [
        (b"SIP/2.0 100 Trying", 100, "Trying"),
        (b"SIP/2.0 699 Whatever  with   spaces ", 699, "Whatever  with   spaces "),
        (b"SIP/2.0 200 ", 200, ""),
        ("SIP/2.0 200 D\u00e9j\u00e0 vu \u4e2d".encode(), 200, "D\u00e9j\u00e0 vu \u4e2d"),
        (b"SIP/2.0 183 Session Progress", 183, "Session Progress"),
    ],
)
def test_status_lines(line: bytes, code: int, reason: str) -> None:
    message = parse_message(line + b"\r\n\r\n")
    assert isinstance(message, SipResponse)
    assert (message.status_code, message.reason_phrase) == (code, reason)


def test_header_values_are_trimmed_and_names_kept_as_sent() -> None:
    message = parse_message(_msg(b"subject:   hello world \t", b"X-Thing  :x", b"SUBJECT:"))
    assert list(message.headers) == [("subject", "hello world"), ("X-Thing", "x"), ("SUBJECT", "")]


def test_header_names_and_compact_forms_are_looked_up_case_insensitively() -> None:
    message = parse_message(_msg(b"v: SIP/2.0/UDP h;branch=z9hG4bK1", b"VIA: SIP/2.0/UDP g;branch=z9hG4bK2", b"i: x"))
    assert message.headers.get_all("Via") == ["SIP/2.0/UDP h;branch=z9hG4bK1", "SIP/2.0/UDP g;branch=z9hG4bK2"]
    assert message.headers.get("Call-ID") == "x"


# --- body framing --------------------------------------------------------------------------


def test_content_length_governs_and_surplus_bytes_are_dropped() -> None:
    message = parse_message(HEAD + b"Content-Length: 3\r\n\r\nabcdef")
    assert message.body == b"abc"


def test_content_length_zero_with_trailing_bytes() -> None:
    assert parse_message(HEAD + b"l: 0\r\n\r\ngarbage").body == b""


def test_content_length_larger_than_the_data_is_refused() -> None:
    error = _error(HEAD + b"Content-Length: 10\r\n\r\nabc")
    assert "Content-Length" in error.reason


@pytest.mark.parametrize("value", [b"-1", b"abc", b"", b"1 0", b"+3", b"0x3", b"3.0", "\u0663".encode()])
def test_negative_or_non_digit_content_length_is_refused(value: bytes) -> None:
    _error(HEAD + b"Content-Length: " + value + b"\r\n\r\nabc")


def test_a_content_length_with_thousands_of_digits_is_refused_cleanly() -> None:
    error = _error(HEAD + b"Content-Length: " + b"9" * 5000 + b"\r\n\r\n")
    assert error.reason


def test_conflicting_duplicate_content_lengths_are_refused() -> None:
    error = _error(HEAD + b"Content-Length: 2\r\nl: 3\r\n\r\nabc")
    assert "conflicting" in error.reason


def test_agreeing_duplicate_content_lengths_are_accepted() -> None:
    assert parse_message(HEAD + b"Content-Length: 2\r\nl: 2\r\n\r\nabc").body == b"ab"


def test_without_content_length_the_rest_of_the_datagram_is_the_body() -> None:
    body = b"v=0\r\n\r\no=- 1 1 IN IP4 192.0.2.1\r\n"
    assert parse_message(HEAD + b"\r\n" + body).body == body


def test_body_may_be_any_bytes() -> None:
    body = bytes(range(256))
    assert parse_message(HEAD + b"Content-Length: 256\r\n\r\n" + body).body == body


def test_leading_crlfs_are_ignored() -> None:
    message = parse_message(b"\r\n\r\n\r\n" + HEAD + b"\r\n")
    assert isinstance(message, SipRequest)
    assert message.method == "OPTIONS"


def test_no_blank_line_is_refused() -> None:
    _error(HEAD)
    _error(HEAD + b"Content-Length: 0\r\n")
    _error(b"")
    _error(b"\r\n\r\n")


# --- header folding ------------------------------------------------------------------------


def test_continuation_lines_are_unfolded_into_one_space() -> None:
    message = parse_message(
        _msg(b"Subject: I know you're there,", b"   pick up the phone", b"\tand talk to me!", b"To: <sip:b@h>")
    )
    assert message.headers.get("Subject") == "I know you're there, pick up the phone and talk to me!"
    assert message.headers.get("To") == "<sip:b@h>"


def test_folded_structured_value_parses() -> None:
    message = parse_message(_msg(b"Via: SIP/2.0/UDP h;", b"\tbranch=z9hG4bK1,", b"  SIP/2.0/TCP g"))
    assert [v.host for v in message.vias] == ["h", "g"]
    assert message.vias[0].branch == "z9hG4bK1"


def test_a_continuation_of_the_start_line_is_refused() -> None:
    _error(b" OPTIONS sip:b@h SIP/2.0\r\n\r\n")


def test_line_numbers_count_original_lines_when_folding_is_present() -> None:
    error = _error(_msg(b"Subject: a", b" b", b"To: <sip:b@h>", b"Bad Header: x"))
    assert error.line_number == 5


# --- forbidden bytes -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "line"),
    [
        (_msg(b"Subject: a\rb"), 2),
        (_msg(b"To: <sip:b@h>", b"Subject: a\nb"), 3),
        (_msg(b"To: <sip:b@h>", b"Subject: a\x00b"), 3),
        (_msg(b"Subject: \x01"), 2),
        (_msg(b"To: <sip:b@h>", b"X: 1", b"Subject: a\x1f"), 4),
        (_msg(b"Subject: a\x7f"), 2),
        (_msg(b"Subject: a\x0b"), 2),
        (_msg(b"Subject: a\x0c"), 2),
        (_msg(b"Subject: a", start=b"OPTIONS sip:b@h SIP/2.0\x00"), 1),
        (_msg(b"Subject: a\r"), 2),
        (b"OPTIONS sip:b@h SIP/2.0\nSubject: a\r\n\r\n", 1),
    ],
)
def test_bare_cr_lf_nul_and_controls_are_refused_with_their_line_number(data: bytes, line: int) -> None:
    error = _error(data)
    assert error.line_number == line
    assert error.reason


def test_a_bare_cr_and_a_bare_lf_on_the_same_line_are_refused() -> None:
    error = _error(_msg(b"Subject: a\rb\nInjected: yes"))
    assert error.line_number == 2


def test_a_control_character_outside_quotes_is_refused_even_after_a_backslash() -> None:
    error = _error(_msg(b"Subject: a\\\x00b"))
    assert error.line_number == 2


def test_quoted_pairs_of_control_characters_inside_quoted_strings_are_accepted() -> None:
    message = parse_message(_msg(b'To: "BEL:\\\x07 DEL:\\\x7f" <sip:b@h>'))
    assert message.to_header.display_name == "BEL:\x07 DEL:\x7f"


def test_tab_is_allowed_in_values() -> None:
    assert parse_message(_msg(b"Subject: a\tb")).headers.get("Subject") == "a\tb"


def test_non_utf8_header_section_is_refused_with_its_line_number() -> None:
    error = _error(_msg(b"To: <sip:b@h>", b"Subject: caf\xe9"))
    assert error.line_number == 3


def test_non_utf8_body_is_accepted() -> None:
    assert parse_message(HEAD + b"\r\n\xff\xfe").body == b"\xff\xfe"


def test_utf8_header_values_are_decoded() -> None:
    message = parse_message(_msg("Subject: caf\u00e9 \u4e2d".encode()))
    assert message.headers.get("Subject") == "caf\u00e9 \u4e2d"


# --- header lines --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "number"),
    [
        (b"NoColonHere", 2),
        (b"Via", 2),
        (b"Subject", 2),
        (b"Bad Name: x", 2),
        (b": no name", 2),
        (b"X(1): y", 2),
        ("N\u00e4me: x".encode(), 2),
    ],
)
def test_malformed_header_lines_are_refused_with_their_line_number(line: bytes, number: int) -> None:
    error = _error(_msg(line))
    assert error.line_number == number


# --- start lines ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "start",
    [
        b"SIP/3.0 200 OK",
        b"SIP/2 200 OK",
        b"SIP/2.0/UDP 200 OK",
        b"SIP/2.0",
        b"SIP/2.0 ",
        b"SIP/2.0  200 OK",
        b"SIP/2.0 99 Too low",
        b"SIP/2.0 099 Too low",
        b"SIP/2.0 700 Too high",
        b"SIP/2.0 2000 Too long",
        b"SIP/2.0 20x Not digits",
        "SIP/2.0 \u0662\u0660\u0660 Arabic digits".encode(),
        b"HTTP/1.1 200 OK",
        b"INVITE sip:b@h SIP/3.0",
        b"INVITE sip:b@h SIP/2.0 ",
        b"INVITE  sip:b@h SIP/2.0",
        b"INVITE sip:b@h  SIP/2.0",
        b" INVITE sip:b@h SIP/2.0",
        b"INVITE <sip:b@h> SIP/2.0",
        b"INVITE sip:b@h",
        b"INVITE SIP/2.0",
        b"INVITE",
        b"sip:b@h SIP/2.0",
        b"INV ITE sip:b@h SIP/2.0",
        b"INV(ITE sip:b@h SIP/2.0",
        b"INVITE b@h SIP/2.0",
        b"INVITE sip:b@h SIP/2.0 extra",
        b"",
    ],
)
def test_malformed_start_lines_are_refused_on_line_1(start: bytes) -> None:
    error = _error(start + b"\r\nVia: SIP/2.0/UDP h\r\n\r\n")
    assert error.line_number == 1


def test_extension_methods_and_lower_case_version_are_accepted() -> None:
    message = parse_message(b"!interesting-Method0123456789_*+`.%indeed'~ sip:b@h sip/2.0\r\n\r\n")
    assert isinstance(message, SipRequest)
    assert message.method == "!interesting-Method0123456789_*+`.%indeed'~"


def test_non_sip_request_uri_is_accepted() -> None:
    message = parse_message(b"OPTIONS tel:+1-201-555-0123 SIP/2.0\r\n\r\n")
    assert isinstance(message, SipRequest)
    assert message.request_uri_text == "tel:+1-201-555-0123"


# --- limits --------------------------------------------------------------------------------


def test_header_section_limit() -> None:
    data = _msg(b"Subject: " + b"x" * 100)
    header_bytes = data.index(b"\r\n\r\n")
    assert parse_message(data, ParserLimits(max_header_bytes=header_bytes)).headers.get("Subject") == "x" * 100
    error = _error(data, ParserLimits(max_header_bytes=header_bytes - 1))
    assert "limit" in error.reason


def test_header_section_limit_applies_without_a_blank_line() -> None:
    error = _error(b"OPTIONS sip:b@h SIP/2.0\r\nSubject: " + b"x" * 200, ParserLimits(max_header_bytes=100))
    assert "limit" in error.reason


def test_body_limit_with_content_length() -> None:
    limits = ParserLimits(max_body_bytes=4)
    assert parse_message(HEAD + b"Content-Length: 4\r\n\r\nabcd", limits).body == b"abcd"
    error = _error(HEAD + b"Content-Length: 5\r\n\r\nabcde", limits)
    assert "limit" in error.reason


def test_body_limit_without_content_length() -> None:
    limits = ParserLimits(max_body_bytes=4)
    assert parse_message(HEAD + b"\r\nabcd", limits).body == b"abcd"
    error = _error(HEAD + b"\r\nabcde", limits)
    assert "limit" in error.reason


def test_header_count_limit() -> None:
    limits = ParserLimits(max_headers=3)
    three = _msg(b"A: 1", b"B: 2", b"C: 3")
    assert len(parse_message(three, limits).headers) == 3
    error = _error(_msg(b"A: 1", b"B: 2", b"C: 3", b"D: 4"), limits)
    assert "header" in error.reason


def test_header_count_limit_holds_with_folded_lines() -> None:
    limits = ParserLimits(max_headers=2)
    assert len(parse_message(_msg(b"A: 1", b" more", b"B: 2"), limits).headers) == 2
    _error(_msg(b"A: 1", b" more", b"B: 2", b"C: 3"), limits)


def test_default_limits() -> None:
    assert DEFAULT_LIMITS.max_header_bytes >= 65535
    assert DEFAULT_LIMITS.max_body_bytes >= 1024 * 1024
    assert DEFAULT_LIMITS.max_headers >= 100


# --- the exception -------------------------------------------------------------------------


def test_exception_carries_reason_line_and_readable_text() -> None:
    error = _error(_msg(b"To: <sip:b@h>", b"Bad Header: x"))
    assert error.line_number == 3
    assert error.reason
    assert error.reason in str(error)
    assert "line 3" in str(error)
    assert error.detail in str(error)


def test_exception_for_a_problem_not_on_a_line_has_line_zero() -> None:
    error = _error(HEAD + b"Content-Length: 10\r\n\r\n")
    assert error.line_number == 0


def test_non_bytes_input_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        parse_message("OPTIONS sip:b@h SIP/2.0\r\n\r\n")  # type: ignore[arg-type]
