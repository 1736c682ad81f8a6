"""UserEndpoint against a real Kamailio registrar: establish, refresh, recovery, termination, failures."""

from __future__ import annotations

import logging
import queue
import ssl
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from ucma import (
    AuthenticationException,
    AuthenticationFailureReason,
    ConnectionFailureException,
    InvalidOperationException,
    TlsFailureException,
)
from ucma.collaboration import (
    ClientPlatformSettings,
    CollaborationPlatform,
    LocalEndpointState,
    LocalEndpointStateChangedEventArgs,
    LocalEndpointStateTransitionReason,
    NetworkCredential,
    ServerPlatformSettings,
    SipAuthenticationProtocols,
    UserEndpoint,
    UserEndpointSettings,
)
from ucma.runtime.connections import SipTransportType
from ucma.signaling.registration_states import RegistrationState

S = LocalEndpointState
TRANSPORTS = [SipTransportType.UDP, SipTransportType.TCP, SipTransportType.TLS]


def port_for(rig: Any, transport: SipTransportType) -> int:
    return {SipTransportType.UDP: rig.udp_port, SipTransportType.TCP: rig.tcp_port, SipTransportType.TLS: rig.tls_port}[
        transport
    ]


def trusting(rig: Any) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=rig.ca_file)


@pytest.fixture
def make_platform(kamailio: Any) -> Iterator[Any]:
    platforms: list[CollaborationPlatform] = []

    def make(
        transport: SipTransportType = SipTransportType.TCP, *, context: ssl.SSLContext | None = None
    ) -> CollaborationPlatform:
        ctx = context if context is not None else trusting(kamailio)
        platform = CollaborationPlatform(ClientPlatformSettings("ucma-tests", transport, ssl_context=ctx))
        platform.startup(timeout=10)
        platforms.append(platform)
        return platform

    yield make
    for platform in platforms:
        platform.shutdown(timeout=30)


class StateLog:
    """Collects state changes; waits for a state with a timeout (no sleeping)."""

    def __init__(self, endpoint: UserEndpoint) -> None:
        self.events: queue.Queue[LocalEndpointStateChangedEventArgs] = queue.Queue()
        self.seen: list[LocalEndpointStateChangedEventArgs] = []
        endpoint.state_changed += lambda _sender, args: self.events.put(args)

    def wait_for(self, state: LocalEndpointState, timeout: float = 30) -> LocalEndpointStateChangedEventArgs:
        while True:
            args = self.events.get(timeout=timeout)
            self.seen.append(args)
            if args.state is state:
                return args

    def states(self) -> list[LocalEndpointState]:
        return [a.state for a in self.seen]


def endpoint_for(
    platform: CollaborationPlatform,
    rig: Any,
    user: str,
    transport: SipTransportType,
    password: str | None = None,
    **settings: Any,
) -> UserEndpoint:
    s = UserEndpointSettings(f"sip:{user}@{rig.domain}", rig.host, port_for(rig, transport))
    s.credential = NetworkCredential(user, password if password is not None else rig.users[user])
    for key, value in settings.items():
        setattr(s, key, value)
    return UserEndpoint(platform, s)


@pytest.mark.parametrize("transport", TRANSPORTS, ids=lambda t: t.name)
def test_establish_registers_and_terminate_unregisters(
    kamailio: Any, make_platform: Any, transport: SipTransportType
) -> None:
    platform = make_platform(transport)
    endpoint = endpoint_for(platform, kamailio, "alice", transport)
    log = StateLog(endpoint)
    done = threading.Event()
    result = endpoint.begin_establish(lambda _r: done.set(), "my state")
    assert result.async_state == "my state"
    response = endpoint.end_establish(result)
    assert done.wait(10)
    assert response.response_code == 200
    assert endpoint.state is S.ESTABLISHED
    assert endpoint.inner_endpoint.registration_state is RegistrationState.REGISTERED
    assert endpoint.inner_endpoint.authentication_protocol is SipAuthenticationProtocols.DIGEST
    log.wait_for(S.ESTABLISHED)
    assert kamailio.bindings(f"alice@{kamailio.domain}"), "registrar holds no binding after establish"

    endpoint.terminate(timeout=20)
    log.wait_for(S.TERMINATED)
    assert log.states() == [S.ESTABLISHING, S.ESTABLISHED, S.TERMINATING, S.TERMINATED]
    assert kamailio.bindings(f"alice@{kamailio.domain}") == [], "terminate left a binding behind"


def test_wrong_password_fails_with_authentication_exception(kamailio: Any, make_platform: Any) -> None:
    platform = make_platform(SipTransportType.TCP)
    endpoint = endpoint_for(platform, kamailio, "bob", SipTransportType.TCP, password="not-the-password")
    with pytest.raises(AuthenticationException) as info:
        endpoint.establish(timeout=20)
    assert info.value.failure_reason is AuthenticationFailureReason.INVALID_CREDENTIALS
    assert info.value.response_data is not None and info.value.response_data.response_code == 401
    assert "not-the-password" not in str(info.value)
    assert endpoint.state is S.IDLE


def test_unreachable_port_fails_with_connection_failure(kamailio: Any, make_platform: Any, free_port: int) -> None:
    platform = make_platform(SipTransportType.TCP)
    settings = UserEndpointSettings(f"sip:alice@{kamailio.domain}", "127.0.0.1", free_port)
    settings.credential = NetworkCredential("alice", kamailio.users["alice"])
    endpoint = UserEndpoint(platform, settings)
    with pytest.raises(ConnectionFailureException) as info:
        endpoint.establish(timeout=20)
    assert str(free_port) in str(info.value)
    assert endpoint.state is S.IDLE


def test_untrusted_certificate_fails_with_tls_failure(kamailio: Any, make_platform: Any) -> None:
    platform = make_platform(SipTransportType.TLS, context=ssl.create_default_context())
    endpoint = endpoint_for(platform, kamailio, "alice", SipTransportType.TLS)
    with pytest.raises(TlsFailureException):
        endpoint.establish(timeout=20)
    assert endpoint.state is S.IDLE


def test_establish_in_wrong_state_raises_synchronously(kamailio: Any, make_platform: Any) -> None:
    platform = make_platform(SipTransportType.TCP)
    endpoint = endpoint_for(platform, kamailio, "carol", SipTransportType.TCP)
    endpoint.establish(timeout=20)
    with pytest.raises(InvalidOperationException):
        endpoint.begin_establish()
    endpoint.terminate(timeout=20)
    with pytest.raises(InvalidOperationException):
        endpoint.begin_establish()


def test_interval_too_brief_adopts_min_expires(kamailio_423: Any, make_platform: Any) -> None:
    rig = kamailio_423
    platform = CollaborationPlatform(ClientPlatformSettings("ucma-tests", SipTransportType.TCP))
    platform.startup(timeout=10)
    try:
        endpoint = endpoint_for(platform, rig, "alice", SipTransportType.TCP, requested_registration_expires=5)
        response = endpoint.establish(timeout=20)
        assert response.response_code == 200
        granted = [a.expires for a in response.message.contacts if a.expires is not None]
        assert granted and max(granted) >= rig.min_expires
        endpoint.terminate(timeout=20)
    finally:
        platform.shutdown(timeout=30)


def test_registration_is_refreshed_before_it_lapses(kamailio: Any, make_platform: Any) -> None:
    platform = make_platform(SipTransportType.TCP)
    endpoint = endpoint_for(platform, kamailio, "dave", SipTransportType.TCP, requested_registration_expires=6)
    refreshed = threading.Event()
    first = endpoint.establish(timeout=20)
    cseq = first.message.cseq.number
    seen: list[int] = []

    def on_refresh(step: Any) -> None:
        seen.append(step.response.cseq.number)
        if len(seen) >= 2:
            refreshed.set()

    previous = endpoint.inner_endpoint.on_refreshed
    endpoint.inner_endpoint.on_refreshed = lambda step: (previous(step) if previous else None, on_refresh(step))
    assert refreshed.wait(30), "no two refreshes within 30 s of a 6 s registration"
    assert seen[0] > cseq and seen[1] > seen[0]
    assert endpoint.state is S.ESTABLISHED
    assert kamailio.bindings(f"dave@{kamailio.domain}")
    endpoint.terminate(timeout=20)


def test_server_restart_reestablishes(kamailio: Any, make_platform: Any) -> None:
    platform = make_platform(SipTransportType.TCP)
    endpoint = endpoint_for(platform, kamailio, "erin", SipTransportType.TCP, register_retry_delay=0.5)
    log = StateLog(endpoint)
    endpoint.establish(timeout=20)
    log.wait_for(S.ESTABLISHED)
    kamailio.restart()
    lost = log.wait_for(S.REESTABLISHING, timeout=30)
    assert lost.reason is LocalEndpointStateTransitionReason.REGISTRATION_REFRESH_FAILED
    back = log.wait_for(S.ESTABLISHED, timeout=60)
    assert back.reason is LocalEndpointStateTransitionReason.REGISTRATION_REFRESH_SUCCEEDED
    assert kamailio.bindings(f"erin@{kamailio.domain}")
    endpoint.terminate(timeout=20)


def test_server_gone_for_good_terminates_after_retries(kamailio_private: Any) -> None:
    rig = kamailio_private
    platform = CollaborationPlatform(ClientPlatformSettings("ucma-tests", SipTransportType.TCP))
    platform.startup(timeout=10)
    try:
        endpoint = endpoint_for(
            platform, rig, "alice", SipTransportType.TCP, register_retry_delay=0.2, max_register_retries=2
        )
        log = StateLog(endpoint)
        endpoint.establish(timeout=20)
        log.wait_for(S.ESTABLISHED)
        rig.stop()
        log.wait_for(S.REESTABLISHING, timeout=30)
        ended = log.wait_for(S.TERMINATED, timeout=60)
        assert ended.reason is LocalEndpointStateTransitionReason.REGISTRATION_REFRESH_FAILED
        assert S.TERMINATING in log.states()
    finally:
        platform.shutdown(timeout=30)


def test_server_platform_shares_one_connection_and_threads_stay_constant(kamailio: Any) -> None:
    settings = ServerPlatformSettings("ucma-tests", "localhost", 0)
    platform = CollaborationPlatform(settings)
    platform.startup(timeout=10)
    try:
        threads_before = len(platform.owned_threads)
        endpoints = []
        for i in range(40):
            user = f"load{i:03d}"
            s = UserEndpointSettings(f"sip:{user}@{kamailio.domain}", kamailio.host, kamailio.tcp_port)
            s.credential = NetworkCredential(user, kamailio.users[user])
            endpoint = UserEndpoint(platform, s)
            endpoint.inner_endpoint.is_endpoint_throttled = False
            endpoints.append(endpoint)
        results = [e.begin_establish() for e in endpoints]
        for endpoint, result in zip(endpoints, results, strict=True):
            assert endpoint.end_establish(result).response_code == 200
        connections = {id(e.inner_endpoint.connection) for e in endpoints}
        assert len(connections) == 1, "server mode must share the registrar connection"
        assert len(platform.owned_threads) <= threads_before + settings.worker_threads
        assert platform.sip_stack.thread_count == 1
    finally:
        platform.shutdown(timeout=60)
    assert all(e.state is S.TERMINATED for e in endpoints)


def test_passwords_and_authorization_values_never_reach_logs(
    kamailio: Any, make_platform: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="ucma")
    platform = make_platform(SipTransportType.TCP)
    endpoint = endpoint_for(platform, kamailio, "frank", SipTransportType.TCP)
    endpoint.establish(timeout=20)
    endpoint.terminate(timeout=20)
    text = caplog.text
    assert "REGISTER" in text, "the SIP trace is expected on the ucma.sip logger at DEBUG"
    assert kamailio.users["frank"] not in text
    assert 'response="' not in text
    assert kamailio.users["frank"] not in repr(endpoint.credential)
