"""The header section of a SIP message: ordered, case-insensitive, multi-valued, compact forms expanded."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from ucma.signaling.exceptions import ArgumentException
from ucma.signaling.sip.grammar import TOKEN_RE

#: RFC 3261 section 7.3.3 and later RFCs' compact header names.
COMPACT_FORMS: dict[str, str] = {
    "a": "Accept-Contact",
    "b": "Referred-By",
    "c": "Content-Type",
    "d": "Request-Disposition",
    "e": "Content-Encoding",
    "f": "From",
    "i": "Call-ID",
    "j": "Reject-Contact",
    "k": "Supported",
    "l": "Content-Length",
    "m": "Contact",
    "n": "Identity-Info",
    "o": "Event",
    "r": "Refer-To",
    "s": "Subject",
    "t": "To",
    "u": "Allow-Events",
    "v": "Via",
    "x": "Session-Expires",
    "y": "Identity",
}

#: Canonical spellings, used when we create headers and to map names to lookup keys fast.
CANONICAL_NAMES: tuple[str, ...] = (
    "Accept",
    "Accept-Contact",
    "Accept-Encoding",
    "Accept-Language",
    "Alert-Info",
    "Allow",
    "Allow-Events",
    "Authentication-Info",
    "Authorization",
    "Call-ID",
    "Call-Info",
    "Contact",
    "Content-Disposition",
    "Content-Encoding",
    "Content-Language",
    "Content-Length",
    "Content-Type",
    "CSeq",
    "Date",
    "Error-Info",
    "Event",
    "Expires",
    "From",
    "Identity",
    "Identity-Info",
    "In-Reply-To",
    "Max-Forwards",
    "MIME-Version",
    "Min-Expires",
    "Min-SE",
    "Organization",
    "Path",
    "Priority",
    "Proxy-Authenticate",
    "Proxy-Authentication-Info",
    "Proxy-Authorization",
    "Proxy-Require",
    "RAck",
    "Reason",
    "Record-Route",
    "Refer-To",
    "Referred-By",
    "Reject-Contact",
    "Reply-To",
    "Request-Disposition",
    "Require",
    "Retry-After",
    "Route",
    "RSeq",
    "Server",
    "Service-Route",
    "Session-Expires",
    "SIP-ETag",
    "SIP-If-Match",
    "Subject",
    "Subscription-State",
    "Supported",
    "Timestamp",
    "To",
    "Unsupported",
    "User-Agent",
    "Via",
    "Warning",
    "WWW-Authenticate",
    "P-Asserted-Identity",
    "P-Preferred-Identity",
    "ms-diagnostics",
    "ms-diagnostics-public",
    "ms-client-diagnostics",
    "ms-keep-alive",
    "ms-subnet",
    "presence-state",
    "ms-endpoint-location-data",
    "Security-Client",
    "Security-Server",
    "Security-Verify",
)

_CANONICAL_BY_KEY: dict[str, str] = {name.lower(): name for name in CANONICAL_NAMES}
# Bounded cache: only spellings we know; unknown names are lowered per message and never stored.
KEY_BY_SPELLING: dict[str, str] = {}
for _name in CANONICAL_NAMES:
    for _spelling in (_name, _name.lower(), _name.upper(), _name.title()):
        KEY_BY_SPELLING[_spelling] = _name.lower()
for _short, _full in COMPACT_FORMS.items():
    KEY_BY_SPELLING[_short] = KEY_BY_SPELLING[_short.upper()] = _full.lower()
del _name, _spelling, _short, _full

_BAD_VALUE_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
# RFC 3261 quoted-pairs may carry controls other than CR and LF (a received display name can).
_QUOTED_PAIR_RE = re.compile(r"\\[\x00-\x09\x0b\x0c\x0e-\x7f]")


def header_key(name: str) -> str:
    """The lookup key of a header name: lower-case full form (``v`` -> ``via``)."""
    key = KEY_BY_SPELLING.get(name)
    if key is not None:
        return key
    lower = name.lower()
    full = COMPACT_FORMS.get(lower)
    return full.lower() if full is not None else lower


def canonical_name(name: str) -> str:
    """The conventional spelling of a header name (``call-id`` -> ``Call-ID``, ``v`` -> ``Via``)."""
    key = header_key(name)
    return _CANONICAL_BY_KEY.get(key, name)


class Headers:
    """Header fields in wire order; lookups are case-insensitive and treat compact names as full ones.

    Each field is one header line (a line may hold a comma-separated list; the typed accessors
    on the message split those). Mutating methods refuse names that are not tokens and values
    with CR, LF or other control characters, so a header can never be injected.
    """

    __slots__ = ("_fields", "by_key", "parsed")

    def __init__(self, fields: Iterable[tuple[str, str]] = ()) -> None:
        self._fields: list[tuple[str, str]] = []
        #: Values per lookup key (``header_key``), in order. Read-only outside this class.
        self.by_key: dict[str, list[str]] = {}
        #: Parsed header values memoised by the message accessors; emptied on every change.
        self.parsed: dict[str, object] = {}
        for name, value in fields:
            self.add(name, value)

    @classmethod
    def _from_parsed(cls, fields: list[tuple[str, str]], by_key: dict[str, list[str]]) -> Headers:
        """Adopt lists built by the parser (already validated) without copying."""
        self = cls.__new__(cls)
        self._fields = fields
        self.by_key = by_key
        self.parsed = {}
        return self

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first value of header ``name``, or ``default``."""
        values = self.by_key.get(header_key(name))
        return values[0] if values else default

    def get_all(self, name: str) -> list[str]:
        """Every value (one per header line) of header ``name``, in order."""
        return list(self.by_key.get(header_key(name), ()))

    def values_of(self, key: str) -> list[str] | None:
        """The stored values for an already-computed key (do not mutate the list)."""
        return self.by_key.get(key)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and header_key(name) in self.by_key

    def add(self, name: str, value: str) -> None:
        """Append a header line."""
        _check_field(name, value)
        self._fields.append((name, value))
        self.by_key.setdefault(header_key(name), []).append(value)
        self.parsed.clear()

    def set(self, name: str, value: str) -> None:
        """Replace every ``name`` line by one line with ``value`` (at the first one's position)."""
        _check_field(name, value)
        key = header_key(name)
        out: list[tuple[str, str]] = []
        placed = False
        for old_name, old_value in self._fields:
            if header_key(old_name) == key:
                if not placed:
                    out.append((name, value))
                    placed = True
            else:
                out.append((old_name, old_value))
        if not placed:
            out.append((name, value))
        self._fields = out
        self._changed()

    def remove(self, name: str) -> int:
        """Remove every ``name`` line; return how many were removed."""
        key = header_key(name)
        before = len(self._fields)
        self._fields = [(n, v) for n, v in self._fields if header_key(n) != key]
        self._changed()
        return before - len(self._fields)

    def _changed(self) -> None:
        by_key: dict[str, list[str]] = {}
        for name, value in self._fields:
            by_key.setdefault(header_key(name), []).append(value)
        self.by_key = by_key
        self.parsed.clear()

    def copy(self) -> Headers:
        """An independent copy."""
        return Headers._from_parsed(list(self._fields), {k: list(v) for k, v in self.by_key.items()})

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(list(self._fields))

    def __len__(self) -> int:
        return len(self._fields)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Headers):
            return NotImplemented
        return [(header_key(n), v) for n, v in self._fields] == [(header_key(n), v) for n, v in other._fields]

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"Headers({len(self._fields)} fields)"


def _check_field(name: str, value: str) -> None:
    if TOKEN_RE.fullmatch(name) is None:
        raise ArgumentException(f"invalid header name {name!r}", "name")
    if _BAD_VALUE_RE.search(value) is not None and _BAD_VALUE_RE.search(_QUOTED_PAIR_RE.sub("", value)) is not None:
        raise ArgumentException(f"header {name} value contains CR, LF or a control character", "value")
