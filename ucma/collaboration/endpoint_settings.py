"""``UserEndpointSettings``: who the endpoint is, which registrar it uses, and how hard it retries."""

from __future__ import annotations

from collections.abc import Sequence

from ucma.collaboration.credentials import NetworkCredential
from ucma.signaling.exceptions import ArgumentException
from ucma.signaling.sip.uri import SipUri, parse_uri

#: Registration retries after a failed refresh or a connection drop before the endpoint is
#: terminated; with the default back-off this spans about two minutes, as UCMA's "a few minutes".
DEFAULT_MAX_REGISTER_RETRIES = 5


def parse_owner_uri(owner_uri: str) -> SipUri:
    """The owner URI as a SIP URI with a user part, or ArgumentException saying what is wrong."""
    try:
        uri = parse_uri(owner_uri)
    except Exception as exc:
        raise ArgumentException(f"owner URI {owner_uri!r} is not a valid URI: {exc}", "owner_uri") from None
    if not isinstance(uri, SipUri) or not uri.user:
        raise ArgumentException(f"owner URI {owner_uri!r} must be a sip: or sips: URI with a user", "owner_uri")
    return uri


class UserEndpointSettings:
    """Settings of one ``UserEndpoint`` (UCMA ``UserEndpointSettings``)."""

    def __init__(self, owner_uri: str, server_name: str | None = None, server_port: int | None = None) -> None:
        self._owner = parse_owner_uri(owner_uri)
        self.owner_uri = owner_uri
        if server_port is not None and not 0 < server_port <= 65535:
            raise ArgumentException("server_port must be in 1..65535", "server_port")
        self.server_name = server_name if server_name is not None else self._owner.host
        self.server_port = server_port
        self.credential: NetworkCredential | None = None
        self.endpoint_id: str | None = None
        self.max_register_retries = DEFAULT_MAX_REGISTER_RETRIES
        #: Seconds before the first re-registration attempt after a drop; doubles per attempt up to 60 s.
        self.register_retry_delay = 5.0
        #: Registration interval asked for; the registrar may grant less (or more, with 423).
        self.requested_registration_expires = 3600
        #: Seconds of idle time between RFC 5626 CRLF keep-alives on TCP/TLS (server hint wins).
        self.keep_alive_interval = 30.0
        self.maximum_register_redirection_attempts = 3
        self.additional_headers: Sequence[tuple[str, str]] = ()
        self.endpoint_user_agent = ""
        self.automatic_presence_publication_enabled = False

    @property
    def owner_sip_uri(self) -> SipUri:
        """The parsed owner URI."""
        return self._owner
