"""Structured values of the Via and CSeq headers."""

from __future__ import annotations

import re

import attrs

from ucma.signaling.exceptions import MessageParsingException
from ucma.signaling.sip.grammar import parse_params, parse_uint
from ucma.signaling.sip.parameters import EMPTY_PARAMETERS, Parameters

_TOKEN = r"[A-Za-z0-9\-.!%*_+`'~]+"
_VIA_HEAD_RE = re.compile(
    rf"[ \t]*({_TOKEN})[ \t]*/[ \t]*({_TOKEN})[ \t]*/[ \t]*({_TOKEN})[ \t]+"
    r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.\-_]+)(?:[ \t]*:[ \t]*([0-9]{1,5}))?"
)
_CSEQ_RE = re.compile(rf"[ \t]*([0-9]{{1,10}})[ \t]+({_TOKEN})[ \t]*")

#: The magic cookie that marks an RFC 3261 branch (RFC 3261 section 8.1.1.7).
BRANCH_MAGIC_COOKIE = "z9hG4bK"


@attrs.frozen(repr=False)
class Via:
    """One Via value: ``SIP/2.0/<transport> host[:port];params``."""

    transport: str
    host: str
    port: int | None = None
    parameters: Parameters = EMPTY_PARAMETERS
    protocol_name: str = "SIP"
    protocol_version: str = "2.0"

    @property
    def branch(self) -> str | None:
        """The ``branch`` parameter (transaction id)."""
        return self.parameters.get("branch")

    @property
    def received(self) -> str | None:
        """The ``received`` parameter: the source address the next hop saw."""
        return self.parameters.get("received")

    @property
    def rport(self) -> int | None:
        """The ``rport`` value (RFC 3581) filled in by the next hop, None if absent or empty."""
        value = self.parameters.get("rport")
        return parse_uint(value, "rport", 65535) if value else None

    @property
    def maddr(self) -> str | None:
        """The ``maddr`` parameter."""
        return self.parameters.get("maddr")

    @property
    def ttl(self) -> int | None:
        """The ``ttl`` parameter."""
        value = self.parameters.get("ttl")
        return None if value is None else parse_uint(value, "Via ttl", 255)

    @property
    def sent_by(self) -> str:
        """``host[:port]``."""
        return self.host if self.port is None else f"{self.host}:{self.port}"

    @property
    def is_rfc3261_branch(self) -> bool:
        """True when the branch carries the RFC 3261 magic cookie (else RFC 2543 matching applies)."""
        branch = self.branch
        return branch is not None and branch.startswith(BRANCH_MAGIC_COOKIE)

    def validate(self) -> None:
        """Check the parameters whose values have a grammar (raises :class:`MessageParsingException`)."""
        _ = self.rport
        _ = self.ttl
        if self.branch == "":
            raise MessageParsingException("empty Via branch")

    def __str__(self) -> str:
        return f"{self.protocol_name}/{self.protocol_version}/{self.transport} {self.sent_by}{self.parameters}"

    def __repr__(self) -> str:
        return f"Via({str(self)!r})"


def parse_via_at(text: str, pos: int) -> tuple[Via, int]:
    """Parse one Via value at ``pos``; return it and the index of the next comma or the end."""
    m = _VIA_HEAD_RE.match(text, pos)
    if m is None:
        raise MessageParsingException("malformed Via", detail=text[:120])
    name, version, transport, host, port_text = m.groups()
    port = None
    if port_text is not None:
        port = int(port_text)
        if port > 65535:
            raise MessageParsingException("Via port out of range", detail=text[:120])
    params, end = parse_params(text, m.end(), "Via")
    return (
        Via(
            transport=transport.upper(),
            host=host,
            port=port,
            parameters=Parameters(params) if params else EMPTY_PARAMETERS,
            protocol_name=name.upper(),
            protocol_version=version,
        ),
        end,
    )


def parse_via_list(text: str) -> list[Via]:
    """Parse every Via value of one header field (comma-separated)."""
    out: list[Via] = []
    pos = 0
    n = len(text)
    while True:
        via, pos = parse_via_at(text, pos)
        out.append(via)
        if pos >= n:
            return out
        if text[pos] != ",":
            raise MessageParsingException("unexpected text in Via", detail=text[:120])
        pos += 1


@attrs.frozen
class CSeq:
    """``CSeq: <number> <method>``."""

    number: int
    method: str

    def __str__(self) -> str:
        return f"{self.number} {self.method}"


def parse_cseq(text: str) -> CSeq:
    """Parse a CSeq value; the number must fit in 32 bits (RFC 3261 section 8.1.1.5)."""
    m = _CSEQ_RE.fullmatch(text)
    if m is None:
        raise MessageParsingException("malformed CSeq (or number over 32 bits)", detail=text[:80])
    number = int(m.group(1))
    if number > 0xFFFFFFFF:
        raise MessageParsingException("CSeq number out of range", detail=text[:80])
    return CSeq(number, m.group(2))
