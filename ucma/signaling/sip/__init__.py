"""SIP wire model, sans-IO: URIs, header values, messages, parsers and builders."""

from __future__ import annotations

from ucma.signaling.sip.address import WILDCARD_CONTACT, NameAddress, parse_name_addr, parse_name_addr_list
from ucma.signaling.sip.builders import make_request, make_response
from ucma.signaling.sip.header_values import BRANCH_MAGIC_COOKIE, CSeq, Via, parse_cseq, parse_via_list
from ucma.signaling.sip.headers import COMPACT_FORMS, Headers, canonical_name, header_key
from ucma.signaling.sip.identifiers import new_branch, new_call_id, new_epid, new_tag
from ucma.signaling.sip.message import SipMessage, SipRequest, SipResponse
from ucma.signaling.sip.parameters import Parameters
from ucma.signaling.sip.parser import DEFAULT_LIMITS, KeepAlive, ParserLimits, StreamParser, parse_message
from ucma.signaling.sip.reason_phrases import reason_phrase_for
from ucma.signaling.sip.uri import AbsoluteUri, SipUri, TelUri, Uri, parse_sip_uri, parse_uri

__all__ = [
    "BRANCH_MAGIC_COOKIE",
    "COMPACT_FORMS",
    "DEFAULT_LIMITS",
    "WILDCARD_CONTACT",
    "AbsoluteUri",
    "CSeq",
    "Headers",
    "KeepAlive",
    "NameAddress",
    "Parameters",
    "ParserLimits",
    "SipMessage",
    "SipRequest",
    "SipResponse",
    "SipUri",
    "StreamParser",
    "TelUri",
    "Uri",
    "Via",
    "canonical_name",
    "header_key",
    "make_request",
    "make_response",
    "new_branch",
    "new_call_id",
    "new_epid",
    "new_tag",
    "parse_cseq",
    "parse_message",
    "parse_name_addr",
    "parse_name_addr_list",
    "parse_sip_uri",
    "parse_uri",
    "parse_via_list",
    "reason_phrase_for",
]
