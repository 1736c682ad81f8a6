"""name-addr / addr-spec values with header parameters: From, To, Contact, Route, Record-Route."""

from __future__ import annotations

import re

from ucma.signaling.exceptions import MessageParsingException
from ucma.signaling.sip.grammar import QUOTED_RE, parse_params, parse_uint, quote, skip_ws, unquote
from ucma.signaling.sip.parameters import EMPTY_PARAMETERS, Parameters
from ucma.signaling.sip.uri import SipUri, Uri, mask_password, parse_uri

_TOKEN = r"[A-Za-z0-9\-.!%*_+`'~]+"
# [display-name] <URI>: a quoted string, or tokens separated by whitespace (written so a failed
# match cannot backtrack exponentially), then the URI in angle brackets without whitespace.
_NAME_ADDR_RE = re.compile(
    rf'[ \t]*(?:"([^"\\]*(?:\\.[^"\\]*)*)"[ \t]*|({_TOKEN}(?:[ \t]+{_TOKEN})*)?[ \t]*)<([^<>\s"]+)>',
    re.DOTALL,
)
_ADDR_SPEC_RE = re.compile(r"[^\s;,<>\"]+")


class NameAddress:
    """A URI with optional display name and header parameters (``tag``, ``expires``, ``q``...).

    The URI is parsed on first access, so routing code that only needs a tag pays nothing for it.
    ``*`` (the Contact wildcard) is represented with :attr:`is_wildcard`.
    """

    __slots__ = ("_uri", "_wildcard", "display_name", "parameters", "uri_text")

    def __init__(
        self,
        uri: Uri | str,
        display_name: str | None = None,
        parameters: Parameters = EMPTY_PARAMETERS,
        *,
        wildcard: bool | None = None,
    ) -> None:
        if isinstance(uri, str):
            self.uri_text = uri
            self._uri: Uri | None = None
        else:
            self.uri_text = str(uri)
            self._uri = uri
        self.display_name = display_name
        self.parameters = parameters
        self._wildcard = self.uri_text == "*" if wildcard is None else wildcard

    @property
    def uri(self) -> Uri:
        """The parsed URI (raises :class:`MessageParsingException` if it is malformed)."""
        if self._uri is None:
            if self.is_wildcard:
                raise MessageParsingException("the Contact wildcard '*' has no URI")
            self._uri = parse_uri(self.uri_text)
        return self._uri

    @property
    def sip_uri(self) -> SipUri:
        """The URI, which must be a SIP/SIPS URI."""
        uri = self.uri
        if not isinstance(uri, SipUri):
            raise MessageParsingException("expected a SIP URI", detail=mask_password(self.uri_text[:120]))
        return uri

    @property
    def is_wildcard(self) -> bool:
        """True for ``Contact: *``."""
        return self._wildcard

    @property
    def tag(self) -> str | None:
        """The ``tag`` parameter (From/To)."""
        return self.parameters.get("tag")

    @property
    def expires(self) -> int | None:
        """The ``expires`` parameter (Contact) as a number of seconds."""
        value = self.parameters.get("expires")
        return None if value is None else parse_uint(value, "Contact expires parameter")

    @property
    def q(self) -> float | None:
        """The ``q`` parameter (Contact preference) in 0..1."""
        value = self.parameters.get("q")
        if value is None:
            return None
        if re.fullmatch(r"0(\.[0-9]{0,3})?|1(\.0{0,3})?", value) is None:
            raise MessageParsingException("invalid q parameter", detail=value)
        return float(value)

    def with_parameters(self, parameters: Parameters) -> NameAddress:
        """A copy with other header parameters."""
        uri = self._uri if self._uri is not None else self.uri_text
        return NameAddress(uri, self.display_name, parameters, wildcard=self._wildcard)

    def validate(self) -> None:
        """Parse everything that is parsed lazily (raises :class:`MessageParsingException`)."""
        if not self.is_wildcard:
            _ = self.uri
            if "expires" in self.parameters:
                _ = self.expires
            if "q" in self.parameters:
                _ = self.q

    def __str__(self) -> str:
        if self.is_wildcard:
            return "*"
        name = f"{quote(self.display_name)} " if self.display_name else ""
        return f"{name}<{self.uri_text}>{self.parameters}"

    def __repr__(self) -> str:
        return f"NameAddress({mask_password(str(self))!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, NameAddress):
            return NotImplemented
        return (
            (self.display_name or None) == (other.display_name or None)
            and self.uri_text == other.uri_text
            and self.parameters == other.parameters
        )

    def __hash__(self) -> int:
        return hash((self.display_name or None, self.uri_text, self.parameters))


WILDCARD_CONTACT = NameAddress("*")


def _shown(text: str) -> str:
    """Erroneous input as an exception may show it: truncated, passwords masked."""
    return mask_password(text[:120])


def parse_name_addr_at(text: str, pos: int, what: str) -> tuple[NameAddress, int]:
    """Parse ``(name-addr / addr-spec) *(SEMI param)`` starting at ``pos``; stop at a comma or the end."""
    m = _NAME_ADDR_RE.match(text, pos)
    if m is not None:
        quoted, tokens, uri_text = m.groups()
        if quoted is not None:
            display: str | None = unquote('"' + quoted + '"') if "\\" in quoted else quoted
        else:
            display = " ".join(tokens.split()) if tokens else None
        bracketed = True
        pos = m.end()
    else:
        pos = skip_ws(text, pos)
        if pos >= len(text):
            raise MessageParsingException(f"empty {what}")
        if text[pos] == '"':
            if QUOTED_RE.match(text, pos) is None:
                raise MessageParsingException(
                    f"unterminated quoted display name in {what}", detail=_shown(text)
                )
            raise MessageParsingException(
                f"expected '<URI>' after display name in {what}", detail=_shown(text)
            )
        if text[pos] == "<":
            raise MessageParsingException(f"malformed name-addr in {what}", detail=_shown(text))
        am = _ADDR_SPEC_RE.match(text, pos)
        if am is None:
            raise MessageParsingException(f"malformed {what}", detail=_shown(text))
        uri_text = am.group()
        if "?" in uri_text:
            raise MessageParsingException(
                f"URI with headers must be enclosed in <> in {what}", detail=_shown(text)
            )
        display = None
        bracketed = False
        pos = am.end()
    params, pos = parse_params(text, pos, what)
    parameters = Parameters(params) if params else EMPTY_PARAMETERS
    return NameAddress(uri_text, display, parameters, wildcard=not bracketed and uri_text == "*"), pos


def parse_name_addr(text: str, what: str = "address") -> NameAddress:
    """Parse a single-valued address header (From, To, Refer-To...)."""
    value, pos = parse_name_addr_at(text, 0, what)
    if pos != len(text):
        raise MessageParsingException(f"unexpected text after {what}", detail=_shown(text))
    return value


def parse_name_addr_list(text: str, what: str = "address") -> list[NameAddress]:
    """Parse a comma-separated address list (Contact, Route, Record-Route)."""
    out: list[NameAddress] = []
    pos = 0
    n = len(text)
    while True:
        value, pos = parse_name_addr_at(text, pos, what)
        out.append(value)
        if pos >= n:
            return out
        if text[pos] != ",":
            raise MessageParsingException(f"unexpected text in {what}", detail=_shown(text))
        pos += 1
