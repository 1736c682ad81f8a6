"""Microsoft's ``ms-diagnostics`` header (UCMA ``DiagnosticHeader``): ``ErrorId;reason="...";source="..."``."""

from __future__ import annotations

import attrs

from ucma.signaling.exceptions import MessageParsingException
from ucma.signaling.sip.grammar import parse_params, parse_uint
from ucma.signaling.sip.message import SipMessage
from ucma.signaling.sip.parameters import Parameters

#: Header names in the order UCMA prefers them.
DIAGNOSTIC_HEADER_NAMES = ("ms-diagnostics", "ms-diagnostics-public", "ms-client-diagnostics")


@attrs.frozen
class DiagnosticHeader:
    """A parsed diagnostic header: error code, reason, source and the other attributes."""

    header_name: str
    error_code: int
    reason: str = ""
    source: str = ""
    attributes: tuple[tuple[str, str], ...] = ()

    def get_value(self, name: str) -> str | None:
        """Any attribute by name (case-insensitive), including reason and source."""
        lname = name.lower()
        if lname == "reason":
            return self.reason
        if lname == "source":
            return self.source
        return next((v for k, v in self.attributes if k.lower() == lname), None)

    @classmethod
    def parse(cls, header_name: str, value: str) -> DiagnosticHeader:
        """Parse one header value; raise :class:`MessageParsingException` when malformed."""
        code_text, _, _ = value.partition(";")
        code = parse_uint(code_text, f"{header_name} error code")
        params, end = parse_params(value, len(code_text), header_name)
        if end != len(value):
            raise MessageParsingException(f"invalid {header_name}", detail=value[:120])
        p = Parameters(params)
        others = tuple((k, p.get(k) or "") for k, _ in params if k.lower() not in ("reason", "source"))
        return cls(header_name, code, p.get("reason") or "", p.get("source") or "", others)

    @classmethod
    def from_message(cls, message: SipMessage) -> DiagnosticHeader | None:
        """The first well-formed diagnostic header of ``message`` (ms-diagnostics preferred), or None."""
        for name in DIAGNOSTIC_HEADER_NAMES:
            for value in message.headers.get_all(name):
                try:
                    return cls.parse(name, value)
                except MessageParsingException:
                    continue
        return None
