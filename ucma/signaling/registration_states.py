"""Registration states of a ``SipEndpoint`` and why they change (``Microsoft.Rtc.Signaling``)."""

from __future__ import annotations

import enum


class RegistrationState(enum.Enum):
    """UCMA ``RegistrationState``."""

    UNREGISTERED = 0
    REGISTERING = 1
    REGISTERED = 2
    UNREGISTERING = 3


class RegistrationTransitionReason(enum.Enum):
    """UCMA ``RegistrationTransitionReason`` (``RegisterationRefresh`` keeps its meaning, not its typo)."""

    NONE = 0
    TOO_MANY_ACTIVE_ENDPOINT = 1
    USER_CHANGED = 2
    USER_MOVED = 3
    TIMEOUT = 4
    UNAUTHORIZED_ACCESS = 5
    CREDENTIALS = 6
    AUTHENTICATION = 7
    CONNECTION_FAILURE = 8
    CONNECTION_DROPPED = 9
    PREFERRED_REGISTRAR_CHANGED = 10
    REGISTRATION_REFRESH = 11
    USER_SERVICES_UNAVAILABLE = 12
