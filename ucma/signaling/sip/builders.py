"""Construct requests and responses with the headers RFC 3261 requires, copied correctly."""

from __future__ import annotations

import re
from collections.abc import Iterable

from ucma.signaling.exceptions import ArgumentException, MessageParsingException
from ucma.signaling.sip.address import NameAddress
from ucma.signaling.sip.header_values import Via
from ucma.signaling.sip.headers import Headers
from ucma.signaling.sip.message import CALL_ID_RE, SipRequest, SipResponse, is_valid_method
from ucma.signaling.sip.reason_phrases import reason_phrase_for
from ucma.signaling.sip.uri import Uri, parse_uri

_CONTROL_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def make_request(
    method: str,
    request_uri: Uri | str,
    *,
    via: Via,
    from_header: NameAddress,
    to_header: NameAddress,
    call_id: str,
    cseq: int,
    max_forwards: int = 70,
    contact: NameAddress | None = None,
    headers: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
    content_type: str | None = None,
) -> SipRequest:
    """A request with Via, Max-Forwards, From, To, Call-ID, CSeq (and Contact) in RFC order."""
    if not is_valid_method(method):
        raise ArgumentException(f"invalid SIP method {method!r}", "method")
    if not 0 <= cseq < 2**31:
        raise ArgumentException("CSeq must be in 0..2**31-1", "cseq")
    if not 0 <= max_forwards <= 255:
        raise ArgumentException("Max-Forwards must be in 0..255", "max_forwards")
    if CALL_ID_RE.fullmatch(call_id) is None:
        raise ArgumentException("Call-ID must be word[@word] without spaces", "call_id")
    if isinstance(request_uri, str):
        try:
            parse_uri(request_uri)
        except MessageParsingException as exc:
            raise ArgumentException(f"invalid Request-URI: {exc}", "request_uri") from None
    if body and content_type is None:
        raise ArgumentException("a body needs a content type", "content_type")
    h = Headers()
    h.add("Via", str(via))
    h.add("Max-Forwards", str(max_forwards))
    h.add("From", str(from_header))
    h.add("To", str(to_header))
    h.add("Call-ID", call_id)
    h.add("CSeq", f"{cseq} {method}")
    if contact is not None:
        h.add("Contact", str(contact))
    for name, value in headers:
        h.add(name, value)
    if content_type is not None:
        h.add("Content-Type", content_type)
    return SipRequest(method, request_uri, h, body)


def make_response(
    request: SipRequest,
    status_code: int,
    reason_phrase: str | None = None,
    *,
    to_tag: str | None = None,
    headers: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
    content_type: str | None = None,
) -> SipResponse:
    """A response to ``request`` (RFC 3261 section 8.2.6.2).

    Copies every Via line in order, From, Call-ID and CSeq as received, and To with ``to_tag``
    added when the request's To has none (a 100 never gets a tag). Record-Route is copied for
    dialog-creating responses, Timestamp for 100 Trying.
    """
    if not 100 <= status_code <= 699:
        raise ArgumentException("status code must be in 100..699", "status_code")
    if reason_phrase is not None and _CONTROL_RE.search(reason_phrase) is not None:
        raise ArgumentException("reason phrase must not contain CR, LF or control characters", "reason_phrase")
    if body and content_type is None:
        raise ArgumentException("a body needs a content type", "content_type")
    src = request.headers
    h = Headers()
    for via in src.get_all("via"):
        h.add("Via", via)
    for key, name in (("from", "From"), ("to", "To"), ("call-id", "Call-ID"), ("cseq", "CSeq")):
        value = src.get(key)
        if value is None:
            raise ArgumentException(f"request has no {name} header", "request")
        if key == "to" and to_tag is not None and status_code != 100 and request.to_header.tag is None:
            value = str(request.to_header.with_parameters(request.to_header.parameters.with_param("tag", to_tag)))
        h.add(name, value)
    if 100 < status_code < 300 and request.method in ("INVITE", "SUBSCRIBE", "REFER"):
        for rr in src.get_all("record-route"):
            h.add("Record-Route", rr)
    if status_code == 100:
        for ts in src.get_all("timestamp"):
            h.add("Timestamp", ts)
    for name, value in headers:
        h.add(name, value)
    if content_type is not None:
        h.add("Content-Type", content_type)
    return SipResponse(
        status_code, reason_phrase if reason_phrase is not None else reason_phrase_for(status_code), h, body
    )
