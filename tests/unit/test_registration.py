"""The sans-IO REGISTER client: what it sends and what it decides for each kind of response."""

from __future__ import annotations

import random

import pytest

from ucma.signaling.digest import DigestAlgorithm, DigestQop, compute_digest_response
from ucma.signaling.digest_authenticator import DigestAuthenticator
from ucma.signaling.exceptions import AuthenticationException, AuthenticationFailureReason, RegisterException
from ucma.signaling.registration import (
    Failed,
    Registered,
    RegistrationClient,
    RetryLater,
    SendAgain,
    Unregistered,
    refresh_delay,
)
from ucma.signaling.registration_states import RegistrationTransitionReason
from ucma.signaling.sip import NameAddress, Parameters, SipRequest, Via, make_response, parse_message, parse_sip_uri
from ucma.signaling.sip.auth_headers import Credentials

AOR = parse_sip_uri("sip:alice@example.com")
INSTANCE = '"<urn:uuid:00000000-0000-0000-0000-000000000001>"'
NONCE = "5f2a1c9e8b7d6a5f"


def contact(port: int = 5070) -> NameAddress:
    return NameAddress(f"sip:alice@127.0.0.1:{port};transport=tcp", None, Parameters([("+sip.instance", INSTANCE)]))


def client(**kwargs: object) -> RegistrationClient:
    kwargs.setdefault("aor", AOR)
    kwargs.setdefault("contact", contact())
    kwargs.setdefault("rng", random.Random(7))
    return RegistrationClient(**kwargs)  # type: ignore[arg-type]


def via() -> Via:
    return Via("TCP", "127.0.0.1", 5070, Parameters([("branch", "z9hG4bK" + str(random.random())[2:])]))


def wire(request: SipRequest) -> SipRequest:
    """What the registrar sees: the request after serialisation and parsing."""
    parsed = parse_message(request.to_bytes())
    assert isinstance(parsed, SipRequest)
    return parsed


def respond(request: SipRequest, code: int, *headers: tuple[str, str]) -> object:
    response = make_response(wire(request), code, to_tag="reg1", headers=headers)
    return parse_message(response.to_bytes())


def challenge(nonce: str = NONCE, stale: bool = False) -> tuple[str, str]:
    value = f'Digest realm="example.com", nonce="{nonce}", qop="auth", algorithm=MD5'
    return ("WWW-Authenticate", value + (", stale=true" if stale else ""))


def test_registers_share_call_id_and_from_tag_and_count_cseq() -> None:
    c = client()
    first, second = wire(c.create_register(via())), wire(c.create_register(via()))
    assert first.method == "REGISTER"
    assert str(first.request_uri) == "sip:example.com"
    assert first.call_id == second.call_id
    assert first.from_header.tag == second.from_header.tag and first.from_header.tag
    assert first.to_header.tag is None
    assert (first.cseq.number, second.cseq.number) == (1, 2)
    assert first.contacts[0].parameters.get("+sip.instance") == INSTANCE.strip('"')
    assert first.expires == 3600


def test_challenge_is_answered_with_a_digest_the_registrar_can_verify() -> None:
    c = client(authenticator=DigestAuthenticator("alice", "wonderland"))
    first = c.create_register(via())
    assert "Authorization" not in first.headers
    step = c.process_response(first, respond(first, 401, challenge()))  # type: ignore[arg-type]
    assert step == SendAgain("challenge")
    second = wire(c.create_register(via()))
    creds = Credentials.parse(second.headers.get("Authorization") or "")
    expected = compute_digest_response(
        algorithm=DigestAlgorithm.MD5,
        username="alice",
        password="wonderland",
        realm="example.com",
        nonce=NONCE,
        method="REGISTER",
        uri="sip:example.com",
        qop=DigestQop.AUTH,
        nc=creds.get("nc") or "",
        cnonce=creds.get("cnonce") or "",
    )
    assert creds.get("response") == expected
    assert creds.get("username") == "alice"


def test_refused_answer_to_a_fresh_nonce_is_a_wrong_password() -> None:
    c = client(authenticator=DigestAuthenticator("alice", "bad"))
    first = c.create_register(via())
    c.process_response(first, respond(first, 401, challenge()))  # type: ignore[arg-type]
    second = c.create_register(via())
    step = c.process_response(second, respond(second, 401, challenge()))  # type: ignore[arg-type]
    assert isinstance(step, Failed)
    assert isinstance(step.error, AuthenticationException)
    assert step.error.failure_reason is AuthenticationFailureReason.INVALID_CREDENTIALS
    assert step.error.response_data is not None and step.error.response_data.response_code == 401
    assert "bad" not in str(step.error)


def test_stale_nonce_is_answered_again_without_failing() -> None:
    c = client(authenticator=DigestAuthenticator("alice", "wonderland"))
    first = c.create_register(via())
    c.process_response(first, respond(first, 401, challenge()))  # type: ignore[arg-type]
    second = c.create_register(via())
    step = c.process_response(second, respond(second, 401, challenge("newnonce", stale=True)))  # type: ignore[arg-type]
    assert step == SendAgain("challenge")
    third = wire(c.create_register(via()))
    assert Credentials.parse(third.headers.get("Authorization") or "").get("nonce") == "newnonce"


def test_challenge_without_credential_fails_with_missing_credentials() -> None:
    c = client()
    first = c.create_register(via())
    step = c.process_response(first, respond(first, 401, challenge()))  # type: ignore[arg-type]
    assert isinstance(step, Failed)
    assert isinstance(step.error, AuthenticationException)
    assert step.error.failure_reason is AuthenticationFailureReason.MISSING_CREDENTIALS


def test_granted_expiry_comes_from_our_contact_binding() -> None:
    c = client()
    request = c.create_register(via())
    other = '<sip:alice@10.0.0.9:5060>;expires=50;+sip.instance="<urn:uuid:other>"'
    ours = f"<sip:alice@127.0.0.1:5070;transport=tcp>;expires=120;+sip.instance={INSTANCE}"
    step = c.process_response(
        request,
        respond(request, 200, ("Contact", other), ("Contact", ours), ("Expires", "999")),  # type: ignore[arg-type]
    )
    assert isinstance(step, Registered)
    assert step.expires == 120
    assert 0.8 * 120 <= step.refresh_after <= 0.9 * 120
    assert c.registered


def test_expires_header_is_used_when_the_binding_has_none() -> None:
    c = client()
    request = c.create_register(via())
    step = c.process_response(
        request,
        respond(
            request,
            200,
            ("Contact", f"<sip:alice@127.0.0.1:5070;transport=tcp>;+sip.instance={INSTANCE}"),
            ("Expires", "300"),
        ),  # type: ignore[arg-type]
    )
    assert isinstance(step, Registered) and step.expires == 300


def test_response_without_our_binding_is_a_failure() -> None:
    c = client()
    request = c.create_register(via())
    step = c.process_response(
        request,
        respond(request, 200, ("Contact", '<sip:alice@10.0.0.9>;expires=60;+sip.instance="<urn:uuid:x>"')),  # type: ignore[arg-type]
    )
    assert isinstance(step, Failed) and isinstance(step.error, RegisterException)


def test_unchallenging_server_is_refused_when_authentication_is_required() -> None:
    c = client(authenticator=DigestAuthenticator("alice", "pw"), allow_no_authentication=False)
    request = c.create_register(via())
    step = c.process_response(request, respond(request, 200, ("Expires", "60")))  # type: ignore[arg-type]
    assert isinstance(step, Failed)
    assert isinstance(step.error, AuthenticationException)
    assert step.error.failure_reason is AuthenticationFailureReason.UNCHALLENGING_SERVER
    assert step.remove_binding


def test_unchallenging_server_is_accepted_when_allowed() -> None:
    c = client(authenticator=DigestAuthenticator("alice", "pw"), allow_no_authentication=True)
    request = c.create_register(via())
    step = c.process_response(request, respond(request, 200, ("Expires", "60")))  # type: ignore[arg-type]
    assert isinstance(step, Registered) and step.expires == 60


def test_interval_too_brief_adopts_min_expires() -> None:
    c = client(requested_expires=60)
    request = c.create_register(via())
    step = c.process_response(request, respond(request, 423, ("Min-Expires", "1800")))  # type: ignore[arg-type]
    assert step == SendAgain("interval")
    assert wire(c.create_register(via())).expires == 1800


def test_interval_too_brief_without_a_larger_minimum_fails() -> None:
    c = client(requested_expires=600)
    request = c.create_register(via())
    step = c.process_response(request, respond(request, 423, ("Min-Expires", "300")))  # type: ignore[arg-type]
    assert isinstance(step, Failed)


def test_redirect_is_followed_up_to_the_limit() -> None:
    c = client(max_redirects=1)
    request = c.create_register(via())
    step = c.process_response(request, respond(request, 302, ("Contact", "<sip:reg2.example.com:5080;transport=tcp>")))  # type: ignore[arg-type]
    assert isinstance(step, SendAgain) and step.redirect_target is not None
    assert (step.redirect_target.host, step.redirect_target.port) == ("reg2.example.com", 5080)
    assert str(wire(c.create_register(via())).request_uri) == "sip:reg2.example.com:5080;transport=tcp"
    again = c.create_register(via())
    step = c.process_response(again, respond(again, 302, ("Contact", "<sip:reg3.example.com>")))  # type: ignore[arg-type]
    assert isinstance(step, Failed)


def test_service_unavailable_with_retry_after_is_retried_later() -> None:
    c = client()
    request = c.create_register(via())
    step = c.process_response(request, respond(request, 503, ("Retry-After", "17")))  # type: ignore[arg-type]
    assert isinstance(step, RetryLater) and step.delay == 17


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        (403, RegistrationTransitionReason.UNAUTHORIZED_ACCESS),
        (404, RegistrationTransitionReason.USER_CHANGED),
        (503, RegistrationTransitionReason.NONE),
    ],
)
def test_other_failures_carry_the_response(code: int, reason: RegistrationTransitionReason) -> None:
    c = client()
    request = c.create_register(via())
    step = c.process_response(request, respond(request, code))  # type: ignore[arg-type]
    assert isinstance(step, Failed)
    assert isinstance(step.error, RegisterException)
    assert step.error.deregister_reason is reason
    assert step.error.response_data is not None and step.error.response_data.response_code == code


def test_unregister_sends_expires_zero_and_reports_removal() -> None:
    c = client()
    request = c.create_register(via(), unregister=True)
    assert wire(request).expires == 0
    step = c.process_response(request, respond(request, 200))  # type: ignore[arg-type]
    assert isinstance(step, Unregistered)
    assert not c.registered


def test_new_contact_after_reconnect_removes_the_stale_binding_once() -> None:
    c = client()
    request = c.create_register(via())
    binding = f"<sip:alice@127.0.0.1:5070;transport=tcp>;expires=60;+sip.instance={INSTANCE}"
    c.process_response(request, respond(request, 200, ("Contact", binding)))  # type: ignore[arg-type]
    c.replace_contact(contact(6000))
    refreshed = wire(c.create_register(via()))
    uris = [(a.uri_text, a.parameters.get("expires")) for a in refreshed.contacts]
    assert ("sip:alice@127.0.0.1:6000;transport=tcp", None) in uris
    assert ("sip:alice@127.0.0.1:5070;transport=tcp", "0") in uris
    assert len(wire(c.create_register(via())).contacts) == 1


def test_gruu_register_action_and_keep_alive_are_reported() -> None:
    c = client()
    request = c.create_register(via())
    binding = (
        f"<sip:alice@127.0.0.1:5070;transport=tcp>;expires=900;+sip.instance={INSTANCE};"
        'gruu="sip:alice@example.com;opaque=user:epid:abc;gruu"'
    )
    step = c.process_response(
        request,
        respond(
            request,
            200,
            ("Contact", binding),
            ("presence-state", 'register-action="added"'),
            ("ms-keep-alive", "UAS; tcp=no; hop-hop=yes; end-end=no; timeout=300"),
        ),  # type: ignore[arg-type]
    )
    assert isinstance(step, Registered)
    assert step.gruu == "sip:alice@example.com;opaque=user:epid:abc;gruu"
    assert step.register_action == "added"
    assert step.keep_alive_interval == 300


def test_refresh_delays_are_spread_and_before_expiry() -> None:
    rng = random.Random(1)
    delays = [refresh_delay(3600, rng) for _ in range(1000)]
    assert all(0.8 * 3600 <= d <= 0.9 * 3600 for d in delays)
    assert max(delays) - min(delays) > 0.05 * 3600  # spread, not one burst
    assert all(0 < refresh_delay(5, rng) < 5 for _ in range(100))
    assert refresh_delay(60, rng) <= 55
