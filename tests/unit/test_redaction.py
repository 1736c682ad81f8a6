"""redact(): SIP text fit for logs, with every credential hidden but header names and schemes kept."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ucma.signaling.digest import DigestSession
from ucma.signaling.sip.auth_headers import Challenge
from ucma.signaling.sip.redaction import REDACTED, redact, redact_auth_value

SECRET = "5f4dcc3b5aa765d61d8327deb882cf99"


def message(*headers: str, body: str = "") -> str:
    lines = ["REGISTER sip:example.com SIP/2.0", "Via: SIP/2.0/TCP 10.0.0.1:5060;branch=z9hG4bK1", *headers]
    return "\r\n".join([*lines, "", body])


def test_digest_response_is_hidden_and_the_rest_kept() -> None:
    text = message(
        f'Authorization: Digest username="alice", realm="example.com", nonce="abc", uri="sip:example.com", '
        f'response="{SECRET}", algorithm=MD5, qop=auth, nc=00000001, cnonce="xyz"'
    )
    out = redact(text)
    assert SECRET not in out
    assert f"response={REDACTED}" in out
    assert 'Authorization: Digest username="alice", realm="example.com", nonce="abc"' in out
    assert "algorithm=MD5" in out and "qop=auth" in out and 'cnonce="xyz"' in out
    assert out.startswith("REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/TCP 10.0.0.1:5060;branch=z9hG4bK1\r\n")


def test_a_real_password_derived_answer_never_survives() -> None:
    challenge = Challenge.parse('Digest realm="example.com", nonce="dcd98b7102dd2f0e", qop="auth", algorithm=MD5')
    answer = DigestSession("alice", "alicepw").answer(challenge, "REGISTER", "sip:example.com")
    response = answer.get("response")
    assert response
    for header in ("Authorization", "Proxy-Authorization", "authorization"):
        out = redact(message(f"{header}: {answer}"))
        assert response not in out
        assert "alicepw" not in out
        assert f"{header}: Digest username=" in out


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Basic YWxpY2U6YWxpY2Vwdw==", f"Basic {REDACTED}"),
        ("Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln", f"Bearer {REDACTED}"),
        ("Negotiate YIIBhwYGKwYBBQUCoIIBezCCAXegDTALBgkqhkiG9xIBAgI=", f"Negotiate {REDACTED}"),
    ],
)
def test_token68_credentials_are_hidden_keeping_the_scheme(value: str, expected: str) -> None:
    out = redact(message(f"Proxy-Authorization: {value}"))
    assert f"Proxy-Authorization: {expected}" in out
    assert value.split(" ", 1)[1] not in out


def test_ms_sipae_signature_parameters_are_hidden_in_any_auth_header() -> None:
    text = message(
        'Proxy-Authorization: NTLM qop="auth", realm="SIP Communications Service", opaque="8A2E", '
        'crand="4d7a3b2c", cnum="7", targetname="server.contoso.com", response="0100000063a8"',
        'WWW-Authenticate: NTLM realm="SIP Communications Service", gssapi-data="TlRMTVNTUAACAAAA", version=4',
        'Authentication-Info: NTLM rspauth="01000000a1b2", srand="3c2b1a09", snum="8", realm="x", version=4',
    )
    out = redact(text)
    for secret in ("4d7a3b2c", "0100000063a8", "TlRMTVNTUAACAAAA", "01000000a1b2", "3c2b1a09"):
        assert secret not in out
    for kept in ('opaque="8A2E"', 'targetname="server.contoso.com"', "version=4", "WWW-Authenticate: NTLM realm="):
        assert kept in out
    assert f'cnum={REDACTED}' in out and f"snum={REDACTED}" in out


def test_challenge_token68_is_not_a_secret_and_stays() -> None:
    assert redact_auth_value("Negotiate YIIBhw==", credentials=False) == "Negotiate YIIBhw=="


def test_unparseable_credentials_are_hidden_after_the_scheme() -> None:
    text = message(f'Authorization: Digest username="alice", response="{SECRET}" trailing garbage "')
    out = redact(text)
    assert SECRET not in out
    assert f"Authorization: Digest {REDACTED}" in out


def test_a_quoted_value_cannot_smuggle_a_secret_past_the_parser() -> None:
    text = message(f'Authorization: Digest opaque="x response=", response="{SECRET}"')
    assert SECRET not in redact(text)


def test_folded_authorization_header_is_redacted_as_a_whole() -> None:
    text = message("Authorization: Digest username=\"alice\",", f' response="{SECRET}",', '\trealm="r"')
    out = redact(text)
    assert SECRET not in out
    assert 'realm="r"' in out


def test_text_without_auth_headers_is_returned_unchanged() -> None:
    text = message("Contact: <sip:alice@10.0.0.1>", "Subject: response=\"not a credential\"", body="v=0\r\n")
    assert redact(text) == text


def test_authorization_inside_a_body_is_redacted_too() -> None:
    text = message("Content-Type: message/sipfrag", body=f"Authorization: Basic {SECRET}\r\n")
    assert SECRET not in redact(text)


def test_odd_line_breaks_cannot_split_a_secret_off_its_header() -> None:
    text = message(f'Authorization: Digest username="a",\x0b response="{SECRET}"')
    assert SECRET not in redact(text)


def test_header_names_are_matched_case_insensitively_and_lf_only_text_works() -> None:
    text = f'PROXY-AUTHORIZATION: Digest username="a", response="{SECRET}"\nX-Other: 1\n'
    out = redact(text)
    assert SECRET not in out
    assert out.endswith("\nX-Other: 1\n")


@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=40))
def test_any_response_value_is_hidden(value: str) -> None:
    secret = "S3CRET" + value
    escaped = secret.replace("\\", "\\\\").replace('"', '\\"')
    out = redact(f'Authorization: Digest username="a", response="{escaped}"')
    assert "S3CRET" not in out
