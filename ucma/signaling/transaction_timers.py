"""RFC 3261 transaction timer values (section 17, table 4), derived from configurable T1, T2 and T4.

Only values live here; the transactions decide when a timer runs and the runtime owns the clock.
On a reliable transport (TCP, TLS) the retransmission timers A, E and G never run and the
wait timers D, I, J and K are zero, meaning the transaction ends at once.
"""

from __future__ import annotations

import math
from typing import Final, Literal

import attrs

from ucma.signaling.exceptions import ArgumentException

__all__ = ["DEFAULT_TIMER_SETTINGS", "TIMER_NAMES", "TimerName", "TimerSettings"]

#: The RFC 3261 timers a user agent's transactions use (Timer C belongs to proxies).
TimerName = Literal["A", "B", "D", "E", "F", "G", "H", "I", "J", "K"]
TIMER_NAMES: Final[frozenset[str]] = frozenset({"A", "B", "D", "E", "F", "G", "H", "I", "J", "K"})


def _positive_seconds(_instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise ArgumentException(f"{attribute.name} must be a positive, finite number of seconds", attribute.name)


def _non_negative_seconds(_instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
        raise ArgumentException(f"{attribute.name} must be a non-negative, finite number of seconds", attribute.name)


@attrs.frozen
class TimerSettings:
    """T1 (RTT estimate), T2 (longest non-INVITE retransmit interval), T4 (network lifetime) and Timer D.

    Defaults are RFC 3261's: T1 = 0.5 s, T2 = 4 s, T4 = 5 s and Timer D = 32 s on unreliable
    transports. Every other timer is computed from these, as the RFC's table 4 prescribes.
    """

    t1: float = attrs.field(default=0.5, validator=_positive_seconds)
    t2: float = attrs.field(default=4.0, validator=_positive_seconds)
    t4: float = attrs.field(default=5.0, validator=_positive_seconds)
    timer_d_unreliable: float = attrs.field(default=32.0, validator=_non_negative_seconds)

    def __attrs_post_init__(self) -> None:
        if self.t2 < self.t1:
            raise ArgumentException("T2 must not be smaller than T1", "t2")

    @property
    def transaction_timeout(self) -> float:
        """64*T1: Timers B, F and H (no final response / no ACK), and J on unreliable transports."""
        return 64 * self.t1

    def next_timer_a(self, previous: float) -> float:
        """INVITE request retransmission: the interval doubles each time, with no cap (Timer B ends it)."""
        return 2 * previous

    def next_timer_e(self, previous: float) -> float:
        """Non-INVITE request retransmission in Trying: doubling, capped at T2."""
        return min(2 * previous, self.t2)

    def next_timer_g(self, previous: float) -> float:
        """INVITE final-response retransmission: doubling, capped at T2."""
        return min(2 * previous, self.t2)

    def timer_d(self, reliable: bool) -> float:
        """How long an INVITE client absorbs retransmitted 300-699 responses."""
        return 0.0 if reliable else self.timer_d_unreliable

    def timer_i(self, reliable: bool) -> float:
        """How long an INVITE server absorbs retransmitted ACKs."""
        return 0.0 if reliable else self.t4

    def timer_j(self, reliable: bool) -> float:
        """How long a non-INVITE server answers request retransmissions from Completed."""
        return 0.0 if reliable else self.transaction_timeout

    def timer_k(self, reliable: bool) -> float:
        """How long a non-INVITE client absorbs retransmitted responses."""
        return 0.0 if reliable else self.t4


DEFAULT_TIMER_SETTINGS: Final = TimerSettings()
