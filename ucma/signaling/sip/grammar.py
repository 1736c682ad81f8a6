"""RFC 3261 section 25 lexical pieces shared by the header-value parsers.

All functions work on already-unfolded header text (the parser replaces folding with a single
space) and raise :class:`MessageParsingException` with a specific reason on bad input.
"""

from __future__ import annotations

import re

from ucma.signaling.exceptions import MessageParsingException

TOKEN_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~")
WHITESPACE = " \t"

TOKEN_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")
# Quoted string body: any char but '"' and '\\', or a backslash escape of one char.
QUOTED_RE = re.compile(r'"([^"\\]*(?:\\.[^"\\]*)*)"', re.DOTALL)


_PASSWORD_IN_TEXT_RE = re.compile(r"(sips?:[^:@\s;?<>\"]*):[^@\s<>\"]*@", re.IGNORECASE)
_QUOTE_ESCAPES_RE = re.compile(r'["\\\x00-\x09\x0b\x0c\x0e-\x1f\x7f]')


def mask_password(text: str) -> str:
    """``text`` with the password of any ``sip:user:password@`` replaced, for logs and errors."""
    return _PASSWORD_IN_TEXT_RE.sub(r"\1:<redacted>@", text) if ":" in text and "@" in text else text


def is_token(text: str) -> bool:
    """True when ``text`` is a non-empty RFC 3261 token."""
    return TOKEN_RE.fullmatch(text) is not None


def require_token(text: str, what: str) -> str:
    """Return ``text`` if it is a token, else raise naming ``what``."""
    if TOKEN_RE.fullmatch(text) is None:
        raise MessageParsingException(f"invalid {what}", detail=repr(text[:80]))
    return text


def unquote(text: str) -> str:
    """Strip surrounding quotes and resolve backslash escapes; unquoted text is returned as is."""
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        inner = text[1:-1]
        if "\\" in inner:
            return re.sub(r"\\(.)", r"\1", inner, flags=re.DOTALL)
        return inner
    return text


def quote(text: str) -> str:
    """Make a quoted-string of ``text`` (escaping quotes and backslashes)."""
    return '"' + _QUOTE_ESCAPES_RE.sub(lambda m: "\\" + m.group(), text) + '"'


def skip_ws(text: str, pos: int) -> int:
    """Index of the first non-whitespace character at or after ``pos``."""
    n = len(text)
    while pos < n and text[pos] in WHITESPACE:
        pos += 1
    return pos


_PARAM_ITEM = (
    r"[ \t]*;[ \t]*([A-Za-z0-9\-.!%*_+`'~]+)"
    r"(?:[ \t]*=[ \t]*(\"[^\"\\]*(?:\\.[^\"\\]*)*\"|\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-.!%*_+`'~:]+))?"
)
_PARAM_ITEM_RE = re.compile(_PARAM_ITEM, re.DOTALL)
# The same item without capturing groups, repeated: finds where a parameter list ends in one call.
_PARAM_LIST_RE = re.compile("(?:" + _PARAM_ITEM.replace("(", "(?:").replace("(?:?:", "(?:") + r")*[ \t]*", re.DOTALL)


def parse_params(text: str, pos: int, what: str) -> tuple[list[tuple[str, str]], int]:
    """Parse ``*( SEMI generic-param )`` from ``pos``; stop at end of text or at a top-level comma.

    Returns the ``(name, raw_value)`` pairs (quoted values keep their quotes so they
    serialise unchanged; a flag parameter has ``""``) and the index where parsing stopped.
    """
    m = _PARAM_LIST_RE.match(text, pos)
    end = m.end() if m is not None else pos
    if end < len(text) and text[end] in ';="':
        rest = text[end:]
        if rest[0] == '"' or rest.count('"') % 2:
            raise MessageParsingException(f"unterminated quoted string in {what}", detail=mask_password(text[:120]))
        raise MessageParsingException(f"empty or invalid parameter in {what}", detail=mask_password(text[:120]))
    if ";" not in text[pos:end]:
        return [], end
    return _PARAM_ITEM_RE.findall(text, pos, end), end


def split_commas(text: str) -> list[str]:
    """Split a header value at top-level commas (outside quotes and ``<...>``), stripping each part."""
    if '"' not in text and "<" not in text:
        return [p.strip() for p in text.split(",")]
    parts: list[str] = []
    start = 0
    i = 0
    n = len(text)
    in_angle = False
    while i < n:
        c = text[i]
        if c == '"':
            m = QUOTED_RE.match(text, i)
            if m is None:
                raise MessageParsingException("unterminated quoted string", detail=mask_password(text[:120]))
            i = m.end()
            continue
        if c == "<":
            in_angle = True
        elif c == ">":
            in_angle = False
        elif c == "," and not in_angle:
            parts.append(text[start:i].strip())
            start = i + 1
        i += 1
    parts.append(text[start:].strip())
    return parts


def parse_token_list(text: str, what: str) -> list[str]:
    """Parse a comma-separated list of tokens (Allow, Supported, Require, ...); empty text gives []."""
    if not text.strip():
        return []
    items = [p.strip() for p in text.split(",")]
    for item in items:
        require_token(item, what)
    return items


def parse_uint(text: str, what: str, maximum: int = 2**32 - 1) -> int:
    """Parse ``1*DIGIT`` with an upper bound (RFC 4475 overlarge scalars must be refused)."""
    text = text.strip(WHITESPACE)
    if not text.isdigit() or not text.isascii() or len(text) > 20:
        raise MessageParsingException(f"invalid {what}", detail=repr(text[:40]))
    value = int(text)
    if value > maximum:
        raise MessageParsingException(f"{what} out of range", detail=text)
    return value
