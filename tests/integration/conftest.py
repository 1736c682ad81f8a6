"""Fixtures giving integration tests real servers: private Kamailio rigs and SIPp registrars.

Every rig picks its own free loopback ports and directory, so parallel runs and pytest-xdist
workers (each worker has its own session) never share one. Missing binaries or a server that
does not start make the test error out with the reason; nothing is skipped.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .kamailio_rig import KamailioRig, MakeKamailio, MakeSippServer, SippServer, pick_free_port
from .kamailio_rig.sipp_server import SippTransport

# The `kamailio_423` rig refuses a requested expiry below this with 423 Interval Too Brief.
MIN_EXPIRES_423 = 60


@pytest.fixture(scope="session")
def kamailio() -> Iterator[KamailioRig]:
    """The session's shared Kamailio: registrar (Expires clamped to 5..7200), presence, XCAP."""
    rig = KamailioRig()
    try:
        rig.start()
        yield rig
    finally:
        rig.close()


@pytest.fixture(autouse=True)
def _shared_kamailio_running(request: pytest.FixtureRequest) -> None:
    """Start the shared rig again if an earlier test left it stopped (a failed restart, say)."""
    if "kamailio" in request.fixturenames:
        rig: KamailioRig = request.getfixturevalue("kamailio")
        if not rig.running:
            rig.start()


@pytest.fixture(scope="session")
def kamailio_423() -> Iterator[KamailioRig]:
    """A second shared Kamailio that refuses an Expires below MIN_EXPIRES_423 with 423 + Min-Expires."""
    rig = KamailioRig(with_423=True, min_expires=MIN_EXPIRES_423)
    try:
        rig.start()
        yield rig
    finally:
        rig.close()


@pytest.fixture
def make_kamailio() -> Iterator[MakeKamailio]:
    """Factory for started rigs with the given KamailioRig options; all are closed after the test."""
    rigs: list[KamailioRig] = []

    def make(**options: object) -> KamailioRig:
        rig = KamailioRig(**options)  # type: ignore[arg-type]
        rigs.append(rig)
        rig.start()
        return rig

    yield make
    for rig in rigs:
        rig.close()


@pytest.fixture
def kamailio_private(make_kamailio: MakeKamailio) -> KamailioRig:
    """A rig of the test's own, which it may stop or restart at will."""
    return make_kamailio()


@pytest.fixture
def free_port() -> int:
    """A loopback port on which nothing listens (TCP or UDP) at the time of the call."""
    return pick_free_port(udp=True)


@pytest.fixture
def sipp_server() -> Iterator[MakeSippServer]:
    """Factory: sipp_server(scenario, transport="udp", **keys) starts SIPp serving that scenario.

    Scenarios live in kamailio_rig/sipp/ (register_200, register_503, register_drop,
    register_silent); keys fill the scenario's [key] fields, e.g. expires=30 or retry_after=2.
    Every server is stopped by its pid after the test.
    """
    servers: list[SippServer] = []

    def start(scenario: str, transport: SippTransport = "udp", **keys: object) -> SippServer:
        server = SippServer(scenario, transport, keys={name: str(value) for name, value in keys.items()})
        servers.append(server)
        server.start()
        return server

    yield start
    for server in servers:
        server.close()
