"""Transaction matching (RFC 3261 sections 17.1.3 and 17.2.3) and the TransactionTable.

Messages are built with the real builders and passed through the parser, as they would
arrive from the network.
"""

from __future__ import annotations

from typing import Any

import attrs
import pytest

from ucma.signaling.exceptions import InvalidOperationException
from ucma.signaling.sip import (
    NameAddress,
    Parameters,
    SipRequest,
    SipResponse,
    Via,
    make_request,
    make_response,
    new_branch,
    new_tag,
    parse_message,
)
from ucma.signaling.transaction import (
    DeliverRequest,
    DeliverResponse,
    InviteClientTransaction,
    InviteServerTransaction,
    NonInviteClientTransaction,
    NonInviteServerTransaction,
    SendMessage,
    ServerTransaction,
    TransactionAction,
    TransactionState,
    create_server_transaction,
    make_non_2xx_ack,
)
from ucma.signaling.transaction_matching import (
    ClientTransactionKey,
    Rfc2543TransactionKey,
    ServerTransactionKey,
    TransactionTable,
    cancel_target_key,
    client_transaction_key,
    server_transaction_key,
)


def wire_request(message: SipRequest) -> SipRequest:
    """``message`` after serialisation and parsing."""
    parsed = parse_message(message.to_bytes())
    assert isinstance(parsed, SipRequest)
    return parsed


def wire_response(message: SipResponse) -> SipResponse:
    """``message`` after serialisation and parsing."""
    parsed = parse_message(message.to_bytes())
    assert isinstance(parsed, SipResponse)
    return parsed


@attrs.frozen
class Fields:
    """What varies between the requests of these tests."""

    method: str = "INVITE"
    request_uri: str = "sip:bob@example.com"
    branch: str | None = attrs.field(factory=new_branch)
    host: str = "192.0.2.10"
    port: int | None = 5060
    transport: str = "UDP"
    from_tag: str = "from-1"
    to_tag: str | None = None
    call_id: str = "call-1@192.0.2.10"
    cseq: int = 1


def build(fields: Fields) -> SipRequest:
    """The request ``fields`` describe, as received off the wire."""
    params = Parameters([("branch", fields.branch)]) if fields.branch is not None else Parameters()
    to_params = Parameters([("tag", fields.to_tag)]) if fields.to_tag is not None else Parameters()
    built = make_request(
        fields.method,
        fields.request_uri,
        via=Via(fields.transport, fields.host, fields.port, params),
        from_header=NameAddress("sip:alice@example.com", parameters=Parameters([("tag", fields.from_tag)])),
        to_header=NameAddress("sip:bob@example.com", parameters=to_params),
        call_id=fields.call_id,
        cseq=fields.cseq,
    )
    return wire_request(built)


def started_server(table: TransactionTable, request: SipRequest, *, reliable: bool = False) -> ServerTransaction:
    """What the runtime does with an unmatched request: create, index and start a server transaction."""
    assert table.match_request(request) is None
    tx = create_server_transaction(request, reliable=reliable)
    table.add_server(tx)
    tx.start()
    return tx


# --- client side (17.1.3) -----------------------------------------------------------------------


def test_response_key_equals_its_requests_key() -> None:
    request = build(Fields(method="REGISTER"))
    reply = wire_response(make_response(request, 200, to_tag=new_tag()))

    key = client_transaction_key(reply)

    assert key == client_transaction_key(request)
    assert key == ClientTransactionKey((request.top_via.branch or "").lower(), "REGISTER")


def test_table_routes_responses_to_their_client_transaction() -> None:
    table = TransactionTable()
    register = NonInviteClientTransaction(build(Fields(method="REGISTER")), reliable=False)
    subscribe = NonInviteClientTransaction(build(Fields(method="SUBSCRIBE")), reliable=False)
    table.add_client(register)
    table.add_client(subscribe)

    assert table.match_response(wire_response(make_response(register.request, 401))) is register
    assert table.match_response(wire_response(make_response(subscribe.request, 200, to_tag="t"))) is subscribe


def test_response_with_the_same_branch_but_other_cseq_method_matches_the_other_transaction() -> None:
    # A CANCEL reuses the INVITE's branch; its 200 must not end the INVITE transaction.
    fields = Fields(method="INVITE")
    invite = build(fields)
    cancel = build(attrs.evolve(fields, method="CANCEL"))
    table = TransactionTable()
    invite_tx = InviteClientTransaction(invite, reliable=False)
    cancel_tx = NonInviteClientTransaction(cancel, reliable=False)
    table.add_client(invite_tx)
    table.add_client(cancel_tx)

    assert table.match_response(wire_response(make_response(cancel, 200))) is cancel_tx
    assert table.match_response(wire_response(make_response(invite, 487, to_tag="x"))) is invite_tx


def test_stray_responses_do_not_match() -> None:
    table = TransactionTable()
    tx = NonInviteClientTransaction(build(Fields(method="OPTIONS")), reliable=False)
    table.add_client(tx)
    other = build(Fields(method="OPTIONS"))  # fresh branch
    no_branch = build(Fields(method="OPTIONS", branch=None))

    assert table.match_response(wire_response(make_response(other, 200))) is None
    assert table.match_response(wire_response(make_response(no_branch, 200))) is None
    assert client_transaction_key(no_branch) is None


def test_branch_compares_case_insensitively() -> None:
    fields = Fields(method="PUBLISH")
    table = TransactionTable()
    tx = NonInviteClientTransaction(build(fields), reliable=False)
    table.add_client(tx)
    shouted = build(attrs.evolve(fields, branch="z9hG4bK" + (fields.branch or "")[7:].upper()))

    assert table.match_response(wire_response(make_response(shouted, 200))) is tx


def test_terminated_client_transaction_no_longer_matches() -> None:
    table = TransactionTable()
    request = build(Fields(method="MESSAGE"))
    tx = NonInviteClientTransaction(request, reliable=True)
    table.add_client(tx)
    tx.start()
    tx.receive_response(wire_response(make_response(request, 200)))
    assert tx.state is TransactionState.TERMINATED

    assert table.match_response(wire_response(make_response(request, 200))) is None
    assert table.client_count == 0


def test_adding_a_second_live_client_transaction_with_the_same_key_fails() -> None:
    request = build(Fields(method="SUBSCRIBE"))
    table = TransactionTable()
    table.add_client(NonInviteClientTransaction(request, reliable=False))
    with pytest.raises(InvalidOperationException):
        table.add_client(NonInviteClientTransaction(request, reliable=False))


# --- server side, RFC 3261 branches (17.2.3) ----------------------------------------------------


def test_retransmission_matches_the_server_transaction_and_gets_the_response_again() -> None:
    fields = Fields(method="SUBSCRIBE")
    table = TransactionTable()
    tx = started_server(table, build(fields))
    ok = make_response(tx.request, 200, to_tag=new_tag())
    tx.send_response(ok)

    retransmission = build(fields)
    matched = table.match_request(retransmission)

    assert matched is tx
    assert matched.receive_request(retransmission) == [SendMessage(ok)]
    assert server_transaction_key(retransmission) == ServerTransactionKey(
        (fields.branch or "").lower(), "192.0.2.10:5060", "SUBSCRIBE"
    )


@pytest.mark.parametrize(
    "change",
    [
        {"host": "192.0.2.99"},
        {"port": 5070},
        {"port": None},
        {"method": "NOTIFY"},
        {"branch": new_branch()},
    ],
    ids=["sent-by host", "sent-by port", "sent-by default port", "method", "branch"],
)
def test_request_differing_in_branch_sent_by_or_method_is_a_new_transaction(change: dict[str, Any]) -> None:
    fields = Fields(method="SUBSCRIBE")
    table = TransactionTable()
    started_server(table, build(fields))

    assert table.match_request(build(attrs.evolve(fields, **change))) is None


def test_rfc3261_matching_ignores_the_other_fields() -> None:
    fields = Fields(method="REGISTER")
    table = TransactionTable()
    tx = started_server(table, build(fields))
    changed = attrs.evolve(fields, request_uri="sip:other.example.com", call_id="other", cseq=9, from_tag="zz")

    assert table.match_request(build(changed)) is tx


def test_ack_for_a_failure_matches_the_invite_server_transaction() -> None:
    table = TransactionTable()
    invite = build(Fields(method="INVITE"))
    uac = InviteClientTransaction(invite, reliable=False)
    uac.start()
    uas = started_server(table, wire_request(invite))
    busy = make_response(uas.request, 486, to_tag=new_tag())
    uas.send_response(busy)
    ack = next(a.message for a in uac.receive_response(wire_response(busy)) if isinstance(a, SendMessage))
    assert isinstance(ack, SipRequest)

    matched = table.match_request(wire_request(ack))

    assert matched is uas
    matched.receive_request(wire_request(ack))
    assert uas.state is TransactionState.CONFIRMED


def test_ack_for_a_2xx_has_its_own_branch_and_goes_to_the_tu() -> None:
    fields = Fields(method="INVITE")
    table = TransactionTable()
    uas = started_server(table, build(fields))
    uas.send_response(make_response(uas.request, 200, to_tag="callee"))
    ack = build(attrs.evolve(fields, method="ACK", branch=new_branch(), to_tag="callee"))

    assert table.match_request(ack) is None


def test_cancel_finds_the_invite_it_cancels_but_is_its_own_transaction() -> None:
    fields = Fields(method="INVITE")
    table = TransactionTable()
    invite_tx = started_server(table, build(fields))
    cancel = build(attrs.evolve(fields, method="CANCEL"))

    assert table.match_request(cancel) is None
    assert table.match_cancel_target(cancel) is invite_tx
    cancel_tx = started_server(table, cancel)
    assert table.match_request(build(attrs.evolve(fields, method="CANCEL"))) is cancel_tx
    assert cancel_target_key(cancel) == server_transaction_key(invite_tx.request)


def test_cancel_of_a_non_invite_or_unknown_request_finds_nothing() -> None:
    fields = Fields(method="SUBSCRIBE")
    table = TransactionTable()
    started_server(table, build(fields))

    assert table.match_cancel_target(build(attrs.evolve(fields, method="CANCEL"))) is None
    assert table.match_cancel_target(build(Fields(method="CANCEL"))) is None


def test_terminated_server_transaction_lets_a_retransmission_start_a_new_one() -> None:
    fields = Fields(method="NOTIFY", transport="TCP")
    table = TransactionTable()
    first = started_server(table, build(fields), reliable=True)
    first.send_response(make_response(first.request, 200))  # reliable: terminates at once

    second = started_server(table, build(fields), reliable=True)

    assert second is not first
    assert table.match_request(build(fields)) is second


def test_adding_a_second_live_server_transaction_for_the_same_request_fails() -> None:
    request = build(Fields(method="NOTIFY"))
    table = TransactionTable()
    table.add_server(NonInviteServerTransaction(request, reliable=False))
    with pytest.raises(InvalidOperationException):
        table.add_server(NonInviteServerTransaction(request, reliable=False))


def test_remove_and_purge() -> None:
    table = TransactionTable()
    client = NonInviteClientTransaction(build(Fields(method="OPTIONS")), reliable=True)
    server = NonInviteServerTransaction(build(Fields(method="INFO")), reliable=True)
    table.add_client(client)
    table.add_server(server)
    assert len(table) == 2

    assert table.remove(client) is True
    assert table.remove(client) is False
    assert (table.client_count, table.server_count) == (0, 1)

    server.start()
    server.send_response(make_response(server.request, 200))
    assert table.purge_terminated() == 1
    assert len(table) == 0
    assert table.remove(server) is False


# --- server side, RFC 2543 fallback (17.2.3) ----------------------------------------------------


@pytest.mark.parametrize("branch", [None, "1a2b3c"], ids=["no branch", "branch without cookie"])
def test_rfc2543_request_matches_on_the_legacy_fields(branch: str | None) -> None:
    fields = Fields(method="REGISTER", branch=branch)
    table = TransactionTable()
    tx = started_server(table, build(fields))

    key = server_transaction_key(build(fields))

    assert isinstance(key, Rfc2543TransactionKey)
    assert table.match_request(build(fields)) is tx


@pytest.mark.parametrize(
    "change",
    [
        {"request_uri": "sip:carol@example.com"},
        {"to_tag": "some-tag"},
        {"from_tag": "from-2"},
        {"call_id": "call-2@192.0.2.10"},
        {"cseq": 2},
        {"host": "192.0.2.11"},
        {"transport": "TCP"},
        {"branch": "4d5e6f"},
        {"method": "NOTIFY"},
    ],
    ids=[
        "Request-URI",
        "To tag",
        "From tag",
        "Call-ID",
        "CSeq number",
        "Via host",
        "Via transport",
        "Via branch",
        "method",
    ],
)
def test_rfc2543_request_differing_in_any_legacy_field_does_not_match(change: dict[str, Any]) -> None:
    fields = Fields(method="REGISTER", branch="1a2b3c")
    table = TransactionTable()
    started_server(table, build(fields))

    assert table.match_request(build(attrs.evolve(fields, **change))) is None


@pytest.mark.parametrize("invite_to_tag", [None, "dialog-tag"], ids=["initial INVITE", "re-INVITE"])
def test_rfc2543_ack_matches_when_its_to_tag_is_the_responses(invite_to_tag: str | None) -> None:
    fields = Fields(method="INVITE", branch=None, to_tag=invite_to_tag)
    table = TransactionTable()
    uas = started_server(table, build(fields))
    assert isinstance(uas, InviteServerTransaction)
    busy = make_response(uas.request, 486, to_tag="uas-tag")
    uas.send_response(busy)
    tag = busy.to_header.tag
    assert tag == (invite_to_tag or "uas-tag")

    ack = wire_request(make_non_2xx_ack(build(fields), wire_response(busy)))
    wrong_tag_ack = build(attrs.evolve(fields, method="ACK", to_tag="someone-else"))

    assert table.match_request(wrong_tag_ack) is None
    assert table.match_request(ack) is uas
    uas.receive_request(ack)
    assert uas.state is TransactionState.CONFIRMED


def test_rfc2543_ack_before_any_final_response_does_not_match() -> None:
    fields = Fields(method="INVITE", branch=None)
    table = TransactionTable()
    started_server(table, build(fields))  # only the automatic 100 Trying, which has no To tag
    ack = build(attrs.evolve(fields, method="ACK", to_tag="uas-tag"))

    assert table.match_request(ack) is None


# --- both sides together ------------------------------------------------------------------------


def test_client_and_server_over_a_lossy_datagram_network() -> None:
    """REGISTER over UDP: the first two copies of the request are lost, then the first 200."""
    client_table, server_table = TransactionTable(), TransactionTable()
    client = NonInviteClientTransaction(build(Fields(method="REGISTER")), reliable=False)
    client_table.add_client(client)
    requests_to_server: list[SipRequest] = []
    requests_seen_by_registrar: list[SipRequest] = []
    responses_to_client: list[SipResponse] = []
    responses_seen_by_client: list[SipResponse] = []

    def run_server(request: SipRequest) -> None:
        tx = server_table.match_request(request)
        if tx is None:
            tx = create_server_transaction(request, reliable=False)
            server_table.add_server(tx)
            actions = tx.start()
            requests_seen_by_registrar.extend(a.request for a in actions if isinstance(a, DeliverRequest))
            actions += tx.send_response(make_response(request, 200, to_tag="registrar"))
        else:
            actions = tx.receive_request(request)
        responses_to_client.extend(
            a.message for a in actions if isinstance(a, SendMessage) and isinstance(a.message, SipResponse)
        )

    def run_client(actions: list[TransactionAction]) -> None:
        requests_to_server.extend(
            a.message for a in actions if isinstance(a, SendMessage) and isinstance(a.message, SipRequest)
        )
        responses_seen_by_client.extend(a.response for a in actions if isinstance(a, DeliverResponse))

    run_client(client.start())
    rounds = 0
    while "E" in client.armed_timers:
        rounds += 1
        assert rounds < 10
        run_client(client.timer_fired("E"))
        sent = len(requests_to_server)
        if sent > 2:  # copies 1 and 2 were lost
            run_server(wire_request(requests_to_server[-1]))
        if len(responses_to_client) > 1:  # the first 200 was lost
            reply = wire_response(responses_to_client[-1])
            matched = client_table.match_response(reply)
            assert matched is client
            run_client(matched.receive_response(reply))

    assert len(requests_to_server) == 4
    assert len(requests_seen_by_registrar) == 1
    assert len(responses_to_client) == 2
    assert [r.status_code for r in responses_seen_by_client] == [200]
    assert client.state is TransactionState.COMPLETED
