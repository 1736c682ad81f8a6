"""Connectionless NTLMv2: MD4/RC4, the MS-NLMP 4.2 vectors, the OC 2007 R2 capture, server checks, hostile tokens."""

from __future__ import annotations

import contextlib
import struct
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ucma.signaling.exceptions import (
    AuthenticationException,
    AuthenticationFailureReason,
    MessageParsingException,
)
from ucma.signaling.ntlm import (
    AuthenticateMessage,
    AvId,
    ChallengeMessage,
    NegotiateFlags,
    NtlmKeys,
    _md4_pure,
    authenticate_flags,
    compute_ntlmv2_response,
    create_authenticate,
    create_challenge,
    datagram_signature,
    filetime_from_unix,
    md4,
    message_sealing_key,
    ntowfv2,
    parse_target_info,
    product_version,
    rc4,
    verify_authenticate,
)

# --- Vector A: Office Communicator 2007 R2 against OCS 2007 R2 (ms-protocols.md 1.12) ------

A_TARGET_INFO = bytes.fromhex(
    "02000A0043004F0053004D004F000100180043004F0053004D004F002D004F00430053002D00520032000400160063006F007300"
    "6D006F002E006C006F00630061006C000300300063006F0073006D006F002D006F00630073002D00720032002E0063006F007300"
    "6D006F002E006C006F00630061006C000500160063006F0073006D006F002E006C006F00630061006C0000000000"
)
A_CHALLENGE = (
    bytes.fromhex(
        "4E544C4D53535000020000000000000038000000F38298E2DD1BAAF4E7E218D1000000000000000096009600380000000502CE0E0000000F"
    )
    + A_TARGET_INFO
)
A_AUTHENTICATE = bytes.fromhex(
    "4E544C4D53535000030000001800180072000000C600C6008A0000000A000A00480000000800080052000000180018005A0000001000"
    "100050010000558298620502CE0E0000000F43004F0053004D004F00550073006500720043004F0053004D004F002D004F0043005300"
    "2D0052003200A1E92EFE4E078BF7C5C0049ACC6166C2D6AE875CB0FDAA418DC0C800AE76ECA606D2B9FBEBD0473101010000000000"
    "0059519A1727B9CA01D6AE875CB0FDAA410000000002000A0043004F0053004D004F000100180043004F0053004D004F002D004F00"
    "430053002D00520032000400160063006F0073006D006F002E006C006F00630061006C000300300063006F0073006D006F002D006F"
    "00630073002D00720032002E0063006F0073006D006F002E006C006F00630061006C000500160063006F0073006D006F002E006C00"
    "6F00630061006C00000000000000000031CB739E1CA80A498591E8AE797115E4"
)
A_PASSWORD = "Pa$$word"
A_USER = "User"
A_DOMAIN = "COSMO"
A_WORKSTATION = "COSMO-OCS-R2"
A_SERVER_CHALLENGE = bytes.fromhex("DD1BAAF4E7E218D1")
A_CLIENT_CHALLENGE = bytes.fromhex("D6AE875CB0FDAA41")
A_TIME = struct.unpack("<Q", bytes.fromhex("59519A1727B9CA01"))[0]
A_SESSION_BASE_KEY = bytes.fromhex("02959B1D938E14CCC8412639311CDD49")
A_ENCRYPTED_SESSION_KEY = bytes.fromhex("31CB739E1CA80A498591E8AE797115E4")
A_EXPORTED_SESSION_KEY = bytes.fromhex("6742FBE37BB1946B49D86A525BD29A9B")
A_VERSION = product_version(5, 2, 3790)
A_REQUEST_BUFFER = (
    b"<NTLM><13317733><1><SIP Communications Service><cosmo-ocs-r2.cosmo.local><4037df9284354df39065195bd57a4b14>"
    b"<3><REGISTER><sip:user@cosmo.local><3e49177a52><sip:user@cosmo.local><><><><>"
)
A_RESPONSE_BUFFER = (
    b"<NTLM><9616454F><1><SIP Communications Service><cosmo-ocs-r2.cosmo.local><4037df9284354df39065195bd57a4b14>"
    b"<3><REGISTER><sip:user@cosmo.local><3e49177a52><sip:user@cosmo.local><5E61CCD925D17E043D9A74835A88F664>"
    b"<><><7200><200>"
)

# --- MS-NLMP 4.2 (user User, domain Domain, password Password) ------------------------------

NLMP_SERVER_CHALLENGE = bytes.fromhex("0123456789abcdef")
NLMP_CLIENT_CHALLENGE = b"\xaa" * 8
NLMP_RANDOM_SESSION_KEY = b"\x55" * 16
NLMP_TARGET_INFO = bytes.fromhex("02000c0044006f006d00610069006e0001000c0053006500720076006500720000000000")
NLMP_PLAINTEXT = "Plaintext".encode("utf-16-le")
# MS-NLMP 4.2.4.2/4.2.4.3 messages, as dumped in SIPE's tests.
NLMP_CHALLENGE = bytes.fromhex(
    "4e544c4d53535000020000000c000c003800000033828ae20123456789abcdef00000000000000002400240044000000060070170000"
    "000f53006500720076006500720002000c0044006f006d00610069006e0001000c0053006500720076006500720000000000"
)
NLMP_AUTHENTICATE = bytes.fromhex(
    "4e544c4d5353500003000000180018006c00000054005400840000000c000c00480000000800080054000000100010005c000000"
    "10001000d8000000358288e20501280a0000000f44006f006d00610069006e00550073006500720043004f004d00500055005400"
    "4500520086c35097ac9cec102554764a57cccc19aaaaaaaaaaaaaaaa68cd0ab851e51c96aabc927bebef6a1c0101000000000000"
    "0000000000000000aaaaaaaaaaaaaaaa0000000002000c0044006f006d00610069006e0001000c005300650072007600650072000000"
    "000000000000c5dad2544fc9799094ce1ce90bc9d03e"
)


def a_authentication() -> AuthenticateMessage:
    result = create_authenticate(
        ChallengeMessage.parse(A_CHALLENGE),
        user_name=A_USER,
        password=A_PASSWORD,
        domain=A_DOMAIN,
        workstation=A_WORKSTATION,
        client_challenge=A_CLIENT_CHALLENGE,
        timestamp=A_TIME,
        exported_session_key=A_EXPORTED_SESSION_KEY,
        version=A_VERSION,
    )
    return result.message


def accounts(user: str, domain: str, password: str) -> Callable[[str, str], str | None]:
    def lookup(u: str, d: str) -> str | None:
        return password if (u.lower(), d.lower()) == (user.lower(), domain.lower()) else None

    return lookup


# --- primitives -----------------------------------------------------------------------------


MD4_KNOWN_ANSWERS = [
    # RFC 1320 appendix A.5
    (b"", "31d6cfe0d16ae931b73c59d7e0c089c0"),
    (b"a", "bde52cb31de33e46245e05fbdbd6fb24"),
    (b"abc", "a448017aaf21d8525fc10ae87aa6729d"),
    (b"message digest", "d9130a8164549fe818874806e1c7014b"),
    (b"abcdefghijklmnopqrstuvwxyz", "d79e1c308aa5bbcdeea8ed63df412da9"),
    (b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", "043f8582f241db351ce627e153e7f0e4"),
    (b"1234567890" * 8, "e33b4ddc9c38f2199c3e7b164fcc0536"),
    # Padding edges, from OpenSSL's legacy provider (openssl dgst -md4)
    (b"x" * 55, "92f32bb82c95ad10e8f87ae58ab06807"),
    (b"x" * 56, "374d5f08103b7092c83b4626ebceffab"),
    (b"x" * 63, "2870452596e98fffd48332289b3472b9"),
    (b"x" * 64, "b1abf956a5ae6f3221e5fe85e300fbb0"),
    (b"x" * 65, "afc1a3308fc176a53238a09aeddec2e6"),
    (b"x" * 119, "b55ae15e41e55643b0c3daad5e05c905"),
    (b"x" * 120, "d8f9adfc41ec43552619606c70cfd287"),
]


@pytest.mark.parametrize("implementation", [md4, _md4_pure], ids=["md4", "pure"])
@pytest.mark.parametrize(("message", "digest"), MD4_KNOWN_ANSWERS)
def test_md4_known_answers(implementation: Callable[[bytes], bytes], message: bytes, digest: str) -> None:
    assert implementation(message).hex() == digest


@pytest.mark.parametrize(
    ("key", "plaintext", "ciphertext"),
    [
        (b"Key", b"Plaintext", "bbf316e8d940af0ad3"),
        (b"Wiki", b"pedia", "1021bf0420"),
        (b"Secret", b"Attack at dawn", "45a01f645fc35b383552544b9bf5"),
    ],
)
def test_rc4_known_answers(key: bytes, plaintext: bytes, ciphertext: str) -> None:
    assert rc4(key, plaintext).hex() == ciphertext
    assert rc4(key, bytes.fromhex(ciphertext)) == plaintext


def test_filetime_of_the_unix_epoch() -> None:
    assert filetime_from_unix(0) == 116444736000000000


# --- MS-NLMP 4.2 vectors --------------------------------------------------------------------


def test_nlmp_ntlmv2_vectors() -> None:
    key = ntowfv2("Password", "User", "Domain")
    assert key.hex().upper() == "0C868A403BFD7A93A3001EF22EF02E3F"
    response = compute_ntlmv2_response(key, NLMP_SERVER_CHALLENGE, NLMP_CLIENT_CHALLENGE, 0, NLMP_TARGET_INFO)
    assert response.nt_proof_str.hex().upper() == "68CD0AB851E51C96AABC927BEBEF6A1C"
    assert response.lm_challenge_response.hex().upper() == "86C35097AC9CEC102554764A57CCCC19AAAAAAAAAAAAAAAA"
    assert response.session_base_key.hex().upper() == "8DE40CCADBC14A82F15CB0AD0DE95CA3"
    encrypted = rc4(response.session_base_key, NLMP_RANDOM_SESSION_KEY)
    assert encrypted.hex().upper() == "C5DAD2544FC9799094CE1CE90BC9D03E"


def test_nlmp_keys_and_signature_without_key_exchange() -> None:
    keys = NtlmKeys.derive(NLMP_RANDOM_SESSION_KEY, NegotiateFlags.NEGOTIATE_128)
    assert keys.client_signing_key.hex().upper() == "4788DC861B4782F35D43FD98FE1A2D39"
    assert keys.client_sealing_key.hex().upper() == "59F600973CC4960A25480A7C196E4C58"
    assert keys.client_signature(NLMP_PLAINTEXT, 0).hex().upper() == "0100000070352851F256430900000000"


def test_nlmp_challenge_round_trips_byte_for_byte() -> None:
    challenge = ChallengeMessage.parse(NLMP_CHALLENGE)
    assert challenge.flags == 0xE28A8233
    assert challenge.server_challenge == NLMP_SERVER_CHALLENGE
    assert challenge.target_name == "Server"
    assert challenge.target_info == NLMP_TARGET_INFO
    assert parse_target_info(challenge.target_info) == [
        (AvId.NB_DOMAIN_NAME, "Domain".encode("utf-16-le")),
        (AvId.NB_COMPUTER_NAME, "Server".encode("utf-16-le")),
    ]
    assert challenge.to_bytes() == NLMP_CHALLENGE


def test_nlmp_authenticate_message_is_reproduced_from_its_parts() -> None:
    key = ntowfv2("Password", "User", "Domain")
    response = compute_ntlmv2_response(key, NLMP_SERVER_CHALLENGE, NLMP_CLIENT_CHALLENGE, 0, NLMP_TARGET_INFO)
    message = AuthenticateMessage(
        flags=0xE2888235,
        lm_challenge_response=response.lm_challenge_response,
        nt_challenge_response=response.nt_challenge_response,
        domain_name="Domain",
        user_name="User",
        workstation="COMPUTER",
        encrypted_random_session_key=rc4(response.session_base_key, NLMP_RANDOM_SESSION_KEY),
        version=bytes.fromhex("0501280a0000000f"),
    )
    assert message.to_bytes() == NLMP_AUTHENTICATE
    assert AuthenticateMessage.parse(NLMP_AUTHENTICATE) == message


# --- Vector A -------------------------------------------------------------------------------


def test_vector_a_challenge_parses_and_round_trips() -> None:
    challenge = ChallengeMessage.parse(A_CHALLENGE)
    assert challenge.flags == 0xE29882F3
    assert challenge.server_challenge == A_SERVER_CHALLENGE
    assert challenge.target_name == ""
    assert challenge.target_info == A_TARGET_INFO
    assert challenge.timestamp is None
    assert challenge.version == A_VERSION
    assert challenge.to_bytes() == A_CHALLENGE


def test_vector_a_challenge_is_what_create_challenge_builds() -> None:
    built = create_challenge(
        server_challenge=A_SERVER_CHALLENGE,
        netbios_domain="COSMO",
        netbios_computer="COSMO-OCS-R2",
        dns_domain="cosmo.local",
        dns_computer="cosmo-ocs-r2.cosmo.local",
        version=A_VERSION,
    )
    assert built.to_bytes() == A_CHALLENGE


def test_vector_a_client_flags_mask_the_offer_like_oc() -> None:
    assert authenticate_flags(0xE29882F3) == 0x62988255


def test_vector_a_responses_and_session_key() -> None:
    key = ntowfv2(A_PASSWORD, A_USER, A_DOMAIN)
    assert key.hex().upper() == "164B086E00D2F393529FA3A98209F99E"
    response = compute_ntlmv2_response(key, A_SERVER_CHALLENGE, A_CLIENT_CHALLENGE, A_TIME, A_TARGET_INFO)
    assert response.nt_proof_str.hex().upper() == "8DC0C800AE76ECA606D2B9FBEBD04731"
    assert response.lm_challenge_response.hex().upper() == "A1E92EFE4E078BF7C5C0049ACC6166C2D6AE875CB0FDAA41"
    assert response.session_base_key == A_SESSION_BASE_KEY
    assert rc4(A_SESSION_BASE_KEY, A_ENCRYPTED_SESSION_KEY) == A_EXPORTED_SESSION_KEY


def test_vector_a_authenticate_message_is_byte_exact() -> None:
    message = a_authentication()
    assert message.flags == 0x62988255
    assert message.to_bytes() == A_AUTHENTICATE
    assert len(A_AUTHENTICATE) == 352


def test_vector_a_authenticate_parses_back() -> None:
    parsed = AuthenticateMessage.parse(A_AUTHENTICATE)
    assert (parsed.user_name, parsed.domain_name, parsed.workstation) == (A_USER, A_DOMAIN, A_WORKSTATION)
    assert parsed.encrypted_random_session_key == A_ENCRYPTED_SESSION_KEY
    assert parsed == a_authentication()


def test_vector_a_keys() -> None:
    keys = NtlmKeys.derive(A_EXPORTED_SESSION_KEY, 0x62988255)
    assert keys.client_signing_key.hex().upper() == "EA5E87C195AE65338F7C023E7600690D"
    assert keys.client_sealing_key.hex().upper() == "83013A189002D3ABAD49C4C8F605ECC8"
    assert keys.server_signing_key.hex().upper() == "0151FE94DBA8C83F3C6A6E5444AE54B4"
    assert keys.server_sealing_key.hex().upper() == "2A2E34E8D420C039E8F31CB9E8E0CD88"
    assert message_sealing_key(keys.client_sealing_key, 100).hex().upper() == "9C4F4700459447D91CD5F161601E400C"
    assert message_sealing_key(keys.server_sealing_key, 100).hex().upper() == "98A7586F30F71015B079EC4F86DE9C34"


def test_vector_a_signatures_with_seq_num_100() -> None:
    keys = NtlmKeys.derive(A_EXPORTED_SESSION_KEY, 0x62988255)
    assert keys.client_signature(A_REQUEST_BUFFER, 100).hex() == "0100000029618e9651b65a7764000000"
    assert keys.server_signature(A_RESPONSE_BUFFER, 100).hex().upper() == "01000000E615438A917661BE64000000"


def test_vector_a_checksums_before_rc4() -> None:
    keys = NtlmKeys.derive(A_EXPORTED_SESSION_KEY, 0x62988255)
    plain_client = datagram_signature(
        keys.client_signing_key, keys.client_sealing_key, A_REQUEST_BUFFER, 100, key_exchange=False
    )
    plain_server = datagram_signature(
        keys.server_signing_key, keys.server_sealing_key, A_RESPONSE_BUFFER, 100, key_exchange=False
    )
    assert plain_client[4:12].hex().upper() == "D01C6988F1C870F0"
    assert plain_server[4:12].hex().upper() == "EC253D2EF7104C1A"


def test_signatures_depend_on_the_sequence_number_and_the_data() -> None:
    keys = NtlmKeys.derive(A_EXPORTED_SESSION_KEY, 0x62988255)
    base = keys.client_signature(A_REQUEST_BUFFER, 100)
    assert keys.client_signature(A_REQUEST_BUFFER, 101) != base
    assert keys.client_signature(A_REQUEST_BUFFER.replace(b"<3>", b"<4>"), 100) != base
    assert keys.server_signature(A_REQUEST_BUFFER, 100) != base


# --- server side ----------------------------------------------------------------------------


def test_server_verifies_the_captured_authenticate_and_derives_the_same_keys() -> None:
    result = verify_authenticate(
        ChallengeMessage.parse(A_CHALLENGE),
        AuthenticateMessage.parse(A_AUTHENTICATE),
        accounts(A_USER, A_DOMAIN, A_PASSWORD),
    )
    assert (result.user_name, result.domain_name, result.workstation) == (A_USER, A_DOMAIN, A_WORKSTATION)
    assert result.keys == NtlmKeys.derive(A_EXPORTED_SESSION_KEY, 0x62988255)


@pytest.mark.parametrize(
    ("user", "domain", "password"),
    [(A_USER, A_DOMAIN, "Pa$$word2"), ("Someone", A_DOMAIN, A_PASSWORD), (A_USER, "OTHER", A_PASSWORD)],
)
def test_server_refuses_wrong_password_or_unknown_account(user: str, domain: str, password: str) -> None:
    with pytest.raises(AuthenticationException) as caught:
        verify_authenticate(
            ChallengeMessage.parse(A_CHALLENGE),
            AuthenticateMessage.parse(A_AUTHENTICATE),
            accounts(user, domain, password),
        )
    assert caught.value.failure_reason is AuthenticationFailureReason.INVALID_CREDENTIALS
    assert password not in str(caught.value)


def test_server_refuses_an_answer_to_another_challenge() -> None:
    other = ChallengeMessage.parse(A_CHALLENGE)
    other = ChallengeMessage(other.flags, bytes(8), other.target_name, other.target_info, other.version)
    with pytest.raises(AuthenticationException) as caught:
        verify_authenticate(
            other,
            AuthenticateMessage.parse(A_AUTHENTICATE),
            accounts(A_USER, A_DOMAIN, A_PASSWORD),
        )
    assert caught.value.failure_reason is AuthenticationFailureReason.INVALID_CREDENTIALS


def test_server_refuses_anonymous_and_ntlmv1() -> None:
    genuine = AuthenticateMessage.parse(A_AUTHENTICATE)
    challenge = ChallengeMessage.parse(A_CHALLENGE)
    lookup = accounts(A_USER, A_DOMAIN, A_PASSWORD)
    anonymous = AuthenticateMessage(genuine.flags, b"", b"", "", "", "")
    with pytest.raises(AuthenticationException) as caught:
        verify_authenticate(challenge, anonymous, lookup)
    assert caught.value.failure_reason is AuthenticationFailureReason.MISSING_CREDENTIALS
    ntlmv1 = AuthenticateMessage(genuine.flags, bytes(24), bytes(24), A_DOMAIN, A_USER, A_WORKSTATION)
    with pytest.raises(AuthenticationException) as caught:
        verify_authenticate(challenge, ntlmv1, lookup)
    assert caught.value.failure_reason is AuthenticationFailureReason.NO_COMMON_PROTOCOLS


def test_client_refuses_a_challenge_without_datagram_mode() -> None:
    flags = 0xE29882F3 & ~NegotiateFlags.NEGOTIATE_DATAGRAM
    challenge = ChallengeMessage(flags, A_SERVER_CHALLENGE, "", A_TARGET_INFO, A_VERSION)
    with pytest.raises(AuthenticationException) as caught:
        create_authenticate(
            challenge,
            user_name=A_USER,
            password=A_PASSWORD,
            domain=A_DOMAIN,
            workstation=A_WORKSTATION,
            client_challenge=A_CLIENT_CHALLENGE,
            timestamp=A_TIME,
            exported_session_key=A_EXPORTED_SESSION_KEY,
        )
    assert caught.value.failure_reason is AuthenticationFailureReason.NO_COMMON_PROTOCOLS


def test_client_takes_the_server_timestamp_when_offered() -> None:
    server_time = filetime_from_unix(1_700_000_000)
    challenge = create_challenge(
        server_challenge=A_SERVER_CHALLENGE,
        netbios_domain="CONTOSO",
        netbios_computer="OCS",
        dns_domain="contoso.com",
        dns_computer="ocs.contoso.com",
        timestamp=server_time,
    )
    assert ChallengeMessage.parse(challenge.to_bytes()).timestamp == server_time
    result = create_authenticate(
        challenge,
        user_name="alice",
        password="secret",
        domain="CONTOSO",
        workstation="PC",
        client_challenge=A_CLIENT_CHALLENGE,
        timestamp=A_TIME,
        exported_session_key=A_EXPORTED_SESSION_KEY,
    )
    blob_time = struct.unpack_from("<Q", result.message.nt_challenge_response, 16 + 8)[0]
    assert blob_time == server_time


@pytest.mark.parametrize("key_exchange", [True, False])
def test_client_and_server_derive_the_same_keys(key_exchange: bool) -> None:
    flags = 0xE29882F3 if key_exchange else 0xE29882F3 & ~NegotiateFlags.NEGOTIATE_KEY_EXCH
    challenge = create_challenge(
        server_challenge=bytes(range(8)),
        netbios_domain="CONTOSO",
        netbios_computer="OCS",
        dns_domain="contoso.com",
        dns_computer="ocs.contoso.com",
        flags=flags,
    )
    wire_challenge = ChallengeMessage.parse(challenge.to_bytes())
    client = create_authenticate(
        wire_challenge,
        user_name="alice",
        password="s3cret!",
        domain="contoso",
        workstation="PC1",
        client_challenge=bytes(8),
        timestamp=A_TIME,
        exported_session_key=bytes(range(16)),
    )
    assert bool(client.message.encrypted_random_session_key) is key_exchange
    server = verify_authenticate(
        challenge,
        AuthenticateMessage.parse(client.message.to_bytes()),
        accounts("ALICE", "CONTOSO", "s3cret!"),
    )
    assert server.keys == client.keys
    assert client.keys.client_signature(b"<x>", 100) == server.keys.client_signature(b"<x>", 100)


def test_reprs_hide_keys_and_responses() -> None:
    keys = NtlmKeys.derive(A_EXPORTED_SESSION_KEY, 0x62988255)
    message = a_authentication()
    for text in (repr(keys), repr(message)):
        assert A_EXPORTED_SESSION_KEY.hex() not in text.lower()
        assert keys.client_signing_key.hex() not in text.lower()
        assert "8dc0c800" not in text.lower()
        assert A_PASSWORD not in text
    assert "User" in repr(message)


# --- hostile tokens -------------------------------------------------------------------------


def _parse_both(data: bytes) -> None:
    for parse in (ChallengeMessage.parse, AuthenticateMessage.parse):
        with contextlib.suppress(MessageParsingException):
            parse(data)


@given(st.binary(max_size=400))
def test_arbitrary_bytes_only_raise_message_parsing_exception(data: bytes) -> None:
    _parse_both(data)


@given(st.sampled_from([2, 3]), st.binary(max_size=300))
def test_bytes_behind_a_valid_header_only_raise_message_parsing_exception(kind: int, rest: bytes) -> None:
    _parse_both(b"NTLMSSP\x00" + struct.pack("<I", kind) + rest)


@given(st.sampled_from([A_CHALLENGE, A_AUTHENTICATE, NLMP_CHALLENGE]), st.data())
def test_mutated_genuine_messages_only_raise_message_parsing_exception(original: bytes, data: st.DataObject) -> None:
    buffer = bytearray(original)
    for _ in range(data.draw(st.integers(1, 6))):
        position = data.draw(st.integers(0, len(buffer) - 1))
        buffer[position] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(buffer)))
    _parse_both(bytes(buffer[:cut]))
    _parse_both(bytes(buffer))
    with contextlib.suppress(MessageParsingException):
        _ = ChallengeMessage.parse(bytes(buffer)).timestamp


@given(st.binary(max_size=200))
def test_target_info_parser_only_raises_message_parsing_exception(data: bytes) -> None:
    try:
        pairs = parse_target_info(data)
    except MessageParsingException:
        return
    assert all(isinstance(av_id, int) for av_id, _ in pairs)


def test_truncated_security_buffer_is_reported() -> None:
    with pytest.raises(MessageParsingException) as caught:
        AuthenticateMessage.parse(A_AUTHENTICATE[:200])
    assert "outside the message" in str(caught.value)
