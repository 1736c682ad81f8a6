"""StreamParser: framing SIP over TCP/TLS, partial reads, pipelining, keep-alives, limits, failure."""

from __future__ import annotations

import pytest

from ucma.signaling import MessageParsingException
from ucma.signaling.sip import KeepAlive, ParserLimits, SipRequest, SipResponse, StreamParser, parse_message

REQUEST = (
    b"MESSAGE sip:bob@h SIP/2.0\r\n"
    b"Via: SIP/2.0/TCP a.example.com;branch=z9hG4bK1\r\n"
    b"Call-ID: c1\r\n"
    b"CSeq: 1 MESSAGE\r\n"
    b"Content-Type: text/plain\r\n"
    b"Content-Length: 11\r\n"
    b"\r\n"
    b"hello\r\n\r\nyo"
)
RESPONSE = b"SIP/2.0 200 OK\r\nVia: SIP/2.0/TCP a.example.com;branch=z9hG4bK1\r\nCSeq: 1 MESSAGE\r\nl: 0\r\n\r\n"
NO_LENGTH = b"OPTIONS sip:bob@h SIP/2.0\r\nCSeq: 2 OPTIONS\r\n\r\n"

Event = SipRequest | SipResponse | KeepAlive


def _feed_all(chunks: list[bytes], parser: StreamParser | None = None) -> list[Event]:
    parser = parser or StreamParser()
    out: list[Event] = []
    for chunk in chunks:
        out += parser.feed(chunk)
    return out


def _bytewise(data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


def _messages(events: list[Event]) -> list[SipRequest | SipResponse]:
    return [e for e in events if not isinstance(e, KeepAlive)]


def test_one_message_in_one_chunk() -> None:
    parser = StreamParser()
    [message] = parser.feed(REQUEST)
    assert isinstance(message, SipRequest)
    assert message.body == b"hello\r\n\r\nyo"
    assert message == parse_message(REQUEST)
    assert parser.buffered == 0


def test_byte_by_byte_gives_the_same_messages_as_one_chunk() -> None:
    stream = REQUEST + RESPONSE + NO_LENGTH + REQUEST
    whole = _feed_all([stream])
    assert [type(m) for m in whole] == [SipRequest, SipResponse, SipRequest, SipRequest]
    assert _feed_all(_bytewise(stream)) == whole


def test_nothing_is_returned_until_a_message_is_complete() -> None:
    parser = StreamParser()
    for byte in _bytewise(REQUEST)[:-1]:
        assert parser.feed(byte) == []
    assert parser.buffered > 0
    [message] = parser.feed(REQUEST[-1:])
    assert message == parse_message(REQUEST)
    assert parser.buffered == 0


def test_pipelined_messages_in_one_chunk_come_out_in_order() -> None:
    events = _feed_all([REQUEST + RESPONSE + REQUEST])
    assert events == [parse_message(REQUEST), parse_message(RESPONSE), parse_message(REQUEST)]


def test_body_split_across_reads() -> None:
    head, body = REQUEST.split(b"\r\n\r\n", 1)
    parser = StreamParser()
    assert parser.feed(head + b"\r\n\r\n") == []
    assert parser.feed(body[:3]) == []
    assert parser.feed(body[3:9]) == []
    [message] = parser.feed(body[9:] + RESPONSE[:10])
    assert isinstance(message, SipRequest)
    assert message.body == b"hello\r\n\r\nyo"
    [response] = parser.feed(RESPONSE[10:])
    assert isinstance(response, SipResponse)


def test_blank_line_split_across_reads() -> None:
    cut = RESPONSE.index(b"\r\n\r\n") + 2
    for split in (cut - 1, cut, cut + 1):
        parser = StreamParser()
        assert parser.feed(RESPONSE[:split]) == []
        assert parser.feed(RESPONSE[split:]) == [parse_message(RESPONSE)]


def test_missing_content_length_means_an_empty_body_and_the_next_bytes_are_the_next_message() -> None:
    events = _feed_all([NO_LENGTH + RESPONSE])
    assert len(events) == 2
    first = events[0]
    assert isinstance(first, SipRequest)
    assert first.body == b""
    assert events[1] == parse_message(RESPONSE)


def test_keep_alive_ping_and_pong_between_messages() -> None:
    events = _feed_all([b"\r\n\r\n" + RESPONSE + b"\r\n" + REQUEST + b"\r\n\r\n\r\n" + RESPONSE])
    assert events == [
        KeepAlive(ping=True),
        parse_message(RESPONSE),
        KeepAlive(ping=False),
        parse_message(REQUEST),
        KeepAlive(ping=True),
        KeepAlive(ping=False),
        parse_message(RESPONSE),
    ]


def test_a_ping_split_inside_its_second_crlf_is_still_a_ping() -> None:
    parser = StreamParser()
    assert parser.feed(b"\r\n\r") == []
    assert parser.feed(b"\n") == [KeepAlive(ping=True)]


def test_a_lone_pong_is_reported_at_once() -> None:
    assert StreamParser().feed(b"\r\n") == [KeepAlive(ping=False)]


def test_a_lone_cr_waits_for_more() -> None:
    parser = StreamParser()
    assert parser.feed(b"\r") == []
    assert parser.feed(b"\n") == [KeepAlive(ping=False)]


def test_keep_alives_do_not_disturb_byte_by_byte_message_framing() -> None:
    stream = REQUEST + b"\r\n\r\n" + RESPONSE + b"\r\n" + NO_LENGTH
    assert _messages(_feed_all(_bytewise(stream))) == _messages(_feed_all([stream]))


def test_empty_feed_returns_nothing() -> None:
    parser = StreamParser()
    assert parser.feed(b"") == []
    assert parser.buffered == 0


# --- limits --------------------------------------------------------------------------------


def test_a_peer_that_never_ends_the_header_cannot_make_it_buffer_past_the_limit() -> None:
    limit = 200
    parser = StreamParser(ParserLimits(max_header_bytes=limit))
    start = b"OPTIONS sip:b@h SIP/2.0\r\nX: "
    assert parser.feed(start) == []
    sent = len(start)
    with pytest.raises(MessageParsingException) as info:
        while sent <= 10 * limit:
            sent += 1
            parser.feed(b"y")
            assert parser.buffered <= limit
    assert "limit" in info.value.reason
    assert sent == limit + 1


def test_header_limit_with_a_complete_header_section_over_the_limit() -> None:
    parser = StreamParser(ParserLimits(max_header_bytes=40))
    with pytest.raises(MessageParsingException):
        parser.feed(b"OPTIONS sip:b@h SIP/2.0\r\nSubject: " + b"x" * 40 + b"\r\n\r\n")


def test_body_limit() -> None:
    parser = StreamParser(ParserLimits(max_body_bytes=10))
    [message] = parser.feed(b"OPTIONS sip:b@h SIP/2.0\r\nContent-Length: 10\r\n\r\n0123456789")
    assert isinstance(message, SipRequest)
    assert message.body == b"0123456789"
    with pytest.raises(MessageParsingException) as info:
        parser.feed(b"OPTIONS sip:b@h SIP/2.0\r\nContent-Length: 11\r\n\r\n")
    assert "limit" in info.value.reason


def test_header_count_limit() -> None:
    parser = StreamParser(ParserLimits(max_headers=2))
    with pytest.raises(MessageParsingException):
        parser.feed(b"OPTIONS sip:b@h SIP/2.0\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n")


# --- failure -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param(b"NOT A SIP LINE\r\n\r\n", id="start-line"),
        pytest.param(b"OPTIONS sip:b@h SIP/2.0\r\nContent-Length: -5\r\n\r\n", id="negative-length"),
        pytest.param(b"OPTIONS sip:b@h SIP/2.0\r\nContent-Length: 1\r\nl: 2\r\n\r\n", id="conflicting-lengths"),
        pytest.param(b"OPTIONS sip:b@h SIP/2.0\r\nSubject: a\x00\r\n\r\n", id="nul"),
        pytest.param(
            b"OPTIONS sip:b@h SIP/2.0\r\nContent-Length: " + b"9" * 5000 + b"\r\n\r\n", id="5000-digit-length"
        ),
    ],
)
def test_after_an_error_every_later_feed_raises(bad: bytes) -> None:
    parser = StreamParser()
    assert parser.feed(RESPONSE) == [parse_message(RESPONSE)]
    with pytest.raises(MessageParsingException):
        parser.feed(bad)
    for later in (RESPONSE, b"", b"\r\n\r\n"):
        with pytest.raises(MessageParsingException):
            parser.feed(later)


def test_messages_completed_before_an_error_in_the_same_chunk_are_not_returned_twice() -> None:
    parser = StreamParser()
    with pytest.raises(MessageParsingException):
        parser.feed(RESPONSE + b"GARBAGE\r\n\r\n")
    assert parser.buffered == 0
