"""Hypothesis strategies that build valid SIP values and messages, plus sample wire messages.

Everything generated here is valid by RFC 3261's grammar, so a parser must accept it and give
back exactly the parts it was built from. Generators return the parts alongside the message
(see :class:`Built`) so tests can compare typed accessors, not only the wire text.
"""

from __future__ import annotations

import string

import attrs
from hypothesis import strategies as st

from ucma.signaling.sip import (
    CSeq,
    Headers,
    NameAddress,
    Parameters,
    SipRequest,
    SipResponse,
    SipUri,
    TelUri,
    Via,
    header_key,
)
from ucma.signaling.sip.grammar import quote

TOKEN_CHARS = string.ascii_letters + string.digits + "-.!%*_+`'~"
ALNUM = string.ascii_letters + string.digits
_UNRESERVED = ALNUM + "-_.!~*'()"
_USER_CHARS = _UNRESERVED + "&=+$,;?/"
_PASSWORD_CHARS = _UNRESERVED + "&=+$,"
_PARAM_CHARS = _UNRESERVED + "[]/:&+$"
_HEADER_CHARS = _UNRESERVED + "[]/?:+$"

METHODS = (
    "INVITE",
    "ACK",
    "BYE",
    "CANCEL",
    "OPTIONS",
    "REGISTER",
    "SUBSCRIBE",
    "NOTIFY",
    "MESSAGE",
    "INFO",
    "REFER",
    "SERVICE",
    "PUBLISH",
    "PRACK",
    "UPDATE",
)

# --- lexical pieces ------------------------------------------------------------------------

tokens = st.text(alphabet=TOKEN_CHARS, min_size=1, max_size=10)
methods = st.sampled_from(METHODS) | tokens
_escape = st.integers(0, 255).map(lambda b: f"%{b:02X}")


def _escaped_text(chars: str, min_size: int, max_size: int) -> st.SearchStrategy[str]:
    """Text made of ``chars`` and %HH escapes."""
    return st.lists(st.sampled_from(chars) | _escape, min_size=min_size, max_size=max_size).map("".join)


_label = st.from_regex(r"[a-z0-9]([a-z0-9\-]{0,6}[a-z0-9])?", fullmatch=True)
_toplabel = st.from_regex(r"[a-z]([a-z0-9\-]{0,6}[a-z0-9])?", fullmatch=True)
hostnames = st.builds(lambda labels, top: ".".join([*labels, top]), st.lists(_label, max_size=2), _toplabel)
ipv4_hosts = st.ip_addresses(v=4).map(str)
ipv6_hosts = st.ip_addresses(v=6).map(lambda a: f"[{a.compressed}]")
hosts = hostnames | ipv4_hosts | ipv6_hosts
ports = st.none() | st.integers(0, 65535)

# Printable text, any script, no control characters (which RFC 3261 never allows unescaped).
free_text = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cc", "Cs")),
    max_size=16,
)
header_text = free_text.map(lambda s: s.strip(" \t"))
display_names = st.none() | free_text

# --- URIs ----------------------------------------------------------------------------------

uri_parameters = st.lists(
    st.tuples(_escaped_text(ALNUM + "-", 1, 6), st.just("") | _escaped_text(_PARAM_CHARS, 1, 8)),
    max_size=3,
).map(Parameters)
uri_headers = st.lists(
    st.tuples(_escaped_text(_HEADER_CHARS, 1, 6), _escaped_text(_HEADER_CHARS, 0, 8)),
    max_size=2,
).map(tuple)


@st.composite
def sip_uris(draw: st.DrawFn, *, with_headers: bool = True, with_password: bool = False) -> SipUri:
    """Any sip:/sips: URI, parts escaped as on the wire."""
    user = draw(st.none() | _escaped_text(_USER_CHARS, 1, 10))
    password = None
    if with_password and user is not None:
        password = draw(st.none() | _escaped_text(_PASSWORD_CHARS, 0, 8))
    return SipUri(
        host=draw(hosts),
        user=user,
        scheme=draw(st.sampled_from(["sip", "sips"])),
        password=password,
        port=draw(ports),
        parameters=draw(uri_parameters),
        headers=draw(uri_headers) if with_headers else (),
    )


tel_uris = st.builds(
    TelUri,
    number=st.from_regex(r"\+?[0-9]([0-9\-.]{0,10}[0-9])?", fullmatch=True),
    parameters=st.lists(
        st.tuples(st.sampled_from(["ext", "isub", "phone-context"]), st.from_regex(r"[0-9]{1,5}", fullmatch=True)),
        max_size=2,
    ).map(Parameters),
)

# --- header values -------------------------------------------------------------------------

_quoted_values = free_text.map(quote)
_generic_params = st.tuples(
    tokens.filter(lambda t: t.lower() not in ("tag", "expires", "q", "branch", "rport", "ttl", "received", "maddr")),
    st.just("") | tokens | _quoted_values,
)


@st.composite
def address_parameters(draw: st.DrawFn) -> Parameters:
    """From/To/Contact parameters: tag, expires, q, +sip.instance and extension parameters."""
    items: list[tuple[str, str]] = []
    if draw(st.booleans()):
        items.append(("tag", draw(tokens)))
    if draw(st.booleans()):
        items.append(("expires", str(draw(st.integers(0, 2**32 - 1)))))
    if draw(st.booleans()):
        items.append(("q", draw(st.sampled_from(["0", "0.5", "0.125", "1", "1.0", "1.000", "0."]))))
    if draw(st.booleans()):
        items.append(("+sip.instance", quote(f"<urn:uuid:{draw(st.uuids())}>")))
    items += draw(st.lists(_generic_params, max_size=2))
    return Parameters(draw(st.permutations(items)))


@st.composite
def name_addresses(draw: st.DrawFn, *, sip_only: bool = False) -> NameAddress:
    """A name-addr with optional display name (quotes, commas, backslashes included)."""
    uri: SipUri | TelUri = draw(sip_uris() if sip_only else (sip_uris() | tel_uris))
    return NameAddress(str(uri), draw(display_names), draw(address_parameters()))


@st.composite
def vias(draw: st.DrawFn) -> Via:
    """One Via value with a branch and the usual NAT/multicast parameters."""
    items: list[tuple[str, str]] = [("branch", "z9hG4bK" + draw(tokens))]
    rport = draw(st.none() | st.just("") | st.integers(0, 65535).map(str))
    if rport is not None:
        items.append(("rport", rport))
    if draw(st.booleans()):
        items.append(("received", draw(ipv4_hosts | ipv6_hosts)))
    if draw(st.booleans()):
        items.append(("maddr", draw(ipv4_hosts)))
        items.append(("ttl", str(draw(st.integers(0, 255)))))
    items += draw(st.lists(_generic_params, max_size=2))
    return Via(
        transport=draw(st.sampled_from(["UDP", "TCP", "TLS", "SCTP", "WS", "WSS"])),
        host=draw(hosts),
        port=draw(ports),
        parameters=Parameters(draw(st.permutations(items))),
    )


call_ids = st.from_regex(r"[A-Za-z0-9\-.!%*_+`'~()<>:\\\"/\[\]?{}]{1,20}(@[A-Za-z0-9.\-]{1,12})?", fullmatch=True)
extension_names = tokens.map(lambda t: "X-" + t)


def _name(full: str, compact: str | None) -> st.SearchStrategy[str]:
    options = [full, full.lower(), full.upper()]
    if compact is not None:
        options.append(compact)
    return st.sampled_from(options)


# --- messages ------------------------------------------------------------------------------


@attrs.frozen
class Built:
    """A generated message and the typed values it was built from."""

    message: SipRequest | SipResponse
    vias: tuple[Via, ...]
    from_header: NameAddress
    to_header: NameAddress
    call_id: str
    cseq: CSeq
    contacts: tuple[NameAddress, ...]
    routes: tuple[NameAddress, ...]


def _join_lines(draw: st.DrawFn, values: list[str]) -> list[str]:
    """Split ``values`` into header lines, several comma-separated values per line at random."""
    lines: list[str] = []
    for value in values:
        same_line: bool = draw(st.booleans())
        if lines and same_line:
            lines[-1] += draw(st.sampled_from([", ", ",", " , "])) + value
        else:
            lines.append(value)
    return lines


@st.composite
def messages(draw: st.DrawFn, *, kind: str | None = None) -> Built:
    """A valid request or response (``kind`` is ``"request"``, ``"response"`` or None for either)."""
    is_request = draw(st.booleans()) if kind is None else kind == "request"
    method = draw(methods)
    via_values = draw(st.lists(vias(), min_size=1, max_size=3))
    from_header = draw(name_addresses()).with_parameters(Parameters([("tag", draw(tokens))]))
    to_header = draw(name_addresses())
    call_id = draw(call_ids)
    cseq = CSeq(draw(st.integers(0, 2**32 - 1)), method)
    contacts = draw(st.lists(name_addresses(sip_only=True), max_size=3))
    if not contacts and draw(st.booleans()):
        contacts = [NameAddress("*")]
    routes = draw(st.lists(name_addresses(sip_only=True), max_size=2))
    body = draw(st.binary(max_size=64))

    fields: list[tuple[str, str]] = []
    via_name = _name("Via", "v")
    fields += [(draw(via_name), line) for line in _join_lines(draw, [str(v) for v in via_values])]
    fields.append(("Max-Forwards", str(draw(st.integers(0, 255)))))
    fields.append((draw(_name("From", "f")), str(from_header)))
    fields.append((draw(_name("To", "t")), str(to_header)))
    fields.append((draw(_name("Call-ID", "i")), call_id))
    fields.append(("CSeq", str(cseq)))
    contact_name = _name("Contact", "m")
    fields += [(draw(contact_name), line) for line in _join_lines(draw, [str(c) for c in contacts])]
    fields += [("Route", line) for line in _join_lines(draw, [str(r) for r in routes])]
    if draw(st.booleans()):
        fields.append((draw(_name("Supported", "k")), ", ".join(draw(st.lists(tokens, min_size=1, max_size=3)))))
    if draw(st.booleans()):
        fields.append(("Expires", str(draw(st.integers(0, 2**32 - 1)))))
    fields += draw(st.lists(st.tuples(extension_names, header_text), max_size=3))
    if body:
        fields.append(
            (draw(_name("Content-Type", "c")), draw(st.sampled_from(["application/sdp", "text/plain;charset=utf-8"])))
        )
    fields.append((draw(_name("Content-Length", "l")), str(len(body))))
    if draw(st.booleans()):
        fields = _interleave(fields, draw(st.permutations(range(len(fields)))))

    headers = Headers(fields)
    message: SipRequest | SipResponse
    if is_request:
        uri = draw(sip_uris(with_headers=False) | tel_uris)
        message = SipRequest(method, str(uri), headers, body)
    else:
        message = SipResponse(draw(st.integers(100, 699)), draw(free_text), headers, body)
    return Built(message, tuple(via_values), from_header, to_header, call_id, cseq, tuple(contacts), tuple(routes))


def _interleave(fields: list[tuple[str, str]], order: list[int]) -> list[tuple[str, str]]:
    """Shuffle header lines by ``order`` but keep lines of the same header in their order (it carries meaning)."""
    by_key: dict[str, list[tuple[str, str]]] = {}
    for name, value in fields:
        by_key.setdefault(header_key(name), []).append((name, value))
    out: list[tuple[str, str]] = []
    for index in order:
        out.append(by_key[header_key(fields[index][0])].pop(0))
    return out


# --- sample wire messages ------------------------------------------------------------------

INVITE = (
    b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds;rport\r\n"
    b"Max-Forwards: 70\r\n"
    b'From: "Alice, \\"A\\" <x>" <sip:alice@atlanta.example.com>;tag=1928301774\r\n'
    b"To: Bob <sip:bob@biloxi.example.com>\r\n"
    b"Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n"
    b"CSeq: 314159 INVITE\r\n"
    b'Contact: <sip:alice@pc33.atlanta.example.com>;+sip.instance="<urn:uuid:00000000-0000-1000-8000-AABBCCDDEEFF>"\r\n'
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: 4\r\n"
    b"\r\n"
    b"v=0\n"
)

RESPONSE = (
    b"SIP/2.0 401 Unauthorized\r\n"
    b"Via: SIP/2.0/TLS 192.0.2.4:5061;branch=z9hG4bKnashds8;received=192.0.2.4, "
    b"SIP/2.0/TCP [2001:db8::9]:5060;branch=z9hG4bK1\r\n"
    b"v: SIP/2.0/UDP proxy.example.com;branch=z9hG4bK2;ttl=16;maddr=239.255.255.1\r\n"
    b"From: <sip:alice@example.com>;tag=1\r\n"
    b"To: <sip:alice@example.com>;tag=2\r\n"
    b"Call-ID: 843817637684230@998sdasdh09\r\n"
    b"CSeq: 1826 REGISTER\r\n"
    b'WWW-Authenticate: Digest realm="example.com", nonce="ea9c8e88df84f1cec4341ae6cbe5a359",'
    b' qop="auth", algorithm=MD5\r\n'
    b"Retry-After: 120 (in a meeting);duration=3600\r\n"
    b"Supported: timer, 100rel\r\n"
    b'Warning: 399 example.com "no"\r\n'
    b"Date: Sat, 13 Nov 2010 23:29:00 GMT\r\n"
    b"Subject: folded\r\n"
    b"\tacross two lines\r\n"
    b"Content-Length: 0\r\n"
    b"\r\n"
)

SAMPLES = (INVITE, RESPONSE)
