"""[MS-SIPAE] NTLM authentication and message signing for SIP, client and server side, sans-IO.

The handshake runs over 401/407 round trips: an empty ``gssapi-data`` first leg, the server's
CHALLENGE_MESSAGE, then the AUTHENTICATE_MESSAGE (already signed when ``version`` is 4 or more).
The resulting :class:`SecurityAssociation` signs every later message with the NTLM datagram MAC
(sequence number always 100) over :func:`signature_buffer`, and checks the peer's signatures with a
256-wide replay window on ``cnum``/``snum``.  :class:`MsSipaeAuthenticator` is the endpoint's
:class:`~ucma.signaling.authentication.Authenticator`; :class:`SipaeNtlmServer` is the registrar
side used by the loopback test server.  Messages that fail verification raise
:class:`MessageSignatureException`.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hmac
import re
import secrets
import socket
from collections import OrderedDict
from collections.abc import Callable, Iterable

import attrs

from ucma.signaling.authentication import Authenticator
from ucma.signaling.digest_authenticator import DigestAuthenticator
from ucma.signaling.exceptions import (
    ArgumentException,
    AuthenticationException,
    AuthenticationFailureReason,
    MessageParsingException,
    RealTimeException,
)
from ucma.signaling.ntlm import (
    DEFAULT_CLIENT_VERSION,
    MAX_TOKEN_SIZE,
    SERVER_CHALLENGE_FLAGS,
    AuthenticateMessage,
    ChallengeMessage,
    NtlmKeys,
    create_authenticate,
    create_challenge,
    current_filetime,
    verify_authenticate,
)
from ucma.signaling.sip.address import NameAddress, parse_name_addr_list
from ucma.signaling.sip.auth_headers import AuthHeaderValue, Challenge, Credentials
from ucma.signaling.sip.message import SipMessage, SipRequest, SipResponse

__all__ = [
    "DEFAULT_REALM",
    "REAUTHENTICATION_MARGIN",
    "SECURITY_ASSOCIATION_LIFETIME",
    "SIPAE_SEQ_NUM",
    "MessageSignatureException",
    "MsSipaeAuthenticator",
    "NtlmAccount",
    "SaRole",
    "SecurityAssociation",
    "ServerVerdict",
    "SignatureFailure",
    "SipaeNtlmServer",
    "choose_authenticator",
    "decode_gssapi_data",
    "offered_schemes",
    "signature_buffer",
]

SCHEME = "NTLM"
DEFAULT_REALM = "SIP Communications Service"
#: The NTLM SeqNum of every MS-SIPAE signature, in both directions (``cnum``/``snum`` are separate).
SIPAE_SEQ_NUM = 100
#: How long a server keeps an NTLM SA, and how long before that a client should re-authenticate (seconds).
SECURITY_ASSOCIATION_LIFETIME = 8 * 3600
REAUTHENTICATION_MARGIN = 5 * 60
#: Width of the ``cnum``/``snum`` replay window ([MS-SIP] 3.1.5.1).
REPLAY_WINDOW = 256
#: The highest auth protocol version we speak; a higher offer is answered with this one.
MAX_VERSION = 4

_CHALLENGE_HEADERS = {401: ("WWW-Authenticate", "Authorization"), 407: ("Proxy-Authenticate", "Proxy-Authorization")}
_NUMBER_RE = re.compile(r"[0-9]{1,10}")
_HEX_RE = re.compile(r"(?:[0-9A-Fa-f]{2})+")


class SignatureFailure(enum.Enum):
    """Why a message was not accepted as signed by the peer."""

    UNSIGNED = "unsigned"
    NO_SECURITY_ASSOCIATION = "no security association"
    MALFORMED = "malformed signature"
    BAD_SIGNATURE = "bad signature"
    REPLAYED = "replayed"


class MessageSignatureException(AuthenticationException):
    """A message after the handshake was unsigned, wrongly signed or replayed; it must be discarded."""

    def __init__(
        self,
        message: str,
        failure: SignatureFailure,
        *,
        realm: str = "",
        inner_exception: BaseException | None = None,
    ) -> None:
        super().__init__(
            message, inner_exception=inner_exception, realm=realm, supported_authentication_protocols=(SCHEME,)
        )
        self.failure = failure


def decode_gssapi_data(token: str) -> bytes:
    """The bytes of a ``gssapi-data`` value; raise :class:`MessageParsingException` if it is not base64."""
    if len(token) > MAX_TOKEN_SIZE * 2:
        raise MessageParsingException("gssapi-data too large", detail=f"{len(token)} characters")
    try:
        return base64.b64decode(token.encode("ascii"), validate=True)
    except (binascii.Error, ValueError):
        raise MessageParsingException("gssapi-data is not valid base64") from None


# --- the signed buffer ----------------------------------------------------------------------


def _asserted_identities(message: SipMessage) -> tuple[str, str]:
    """The sip: and tel: URIs of P-Asserted-Identity (else P-Preferred-Identity), as written."""
    values = message.headers.get_all("P-Asserted-Identity") or message.headers.get_all("P-Preferred-Identity")
    addresses: list[NameAddress] = []
    for value in values:
        addresses.extend(parse_name_addr_list(value, "P-Asserted-Identity"))
    sip = tel = ""
    for address in addresses:
        scheme = address.uri_text.split(":", 1)[0].lower()
        if scheme in ("sip", "sips") and not sip:
            sip = address.uri_text
        elif scheme == "tel" and not tel:
            tel = address.uri_text
    return sip, tel


def signature_buffer(
    message: SipMessage, *, scheme: str, rand: str, num: str, realm: str, targetname: str, version: int
) -> str:
    """The string MS-SIPAE signs for ``message``: ``<value>`` per field, as the values appear in it.

    Version 3 and later add To-URI and the two P-Asserted-Identity URIs; responses end with
    their status code.  Raises :class:`MessageParsingException` when a needed header is malformed.
    """
    _ = message.cseq  # validates the header before its text is used
    cseq_number, cseq_method = (message.headers.get("CSeq") or "").split()
    from_header = message.from_header
    to_header = message.to_header
    expires = (message.headers.get("Expires") or "").strip()
    fields = [scheme, rand, num, realm, targetname, message.call_id, cseq_number, cseq_method]
    fields += [from_header.uri_text, from_header.tag or ""]
    if version >= 3:
        fields += [to_header.uri_text, to_header.tag or "", *_asserted_identities(message)]
    else:
        fields.append(to_header.tag or "")
    fields.append(expires)
    if isinstance(message, SipResponse):
        fields.append(str(message.status_code))
    return "".join(f"<{field}>" for field in fields)


# --- security associations ------------------------------------------------------------------


class SaRole(enum.Enum):
    """Which end of the association we are: it decides the keys and header names used."""

    CLIENT = "client"
    SERVER = "server"


class _ReplayWindow:
    """Sequence numbers seen recently: the highest one and which of the 256 below it arrived."""

    def __init__(self, size: int = REPLAY_WINDOW) -> None:
        self._size = size
        self._highest = 0
        self._seen: set[int] = set()

    def is_fresh(self, number: int) -> bool:
        if number > self._highest:
            return True
        if number <= self._highest - self._size:
            return False
        return number not in self._seen

    def record(self, number: int) -> None:
        self._seen.add(number)
        if number > self._highest:
            self._highest = number
            floor = number - self._size
            self._seen = {n for n in self._seen if n > floor}


_SIGNATURE_PARAMS = {SaRole.CLIENT: ("crand", "cnum", "response"), SaRole.SERVER: ("srand", "snum", "rspauth")}


class SecurityAssociation:
    """An established NTLM SA for one realm and target: signs what we send, verifies what the peer sends."""

    def __init__(
        self,
        keys: NtlmKeys,
        *,
        role: SaRole,
        realm: str,
        targetname: str,
        opaque: str | None,
        version: int,
        proxy: bool = False,
        random_bytes: Callable[[int], bytes] = secrets.token_bytes,
        user_name: str = "",
        domain_name: str = "",
    ) -> None:
        self._keys = keys
        self.role = role
        self.realm = realm
        self.targetname = targetname
        self.opaque = opaque
        self.version = version
        self.proxy = proxy
        self.user_name = user_name
        self.domain_name = domain_name
        self._random_bytes = random_bytes
        self._sent = 0
        self._window = _ReplayWindow()
        self.verified_count = 0

    @property
    def outgoing_header(self) -> str:
        """Where our signature goes: (Proxy-)Authorization for a client, (Proxy-)Authentication-Info for a server."""
        if self.role is SaRole.CLIENT:
            return "Proxy-Authorization" if self.proxy else "Authorization"
        return "Proxy-Authentication-Info" if self.proxy else "Authentication-Info"

    @property
    def incoming_headers(self) -> tuple[str, str]:
        """The headers that may carry the peer's signature."""
        if self.role is SaRole.CLIENT:
            return ("Authentication-Info", "Proxy-Authentication-Info")
        return ("Authorization", "Proxy-Authorization")

    @property
    def last_sent_number(self) -> int:
        """The ``cnum``/``snum`` of the last message we signed (0 before the first)."""
        return self._sent

    def matches(self, value: AuthHeaderValue) -> bool:
        """True when ``value`` names this SA (scheme, realm, targetname, and opaque when both have one)."""
        if value.scheme.lower() != SCHEME.lower() or value.get("realm") != self.realm:
            return False
        if (value.get("targetname") or "").lower() != self.targetname.lower():
            return False
        opaque = value.get("opaque")
        return opaque is None or self.opaque is None or opaque.lower() == self.opaque.lower()

    def _sign_buffer(self, buffer: str) -> str:
        data = buffer.encode("utf-8")
        if self.role is SaRole.CLIENT:
            return self._keys.client_signature(data, SIPAE_SEQ_NUM).hex()
        return self._keys.server_signature(data, SIPAE_SEQ_NUM).hex().upper()

    def _peer_signature(self, buffer: str) -> bytes:
        data = buffer.encode("utf-8")
        if self.role is SaRole.CLIENT:
            return self._keys.server_signature(data, SIPAE_SEQ_NUM)
        return self._keys.client_signature(data, SIPAE_SEQ_NUM)

    def signature_params(self, message: SipMessage) -> list[tuple[str, str]]:
        """Sign ``message`` with the next number: ``[(crand, ..), (cnum, ..), (response, ..)]`` (s* for a server)."""
        rand = self._random_bytes(4).hex()
        if self.role is SaRole.SERVER:
            rand = rand.upper()
        buffer = signature_buffer(
            message,
            scheme=SCHEME,
            rand=rand,
            num=str(self._sent + 1),
            realm=self.realm,
            targetname=self.targetname,
            version=self.version,
        )
        self._sent += 1
        names = _SIGNATURE_PARAMS[self.role]
        return [(names[0], rand), (names[1], str(self._sent)), (names[2], self._sign_buffer(buffer))]

    def signature_value(self, message: SipMessage) -> Credentials:
        """The complete header value that signs ``message`` (advances the counter)."""
        signature = self.signature_params(message)
        opaque = [("opaque", self.opaque)] if self.opaque is not None else []
        if self.role is SaRole.CLIENT:
            params = [("qop", "auth"), *opaque, ("realm", self.realm), ("targetname", self.targetname), *signature]
        else:
            rand, num, rspauth = signature  # OCS writes rspauth first
            where = [("targetname", self.targetname), ("realm", self.realm)]
            params = [rspauth, rand, num, *opaque, ("qop", "auth"), *where]
        return Credentials(SCHEME, tuple(params), quoted=frozenset(name for name, _ in params))

    def sign(self, message: SipMessage) -> None:
        """Put our signature header on ``message`` (after every header the buffer covers is final)."""
        message.headers.set(self.outgoing_header, str(self.signature_value(message)))

    def find_signature(self, message: SipMessage) -> Credentials | None:
        """The peer's signature header for this SA in ``message``, None when there is none."""
        for name in self.incoming_headers:
            for raw in message.headers.get_all(name):
                value = _parse_or_none(raw)
                if value is not None and self.matches(value) and value.get(_SIGNATURE_PARAMS[_peer(self.role)][2]):
                    return value
        return None

    def verify(self, message: SipMessage, value: Credentials | None = None) -> None:
        """Check the peer's signature on ``message`` (``value``, else the one found in it); record its number.

        Raises :class:`MessageSignatureException` when it is missing, malformed, wrong or replayed.
        """
        if value is None:
            value = self.find_signature(message)
            if value is None:
                raise self._failure(SignatureFailure.UNSIGNED, "the message carries no signature for this SA")
        rand_name, num_name, signature_name = _SIGNATURE_PARAMS[_peer(self.role)]
        rand, num, signature = value.get(rand_name), value.get(num_name), value.get(signature_name)
        if rand is None or num is None or signature is None:
            raise self._failure(
                SignatureFailure.UNSIGNED, f"the {value.scheme} header lacks {num_name} or its signature"
            )
        if _NUMBER_RE.fullmatch(num) is None or int(num) == 0 or _HEX_RE.fullmatch(signature) is None:
            raise self._failure(SignatureFailure.MALFORMED, f"malformed {num_name} or signature")
        try:
            buffer = signature_buffer(
                message,
                scheme=value.scheme,
                rand=rand,
                num=num,
                realm=value.get("realm") or "",
                targetname=value.get("targetname") or "",
                version=self.version,
            )
        except MessageParsingException as exc:
            raise self._failure(SignatureFailure.MALFORMED, "a signed header is malformed", exc) from exc
        if not hmac.compare_digest(self._peer_signature(buffer), bytes.fromhex(signature)):
            raise self._failure(SignatureFailure.BAD_SIGNATURE, "the message signature does not match")
        number = int(num)
        if not self._window.is_fresh(number):
            raise self._failure(SignatureFailure.REPLAYED, f"{num_name} {number} was already used or is too old")
        self._window.record(number)
        self.verified_count += 1

    def _failure(
        self, failure: SignatureFailure, text: str, inner: BaseException | None = None
    ) -> MessageSignatureException:
        return MessageSignatureException(
            f"{text} (realm {self.realm!r}, target {self.targetname!r})",
            failure,
            realm=self.realm,
            inner_exception=inner,
        )

    def __repr__(self) -> str:
        return (
            f"SecurityAssociation(role={self.role.value}, realm={self.realm!r}, targetname={self.targetname!r}, "
            f"opaque={self.opaque!r}, version={self.version}, sent={self._sent})"
        )


def _peer(role: SaRole) -> SaRole:
    return SaRole.SERVER if role is SaRole.CLIENT else SaRole.CLIENT


def _parse_or_none(raw: str) -> Credentials | None:
    try:
        return Credentials.parse(raw)
    except MessageParsingException:
        return None


def _parse_version(value: AuthHeaderValue) -> int:
    """The ``version`` param (2 when absent); raise :class:`MessageParsingException` when not a number."""
    text = value.get("version")
    if text is None:
        return 2
    if _NUMBER_RE.fullmatch(text) is None:
        raise MessageParsingException("invalid MS-SIPAE version", detail=text[:20])
    return int(text)


def _handshake_value(params: list[tuple[str, str]]) -> Credentials:
    """A value with every param quoted except ``version`` (what MS servers expect)."""
    return Credentials(SCHEME, tuple(params), quoted=frozenset(name for name, _ in params if name != "version"))


# --- client ---------------------------------------------------------------------------------


class _Stage(enum.Enum):
    FIRST_LEG = "first leg"
    ANSWER_PENDING = "answer pending"
    ESTABLISHED = "established"


@attrs.define(repr=False)
class _Handshake:
    """Progress with one (realm, targetname); ``association`` exists once the CHALLENGE is answered."""

    realm: str
    targetname: str
    version: int
    proxy: bool
    stage: _Stage
    opaque: str | None = None
    token: bytes = b""
    association: SecurityAssociation | None = None


def _default_workstation() -> str:
    return socket.gethostname().split(".", 1)[0].upper()


def offered_schemes(response: SipResponse) -> tuple[str, ...]:
    """The schemes of the WWW-Authenticate/Proxy-Authenticate challenges of ``response``, in order."""
    schemes: list[str] = []
    for name in ("WWW-Authenticate", "Proxy-Authenticate"):
        for raw in response.headers.get_all(name):
            try:
                scheme = Challenge.parse(raw).scheme
            except MessageParsingException:
                continue
            if scheme not in schemes:
                schemes.append(scheme)
    return tuple(schemes)


class MsSipaeAuthenticator:
    """NTLM per [MS-SIPAE] for one endpoint: the handshake, then signing and verifying every message.

    ``user_name`` may be ``DOMAIN\\user`` (split when ``domain`` is empty) or ``user@domain``
    (used whole).  ``random_bytes`` and ``now`` (a FILETIME clock, used when the challenge has
    no MsvAvTimestamp) are injectable for tests.  The password never leaves this object except
    as NTLM responses.
    """

    def __init__(
        self,
        user_name: str,
        password: str,
        domain: str = "",
        workstation: str | None = None,
        *,
        random_bytes: Callable[[int], bytes] = secrets.token_bytes,
        now: Callable[[], int] = current_filetime,
        ntlm_version: bytes = DEFAULT_CLIENT_VERSION,
    ) -> None:
        if not domain and "\\" in user_name:
            domain, user_name = user_name.split("\\", 1)
        self.user_name = user_name
        self.domain = domain
        self.workstation = _default_workstation() if workstation is None else workstation
        self.__password = password
        self._random_bytes = random_bytes
        self._now = now
        self._ntlm_version = ntlm_version
        self._handshakes: dict[tuple[str, str], _Handshake] = {}
        self._challenged = False
        self._signing_required = False

    @property
    def protocol_name(self) -> str:
        """``"NTLM"`` once a challenge was answered."""
        return SCHEME if self._challenged else ""

    @property
    def was_challenged(self) -> bool:
        """True once a challenge was answered."""
        return self._challenged

    @property
    def is_established(self) -> bool:
        """True when an SA exists and the server has signed at least one message with it."""
        return any(h.association is not None and h.association.verified_count for h in self._handshakes.values())

    @property
    def security_associations(self) -> tuple[SecurityAssociation, ...]:
        """The SAs whose keys are known (the server may not have confirmed them yet)."""
        return tuple(h.association for h in self._handshakes.values() if h.association is not None)

    def handle_challenge(self, request: SipRequest, response: SipResponse) -> None:
        """Take the NTLM challenge(s) of a 401/407 to ``request``.

        A challenge without ``gssapi-data`` (re)starts the handshake, dropping any SA for that
        realm and target (the server does so after 8 hours); one with a CHALLENGE_MESSAGE is
        answered.  Raises :class:`AuthenticationException` with ``NO_COMMON_PROTOCOLS`` when
        NTLM is not offered and ``INVALID_CREDENTIALS`` when ``request`` carried our answer;
        a malformed CHALLENGE_MESSAGE raises :class:`MessageParsingException`.
        """
        headers = _CHALLENGE_HEADERS.get(response.status_code)
        if headers is None:
            raise ArgumentException(f"expected a 401 or 407, not {response.status_code}", "response")
        challenge_header, credentials_header = headers
        offered: list[Challenge] = []
        for raw in response.headers.get_all(challenge_header):
            try:
                offered.append(Challenge.parse(raw))
            except MessageParsingException:
                continue
        ntlm = [c for c in offered if c.scheme.lower() == SCHEME.lower() and c.get("realm") and c.get("targetname")]
        if not ntlm:
            schemes = tuple(dict.fromkeys(c.scheme for c in offered))
            raise AuthenticationException(
                f"the server offers no NTLM challenge (offered: {', '.join(schemes) or 'none'})",
                failure_reason=AuthenticationFailureReason.NO_COMMON_PROTOCOLS,
                supported_authentication_protocols=schemes,
            )
        for challenge in ntlm:
            self._take_challenge(request, challenge, credentials_header, proxy=response.status_code == 407)
        self._challenged = True

    def _take_challenge(
        self, request: SipRequest, challenge: Challenge, credentials_header: str, *, proxy: bool
    ) -> None:
        realm = challenge.get("realm") or ""
        targetname = challenge.get("targetname") or ""
        version = min(_parse_version(challenge), MAX_VERSION)
        key = (realm, targetname.lower())
        sent = _sent_token(request, credentials_header, realm, targetname)
        if sent:
            self._handshakes.pop(key, None)
            raise AuthenticationException(
                f"the server refused the NTLM credentials of user {self.user_name!r} (domain {self.domain!r}): "
                "check the user name and password",
                failure_reason=AuthenticationFailureReason.INVALID_CREDENTIALS,
                realm=realm,
                supported_authentication_protocols=(SCHEME,),
            )
        token = challenge.get("gssapi-data")
        opaque = challenge.get("opaque")
        if not token:
            if sent == "":
                raise AuthenticationException(
                    "the server answered the first NTLM leg without a CHALLENGE_MESSAGE",
                    realm=realm,
                    supported_authentication_protocols=(SCHEME,),
                )
            self._handshakes[key] = _Handshake(realm, targetname, version, proxy, _Stage.FIRST_LEG, opaque)
            return
        server_challenge = ChallengeMessage.parse(decode_gssapi_data(token))
        answer = create_authenticate(
            server_challenge,
            user_name=self.user_name,
            password=self.__password,
            domain=self.domain,
            workstation=self.workstation,
            client_challenge=self._random_bytes(8),
            timestamp=self._now() if server_challenge.timestamp is None else 0,
            exported_session_key=self._random_bytes(16),
            version=self._ntlm_version,
        )
        association = SecurityAssociation(
            answer.keys,
            role=SaRole.CLIENT,
            realm=realm,
            targetname=targetname,
            opaque=opaque,
            version=version,
            proxy=proxy,
            random_bytes=self._random_bytes,
        )
        self._handshakes[key] = _Handshake(
            realm, targetname, version, proxy, _Stage.ANSWER_PENDING, opaque, answer.message.to_bytes(), association
        )
        self._signing_required = True

    def authorize(self, request: SipRequest) -> None:
        """Add the handshake leg or the signature for every realm; call after the request is otherwise final."""
        if not self._handshakes:
            return
        lines: dict[str, list[str]] = {}
        for handshake in self._handshakes.values():
            header = "Proxy-Authorization" if handshake.proxy else "Authorization"
            lines.setdefault(header, []).append(str(self._credentials(handshake, request)))
        for header, values in lines.items():
            request.headers.remove(header)
            for value in values:
                request.headers.add(header, value)

    def _credentials(self, handshake: _Handshake, request: SipRequest) -> Credentials:
        opaque = [("opaque", handshake.opaque)] if handshake.opaque is not None else []
        version = [("version", str(handshake.version))] if handshake.version > 2 else []
        where = [("realm", handshake.realm), ("targetname", handshake.targetname)]
        if handshake.stage is _Stage.FIRST_LEG:
            return _handshake_value([("qop", "auth"), *where, *opaque, ("gssapi-data", ""), *version])
        association = handshake.association
        assert association is not None  # noqa: S101  (only FIRST_LEG has no SA)
        if handshake.stage is _Stage.ANSWER_PENDING:
            token = base64.b64encode(handshake.token).decode("ascii")
            params = [("qop", "auth"), where[0], *opaque, where[1], *version, ("gssapi-data", token)]
            if handshake.version >= 4:
                params += association.signature_params(request)
            handshake.stage, handshake.token = _Stage.ESTABLISHED, b""
            return _handshake_value(params)
        return association.signature_value(request)

    def sign_response(self, response: SipResponse) -> None:
        """Sign a response we send (200 to NOTIFY...) with every established SA, as OC and SIPE do."""
        for handshake in self._handshakes.values():
            if handshake.stage is _Stage.ESTABLISHED and handshake.association is not None:
                handshake.association.sign(response)

    def process_success(self, request: SipRequest, response: SipResponse) -> None:
        """Verify the server's signature on a 2xx (raises :class:`MessageSignatureException`)."""
        self.verify_incoming(response)

    def verify_incoming(self, message: SipRequest | SipResponse) -> None:
        """Verify a message from the server (responses, and requests such as NOTIFY/BENOTIFY).

        Before any SA exists nothing is checked.  Afterwards, unsigned 1xx, 401 and 407
        responses pass (OCS does not sign them); anything else must carry a valid, fresh
        signature of one of our SAs, else :class:`MessageSignatureException` is raised.
        """
        if not self._signing_required:
            return
        signed = [
            value
            for name in ("Authentication-Info", "Proxy-Authentication-Info")
            for raw in message.headers.get_all(name)
            if (value := _parse_or_none(raw)) is not None and value.scheme.lower() == SCHEME.lower()
        ]
        exempt = isinstance(message, SipResponse) and (
            message.is_provisional or message.status_code in _CHALLENGE_HEADERS
        )
        if not signed and exempt:
            return
        associations = self.security_associations
        verified = False
        for value in signed:
            for association in associations:
                if association.matches(value):
                    association.verify(message, value)
                    verified = True
        if verified:
            return
        if signed or not associations:
            raise MessageSignatureException(
                "the message is not signed by a known NTLM security association",
                SignatureFailure.NO_SECURITY_ASSOCIATION,
            )
        raise MessageSignatureException("the message is not signed", SignatureFailure.UNSIGNED)

    def reauthenticate(self) -> None:
        """Drop every SA (the endpoint's timer, 8 h minus a margin): the next request goes unsigned."""
        self._handshakes.clear()

    def __repr__(self) -> str:
        stages = ", ".join(f"{realm}/{target}: {h.stage.value}" for (realm, target), h in self._handshakes.items())
        return (
            f"MsSipaeAuthenticator(user_name={self.user_name!r}, domain={self.domain!r}, "
            f"workstation={self.workstation!r}, [{stages}])"
        )


def _sent_token(request: SipRequest, header: str, realm: str, targetname: str) -> str | None:
    """The ``gssapi-data`` the request carried for this realm and target (None when it carried none)."""
    for raw in request.headers.get_all(header):
        value = _parse_or_none(raw)
        if (
            value is not None
            and value.scheme.lower() == SCHEME.lower()
            and value.get("realm") == realm
            and (value.get("targetname") or "").lower() == targetname.lower()
        ):
            return value.get("gssapi-data")
    return None


def choose_authenticator(
    response: SipResponse,
    user_name: str,
    password: str,
    domain: str = "",
    *,
    workstation: str | None = None,
) -> Authenticator:
    """The authenticator for what a 401/407 offers: NTLM when offered, else Digest.

    Digest gets ``user_name`` as given (``domain`` and ``workstation`` only matter to NTLM).
    Raises :class:`AuthenticationException` with ``NO_COMMON_PROTOCOLS`` when neither is.
    """
    schemes = offered_schemes(response)
    lowered = {scheme.lower() for scheme in schemes}
    if SCHEME.lower() in lowered:
        return MsSipaeAuthenticator(user_name, password, domain, workstation)
    if "digest" in lowered:
        return DigestAuthenticator(user_name, password)
    raise AuthenticationException(
        f"no supported authentication scheme offered (offered: {', '.join(schemes) or 'none'})",
        failure_reason=AuthenticationFailureReason.NO_COMMON_PROTOCOLS,
        supported_authentication_protocols=schemes,
    )


# --- server ---------------------------------------------------------------------------------


@attrs.frozen(repr=False)
class NtlmAccount:
    """A user the test registrar accepts; ``domain`` is matched case-insensitively."""

    user_name: str
    domain: str
    password: str

    def __repr__(self) -> str:
        return f"NtlmAccount(user_name={self.user_name!r}, domain={self.domain!r}, password=<redacted>)"


@attrs.frozen
class ServerVerdict:
    """What to do with a request: serve it (``association`` set) or answer with ``challenge``.

    ``rejection`` says why a request that carried credentials or a signature was refused.
    """

    association: SecurityAssociation | None = None
    challenge: Challenge | None = None
    status_code: int = 401
    rejection: RealTimeException | None = None

    @property
    def accepted(self) -> bool:
        """True when the request is authenticated (sign the responses with ``association``)."""
        return self.association is not None

    @property
    def challenge_header(self) -> str:
        """``WWW-Authenticate`` for a 401, ``Proxy-Authenticate`` for a 407."""
        return _CHALLENGE_HEADERS[self.status_code][0]


class SipaeNtlmServer:
    """The registrar (or proxy) side of MS-SIPAE NTLM for the loopback server.

    Issues challenges, checks AUTHENTICATE messages against ``accounts``, keeps one SA per
    ``opaque``, verifies client signatures and signs what it sends.
    """

    def __init__(
        self,
        accounts: Iterable[NtlmAccount],
        *,
        targetname: str,
        realm: str = DEFAULT_REALM,
        version: int = MAX_VERSION,
        netbios_domain: str = "CONTOSO",
        netbios_computer: str = "OCS",
        dns_domain: str = "contoso.com",
        proxy: bool = False,
        flags: int = SERVER_CHALLENGE_FLAGS,
        ntlm_version: bytes = DEFAULT_CLIENT_VERSION,
        random_bytes: Callable[[int], bytes] = secrets.token_bytes,
        now: Callable[[], int] | None = None,
        max_pending: int = 1024,
    ) -> None:
        self._accounts = {(a.user_name.lower(), a.domain.lower()): a.password for a in accounts}
        self.targetname = targetname
        self.realm = realm
        self.version = version
        self.proxy = proxy
        self._names = (netbios_domain, netbios_computer, dns_domain)
        self._flags = flags
        self._ntlm_version = ntlm_version
        self._random_bytes = random_bytes
        self._now = now
        self._max_pending = max_pending
        self._pending: OrderedDict[str, ChallengeMessage] = OrderedDict()
        self._associations: dict[str, SecurityAssociation] = {}

    @property
    def status_code(self) -> int:
        """401 for a registrar, 407 for a proxy."""
        return 407 if self.proxy else 401

    def first_leg_challenge(self) -> Challenge:
        """``NTLM realm="...", targetname="...", version=N``: what an unauthenticated request gets."""
        return Challenge(
            SCHEME,
            (("realm", self.realm), ("targetname", self.targetname), ("version", str(self.version))),
            quoted=frozenset({"realm", "targetname"}),
        )

    def association(self, opaque: str) -> SecurityAssociation | None:
        """The SA with this ``opaque``, if established."""
        return self._associations.get(opaque.upper())

    def forget(self, opaque: str) -> bool:
        """Drop an SA (expiry): the client's next signed request is challenged afresh."""
        return self._associations.pop(opaque.upper(), None) is not None

    def _password_for(self, user_name: str, domain: str) -> str | None:
        return self._accounts.get((user_name.lower(), domain.lower()))

    def _challenge(self, rejection: RealTimeException | None = None) -> ServerVerdict:
        return ServerVerdict(challenge=self.first_leg_challenge(), status_code=self.status_code, rejection=rejection)

    def _credentials(self, request: SipRequest) -> Credentials | None:
        for name in ("Authorization", "Proxy-Authorization"):
            for raw in request.headers.get_all(name):
                value = _parse_or_none(raw)
                if (
                    value is not None
                    and value.scheme.lower() == SCHEME.lower()
                    and value.get("realm") == self.realm
                    and (value.get("targetname") or "").lower() == self.targetname.lower()
                ):
                    return value
        return None

    def process_request(self, request: SipRequest) -> ServerVerdict:
        """Decide on an incoming request: continue the handshake, accept it, or challenge it afresh."""
        credentials = self._credentials(request)
        if credentials is None:
            return self._challenge()
        token = credentials.get("gssapi-data")
        opaque = (credentials.get("opaque") or "").upper()
        if token is None:
            association = self._associations.get(opaque)
            if association is None:
                return self._challenge(
                    MessageSignatureException("unknown or expired NTLM SA", SignatureFailure.NO_SECURITY_ASSOCIATION)
                )
            try:
                association.verify(request, credentials)
            except MessageSignatureException as exc:
                return self._challenge(exc)
            return ServerVerdict(association=association, status_code=self.status_code)
        try:
            version = _parse_version(credentials)
        except MessageParsingException as exc:
            return self._challenge(exc)
        if version != self.version:
            return self._challenge(
                AuthenticationException(
                    f"MS-SIPAE version {version} does not match the offered {self.version}",
                    failure_reason=AuthenticationFailureReason.NO_COMMON_PROTOCOLS,
                    supported_authentication_protocols=(SCHEME,),
                )
            )
        if token == "":
            return self._start_handshake()
        return self._finish_handshake(request, credentials, token, opaque)

    def _start_handshake(self) -> ServerVerdict:
        netbios_domain, netbios_computer, dns_domain = self._names
        message = create_challenge(
            server_challenge=self._random_bytes(8),
            netbios_domain=netbios_domain,
            netbios_computer=netbios_computer,
            dns_domain=dns_domain,
            dns_computer=self.targetname,
            timestamp=self._now() if self._now is not None else None,
            flags=self._flags,
            version=self._ntlm_version,
        )
        opaque = self._random_bytes(4).hex().upper()
        self._pending[opaque] = message
        while len(self._pending) > self._max_pending:
            self._pending.popitem(last=False)
        params = (
            ("opaque", opaque),
            ("gssapi-data", base64.b64encode(message.to_bytes()).decode("ascii")),
            ("targetname", self.targetname),
            ("realm", self.realm),
            ("version", str(self.version)),
        )
        challenge = Challenge(SCHEME, params, quoted=frozenset({"opaque", "gssapi-data", "targetname", "realm"}))
        return ServerVerdict(challenge=challenge, status_code=self.status_code)

    def _finish_handshake(
        self, request: SipRequest, credentials: Credentials, token: str, opaque: str
    ) -> ServerVerdict:
        challenge = self._pending.pop(opaque, None)
        if challenge is None:
            return self._challenge(
                MessageSignatureException(
                    "no pending NTLM handshake for opaque", SignatureFailure.NO_SECURITY_ASSOCIATION
                )
            )
        try:
            authenticated = verify_authenticate(
                challenge, AuthenticateMessage.parse(decode_gssapi_data(token)), self._password_for
            )
        except (MessageParsingException, AuthenticationException) as exc:
            return self._challenge(exc)
        association = SecurityAssociation(
            authenticated.keys,
            role=SaRole.SERVER,
            realm=self.realm,
            targetname=self.targetname,
            opaque=opaque,
            version=self.version,
            proxy=self.proxy,
            random_bytes=self._random_bytes,
            user_name=authenticated.user_name,
            domain_name=authenticated.domain_name,
        )
        if self.version >= 4:
            try:
                association.verify(request, credentials)
            except MessageSignatureException as exc:
                return self._challenge(exc)
        self._associations[opaque] = association
        return ServerVerdict(association=association, status_code=self.status_code)

    def __repr__(self) -> str:
        return (
            f"SipaeNtlmServer(realm={self.realm!r}, targetname={self.targetname!r}, version={self.version}, "
            f"{len(self._accounts)} accounts, {len(self._associations)} SAs)"
        )
