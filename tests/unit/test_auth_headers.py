"""WWW-Authenticate / Authorization value syntax: parsing, serialising, errors and redaction."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ucma.signaling.exceptions import ArgumentException, MessageParsingException
from ucma.signaling.sip.auth_headers import Challenge, Credentials

NTLM_CHALLENGE = 'NTLM realm="SIP Communications Service", targetname="sip/srv.contoso.com", version=4'
NTLM_AUTH_INFO = (
    'NTLM qop="auth", opaque="2BDBAC9D", srand="3453453", snum="1", '
    'rspauth="01000000E615438A917661BE64000000", targetname="srv.contoso.com", '
    'realm="SIP Communications Service", version=4'
)
NTLM_FIRST_LEG = (
    'NTLM qop="auth", realm="SIP Communications Service", targetname="srv.contoso.com", gssapi-data="", version=4'
)


def test_ms_sipae_challenge_values_and_quoting() -> None:
    challenge = Challenge.parse(NTLM_CHALLENGE)
    assert challenge.scheme == "NTLM"
    assert challenge.token68 is None
    assert challenge.params == (
        ("realm", "SIP Communications Service"),
        ("targetname", "sip/srv.contoso.com"),
        ("version", "4"),
    )
    assert challenge.is_quoted("realm")
    assert not challenge.is_quoted("version")
    assert str(challenge) == NTLM_CHALLENGE


@pytest.mark.parametrize("value", [NTLM_CHALLENGE, NTLM_AUTH_INFO, NTLM_FIRST_LEG])
def test_ms_sipae_values_serialise_back_unchanged(value: str) -> None:
    assert str(Credentials.parse(value)) == value
    assert str(Challenge.parse(value)) == value


def test_ms_sipae_signature_params_are_kept_quoted_even_when_they_are_tokens() -> None:
    info = Challenge.parse(NTLM_AUTH_INFO)
    assert info.get("snum") == "1"
    assert info.is_quoted("snum")
    assert info.get("rspauth") == "01000000E615438A917661BE64000000"
    assert 'snum="1"' in str(info)


def test_empty_gssapi_data_is_an_empty_quoted_value() -> None:
    credentials = Credentials.parse(NTLM_FIRST_LEG)
    assert credentials.get("gssapi-data") == ""
    assert 'gssapi-data=""' in str(credentials)


def test_get_is_case_insensitive_and_none_when_absent() -> None:
    challenge = Challenge.parse('Digest Realm="a", NONCE="n"')
    assert challenge.get("realm") == "a"
    assert challenge.get("nonce") == "n"
    assert challenge.get("opaque") is None


def test_token68_value() -> None:
    credentials = Credentials.parse("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==")
    assert credentials.scheme == "Basic"
    assert credentials.token68 == "QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
    assert credentials.params == ()
    assert str(credentials) == "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="


def test_a_lone_name_with_trailing_equals_is_a_token68() -> None:
    # RFC 7235 grammar: "realm=" is a token68, not an auth-param with an empty value.
    assert Challenge.parse("Digest realm=").token68 == "realm="


def test_scheme_alone() -> None:
    challenge = Challenge.parse("  Negotiate  ")
    assert (challenge.scheme, challenge.params, challenge.token68) == ("Negotiate", (), None)
    assert str(challenge) == "Negotiate"


def test_quoted_values_may_hold_separators_and_escapes() -> None:
    challenge = Challenge.parse(r'Digest realm="a, b; <c>", nonce="x\"y\\z", opaque=""')
    assert challenge.get("realm") == "a, b; <c>"
    assert challenge.get("nonce") == 'x"y\\z'
    assert challenge.get("opaque") == ""
    assert Challenge.parse(str(challenge)) == challenge


def test_whitespace_around_equals_and_commas_is_tolerated() -> None:
    spaced = Challenge.parse('Digest\trealm = "r" ,\tnonce= "n",algorithm =MD5 , qop="auth"  ')
    assert spaced.params == (("realm", "r"), ("nonce", "n"), ("algorithm", "MD5"), ("qop", "auth"))
    assert str(spaced) == 'Digest realm="r", nonce="n", algorithm=MD5, qop="auth"'


def test_empty_list_elements_are_ignored() -> None:
    assert Challenge.parse('Digest , realm="r",, nonce="n",').params == (("realm", "r"), ("nonce", "n"))


def test_unknown_scheme_from_rfc4475_is_accepted() -> None:
    credentials = Credentials.parse("NoOneKnowsThisScheme opaque-data=here")
    assert credentials.scheme == "NoOneKnowsThisScheme"
    assert credentials.get("opaque-data") == "here"


def test_rfc3261_quoted_pair_of_a_control_character_round_trips() -> None:
    challenge = Challenge.parse('X a="nul\\\x00bel\\\x07"')
    assert challenge.get("a") == "nul\x00bel\x07"
    assert Challenge.parse(str(challenge)) == challenge


def test_one_value_is_never_split_into_two_challenges() -> None:
    with pytest.raises(MessageParsingException):
        Challenge.parse('Digest realm="a", nonce="1", Digest realm="b", nonce="2"')


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "missing auth-scheme"),
        ("   ", "missing auth-scheme"),
        ('"Digest" realm="a"', "missing auth-scheme"),
        ("Dige(st realm=a", "invalid auth-scheme"),
        ('Digest,realm="a"', "invalid auth-scheme"),
        ('Digest realm="abc', "unterminated quoted string"),
        ('Digest realm="abc\\"', "unterminated quoted string"),
        ('Digest realm="a", ="b"', "empty auth-param name"),
        ('Digest realm="a", @x="b"', "invalid auth-param name"),
        ('Digest realm="a", nonce', "missing '=' after auth-param name"),
        ('Digest realm="a" nonce="b"', "expected ',' between auth-params"),
        ("Digest realm=a b", "expected ',' between auth-params"),
        ('Digest realm=, nonce="n"', "invalid auth-param value"),
        ("Digest realm=<sip:x>", "invalid auth-param value"),
        ('Digest realm="a", REALM="b"', "duplicate auth-param"),
        ('Digest realm="a\x01"', "control character in quoted string"),
        ('Digest realm="a\r\n b"', "control character in quoted string"),
        ('Digest realm="a\\\nb"', "line break in quoted string"),
        ("Basic abc== def", "invalid auth-param value"),
    ],
)
def test_malformed_values_say_what_is_wrong(value: str, reason: str) -> None:
    for cls in (Challenge, Credentials):
        with pytest.raises(MessageParsingException) as info:
            cls.parse(value)
        assert info.value.reason == reason


def test_parse_errors_do_not_echo_credential_values() -> None:
    with pytest.raises(MessageParsingException) as info:
        Credentials.parse('Digest username="bob", response="0123456789abcdef" garbage')
    assert "0123456789abcdef" not in str(info.value)
    assert info.value.offset == len('Digest username="bob", response="0123456789abcdef" ')


def test_credentials_repr_hides_response_gssapi_data_and_token68() -> None:
    digest = Credentials.parse('Digest username="bob", response="6629fae49393a05397450978507c4ef1"')
    ntlm = Credentials.parse('NTLM gssapi-data="TlRMTVNTUAADAAAA", realm="r"')
    basic = Credentials.parse("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==")
    for credentials, secret in (
        (digest, "6629fae49393a05397450978507c4ef1"),
        (ntlm, "TlRMTVNTUAADAAAA"),
        (basic, "QWxhZGRpbjpvcGVuIHNlc2FtZQ=="),
    ):
        assert secret not in repr(credentials)
        assert "<redacted>" in repr(credentials)
        assert secret in str(credentials)  # the wire form must carry it
    assert 'username="bob"' in repr(digest)
    assert "TlRMTVNTUAADAAAA" in repr(Challenge.parse('NTLM gssapi-data="TlRMTVNTUAADAAAA"'))


def test_challenge_and_credentials_with_the_same_text_differ() -> None:
    challenge: object = Challenge.parse('Digest realm="a"')
    assert challenge != Credentials.parse('Digest realm="a"')


def test_constructed_values_are_quoted_when_they_are_not_tokens() -> None:
    credentials = Credentials("Digest", (("username", 'a "b"'), ("nc", "00000001"), ("uri", "sip:x@y")))
    assert str(credentials) == 'Digest username="a \\"b\\"", nc=00000001, uri="sip:x@y"'
    assert credentials.quoted == frozenset({"username", "uri"})
    assert Credentials.parse(str(credentials)) == credentials


def test_requested_quoting_is_honoured_and_normalised_to_lower_case() -> None:
    challenge = Challenge("Digest", (("Realm", "r"), ("algorithm", "MD5")), quoted=frozenset({"REALM", "absent"}))
    assert str(challenge) == 'Digest Realm="r", algorithm=MD5'
    assert challenge.quoted == frozenset({"realm"})


@pytest.mark.parametrize(
    ("kwargs", "param_name"),
    [
        ({"scheme": "Di gest"}, "scheme"),
        ({"scheme": "Digest", "params": (("a b", "1"),)}, "params"),
        ({"scheme": "Digest", "params": (("a", "1"), ("A", "2"))}, "params"),
        ({"scheme": "Basic", "token68": "a b"}, "token68"),
        ({"scheme": "Basic", "token68": "abc", "params": (("a", "1"),)}, "token68"),
    ],
)
def test_constructor_rejects_what_cannot_be_serialised(kwargs: dict[str, object], param_name: str) -> None:
    with pytest.raises(ArgumentException) as info:
        Credentials(**kwargs)  # type: ignore[arg-type]
    assert info.value.param_name == param_name


def test_line_breaks_in_values_are_refused_without_echoing_the_value() -> None:
    with pytest.raises(ArgumentException) as info:
        Credentials("Digest", (("response", "secret\r\nVia: x"),))
    assert "secret" not in str(info.value)
    assert "response" in str(info.value)


def test_with_param_replaces_in_place_or_appends() -> None:
    credentials = Credentials.parse('NTLM qop="auth", realm="r", version=4')
    signed = credentials.with_param("cnum", "1").with_param("Realm", "s").with_param("version", "5")
    assert str(signed) == 'NTLM qop="auth", Realm="s", version=5, cnum="1"'
    assert str(signed.with_param("cnum", "2", quoted=False)) == 'NTLM qop="auth", Realm="s", version=5, cnum=2'
    assert str(credentials) == 'NTLM qop="auth", realm="r", version=4'


# --- properties ---------------------------------------------------------------------------

TOKEN_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~"
tokens = st.text(alphabet=TOKEN_ALPHABET, min_size=1, max_size=12)
# Any text without line breaks is a storable value (surrogates cannot be encoded on the wire).
values = st.text(st.characters(codec="utf-8", exclude_characters="\r\n"), max_size=20)


def wire_value(value: str, quoted: bool) -> str:
    """An independent rendering of a param value: bare token, else a quoted-string with quoted-pairs."""
    if not quoted and value and all(c in TOKEN_ALPHABET for c in value):
        return value
    escaped = "".join("\\" + c if c in '"\\' or (ord(c) < 32 and c != "\t") or c == "\x7f" else c for c in value)
    return f'"{escaped}"'


@st.composite
def auth_values(draw: st.DrawFn) -> Challenge:
    scheme = draw(tokens)
    if draw(st.booleans()):
        token68 = draw(st.from_regex(r"[A-Za-z0-9\-._~+/]{1,20}={0,2}", fullmatch=True))
        return Challenge(scheme, token68=token68)
    names = draw(st.lists(tokens, max_size=6, unique_by=str.lower))
    params = tuple((name, draw(values)) for name in names)
    quoted = frozenset(name.lower() for name in names if draw(st.booleans()))
    return Challenge(scheme, params, None, quoted)


@given(auth_values())
def test_serialised_values_parse_back_equal(challenge: Challenge) -> None:
    assert Challenge.parse(str(challenge)) == challenge
    credentials = Credentials(challenge.scheme, challenge.params, challenge.token68, challenge.quoted)
    assert Credentials.parse(str(credentials)) == credentials


@given(auth_values(), st.sampled_from(["", " ", "\t", "  \t"]), st.sampled_from([",", " ,", ", ", "\t,\t"]))
def test_layout_whitespace_does_not_change_the_value(challenge: Challenge, pad: str, comma: str) -> None:
    if challenge.token68 is not None or not challenge.params:
        text = pad + str(challenge) + pad
    else:
        items = [f"{name}{pad}={pad}{wire_value(value, challenge.is_quoted(name))}" for name, value in challenge.params]
        text = f"{pad}{challenge.scheme} {pad}{comma.join(items)}{pad}"
    assert Challenge.parse(text) == challenge


@given(st.text(max_size=80))
def test_arbitrary_text_parses_or_raises_message_parsing_exception(text: str) -> None:
    try:
        value = Credentials.parse(text)
    except MessageParsingException:
        return
    assert Credentials.parse(str(value)) == value


@given(st.text(alphabet='Digest realm=nonce"\\,; \t=<>\r\n\x00\x7fé', max_size=60))
def test_near_miss_text_parses_or_raises_message_parsing_exception(text: str) -> None:
    try:
        value = Challenge.parse(text)
    except MessageParsingException as exc:
        assert exc.reason
        return
    assert Challenge.parse(str(value)) == value
