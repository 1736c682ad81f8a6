"""ucma: a Python port of Microsoft's Unified Communications Managed API user-endpoint stack.

UCMA class and enum names are kept; members are snake_case (``BeginEstablish`` ->
``begin_establish``) and enum members UPPER_SNAKE.
"""

from __future__ import annotations

from ucma.collaboration import (
    ClientPlatformSettings,
    CollaborationPlatform,
    LocalEndpointState,
    LocalEndpointStateChangedEventArgs,
    LocalEndpointStateTransitionReason,
    NetworkCredential,
    RegistrationStateChangedEventArgs,
    RepublishingRequiredEventArgs,
    ServerPlatformSettings,
    SipAuthenticationProtocols,
    SipEndpoint,
    UserEndpoint,
    UserEndpointSettings,
)
from ucma.runtime.async_result import AsyncResult
from ucma.runtime.connections import SipTransportType
from ucma.runtime.events import EventArgs, StateChangedEventArgs
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

__version__ = "0.1.0"

__all__ = [
    "ArgumentException",
    "ArgumentNullException",
    "AsyncResult",
    "AuthenticationException",
    "AuthenticationFailureReason",
    "ClientPlatformSettings",
    "CollaborationPlatform",
    "ConnectionFailureException",
    "EventArgs",
    "FailureRequestException",
    "FailureResponseException",
    "InvalidOperationException",
    "InvalidOperationReason",
    "LocalEndpointState",
    "LocalEndpointStateChangedEventArgs",
    "LocalEndpointStateTransitionReason",
    "MessageParsingException",
    "NetworkCredential",
    "OperationFailureException",
    "OperationFailureReason",
    "OperationTimeoutException",
    "PublishSubscribeException",
    "RealTimeException",
    "RealTimeInvalidOperationException",
    "RegisterException",
    "RegistrationState",
    "RegistrationStateChangedEventArgs",
    "RegistrationTransitionReason",
    "RepublishingRequiredEventArgs",
    "ServerPlatformSettings",
    "ServerPolicyException",
    "SipAuthenticationProtocols",
    "SipEndpoint",
    "SipMessageData",
    "SipResponseData",
    "SipTransportType",
    "StateChangedEventArgs",
    "TlsFailureException",
    "TlsFailureReason",
    "UserEndpoint",
    "UserEndpointSettings",
    "__version__",
]
