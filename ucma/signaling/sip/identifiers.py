"""Fresh protocol identifiers: branches, tags, Call-IDs and EPIDs (random, never derived from secrets)."""

from __future__ import annotations

import secrets

from ucma.signaling.sip.header_values import BRANCH_MAGIC_COOKIE


def new_branch() -> str:
    """An RFC 3261 branch: the magic cookie plus 96 random bits."""
    return BRANCH_MAGIC_COOKIE + secrets.token_hex(12)


def new_tag() -> str:
    """A From/To tag with 64 random bits."""
    return secrets.token_hex(8)


def new_call_id(host: str = "") -> str:
    """A globally unique Call-ID, optionally ``@host``."""
    ident = secrets.token_hex(16)
    return f"{ident}@{host}" if host else ident


def new_epid() -> str:
    """An endpoint id in the 10-hex-digit form Microsoft clients use for ``epid=``."""
    return secrets.token_hex(5)
