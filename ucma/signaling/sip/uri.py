"""SIP, SIPS and tel URIs (RFC 3261 section 19.1, RFC 3966), plus any other absolute URI.

Parsed URIs keep the escaped (wire) form of every part, so ``str(parse_uri(s)) == s`` except that
the scheme is lower-cased (schemes are case-insensitive); :meth:`SipUri.unescaped_user` decodes
the user part.
"""

from __future__ import annotations

import ipaddress
import re
import urllib.parse
from typing import Union

import attrs

from ucma.signaling.exceptions import MessageParsingException
from ucma.signaling.sip.grammar import mask_password
from ucma.signaling.sip.parameters import EMPTY_PARAMETERS, Parameters

_SIP_URI_RE = re.compile(
    r"(?P<scheme>sips?):"
    r"(?:(?P<user>[^:@]*)(?::(?P<password>[^@]*))?@)?"
    r"(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.\-_]+)"
    r"(?::(?P<port>[0-9]{1,5}))?"
    r"(?P<params>;[^?]*)?"
    r"(?:\?(?P<headers>.*))?",
    re.IGNORECASE | re.DOTALL,
)
_ESC = r"%[0-9A-Fa-f]{2}"
_USER_RE = re.compile(rf"(?:[A-Za-z0-9\-_.!~*'()&=+$,;?/]|{_ESC})+")
_PASSWORD_RE = re.compile(rf"(?:[A-Za-z0-9\-_.!~*'()&=+$,]|{_ESC})*")
_PARAMCHARS_RE = re.compile(rf"(?:[A-Za-z0-9\-_.!~*'()\[\]/:&+$]|{_ESC})+")
_HCHARS_RE = re.compile(rf"(?:[A-Za-z0-9\-_.!~*'()\[\]/?:+$]|{_ESC})*")
_HOSTNAME_RE = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9\-_]*[A-Za-z0-9])?\.)*[A-Za-z0-9](?:[A-Za-z0-9\-_]*[A-Za-z0-9])?\.?"
)
_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*")
_TEL_NUMBER_RE = re.compile(r"[0-9A-Fa-f*#+\-.()pPwW]+|%[0-9A-Fa-f]{2}")
_ABS_REST_RE = re.compile(r"[^\s<>\"]+")


def _bad(reason: str, text: str) -> MessageParsingException:
    return MessageParsingException(reason, detail=repr(mask_password(text[:120])))


@attrs.frozen(repr=False)
class SipUri:
    """A ``sip:`` or ``sips:`` URI; every text part is kept escaped, as on the wire."""

    host: str
    user: str | None = None
    scheme: str = "sip"
    password: str | None = attrs.field(default=None, eq=True)
    port: int | None = None
    parameters: Parameters = EMPTY_PARAMETERS
    headers: tuple[tuple[str, str], ...] = ()

    @property
    def secure(self) -> bool:
        """True for ``sips:``."""
        return self.scheme == "sips"

    @property
    def transport(self) -> str | None:
        """The ``transport`` URI parameter, lower-cased."""
        value = self.parameters.get("transport")
        return value.lower() if value is not None else None

    @property
    def unescaped_user(self) -> str | None:
        """The user part with %HH escapes decoded."""
        return None if self.user is None else urllib.parse.unquote(self.user, errors="surrogateescape")

    @property
    def host_port(self) -> str:
        """``host[:port]`` as it appears in the URI."""
        return self.host if self.port is None else f"{self.host}:{self.port}"

    @property
    def address_of_record(self) -> str:
        """``scheme:user@host`` without port, parameters or headers (how AoRs are compared)."""
        user = f"{self.user}@" if self.user is not None else ""
        return f"{self.scheme}:{user}{self.host.lower()}"

    def with_parameters(self, parameters: Parameters) -> SipUri:
        """A copy with other URI parameters."""
        return attrs.evolve(self, parameters=parameters)

    def __str__(self) -> str:
        out = [self.scheme, ":"]
        if self.user is not None:
            out.append(self.user)
            if self.password is not None:
                out += [":", self.password]
            out.append("@")
        out.append(self.host)
        if self.port is not None:
            out += [":", str(self.port)]
        out.append(str(self.parameters))
        if self.headers:
            out.append("?" + "&".join(f"{k}={v}" for k, v in self.headers))
        return "".join(out)

    def __repr__(self) -> str:
        shown = attrs.evolve(self, password="<redacted>") if self.password is not None else self
        return f"SipUri({str(shown)!r})"


@attrs.frozen(repr=False)
class TelUri:
    """A ``tel:`` URI (RFC 3966): the number and its parameters."""

    number: str
    parameters: Parameters = EMPTY_PARAMETERS

    scheme = "tel"

    @property
    def is_global(self) -> bool:
        """True for a global number (``+`` prefixed)."""
        return self.number.startswith("+")

    def __str__(self) -> str:
        return f"tel:{self.number}{self.parameters}"

    def __repr__(self) -> str:
        return f"TelUri({str(self)!r})"


@attrs.frozen(repr=False)
class AbsoluteUri:
    """Any other absolute URI (``urn:``, ``mailto:``, ``http:``...), kept opaque."""

    scheme: str
    rest: str

    def __str__(self) -> str:
        return f"{self.scheme}:{self.rest}"

    def __repr__(self) -> str:
        return f"AbsoluteUri({str(self)!r})"


__all__ = ["AbsoluteUri", "SipUri", "TelUri", "Uri", "mask_password", "parse_sip_uri", "parse_tel_uri", "parse_uri"]

Uri = Union[SipUri, TelUri, AbsoluteUri]  # noqa: UP007  (runtime alias must work on 3.10 too)


def _parse_uri_params(text: str, full: str) -> Parameters:
    items: list[tuple[str, str]] = []
    for part in text[1:].split(";"):
        name, eq, value = part.partition("=")
        if not name or _PARAMCHARS_RE.fullmatch(name) is None:
            raise _bad("invalid URI parameter", full)
        if eq:
            if not value or _PARAMCHARS_RE.fullmatch(value) is None:
                raise _bad(f"invalid value of URI parameter '{name}'", full)
            items.append((name, value))
        else:
            items.append((name, ""))
    return Parameters(items)


def parse_sip_uri(text: str) -> SipUri:
    """Parse a ``sip:``/``sips:`` URI or raise :class:`MessageParsingException`."""
    m = _SIP_URI_RE.fullmatch(text)
    if m is None:
        raise _bad("malformed SIP URI", text)
    user, password, host, port_text, params, headers = m.group("user", "password", "host", "port", "params", "headers")
    if user is not None and _USER_RE.fullmatch(user) is None:
        raise _bad("invalid user part in SIP URI", text)
    if password is not None and _PASSWORD_RE.fullmatch(password) is None:
        raise _bad("invalid password part in SIP URI", text)
    if host[0] == "[":
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise _bad("invalid IPv6 reference in SIP URI", text) from None
    elif _HOSTNAME_RE.fullmatch(host) is None:
        raise _bad("invalid host in SIP URI", text)
    port = None
    if port_text is not None:
        port = int(port_text)
        if port > 65535:
            raise _bad("port out of range in SIP URI", text)
    parameters = _parse_uri_params(params, text) if params else EMPTY_PARAMETERS
    header_items: tuple[tuple[str, str], ...] = ()
    if headers is not None:
        pairs = []
        for part in headers.split("&"):
            name, eq, value = part.partition("=")
            if not name or not eq or _HCHARS_RE.fullmatch(name) is None or _HCHARS_RE.fullmatch(value) is None:
                raise _bad("invalid header part in SIP URI", text)
            pairs.append((name, value))
        header_items = tuple(pairs)
    return SipUri(
        host=host,
        user=user,
        scheme=m.group("scheme").lower(),
        password=password,
        port=port,
        parameters=parameters,
        headers=header_items,
    )


def parse_tel_uri(text: str) -> TelUri:
    """Parse a ``tel:`` URI or raise :class:`MessageParsingException`."""
    body = text[4:]
    number, semicolon, params = body.partition(";")
    if not number or any(_TEL_NUMBER_RE.fullmatch(c) is None for c in re.findall(r"%..|.", number)):
        raise _bad("invalid telephone number in tel URI", text)
    parameters = _parse_uri_params(";" + params, text) if semicolon else EMPTY_PARAMETERS
    return TelUri(number=number, parameters=parameters)


def parse_uri(text: str) -> Uri:
    """Parse any absolute URI: SIP/SIPS and tel get structure, other schemes stay opaque."""
    scheme, colon, rest = text.partition(":")
    if not colon or _SCHEME_RE.fullmatch(scheme) is None:
        raise _bad("URI has no valid scheme", text)
    lower = scheme.lower()
    if lower in ("sip", "sips"):
        return parse_sip_uri(text)
    if lower == "tel":
        return parse_tel_uri(text)
    if not rest or _ABS_REST_RE.fullmatch(rest) is None:
        raise _bad("malformed URI", text)
    return AbsoluteUri(scheme=lower, rest=rest)
