"""Client-side throttling: at most 20 outstanding, FIFO beyond, failures never dropped."""

from __future__ import annotations

import concurrent.futures

from ucma.collaboration.request_throttle import MAX_OUTSTANDING_REQUESTS, RequestThrottle
from ucma.signaling.exceptions import ConnectionFailureException
from ucma.signaling.sip import SipRequest, SipResponse


def request(n: int) -> SipRequest:
    return SipRequest("OPTIONS", f"sip:{n}@example.com")


class FakeSender:
    def __init__(self) -> None:
        self.sent: list[tuple[SipRequest, concurrent.futures.Future[SipResponse]]] = []

    def __call__(self, req: SipRequest) -> concurrent.futures.Future[SipResponse]:
        future: concurrent.futures.Future[SipResponse] = concurrent.futures.Future()
        self.sent.append((req, future))
        return future


def test_twenty_outstanding_then_queued_in_order() -> None:
    throttle = RequestThrottle()
    sender = FakeSender()
    outer = [throttle.send(request(i), sender) for i in range(25)]
    assert len(sender.sent) == MAX_OUTSTANDING_REQUESTS == 20
    assert throttle.queued == 5
    sender.sent[0][1].set_result(SipResponse(200, "OK"))
    assert outer[0].result(0).status_code == 200
    assert len(sender.sent) == 21
    assert sender.sent[20][0].request_uri_text == "sip:20@example.com"
    for _, future in list(sender.sent[1:]):
        future.set_result(SipResponse(200, "OK"))
    assert [r.request_uri_text for r, _ in sender.sent] == [f"sip:{i}@example.com" for i in range(25)]
    assert throttle.outstanding == 4


def test_unthrottled_sends_everything_at_once() -> None:
    throttle = RequestThrottle()
    throttle.enabled = False
    sender = FakeSender()
    for i in range(100):
        throttle.send(request(i), sender)
    assert len(sender.sent) == 100 and throttle.queued == 0


def test_disabling_releases_the_queue_as_slots_free() -> None:
    throttle = RequestThrottle(limit=1)
    sender = FakeSender()
    throttle.send(request(0), sender)
    throttle.send(request(1), sender)
    throttle.send(request(2), sender)
    throttle.enabled = False
    sender.sent[0][1].set_result(SipResponse(200, "OK"))
    assert len(sender.sent) == 3


def test_queued_requests_fail_with_the_connection_error() -> None:
    throttle = RequestThrottle(limit=1)
    sender = FakeSender()
    throttle.send(request(0), sender)
    waiting = throttle.send(request(1), sender)
    throttle.fail_queued(ConnectionFailureException("lost"))
    assert isinstance(waiting.exception(0), ConnectionFailureException)
    assert throttle.queued == 0


def test_sender_errors_and_failed_responses_free_the_slot() -> None:
    throttle = RequestThrottle(limit=1)
    sender = FakeSender()
    first = throttle.send(request(0), sender)
    second = throttle.send(request(1), sender)
    sender.sent[0][1].set_exception(ConnectionFailureException("reset"))
    assert isinstance(first.exception(0), ConnectionFailureException)
    assert len(sender.sent) == 2 and not second.done()
