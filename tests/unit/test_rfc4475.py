"""RFC 4475 torture messages through the datagram parser.

The corpus in ``tests/data/rfc4475`` is the RFC's Appendix A archive, decoded byte for byte;
``manifest.json`` says for each message which section it comes from and what a parser must do.
Outcome tests are parametrised over the manifest (one test id per message); the field tests
below check the values the RFC text says a parser has to get right.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import TypedDict

import pytest

from ucma.signaling import MessageParsingException, SipRequest, SipResponse, parse_message
from ucma.signaling.sip import SipUri

DATA_DIR = Path(__file__).resolve().parents[1] / "data" / "rfc4475"


class Entry(TypedDict):
    """One manifest record (see ``manifest.json`` for the meaning of each field)."""

    name: str
    file: str
    section: str
    title: str
    category: str
    expect: str
    transport: str | None
    size: int
    sha256: str
    note: str


def _load_manifest() -> list[Entry]:
    raw = json.loads((DATA_DIR / "manifest.json").read_text(encoding="utf-8"))
    entries: list[Entry] = raw["messages"]
    return entries


ENTRIES = _load_manifest()
BY_NAME = {entry["name"]: entry for entry in ENTRIES}


def _params(*, category: str | None = None, expect: str | None = None) -> list[object]:
    return [
        pytest.param(entry, id=entry["name"])
        for entry in ENTRIES
        if category in (None, entry["category"]) and expect in (None, entry["expect"])
    ]


def _data(name: str) -> bytes:
    return (DATA_DIR / BY_NAME[name]["file"]).read_bytes()


def parse_and_validate(data: bytes) -> SipRequest | SipResponse:
    """Parse one datagram and check every header the library knows, as a UA would before acting."""
    message = parse_message(data)
    message.validate()
    return message


def _request(name: str) -> SipRequest:
    message = parse_and_validate(_data(name))
    assert isinstance(message, SipRequest)
    return message


def _response(name: str) -> SipResponse:
    message = parse_and_validate(_data(name))
    assert isinstance(message, SipResponse)
    return message


def _sip(uri: object) -> SipUri:
    assert isinstance(uri, SipUri)
    return uri


def _assert_rejected(data: bytes) -> MessageParsingException:
    with pytest.raises(MessageParsingException) as info:
        parse_and_validate(data)
    assert isinstance(info.value.reason, str)
    assert info.value.reason.strip()
    return info.value


# --- the corpus itself -----------------------------------------------------------------------


def test_manifest_covers_each_rfc_message_once() -> None:
    names = [entry["name"] for entry in ENTRIES]
    assert len(names) == len(set(names))
    assert {entry["file"] for entry in ENTRIES} == {path.name for path in DATA_DIR.glob("*.dat")}
    counts = {cat: sum(e["category"] == cat for e in ENTRIES) for cat in ("valid", "invalid", "semantic")}
    # Sections 3.1.1.1-13, 3.1.2.1-19, and 3.2.1 + 3.3.1-15 + 3.4.1.
    assert counts == {"valid": 13, "invalid": 19, "semantic": 17}
    assert all(entry["expect"] == "accept" for entry in ENTRIES if entry["category"] == "valid")
    assert all(entry["expect"] == "reject" for entry in ENTRIES if entry["category"] == "invalid")


@pytest.mark.parametrize("entry", _params())
def test_corpus_file_is_byte_exact(entry: Entry) -> None:
    data = (DATA_DIR / entry["file"]).read_bytes()
    assert len(data) == entry["size"]
    assert hashlib.sha256(data).hexdigest() == entry["sha256"]


# --- outcome per message ---------------------------------------------------------------------


@pytest.mark.parametrize("entry", _params(category="valid"))
def test_valid_message_parses_and_validates(entry: Entry) -> None:
    parse_and_validate(_data(entry["name"]))


@pytest.mark.parametrize("entry", _params(category="invalid"))
def test_invalid_message_is_rejected(entry: Entry) -> None:
    _assert_rejected(_data(entry["name"]))


@pytest.mark.parametrize("entry", _params(category="semantic", expect="accept"))
def test_semantic_message_is_syntactically_valid(entry: Entry) -> None:
    parse_and_validate(_data(entry["name"]))


@pytest.mark.parametrize("entry", _params(category="semantic", expect="reject"))
def test_semantic_message_with_broken_syntax_is_rejected(entry: Entry) -> None:
    _assert_rejected(_data(entry["name"]))


@pytest.mark.parametrize("name", ["clerr", "ncl", "mcl01"])
def test_udp_framing_error_is_raised_by_parse_message(name: str) -> None:
    # Content-Length too large, negative, or given twice with different values: the datagram
    # cannot be framed, so the parser itself refuses it (RFC 3261 section 18.3).
    assert BY_NAME[name]["transport"] == "udp"
    with pytest.raises(MessageParsingException) as info:
        parse_message(_data(name))
    assert info.value.reason.strip()


# --- 3.1.2 invalid messages: rejected for the defect the RFC describes ----------------------

Message = SipRequest | SipResponse

_FAULTY_FIELDS: list[tuple[str, str, Callable[[Message], object]]] = [
    ("badinv01", "via", lambda m: m.vias),
    ("badinv01", "contact", lambda m: m.contacts),
    ("scalar02", "cseq", lambda m: m.cseq),
    ("scalar02", "max-forwards", lambda m: m.max_forwards),
    ("scalar02", "expires", lambda m: m.expires),
    ("scalar02", "contact-expires", lambda m: [c.expires for c in m.contacts]),
    ("scalarlg", "cseq", lambda m: m.cseq),
    ("quotbal", "to", lambda m: m.to_header),
    ("regbadct", "contact", lambda m: m.contacts),
    ("badaspec", "to", lambda m: m.to_header.uri),
]


@pytest.mark.parametrize(
    ("name", "accessor"),
    [pytest.param(name, accessor, id=f"{name}-{field}") for name, field, accessor in _FAULTY_FIELDS],
)
def test_invalid_message_frames_but_faulty_field_raises(
    name: str, accessor: Callable[[Message], object]
) -> None:
    msg = parse_message(_data(name))
    with pytest.raises(MessageParsingException):
        accessor(msg)


def test_baddn_unquoted_display_names_are_refused() -> None:
    # The archive's copy lacks the empty line ending the header section (see the manifest);
    # with it added, framing succeeds and the unquoted display names must be what fails.
    msg = parse_message(_data("baddn") + b"\r\n")
    with pytest.raises(MessageParsingException):
        _ = msg.from_header
    with pytest.raises(MessageParsingException):
        _ = msg.to_header
    _assert_rejected(_data("baddn") + b"\r\n")


def test_baddate_only_the_date_is_wrong() -> None:
    msg = parse_message(_data("baddate"))
    assert msg.headers.get("Date") == "Fri, 01 Jan 2010 16:00:00 EST"
    with pytest.raises(MessageParsingException):
        msg.validate()
    msg.headers.remove("Date")
    msg.validate()


def test_escruri_request_uri_headers_are_refused() -> None:
    msg = parse_message(_data("escruri"))
    assert isinstance(msg, SipRequest)
    assert _sip(msg.request_uri).headers == (("Route", "%3Csip:example.com%3E"),)
    with pytest.raises(MessageParsingException):
        msg.validate()


@pytest.mark.parametrize("name", ["mismatch01", "mismatch02"])
def test_cseq_method_mismatch_is_refused(name: str) -> None:
    msg = parse_message(_data(name))
    assert isinstance(msg, SipRequest)
    assert msg.cseq.method == "INVITE"
    assert msg.method != msg.cseq.method
    with pytest.raises(MessageParsingException):
        msg.validate()


# --- 3.1.1 valid messages: the values a parser must get right ---------------------------------


def test_wsinv_folding_whitespace_and_escapes() -> None:
    msg = _request("wsinv")
    assert msg.method == "INVITE"
    ruri = _sip(msg.request_uri)
    assert (ruri.user, ruri.host, ruri.port) == ("vivekg", "chair-dnrc.example.com", None)
    assert ruri.parameters.get("unknownparam") == ""
    assert not msg.to_header.display_name
    assert str(msg.to_header.uri) == "sip:vivekg@chair-dnrc.example.com"
    assert msg.to_header.tag == "1918181833n"
    assert msg.from_header.display_name == 'J Rosenberg \\"'
    assert str(msg.from_header.uri) == "sip:jdrosen@example.com"
    assert msg.from_header.tag == "98asjd8"
    assert msg.max_forwards == 68
    assert msg.call_id == "wsinv.ndaksdj@192.0.2.1"
    assert (msg.cseq.number, msg.cseq.method) == (9, "INVITE")
    assert len(msg.headers.get_all("v")) == 2  # one "Via" line and one compact "v" line
    assert [(v.transport, v.host, v.port, v.branch) for v in msg.vias] == [
        ("UDP", "192.0.2.2", None, "390skdjuw"),
        ("TCP", "spindle.example.com", None, "z9hG4bK9ikj8"),
        ("UDP", "192.168.255.111", None, "z9hG4bK30239"),
    ]
    assert msg.headers.get("Subject") == ""
    assert msg.headers.get("s") == ""
    assert msg.headers.get("newfangledheader") == "newfangled value continued newfangled value"
    assert msg.headers.get("UnknownHeaderWithUnusualValue") == ";;,,;;,;"
    (route,) = msg.routes
    route_params = _sip(route.uri).parameters
    assert "lr" in route_params
    assert route_params.get("unknownwith") == "value"
    assert "unknown-no-value" in route_params
    (contact,) = msg.contacts
    assert contact.display_name == 'Quoted string ""'
    assert str(contact.uri) == "sip:jdrosen@example.com"
    assert contact.parameters.get("newparam") == "newvalue"
    assert contact.parameters.get("secondparam") == ""
    assert contact.parameters.get("q") == "0.33"
    assert msg.content_type == "application/sdp"
    assert msg.content_length == 150
    assert len(msg.body) == 150
    assert msg.body.startswith(b"v=0\r\n")


def test_intmeth_unusual_but_legal_characters() -> None:
    msg = _request("intmeth")
    method = "!interesting-Method0123456789_*+`.%indeed'~"
    assert msg.method == method
    assert (msg.cseq.number, msg.cseq.method) == (139122385, method)
    ruri = _sip(msg.request_uri)
    assert ruri.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    assert ruri.host == "example.com"
    assert msg.top_via.branch == "z9hG4bK-.!%66*_+`'~"
    assert msg.to_header.display_name == "BEL:\x07 NUL:\x00 DEL:\x7f"
    assert _sip(msg.to_header.uri).user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    assert msg.from_header.display_name == "token1~` token2'+_ token3*%!.-"
    assert msg.from_header.tag == "_token~1'+`*%!-."
    utf8_value = bytes.fromhex("D180D0B0D0B1D0BED182D0B0D18ED189D0B8D0B9").decode("utf-8")
    assert msg.from_header.parameters.get("fromParam''~+*_!.-%") == utf8_value
    assert msg.call_id == "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{"
    assert msg.max_forwards == 255
    extension_value = bytes.fromhex("EFBBBFE5A4A7E5819CE99BBB").decode("utf-8")
    assert msg.headers.get("extensionHeader-!.%*+_`'~") == extension_value


def test_esc01_escapes_kept_on_the_wire_and_decoded_on_request() -> None:
    msg = _request("esc01")
    ruri = _sip(msg.request_uri)
    assert ruri.user == "sips%3Auser%40example.com"
    assert ruri.unescaped_user == "sips:user@example.com"
    assert ruri.host == "example.net"
    assert _sip(msg.to_header.uri).unescaped_user == "user"
    assert _sip(msg.from_header.uri).unescaped_user == "I have spaces"
    (contact,) = msg.contacts
    contact_uri = _sip(contact.uri)
    assert contact_uri.unescaped_user == "caller"
    # Escapes in URI parameters are not decoded, let alone twice ("value%41" is not "valueA").
    assert str(contact_uri) == "sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31"
    assert msg.call_id == "esc01.239409asdfakjkn23onasd0-3234"
    assert msg.content_type == "application/sdp"
    assert msg.content_length == 150


def test_escnull_user_parts_keep_their_escaped_nulls() -> None:
    msg = _request("escnull")
    assert msg.method == "REGISTER"
    for address in (msg.to_header, msg.from_header):
        uri = _sip(address.uri)
        assert uri.user == "null-%00-null"
        assert str(uri) == "sip:null-%00-null@example.com"
        assert uri.unescaped_user == "null-\x00-null"
    contact_uris = [_sip(contact.uri) for contact in msg.contacts]
    assert [uri.user for uri in contact_uris] == ["%00", "%00%00"]
    assert [uri.unescaped_user for uri in contact_uris] == ["\x00", "\x00\x00"]
    assert msg.content_length == 0
    assert msg.body == b""


def test_esc02_percent_is_not_an_escape_outside_uris() -> None:
    msg = _request("esc02")
    assert msg.method == "RE%47IST%45R"
    assert msg.cseq.method == "RE%47IST%45R"
    assert msg.to_header.display_name == "%Z%45"
    assert msg.from_header.display_name == "%Z%45"
    assert msg.top_via.branch == "z9hG4bK209%fzsnel234"
    assert [str(contact.uri) for contact in msg.contacts] == [
        "sip:alias1@host1.example.com",
        "sip:alias3@host3.example.com",
    ]
    assert msg.headers.get("C%6Fntact") == "<sip:alias2@host2.example.com>"


def test_lwsdisp_token_display_name_directly_before_angle_bracket() -> None:
    msg = _request("lwsdisp")
    assert msg.method == "OPTIONS"
    assert msg.from_header.display_name == "caller"
    assert str(msg.from_header.uri) == "sip:caller@example.com"
    assert msg.from_header.tag == "323"


def test_longreq_long_values_and_many_vias() -> None:
    msg = _request("longreq")
    to = msg.to_header
    assert to.display_name == "I have a user name of " + "extreme" * 10 + " proportion"
    to_uri = _sip(to.uri)
    assert (to_uri.user, to_uri.host, to_uri.port) == ("user", "example.com", 6000)
    assert to_uri.parameters.get("unknownparam1") == "very" + "long" * 20 + "value"
    assert to_uri.parameters.get("longparam" + "name" * 25) == "shortvalue"
    assert to_uri.parameters.get("very" + "long" * 25 + "ParameterNameWithNoValue") == ""
    sender = msg.from_header
    assert _sip(sender.uri).user == "amazinglylongcallername" * 5
    assert sender.tag == "12" + "982" * 50 + "424"
    assert sender.parameters.get("unknownheaderparam" + "name" * 20) == "unknowheaderparam" + "value" * 15
    assert sender.parameters.get("unknownValueless" + "paramname" * 10) == ""
    assert msg.call_id == "longreq.one" + "really" * 20 + "longcallid"
    long_ = "long" * 20
    assert msg.headers.get("Unknown-" + "Long" * 20 + "-Name") == (
        f"unknown-{long_}-value; unknown-{long_}-parameter-name = unknown-{long_}-parameter-value"
    )
    assert len(msg.headers.get_all("via")) == 34
    vias = msg.vias
    assert [via.host for via in vias[:-1]] == [f"sip{n}.example.com" for n in range(33, 0, -1)]
    assert {via.transport for via in vias} == {"TCP"}
    last = vias[-1]
    assert last.host == "host.example.com"
    assert last.received == "192.0.2.5"
    assert last.branch == "very" + "long" * 50 + "branchvalue"
    (contact,) = msg.contacts
    assert str(contact.uri) == "sip:" + "amazinglylongcallername" * 5 + "@host5.example.net"
    assert msg.max_forwards == 70
    assert msg.content_length == 150
    assert len(msg.body) == 150


def test_dblreq_only_the_register_is_returned() -> None:
    data = _data("dblreq")
    assert b"INVITE sip:joe@example.com" in data
    msg = _request("dblreq")
    assert msg.method == "REGISTER"
    assert msg.content_length == 0
    assert msg.body == b""
    assert msg.call_id == "dblreq.0ha0isndaksdj99sdfafnl3lk233412"
    assert (msg.cseq.number, msg.cseq.method) == (8, "REGISTER")
    assert [via.branch for via in msg.vias] == ["z9hG4bKkdjuw23492"]
    assert "Content-Type" not in msg.headers
    assert [str(contact.uri) for contact in msg.contacts] == ["sip:j.user@host.example.com"]
    # A proxy forwarding the REGISTER must not carry the INVITE octets along.
    assert b"INVITE" not in msg.to_bytes()


def test_semiuri_user_part_holds_the_semicolon() -> None:
    msg = _request("semiuri")
    ruri = _sip(msg.request_uri)
    assert ruri.user == "user;par=u%40example.net"
    assert ruri.unescaped_user == "user;par=u@example.net"
    assert ruri.host == "example.com"
    assert len(ruri.parameters) == 0
    assert msg.headers.get("Accept") == (
        "application/sdp, application/pkcs7-mime, multipart/mixed, multipart/signed, "
        "message/sip, message/sipfrag"
    )


def test_transports_known_and_unknown() -> None:
    msg = _request("transports")
    assert [(via.transport, via.host) for via in msg.vias] == [
        ("UDP", "t1.example.com"),
        ("SCTP", "t2.example.com"),
        ("TLS", "t3.example.com"),
        ("UNKNOWN", "t4.example.com"),
        ("TCP", "t5.example.com"),
    ]
    assert msg.call_id == "transports.kijh4akdnaqjkwendsasfdj"


def test_mpart01_binary_body_framed_by_content_length() -> None:
    data = _data("mpart01")
    msg = _request("mpart01")
    assert msg.method == "MESSAGE"
    assert msg.content_length == 553
    assert len(msg.body) == 553
    assert msg.body == data[-553:]
    assert b"\x00" in msg.body
    assert msg.body.endswith(b"--7a9cbec02ceef655--\r\n")
    assert msg.content_type == "multipart/mixed"
    top = msg.top_via
    assert (top.transport, top.host, top.port) == ("UDP", "127.0.0.1", 5070)
    assert top.branch == "z9hG4bK-d87543-4dade06d0bdb11ee-1--d87543-"
    assert "rport" in top.parameters
    assert (msg.cseq.number, msg.cseq.method) == (1, "MESSAGE")
    assert msg.call_id == "3d9485ad0c49859b@Zmx1ZmZ5LW1hYy0xNi5sb2NhbA.."


def test_unreason_utf8_reason_phrase() -> None:
    msg = _response("unreason")
    assert msg.status_code == 200
    utf8_part = bytes.fromhex(
        "D0BDD0BE20D181D182D0BE20D0B4D0B5D0B2D18FD0BDD0BED181D182D0BE20D0B4"
        "D0B5D0B2D18FD182D18C202D20D0BFD180D0BED181D182D0BED0B5"
    ).decode("utf-8")
    assert msg.reason_phrase == "= 2**3 * 5**2 " + utf8_part
    assert msg.content_length == 154
    assert len(msg.body) == 154


def test_noreason_empty_reason_phrase() -> None:
    msg = _response("noreason")
    assert msg.status_code == 100
    assert msg.reason_phrase == ""
    assert msg.call_id == "noreason.asndj203insdf99223ndf"
    assert msg.to_header.tag == "902jndnke3"


# --- 3.2 to 3.4: syntactically valid, decided above the parser --------------------------------


def test_badbranch_cookie_without_identifier() -> None:
    msg = _request("badbranch")
    assert msg.top_via.branch == "z9hG4bK"


def test_insuf_missing_headers_fail_only_when_asked_for() -> None:
    msg = _request("insuf")
    for name in ("Call-ID", "From", "To"):
        assert name not in msg.headers
    with pytest.raises(MessageParsingException):
        _ = msg.call_id
    with pytest.raises(MessageParsingException):
        _ = msg.from_header
    with pytest.raises(MessageParsingException):
        _ = msg.to_header
    assert (msg.cseq.number, msg.cseq.method) == (193942, "INVITE")
    assert len(msg.body) == msg.content_length == 152


@pytest.mark.parametrize(
    ("name", "uri_text"),
    [
        ("unkscm", "nobodyKnowsThisScheme:totallyopaquecontent"),
        ("novelsc", "soap.beep://192.0.2.103:3002"),
    ],
)
def test_non_sip_request_uri_is_kept_opaque(name: str, uri_text: str) -> None:
    msg = _request(name)
    assert msg.request_uri_text == uri_text
    assert not isinstance(msg.request_uri, SipUri)
    # Schemes compare case-insensitively (RFC 3986 section 3.1); the rest is opaque and kept as is.
    scheme, _, rest = str(msg.request_uri).partition(":")
    expected_scheme, _, expected_rest = uri_text.partition(":")
    assert (scheme.lower(), rest) == (expected_scheme.lower(), expected_rest)


def test_unksm2_non_sip_uris_in_address_headers() -> None:
    msg = _request("unksm2")
    assert str(msg.to_header.uri) == "isbn:2983792873"
    assert str(msg.from_header.uri) == "http://www.example.com"
    assert msg.from_header.tag == "3234233"
    assert [str(contact.uri) for contact in msg.contacts] == ["name:John_Smith"]


def test_bext01_option_tags_are_listed() -> None:
    msg = _request("bext01")
    assert msg.token_list("Require") == ["nothingSupportsThis", "nothingSupportsThisEither"]
    assert msg.token_list("Proxy-Require") == ["noProxiesSupportThis", "norDoAnyProxiesSupportThis"]
    assert msg.top_via.transport == "TLS"


def test_invut_unknown_content_type() -> None:
    msg = _request("invut")
    assert msg.content_type == "application/unknownformat"
    assert msg.content_length == 40
    assert msg.body == b'<audio>\r\n <pcmu port="443"/>\r\n</audio>\r\n'


def test_regaut01_unknown_authorization_scheme_is_kept() -> None:
    msg = _request("regaut01")
    assert msg.headers.get("Authorization") == "NoOneKnowsThisScheme opaque-data=here"
    assert msg.content_length == 0


def test_multi01_parses_but_duplicate_single_value_headers_fail_validation() -> None:
    msg = parse_message(_data("multi01"))
    assert msg.headers.get_all("CSeq") == ["5 INVITE", "59 INVITE"]
    assert msg.headers.get_all("Call-ID") == ["multi01.98asdh@192.0.2.1", "multi01.98asdh@192.0.2.2"]
    assert len(msg.headers.get_all("From")) == len(msg.headers.get_all("To")) == 2
    with pytest.raises(MessageParsingException) as info:
        msg.validate()
    assert info.value.reason.strip()


def test_bcast_broadcast_via_is_parsed() -> None:
    msg = _response("bcast")
    assert msg.status_code == 200
    assert [via.host for via in msg.vias] == ["192.0.2.198", "255.255.255.255"]


def test_zeromf_max_forwards_zero() -> None:
    assert _request("zeromf").max_forwards == 0


def test_cparam01_parameter_after_addr_spec_is_a_contact_param() -> None:
    (contact,) = _request("cparam01").contacts
    assert "unknownparam" in contact.parameters
    assert "unknownparam" not in _sip(contact.uri).parameters
    assert str(contact.uri) == "sip:+19725552222@gw1.example.net"


def test_cparam02_parameter_inside_angle_brackets_is_a_uri_param() -> None:
    (contact,) = _request("cparam02").contacts
    assert "unknownparam" not in contact.parameters
    assert "unknownparam" in _sip(contact.uri).parameters
    assert str(contact.uri) == "sip:+19725552222@gw1.example.net;unknownparam"


def test_regescrt_escaped_header_stays_in_contact_uri() -> None:
    msg = _request("regescrt")
    (contact,) = msg.contacts
    uri = _sip(contact.uri)
    assert str(uri) == "sip:user@example.com?Route=%3Csip:sip.example.com%3E"
    assert uri.headers == (("Route", "%3Csip:sip.example.com%3E"),)
    assert msg.content_length == 0


def test_sdp01_accept_without_sdp() -> None:
    msg = _request("sdp01")
    assert msg.headers.get("Accept") == "text/nobodyKnowsThis"
    assert msg.content_type == "application/sdp"


def test_inv2543_body_is_the_rest_of_the_datagram() -> None:
    data = _data("inv2543")
    msg = _request("inv2543")
    assert msg.content_length is None
    assert msg.body == data[data.index(b"\r\n\r\n") + 4 :]
    assert msg.body.endswith(b"m=audio 49217 RTP/AVP 0\r\n")
    assert msg.max_forwards is None
    assert msg.top_via.branch is None
    assert msg.from_header.tag is None
    assert _sip(msg.from_header.uri).parameters.get("user") == "phone"
    # Without <>, ";user=phone" after the To addr-spec is a header parameter (as in cparam01).
    assert msg.to_header.parameters.get("user") == "phone"
    assert str(msg.to_header.uri) == "sip:+16505552222@ss1.example.net"
    (record_route,) = msg.record_routes
    assert _sip(record_route.uri).parameters.get("maddr") == "ss1.example.com"
