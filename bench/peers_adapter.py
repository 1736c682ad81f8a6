"""ucma's parser as an adapter for ../shared/reference/peers/bench_parse.py.

    python3 ../shared/reference/peers/bench_parse.py --adapter-file bench/peers_adapter.py --interleave

``fields`` reads everything through ucma's public accessors, so the lazy parser pays its
deferred cost there, as the peers do.
"""

from __future__ import annotations

from typing import Any

from ucma.signaling import SipRequest, SipResponse, parse_message
from ucma.signaling.sip.auth_headers import Challenge


def _fields(m: SipRequest | SipResponse) -> dict[str, Any]:
    via = m.top_via
    cseq = m.cseq
    d: dict[str, Any] = {
        "via_branch": via.branch,
        "from_tag": m.from_header.tag,
        "to_tag": m.to_header.tag,
        "call_id": m.call_id,
        "cseq": (cseq.number, cseq.method),
    }
    if isinstance(m, SipResponse):
        d["status"] = m.status_code
        d["contact_expires"] = m.contacts[0].expires
        challenge = m.headers.get("WWW-Authenticate")
        d["auth_nonce"] = Challenge.parse(challenge).get("nonce") if challenge is not None else None
    else:
        d["method"] = m.method
        d["event"] = m.headers.get("Event")
        d["sub_state"] = m.headers.get("Subscription-State")
        d["body_len"] = len(m.body)
    return d


def make_adapters() -> dict[str, tuple[Any, Any]]:
    """bench_parse.py's hook: ``{name: (parse, fields)}``."""
    return {"ucma": (parse_message, _fields)}
