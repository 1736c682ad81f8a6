"""Which transaction an inbound message belongs to (RFC 3261 sections 17.1.3 and 17.2.3), sans-IO.

Responses match a client transaction on the top Via branch plus the CSeq method. Requests
match a server transaction on branch, sent-by and method (ACK matching its INVITE) when the
branch carries the RFC 3261 magic cookie, and otherwise on the RFC 2543 fields: Request-URI,
From and To tags, Call-ID, CSeq and the whole top Via. Key functions read the message's headers
and raise :class:`MessageParsingException` when one they need is missing or malformed.
"""

from __future__ import annotations

from typing import TypeAlias

import attrs

from ucma.signaling.exceptions import InvalidOperationException
from ucma.signaling.sip.message import SipRequest, SipResponse
from ucma.signaling.transaction import ClientTransaction, InviteServerTransaction, ServerTransaction

__all__ = [
    "ClientTransactionKey",
    "Rfc2543TransactionKey",
    "ServerKey",
    "ServerTransactionKey",
    "TransactionTable",
    "cancel_target_key",
    "client_transaction_key",
    "server_transaction_key",
]


@attrs.frozen
class ClientTransactionKey:
    """What a response shares with the request of its client transaction: branch and method."""

    branch: str
    method: str


@attrs.frozen
class ServerTransactionKey:
    """An RFC 3261 request's transaction identity: branch, sent-by and method (ACK counts as INVITE)."""

    branch: str
    sent_by: str
    method: str


@attrs.frozen
class Rfc2543TransactionKey:
    """A pre-RFC 3261 request's transaction identity (no magic cookie in the branch).

    ``to_tag`` is the request's own To tag; an ACK has the tag of the response instead, so the
    table checks it against the response the transaction sent.
    """

    request_uri: str
    to_tag: str | None
    from_tag: str | None
    call_id: str
    cseq_number: int
    method: str
    top_via: str


ServerKey: TypeAlias = ServerTransactionKey | Rfc2543TransactionKey


def _branch_key(branch: str) -> str:
    # Parameter values compare case-insensitively unless a header says otherwise (RFC 3261 section 7.3.1).
    return branch.lower()


def client_transaction_key(message: SipRequest | SipResponse) -> ClientTransactionKey | None:
    """The key of the client transaction that sent ``message`` (or that a response answers).

    None when the top Via has no branch: no transaction of ours can match such a response.
    """
    branch = message.top_via.branch
    if not branch:
        return None
    method = message.method if isinstance(message, SipRequest) else message.cseq.method
    return ClientTransactionKey(_branch_key(branch), method)


def server_transaction_key(request: SipRequest, *, method: str | None = None) -> ServerKey:
    """The key of the server transaction ``request`` belongs to.

    ``method`` overrides the method matched on; an ACK is matched as the INVITE it acknowledges.
    """
    if method is None:
        method = "INVITE" if request.method == "ACK" else request.method
    via = request.top_via
    branch = via.branch
    if branch is not None and via.is_rfc3261_branch:
        return ServerTransactionKey(_branch_key(branch), via.sent_by.lower(), method)
    return Rfc2543TransactionKey(
        request_uri=request.request_uri_text,
        to_tag=request.to_header.tag,
        from_tag=request.from_header.tag,
        call_id=request.call_id,
        cseq_number=request.cseq.number,
        method=method,
        top_via=str(via).lower(),
    )


def cancel_target_key(cancel: SipRequest) -> ServerKey:
    """The key of the INVITE server transaction a CANCEL asks to cancel (RFC 3261 section 9.2)."""
    return server_transaction_key(cancel, method="INVITE")


class TransactionTable:
    """The live client and server transactions, found by the keys of inbound messages.

    Lookups skip (and forget) transactions that reached Terminated, so a retransmission that
    arrives after its transaction ended is reported as unmatched: stray responses are dropped
    by the caller, an unmatched request creates a new server transaction (an unmatched ACK
    goes to the TU, as it acknowledges a 2xx).
    """

    def __init__(self) -> None:
        self._clients: dict[ClientTransactionKey, ClientTransaction] = {}
        self._servers: dict[ServerKey, ServerTransaction] = {}

    @property
    def client_count(self) -> int:
        """Client transactions held (terminated ones included until a lookup or purge drops them)."""
        return len(self._clients)

    @property
    def server_count(self) -> int:
        """Server transactions held (terminated ones included until a lookup or purge drops them)."""
        return len(self._servers)

    def __len__(self) -> int:
        return len(self._clients) + len(self._servers)

    def add_client(self, transaction: ClientTransaction) -> ClientTransactionKey:
        """Index a client transaction by its request's branch and method; return the key."""
        key = client_transaction_key(transaction.request)
        if key is None:  # client transactions refuse requests without a branch
            raise InvalidOperationException("the client transaction's request has no Via branch")
        existing = self._clients.get(key)
        if existing is not None and existing is not transaction and not existing.is_terminated:
            raise InvalidOperationException("a live client transaction already uses this branch and method")
        self._clients[key] = transaction
        return key

    def add_server(self, transaction: ServerTransaction) -> ServerKey:
        """Index a server transaction by the key of the request that created it; return the key."""
        key = server_transaction_key(transaction.request)
        existing = self._servers.get(key)
        if existing is not None and existing is not transaction and not existing.is_terminated:
            raise InvalidOperationException("a live server transaction already matches this request")
        self._servers[key] = transaction
        return key

    def match_response(self, response: SipResponse) -> ClientTransaction | None:
        """The live client transaction ``response`` belongs to, or None for a stray response."""
        key = client_transaction_key(response)
        if key is None:
            return None
        transaction = self._clients.get(key)
        if transaction is not None and transaction.is_terminated:
            del self._clients[key]
            return None
        return transaction

    def match_request(self, request: SipRequest) -> ServerTransaction | None:
        """The live server transaction ``request`` belongs to (a retransmission, or the ACK of an INVITE)."""
        key = server_transaction_key(request)
        if request.method == "ACK" and isinstance(key, Rfc2543TransactionKey):
            return self._match_rfc2543_ack(request, key)
        return self._live_server(key)

    def match_cancel_target(self, cancel: SipRequest) -> InviteServerTransaction | None:
        """The live INVITE server transaction a CANCEL refers to, or None (answer the CANCEL with 481)."""
        transaction = self._live_server(cancel_target_key(cancel))
        return transaction if isinstance(transaction, InviteServerTransaction) else None

    def remove(self, transaction: ClientTransaction | ServerTransaction) -> bool:
        """Forget ``transaction``; False if the table did not hold it."""
        if isinstance(transaction, ClientTransaction):
            client_key = client_transaction_key(transaction.request)
            if client_key is None or self._clients.get(client_key) is not transaction:
                return False
            del self._clients[client_key]
            return True
        server_key = server_transaction_key(transaction.request)
        if self._servers.get(server_key) is not transaction:
            return False
        del self._servers[server_key]
        return True

    def purge_terminated(self) -> int:
        """Forget every terminated transaction; return how many were dropped."""
        dead_clients = [key for key, tx in self._clients.items() if tx.is_terminated]
        dead_servers = [key for key, tx in self._servers.items() if tx.is_terminated]
        for client_key in dead_clients:
            del self._clients[client_key]
        for server_key in dead_servers:
            del self._servers[server_key]
        return len(dead_clients) + len(dead_servers)

    def _live_server(self, key: ServerKey) -> ServerTransaction | None:
        transaction = self._servers.get(key)
        if transaction is not None and transaction.is_terminated:
            del self._servers[key]
            return None
        return transaction

    def _match_rfc2543_ack(self, ack: SipRequest, key: Rfc2543TransactionKey) -> ServerTransaction | None:
        # The ACK carries the To tag of the response; the INVITE had none unless it was a re-INVITE.
        transaction = self._live_server(key)
        if transaction is None and key.to_tag is not None:
            transaction = self._live_server(attrs.evolve(key, to_tag=None))
        if not isinstance(transaction, InviteServerTransaction) or transaction.last_response is None:
            return None
        if transaction.last_response.to_header.tag != key.to_tag:
            return None
        return transaction
