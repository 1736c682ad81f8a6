"""``LocalEndpoint`` states, transition reasons and the event data that reports them."""

from __future__ import annotations

import enum

import attrs

from ucma.runtime.events import EventArgs
from ucma.signaling.message_data import SipMessageData


class LocalEndpointState(enum.Enum):
    """UCMA ``LocalEndpointState``."""

    IDLE = 0
    ESTABLISHING = 1
    ESTABLISHED = 2
    REESTABLISHING = 3
    DRAINING = 4
    TERMINATING = 5
    TERMINATED = 6


class LocalEndpointStateTransitionReason(enum.Enum):
    """UCMA ``LocalEndpointStateTransitionReason``."""

    NONE = 0
    TOO_MANY_ACTIVE_ENDPOINTS = 1
    OWNER_DISABLED_OR_REMOVED = 2
    REGISTRATION_REFRESH_SUCCEEDED = 3
    REGISTRATION_REFRESH_FAILED = 4
    SERVER_DISCOVERY_FAILED = 5


@attrs.frozen
class LocalEndpointStateChangedEventArgs(EventArgs):
    """``state_changed`` data: previous and new state, why, and the message that caused it (if any)."""

    previous_state: LocalEndpointState
    state: LocalEndpointState
    reason: LocalEndpointStateTransitionReason = LocalEndpointStateTransitionReason.NONE
    message_data: SipMessageData | None = None


@attrs.frozen
class RepublishingRequiredEventArgs(EventArgs):
    """``republishing_required`` data: republish everything, or only some categories when partial."""

    partial_republish: bool
