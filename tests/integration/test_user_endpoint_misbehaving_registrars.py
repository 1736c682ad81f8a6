"""UserEndpoint against registrars scripted with SIPp to misbehave in one precise way each."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from ucma import (
    AuthenticationException,
    AuthenticationFailureReason,
    ConnectionFailureException,
    OperationTimeoutException,
    RegisterException,
)
from ucma.collaboration import (
    ClientPlatformSettings,
    CollaborationPlatform,
    LocalEndpointState,
    NetworkCredential,
    UserEndpoint,
    UserEndpointSettings,
)
from ucma.runtime.connections import SipTransportType
from ucma.signaling.transaction_timers import TimerSettings

FAST_TIMERS = TimerSettings(t1=0.05, t2=0.4, t4=0.5)  # a request times out after 64*T1 = 3.2 s


@pytest.fixture
def platform_for() -> Iterator[Any]:
    platforms: list[CollaborationPlatform] = []

    def make(transport: SipTransportType) -> CollaborationPlatform:
        platform = CollaborationPlatform(
            ClientPlatformSettings("ucma-tests", transport, sip_timer_settings=FAST_TIMERS)
        )
        platform.startup(timeout=10)
        platforms.append(platform)
        return platform

    yield make
    for platform in platforms:
        platform.shutdown(timeout=30)


def endpoint_on(platform: CollaborationPlatform, port: int, **settings: Any) -> UserEndpoint:
    s = UserEndpointSettings("sip:alice@example.test", "127.0.0.1", port)
    s.credential = NetworkCredential("alice", "wonderland")
    for key, value in settings.items():
        setattr(s, key, value)
    return UserEndpoint(platform, s)


def registers_received(server: Any) -> int:
    return server.messages().count("REGISTER sip:")


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_registrar_that_never_challenges_is_refused(sipp_server: Any, platform_for: Any, transport: str) -> None:
    server = sipp_server("register_200", transport, expires=60)
    platform = platform_for(SipTransportType[transport.upper()])
    endpoint = endpoint_on(platform, server.port)
    with pytest.raises(AuthenticationException) as info:
        endpoint.establish(timeout=20)
    assert info.value.failure_reason is AuthenticationFailureReason.UNCHALLENGING_SERVER
    assert info.value.response_data is not None and info.value.response_data.response_code == 200
    assert "allow_no_authentication" in str(info.value)
    assert endpoint.state is LocalEndpointState.IDLE


def test_unchallenging_registrar_is_accepted_when_allowed(sipp_server: Any, platform_for: Any) -> None:
    server = sipp_server("register_200", "udp", expires=60)
    platform = platform_for(SipTransportType.UDP)
    endpoint = endpoint_on(platform, server.port)
    endpoint.inner_endpoint.allow_no_authentication = True
    response = endpoint.establish(timeout=20)
    assert response.response_code == 200
    assert endpoint.state is LocalEndpointState.ESTABLISHED
    endpoint.terminate(timeout=20)


def test_service_unavailable_retry_after_is_honoured_then_reported(sipp_server: Any, platform_for: Any) -> None:
    server = sipp_server("register_503", "udp", retry_after=1)
    platform = platform_for(SipTransportType.UDP)
    endpoint = endpoint_on(platform, server.port, max_register_retries=2)
    started = time.monotonic()
    with pytest.raises(RegisterException) as info:
        endpoint.establish(timeout=30)
    elapsed = time.monotonic() - started
    assert info.value.response_data is not None and info.value.response_data.response_code == 503
    assert registers_received(server) == 3, "one REGISTER, then one per allowed retry"
    assert elapsed >= 2 * 0.95, "each retry must wait Retry-After (1 s)"
    assert endpoint.state is LocalEndpointState.IDLE


def test_registrar_dropping_the_connection_fails_establish(sipp_server: Any, platform_for: Any) -> None:
    server = sipp_server("register_drop", "tcp")
    platform = platform_for(SipTransportType.TCP)
    endpoint = endpoint_on(platform, server.port)
    with pytest.raises(ConnectionFailureException):
        endpoint.establish(timeout=20)
    assert endpoint.state is LocalEndpointState.IDLE


def test_silent_registrar_times_out(sipp_server: Any, platform_for: Any) -> None:
    server = sipp_server("register_silent", "udp")
    platform = platform_for(SipTransportType.UDP)
    endpoint = endpoint_on(platform, server.port)
    with pytest.raises(OperationTimeoutException):
        endpoint.establish(timeout=30)
    assert registers_received(server) > 1, "UDP requests are retransmitted (Timer E) before timing out"
    assert endpoint.state is LocalEndpointState.IDLE
