"""Header multimap, list splitting, Via, name-addr, CSeq."""

import pytest

from qsipctl.sip.errors import SipError, SipParseError
from qsipctl.sip.headers import (
    Headers,
    Via,
    canonical_name,
    parse_cseq,
    parse_name_addr,
    parse_uint,
    parse_via,
    quote,
    split_list,
)


def test_compact_forms_and_case_map_to_canonical_names():
    compact = {
        "v": "Via", "i": "Call-ID", "f": "From", "t": "To", "m": "Contact",
        "l": "Content-Length", "c": "Content-Type", "k": "Supported", "s": "Subject",
        "e": "Content-Encoding", "o": "Event", "u": "Allow-Events", "r": "Refer-To",
        "b": "Referred-By", "x": "Session-Expires", "y": "Identity", "a": "Accept-Contact",
        "j": "Reject-Contact", "d": "Request-Disposition",
    }  # fmt: skip
    for short, long in compact.items():
        assert canonical_name(short) == long
        assert canonical_name(short.upper()) == long
    assert canonical_name("CSEQ") == "CSeq"
    assert canonical_name("X-Custom") == "X-Custom"


def test_multimap_operations():
    h = Headers([("v", "SIP/2.0/UDP a;branch=z9hG4bK1, SIP/2.0/UDP b"), ("X-A", "1")])
    h.add("VIA", "SIP/2.0/TCP c")
    assert h.get("via") == "SIP/2.0/UDP a;branch=z9hG4bK1"
    assert h.get_all("Via") == ["SIP/2.0/UDP a;branch=z9hG4bK1", "SIP/2.0/UDP b", "SIP/2.0/TCP c"]
    assert h.get_lines("v") == ["SIP/2.0/UDP a;branch=z9hG4bK1, SIP/2.0/UDP b", "SIP/2.0/TCP c"]
    assert "x-a" in h and "X-B" not in h
    h.set("via", "SIP/2.0/UDP z")
    assert h.items() == [("Via", "SIP/2.0/UDP z"), ("X-A", "1")]
    h.set("Expires", "60")
    assert h.items()[-1] == ("Expires", "60")
    h.remove("x-a")
    assert h.get("X-A") is None and h.get_all("X-A") == []
    assert len(h.items()) == 2 and h == Headers(h.items())


def test_get_all_splits_only_list_headers():
    h = Headers(
        [
            ("Contact", '"Doe, John" <sip:a@h;x=1,2>;q=0.5, <sip:b@h>'),
            ("Allow", "INVITE, ACK,OPTIONS"),
            ("WWW-Authenticate", 'Digest realm="a,b", nonce="n"'),
            ("Date", "Sat, 13 Nov 2010 23:29:00 GMT"),
            ("Supported", ""),
        ]
    )
    assert h.get_all("m") == ['"Doe, John" <sip:a@h;x=1,2>;q=0.5', "<sip:b@h>"]
    assert h.get_all("Allow") == ["INVITE", "ACK", "OPTIONS"]
    assert h.get_all("WWW-Authenticate") == ['Digest realm="a,b", nonce="n"']
    assert h.get_all("Date") == ["Sat, 13 Nov 2010 23:29:00 GMT"]
    assert h.get_all("Supported") == []


def test_header_injection_is_refused():
    h = Headers()
    with pytest.raises(SipError, match="CR or LF"):
        h.add("Subject", "hi\r\nVia: evil")
    with pytest.raises(SipError, match="invalid header name"):
        h.add("Bad Name", "x")


@pytest.mark.parametrize(
    ("value", "parts"),
    [
        ("a, b ,c", ["a", "b", "c"]),
        ('"x\\",y" <sip:a>, b', ['"x\\",y" <sip:a>', "b"]),
        ("<sip:a;p=1,2>, <sip:b>", ["<sip:a;p=1,2>", "<sip:b>"]),
        ("a,,b", ["a", "", "b"]),
        ("a,", ["a", ""]),
    ],
)
def test_split_list(value, parts):
    assert split_list(value) == parts


@pytest.mark.parametrize("value", ['"open, b', "<sip:a, b"])
def test_split_list_unbalanced(value):
    with pytest.raises(SipParseError, match="unbalanced"):
        split_list(value)


def test_via_full():
    v = parse_via(
        "SIP / 2.0 / tls  [2001:db8::1] : 5061 ;branch=z9hG4bKx"
        ";received=2001:db8::2;rport=4000;ttl=16"
    )
    assert (v.protocol, v.transport, v.host, v.port) == ("SIP/2.0", "TLS", "2001:db8::1", 5061)
    assert (v.branch, v.received, v.rport) == ("z9hG4bKx", "2001:db8::2", 4000)
    assert (v.host, v.port) == ("2001:db8::1", 5061)
    assert str(v) == (
        "SIP/2.0/TLS [2001:db8::1]:5061;branch=z9hG4bKx;received=2001:db8::2;rport=4000;ttl=16"
    )
    assert parse_via(str(v)) == v


def test_via_rport_forms():
    assert parse_via("SIP/2.0/UDP h;rport").rport is True
    assert parse_via("SIP/2.0/UDP h").rport is None
    assert str(Via("UDP", "192.0.2.1", 5060, {"branch": "z9hG4bK1", "rport": None})) == (
        "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1;rport"
    )


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("SIP/2.0/UDP", "expected 'SIP/2.0/transport"),
        ("SIP/2.0/UDP h;;", "unexpected"),
        ("SIP/2.0/UDP h;branch", "branch needs a value"),
        ("SIP/2.0/UDP h;rport=x", "port 'x'"),
        ("SIP/2.0/UDP h;received=nonsense!", "not a valid host"),
        ("SIP/2.0/UDP h;ttl=256", "ttl"),
        ("SIP/2.0/UDP h;maddr=bad!host", "maddr"),
        ("SIP/2.0/UDP h:70000", "port '70000'"),
        ("SIP/2.0/UDP h;branch=a;BRANCH=b", "appears twice"),
        ("SIP/2.0/UDP h x", "unexpected"),
    ],
)
def test_via_invalid(value, problem):
    with pytest.raises(SipParseError, match=problem):
        parse_via(value)


def test_name_addr_forms():
    na = parse_name_addr(
        '"Room \\"1\\"" <sip:1001@pbx.example.com;transport=tls>;tag=abc;expires=60'
    )
    assert na.display_name == 'Room "1"'
    assert na.uri == "sip:1001@pbx.example.com;transport=tls"
    assert (na.params["tag"], na.params["expires"]) == ("abc", "60")
    bare = parse_name_addr("sip:1001@pbx.example.com;tag=x")
    assert (bare.display_name, bare.sip_uri().params, bare.params["tag"]) == (None, {}, "x")
    tokens = parse_name_addr("Room  One <sip:a@h>")
    assert tokens.display_name == "Room  One"


def test_quoted_display_names_round_trip():
    text = 'a"b\\c\x07\td'
    assert parse_name_addr(f"{quote(text)} <sip:a@h>").display_name == text
    with pytest.raises(SipError, match="CR or LF"):
        quote("a\nb")


def test_parse_name_addr_accepts_any_scheme():
    raw = parse_name_addr("<tel:+15551234;phone-context=x>;tag=1")
    assert (raw.uri, raw.params) == ("tel:+15551234;phone-context=x", {"tag": "1"})


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ('"open <sip:a@h>', "unterminated quoted string"),
        ("<sip:a@h", "'<' without '>'"),
        ('Doe "John" <sip:a@h>', "only allowed in quotes"),
        ("<sip:a@ h>", "whitespace inside the URI"),
        ("sip:a@h?x=y", "enclosed in <>"),
        ("<sip:a@h>;tag=1;TAG=2", "appears twice"),
        ("<sip:a@h>;tag", "tag must be a token"),
        ("<sip:a@h>;tag=a b", "tag must be a token"),
        ("<not a uri>", "whitespace"),
        ("<1nvalid:scheme>", "not a valid URI"),
        ("<sip:a@h> junk", "unexpected"),
        ('<sip:a@h>;x="open', "unexpected"),
    ],
)
def test_name_addr_invalid(value, problem):
    with pytest.raises(SipParseError, match=problem):
        parse_name_addr(value)


def test_cseq():
    assert parse_cseq("0009  INVITE") == (9, "INVITE")
    assert parse_cseq("4294967295 ACK") == (4294967295, "ACK")
    for bad in ("4294967296 ACK", "1", "x INVITE", "-1 INVITE", "1 IN VITE"):
        with pytest.raises(SipParseError, match="CSeq"):
            parse_cseq(bad)


def test_parse_uint_refuses_huge_numbers_without_int_conversion():
    with pytest.raises(SipParseError, match="larger than 255"):
        parse_uint("9" * 100_000, "Max-Forwards", 255)
    assert parse_uint("000000000000000000000000000255", "Max-Forwards", 255) == 255


def test_get_is_first_of_get_all():
    h = Headers([("Supported", ""), ("Supported", ", path"), ("Subject", "")])
    assert h.get("Supported") == "path" == h.get_all("Supported")[0]
    assert h.get("Subject") == ""
    assert Headers([("Allow", "")]).get("Allow") is None
