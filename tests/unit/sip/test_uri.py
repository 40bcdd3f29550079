"""SIP/SIPS URIs (RFC 3261 §19.1): parsing, escaping, writing back."""

import pytest

from qsipctl.sip.errors import SipParseError
from qsipctl.sip.uri import SipUri, escape, parse_uri, unescape


def test_full_uri():
    u = parse_uri("sips:alice:secret@Example.COM:5061;transport=tcp;lr?subject=hi&priority=urgent")
    assert u == SipUri(
        scheme="sips",
        user="alice",
        password="secret",
        host="Example.COM",
        port=5061,
        params={"transport": "tcp", "lr": None},
        headers={"subject": "hi", "priority": "urgent"},
    )
    assert u.param("TRANSPORT") == "tcp" and u.param("maddr") is None


def test_minimal_uri_and_scheme_case():
    u = parse_uri("SIP:pbx.example.com")
    assert (u.scheme, u.user, u.password, u.host, u.port) == (
        "sip",
        None,
        None,
        "pbx.example.com",
        None,
    )
    assert str(u) == "sip:pbx.example.com"


@pytest.mark.parametrize(
    ("text", "host", "port"),
    [
        ("sip:1001@[2001:db8::10]:5060", "2001:db8::10", 5060),
        ("sip:[::1]", "::1", None),
        ("sip:u@[::ffff:192.0.2.1];transport=udp", "::ffff:192.0.2.1", None),
        ("sip:u@192.0.2.1:0", "192.0.2.1", 0),
        ("sip:u@host-1.example.com.", "host-1.example.com.", None),
    ],
)
def test_hosts(text, host, port):
    u = parse_uri(text)
    assert (u.host, u.port) == (host, port)
    assert parse_uri(str(u)) == u


def test_ipv6_is_written_back_in_brackets():
    assert str(parse_uri("sip:u@[2001:db8::10]:5060")) == "sip:u@[2001:db8::10]:5060"


def test_escapes_decoded_once_and_reescaped():
    u = parse_uri("sip:sips%3Auser%40example.com@example.net;n%61me=v%61lue%25%34%31")
    assert u.user == "sips:user@example.com"
    assert u.params == {"name": "value%41"}
    assert str(u) == "sip:sips%3Auser%40example.com@example.net;name=value%2541"


def test_telephone_subscriber_user_with_semicolons():
    u = parse_uri("sip:+1-212-555-1212;phone-context=example.com@gw.example.com;user=phone")
    assert u.user == "+1-212-555-1212;phone-context=example.com"
    assert u.params == {"user": "phone"}


def test_non_utf8_escape_survives_round_trip():
    u = parse_uri("sip:%FF%00x@h")
    assert str(u) == "sip:%FF%00x@h"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("http://example.com", "not a sip: or sips: URI"),
        ("sip:", "invalid host"),
        ("sip:user@", "invalid host"),
        ("sip:a@b@c", "is not a valid host"),
        ("sip:us er@h", "invalid user"),
        ("sip:u%4@h", "invalid user"),
        ("sip:u@h:99999", "port '99999'"),
        ("sip:u@h:", "port ''"),
        ("sip:u@256.1.1.1", "not a valid IPv4"),
        ("sip:u@[2001:db8::zz]", "is not a valid host"),
        ("sip:u@[1:2:3:4:5:6:7:8:9]", "not a valid IPv6"),
        ("sip:u@-bad.example", "is not a valid host"),
        ("sip:u@a..b", "is not a valid host"),
        ("sip:u@[fe80::1%]", "is not a valid host"),
        ("sip:u@[2001:db8:::1]", "not a valid IPv6"),
        ("sip:u@h;a=b c", "invalid parameter"),
        ("sip:u@h?", "invalid header"),
        ("sip:u@h?a", "invalid header"),
        ("sip:u@h?a=b&&c=d", "invalid header"),
    ],
)
def test_invalid_uris(text, problem):
    with pytest.raises(SipParseError, match=problem):
        parse_uri(text)


def test_escape_unescape_inverse():
    safe = frozenset("abc")
    for text in ["", "abc", "a b", "ü", "\x00", "%41"]:
        assert unescape(escape(text, safe)) == text


@pytest.mark.parametrize(
    ("text", "host"),
    [
        ("sip:1001@pbx_01.corp.example", "pbx_01.corp.example"),  # "_" in a label
        ("sip:1001@host.123", "host.123"),  # all-digit last label
        ("sip:1001@[fe80::1%25eth0]:5060", "fe80::1%25eth0"),  # RFC 6874 zone id
        ("sip:1001@[2001:db8:::192.0.2.1]", "2001:db8:::192.0.2.1"),  # RFC 5118 §4.10
        ("sip:1001@01.2.3.4", "01.2.3.4"),
    ],
)
def test_liberal_hosts_are_kept_as_written(text, host):
    u = parse_uri(text)
    assert u.host == host
    assert parse_uri(str(u)) == u


def test_empty_and_repeated_uri_params_pass_first_value_wins():
    u = parse_uri("sip:u@h;;transport=tcp;TRANSPORT=udp;lr;x=;")
    assert u.params == {"transport": "tcp", "lr": None, "x": ""}
    assert u.param("transport") == "tcp" and parse_uri(str(u)) == u
