"""Free loopback ports for test servers, chosen so that parallel test runs do not collide.

Ports come from below the kernel's ephemeral range, so outgoing connections of other programs
never take them between the check and the server's own bind, and are picked at random so two
runs starting at the same moment rarely try the same one. The check binds the port itself.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

_EPHEMERAL_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_LOWEST_PORT = 10000
_rng = random.SystemRandom()


def ephemeral_port_range() -> tuple[int, int]:
    """The kernel's range for automatically assigned local ports (Linux's default if unknown)."""
    try:
        low, high = (int(part) for part in _EPHEMERAL_RANGE_FILE.read_text().split())
    except (OSError, ValueError):
        return 32768, 60999
    return low, high


def _candidate_range() -> range:
    low, high = ephemeral_port_range()
    if low - _LOWEST_PORT >= 2000:
        return range(_LOWEST_PORT, low)
    return range(high + 1, 65536)


def port_is_free(host: str, port: int, *, tcp: bool = True, udp: bool = False) -> bool:
    """Whether a server could bind `port` on `host` right now for each of the asked protocols.

    TCP is checked with SO_REUSEADDR, as servers bind: connections in TIME_WAIT (left behind when
    a server stops while clients are connected) do not keep it from listening again.
    """
    kinds = ([socket.SOCK_STREAM] if tcp else []) + ([socket.SOCK_DGRAM] if udp else [])
    for kind in kinds:
        with socket.socket(socket.AF_INET, kind) as probe:
            if kind == socket.SOCK_STREAM:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError:
                return False
    return True


def pick_free_ports(host: str, count: int, *, udp_too: frozenset[int] = frozenset()) -> list[int]:
    """`count` distinct ports free on `host` for TCP; the ones whose index is in `udp_too` also for UDP."""
    candidates = _candidate_range()
    chosen: list[int] = []
    for _ in range(1000):
        if len(chosen) == count:
            return chosen
        port = _rng.choice(candidates)
        if port in chosen:
            continue
        if port_is_free(host, port, tcp=True, udp=len(chosen) in udp_too):
            chosen.append(port)
    if len(chosen) == count:
        return chosen
    raise RuntimeError(f"found only {len(chosen)} of {count} free ports on {host} in {candidates}")


def pick_free_port(host: str = "127.0.0.1", *, udp: bool = False) -> int:
    """One port free on `host` for TCP (and UDP when asked)."""
    return pick_free_ports(host, 1, udp_too=frozenset({0}) if udp else frozenset())[0]
