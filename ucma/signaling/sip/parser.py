"""Bytes to SIP messages: one datagram at a time, or a TCP/TLS byte stream framed by Content-Length.

Both parsers enforce :class:`ParserLimits` so a peer can never make us buffer without bound,
and every malformed input raises :class:`MessageParsingException` (nothing else escapes).
Only the start line and the header-field syntax are checked here; header values are parsed
lazily by the message accessors (see :meth:`SipMessage.validate`).
"""

from __future__ import annotations

import re

import attrs

from ucma.signaling.exceptions import MessageParsingException
from ucma.signaling.sip.grammar import TOKEN_RE
from ucma.signaling.sip.headers import COMPACT_FORMS, KEY_BY_SPELLING, Headers
from ucma.signaling.sip.message import SipMessage, SipRequest, SipResponse
from ucma.signaling.sip.uri import mask_password

__all__ = ["DEFAULT_LIMITS", "KeepAlive", "ParserLimits", "StreamParser", "parse_message"]


@attrs.frozen
class ParserLimits:
    """Upper bounds on what one message may hold.

    Defaults: 64 KiB of header section (the largest UDP datagram, and Kamailio's and PJSIP's
    packet buffers), 4 MiB of body (a roaming-contacts NOTIFY of a large contact list is
    hundreds of KiB), and 256 header lines.
    """

    max_header_bytes: int = 65536
    max_body_bytes: int = 4 * 1024 * 1024
    max_headers: int = 256


DEFAULT_LIMITS = ParserLimits()


@attrs.frozen
class KeepAlive:
    """A keep-alive on a stream (RFC 5626 section 3.5.1): ``ping`` is CRLFCRLF, a pong is one CRLF."""

    ping: bool


# A quoted string (where quoted-pairs may escape controls, RFC 3261 section 25.1), or else group 1:
# a control other than HTAB, or a CR or LF that is not part of a CRLF pair.
_CONTROL_OR_QUOTED_RE = re.compile(
    r'"[^"\\\x00-\x08\x0a-\x1f\x7f]*(?:\\[\x00-\x09\x0b\x0c\x0e-\x7f][^"\\\x00-\x08\x0a-\x1f\x7f]*)*"'
    r"|([\x00-\x08\x0b\x0c\x0e-\x1f\x7f]|\r(?!\n)|(?<!\r)\n)"
)
_ALLOWED_BYTES = bytes(b for b in range(256) if (b >= 0x20 and b != 0x7F) or b == 0x09)
_FOLD_RE = re.compile(r"[ \t]*\r\n[ \t]+")
_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*:[^\s<>\"]+")
_VERSION = "SIP/2.0"
_KNOWN_KEYS = KEY_BY_SPELLING.get


def _error(reason: str, line: int = 0, detail: str = "") -> MessageParsingException:
    return MessageParsingException(reason, line_number=line, detail=detail)


def _parse_head(raw: bytes, limits: ParserLimits) -> SipRequest | SipResponse:
    """Parse the start line and header fields (``raw`` excludes the blank line)."""
    # Deleting every allowed byte leaves only control bytes; a good header has only CRLF pairs there.
    controls = raw.translate(None, _ALLOWED_BYTES)
    if controls and (controls.replace(b"\r\n", b"") or len(controls) != 2 * raw.count(b"\r\n")):
        _check_controls(raw)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\r\n", 0, exc.start) + 1
        raise _error("header section is not valid UTF-8", line) from None
    lines = text.split("\r\n")
    try:
        fields, index = _parse_fields(lines, limits)
    except _FoldedLineError:
        # Rare: header folding (RFC 3261 section 7.3.1). Unfold and parse again.
        if text.startswith((" ", "\t")):
            raise _error("start line begins with whitespace", 1) from None
        origin = [n for n, line in enumerate(text.split("\r\n"), 1) if line[:1] not in (" ", "\t")]
        lines = _FOLD_RE.sub(" ", text).split("\r\n")
        fields, index = _parse_fields(lines, limits, origin)
    return _make_message(lines[0], Headers._from_parsed(fields, index))


def _check_controls(raw: bytes) -> None:
    """Refuse control characters, except a quoted-pair (backslash + control, RFC 3261 section 25.1)."""
    text = raw.decode("utf-8", "replace")
    for m in _CONTROL_OR_QUOTED_RE.finditer(text):
        if m.group(1) is not None:
            line = text.count("\n", 0, m.start()) + 1
            raise _error("control character or bare CR/LF in header section", line, repr(m.group(1)))


class _FoldedLineError(Exception):
    """Signals a continuation line: the header section must be unfolded first."""


def _parse_fields(
    lines: list[str], limits: ParserLimits, origin: list[int] | None = None
) -> tuple[list[tuple[str, str]], dict[str, list[str]]]:
    """Header lines to fields; ``origin`` maps unfolded line indexes to the lines as received."""
    if len(lines) - 1 > limits.max_headers and not any(line[:1] in (" ", "\t") for line in lines):
        raise _error("too many header fields", limits.max_headers + 2, f"limit {limits.max_headers}")
    fields: list[tuple[str, str]] = []
    index: dict[str, list[str]] = {}
    known = _KNOWN_KEYS
    for index_, line in enumerate(lines[1:], 1):
        name, colon, value = line.partition(":")
        key = known(name) if colon else None
        if key is None:
            lineno = origin[index_] if origin is not None else index_ + 1
            key, name = _unknown_key(name, colon, lineno, line)
        value = value.strip(" \t")
        fields.append((name, value))
        values = index.get(key)
        if values is None:
            index[key] = [value]
        else:
            values.append(value)
    return fields, index


def _unknown_key(name: str, colon: str, lineno: int, line: str) -> tuple[str, str]:
    """Validate a header name that is not in the known-spellings table; return (key, name)."""
    if line[:1] in (" ", "\t"):
        raise _FoldedLineError
    if not colon:
        raise _error("header line without ':'", lineno, line[:80])
    name = name.rstrip(" \t")
    if TOKEN_RE.fullmatch(name) is None:
        raise _error("invalid header name", lineno, name[:80])
    key = name.lower()
    full = COMPACT_FORMS.get(key)
    return (full.lower() if full is not None else key), name


def _make_message(line: str, headers: Headers) -> SipRequest | SipResponse:
    if line.startswith("SIP/") or line[:4].upper() == "SIP/":
        parts = line.split(" ", 2)
        if parts[0].upper() != _VERSION:
            raise _error("unsupported SIP version", 1, parts[0][:20])
        if len(parts) < 2:
            raise _error("status line without a status code", 1)
        code = parts[1]
        if len(code) != 3 or not code.isdigit() or not code.isascii() or not "100" <= code <= "699":
            raise _error("invalid status code", 1, code[:20])
        return SipResponse(int(code), parts[2] if len(parts) == 3 else "", headers)
    parts = line.split(" ")
    if len(parts) != 3:
        raise _error("request line must be 'METHOD SP Request-URI SP SIP/2.0'", 1, line[:120])
    method, uri, version = parts
    if TOKEN_RE.fullmatch(method) is None:
        raise _error("invalid method", 1, method[:40])
    if version.upper() != _VERSION:
        raise _error("unsupported SIP version", 1, version[:20])
    if _SCHEME_RE.fullmatch(uri) is None:
        raise _error("invalid Request-URI", 1, mask_password(uri[:120]))
    return SipRequest(method, uri, headers)


def _content_length(message: SipMessage, limits: ParserLimits) -> int | None:
    values = message.headers.values_of("content-length")
    if not values:
        return None
    first = values[0]
    for value in values:
        if not value.isdigit() or not value.isascii() or len(value) > 10:
            raise _error("invalid Content-Length", detail=value[:40])
        if value != first and int(value) != int(first):
            raise _error("conflicting Content-Length headers", detail=", ".join(values)[:80])
    length = int(first)
    if length > limits.max_body_bytes:
        raise _error("body larger than the limit", detail=f"{length} > {limits.max_body_bytes}")
    return length


def parse_message(data: bytes, limits: ParserLimits = DEFAULT_LIMITS) -> SipRequest | SipResponse:
    """Parse one datagram-framed message.

    Content-Length governs the body: bytes after it are discarded, a larger value raises
    (RFC 3261 section 18.3); without Content-Length the rest of the datagram is the body.
    """
    if type(data) is not bytes:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError("parse_message expects bytes")
        data = bytes(data)
    start = 0
    if data[:2] == b"\r\n":
        while data.startswith(b"\r\n", start):
            start += 2
    end = data.find(b"\r\n\r\n", start)
    if end < 0:
        if len(data) - start > limits.max_header_bytes:
            raise _error("header section larger than the limit", detail=f"limit {limits.max_header_bytes}")
        raise _error("no empty line ends the header section")
    if end - start > limits.max_header_bytes:
        raise _error("header section larger than the limit", detail=f"limit {limits.max_header_bytes}")
    message = _parse_head(data[start:end], limits)
    body_start = end + 4
    length = _content_length(message, limits)
    if length is None:
        if len(data) - body_start > limits.max_body_bytes:
            raise _error("body larger than the limit", detail=f"limit {limits.max_body_bytes}")
        message.body = data[body_start:]
    else:
        if body_start + length > len(data):
            raise _error("Content-Length larger than the data", detail=f"{length} > {len(data) - body_start}")
        message.body = data[body_start : body_start + length]
    return message


class StreamParser:
    """Incremental parser for a TCP/TLS connection: feed bytes as they arrive, get complete messages.

    Handles partial reads, several pipelined messages per read, and RFC 5626 keep-alives
    between messages. A missing Content-Length means an empty body. After a parsing error the
    stream cannot be resynchronised: every later :meth:`feed` raises too (close the connection).
    """

    def __init__(self, limits: ParserLimits = DEFAULT_LIMITS) -> None:
        self.limits = limits
        self._buffer = bytearray()
        self._pending: SipRequest | SipResponse | None = None
        self._body_length = 0
        self._scan_from = 0
        self._failed: MessageParsingException | None = None

    @property
    def buffered(self) -> int:
        """Bytes received but not yet returned as a message."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[SipRequest | SipResponse | KeepAlive]:
        """Add received bytes; return the messages and keep-alives now complete, in order."""
        if self._failed is not None:
            raise MessageParsingException(
                "stream is unusable after an earlier parsing error", detail=self._failed.reason
            )
        self._buffer += data
        out: list[SipRequest | SipResponse | KeepAlive] = []
        try:
            while self._step(out):
                pass
        except MessageParsingException as exc:
            self._failed = exc
            self._buffer.clear()
            raise
        except Exception as exc:  # a bug must not let the stream resynchronise on attacker bytes
            self._failed = MessageParsingException("internal parser error", detail=type(exc).__name__)
            self._buffer.clear()
            raise self._failed from exc
        return out

    def _step(self, out: list[SipRequest | SipResponse | KeepAlive]) -> bool:
        buf = self._buffer
        if self._pending is not None:
            if len(buf) < self._body_length:
                return False
            message = self._pending
            message.body = bytes(buf[: self._body_length])
            del buf[: self._body_length]
            self._pending = None
            out.append(message)
            return True
        if buf.startswith(b"\r\n"):
            if buf.startswith(b"\r\n\r\n"):
                del buf[:4]
                out.append(KeepAlive(ping=True))
            elif len(buf) == 3 and buf.endswith(b"\r"):
                return False  # maybe the first half of a ping; wait for the rest
            else:
                del buf[:2]
                out.append(KeepAlive(ping=False))
            return True
        if buf == b"\r":
            return False
        end = buf.find(b"\r\n\r\n", max(0, self._scan_from - 3))
        if end < 0:
            if len(buf) > self.limits.max_header_bytes:
                raise _error("header section larger than the limit", detail=f"limit {self.limits.max_header_bytes}")
            self._scan_from = len(buf)
            return False
        self._scan_from = 0
        if end > self.limits.max_header_bytes:
            raise _error("header section larger than the limit", detail=f"limit {self.limits.max_header_bytes}")
        message = _parse_head(bytes(buf[:end]), self.limits)
        del buf[: end + 4]
        length = _content_length(message, self.limits) or 0
        if length == 0:
            out.append(message)
        else:
            self._pending = message
            self._body_length = length
        return True
