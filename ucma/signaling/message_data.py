"""UCMA's read-only views of a received message (``SipMessageData`` / ``SipResponseData``)."""

from __future__ import annotations

from ucma.signaling.sip.message import SipMessage, SipResponse


class SipMessageData:
    """Headers and body of a received SIP message, as UCMA hands them to applications."""

    __slots__ = ("message",)

    def __init__(self, message: SipMessage) -> None:
        self.message = message

    @property
    def signaling_headers(self) -> list[tuple[str, str]]:
        """Every header line as ``(name, value)`` in wire order."""
        return list(self.message.headers)

    @property
    def content_type(self) -> str | None:
        """The body's media type, lower-cased, without parameters."""
        return self.message.content_type

    def get_message_body(self) -> bytes:
        """The raw body."""
        return self.message.body

    def get_message_body_string(self) -> str:
        """The body decoded as UTF-8 (undecodable bytes replaced)."""
        return self.message.body.decode("utf-8", "replace")


class SipResponseData(SipMessageData):
    """A received response (what ``end_establish`` returns and failure exceptions carry)."""

    __slots__ = ()

    message: SipResponse

    def __init__(self, message: SipResponse) -> None:
        super().__init__(message)

    @property
    def response_code(self) -> int:
        """The status code."""
        return self.message.status_code

    @property
    def response_text(self) -> str:
        """The reason phrase."""
        return self.message.reason_phrase

    def __repr__(self) -> str:
        return f"<SipResponseData {self.response_code} {self.response_text}>"
