"""Values of the authentication headers (RFC 3261 section 25.1, RFC 7235, [MS-SIPAE]).

A :class:`Challenge` is one WWW-Authenticate / Proxy-Authenticate value and a :class:`Credentials`
one Authorization / Proxy-Authorization value: a scheme, then either a token68 or a list of
``name=token`` / ``name="quoted string"`` parameters.  In SIP each header field carries exactly
one challenge, so a value is never split into several.  Which parameters were quoted is kept,
because servers differ in what they accept (Digest wants ``algorithm=MD5`` bare and ``qop="auth"``
quoted in a challenge; [MS-SIPAE] wants ``version=4`` bare).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import ClassVar, TypeVar

import attrs

from ucma.signaling.exceptions import ArgumentException, MessageParsingException
from ucma.signaling.sip.grammar import TOKEN_RE, WHITESPACE, is_token, skip_ws

__all__ = ["AuthHeaderValue", "Challenge", "Credentials"]

# RFC 7235 section 2.1 token68; it must run to the end of the value.
_TOKEN68_RE = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
# Where qdtext stops: DQUOTE, backslash, or a control other than HTAB (which is allowed as LWS).
_QDTEXT_STOP_RE = re.compile(r'["\\\x00-\x08\x0a-\x1f\x7f]')
# Characters a quoted-pair may carry (RFC 3261: %x00-09 / %x0B-0C / %x0E-7F) but qdtext may not.
_NEEDS_ESCAPE_RE = re.compile(r'["\\\x00-\x08\x0b\x0c\x0e-\x1f\x7f]')
_LINE_BREAK_RE = re.compile(r"[\r\n]")
# One auth-param and the separator after it, for the common well-formed case (anything else
# falls back to the character scanner, which gives precise errors).
_TOKEN = r"[A-Za-z0-9\-.!%*_+`'~]+"
_FAST_PARAM = (
    rf'[ \t]*({_TOKEN})[ \t]*=[ \t]*(?:"([^"\\\x00-\x08\x0a-\x1f\x7f]*'
    rf'(?:\\[\x00-\x09\x0b\x0c\x0e-\x7f][^"\\\x00-\x08\x0a-\x1f\x7f]*)*)"|({_TOKEN}))'
    r"[ \t]*(?:,[ \t,]*|$)"
)
_FAST_PARAM_RE = re.compile(_FAST_PARAM)
_FAST_PARAM_LIST_RE = re.compile("(?:" + re.sub(r"\((?!\?)", "(?:", _FAST_PARAM) + ")+")
_UNESCAPE_RE = re.compile(r"\\(.)", re.DOTALL)

_V = TypeVar("_V", bound="AuthHeaderValue")


def _quote(value: str) -> str:
    """A quoted-string for ``value``: quotes, backslashes and controls become quoted-pairs."""
    return '"' + _NEEDS_ESCAPE_RE.sub(lambda m: "\\" + m.group(), value) + '"'


def _scan_quoted(text: str, pos: int) -> tuple[str, int]:
    """Read the quoted-string starting at ``text[pos] == '"'``; return its value and the end index."""
    start = pos
    pos += 1
    parts: list[str] = []
    n = len(text)
    while True:
        stop = _QDTEXT_STOP_RE.search(text, pos)
        if stop is None:
            raise MessageParsingException("unterminated quoted string", offset=start)
        parts.append(text[pos : stop.start()])
        pos = stop.start()
        char = text[pos]
        if char == '"':
            return "".join(parts), pos + 1
        if char == "\\":
            if pos + 1 >= n:
                raise MessageParsingException("unterminated quoted string", offset=start)
            escaped = text[pos + 1]
            if escaped in "\r\n":
                raise MessageParsingException("line break in quoted string", offset=pos + 1)
            parts.append(escaped)
            pos += 2
            continue
        raise MessageParsingException("control character in quoted string", offset=pos)


def _parse_params_fast(text: str, pos: int) -> tuple[tuple[tuple[str, str], ...], frozenset[str]] | None:
    """Regex-driven parse of a well-formed auth-param list; None means 'use the scanner'."""
    if _FAST_PARAM_LIST_RE.fullmatch(text, pos) is None:
        return None
    params: list[tuple[str, str]] = []
    quoted: list[str] = []
    for name, quoted_value, token_value in _FAST_PARAM_RE.findall(text, pos):
        if token_value:
            params.append((name, token_value))
        else:
            quoted.append(name.lower())
            value = _UNESCAPE_RE.sub(r"\1", quoted_value) if "\\" in quoted_value else quoted_value
            params.append((name, value))
    if len({name.lower() for name, _ in params}) != len(params):
        return None  # the scanner reports the duplicate with its offset
    return tuple(params), frozenset(quoted)


def _parse(text: str) -> tuple[str, tuple[tuple[str, str], ...], str | None, frozenset[str]]:
    """Split an authentication header value into scheme, params, token68 and the quoted names."""
    n = len(text)
    pos = skip_ws(text, 0)
    m = TOKEN_RE.match(text, pos)
    if m is None:
        raise MessageParsingException("missing auth-scheme", offset=pos)
    scheme = m.group()
    pos = m.end()
    if pos < n and text[pos] not in WHITESPACE:
        raise MessageParsingException("invalid auth-scheme", offset=pos)
    pos = skip_ws(text, pos)
    if pos == n:
        return scheme, (), None, frozenset()
    m = _TOKEN68_RE.match(text, pos)
    if m is not None and skip_ws(text, m.end()) == n:
        return scheme, (), m.group(), frozenset()
    fast = _parse_params_fast(text, pos)
    if fast is not None:
        return scheme, fast[0], None, fast[1]

    params: list[tuple[str, str]] = []
    quoted: set[str] = set()
    seen: set[str] = set()
    while True:
        pos = skip_ws(text, pos)
        if pos == n:
            break
        if text[pos] == ",":  # RFC 7230 section 7: empty list elements are tolerated
            pos += 1
            continue
        m = TOKEN_RE.match(text, pos)
        if m is None:
            reason = "empty auth-param name" if text[pos] == "=" else "invalid auth-param name"
            raise MessageParsingException(reason, offset=pos)
        name, name_start = m.group(), pos
        pos = skip_ws(text, m.end())
        if pos == n or text[pos] != "=":
            raise MessageParsingException("missing '=' after auth-param name", offset=pos, detail=name[:40])
        pos = skip_ws(text, pos + 1)
        if pos < n and text[pos] == '"':
            value, pos = _scan_quoted(text, pos)
            was_quoted = True
        else:
            m = TOKEN_RE.match(text, pos)
            if m is None:
                raise MessageParsingException("invalid auth-param value", offset=pos, detail=name[:40])
            value, pos, was_quoted = m.group(), m.end(), False
        lname = name.lower()
        if lname in seen:
            raise MessageParsingException("duplicate auth-param", offset=name_start, detail=name[:40])
        seen.add(lname)
        params.append((name, value))
        if was_quoted:
            quoted.add(lname)
        pos = skip_ws(text, pos)
        if pos < n and text[pos] != ",":
            raise MessageParsingException("expected ',' between auth-params", offset=pos)
    return scheme, tuple(params), None, frozenset(quoted)


@attrs.frozen(repr=False)
class AuthHeaderValue:
    """Scheme plus either auth-params or a token68; the shared shape of challenges and credentials.

    ``params`` hold unquoted values in wire order; ``quoted`` holds the lower-cased names of the
    params written as quoted strings.  Values that are not tokens are always quoted, so
    ``quoted`` is normalised to include them and ``parse(str(v)) == v`` holds.
    """

    scheme: str
    params: tuple[tuple[str, str], ...] = ()
    token68: str | None = None
    quoted: frozenset[str] = frozenset()

    #: Lower-cased names whose values ``repr()`` hides.
    _redacted_params: ClassVar[frozenset[str]] = frozenset()
    _redact_token68: ClassVar[bool] = False

    def __attrs_post_init__(self) -> None:
        if not is_token(self.scheme):
            raise ArgumentException("auth-scheme must be a token", "scheme")
        if self.token68 is not None:
            if self.params:
                raise ArgumentException("a token68 cannot be combined with auth-params", "token68")
            if _TOKEN68_RE.fullmatch(self.token68) is None:
                raise ArgumentException("not a valid token68", "token68")
        seen: set[str] = set()
        must_quote: set[str] = set()
        for name, value in self.params:
            if not is_token(name):
                raise ArgumentException("auth-param name must be a token", "params")
            lname = name.lower()
            if lname in seen:
                raise ArgumentException(f"duplicate auth-param {name!r}", "params")
            seen.add(lname)
            # Names are safe to show; values may be secrets, so they never appear in messages.
            if _LINE_BREAK_RE.search(value) is not None:
                raise ArgumentException(f"value of auth-param {name!r} contains a line break", "params")
            if not is_token(value):
                must_quote.add(lname)
        wanted = {q.lower() for q in self.quoted} & seen
        object.__setattr__(self, "quoted", frozenset(wanted | must_quote))

    @classmethod
    def parse(cls: type[_V], value: str) -> _V:
        """Parse one header value; raise :class:`MessageParsingException` saying what is wrong."""
        scheme, params, token68, quoted = _parse(value)
        # Parsed values are valid by construction; only values that are not tokens need adding
        # to ``quoted`` (the constructor's normalisation), which cannot happen for unquoted ones.
        self = cls.__new__(cls)
        object.__setattr__(self, "scheme", scheme)
        object.__setattr__(self, "params", params)
        object.__setattr__(self, "token68", token68)
        object.__setattr__(self, "quoted", quoted)
        return self

    def get(self, name: str) -> str | None:
        """The unquoted value of the param ``name`` (case-insensitive), None if absent."""
        lname = name.lower()
        for key, value in self.params:
            if key.lower() == lname:
                return value
        return None

    def is_quoted(self, name: str) -> bool:
        """True when the param ``name`` is written as a quoted string."""
        return name.lower() in self.quoted

    def with_param(self: _V, name: str, value: str, *, quoted: bool | None = None) -> _V:
        """A copy with ``name`` set to ``value`` (replaced in place, else appended).

        ``quoted`` None keeps the existing quoting (quoted for a new param); values that
        are not tokens are quoted regardless.
        """
        lname = name.lower()
        present = self.get(name) is not None
        if quoted is None:
            quoted = lname in self.quoted or not present
        params = [(name, value) if k.lower() == lname else (k, v) for k, v in self.params]
        if not present:
            params.append((name, value))
        names = self.quoted - {lname}
        return attrs.evolve(self, params=tuple(params), quoted=names | {lname} if quoted else names)

    def _render(self, hidden: frozenset[str], hide_token68: bool) -> str:
        if self.token68 is not None:
            return f"{self.scheme} {'<redacted>' if hide_token68 else self.token68}"
        if not self.params:
            return self.scheme
        items: Iterable[str] = (
            f"{name}=<redacted>"
            if name.lower() in hidden
            else f"{name}={_quote(value) if name.lower() in self.quoted else value}"
            for name, value in self.params
        )
        return f"{self.scheme} {', '.join(items)}"

    def __str__(self) -> str:
        return self._render(frozenset(), hide_token68=False)

    def __repr__(self) -> str:
        text = self._render(self._redacted_params, hide_token68=self._redact_token68)
        return f"{type(self).__name__}({text!r})"


@attrs.frozen(repr=False)
class Challenge(AuthHeaderValue):
    """One WWW-Authenticate or Proxy-Authenticate value (a 401/407 asks for credentials)."""


@attrs.frozen(repr=False)
class Credentials(AuthHeaderValue):
    """One Authorization or Proxy-Authorization value; ``repr()`` hides responses and tokens."""

    _redacted_params: ClassVar[frozenset[str]] = frozenset({"response", "gssapi-data"})
    _redact_token68: ClassVar[bool] = True
