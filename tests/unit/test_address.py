"""name-addr / addr-spec values (From, To, Contact, Route): display names, header parameters, lists."""

from __future__ import annotations

import pytest

from ucma.signaling import MessageParsingException
from ucma.signaling.sip import (
    WILDCARD_CONTACT,
    NameAddress,
    Parameters,
    SipUri,
    TelUri,
    parse_name_addr,
    parse_name_addr_list,
)


@pytest.mark.parametrize(
    ("text", "display"),
    [
        ('"Alice" <sip:alice@h>', "Alice"),
        ('"Alice Smith"<sip:alice@h>', "Alice Smith"),
        ('"A \\"quoted\\" name" <sip:alice@h>', 'A "quoted" name'),
        ('"a,b;c<d>e" <sip:alice@h>', "a,b;c<d>e"),
        ('"back\\\\slash" <sip:alice@h>', "back\\slash"),
        ('"" <sip:alice@h>', ""),
        ('"J\u00fcrgen \u4e2d" <sip:alice@h>', "J\u00fcrgen \u4e2d"),
        ('  "  spaced  "   <sip:alice@h>', "  spaced  "),
    ],
)
def test_quoted_display_names(text: str, display: str) -> None:
    value = parse_name_addr(text)
    assert value.display_name == display
    assert value.uri_text == "sip:alice@h"


@pytest.mark.parametrize(
    ("text", "display"),
    [
        ("Alice <sip:alice@h>", "Alice"),
        ("Alice<sip:alice@h>", "Alice"),
        ("Alice   Smith \t<sip:alice@h>", "Alice Smith"),
        ("Bob's-phone.1 <sip:bob@h>", "Bob's-phone.1"),
        ("<sip:alice@h>", None),
        ("   <sip:alice@h>", None),
    ],
)
def test_token_display_names_with_and_without_space_before_the_angle_bracket(text: str, display: str | None) -> None:
    assert parse_name_addr(text).display_name == display


def test_addr_spec_parameters_are_header_parameters_not_uri_parameters() -> None:
    value = parse_name_addr("sip:alice@h;tag=x;day=tue")
    assert value.tag == "x"
    assert value.parameters.get("day") == "tue"
    uri = value.sip_uri
    assert str(uri) == "sip:alice@h"
    assert not uri.parameters


def test_parameters_inside_angle_brackets_belong_to_the_uri() -> None:
    value = parse_name_addr("<sip:alice@h;transport=tcp;lr>;tag=x")
    assert value.sip_uri.parameters.get("transport") == "tcp"
    assert "lr" in value.sip_uri.parameters
    assert value.tag == "x"
    assert "transport" not in value.parameters


def test_uri_headers_are_allowed_inside_angle_brackets() -> None:
    value = parse_name_addr("<sip:alice@h?subject=hi>")
    assert value.sip_uri.headers == (("subject", "hi"),)


def test_uri_with_headers_outside_angle_brackets_is_refused() -> None:
    with pytest.raises(MessageParsingException):
        parse_name_addr("sip:alice@h?subject=hi")


def test_whitespace_around_parameters_is_allowed() -> None:
    value = parse_name_addr("<sip:alice@h> ; tag = 123 ;lr")
    assert value.tag == "123"
    assert value.parameters.get("lr") == ""


def test_quoted_parameter_values_keep_their_quotes_raw_and_unquote_on_get() -> None:
    value = parse_name_addr('<sip:a@h>;+sip.instance="<urn:uuid:00000000-0000-1000-8000-AABBCCDDEEFF>"')
    assert value.parameters.get("+sip.instance") == "<urn:uuid:00000000-0000-1000-8000-AABBCCDDEEFF>"
    assert value.parameters.get_raw("+sip.instance") == '"<urn:uuid:00000000-0000-1000-8000-AABBCCDDEEFF>"'


def test_tel_and_other_uris_in_address_headers() -> None:
    assert isinstance(parse_name_addr("<tel:+1-201-555-0123>").uri, TelUri)
    with pytest.raises(MessageParsingException):
        _ = parse_name_addr("<tel:+1-201-555-0123>").sip_uri
    assert parse_name_addr("<urn:x:y>").uri.scheme == "urn"


def test_uri_is_parsed_lazily_and_errors_surface_on_access() -> None:
    value = parse_name_addr("<sip:alice@h:99999>;tag=1")
    assert value.tag == "1"
    with pytest.raises(MessageParsingException):
        _ = value.uri
    with pytest.raises(MessageParsingException):
        value.validate()


def test_contact_wildcard() -> None:
    [value] = parse_name_addr_list("*")
    assert value.is_wildcard
    assert value == WILDCARD_CONTACT
    assert str(value) == "*"
    with pytest.raises(MessageParsingException):
        _ = value.uri
    value.validate()


def test_a_uri_in_angle_brackets_is_never_the_wildcard() -> None:
    [value] = parse_name_addr_list("<*>")
    assert not value.is_wildcard
    with pytest.raises(MessageParsingException):
        value.validate()


def test_contact_list_with_commas_inside_quoted_parameters_and_display_names() -> None:
    text = (
        '<sip:a@h>;+sip.instance="<urn:uuid:1,2>";expires=3600, "Smith, John" <sip:b@h>;q=0.5 ,  <sips:d@h>,sip:c@h;q=1'
    )
    values = parse_name_addr_list(text)
    assert [v.uri_text for v in values] == ["sip:a@h", "sip:b@h", "sips:d@h", "sip:c@h"]
    assert values[0].parameters.get("+sip.instance") == "<urn:uuid:1,2>"
    assert values[0].expires == 3600
    assert values[1].display_name == "Smith, John"
    assert values[1].q == 0.5
    assert values[3].q == 1.0


def test_contact_list_mixing_addr_spec_then_name_addr() -> None:
    values = parse_name_addr_list("sip:a@h;expires=60, <sip:b@h>")
    assert [v.uri_text for v in values] == ["sip:a@h", "sip:b@h"]
    assert values[0].expires == 60


@pytest.mark.parametrize("text", ["<sip:a@h>,", ",<sip:a@h>", "<sip:a@h>,,<sip:b@h>", "<sip:a@h> <sip:b@h>", ""])
def test_malformed_lists_are_refused(text: str) -> None:
    with pytest.raises(MessageParsingException):
        parse_name_addr_list(text)


@pytest.mark.parametrize(
    ("q", "expected"), [("0", 0.0), ("0.", 0.0), ("0.5", 0.5), ("0.125", 0.125), ("1", 1.0), ("1.000", 1.0)]
)
def test_valid_q_values(q: str, expected: float) -> None:
    value = parse_name_addr(f"<sip:a@h>;q={q}")
    assert value.q == expected
    value.validate()


@pytest.mark.parametrize("q", ["1.5", "2", "0.1234", "-0.1", "abc", ".5", "1.001"])
def test_invalid_q_values_are_refused(q: str) -> None:
    value = parse_name_addr(f"<sip:a@h>;q={q}")
    with pytest.raises(MessageParsingException):
        _ = value.q
    with pytest.raises(MessageParsingException):
        value.validate()


def test_expires_parameter() -> None:
    assert parse_name_addr("<sip:a@h>;expires=0").expires == 0
    assert parse_name_addr("<sip:a@h>;expires=4294967295").expires == 2**32 - 1
    assert parse_name_addr("<sip:a@h>").expires is None
    for bad in ("abc", "4294967296", "-1", "1.5"):
        value = parse_name_addr(f"<sip:a@h>;expires={bad}")
        with pytest.raises(MessageParsingException):
            _ = value.expires


@pytest.mark.parametrize(
    "text",
    [
        '"Alice <sip:a@h>',
        '"Alice\\" <sip:a@h>',
        '"Alice" sip:a@h',
        "Alice <sip:a@h",
        "<sip:a@h",
        "sip:a@h>",
        "<>",
        "< sip:a@h>",
        "<sip:a@h >",
        "<sip:a@h><sip:b@h>",
        "<sip:a@h> trailing",
        "<sip:a@h>;",
        "<sip:a@h>;;tag=1",
        "<sip:a@h>;tag=",
        '<sip:a@h>;x="unterminated',
        "Alice Smith sip:a@h",
        "<sip:a@h>,<sip:b@h>",
        "",
        "   ",
    ],
)
def test_malformed_single_addresses_are_refused(text: str) -> None:
    with pytest.raises(MessageParsingException) as info:
        parse_name_addr(text)
    assert info.value.reason


@pytest.mark.parametrize(
    "text",
    [
        '"A \\"q\\", <x>" <sip:alice@h;lr>;tag=1;expires=30',
        "<sip:alice@h>",
        "<tel:+1-201>;tag=x",
        '<sip:a@h>;+sip.instance="<urn:uuid:1>";q=0.5',
    ],
)
def test_string_form_parses_back_to_an_equal_value(text: str) -> None:
    value = parse_name_addr(text)
    assert parse_name_addr(str(value)) == value


def test_str_quotes_any_display_name() -> None:
    value = NameAddress("sip:a@h", 'Say "hi", \\ ok', Parameters([("tag", "1")]))
    assert str(value) == '"Say \\"hi\\", \\\\ ok" <sip:a@h>;tag=1'
    assert parse_name_addr(str(value)).display_name == 'Say "hi", \\ ok'


def test_equality_treats_empty_and_missing_display_names_alike() -> None:
    assert NameAddress("sip:a@h", "") == NameAddress("sip:a@h")
    assert NameAddress("sip:a@h", "A") != NameAddress("sip:a@h")
    assert NameAddress("sip:a@h", None, Parameters([("tag", "1")])) != NameAddress("sip:a@h")
    assert hash(NameAddress("sip:a@h", "")) == hash(NameAddress("sip:a@h"))


def test_with_parameters_keeps_uri_and_display_name() -> None:
    value = parse_name_addr('"Bob" <sip:bob@h>')
    tagged = value.with_parameters(value.parameters.with_param("tag", "t1"))
    assert tagged.tag == "t1"
    assert tagged.display_name == "Bob"
    assert tagged.uri_text == "sip:bob@h"
    assert value.tag is None


def test_constructing_from_a_uri_object() -> None:
    uri = SipUri(host="h", user="a", port=5060)
    value = NameAddress(uri)
    assert value.uri is uri
    assert str(value) == "<sip:a@h:5060>"


def test_repr_never_shows_the_password() -> None:
    value = parse_name_addr('"Alice" <sip:alice:s3cretWord@h>;tag=1')
    assert "s3cretWord" not in repr(value)


def test_parse_errors_never_show_the_password() -> None:
    with pytest.raises(MessageParsingException) as info:
        parse_name_addr('"Alice" <sip:alice:s3cretWord@h>;;tag=1')
    assert "s3cretWord" not in str(info.value)
