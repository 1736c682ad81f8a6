"""The digest scheme behind the :class:`~ucma.signaling.authentication.Authenticator` protocol.

Remembers the last challenge per header (401 -> Authorization, 407 -> Proxy-Authorization) and
answers it on every later request, counting nonce uses, so refreshes are authorised without an
extra round trip while the server accepts the nonce.
"""

from __future__ import annotations

from ucma.signaling.digest import ChallengeVerdict, DigestSession, select_challenge
from ucma.signaling.exceptions import AuthenticationException, AuthenticationFailureReason, MessageParsingException
from ucma.signaling.sip.auth_headers import Challenge, Credentials
from ucma.signaling.sip.message import SipRequest, SipResponse

_HEADERS = {401: ("WWW-Authenticate", "Authorization"), 407: ("Proxy-Authenticate", "Proxy-Authorization")}


class DigestAuthenticator:
    """Digest (RFC 7616) credentials of one endpoint; never reveals the password."""

    def __init__(self, username: str, password: str, realm: str | None = None) -> None:
        self._session = DigestSession(username, password, realm=realm)
        self._challenges: dict[str, Challenge] = {}
        self._challenged = False

    @property
    def protocol_name(self) -> str:
        """``"Digest"`` once a challenge was answered."""
        return "Digest" if self._challenged else ""

    @property
    def was_challenged(self) -> bool:
        """True once a challenge was answered."""
        return self._challenged

    def handle_challenge(self, request: SipRequest, response: SipResponse) -> None:
        """Take the strongest digest challenge of a 401/407; refuse a repeated one (wrong password)."""
        challenge_header, credentials_header = _HEADERS[response.status_code]
        offered: list[Challenge] = []
        for value in response.headers.get_all(challenge_header):
            try:
                offered.append(Challenge.parse(value))
            except MessageParsingException:
                continue
        challenge = select_challenge(offered, realm=self._session.realm)
        sent = _sent_for_realm(request.headers.get_all(credentials_header), challenge.get("realm"))
        if self._session.assess(challenge, sent) is ChallengeVerdict.CREDENTIALS_REJECTED:
            raise AuthenticationException(
                f"the server refused the credentials of user {self._session.username!r} "
                f"(realm {challenge.get('realm')!r}): check the user name and password",
                failure_reason=AuthenticationFailureReason.INVALID_CREDENTIALS,
                realm=challenge.get("realm") or "",
                supported_authentication_protocols=("Digest",),
            )
        self._challenges[credentials_header] = challenge
        self._challenged = True

    def authorize(self, request: SipRequest) -> None:
        """Answer the remembered challenges for ``request``."""
        for header, challenge in self._challenges.items():
            answer = self._session.answer(challenge, request.method, request.request_uri_text, request.body)
            request.headers.set(header, str(answer))

    def process_success(self, request: SipRequest, response: SipResponse) -> None:
        """Nothing to verify for digest (Authentication-Info rspauth is optional and not used by registrars)."""

    def __repr__(self) -> str:
        return f"DigestAuthenticator({self._session!r})"


def _sent_for_realm(values: list[str], realm: str | None) -> Credentials | None:
    """The credentials the request carried for ``realm`` (a request may answer several realms)."""
    for value in values:
        try:
            credentials = Credentials.parse(value)
        except MessageParsingException:
            continue
        if credentials.get("realm") == realm:
            return credentials
    return None
