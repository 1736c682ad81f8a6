"""SIP requests and responses: typed, lazily parsed accessors over :class:`Headers`, and serialisation.

Header values are parsed on first access and cached until the headers change, so a transport
that only routes a message pays only for what it reads. :meth:`SipMessage.validate` parses
everything the library has a grammar for.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar

from ucma.signaling.exceptions import MessageParsingException
from ucma.signaling.sip.address import NameAddress, parse_name_addr, parse_name_addr_list
from ucma.signaling.sip.grammar import TOKEN_RE, parse_params, parse_token_list, parse_uint, split_commas
from ucma.signaling.sip.header_values import CSeq, Via, parse_cseq, parse_via_at, parse_via_list
from ucma.signaling.sip.headers import Headers, canonical_name, header_key
from ucma.signaling.sip.uri import SipUri, Uri, mask_password, parse_uri

_T = TypeVar("_T")
_MISSING: Any = object()

CALL_ID_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~()<>:\\\"/\[\]?{}]+(?:@[A-Za-z0-9\-.!%*_+`'~()<>:\\\"/\[\]?{}]+)?")
_MEDIA_TYPE_RE = re.compile(r"[ \t]*([A-Za-z0-9\-.!%*_+`'~]+)[ \t]*/[ \t]*([A-Za-z0-9\-.!%*_+`'~]+)[ \t]*")
_DATE_RE = re.compile(
    r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), [0-9]{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
    r"[0-9]{4} [0-9]{2}:[0-9]{2}:[0-9]{2} GMT"
)
_RETRY_AFTER_RE = re.compile(r"[ \t]*([0-9]+)[ \t]*(\([^)]*\))?[ \t]*")
_WARNING_RE = re.compile(r'[ \t]*([0-9]{3}) ([^ \t]+) ("(?:[^"\\]|\\.)*")[ \t]*')

#: Headers that must appear at most once (RFC 3261 section 7.3.1 and table 2).
SINGLE_VALUED = ("call-id", "cseq", "from", "to", "max-forwards", "content-length", "content-type", "expires")


def _single(headers: Headers, key: str, what: str) -> str | None:
    values = headers.by_key.get(key)
    if not values:
        return None
    if len(values) > 1 and any(v != values[0] for v in values[1:]):
        raise MessageParsingException(f"conflicting {what} headers", detail=f"{len(values)} values")
    return values[0]


def _required(headers: Headers, key: str, what: str) -> str:
    values = headers.by_key.get(key)
    if not values:
        raise MessageParsingException(f"missing {what} header")
    if len(values) > 1 and any(v != values[0] for v in values[1:]):
        raise MessageParsingException(f"conflicting {what} headers", detail=f"{len(values)} values")
    return values[0]


class SipMessage:
    """What requests and responses share: headers, body and the typed header accessors."""

    __slots__ = ("body", "headers")

    def __init__(self, headers: Headers | None = None, body: bytes = b"") -> None:
        self.headers = headers if headers is not None else Headers()
        self.body = body

    def _cached(self, name: str, compute: Callable[[], _T]) -> _T:
        # The memo lives in Headers, which clears it on every change.
        memo = self.headers.parsed
        value = memo.get(name, _MISSING)
        if value is _MISSING:
            value = memo[name] = compute()
        return value  # type: ignore[return-value]

    # --- routing fields ---------------------------------------------------------------------

    @property
    def top_via(self) -> Via:
        """The first Via value (parsed without touching the others)."""
        memo = self.headers.parsed
        via = memo.get("top_via")
        if via is None:
            values = self.headers.by_key.get("via")
            if not values:
                raise MessageParsingException("missing Via header")
            via = memo["top_via"] = parse_via_at(values[0], 0)[0]
        return via  # type: ignore[return-value]

    @property
    def vias(self) -> list[Via]:
        """Every Via value, topmost first."""
        return list(
            self._cached(
                "vias", lambda: [v for line in self.headers.by_key.get("via") or () for v in parse_via_list(line)]
            )
        )

    @property
    def from_header(self) -> NameAddress:
        """The From header."""
        memo = self.headers.parsed
        value = memo.get("from")
        if value is None:
            value = memo["from"] = parse_name_addr(_required(self.headers, "from", "From"), "From")
        return value  # type: ignore[return-value]

    @property
    def to_header(self) -> NameAddress:
        """The To header."""
        memo = self.headers.parsed
        value = memo.get("to")
        if value is None:
            value = memo["to"] = parse_name_addr(_required(self.headers, "to", "To"), "To")
        return value  # type: ignore[return-value]

    @property
    def call_id(self) -> str:
        """The Call-ID."""
        memo = self.headers.parsed
        value = memo.get("call-id")
        if value is None:
            value = _required(self.headers, "call-id", "Call-ID")
            if CALL_ID_RE.fullmatch(value) is None:
                raise MessageParsingException("invalid Call-ID", detail=value[:80])
            memo["call-id"] = value
        return value  # type: ignore[return-value]

    @property
    def cseq(self) -> CSeq:
        """The CSeq number and method."""
        memo = self.headers.parsed
        value = memo.get("cseq")
        if value is None:
            value = memo["cseq"] = parse_cseq(_required(self.headers, "cseq", "CSeq"))
        return value  # type: ignore[return-value]

    @property
    def contacts(self) -> list[NameAddress]:
        """Every Contact value (``Contact: *`` gives one wildcard entry)."""
        memo = self.headers.parsed
        value = memo.get("contact")
        if value is None:
            value = memo["contact"] = _address_list(self.headers, "contact", "Contact")
        assert isinstance(value, list)  # noqa: S101  (only this accessor writes the key)
        return list(value)  # a copy: callers must not edit the memo

    @property
    def routes(self) -> list[NameAddress]:
        """Route values in order."""
        return list(self._cached("route", lambda: _address_list(self.headers, "route", "Route")))

    @property
    def record_routes(self) -> list[NameAddress]:
        """Record-Route values in order."""
        return list(self._cached("record-route", lambda: _address_list(self.headers, "record-route", "Record-Route")))

    # --- numbers ----------------------------------------------------------------------------

    @property
    def max_forwards(self) -> int | None:
        """Max-Forwards (0-255), None if absent."""
        return self._cached("max-forwards", lambda: self._uint("max-forwards", "Max-Forwards", 255))

    @property
    def expires(self) -> int | None:
        """The Expires header in seconds, None if absent."""
        return self._cached("expires", lambda: self._uint("expires", "Expires"))

    @property
    def min_expires(self) -> int | None:
        """Min-Expires (sent with 423), None if absent."""
        return self._cached("min-expires", lambda: self._uint("min-expires", "Min-Expires"))

    @property
    def content_length(self) -> int | None:
        """The Content-Length header as sent, None if absent (``len(body)`` is what was framed)."""
        return self._cached("content-length", lambda: self._uint("content-length", "Content-Length"))

    @property
    def retry_after(self) -> int | None:
        """Retry-After in seconds (comment and parameters ignored), None if absent."""

        def compute() -> int | None:
            value = _single(self.headers, "retry-after", "Retry-After")
            if value is None:
                return None
            m = _RETRY_AFTER_RE.match(value)
            if m is None:
                raise MessageParsingException("invalid Retry-After", detail=value[:80])
            _, end = parse_params(value, m.end(), "Retry-After")
            if end != len(value):
                raise MessageParsingException("invalid Retry-After", detail=value[:80])
            return parse_uint(m.group(1), "Retry-After")

        return self._cached("retry-after", compute)

    def _uint(self, key: str, what: str, maximum: int = 2**32 - 1) -> int | None:
        value = _single(self.headers, key, what)
        return None if value is None else parse_uint(value, what, maximum)

    # --- content ----------------------------------------------------------------------------

    @property
    def content_type(self) -> str | None:
        """The media type, lower-cased, without parameters (``application/pidf+xml``)."""

        def compute() -> str | None:
            value = _single(self.headers, "content-type", "Content-Type")
            if value is None:
                return None
            m = _MEDIA_TYPE_RE.match(value)
            if m is None:
                raise MessageParsingException("invalid Content-Type", detail=value[:80])
            _, end = parse_params(value, m.end(), "Content-Type")
            if end != len(value):
                raise MessageParsingException("invalid Content-Type", detail=value[:80])
            return f"{m.group(1)}/{m.group(2)}".lower()

        return self._cached("content-type", compute)

    def token_list(self, name: str) -> list[str]:
        """A comma-separated token list header (Supported, Require, Allow...) across all its lines."""
        return [t for line in self.headers.get_all(name) for t in parse_token_list(line, canonical_name(name))]

    # --- checks and wire form ---------------------------------------------------------------

    def validate(self) -> None:
        """Parse every header the library has a grammar for; raise :class:`MessageParsingException`."""
        if "via" in self.headers:
            for via in self.vias:
                via.validate()
        for addr in (
            self.from_header if "from" in self.headers else None,
            self.to_header if "to" in self.headers else None,
        ):
            if addr is not None:
                addr.validate()
        contacts = self.contacts
        if any(c.is_wildcard for c in contacts) and len(contacts) > 1:
            raise MessageParsingException("Contact '*' must be the only Contact value")
        for addr in [*contacts, *self.routes, *self.record_routes]:
            addr.validate()
        for key in SINGLE_VALUED:
            if len(self.headers.values_of(key) or ()) > 1:
                raise MessageParsingException(f"multiple {canonical_name(key)} headers")
        if "call-id" in self.headers:
            _ = self.call_id
        if "cseq" in self.headers:
            _ = self.cseq
        _ = (self.max_forwards, self.expires, self.min_expires, self.content_length, self.retry_after)
        _ = self.content_type
        for value in self.headers.get_all("date"):
            if _DATE_RE.fullmatch(value) is None:
                raise MessageParsingException("invalid Date (RFC 1123 date in GMT expected)", detail=value[:80])
        for value in self.headers.get_all("warning"):
            for part in split_commas(value):
                if _WARNING_RE.fullmatch(part) is None:
                    raise MessageParsingException("invalid Warning", detail=value[:80])
        for name in ("Require", "Proxy-Require", "Supported", "Unsupported", "Allow"):
            self.token_list(name)
        for key, what in (("event", "Event"), ("subscription-state", "Subscription-State")):
            for value in self.headers.get_all(key):
                _token_with_params(value, what)
        self._validate_auth()

    def _validate_auth(self) -> None:
        from ucma.signaling.sip.auth_headers import Challenge, Credentials  # noqa: PLC0415  (optional grammar)

        for name in ("WWW-Authenticate", "Proxy-Authenticate"):
            for value in self.headers.get_all(name):
                Challenge.parse(value)
        for name in ("Authorization", "Proxy-Authorization"):
            for value in self.headers.get_all(name):
                Credentials.parse(value)

    def start_line(self) -> str:
        """The request or status line, without CRLF."""
        raise NotImplementedError

    def to_bytes(self) -> bytes:
        """Serialise for the wire; Content-Length always states ``len(body)``."""
        lines = [self.start_line()]
        length_written = False
        for name, value in self.headers:
            if name.lower() in ("content-length", "l"):
                if not length_written:
                    lines.append(f"{name}: {len(self.body)}")
                    length_written = True
                continue
            lines.append(f"{name}: {value}")
        if not length_written:
            lines.append(f"Content-Length: {len(self.body)}")
        lines.append("")
        lines.append("")
        return "\r\n".join(lines).encode("utf-8") + self.body

    def _same_content(self, other: SipMessage) -> bool:
        # Content-Length is derived from the body on the wire, so it does not make messages differ.
        return self.body == other.body and _without_length(self.headers) == _without_length(other.headers)


class SipRequest(SipMessage):
    """A SIP request: method, Request-URI, headers, body."""

    __slots__ = ("_request_uri", "_request_uri_text", "method")

    def __init__(self, method: str, request_uri: Uri | str, headers: Headers | None = None, body: bytes = b"") -> None:
        super().__init__(headers, body)
        self.method = method
        if isinstance(request_uri, str):
            self._request_uri_text = request_uri
            self._request_uri: Uri | None = None
        else:
            self._request_uri_text = str(request_uri)
            self._request_uri = request_uri

    @property
    def request_uri_text(self) -> str:
        """The Request-URI as sent on the wire."""
        return self._request_uri_text

    @request_uri_text.setter
    def request_uri_text(self, value: str) -> None:
        self._request_uri_text = value
        self._request_uri = None

    @property
    def request_uri(self) -> Uri:
        """The parsed Request-URI."""
        if self._request_uri is None:
            self._request_uri = parse_uri(self.request_uri_text)
        return self._request_uri

    def start_line(self) -> str:
        return f"{self.method} {self.request_uri_text} SIP/2.0"

    def validate(self) -> None:
        uri = self.request_uri
        if isinstance(uri, SipUri) and uri.headers:
            raise MessageParsingException("Request-URI must not contain headers", detail=self.request_uri_text[:120])
        super().validate()
        if "cseq" in self.headers and self.cseq.method != self.method:
            raise MessageParsingException(
                "CSeq method does not match the request method", detail=f"{self.cseq.method} != {self.method}"
            )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SipRequest):
            return NotImplemented
        return (
            self.method == other.method
            and self.request_uri_text == other.request_uri_text
            and self._same_content(other)
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        size = f"{len(self.headers)} headers, {len(self.body)} bytes"
        return f"<SipRequest {self.method} {mask_password(self.request_uri_text)} ({size})>"


class SipResponse(SipMessage):
    """A SIP response: status code, reason phrase, headers, body."""

    __slots__ = ("reason_phrase", "status_code")

    def __init__(
        self, status_code: int, reason_phrase: str = "", headers: Headers | None = None, body: bytes = b""
    ) -> None:
        super().__init__(headers, body)
        self.status_code = status_code
        self.reason_phrase = reason_phrase

    @property
    def is_provisional(self) -> bool:
        """1xx."""
        return self.status_code < 200

    @property
    def is_success(self) -> bool:
        """2xx."""
        return 200 <= self.status_code < 300

    def start_line(self) -> str:
        return f"SIP/2.0 {self.status_code} {self.reason_phrase}"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SipResponse):
            return NotImplemented
        return (
            self.status_code == other.status_code
            and self.reason_phrase == other.reason_phrase
            and self._same_content(other)
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        size = f"{len(self.headers)} headers, {len(self.body)} bytes"
        return f"<SipResponse {self.status_code} {self.reason_phrase} ({size})>"


def _without_length(headers: Headers) -> list[tuple[str, str]]:
    return [(header_key(n), v) for n, v in headers if header_key(n) != "content-length"]


def _address_list(headers: Headers, key: str, what: str) -> list[NameAddress]:
    values = headers.by_key.get(key)
    if not values:
        return []
    if len(values) == 1:
        return parse_name_addr_list(values[0], what)
    return [a for line in values for a in parse_name_addr_list(line, what)]


def _token_with_params(value: str, what: str) -> None:
    m = TOKEN_RE.match(value.lstrip(" \t"))
    if m is None:
        raise MessageParsingException(f"invalid {what}", detail=value[:80])
    start = len(value) - len(value.lstrip(" \t")) + m.end()
    _, end = parse_params(value, start, what)
    if end != len(value):
        raise MessageParsingException(f"invalid {what}", detail=value[:80])


def is_valid_method(method: str) -> bool:
    """True when ``method`` is a token (any extension method is allowed)."""
    return TOKEN_RE.fullmatch(method) is not None
