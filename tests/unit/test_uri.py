"""SIP, SIPS, tel and other URIs: what ``parse_uri`` accepts, the parts it gives back, exact round trips."""

from __future__ import annotations

import pytest

from ucma.signaling import MessageParsingException
from ucma.signaling.sip import AbsoluteUri, Parameters, SipUri, TelUri, parse_sip_uri, parse_uri

ROUND_TRIP = [
    "sip:alice@atlanta.example.com",
    "sips:alice@atlanta.example.com",
    "sip:atlanta.example.com",
    "sip:alice@192.0.2.4",
    "sip:alice@192.0.2.4:5060",
    "sip:alice@[2001:db8::10]",
    "sip:[2001:db8::10]:5070",
    "sip:alice@host.example.com.",
    "sip:alice@h:0",
    "sip:alice@h:65535",
    "sip:%61lice@h",
    "sip:alice;day=tuesday@h",
    "sip:a%20b@h",
    "sip:+1-212-555-1212:1234@gateway.com;user=phone",
    "sips:alice:secretword@h:5061;transport=tls",
    "sip:alice@h;lr",
    "sip:alice@h;maddr=239.255.255.1;ttl=15;lr",
    "sip:alice@h;x=%41%42",
    "sip:alice@h;received=[2001:db8::1]",
    "sip:alice@h?subject=project%20x&priority=urgent",
    "sip:alice@h?x=",
    "sip:alice@h;transport=tcp?subject=x",
    "tel:+1-201-555-0123",
    "tel:7042;phone-context=example.com",
    "tel:+1-201-555-0123;ext=1234",
    "urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6",
    "mailto:alice@example.com",
    "http://example.com/a?b=c",
]


@pytest.mark.parametrize("text", ROUND_TRIP)
def test_str_gives_back_the_text_that_was_parsed(text: str) -> None:
    assert str(parse_uri(text)) == text


@pytest.mark.parametrize("text", ROUND_TRIP)
def test_parsing_the_string_form_again_gives_an_equal_uri(text: str) -> None:
    uri = parse_uri(text)
    assert parse_uri(str(uri)) == uri


def test_sip_uri_parts() -> None:
    uri = parse_uri("sips:alice:pw@h.example.com:5061;transport=TLS;lr?subject=x&priority=urgent")
    assert isinstance(uri, SipUri)
    assert uri.scheme == "sips"
    assert uri.secure
    assert uri.user == "alice"
    assert uri.password == "pw"
    assert uri.host == "h.example.com"
    assert uri.port == 5061
    assert uri.host_port == "h.example.com:5061"
    assert uri.transport == "tls"
    assert uri.headers == (("subject", "x"), ("priority", "urgent"))
    assert uri.address_of_record == "sips:alice@h.example.com"


def test_uri_without_user_or_port() -> None:
    uri = parse_sip_uri("sip:registrar.example.com")
    assert uri.user is None
    assert uri.password is None
    assert uri.port is None
    assert uri.host_port == "registrar.example.com"
    assert not uri.secure
    assert uri.transport is None
    assert not uri.parameters
    assert uri.headers == ()


def test_user_keeps_escapes_and_semicolons_and_unescaped_user_decodes_them() -> None:
    uri = parse_sip_uri("sip:%61lice;day=tue%20x@h")
    assert uri.user == "%61lice;day=tue%20x"
    assert uri.unescaped_user == "alice;day=tue x"
    assert uri.host == "h"
    assert not uri.parameters


def test_telephone_subscriber_user_with_password_and_user_phone() -> None:
    uri = parse_sip_uri("sip:+1-212-555-1212:1234@gateway.com;user=phone")
    assert uri.user == "+1-212-555-1212"
    assert uri.password == "1234"
    assert uri.parameters.get("user") == "phone"


def test_repr_never_shows_the_password() -> None:
    uri = parse_uri("sip:alice:s3cretWord@h.example.com")
    assert "s3cretWord" not in repr(uri)
    assert "alice" in repr(uri)


def test_str_keeps_the_password_because_it_is_the_wire_form() -> None:
    assert str(parse_uri("sip:alice:s3cretWord@h")) == "sip:alice:s3cretWord@h"


def test_parse_errors_never_show_the_password() -> None:
    for text in ("sip:alice:s3cretWord@h:99999", "sip:alice:s3cretWord@h;;x", "sip:alice:s3cretWord@h?bad"):
        with pytest.raises(MessageParsingException) as info:
            parse_uri(text)
        assert "s3cretWord" not in str(info.value)
        assert "s3cretWord" not in info.value.detail


@pytest.mark.parametrize(
    ("text", "host", "port"),
    [
        ("sip:a@192.0.2.1", "192.0.2.1", None),
        ("sip:a@192.0.2.1:5060", "192.0.2.1", 5060),
        ("sip:a@[2001:db8::1]", "[2001:db8::1]", None),
        ("sip:a@[2001:db8::1]:5061", "[2001:db8::1]", 5061),
        ("sip:a@[::ffff:192.0.2.1]", "[::ffff:192.0.2.1]", None),
        ("sip:a@a-b.example-1.com", "a-b.example-1.com", None),
        ("sip:a@x", "x", None),
    ],
)
def test_hosts_and_ports(text: str, host: str, port: int | None) -> None:
    uri = parse_sip_uri(text)
    assert (uri.host, uri.port) == (host, port)


@pytest.mark.parametrize("port", [0, 1, 5060, 65535])
def test_ports_in_range_are_accepted(port: int) -> None:
    assert parse_sip_uri(f"sip:a@h:{port}").port == port


@pytest.mark.parametrize("port", ["65536", "70000", "123456", "", "-1", "5o60"])
def test_ports_out_of_range_or_not_numeric_are_refused(port: str) -> None:
    with pytest.raises(MessageParsingException):
        parse_uri(f"sip:a@h:{port}")


@pytest.mark.parametrize("text", ["sip:a@[1:2:3]", "sip:a@[::1::2]", "sip:a@[12345::1]", "sip:a@[1.2.3.4]"])
def test_malformed_ipv6_references_are_refused(text: str) -> None:
    with pytest.raises(MessageParsingException):
        parse_uri(text)


def test_uri_parameters_flag_and_valued() -> None:
    params = parse_sip_uri("sip:a@h;lr;transport=TCP;maddr=239.255.255.1").parameters
    assert params.get("lr") == ""
    assert "lr" in params
    assert params.get("transport") == "TCP"
    assert params.get("TRANSPORT") == "TCP"
    assert params.get("maddr") == "239.255.255.1"
    assert params.get("ttl") is None
    assert "ttl" not in params
    assert [name for name, _ in params] == ["lr", "transport", "maddr"]


def test_uri_parameters_compare_names_case_insensitively_and_values_exactly() -> None:
    assert parse_uri("sip:a@h;Transport=tcp") == parse_uri("sip:a@h;transport=tcp")
    assert parse_uri("sip:a@h;transport=TCP") != parse_uri("sip:a@h;transport=tcp")


def test_uri_headers_are_name_value_pairs_in_order() -> None:
    uri = parse_sip_uri("sip:a@h?Subject=hi%20there&Call-ID=abc&x=")
    assert uri.headers == (("Subject", "hi%20there"), ("Call-ID", "abc"), ("x", ""))


@pytest.mark.parametrize(
    ("text", "scheme"), [("SIP:a@h", "sip"), ("Sips:a@h", "sips"), ("TEL:+1", "tel"), ("URN:x:y", "urn")]
)
def test_scheme_is_case_insensitive_and_normalised_to_lower_case(text: str, scheme: str) -> None:
    uri = parse_uri(text)
    assert uri.scheme == scheme
    assert str(uri) == scheme + text[len(scheme) :]


def test_sips_upper_case_is_secure() -> None:
    uri = parse_uri("SIPS:a@h")
    assert isinstance(uri, SipUri)
    assert uri.secure


def test_with_parameters_replaces_only_the_parameters() -> None:
    uri = parse_sip_uri("sip:a@h:5060;lr?x=y")
    changed = uri.with_parameters(Parameters([("transport", "tls")]))
    assert str(changed) == "sip:a@h:5060;transport=tls?x=y"
    assert str(uri) == "sip:a@h:5060;lr?x=y"


def test_tel_uri_parts() -> None:
    uri = parse_uri("tel:+1-201-555-0123;ext=1234")
    assert isinstance(uri, TelUri)
    assert uri.number == "+1-201-555-0123"
    assert uri.is_global
    assert uri.parameters.get("ext") == "1234"
    local = parse_uri("tel:7042;phone-context=example.com")
    assert isinstance(local, TelUri)
    assert not local.is_global
    assert local.parameters.get("phone-context") == "example.com"


@pytest.mark.parametrize("text", ["tel:", "tel:+1 2", "tel:abc%", "tel:12%G1", "tel:+1;;x", "tel:+1;", "tel:;ext=1"])
def test_malformed_tel_uris_are_refused(text: str) -> None:
    with pytest.raises(MessageParsingException):
        parse_uri(text)


def test_other_schemes_are_kept_opaque() -> None:
    uri = parse_uri("URN:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6")
    assert isinstance(uri, AbsoluteUri)
    assert uri.scheme == "urn"
    assert uri.rest == "uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6"


def test_parse_sip_uri_refuses_other_schemes() -> None:
    for text in ("tel:+1", "mailto:a@b", "urn:x:y"):
        with pytest.raises(MessageParsingException):
            parse_sip_uri(text)


MALFORMED = [
    "",
    "sip",
    "sip:",
    ":x",
    "1sip:a@h",
    "<sip:a@h>",
    "sip: a@h",
    "sip:a@h ",
    "sip:a b@h",
    "sip:a@h\r\n",
    "sip:a@h\tx",
    "sip:%G1@h",
    "sip:a%4@h",
    "sip:a:%G1@h",
    "sip:a@h;x=%G1",
    "sip:a@h?a=%G1",
    "sip:a@",
    "sip:@h",
    "sip:a@:5060",
    "sip:a@-h",
    "sip:a@h-",
    "sip:a@h..example.com",
    "sip:a@h:70000",
    "sip:a@h:",
    "sip:a@h;",
    "sip:a@h;;x",
    "sip:a@h;=x",
    "sip:a@h;x=",
    "sip:a@h;x=a=b",
    "sip:a@h?",
    "sip:a@h?x",
    "sip:a@h?a=b&",
    "sip:a@h#fragment",
    "sip:a@[::1",
    "sip:a@::1",
    "sip:a@h<x>",
    'sip:"a"@h',
    "x:a b",
    "x:",
    "mailto:<a@b>",
]


@pytest.mark.parametrize("text", MALFORMED)
def test_malformed_uris_raise_message_parsing_exception_with_a_reason(text: str) -> None:
    with pytest.raises(MessageParsingException) as info:
        parse_uri(text)
    assert info.value.reason


def test_sip_uri_equality_includes_every_part() -> None:
    base = parse_uri("sip:a@h:5060;lr?x=y")
    for other in (
        "sip:b@h:5060;lr?x=y",
        "sip:a@g:5060;lr?x=y",
        "sip:a@h:5061;lr?x=y",
        "sip:a@h:5060?x=y",
        "sips:a@h:5060;lr?x=y",
    ):
        assert parse_uri(other) != base
