"""UCMA's ``Microsoft.Rtc.Signaling`` layer: SIP as sans-IO code, plus the exception tree.

Stable entry points used by tools outside the package: :func:`parse_message` and
:class:`StreamParser`.
"""

from __future__ import annotations

from ucma.signaling.exceptions import (
    ArgumentException,
    ArgumentNullException,
    AuthenticationException,
    AuthenticationFailureReason,
    ConnectionFailureException,
    FailureRequestException,
    FailureResponseException,
    InvalidOperationException,
    InvalidOperationReason,
    MessageParsingException,
    OperationFailureException,
    OperationFailureReason,
    OperationTimeoutException,
    PublishSubscribeException,
    RealTimeException,
    RealTimeInvalidOperationException,
    RegisterException,
    ServerPolicyException,
    TlsFailureException,
    TlsFailureReason,
)
from ucma.signaling.message_data import SipMessageData, SipResponseData
from ucma.signaling.registration_states import RegistrationState, RegistrationTransitionReason
from ucma.signaling.sip import (
    KeepAlive,
    ParserLimits,
    SipMessage,
    SipRequest,
    SipResponse,
    StreamParser,
    parse_message,
)

__all__ = [
    "ArgumentException",
    "ArgumentNullException",
    "AuthenticationException",
    "AuthenticationFailureReason",
    "ConnectionFailureException",
    "FailureRequestException",
    "FailureResponseException",
    "InvalidOperationException",
    "InvalidOperationReason",
    "KeepAlive",
    "MessageParsingException",
    "OperationFailureException",
    "OperationFailureReason",
    "OperationTimeoutException",
    "ParserLimits",
    "PublishSubscribeException",
    "RealTimeException",
    "RealTimeInvalidOperationException",
    "RegisterException",
    "RegistrationState",
    "RegistrationTransitionReason",
    "ServerPolicyException",
    "SipMessage",
    "SipMessageData",
    "SipRequest",
    "SipResponse",
    "SipResponseData",
    "StreamParser",
    "TlsFailureException",
    "TlsFailureReason",
    "parse_message",
]
