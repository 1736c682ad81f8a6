"""SipStack against a real Kamailio registrar over UDP, TCP and TLS: challenge, digest, unregister."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from ucma.runtime.connections import Connection, SipTransportType
from ucma.runtime.sip_stack import SipStack
from ucma.runtime.tls import default_client_ssl_context
from ucma.runtime.worker_pool import WorkerPool
from ucma.signaling.digest import DigestSession
from ucma.signaling.exceptions import TlsFailureException, TlsFailureReason
from ucma.signaling.sip import NameAddress, Parameters, SipRequest, make_request, new_call_id, new_tag
from ucma.signaling.sip.auth_headers import Challenge

from .kamailio_rig import KamailioRig

WAIT = 10.0
TRANSPORTS = [SipTransportType.UDP, SipTransportType.TCP, SipTransportType.TLS]
# Users of their own, so bindings made here never meet other tests' registrations.
USER_FOR = {SipTransportType.UDP: "load097", SipTransportType.TCP: "load098", SipTransportType.TLS: "load099"}


@pytest.fixture
def stack() -> Iterator[SipStack]:
    pool = WorkerPool(2, name="kamailio-test")
    sip = SipStack(name="kamailio-test", worker_pool=pool)
    sip.start()
    yield sip
    sip.stop()
    pool.shutdown()


def connect(stack: SipStack, rig: KamailioRig, transport: SipTransportType) -> Connection:
    port = {SipTransportType.UDP: rig.udp_port, SipTransportType.TCP: rig.tcp_port, SipTransportType.TLS: rig.tls_port}
    context = default_client_ssl_context(str(rig.ca_file)) if transport is SipTransportType.TLS else None
    return stack.connect(rig.host, port[transport], transport, ssl_context=context).result(WAIT)


def register(
    connection: Connection, rig: KamailioRig, user: str, *, call_id: str, cseq: int, expires: int
) -> SipRequest:
    aor = f"sip:{user}@{rig.domain}"
    return make_request(
        "REGISTER",
        f"sip:{rig.domain}",
        via=connection.make_via(),
        from_header=NameAddress(aor, parameters=Parameters([("tag", new_tag())])),
        to_header=NameAddress(aor),
        call_id=call_id,
        cseq=cseq,
        contact=NameAddress(connection.contact_uri(user)),
        headers=[("Expires", str(expires))],
    )


@pytest.mark.parametrize("transport", TRANSPORTS, ids=lambda t: t.name)
def test_register_without_credentials_gets_a_digest_challenge(
    stack: SipStack, kamailio: KamailioRig, transport: SipTransportType
) -> None:
    connection = connect(stack, kamailio, transport)
    user = USER_FOR[transport]
    request = register(connection, kamailio, user, call_id=new_call_id(), cseq=1, expires=60)
    answer = connection.send_request(request).result(WAIT)
    assert answer.status_code == 401
    challenge = Challenge.parse(answer.headers.get("WWW-Authenticate") or "")
    assert challenge.scheme == "Digest"
    assert challenge.get("realm") == kamailio.domain
    assert challenge.get("nonce")
    assert "auth" in (challenge.get("qop") or "").split(",")


@pytest.mark.parametrize("transport", TRANSPORTS, ids=lambda t: t.name)
def test_digest_registration_and_removal_with_secret_free_logs(
    stack: SipStack, kamailio: KamailioRig, transport: SipTransportType, caplog: pytest.LogCaptureFixture
) -> None:
    connection = connect(stack, kamailio, transport)
    user = USER_FOR[transport]
    password = kamailio.users[user]
    session = DigestSession(user, password)
    call_id = new_call_id()
    aor = f"sip:{user}@{kamailio.domain}"
    contact = str(connection.contact_uri(user))
    with caplog.at_level(logging.DEBUG, logger="ucma.sip"):
        first = register(connection, kamailio, user, call_id=call_id, cseq=1, expires=60)
        challenged = connection.send_request(first).result(WAIT)
        assert challenged.status_code == 401
        challenge = Challenge.parse(challenged.headers.get("WWW-Authenticate") or "")
        digests = []
        for cseq, expires in ((2, 60), (3, 0)):
            request = register(connection, kamailio, user, call_id=call_id, cseq=cseq, expires=expires)
            credentials = session.answer(challenge, "REGISTER", request.request_uri_text)
            digests.append(credentials.get("response") or "")
            request.headers.set("Authorization", str(credentials))
            final = connection.send_request(request).result(WAIT)
            assert final.status_code == 200, final.reason_phrase
            held = [b.contact for b in kamailio.bindings(aor)]
            if expires:
                assert contact in [c.uri_text for c in final.contacts]
                assert contact in held
            else:
                assert contact not in held
    text = caplog.text
    assert all(digest and digest not in text for digest in digests)
    assert password not in text
    assert "response=<redacted>" in text
    assert f"received {transport.name} from" in text


def test_tls_without_trusting_the_rig_ca_fails_with_tls_failure(stack: SipStack, kamailio: KamailioRig) -> None:
    future = stack.connect(kamailio.host, kamailio.tls_port, SipTransportType.TLS)
    with pytest.raises(TlsFailureException) as info:
        future.result(WAIT)
    assert info.value.failure_reason is TlsFailureReason.REMOTE_CERTIFICATE_REJECTED
