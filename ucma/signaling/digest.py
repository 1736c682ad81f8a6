"""Digest authentication for SIP, client side and sans-IO (RFC 2617, RFC 7616, RFC 8760).

:func:`select_challenge` picks the challenge to answer from a 401/407, :class:`DigestSession`
answers it (counting nonce uses) and says after a further 401/407 whether to retry silently
or ask for new credentials; :func:`compute_digest_response` is the bare RFC formula, also
usable by a test server to check answers.  Strings are hashed as UTF-8, as SIP is UTF-8.
"""

from __future__ import annotations

import enum
import hashlib
import re
import secrets
from collections.abc import Callable, Iterable

import attrs

from ucma.signaling.exceptions import (
    ArgumentException,
    AuthenticationException,
    AuthenticationFailureReason,
    InvalidOperationException,
    MessageParsingException,
)
from ucma.signaling.sip.auth_headers import Challenge, Credentials
from ucma.signaling.sip.grammar import is_token

__all__ = [
    "ChallengeVerdict",
    "DigestAlgorithm",
    "DigestQop",
    "DigestSession",
    "compute_digest_response",
    "is_stale",
    "select_challenge",
]

DIGEST_SCHEME = "Digest"
_QUOTED_CREDENTIAL_PARAMS = frozenset({"username", "realm", "nonce", "uri", "response", "cnonce", "opaque"})
_CNONCE_RE = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")  # printable ASCII without '"' and '\'
_NC_RE = re.compile(r"[0-9A-Fa-f]{8}")
_MAX_NONCE_COUNT = 0xFFFFFFFF
# Nonces whose counts are kept: a registrar's and a proxy's can be in use at once.
_MAX_TRACKED_NONCES = 8


def _hash_available(name: str) -> bool:
    try:
        hashlib.new(name)
    except ValueError:  # e.g. an OpenSSL build without SHA-512/256, or MD5 under FIPS
        return False
    return True


class DigestAlgorithm(enum.Enum):
    """The digest algorithms of RFC 7616 section 6.1 (the ``algorithm`` parameter)."""

    MD5 = "MD5"
    MD5_SESS = "MD5-sess"
    SHA_256 = "SHA-256"
    SHA_256_SESS = "SHA-256-sess"
    SHA_512_256 = "SHA-512-256"
    SHA_512_256_SESS = "SHA-512-256-sess"

    @classmethod
    def from_token(cls, token: str) -> DigestAlgorithm | None:
        """The algorithm named ``token`` (case-insensitive), None when unknown."""
        return _BY_TOKEN.get(token.lower())

    @property
    def hash_name(self) -> str:
        """The :func:`hashlib.new` name of the underlying hash (never a truncated SHA-512)."""
        return _HASH_NAMES[self.value.lower().removesuffix("-sess")]

    @property
    def is_session(self) -> bool:
        """True for the ``-sess`` variants, whose A1 also covers the nonce and cnonce."""
        return self.value.lower().endswith("-sess")

    @property
    def strength(self) -> int:
        """Preference rank: higher is stronger (SHA-512/256 > SHA-256 > MD5)."""
        return _STRENGTH[self.hash_name]

    @property
    def is_available(self) -> bool:
        """True when this Python's hashlib provides the hash."""
        return _AVAILABLE[self.hash_name]

    def hexdigest(self, data: bytes) -> str:
        """H(data) as lower-case hex."""
        return hashlib.new(self.hash_name, data).hexdigest()


_BY_TOKEN = {a.value.lower(): a for a in DigestAlgorithm}
_HASH_NAMES = {"md5": "md5", "sha-256": "sha256", "sha-512-256": "sha512_256"}
_STRENGTH = {"md5": 0, "sha256": 1, "sha512_256": 2}
_AVAILABLE = {name: _hash_available(name) for name in _HASH_NAMES.values()}


class DigestQop(enum.Enum):
    """Quality of protection: ``auth`` covers method and URI, ``auth-int`` also the body."""

    AUTH = "auth"
    AUTH_INT = "auth-int"


class ChallengeVerdict(enum.Enum):
    """What a 401/407 to a request means for the credentials (see :meth:`DigestSession.assess`)."""

    ANSWER = "answer"
    """The request carried no answer for this realm: answer with the credentials (prompt if none)."""

    RETRY_WITHOUT_PROMPT = "retry-without-prompt"
    """The credentials were not refused (stale or reused nonce): answer the new challenge as is."""

    CREDENTIALS_REJECTED = "credentials-rejected"
    """An answer to a fresh nonce was refused: the username or password is wrong."""


def compute_digest_response(
    *,
    algorithm: DigestAlgorithm,
    username: str,
    password: str,
    realm: str,
    nonce: str,
    method: str,
    uri: str,
    qop: DigestQop | None,
    nc: str = "",
    cnonce: str = "",
    body: bytes = b"",
) -> str:
    """The ``response`` value of RFC 7616 section 3.4.1 (RFC 2069 form when ``qop`` is None).

    ``uri`` is the digest-uri exactly as sent, ``nc`` the 8-hex-digit count as sent, and
    ``body`` the message body (used by ``auth-int`` only).  ``-sess`` algorithms use
    ``cnonce`` in A1 even without qop, the only way such a challenge can be answered.
    """
    h = algorithm.hexdigest
    ha1 = h(f"{username}:{realm}:{password}".encode())
    if algorithm.is_session:
        ha1 = h(f"{ha1}:{nonce}:{cnonce}".encode())
    a2 = f"{method}:{uri}"
    if qop is DigestQop.AUTH_INT:
        a2 = f"{a2}:{h(body)}"
    ha2 = h(a2.encode())
    if qop is None:
        return h(f"{ha1}:{nonce}:{ha2}".encode())
    return h(f"{ha1}:{nonce}:{nc}:{cnonce}:{qop.value}:{ha2}".encode())


def is_stale(challenge: Challenge) -> bool:
    """True when the challenge says the previous nonce merely expired (``stale=true``)."""
    return (challenge.get("stale") or "").lower() == "true"


@attrs.frozen
class _DigestChallenge:
    """The parts of a Digest challenge an answer needs, checked."""

    realm: str
    nonce: str
    algorithm: DigestAlgorithm
    algorithm_token: str | None
    qop_options: tuple[str, ...] | None
    opaque: str | None
    userhash: bool


def _no_common_protocols(message: str, challenges: Iterable[Challenge], realm: str = "") -> AuthenticationException:
    schemes = tuple(dict.fromkeys(c.scheme for c in challenges))
    return AuthenticationException(
        message,
        failure_reason=AuthenticationFailureReason.NO_COMMON_PROTOCOLS,
        realm=realm,
        supported_authentication_protocols=schemes,
    )


def _inspect(challenge: Challenge) -> _DigestChallenge:
    """Check that ``challenge`` is a Digest challenge this client can answer."""
    realm = challenge.get("realm") or ""
    if challenge.scheme.lower() != DIGEST_SCHEME.lower():
        raise _no_common_protocols(f"not a Digest challenge: {challenge.scheme}", [challenge], realm)
    if challenge.get("realm") is None:
        raise MessageParsingException("Digest challenge without realm")
    nonce = challenge.get("nonce")
    if nonce is None:
        raise MessageParsingException("Digest challenge without nonce")
    token = challenge.get("algorithm")
    algorithm = DigestAlgorithm.MD5 if token is None else DigestAlgorithm.from_token(token)
    if algorithm is None or not algorithm.is_available:
        raise _no_common_protocols(f"unsupported digest algorithm {token!r}", [challenge], realm)
    qop_value = challenge.get("qop")
    qop_options = None
    if qop_value is not None:
        qop_options = tuple(q.strip().lower() for q in qop_value.split(",") if q.strip()) or None
        if qop_options is not None and not {"auth", "auth-int"} & set(qop_options):
            raise _no_common_protocols(f"unsupported qop {qop_value!r}", [challenge], realm)
    return _DigestChallenge(
        realm=realm,
        nonce=nonce,
        algorithm=algorithm,
        algorithm_token=token,
        qop_options=qop_options,
        opaque=challenge.get("opaque"),
        userhash=(challenge.get("userhash") or "").lower() == "true",
    )


def _choose_qop(options: tuple[str, ...] | None, protect_body: bool) -> DigestQop | None:
    if options is None:
        return None
    if "auth-int" in options and (protect_body or "auth" not in options):
        return DigestQop.AUTH_INT
    return DigestQop.AUTH


def select_challenge(challenges: Iterable[Challenge], *, realm: str | None = None) -> Challenge:
    """The Digest challenge to answer: the strongest algorithm, the server's order among equals.

    RFC 7616 and RFC 8760 let local policy override "first supported"; ours is never to
    settle for MD5 when SHA-256 or SHA-512/256 is offered.  With ``realm`` only that realm's
    challenges count.  Raises :class:`AuthenticationException` with ``NO_COMMON_PROTOCOLS`` when
    no challenge is answerable, and ``MISSING_CREDENTIALS`` when only other realms are.
    """
    offered = list(challenges)
    usable: list[tuple[Challenge, _DigestChallenge]] = []
    for challenge in offered:
        try:
            usable.append((challenge, _inspect(challenge)))
        except (AuthenticationException, MessageParsingException):
            continue
    if not usable:
        raise _no_common_protocols("no supported Digest challenge offered", offered)
    matching = [item for item in usable if realm is None or item[1].realm == realm]
    if not matching:
        raise AuthenticationException(
            "no credentials for the offered realm",
            failure_reason=AuthenticationFailureReason.MISSING_CREDENTIALS,
            realm=usable[0][1].realm,
            supported_authentication_protocols=(DIGEST_SCHEME,),
        )
    # max() keeps the first of equal keys, so the server's order breaks ties.
    return max(matching, key=lambda item: item[1].algorithm.strength)[0]


@attrs.define
class _NonceUse:
    """How often one nonce was answered, and the cnonce drawn for it."""

    count: int = 0
    cnonce: str | None = None


class DigestSession:
    """Digest credentials for one realm (or any realm) plus the nonce state of the answers made.

    The password is kept for computing answers only: it never appears in ``repr()``,
    ``str()`` or exception messages.  Not thread-safe: the caller serialises use.
    """

    __slots__ = ("_cnonce_factory", "_last", "_nonces", "_password", "_realm", "_username")

    def __init__(
        self,
        username: str,
        password: str,
        *,
        realm: str | None = None,
        cnonce_factory: Callable[[], str] = secrets.token_hex,
    ) -> None:
        self._username = username
        self._password = password
        self._realm = realm
        self._cnonce_factory = cnonce_factory
        # Keyed by (realm, nonce), least recently answered first.
        self._nonces: dict[tuple[str, str], _NonceUse] = {}
        self._last = _NonceUse()

    @property
    def username(self) -> str:
        """The user name the answers carry (before any userhash)."""
        return self._username

    @property
    def realm(self) -> str | None:
        """The only realm these credentials answer, None for any realm."""
        return self._realm

    @property
    def nonce_count(self) -> int:
        """How many answers used the nonce answered last (the last ``nc`` sent), 0 before any."""
        return self._last.count

    def answer(
        self,
        challenge: Challenge,
        method: str,
        uri: str,
        body: bytes = b"",
        *,
        protect_body: bool = False,
    ) -> Credentials:
        """The Authorization/Proxy-Authorization value answering ``challenge`` for one request.

        ``uri`` is the Request-URI as sent and ``body`` the request body.  ``qop=auth`` is
        preferred; ``auth-int`` is used when it is the only offer or when ``protect_body`` asks
        for it.  Each call with the same nonce increments ``nc``; a new nonce restarts it at 1
        and draws a new cnonce, kept for that nonce so ``-sess`` session keys stay consistent.
        Counts are kept per nonce, so answering a registrar's and a proxy's challenge in turn
        never repeats an ``nc``.
        """
        if not is_token(method):
            raise ArgumentException("method must be a token", "method")
        if not uri or any(c in uri for c in "\r\n"):
            raise ArgumentException("uri must be non-empty and on one line", "uri")
        parts = _inspect(challenge)
        if self._realm is not None and parts.realm != self._realm:
            raise AuthenticationException(
                "no credentials for the challenged realm",
                failure_reason=AuthenticationFailureReason.MISSING_CREDENTIALS,
                realm=parts.realm,
                supported_authentication_protocols=(DIGEST_SCHEME,),
            )
        qop = _choose_qop(parts.qop_options, protect_body)
        use = self._use_of(parts.realm, parts.nonce)
        if use.count >= _MAX_NONCE_COUNT:
            raise InvalidOperationException("nonce count exhausted; answer a new challenge")
        needs_cnonce = qop is not None or parts.algorithm.is_session
        cnonce = ""
        if needs_cnonce:
            if use.cnonce is None:
                use.cnonce = self._new_cnonce()
            cnonce = use.cnonce
        use.count += 1
        nc = f"{use.count:08x}"
        response = compute_digest_response(
            algorithm=parts.algorithm,
            username=self._username,
            password=self._password,
            realm=parts.realm,
            nonce=parts.nonce,
            method=method,
            uri=uri,
            qop=qop,
            nc=nc,
            cnonce=cnonce,
            body=body,
        )
        username = self._username
        if parts.userhash:
            username = parts.algorithm.hexdigest(f"{self._username}:{parts.realm}".encode())
        params: list[tuple[str, str]] = [
            ("username", username),
            ("realm", parts.realm),
            ("nonce", parts.nonce),
            ("uri", uri),
            ("response", response),
        ]
        if parts.algorithm_token is not None:
            params.append(("algorithm", parts.algorithm_token))
        if needs_cnonce:
            params.append(("cnonce", cnonce))
        if parts.opaque is not None:
            params.append(("opaque", parts.opaque))
        if qop is not None:
            params.extend((("qop", qop.value), ("nc", nc)))
        if parts.userhash:
            params.append(("userhash", "true"))
        return Credentials(challenge.scheme, tuple(params), None, _QUOTED_CREDENTIAL_PARAMS)

    def assess(self, challenge: Challenge, sent: Credentials | None) -> ChallengeVerdict:
        """Judge a 401/407 ``challenge`` to a request that carried ``sent`` for this realm (or None).

        Retrying without prompting is right after ``stale=true`` or when the refused answer
        reused a nonce (servers may allow each nonce once); a refused answer to a fresh nonce
        means the credentials are wrong.  A stale challenge repeating the nonce just used is
        also a refusal, so a misbehaving server cannot make the caller loop.
        """
        if sent is None or sent.scheme.lower() != DIGEST_SCHEME.lower() or sent.get("realm") != challenge.get("realm"):
            return ChallengeVerdict.ANSWER
        if is_stale(challenge):
            if challenge.get("nonce") == sent.get("nonce"):
                return ChallengeVerdict.CREDENTIALS_REJECTED
            return ChallengeVerdict.RETRY_WITHOUT_PROMPT
        nc = sent.get("nc")
        if nc is not None:
            uses = int(nc, 16) if _NC_RE.fullmatch(nc) else 1
        else:  # RFC 2069 answers carry no count; ours is the best estimate
            use = self._nonces.get((challenge.get("realm") or "", sent.get("nonce") or ""))
            uses = 1 if use is None else use.count
        return ChallengeVerdict.RETRY_WITHOUT_PROMPT if uses > 1 else ChallengeVerdict.CREDENTIALS_REJECTED

    def _use_of(self, realm: str, nonce: str) -> _NonceUse:
        """The record of ``nonce``, moved to most recent; the oldest records are dropped."""
        use = self._nonces.pop((realm, nonce), None) or _NonceUse()
        self._nonces[(realm, nonce)] = use
        while len(self._nonces) > _MAX_TRACKED_NONCES:
            del self._nonces[next(iter(self._nonces))]
        self._last = use
        return use

    def _new_cnonce(self) -> str:
        cnonce = self._cnonce_factory()
        if _CNONCE_RE.fullmatch(cnonce) is None:
            raise ArgumentException("cnonce_factory must return printable ASCII without quotes", "cnonce_factory")
        return cnonce

    def __repr__(self) -> str:
        return f"DigestSession(username={self._username!r}, realm={self._realm!r}, password=<redacted>)"
