"""Secret-free SIP text for logs: credentials in authentication headers become ``<redacted>``.

:func:`redact` keeps every header name, every auth scheme and every harmless parameter (user
name, realm, nonce, URI...), so a trace still shows who authenticated how; what is derived from a
password or grants access is hidden: the whole token68 of Authorization / Proxy-Authorization
(Basic, Bearer, Negotiate...), and in any authentication header the values of ``response``,
``gssapi-data``, ``crand``, ``cnum``, ``rspauth``, ``srand`` and ``snum``.  A credentials header
that cannot be parsed is hidden entirely after its scheme, so malformed input never leaks.
"""

from __future__ import annotations

import re

from ucma.signaling.exceptions import MessageParsingException
from ucma.signaling.sip.auth_headers import AuthHeaderValue

__all__ = ["REDACTED", "SECRET_AUTH_PARAMS", "redact", "redact_auth_value"]

REDACTED = "<redacted>"
"""What a hidden value is replaced with."""

SECRET_AUTH_PARAMS = frozenset({"response", "gssapi-data", "crand", "cnum", "rspauth", "srand", "snum"})
"""Auth-param names whose values never reach a log (lower case)."""

_CREDENTIALS_HEADERS = frozenset({"authorization", "proxy-authorization"})
_AUTH_HEADERS = _CREDENTIALS_HEADERS | frozenset(
    {"www-authenticate", "proxy-authenticate", "authentication-info", "proxy-authentication-info"}
)
_HEADER_LINE_RE = re.compile(r"([A-Za-z0-9\-.!%*_+`'~]+)([ \t]*:[ \t]*)(.*)", re.DOTALL)
_SCHEME_RE = re.compile(r"[ \t]*([A-Za-z0-9\-.!%*_+`'~]+)")
_TOKEN_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")
_QUOTE_NEEDED_RE = re.compile(r'["\\]')
_LINE_RE = re.compile(r"[^\n]*\n|[^\n]+")


def redact(text: str) -> str:
    """``text`` (one or more SIP messages, or single header lines) with credentials replaced.

    Works line by line; folded continuation lines of an authentication header are joined to it
    first.  Lines that are not authentication headers come back unchanged.
    """
    if not _mentions_auth(text):
        return text
    # Split on LF only: other line-breaking characters must not cut a secret off its header.
    lines = _LINE_RE.findall(text)
    out: list[str] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        match = _HEADER_LINE_RE.fullmatch(_strip_eol(line))
        if match is None or match.group(1).lower() not in _AUTH_HEADERS:
            out.append(line)
            index += 1
            continue
        # Gather continuation lines (RFC 3261 section 7.3.1 folding) into one logical value.
        value = match.group(3)
        eol = line[len(_strip_eol(line)) :]
        index += 1
        while index < len(lines) and lines[index][:1] in (" ", "\t"):
            value += " " + _strip_eol(lines[index]).lstrip(" \t")
            eol = lines[index][len(_strip_eol(lines[index])) :]
            index += 1
        name = match.group(1)
        credentials = name.lower() in _CREDENTIALS_HEADERS
        out.append(f"{name}{match.group(2)}{redact_auth_value(value, credentials=credentials)}{eol}")
    return "".join(out)


def redact_auth_value(value: str, *, credentials: bool = True) -> str:
    """One authentication header value with its secrets hidden.

    ``credentials`` marks an Authorization / Proxy-Authorization value: its token68 is hidden
    too, and if it does not parse everything after the scheme is.  For challenges and
    Authentication-Info an unparseable value is hidden the same way, to be safe.
    """
    try:
        parsed = AuthHeaderValue.parse(value)
    except MessageParsingException:
        return _hide_after_scheme(value)
    if parsed.token68 is not None:
        return f"{parsed.scheme} {REDACTED}" if credentials else value
    if not parsed.params:
        return value
    items = []
    for name, param in parsed.params:
        if name.lower() in SECRET_AUTH_PARAMS:
            items.append(f"{name}={REDACTED}")
        elif parsed.is_quoted(name) or _TOKEN_RE.fullmatch(param) is None:
            items.append(f"{name}={_quote(param)}")
        else:
            items.append(f"{name}={param}")
    return f"{parsed.scheme} {', '.join(items)}"


def _quote(value: str) -> str:
    return '"' + _QUOTE_NEEDED_RE.sub(lambda m: "\\" + m.group(), value) + '"'


def _hide_after_scheme(value: str) -> str:
    match = _SCHEME_RE.match(value)
    if match is None:
        return REDACTED
    return f"{match.group(1)} {REDACTED}"


def _strip_eol(line: str) -> str:
    return line.rstrip("\r\n")


def _mentions_auth(text: str) -> bool:
    lowered = text.lower()
    return any(marker in lowered for marker in ("authoriz", "authenticat"))
