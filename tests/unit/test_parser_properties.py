"""Property tests for the parsers.

Hostile input (random bytes, mutated valid messages, any chunking) may only ever raise
:class:`MessageParsingException`, from parsing, from any accessor or from ``validate()``. Valid
messages built by the strategies in ``sip_strategies`` survive the wire unchanged, whether framed
as datagrams or read from a stream cut anywhere. Pathological inputs finish in bounded time.
"""

from __future__ import annotations

import contextlib
import itertools
import re
import threading
from collections.abc import Callable
from datetime import timedelta

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sip_strategies import SAMPLES, Built, messages, name_addresses, sip_uris, vias

from ucma.signaling import MessageParsingException
from ucma.signaling.sip import (
    KeepAlive,
    NameAddress,
    SipMessage,
    SipRequest,
    SipResponse,
    StreamParser,
    parse_message,
    parse_name_addr,
    parse_name_addr_list,
    parse_uri,
    parse_via_list,
)

# Sized so the whole file runs in about fifteen seconds; raise max_examples locally for a deeper search.
_DEADLINE = timedelta(seconds=2)
_SLOW_OK = [HealthCheck.too_slow]
FUZZ = settings(max_examples=250, deadline=_DEADLINE, suppress_health_check=_SLOW_OK)
MUTATE = settings(max_examples=200, deadline=_DEADLINE, suppress_health_check=_SLOW_OK)
ROUND_TRIP = settings(max_examples=80, deadline=_DEADLINE, suppress_health_check=_SLOW_OK)
STREAM = settings(max_examples=40, deadline=_DEADLINE, suppress_health_check=_SLOW_OK)

_ACCESSORS = (
    "top_via",
    "vias",
    "from_header",
    "to_header",
    "call_id",
    "cseq",
    "contacts",
    "routes",
    "record_routes",
    "max_forwards",
    "expires",
    "min_expires",
    "content_length",
    "retry_after",
    "content_type",
)


def _tolerate(action: Callable[[], object]) -> None:
    """Run ``action``; a MessageParsingException is an acceptable outcome, anything else propagates."""
    with contextlib.suppress(MessageParsingException):
        action()


def _read_everything(message: SipMessage) -> None:
    """Touch every lazily parsed part the way an application would, then validate()."""
    for name in _ACCESSORS:
        _tolerate(lambda name=name: getattr(message, name))  # type: ignore[misc]
    for name in ("contacts", "routes", "record_routes"):

        def parts(name: str = name) -> None:
            for address in getattr(message, name):
                for attribute in ("uri", "expires", "q", "tag"):
                    _tolerate(lambda attribute=attribute, address=address: getattr(address, attribute))  # type: ignore[misc]

        _tolerate(parts)
    _tolerate(lambda: message.token_list("Supported"))
    if isinstance(message, SipRequest):
        _tolerate(lambda: message.request_uri)
    _tolerate(message.validate)


def _exercise_datagram(data: bytes) -> None:
    try:
        message = parse_message(data)
    except MessageParsingException:
        return
    _tolerate(parse_message(data).validate)
    _read_everything(message)
    # Whatever was accepted can be forwarded: it serialises, and the result reads back the same.
    wire = message.to_bytes()
    assert parse_message(wire).to_bytes() == wire


def _chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(c, len(data)) for c in cuts})
    edges = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(edges)]


def _exercise_stream(data: bytes, cuts: list[int]) -> None:
    parser = StreamParser()
    for chunk in _chunks(data, cuts):
        try:
            events = parser.feed(chunk)
        except MessageParsingException:
            try:
                parser.feed(b"")
            except MessageParsingException:
                return
            raise AssertionError("StreamParser accepted input after a parsing error") from None
        for event in events:
            if not isinstance(event, KeepAlive):
                _read_everything(event)


# --- hostile input -------------------------------------------------------------------------

_SIP_PIECES = [
    b"\r\n",
    b"\r\n\r\n",
    b"\r",
    b"\n",
    b" ",
    b"\t",
    b":",
    b";",
    b",",
    b"=",
    b'"',
    b"\\",
    b"<",
    b">",
    b"?",
    b"@",
    b"[",
    b"]",
    b"%",
    b"sip:",
    b"SIP/2.0",
    b"SIP/2.0/UDP ",
    b"Via: ",
    b"Contact: ",
    b"Content-Length: ",
    b"l: ",
    b"INVITE ",
    b"tag=",
    b"0",
    b"9",
    b"a",
    b"\x00",
    b"\x7f",
    b"\xff",
    b"\xc3\xa9",
]
sip_ish_bytes = st.lists(st.sampled_from(_SIP_PIECES), max_size=80).map(b"".join)
hostile_bytes = st.binary(max_size=600) | sip_ish_bytes
cut_points = st.lists(st.integers(0, 4096), max_size=12)


@st.composite
def mutated_messages(draw: st.DrawFn) -> bytes:
    """A valid message with a few byte flips, insertions, deletions, truncations, duplicated or dropped lines,
    or a header value replaced by an overlong number."""
    base = draw(st.sampled_from(SAMPLES) | messages().map(lambda built: built.message.to_bytes()))
    data = bytearray(base)
    for _ in range(draw(st.integers(1, 4))):
        if not data:
            break
        operation = draw(
            st.sampled_from(["flip", "insert", "delete", "truncate", "duplicate-line", "drop-line", "long-number"])
        )
        index = draw(st.integers(0, len(data) - 1))
        if operation == "flip":
            data[index] = draw(st.integers(0, 255))
        elif operation == "insert":
            data[index:index] = draw(st.sampled_from(_SIP_PIECES) | st.binary(min_size=1, max_size=4))
        elif operation == "delete":
            del data[index : index + draw(st.integers(1, 8))]
        elif operation == "truncate":
            del data[index:]
        elif operation in ("duplicate-line", "drop-line"):
            lines = bytes(data).split(b"\r\n")
            line = draw(st.integers(0, len(lines) - 1))
            if operation == "duplicate-line":
                lines.insert(line, lines[line])
            else:
                del lines[line]
            data = bytearray(b"\r\n".join(lines))
        else:
            # Overlong numbers where numbers belong (Content-Length, Max-Forwards, CSeq, Expires...).
            lines = bytes(data).split(b"\r\n")
            numeric = [i for i, text in enumerate(lines) if re.match(rb"[^:]*:[ \t]*[0-9]", text)]
            if numeric:
                line = draw(st.sampled_from(numeric))
                name, _, value = lines[line].partition(b":")
                digits = b"9" * draw(st.integers(1, 40))
                lines[line] = name + b": " + digits + value.strip().lstrip(b"0123456789")
                data = bytearray(b"\r\n".join(lines))
    return bytes(data)


@FUZZ
@given(hostile_bytes)
def test_arbitrary_bytes_only_raise_message_parsing_exception(data: bytes) -> None:
    _exercise_datagram(data)


@FUZZ
@given(hostile_bytes, cut_points)
def test_arbitrary_bytes_on_a_stream_only_raise_message_parsing_exception(data: bytes, cuts: list[int]) -> None:
    _exercise_stream(data, cuts)


# Numbers longer than Python's int-from-string limit (4300 digits) must be refused, not crash.
OVERLONG_CONTENT_LENGTH = SAMPLES[0].replace(b"Content-Length: 4\r\n", b"Content-Length: " + b"9" * 4301 + b"\r\n")


@MUTATE
@given(mutated_messages())
@example(OVERLONG_CONTENT_LENGTH)
def test_mutated_messages_only_raise_message_parsing_exception(data: bytes) -> None:
    _exercise_datagram(data)


@MUTATE
@given(mutated_messages(), cut_points)
@example(OVERLONG_CONTENT_LENGTH, [])
def test_mutated_messages_on_a_stream_only_raise_message_parsing_exception(data: bytes, cuts: list[int]) -> None:
    _exercise_stream(data, cuts)


# --- valid messages round-trip -------------------------------------------------------------


@ROUND_TRIP
@given(messages())
def test_generated_messages_survive_the_wire(built: Built) -> None:
    message = built.message
    data = message.to_bytes()
    parsed = parse_message(data)
    assert parsed == message
    assert parsed.to_bytes() == data
    assert tuple(parsed.vias) == built.vias
    assert parsed.top_via == built.vias[0]
    assert parsed.from_header == built.from_header
    assert parsed.to_header == built.to_header
    assert parsed.call_id == built.call_id
    assert parsed.cseq == built.cseq
    assert tuple(parsed.contacts) == built.contacts
    assert tuple(parsed.routes) == built.routes
    assert parsed.content_length == len(message.body)
    if isinstance(message, SipRequest):
        assert isinstance(parsed, SipRequest)
        assert parsed.request_uri == message.request_uri
    else:
        assert isinstance(parsed, SipResponse)
        assert (parsed.status_code, parsed.reason_phrase) == (message.status_code, message.reason_phrase)


@ROUND_TRIP
@given(messages())
def test_generated_messages_pass_validation(built: Built) -> None:
    built.message.validate()
    parse_message(built.message.to_bytes()).validate()


@STREAM
@given(
    st.lists(st.tuples(messages(), st.sampled_from([b"", b"", b"\r\n", b"\r\n\r\n"])), min_size=1, max_size=3),
    cut_points,
)
def test_a_stream_cut_anywhere_gives_the_datagram_parse(items: list[tuple[Built, bytes]], cuts: list[int]) -> None:
    wires = [built.message.to_bytes() for built, _ in items]
    stream = b"".join(keep_alive + wire for (_, keep_alive), wire in zip(items, wires, strict=True))
    parser = StreamParser()
    events: list[SipRequest | SipResponse | KeepAlive] = []
    for chunk in _chunks(stream, cuts):
        events += parser.feed(chunk)
    assert [e for e in events if not isinstance(e, KeepAlive)] == [parse_message(w) for w in wires]
    assert parser.buffered == 0


@ROUND_TRIP
@given(sip_uris(with_password=True))
def test_sip_uris_round_trip(uri: object) -> None:
    text = str(uri)
    assert parse_uri(text) == uri
    assert str(parse_uri(text)) == text


@ROUND_TRIP
@given(st.lists(name_addresses(), min_size=1, max_size=4))
def test_name_addresses_round_trip_alone_and_as_a_list(values: list[NameAddress]) -> None:
    for value in values:
        assert parse_name_addr(str(value)) == value
    assert parse_name_addr_list(", ".join(str(v) for v in values)) == values


@ROUND_TRIP
@given(st.lists(vias(), min_size=1, max_size=4))
def test_vias_round_trip(values: list[object]) -> None:
    assert parse_via_list(",".join(str(v) for v in values)) == values


# --- bounded time on pathological input ----------------------------------------------------


def _finishes(action: Callable[[], object], seconds: float = 5.0) -> None:
    """Run ``action`` on a thread; it must end within ``seconds`` with a result or a MessageParsingException."""
    outcome: list[BaseException | None] = []

    def target() -> None:
        try:
            action()
        except MessageParsingException:
            pass
        except BaseException as exc:  # handed to the test thread below
            outcome.append(exc)
            return
        outcome.append(None)

    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    worker.join(seconds)
    assert not worker.is_alive(), f"still running after {seconds} s: likely catastrophic backtracking"
    assert outcome == [None], f"unexpected exception: {outcome!r}"


def _message_with(name: bytes, value: bytes) -> bytes:
    return b"OPTIONS sip:b@h SIP/2.0\r\n" + name + b": " + value + b"\r\nContent-Length: 0\r\n\r\n"


PATHOLOGICAL = {
    "tokens-without-angle": (b"From", b"a " * 30000),
    "token-run-then-angle": (b"To", b"a" * 60000 + b" <"),
    "many-quotes": (b"From", b'"' * 60000),
    "escaped-quotes-unterminated": (b"From", b'"' + b'\\"' * 30000),
    "nested-looking-quotes": (b"Contact", b'"\\"' * 20000 + b"<sip:a@h>"),
    "many-addr-specs": (b"Contact", b"sip:a@h," * 7000 + b"<sip:x@h>"),
    "many-empty-params": (b"Contact", b"<sip:a@h>" + b";a" * 30000 + b"="),
    "uri-colons": (b"To", b"<sip:" + b"a:" * 30000 + b">"),
    "host-labels": (b"To", b"<sip:" + b"a-." * 20000 + b"->"),
    "via-whitespace": (b"Via", b"SIP/2.0/UDP" + b" " * 60000 + b"!"),
    "via-list": (b"Via", b"SIP/2.0/UDP a;b=c," * 3500 + b"x"),
    "backslashes": (b"Subject", b"\\" * 60000),
    "retry-after-comment": (b"Retry-After", b"1 (" + b"x" * 60000),
    "warning-text": (b"Warning", b'399 h "' + b"\\a" * 30000),
}


def test_pathological_header_values_parse_or_fail_in_bounded_time() -> None:
    for name, value in PATHOLOGICAL.values():
        data = _message_with(name, value)
        _finishes(lambda data=data: _read_everything(parse_message(data)))  # type: ignore[misc]


def test_pathological_stream_input_finishes_in_bounded_time() -> None:
    def feed() -> None:
        parser = StreamParser()
        parser.feed(b"\r\n" * 100000)
        for _ in range(2000):
            parser.feed(b"OPTIONS sip:b@h SIP/2.0\r\nl: 0\r\n\r\n")

    _finishes(feed)
    _finishes(lambda: StreamParser().feed(b"a" * 70000))
    _finishes(lambda: parse_message(b"\r\n" * 200000 + b"OPTIONS sip:b@h SIP/2.0\r\n\r\n"))
