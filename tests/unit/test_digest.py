"""Digest client: RFC test vectors, algorithm and qop choice, nonce counting, stale handling, secrecy."""

from __future__ import annotations

import hashlib
import itertools
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ucma.signaling.digest import (
    ChallengeVerdict,
    DigestAlgorithm,
    DigestQop,
    DigestSession,
    compute_digest_response,
    is_stale,
    select_challenge,
)
from ucma.signaling.exceptions import (
    ArgumentException,
    AuthenticationException,
    AuthenticationFailureReason,
    MessageParsingException,
)
from ucma.signaling.sip.auth_headers import Challenge, Credentials

PASSWORD = "pa55-w0rd-that-must-never-leak"

# RFC 7616 section 3.9.1
RFC7616_NONCE = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v"
RFC7616_CNONCE = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"
RFC7616_OPAQUE = "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"


def rfc7616_challenge(algorithm: str) -> Challenge:
    return Challenge.parse(
        f'Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm={algorithm}, '
        f'nonce="{RFC7616_NONCE}", opaque="{RFC7616_OPAQUE}"'
    )


def fixed(cnonce: str) -> DigestSession:
    return DigestSession("Mufasa", "Circle of Life", cnonce_factory=lambda: cnonce)


def h(name: str, text: str | bytes) -> str:
    data = text.encode() if isinstance(text, str) else text
    return hashlib.new(name, data).hexdigest()


def reference_response(
    hash_name: str,
    *,
    sess: bool = False,
    qop: str | None = "auth",
    user: str = "alice",
    password: str = PASSWORD,
    realm: str = "example.com",
    nonce: str = "n0nce",
    method: str = "REGISTER",
    uri: str = "sip:example.com",
    nc: str = "00000001",
    cnonce: str = "c0ffee",
    body: bytes = b"",
) -> str:
    """Straight transcription of RFC 7616 section 3.4 with hashlib, independent of the module."""
    ha1 = h(hash_name, f"{user}:{realm}:{password}")
    if sess:
        ha1 = h(hash_name, f"{ha1}:{nonce}:{cnonce}")
    a2 = f"{method}:{uri}" + (f":{h(hash_name, body)}" if qop == "auth-int" else "")
    if qop is None:
        return h(hash_name, f"{ha1}:{nonce}:{h(hash_name, a2)}")
    return h(hash_name, f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{h(hash_name, a2)}")


def session(cnonces: list[str] | None = None, **kwargs: object) -> DigestSession:
    supply = iter(cnonces or ["c0ffee", "c1", "c2", "c3"])
    return DigestSession("alice", PASSWORD, cnonce_factory=lambda: next(supply), **kwargs)  # type: ignore[arg-type]


def challenge(**params: str) -> Challenge:
    base = {"realm": "example.com", "nonce": "n0nce", "qop": "auth"}
    base.update(params)
    quoted = frozenset({"realm", "nonce", "qop", "opaque"})
    return Challenge("Digest", tuple((k, v) for k, v in base.items() if v != "-"), None, quoted)


# --- RFC vectors ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("algorithm", "expected"),
    [
        ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
        ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
    ],
)
def test_rfc7616_example(algorithm: str, expected: str) -> None:
    answer = fixed(RFC7616_CNONCE).answer(rfc7616_challenge(algorithm), "GET", "/dir/index.html")
    assert answer.get("response") == expected
    assert answer.scheme == "Digest"
    assert answer.get("username") == "Mufasa"
    assert answer.get("realm") == "http-auth@example.org"
    assert answer.get("uri") == "/dir/index.html"
    assert answer.get("algorithm") == algorithm
    assert answer.get("qop") == "auth"
    assert answer.get("nc") == "00000001"
    assert answer.get("cnonce") == RFC7616_CNONCE
    assert answer.get("opaque") == RFC7616_OPAQUE


def test_rfc2617_example() -> None:
    offered = Challenge.parse(
        'Digest realm="testrealm@host.com", qop="auth,auth-int", '
        'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"'
    )
    answer = DigestSession("Mufasa", "Circle Of Life", cnonce_factory=lambda: "0a4f113b").answer(
        offered, "GET", "/dir/index.html"
    )
    assert answer.get("response") == "6629fae49393a05397450978507c4ef1"
    assert answer.get("algorithm") is None  # the challenge named none, so the answer names none
    assert str(answer) == (
        'Digest username="Mufasa", realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", '
        'uri="/dir/index.html", response="6629fae49393a05397450978507c4ef1", cnonce="0a4f113b", '
        'opaque="5ccc069c403ebaf9f0171e9517f40e41", qop=auth, nc=00000001'
    )


def test_compute_digest_response_matches_the_rfc7616_vector() -> None:
    response = compute_digest_response(
        algorithm=DigestAlgorithm.SHA_256,
        username="Mufasa",
        password="Circle of Life",
        realm="http-auth@example.org",
        nonce=RFC7616_NONCE,
        method="GET",
        uri="/dir/index.html",
        qop=DigestQop.AUTH,
        nc="00000001",
        cnonce=RFC7616_CNONCE,
    )
    assert response == "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"


# --- algorithms and qop ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("algorithm", "hash_name", "sess"),
    [
        ("MD5", "md5", False),
        ("MD5-sess", "md5", True),
        ("SHA-256", "sha256", False),
        ("SHA-256-sess", "sha256", True),
        ("sha-256", "sha256", False),
        ("SHA-512-256", "sha512_256", False),
        ("SHA-512-256-sess", "sha512_256", True),
    ],
)
def test_each_algorithm_follows_the_rfc_formula(algorithm: str, hash_name: str, sess: bool) -> None:
    answer = session().answer(challenge(algorithm=algorithm), "REGISTER", "sip:example.com")
    assert answer.get("response") == reference_response(hash_name, sess=sess)
    assert answer.get("algorithm") == algorithm


def test_sha512_256_is_the_real_algorithm_not_truncated_sha512() -> None:
    answer = session().answer(challenge(algorithm="SHA-512-256"), "REGISTER", "sip:example.com")
    response = answer.get("response")
    assert response is not None
    assert len(response) == 64
    truncated_ha1 = hashlib.sha512(f"alice:example.com:{PASSWORD}".encode()).hexdigest()[:64]
    truncated_ha2 = hashlib.sha512(b"REGISTER:sip:example.com").hexdigest()[:64]
    truncated = hashlib.sha512(f"{truncated_ha1}:n0nce:00000001:c0ffee:auth:{truncated_ha2}".encode()).hexdigest()
    assert response != truncated[:64]


def test_sess_key_uses_the_cnonce_of_the_first_answer_to_a_nonce() -> None:
    digest = session(["first", "second"])
    offered = challenge(algorithm="MD5-sess")
    digest.answer(offered, "REGISTER", "sip:example.com")
    second = digest.answer(offered, "SUBSCRIBE", "sip:alice@example.com")
    assert second.get("cnonce") == "first"
    assert second.get("response") == reference_response(
        "md5", sess=True, method="SUBSCRIBE", uri="sip:alice@example.com", nc="00000002", cnonce="first"
    )


def test_auth_is_preferred_when_both_are_offered() -> None:
    answer = session().answer(challenge(qop="auth,auth-int"), "MESSAGE", "sip:bob@example.com", b"hello")
    assert answer.get("qop") == "auth"
    assert answer.get("response") == reference_response("md5", method="MESSAGE", uri="sip:bob@example.com")


def test_auth_int_covers_the_body_when_protection_is_asked_for() -> None:
    body = b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\n"
    answer = session().answer(challenge(qop="auth, auth-int"), "INVITE", "sip:bob@example.com", body, protect_body=True)
    assert answer.get("qop") == "auth-int"
    expected = reference_response("md5", qop="auth-int", method="INVITE", uri="sip:bob@example.com", body=body)
    assert answer.get("response") == expected
    other_body = reference_response("md5", qop="auth-int", method="INVITE", uri="sip:bob@example.com", body=b"x")
    assert answer.get("response") != other_body


def test_auth_int_is_used_when_it_is_the_only_offer_even_for_an_empty_body() -> None:
    answer = session().answer(challenge(qop="auth-int", algorithm="SHA-256"), "REGISTER", "sip:example.com")
    assert answer.get("qop") == "auth-int"
    assert answer.get("response") == reference_response("sha256", qop="auth-int", body=b"")


def test_auth_is_used_when_protection_is_asked_but_not_offered() -> None:
    answer = session().answer(challenge(qop="auth"), "INVITE", "sip:b@example.com", b"x", protect_body=True)
    assert answer.get("qop") == "auth"


def test_without_qop_the_rfc2069_form_is_sent() -> None:
    answer = session().answer(challenge(qop="-", opaque="op"), "REGISTER", "sip:example.com")
    assert answer.get("response") == reference_response("md5", qop=None)
    assert answer.get("qop") is None
    assert answer.get("nc") is None
    assert answer.get("cnonce") is None
    assert answer.get("opaque") == "op"


def test_header_quotes_strings_and_leaves_qop_nc_and_algorithm_bare() -> None:
    text = str(session().answer(challenge(algorithm="SHA-256", opaque="o"), "REGISTER", "sip:example.com"))
    for name in ("username", "realm", "nonce", "uri", "response", "cnonce", "opaque"):
        assert re.search(rf'\b{name}="', text), name
    assert "algorithm=SHA-256" in text
    assert "qop=auth," in text
    assert text.endswith("nc=00000001")


def test_opaque_is_echoed_only_when_sent() -> None:
    with_opaque = session().answer(challenge(opaque="5ccc069c"), "REGISTER", "sip:example.com")
    without = session().answer(challenge(), "REGISTER", "sip:example.com")
    assert with_opaque.get("opaque") == "5ccc069c"
    assert without.get("opaque") is None


def test_empty_opaque_is_echoed_as_an_empty_quoted_string() -> None:
    answer = session().answer(challenge(opaque=""), "REGISTER", "sip:example.com")
    assert 'opaque=""' in str(answer)


def test_quotes_in_username_and_realm_are_escaped_and_hashed_raw() -> None:
    digest = DigestSession('al"ice\\', PASSWORD, cnonce_factory=lambda: "c0ffee")
    answer = digest.answer(challenge(realm='ex"ample'), "REGISTER", "sip:example.com")
    assert 'username="al\\"ice\\\\"' in str(answer)
    parsed = Credentials.parse(str(answer))
    assert parsed.get("username") == 'al"ice\\'
    assert parsed.get("realm") == 'ex"ample'
    assert parsed.get("response") == reference_response("md5", user='al"ice\\', realm='ex"ample')


def test_userhash_sends_the_hashed_username() -> None:
    answer = session().answer(challenge(algorithm="SHA-256", userhash="true"), "REGISTER", "sip:example.com")
    assert answer.get("username") == h("sha256", "alice:example.com")
    assert answer.get("userhash") == "true"
    assert answer.get("response") == reference_response("sha256")


def test_an_unknown_qop_leaves_nothing_to_answer() -> None:
    with pytest.raises(AuthenticationException) as info:
        session().answer(challenge(qop="auth-conf"), "REGISTER", "sip:example.com")
    assert info.value.failure_reason is AuthenticationFailureReason.NO_COMMON_PROTOCOLS


@pytest.mark.parametrize("algorithm", ["AKAv1-MD5", "SHA-512", "SHA-1"])
def test_unsupported_algorithm_is_refused(algorithm: str) -> None:
    with pytest.raises(AuthenticationException) as info:
        session().answer(challenge(algorithm=algorithm), "REGISTER", "sip:example.com")
    assert info.value.failure_reason is AuthenticationFailureReason.NO_COMMON_PROTOCOLS
    assert info.value.realm == "example.com"


def test_other_schemes_are_refused() -> None:
    with pytest.raises(AuthenticationException) as info:
        session().answer(Challenge.parse('NTLM realm="SIP Communications Service"'), "REGISTER", "sip:x")
    assert info.value.failure_reason is AuthenticationFailureReason.NO_COMMON_PROTOCOLS
    assert info.value.supported_authentication_protocols == ("NTLM",)


@pytest.mark.parametrize("missing", ["realm", "nonce"])
def test_a_challenge_without_realm_or_nonce_is_malformed(missing: str) -> None:
    with pytest.raises(MessageParsingException) as info:
        session().answer(challenge(**{missing: "-"}), "REGISTER", "sip:example.com")
    assert missing in info.value.reason


def test_a_realm_bound_session_does_not_answer_other_realms() -> None:
    with pytest.raises(AuthenticationException) as info:
        session(realm="other.com").answer(challenge(), "REGISTER", "sip:example.com")
    assert info.value.failure_reason is AuthenticationFailureReason.MISSING_CREDENTIALS
    assert info.value.realm == "example.com"
    assert session(realm="example.com").answer(challenge(), "REGISTER", "sip:x").get("realm") == "example.com"


@pytest.mark.parametrize(
    ("method", "uri", "param"),
    [("REG ISTER", "sip:x", "method"), ("REGISTER", "", "uri"), ("REGISTER", "sip:x\r\nVia: y", "uri")],
)
def test_bad_method_or_uri_is_an_argument_error(method: str, uri: str, param: str) -> None:
    with pytest.raises(ArgumentException) as info:
        session().answer(challenge(), method, uri)
    assert info.value.param_name == param


def test_unusable_cnonce_from_the_factory_is_refused() -> None:
    digest = DigestSession("alice", PASSWORD, cnonce_factory=lambda: 'bad"cnonce')
    with pytest.raises(ArgumentException):
        digest.answer(challenge(), "REGISTER", "sip:example.com")


def test_default_cnonce_is_random_hex() -> None:
    first = DigestSession("alice", PASSWORD).answer(challenge(), "REGISTER", "sip:example.com").get("cnonce")
    second = DigestSession("alice", PASSWORD).answer(challenge(), "REGISTER", "sip:example.com").get("cnonce")
    assert first is not None
    assert re.fullmatch(r"[0-9a-f]{32,}", first)
    assert first != second


# --- nonce counting and stale handling ----------------------------------------------------------


def test_nc_counts_uses_of_a_nonce_and_restarts_on_a_new_one() -> None:
    calls = itertools.count(1)
    digest = DigestSession("alice", PASSWORD, cnonce_factory=lambda: f"cn{next(calls)}")
    first = challenge()
    answers = [digest.answer(first, "REGISTER", "sip:example.com") for _ in range(3)]
    assert [a.get("nc") for a in answers] == ["00000001", "00000002", "00000003"]
    assert {a.get("cnonce") for a in answers} == {"cn1"}
    assert answers[2].get("response") == reference_response("md5", nc="00000003", cnonce="cn1")
    assert digest.nonce_count == 3

    renewed = digest.answer(challenge(nonce="fresh"), "REGISTER", "sip:example.com")
    assert renewed.get("nc") == "00000001"
    assert renewed.get("cnonce") == "cn2"
    assert renewed.get("response") == reference_response("md5", nonce="fresh", cnonce="cn2")


def test_registrar_and_proxy_nonces_are_counted_separately() -> None:
    digest = session(["reg", "proxy"])
    registrar = challenge(nonce="r")
    proxy = challenge(realm="proxy.example.com", nonce="p")
    sent = [digest.answer(c, "INVITE", "sip:bob@example.com") for c in (registrar, proxy, registrar, proxy)]
    assert [(a.get("nonce"), a.get("nc"), a.get("cnonce")) for a in sent] == [
        ("r", "00000001", "reg"),
        ("p", "00000001", "proxy"),
        ("r", "00000002", "reg"),
        ("p", "00000002", "proxy"),
    ]


def test_nc_is_hex() -> None:
    digest = session()
    offered = challenge()
    for _ in range(10):
        last = digest.answer(offered, "REGISTER", "sip:example.com")
    assert last.get("nc") == "0000000a"


def test_request_without_credentials_is_answered() -> None:
    assert session().assess(challenge(), None) is ChallengeVerdict.ANSWER


def test_challenge_for_another_realm_is_answered() -> None:
    digest = session()
    sent = digest.answer(challenge(), "REGISTER", "sip:example.com")
    assert digest.assess(challenge(realm="proxy.example.com"), sent) is ChallengeVerdict.ANSWER


def test_stale_nonce_is_retried_without_prompting_with_the_new_nonce() -> None:
    digest = session()
    sent = digest.answer(challenge(), "REGISTER", "sip:example.com")
    renewed = challenge(nonce="n2", stale="TRUE")
    assert is_stale(renewed)
    assert digest.assess(renewed, sent) is ChallengeVerdict.RETRY_WITHOUT_PROMPT
    retry = digest.answer(renewed, "REGISTER", "sip:example.com")
    assert retry.get("nonce") == "n2"
    assert retry.get("nc") == "00000001"


def test_refused_answer_to_a_fresh_nonce_means_wrong_credentials() -> None:
    digest = session()
    sent = digest.answer(challenge(), "REGISTER", "sip:example.com")
    for again in (challenge(nonce="n2"), challenge(nonce="n2", stale="false"), challenge()):
        assert digest.assess(again, sent) is ChallengeVerdict.CREDENTIALS_REJECTED


def test_refused_reuse_of_a_nonce_is_retried_with_the_new_nonce() -> None:
    digest = session()
    offered = challenge()
    digest.answer(offered, "REGISTER", "sip:example.com")
    reused = digest.answer(offered, "REGISTER", "sip:example.com")
    assert digest.assess(challenge(nonce="n2"), reused) is ChallengeVerdict.RETRY_WITHOUT_PROMPT


def test_refused_reuse_without_qop_is_retried_too() -> None:
    digest = session()
    first_use = Credentials.parse(str(digest.answer(challenge(qop="-", nonce="n1"), "REGISTER", "sip:x")))
    assert digest.assess(challenge(qop="-", nonce="n2"), first_use) is ChallengeVerdict.CREDENTIALS_REJECTED
    reused = digest.answer(challenge(qop="-", nonce="n1"), "REGISTER", "sip:x")
    assert digest.assess(challenge(qop="-", nonce="n2"), reused) is ChallengeVerdict.RETRY_WITHOUT_PROMPT


def test_stale_challenge_repeating_the_used_nonce_is_a_refusal() -> None:
    digest = session()
    sent = digest.answer(challenge(), "REGISTER", "sip:example.com")
    assert digest.assess(challenge(stale="true"), sent) is ChallengeVerdict.CREDENTIALS_REJECTED


# --- choosing among challenges ------------------------------------------------------------------


def test_strongest_algorithm_is_chosen_whatever_the_order() -> None:
    md5 = challenge(algorithm="MD5", nonce="a")
    sha256 = challenge(algorithm="SHA-256", nonce="b")
    sha512 = challenge(algorithm="SHA-512-256", nonce="c")
    ntlm = Challenge.parse('NTLM realm="SIP Communications Service", targetname="x", version=4')
    assert select_challenge([md5, sha256]) is sha256
    assert select_challenge([sha256, md5]) is sha256
    assert select_challenge([ntlm, md5, sha512, sha256]) is sha512
    assert select_challenge([ntlm, md5]) is md5


def test_a_challenge_without_algorithm_counts_as_md5_and_ties_keep_server_order() -> None:
    plain = challenge(nonce="a")
    sess = challenge(algorithm="MD5-sess", nonce="b")
    assert select_challenge([plain, sess]) is plain
    assert select_challenge([sess, plain]) is sess


def test_unanswerable_challenges_are_skipped() -> None:
    usable = challenge(algorithm="MD5", nonce="ok")
    offered = [challenge(algorithm="SHA-256", nonce="-"), challenge(algorithm="AKAv1-MD5"), usable]
    assert select_challenge(offered) is usable


def test_no_digest_challenge_means_no_common_protocols() -> None:
    offered = [
        Challenge.parse('NTLM realm="SIP Communications Service", targetname="x", version=4'),
        Challenge.parse('Kerberos realm="SIP Communications Service", targetname="sip/x", version=4'),
        challenge(algorithm="AKAv1-MD5"),
    ]
    with pytest.raises(AuthenticationException) as info:
        select_challenge(offered)
    assert info.value.failure_reason is AuthenticationFailureReason.NO_COMMON_PROTOCOLS
    assert info.value.supported_authentication_protocols == ("NTLM", "Kerberos", "Digest")


def test_realm_filter_picks_the_realm_or_reports_missing_credentials() -> None:
    ours = challenge(realm="ours", nonce="a")
    theirs = challenge(realm="theirs", algorithm="SHA-256", nonce="b")
    assert select_challenge([ours, theirs], realm="ours") is ours
    with pytest.raises(AuthenticationException) as info:
        select_challenge([theirs], realm="ours")
    assert info.value.failure_reason is AuthenticationFailureReason.MISSING_CREDENTIALS
    assert info.value.realm == "theirs"


# --- secrecy --------------------------------------------------------------------------------------


def test_password_never_appears_in_repr_str_or_errors() -> None:
    digest = DigestSession("alice", PASSWORD, realm="example.com")
    texts = [repr(digest), str(digest)]
    answer = digest.answer(challenge(opaque="o"), "REGISTER", "sip:example.com")
    texts += [repr(answer), str(answer)]
    for bad in (challenge(algorithm="AKAv1-MD5"), challenge(realm="elsewhere"), challenge(nonce="-")):
        with pytest.raises((AuthenticationException, MessageParsingException)) as info:
            digest.answer(bad, "REGISTER", "sip:example.com")
        texts += [str(info.value), repr(info.value)]
    assert all(PASSWORD not in text for text in texts)
    assert "alice" in repr(digest)
    response = answer.get("response")
    assert response is not None
    assert response not in repr(answer)


# --- properties -----------------------------------------------------------------------------------

printable = st.text(st.characters(codec="utf-8", exclude_characters="\r\n"), min_size=1, max_size=16)


@given(
    user=printable,
    password=st.text(max_size=16),
    realm=printable,
    nonce=printable,
    uri=printable,
    body=st.binary(max_size=32),
    algorithm=st.sampled_from([a for a in DigestAlgorithm if a.is_available]),
    qop=st.sampled_from(["auth", "auth-int", "-"]),
)
def test_answers_match_the_rfc_formula_and_survive_the_wire(
    *, user: str, password: str, realm: str, nonce: str, uri: str, body: bytes, algorithm: DigestAlgorithm, qop: str
) -> None:
    digest = DigestSession(user, password, cnonce_factory=lambda: "c0ffee")
    offered = challenge(realm=realm, nonce=nonce, algorithm=algorithm.value, qop=qop)
    answer = Credentials.parse(str(digest.answer(offered, "INVITE", uri, body)))
    expected = reference_response(
        algorithm.hash_name,
        sess=algorithm.value.endswith("-sess"),
        qop=None if qop == "-" else qop,
        user=user,
        password=password,
        realm=realm,
        nonce=nonce,
        method="INVITE",
        uri=uri,
        body=body,
    )
    assert answer.get("response") == expected
    assert (answer.get("username"), answer.get("realm"), answer.get("nonce"), answer.get("uri")) == (
        user,
        realm,
        nonce,
        uri,
    )
