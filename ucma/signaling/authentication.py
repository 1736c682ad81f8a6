"""What the registration and request paths need from an authentication scheme (digest, NTLM...).

An :class:`Authenticator` answers 401/407 challenges and adds credentials to requests; it is
sans-IO and chosen per endpoint from what the server offers.
"""

from __future__ import annotations

from typing import Protocol

from ucma.signaling.sip.message import SipRequest, SipResponse


class Authenticator(Protocol):
    """Answers challenges for one endpoint and authorises the requests it sends."""

    @property
    def protocol_name(self) -> str:
        """The scheme in use once a challenge was answered (``"Digest"``, ``"NTLM"``), else ``""``."""
        ...

    def handle_challenge(self, request: SipRequest, response: SipResponse) -> None:
        """Learn from a 401/407 to ``request``; raise ``AuthenticationException`` when it cannot be answered.

        Raises with ``INVALID_CREDENTIALS`` when the same non-stale challenge comes back after an
        answer (wrong password), ``MISSING_CREDENTIALS`` without credentials, and
        ``NO_COMMON_PROTOCOLS`` when no offered scheme is supported.
        """
        ...

    def authorize(self, request: SipRequest) -> None:
        """Add Authorization/Proxy-Authorization headers for what was learnt (no-op before a challenge)."""
        ...

    def process_success(self, request: SipRequest, response: SipResponse) -> None:
        """See a 2xx to an authorised request (mutual authentication, nonce bookkeeping)."""
        ...

    @property
    def was_challenged(self) -> bool:
        """True once any challenge was answered (UCMA refuses servers that never challenge)."""
        ...
