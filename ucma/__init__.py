"""ucma: a Python port of Microsoft's Unified Communications Managed API user-endpoint stack.

UCMA class and enum names are kept; members are snake_case (``BeginEstablish`` ->
``begin_establish``) and enum members UPPER_SNAKE.
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

__version__ = "0.1.0"

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
    "MessageParsingException",
    "OperationFailureException",
    "OperationFailureReason",
    "OperationTimeoutException",
    "PublishSubscribeException",
    "RealTimeException",
    "RealTimeInvalidOperationException",
    "RegisterException",
    "ServerPolicyException",
    "TlsFailureException",
    "TlsFailureReason",
    "__version__",
]
