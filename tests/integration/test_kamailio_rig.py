"""The integration fixtures themselves work, checked with hand-written SIP and no ucma code."""

from __future__ import annotations

import re
import socket
import ssl
import subprocess

import pytest

from .kamailio_rig import (
    ConnectionDropped,
    KamailioRig,
    KamailioRigError,
    MakeKamailio,
    MakeSippServer,
    SipClientSocket,
    register_with_digest,
)
from .kamailio_rig.raw_sip import Transport
from .kamailio_rig.rig import find_binary, live_group_members


def _register(rig: KamailioRig, user: str, expires: int, transport: Transport = "tcp") -> tuple[int, int | None]:
    """Register `user` with its password; the final status and the expiry the registrar granted."""
    context = rig.ssl_context() if transport == "tls" else None
    with SipClientSocket(rig.host, rig.port_for(transport), transport, ssl_context=context) as client:
        host, port = client.local
        response = register_with_digest(client, user=user, password=rig.users[user], domain=rig.domain,
                                        expires=expires)
    # The 200 lists every binding of the AoR; pick this connection's own.
    own = re.escape(f"<sip:{user}@{host}:{port};transport={transport}>") + r";expires=(\d+)"
    granted = re.search(own, ", ".join(response.header_values("Contact")))
    return response.status, int(granted.group(1)) if granted else None


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_register_without_credentials_gets_digest_challenge(kamailio: KamailioRig, transport: Transport) -> None:
    with SipClientSocket(kamailio.host, kamailio.port_for(transport), transport) as client:
        response = client.register("alice", kamailio.domain, expires=60)
    assert response.status == 401
    challenge = response.header("WWW-Authenticate")
    assert challenge is not None and challenge.startswith("Digest ")
    assert f'realm="{kamailio.domain}"' in challenge
    assert re.search(r'nonce="[^"]+"', challenge)
    assert 'qop="auth"' in challenge


def test_tls_handshake_trusts_only_the_rig_ca(kamailio: KamailioRig) -> None:
    with SipClientSocket(kamailio.host, kamailio.tls_port, "tls", ssl_context=kamailio.ssl_context()) as client:
        assert client.register("alice", kamailio.domain).status == 401
    with pytest.raises(ssl.SSLCertVerificationError):
        SipClientSocket(kamailio.host, kamailio.tls_port, "tls", ssl_context=ssl.create_default_context())


def test_wrong_password_is_challenged_again(kamailio: KamailioRig) -> None:
    with SipClientSocket(kamailio.host, kamailio.udp_port, "udp") as client:
        response = register_with_digest(client, user="heidi", password="wrong-" + kamailio.users["heidi"],
                                        domain=kamailio.domain, expires=60)
    assert response.status == 401
    assert kamailio.bindings("heidi") == []


@pytest.mark.parametrize("transport", ["udp", "tcp", "tls"])
def test_bindings_show_registration_and_its_removal(kamailio: KamailioRig, transport: Transport) -> None:
    aor = f"sip:grace@{kamailio.domain}"
    kamailio.remove_bindings(aor)
    context = kamailio.ssl_context() if transport == "tls" else None
    with SipClientSocket(kamailio.host, kamailio.port_for(transport), transport, ssl_context=context) as client:
        registered = register_with_digest(client, user="grace", password=kamailio.users["grace"],
                                          domain=kamailio.domain, expires=300, call_id=f"rig-{transport}")
        assert registered.status == 200
        [binding] = kamailio.bindings(aor)
        assert binding.contact == f"sip:grace@{client.local[0]}:{client.local[1]};transport={transport}"
        assert 290 <= binding.expires <= 300
        assert binding.call_id == f"rig-{transport}"
        assert binding.socket == f"{transport}:{kamailio.host}:{kamailio.port_for(transport)}"
        # An un-REGISTER must carry a higher CSeq in the same Call-ID, or the registrar ignores it.
        removed = register_with_digest(client, user="grace", password=kamailio.users["grace"],
                                       domain=kamailio.domain, expires=0, call_id=f"rig-{transport}", cseq=3)
    assert removed.status == 200
    assert kamailio.bindings(aor) == []


def test_expires_is_clamped_to_the_registrar_limits(kamailio: KamailioRig) -> None:
    assert _register(kamailio, "ivan", expires=kamailio.max_expires * 10) == (200, kamailio.max_expires)
    assert _register(kamailio, "ivan", expires=1) == (200, kamailio.min_expires)
    kamailio.remove_bindings("ivan")


def test_with_423_a_too_short_expires_is_refused(kamailio_423: KamailioRig, kamailio: KamailioRig) -> None:
    assert kamailio_423.min_expires > kamailio.min_expires
    assert {kamailio_423.udp_port, kamailio_423.tls_port, kamailio_423.xcap_port}.isdisjoint(
        {kamailio.udp_port, kamailio.tls_port, kamailio.xcap_port})
    with SipClientSocket(kamailio_423.host, kamailio_423.tcp_port, "tcp") as client:
        response = register_with_digest(client, user="judy", password=kamailio_423.users["judy"],
                                        domain=kamailio_423.domain, expires=kamailio_423.min_expires - 1)
    assert response.status == 423
    assert response.header("Min-Expires") == str(kamailio_423.min_expires)
    assert kamailio_423.bindings("judy") == []


def test_kamcmd_reaches_the_ctl_socket(kamailio: KamailioRig) -> None:
    kamcmd = find_binary("kamcmd")
    assert kamcmd is not None
    done = subprocess.run([kamcmd, "-s", kamailio.ctl_socket, "core.version"], capture_output=True, text=True,
                          timeout=10, check=True)
    assert done.stdout.startswith("kamailio ")


def test_xcap_port_challenges_http_requests(kamailio: KamailioRig) -> None:
    assert kamailio.xcap_root == f"http://{kamailio.host}:{kamailio.xcap_port}/xcap-root"
    request = (f"GET /xcap-root/xcap-caps/global/index HTTP/1.1\r\nHost: {kamailio.host}\r\n"
               "Content-Length: 0\r\n\r\n").encode()
    with socket.create_connection((kamailio.host, kamailio.xcap_port), timeout=2) as stream:
        stream.sendall(request)
        head = stream.recv(4096).decode()
    assert head.startswith("HTTP/1.1 401")
    assert 'realm="xcap"' in head


def test_restart_keeps_ports_and_forgets_bindings(kamailio_private: KamailioRig) -> None:
    rig = kamailio_private
    ports = (rig.udp_port, rig.tls_port, rig.xcap_port)
    first_pid = rig.pid
    assert _register(rig, "dave", expires=600)[0] == 200
    assert rig.bindings("dave")
    # A client still connected at the restart leaves the server's side of the connection in
    # TIME_WAIT on the SIP port, which must not keep the port from being reused.
    with SipClientSocket(rig.host, rig.tcp_port, "tcp") as held:
        assert held.register("dave", rig.domain).status == 401
        rig.restart()
        with pytest.raises((ConnectionDropped, ConnectionResetError)):
            held.register("dave", rig.domain)
    assert rig.pid != first_pid
    assert (rig.udp_port, rig.tls_port, rig.xcap_port) == ports
    assert rig.bindings("dave") == []
    assert _register(rig, "dave", expires=600, transport="tls")[0] == 200


def test_stop_ends_the_whole_process_group(kamailio_private: KamailioRig) -> None:
    rig = kamailio_private
    group = rig.pid
    assert group is not None
    assert len(live_group_members(group)) > 1, "Kamailio forks its workers into the same group"
    rig.stop()
    assert not rig.running
    assert live_group_members(group) == []
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((rig.host, rig.tcp_port), timeout=2).close()


def test_failed_start_raises_with_the_log_tail(make_kamailio: MakeKamailio) -> None:
    # 1 MB of shared memory is too little for the modules to initialise.
    with pytest.raises(KamailioRigError, match=r"exited with status") as info:
        make_kamailio(shm_mb=1)
    assert "error while initializing modules" in str(info.value)


def test_restart_on_a_taken_port_names_it(kamailio_private: KamailioRig) -> None:
    rig = kamailio_private
    rig.stop()
    with socket.socket() as squatter:
        squatter.bind((rig.host, rig.tls_port))
        squatter.listen()
        with pytest.raises(KamailioRigError, match=f"{rig.tls_port}.*Address already in use"):
            rig.start()


def test_own_domain_is_served_with_its_own_realm(make_kamailio: MakeKamailio) -> None:
    rig = make_kamailio(domain="ucma.test")
    with SipClientSocket(rig.host, rig.udp_port, "udp") as client:
        challenge = client.register("erin", rig.domain).header("WWW-Authenticate")
    assert challenge is not None and 'realm="ucma.test"' in challenge
    assert _register(rig, "erin", expires=120) == (200, 120)
    assert [b.expires for b in rig.bindings("sip:erin@ucma.test")] == [120]


def test_debug_and_presrules_switches_reach_kamailio(make_kamailio: MakeKamailio) -> None:
    rig = make_kamailio(debug=True, with_presrules=True)
    # With WITH_DEBUG every request is logged, the readiness probes' REGISTERs included.
    log = rig.log_file.read_text(errors="replace")
    assert re.search(rf"request REGISTER sip:{re.escape(rig.domain)} from .*/udp", log)


def test_users_have_distinct_passwords_that_stay_out_of_repr(kamailio: KamailioRig) -> None:
    assert {"alice", "bob", "carol", "dave", "erin", "frank", "load000", "load099"} <= set(kamailio.users)
    assert len(set(kamailio.users.values())) == len(kamailio.users)
    assert kamailio.users["alice"] not in repr(kamailio)


# -- SIPp registrars ------------------------------------------------------------------------------

@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_sipp_register_200_accepts_without_challenge(sipp_server: MakeSippServer, transport: Transport) -> None:
    server = sipp_server("register_200", transport, expires=42)
    with SipClientSocket(server.host, server.port, transport) as client:
        host, port = client.local
        registered = client.register("alice", "example.test", expires=3600, call_id="sipp-200", cseq=1)
        removed = client.register("alice", "example.test", expires=0, call_id="sipp-200", cseq=2)
    assert registered.status == 200
    assert registered.header("Contact") == f"<sip:alice@{host}:{port};transport={transport}>;expires=42"
    assert registered.header("WWW-Authenticate") is None
    assert removed.status == 200
    assert removed.header("Contact") is None
    assert "CSeq: 2 REGISTER" in server.messages()


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_sipp_register_503_sends_retry_after(sipp_server: MakeSippServer, transport: Transport) -> None:
    server = sipp_server("register_503", transport, retry_after=7)
    with SipClientSocket(server.host, server.port, transport) as client:
        responses = [client.register("alice", "example.test", expires=60, call_id="sipp-503", cseq=n)
                     for n in (1, 2)]
    assert [r.status for r in responses] == [503, 503]
    assert [r.header("Retry-After") for r in responses] == ["7", "7"]


def test_sipp_register_drop_closes_the_tcp_connection(sipp_server: MakeSippServer) -> None:
    server = sipp_server("register_drop", "tcp")
    with SipClientSocket(server.host, server.port, "tcp") as client, pytest.raises(ConnectionDropped):
        client.register("alice", "example.test", expires=60)
    assert server.wait(timeout=10) == 97, "SIPp's exit status for a scripted stop"
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((server.host, server.port), timeout=2).close()


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_sipp_register_silent_never_answers(sipp_server: MakeSippServer, transport: Transport) -> None:
    server = sipp_server("register_silent", transport)
    with SipClientSocket(server.host, server.port, transport, timeout=0.3) as client, pytest.raises(TimeoutError):
        client.register("alice", "example.test", expires=60)
    assert server.running
    assert "REGISTER sip:example.test SIP/2.0" in server.messages()
