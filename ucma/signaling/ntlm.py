"""NTLM ([MS-NLMP]) in connectionless (datagram) mode with NTLMv2 responses, as [MS-SIPAE] uses it.

Sans-IO: randomness and time come in as arguments.  The client side answers a CHALLENGE_MESSAGE
with an AUTHENTICATE_MESSAGE laid out as Office Communicator and SIPE send it (no NEGOTIATE, no
MIC); the server side builds a CHALLENGE_MESSAGE and checks an AUTHENTICATE_MESSAGE against known
accounts.  Both derive the same :class:`NtlmKeys`, whose datagram signatures re-key RC4 for every
message (the sequence number is chosen by the application; MS-SIPAE always uses 100).

Malformed tokens raise :class:`MessageParsingException`; refused credentials raise
:class:`AuthenticationException`.  Passwords and keys never appear in reprs or exception texts.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import struct
import time
from collections.abc import Callable

import attrs

from ucma.signaling.exceptions import (
    ArgumentException,
    AuthenticationException,
    AuthenticationFailureReason,
    MessageParsingException,
)

__all__ = [
    "CONNECTIONLESS_CLIENT_FLAGS",
    "DEFAULT_CLIENT_VERSION",
    "REQUIRED_CHALLENGE_FLAGS",
    "SERVER_CHALLENGE_FLAGS",
    "AuthenticateMessage",
    "AvId",
    "ChallengeMessage",
    "NegotiateFlags",
    "NtlmKeys",
    "ServerAuthentication",
    "authenticate_flags",
    "build_target_info",
    "compute_ntlmv2_response",
    "create_authenticate",
    "create_challenge",
    "current_filetime",
    "datagram_signature",
    "filetime_from_unix",
    "hmac_md5",
    "md4",
    "ntowfv2",
    "parse_target_info",
    "product_version",
    "rc4",
    "verify_authenticate",
]

_MASK32 = 0xFFFFFFFF
_SIGNATURE = b"NTLMSSP\x00"
_CHALLENGE_TYPE = 2
_AUTHENTICATE_TYPE = 3
# Seconds between 1601-01-01 (FILETIME epoch) and 1970-01-01.
_FILETIME_EPOCH_OFFSET = 11_644_473_600
# A legitimate token is a few hundred bytes; anything far larger is refused before decoding.
MAX_TOKEN_SIZE = 16 * 1024


class NegotiateFlags(enum.IntFlag):
    """NegotiateFlags of [MS-NLMP] 2.2.2.5."""

    NEGOTIATE_UNICODE = 0x00000001
    NEGOTIATE_OEM = 0x00000002
    REQUEST_TARGET = 0x00000004
    NEGOTIATE_SIGN = 0x00000010
    NEGOTIATE_SEAL = 0x00000020
    NEGOTIATE_DATAGRAM = 0x00000040
    NEGOTIATE_LM_KEY = 0x00000080
    NEGOTIATE_NTLM = 0x00000200
    NEGOTIATE_ANONYMOUS = 0x00000800
    NEGOTIATE_OEM_DOMAIN_SUPPLIED = 0x00001000
    NEGOTIATE_OEM_WORKSTATION_SUPPLIED = 0x00002000
    NEGOTIATE_ALWAYS_SIGN = 0x00008000
    TARGET_TYPE_DOMAIN = 0x00010000
    TARGET_TYPE_SERVER = 0x00020000
    NEGOTIATE_EXTENDED_SESSIONSECURITY = 0x00080000
    NEGOTIATE_IDENTIFY = 0x00100000
    REQUEST_NON_NT_SESSION_KEY = 0x00400000
    NEGOTIATE_TARGET_INFO = 0x00800000
    NEGOTIATE_VERSION = 0x02000000
    NEGOTIATE_128 = 0x20000000
    NEGOTIATE_KEY_EXCH = 0x40000000
    NEGOTIATE_56 = 0x80000000


_F = NegotiateFlags

#: What an OCS 2007 R2 front end offers (``0xE29882F3``); our test server offers the same.
SERVER_CHALLENGE_FLAGS = (
    _F.NEGOTIATE_UNICODE | _F.NEGOTIATE_OEM | _F.NEGOTIATE_SIGN | _F.NEGOTIATE_SEAL | _F.NEGOTIATE_DATAGRAM
    | _F.NEGOTIATE_LM_KEY | _F.NEGOTIATE_NTLM | _F.NEGOTIATE_ALWAYS_SIGN | _F.NEGOTIATE_EXTENDED_SESSIONSECURITY
    | _F.NEGOTIATE_IDENTIFY | _F.NEGOTIATE_TARGET_INFO | _F.NEGOTIATE_VERSION | _F.NEGOTIATE_128
    | _F.NEGOTIATE_KEY_EXCH | _F.NEGOTIATE_56
)  # fmt: skip

#: The flags a connectionless client may take over from a challenge (the rest are masked out).
CONNECTIONLESS_CLIENT_FLAGS = (
    _F.NEGOTIATE_UNICODE | _F.NEGOTIATE_NTLM | _F.NEGOTIATE_ALWAYS_SIGN | _F.NEGOTIATE_EXTENDED_SESSIONSECURITY
    | _F.NEGOTIATE_TARGET_INFO | _F.NEGOTIATE_VERSION | _F.NEGOTIATE_128 | _F.NEGOTIATE_56 | _F.REQUEST_TARGET
    | _F.NEGOTIATE_SIGN | _F.NEGOTIATE_DATAGRAM | _F.NEGOTIATE_IDENTIFY | _F.NEGOTIATE_KEY_EXCH
)  # fmt: skip

#: Without these a challenge cannot be answered: NTLMv2 needs TargetInfo, signing needs ESS.
REQUIRED_CHALLENGE_FLAGS = (
    _F.NEGOTIATE_UNICODE | _F.NEGOTIATE_SIGN | _F.NEGOTIATE_DATAGRAM | _F.NEGOTIATE_EXTENDED_SESSIONSECURITY
    | _F.NEGOTIATE_TARGET_INFO
)  # fmt: skip


class AvId(enum.IntEnum):
    """AV_PAIR identifiers of a TargetInfo list ([MS-NLMP] 2.2.2.1)."""

    EOL = 0
    NB_COMPUTER_NAME = 1
    NB_DOMAIN_NAME = 2
    DNS_COMPUTER_NAME = 3
    DNS_DOMAIN_NAME = 4
    DNS_TREE_NAME = 5
    FLAGS = 6
    TIMESTAMP = 7
    SINGLE_HOST = 8
    TARGET_NAME = 9
    CHANNEL_BINDINGS = 10


def product_version(major: int, minor: int, build: int, revision: int = 0x0F) -> bytes:
    """The 8-byte VERSION structure (``product_version(5, 2, 3790)`` is Windows Server 2003)."""
    return struct.pack("<BBH3xB", major, minor, build, revision)


#: The VERSION our client sends (Windows 7 SP1, NTLM revision 15); purely informational.
DEFAULT_CLIENT_VERSION = product_version(6, 1, 7601)


# --- primitives -----------------------------------------------------------------------------


def _rotl(value: int, shift: int) -> int:
    value &= _MASK32
    return ((value << shift) | (value >> (32 - shift))) & _MASK32


def _md4_pure(data: bytes) -> bytes:
    """RFC 1320 MD4, for OpenSSL 3 builds that no longer provide it."""
    padding = b"\x80" + b"\x00" * ((55 - len(data)) % 64)
    message = data + padding + struct.pack("<Q", (len(data) * 8) & 0xFFFFFFFFFFFFFFFF)
    a, b, c, d = 0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476
    for block in range(0, len(message), 64):
        x = struct.unpack_from("<16I", message, block)
        aa, bb, cc, dd = a, b, c, d
        for i in (0, 4, 8, 12):  # round 1: F(x, y, z) = xy | ~x z
            a = _rotl(a + ((b & c) | (~b & d)) + x[i], 3)
            d = _rotl(d + ((a & b) | (~a & c)) + x[i + 1], 7)
            c = _rotl(c + ((d & a) | (~d & b)) + x[i + 2], 11)
            b = _rotl(b + ((c & d) | (~c & a)) + x[i + 3], 19)
        for i in range(4):  # round 2: G(x, y, z) = majority
            a = _rotl(a + ((b & c) | (b & d) | (c & d)) + x[i] + 0x5A827999, 3)
            d = _rotl(d + ((a & b) | (a & c) | (b & c)) + x[i + 4] + 0x5A827999, 5)
            c = _rotl(c + ((d & a) | (d & b) | (a & b)) + x[i + 8] + 0x5A827999, 9)
            b = _rotl(b + ((c & d) | (c & a) | (d & a)) + x[i + 12] + 0x5A827999, 13)
        for i in (0, 2, 1, 3):  # round 3: H(x, y, z) = x ^ y ^ z
            a = _rotl(a + (b ^ c ^ d) + x[i] + 0x6ED9EBA1, 3)
            d = _rotl(d + (a ^ b ^ c) + x[i + 8] + 0x6ED9EBA1, 9)
            c = _rotl(c + (d ^ a ^ b) + x[i + 4] + 0x6ED9EBA1, 11)
            b = _rotl(b + (c ^ d ^ a) + x[i + 12] + 0x6ED9EBA1, 15)
        a, b, c, d = (a + aa) & _MASK32, (b + bb) & _MASK32, (c + cc) & _MASK32, (d + dd) & _MASK32
    return struct.pack("<4I", a, b, c, d)


def md4(data: bytes) -> bytes:
    """MD4 of ``data``: OpenSSL's when it still has it, else a pure-Python one."""
    try:
        return hashlib.new("md4", data).digest()
    except ValueError:
        return _md4_pure(data)


def rc4(key: bytes, data: bytes) -> bytes:
    """RC4 with a fresh state for ``key`` (RC4K of [MS-NLMP]); inputs here are 8 or 16 bytes."""
    if not key:
        raise ArgumentException("RC4 needs a non-empty key", "key")
    state = list(range(256))
    j = 0
    for i in range(256):
        j = (j + state[i] + key[i % len(key)]) & 0xFF
        state[i], state[j] = state[j], state[i]
    out = bytearray(len(data))
    i = j = 0
    for n, byte in enumerate(data):
        i = (i + 1) & 0xFF
        j = (j + state[i]) & 0xFF
        state[i], state[j] = state[j], state[i]
        out[n] = byte ^ state[(state[i] + state[j]) & 0xFF]
    return bytes(out)


def hmac_md5(key: bytes, data: bytes) -> bytes:
    """HMAC-MD5."""
    return hmac.new(key, data, hashlib.md5).digest()


def _md5(data: bytes) -> bytes:
    return hashlib.md5(data).digest()


def _utf16(text: str) -> bytes:
    return text.encode("utf-16-le", "surrogatepass")


def filetime_from_unix(seconds: float) -> int:
    """A Windows FILETIME (100 ns ticks since 1601) for a POSIX time."""
    return int((seconds + _FILETIME_EPOCH_OFFSET) * 10_000_000)


def current_filetime() -> int:
    """Now, as a FILETIME (the default clock of the client; tests inject their own)."""
    return filetime_from_unix(time.time())


# --- NTLMv2 ---------------------------------------------------------------------------------


def ntowfv2(password: str, user_name: str, domain: str) -> bytes:
    """NTOWFv2: HMAC_MD5(MD4(UTF-16LE(password)), UTF-16LE(UPPER(user) + domain))."""
    return hmac_md5(md4(_utf16(password)), _utf16(user_name.upper() + domain))


@attrs.frozen(repr=False)
class Ntlmv2Response:
    """The NTLMv2 and LMv2 responses and the SessionBaseKey they imply."""

    nt_challenge_response: bytes
    lm_challenge_response: bytes
    session_base_key: bytes

    @property
    def nt_proof_str(self) -> bytes:
        """The first 16 bytes of the NT response (the HMAC that proves the password)."""
        return self.nt_challenge_response[:16]

    def __repr__(self) -> str:
        return "Ntlmv2Response(<redacted>)"


def _ntlmv2_blob(client_challenge: bytes, timestamp: int, target_info: bytes) -> bytes:
    return b"\x01\x01" + bytes(6) + struct.pack("<Q", timestamp) + client_challenge + bytes(4) + target_info + bytes(4)


def compute_ntlmv2_response(
    response_key: bytes, server_challenge: bytes, client_challenge: bytes, timestamp: int, target_info: bytes
) -> Ntlmv2Response:
    """NTLMv2 ComputeResponse ([MS-NLMP] 3.3.2) with the LMv2 response that OC and SIPE also send."""
    if len(server_challenge) != 8 or len(client_challenge) != 8:
        raise ArgumentException("challenges are 8 bytes", "client_challenge")
    blob = _ntlmv2_blob(client_challenge, timestamp & 0xFFFFFFFFFFFFFFFF, target_info)
    nt_proof = hmac_md5(response_key, server_challenge + blob)
    lm = hmac_md5(response_key, server_challenge + client_challenge) + client_challenge
    return Ntlmv2Response(nt_proof + blob, lm, hmac_md5(response_key, nt_proof))


# --- keys and signatures --------------------------------------------------------------------

_CLIENT_SIGN_MAGIC = b"session key to client-to-server signing key magic constant\x00"
_SERVER_SIGN_MAGIC = b"session key to server-to-client signing key magic constant\x00"
_CLIENT_SEAL_MAGIC = b"session key to client-to-server sealing key magic constant\x00"
_SERVER_SEAL_MAGIC = b"session key to server-to-client sealing key magic constant\x00"


def _seal_base(exported_session_key: bytes, flags: int) -> bytes:
    if flags & _F.NEGOTIATE_128:
        return exported_session_key
    if flags & _F.NEGOTIATE_56:
        return exported_session_key[:7]
    return exported_session_key[:5]


@attrs.frozen(repr=False)
class NtlmKeys:
    """The signing and sealing keys of an established context, both directions (ESS key derivation)."""

    flags: int
    exported_session_key: bytes
    client_signing_key: bytes
    client_sealing_key: bytes
    server_signing_key: bytes
    server_sealing_key: bytes

    @classmethod
    def derive(cls, exported_session_key: bytes, flags: int) -> NtlmKeys:
        """SIGNKEY/SEALKEY of [MS-NLMP] 3.4.5 for extended session security."""
        if len(exported_session_key) != 16:
            raise ArgumentException("the exported session key is 16 bytes", "exported_session_key")
        seal = _seal_base(exported_session_key, flags)
        return cls(
            flags=flags,
            exported_session_key=exported_session_key,
            client_signing_key=_md5(exported_session_key + _CLIENT_SIGN_MAGIC),
            client_sealing_key=_md5(seal + _CLIENT_SEAL_MAGIC),
            server_signing_key=_md5(exported_session_key + _SERVER_SIGN_MAGIC),
            server_sealing_key=_md5(seal + _SERVER_SEAL_MAGIC),
        )

    @property
    def key_exchange(self) -> bool:
        """True when KEY_EXCH was negotiated (the checksum is then RC4-encrypted)."""
        return bool(self.flags & _F.NEGOTIATE_KEY_EXCH)

    def client_signature(self, data: bytes, seq_num: int) -> bytes:
        """The signature the client puts on ``data``."""
        return datagram_signature(
            self.client_signing_key, self.client_sealing_key, data, seq_num, key_exchange=self.key_exchange
        )

    def server_signature(self, data: bytes, seq_num: int) -> bytes:
        """The signature the server puts on ``data``."""
        return datagram_signature(
            self.server_signing_key, self.server_sealing_key, data, seq_num, key_exchange=self.key_exchange
        )

    def __repr__(self) -> str:
        return f"NtlmKeys(flags=0x{self.flags:08X}, <keys redacted>)"


def message_sealing_key(sealing_key: bytes, seq_num: int) -> bytes:
    """The per-message RC4 key of a connectionless context: MD5(SealingKey || LE32(SeqNum))."""
    return _md5(sealing_key + struct.pack("<I", seq_num & _MASK32))


def datagram_signature(
    signing_key: bytes, sealing_key: bytes, data: bytes, seq_num: int, *, key_exchange: bool = True
) -> bytes:
    """NTLMSSP_MESSAGE_SIGNATURE with ESS in datagram mode: RC4 starts afresh for every message."""
    seq = struct.pack("<I", seq_num & _MASK32)
    checksum = hmac_md5(signing_key, seq + data)[:8]
    if key_exchange:
        checksum = rc4(message_sealing_key(sealing_key, seq_num), checksum)
    return struct.pack("<I", 1) + checksum + seq


# --- messages -------------------------------------------------------------------------------


def _bad(reason: str, detail: str = "") -> MessageParsingException:
    return MessageParsingException(f"malformed NTLM message: {reason}", detail=detail)


def _field(data: bytes, at: int, what: str) -> bytes:
    """The payload a security buffer (length, max length, offset) at ``at`` points to."""
    length, _, offset = struct.unpack_from("<HHI", data, at)
    if length == 0:
        return b""
    if offset > len(data) or length > len(data) - offset:
        raise _bad(f"{what} lies outside the message", f"offset {offset}, length {length}")
    return data[offset : offset + length]


def _check_header(data: bytes, message_type: int, minimum: int) -> None:
    if len(data) > MAX_TOKEN_SIZE:
        raise _bad("message too large", f"{len(data)} bytes")
    if len(data) < minimum:
        raise _bad("message too short", f"{len(data)} bytes")
    if data[:8] != _SIGNATURE:
        raise _bad("missing NTLMSSP signature")
    found = struct.unpack_from("<I", data, 8)[0]
    if found != message_type:
        raise _bad(f"expected message type {message_type}", f"type {found}")


def _decode_text(raw: bytes, flags: int, what: str) -> str:
    if not flags & _F.NEGOTIATE_UNICODE:
        return raw.decode("latin-1")
    try:
        return raw.decode("utf-16-le")
    except UnicodeDecodeError:
        raise _bad(f"{what} is not valid UTF-16") from None


def _encode_text(text: str, flags: int) -> bytes:
    return _utf16(text) if flags & _F.NEGOTIATE_UNICODE else text.encode("latin-1", "replace")


def parse_target_info(data: bytes) -> list[tuple[int, bytes]]:
    """The AV_PAIRs of a TargetInfo field up to MsvAvEOL (which is not returned)."""
    pairs: list[tuple[int, bytes]] = []
    pos = 0
    while True:
        if len(data) - pos < 4:
            raise _bad("TargetInfo is not terminated by MsvAvEOL")
        av_id, length = struct.unpack_from("<HH", data, pos)
        pos += 4
        if av_id == AvId.EOL:
            return pairs
        if length > len(data) - pos:
            raise _bad("TargetInfo pair runs past its field", f"AvId {av_id}")
        pairs.append((av_id, data[pos : pos + length]))
        pos += length


def build_target_info(pairs: list[tuple[int, bytes]]) -> bytes:
    """A TargetInfo field from AV_PAIRs, with the terminating MsvAvEOL."""
    out = bytearray()
    for av_id, value in pairs:
        out += struct.pack("<HH", av_id, len(value)) + value
    return bytes(out) + struct.pack("<HH", AvId.EOL, 0)


@attrs.frozen
class ChallengeMessage:
    """CHALLENGE_MESSAGE ([MS-NLMP] 2.2.1.2): what the server offers and its 8-byte nonce."""

    flags: int
    server_challenge: bytes
    target_name: str = ""
    target_info: bytes = b""
    version: bytes = b""

    @classmethod
    def parse(cls, data: bytes) -> ChallengeMessage:
        """Read a CHALLENGE_MESSAGE; raise :class:`MessageParsingException` when malformed."""
        _check_header(data, _CHALLENGE_TYPE, 48)
        flags = struct.unpack_from("<I", data, 20)[0]
        target_name = _decode_text(_field(data, 12, "TargetName"), flags, "TargetName")
        target_info = _field(data, 40, "TargetInfo")
        if target_info:
            parse_target_info(target_info)
        version = data[48:56] if flags & _F.NEGOTIATE_VERSION and len(data) >= 56 else b""
        return cls(flags, data[24:32], target_name, target_info, version)

    @property
    def timestamp(self) -> int | None:
        """MsvAvTimestamp from TargetInfo (a FILETIME), None when the server sent none."""
        if not self.target_info:
            return None
        for av_id, value in parse_target_info(self.target_info):
            if av_id == AvId.TIMESTAMP and len(value) == 8:
                return int(struct.unpack("<Q", value)[0])
        return None

    def to_bytes(self) -> bytes:
        """The wire form: 56-byte header (with VERSION), then TargetName and TargetInfo."""
        name = _encode_text(self.target_name, self.flags)
        version = self.version.ljust(8, b"\x00")[:8]
        offset = 56
        head = struct.pack(
            "<8sIHHII8s8xHHI8s",
            _SIGNATURE,
            _CHALLENGE_TYPE,
            len(name),
            len(name),
            offset,
            self.flags,
            self.server_challenge,
            len(self.target_info),
            len(self.target_info),
            offset + len(name),
            version,
        )
        return head + name + self.target_info


@attrs.frozen(repr=False)
class AuthenticateMessage:
    """AUTHENTICATE_MESSAGE ([MS-NLMP] 2.2.1.3) in the 72-byte-header layout, without MIC."""

    flags: int
    lm_challenge_response: bytes
    nt_challenge_response: bytes
    domain_name: str
    user_name: str
    workstation: str
    encrypted_random_session_key: bytes = b""
    version: bytes = b""

    @classmethod
    def parse(cls, data: bytes) -> AuthenticateMessage:
        """Read an AUTHENTICATE_MESSAGE (any payload layout); raise :class:`MessageParsingException`."""
        _check_header(data, _AUTHENTICATE_TYPE, 64)
        flags = struct.unpack_from("<I", data, 60)[0]
        return cls(
            flags=flags,
            lm_challenge_response=_field(data, 12, "LmChallengeResponse"),
            nt_challenge_response=_field(data, 20, "NtChallengeResponse"),
            domain_name=_decode_text(_field(data, 28, "DomainName"), flags, "DomainName"),
            user_name=_decode_text(_field(data, 36, "UserName"), flags, "UserName"),
            workstation=_decode_text(_field(data, 44, "Workstation"), flags, "Workstation"),
            encrypted_random_session_key=_field(data, 52, "EncryptedRandomSessionKey"),
            version=data[64:72] if flags & _F.NEGOTIATE_VERSION and len(data) >= 72 else b"",
        )

    def to_bytes(self) -> bytes:
        """Header, then Domain, User, Workstation, LM response, NT response and the session key."""
        payload = [
            _encode_text(self.domain_name, self.flags),
            _encode_text(self.user_name, self.flags),
            _encode_text(self.workstation, self.flags),
            self.lm_challenge_response,
            self.nt_challenge_response,
            self.encrypted_random_session_key,
        ]
        offset = 72
        buffers: dict[int, tuple[int, int]] = {}
        for index, item in enumerate(payload):
            buffers[index] = (len(item), offset)
            offset += len(item)
        order = (3, 4, 0, 1, 2, 5)  # header order: Lm, Nt, Domain, User, Workstation, SessionKey
        fields = b"".join(struct.pack("<HHI", buffers[i][0], buffers[i][0], buffers[i][1]) for i in order)
        version = self.version.ljust(8, b"\x00")[:8]
        head = _SIGNATURE + struct.pack("<I", _AUTHENTICATE_TYPE) + fields + struct.pack("<I", self.flags) + version
        return head + b"".join(payload)

    def __repr__(self) -> str:
        return (
            f"AuthenticateMessage(user_name={self.user_name!r}, domain_name={self.domain_name!r}, "
            f"workstation={self.workstation!r}, flags=0x{self.flags:08X}, <responses redacted>)"
        )


# --- client ---------------------------------------------------------------------------------


def authenticate_flags(challenge_flags: int) -> int:
    """The flags a connectionless client answers with; refuse a challenge it cannot answer."""
    missing = REQUIRED_CHALLENGE_FLAGS & ~challenge_flags
    if missing:
        raise AuthenticationException(
            f"the NTLM challenge lacks required flags 0x{int(missing):08X}",
            failure_reason=AuthenticationFailureReason.NO_COMMON_PROTOCOLS,
            supported_authentication_protocols=("NTLM",),
        )
    flags = (challenge_flags & CONNECTIONLESS_CLIENT_FLAGS) | _F.REQUEST_TARGET
    if flags & _F.NEGOTIATE_128:
        flags &= ~_F.NEGOTIATE_56
    return int(flags)


@attrs.frozen(repr=False)
class ClientAuthentication:
    """What the client side produces: the AUTHENTICATE_MESSAGE and the keys of the new context."""

    message: AuthenticateMessage
    keys: NtlmKeys

    def __repr__(self) -> str:
        return f"ClientAuthentication({self.message!r})"


def create_authenticate(
    challenge: ChallengeMessage,
    *,
    user_name: str,
    password: str,
    domain: str,
    workstation: str,
    client_challenge: bytes,
    timestamp: int,
    exported_session_key: bytes,
    version: bytes = DEFAULT_CLIENT_VERSION,
) -> ClientAuthentication:
    """Answer ``challenge`` (NTLMv2).

    ``timestamp`` (a FILETIME) is used only when the challenge carries no MsvAvTimestamp;
    ``exported_session_key`` is the random session key sent under KEY_EXCH.
    """
    flags = authenticate_flags(challenge.flags)
    server_timestamp = challenge.timestamp
    key = ntowfv2(password, user_name, domain)
    response = compute_ntlmv2_response(
        key,
        challenge.server_challenge,
        client_challenge,
        timestamp if server_timestamp is None else server_timestamp,
        challenge.target_info,
    )
    key_exchange_key = response.session_base_key
    if flags & _F.NEGOTIATE_KEY_EXCH:
        encrypted = rc4(key_exchange_key, exported_session_key)
    else:
        encrypted, exported_session_key = b"", key_exchange_key
    message = AuthenticateMessage(
        flags=flags,
        lm_challenge_response=response.lm_challenge_response,
        nt_challenge_response=response.nt_challenge_response,
        domain_name=domain,
        user_name=user_name,
        workstation=workstation,
        encrypted_random_session_key=encrypted,
        version=version if flags & _F.NEGOTIATE_VERSION else b"",
    )
    return ClientAuthentication(message, NtlmKeys.derive(exported_session_key, flags))


# --- server ---------------------------------------------------------------------------------


def create_challenge(
    *,
    server_challenge: bytes,
    netbios_domain: str,
    netbios_computer: str,
    dns_domain: str,
    dns_computer: str,
    dns_tree: str | None = None,
    timestamp: int | None = None,
    flags: int = SERVER_CHALLENGE_FLAGS,
    version: bytes = DEFAULT_CLIENT_VERSION,
) -> ChallengeMessage:
    """A CHALLENGE_MESSAGE with TargetInfo in the order OCS sends (NetBIOS, DNS, tree)."""
    if len(server_challenge) != 8:
        raise ArgumentException("the server challenge is 8 bytes", "server_challenge")
    pairs: list[tuple[int, bytes]] = [
        (AvId.NB_DOMAIN_NAME, _utf16(netbios_domain)),
        (AvId.NB_COMPUTER_NAME, _utf16(netbios_computer)),
        (AvId.DNS_DOMAIN_NAME, _utf16(dns_domain)),
        (AvId.DNS_COMPUTER_NAME, _utf16(dns_computer)),
        (AvId.DNS_TREE_NAME, _utf16(dns_domain if dns_tree is None else dns_tree)),
    ]
    if timestamp is not None:
        pairs.append((AvId.TIMESTAMP, struct.pack("<Q", timestamp)))
    return ChallengeMessage(int(flags), server_challenge, "", build_target_info(pairs), version)


@attrs.frozen(repr=False)
class ServerAuthentication:
    """Who authenticated (names as the client sent them) and the keys of the new context."""

    user_name: str
    domain_name: str
    workstation: str
    keys: NtlmKeys

    def __repr__(self) -> str:
        return f"ServerAuthentication(user_name={self.user_name!r}, domain_name={self.domain_name!r})"


def _refused(reason: AuthenticationFailureReason, text: str) -> AuthenticationException:
    return AuthenticationException(text, failure_reason=reason, supported_authentication_protocols=("NTLM",))


def verify_authenticate(
    challenge: ChallengeMessage,
    message: AuthenticateMessage,
    password_for: Callable[[str, str], str | None],
) -> ServerAuthentication:
    """Check ``message`` (the answer to ``challenge``) with the password ``password_for(user, domain)`` gives.

    Raises :class:`AuthenticationException` (``INVALID_CREDENTIALS`` for an unknown user or a
    wrong password, ``MISSING_CREDENTIALS`` for anonymous logons, ``NO_COMMON_PROTOCOLS`` for
    NTLMv1 or a context without extended session security).
    """
    flags = message.flags
    if not message.user_name or flags & _F.NEGOTIATE_ANONYMOUS:
        raise _refused(AuthenticationFailureReason.MISSING_CREDENTIALS, "anonymous NTLM logons are refused")
    if len(message.nt_challenge_response) <= 24 or not flags & _F.NEGOTIATE_EXTENDED_SESSIONSECURITY:
        raise _refused(AuthenticationFailureReason.NO_COMMON_PROTOCOLS, "only NTLMv2 with ESS is accepted")
    wrong = _refused(
        AuthenticationFailureReason.INVALID_CREDENTIALS,
        f"NTLM credentials of user {message.user_name!r} (domain {message.domain_name!r}) were refused",
    )
    password = password_for(message.user_name, message.domain_name)
    if password is None:
        raise wrong
    key = ntowfv2(password, message.user_name, message.domain_name)
    blob = message.nt_challenge_response[16:]
    nt_proof = hmac_md5(key, challenge.server_challenge + blob)
    if not hmac.compare_digest(nt_proof, message.nt_challenge_response[:16]):
        raise wrong
    key_exchange_key = hmac_md5(key, nt_proof)
    if flags & _F.NEGOTIATE_KEY_EXCH:
        if len(message.encrypted_random_session_key) != 16:
            raise _bad("EncryptedRandomSessionKey must be 16 bytes")
        exported = rc4(key_exchange_key, message.encrypted_random_session_key)
    else:
        exported = key_exchange_key
    return ServerAuthentication(
        message.user_name, message.domain_name, message.workstation, NtlmKeys.derive(exported, flags)
    )
