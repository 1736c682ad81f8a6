"""UCMA's ``Microsoft.Rtc.Collaboration`` object model: platform, endpoints and their settings."""

from __future__ import annotations

from ucma.collaboration.credentials import NetworkCredential
from ucma.collaboration.endpoint_settings import UserEndpointSettings
from ucma.collaboration.endpoint_states import (
    LocalEndpointState,
    LocalEndpointStateChangedEventArgs,
    LocalEndpointStateTransitionReason,
    RepublishingRequiredEventArgs,
)
from ucma.collaboration.platform import CollaborationPlatform
from ucma.collaboration.platform_settings import ClientPlatformSettings, ServerPlatformSettings
from ucma.collaboration.sip_endpoint import (
    RegistrationStateChangedEventArgs,
    SipAuthenticationProtocols,
    SipEndpoint,
)
from ucma.collaboration.user_endpoint import UserEndpoint

__all__ = [
    "ClientPlatformSettings",
    "CollaborationPlatform",
    "LocalEndpointState",
    "LocalEndpointStateChangedEventArgs",
    "LocalEndpointStateTransitionReason",
    "NetworkCredential",
    "RegistrationStateChangedEventArgs",
    "RepublishingRequiredEventArgs",
    "ServerPlatformSettings",
    "SipAuthenticationProtocols",
    "SipEndpoint",
    "UserEndpoint",
    "UserEndpointSettings",
]
