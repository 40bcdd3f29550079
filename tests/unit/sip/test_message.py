"""Requests and responses: parse, serialize, framing, limits."""

import pytest

from qsipctl.sip.errors import SipError, SipParseError
from qsipctl.sip.headers import Headers
from qsipctl.sip.message import (
    MAX_HEAD_BYTES,
    MAX_HEADERS,
    Request,
    Response,
    StreamParser,
    parse_message,
)

REGISTER = (
    b"REGISTER sip:pbx.example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.10:5062;branch=z9hG4bKabc123;rport\r\n"
    b"Max-Forwards: 70\r\n"
    b'From: "Room 1" <sip:1001@pbx.example.com>;tag=f00\r\n'
    b"To: <sip:1001@pbx.example.com>\r\n"
    b"Call-ID: a84b4c76e66710@192.0.2.10\r\n"
    b"CSeq: 1 REGISTER\r\n"
    b"Contact: <sip:1001@192.0.2.10:5062;transport=udp>;expires=3600\r\n"
    b"Expires: 3600\r\n"
    b"Content-Length: 0\r\n"
    b"\r\n"
)

UNAUTHORIZED = (
    b"SIP/2.0 401 Unauthorized\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.10:5062;branch=z9hG4bKabc123;rport=40000;received=198.51.100.7\r\n"
    b'From: "Room 1" <sip:1001@pbx.example.com>;tag=f00\r\n'
    b"To: <sip:1001@pbx.example.com>;tag=srv9\r\n"
    b"Call-ID: a84b4c76e66710@192.0.2.10\r\n"
    b"CSeq: 1 REGISTER\r\n"
    b'WWW-Authenticate: Digest realm="pbx", nonce="abc,def", qop="auth,auth-int", algorithm=MD5\r\n'
    b"Server: kamailio (5.6.3 (x86_64/linux))\r\n"
    b"Content-Length: 0\r\n"
    b"\r\n"
)


def test_register_request_fields():
    msg = parse_message(REGISTER)
    assert isinstance(msg, Request)
    assert (msg.method, msg.uri, msg.version) == ("REGISTER", "sip:pbx.example.com", "SIP/2.0")
    assert msg.call_id == "a84b4c76e66710@192.0.2.10"
    assert msg.cseq == (1, "REGISTER")
    assert msg.from_tag == "f00"
    assert msg.to_tag is None
    via = msg.top_via
    assert (via.transport, via.host, via.port, via.branch, via.rport) == (
        "UDP",
        "192.0.2.10",
        5062,
        "z9hG4bKabc123",
        True,
    )
    assert msg.body == b""


def test_response_fields_and_auth_header_not_split():
    msg = parse_message(UNAUTHORIZED)
    assert isinstance(msg, Response)
    assert (msg.status, msg.reason) == (401, "Unauthorized")
    assert msg.to_tag == "srv9"
    assert msg.top_via.received == "198.51.100.7"
    assert msg.top_via.rport == 40000
    challenge = msg.headers.get_all("WWW-Authenticate")
    assert challenge == ['Digest realm="pbx", nonce="abc,def", qop="auth,auth-int", algorithm=MD5']


@pytest.mark.parametrize("data", [REGISTER, UNAUTHORIZED])
def test_round_trip_is_byte_exact_for_canonical_input(data):
    assert parse_message(data).to_bytes() == data


def test_to_bytes_sets_content_length_from_body():
    req = Request("OPTIONS", "sip:192.0.2.1", Headers([("Via", "SIP/2.0/UDP h;branch=z9hG4bK1")]))
    req.body = b"hello"
    data = req.to_bytes()
    assert data.endswith(b"Content-Length: 5\r\n\r\nhello")
    assert parse_message(data) == req


def test_body_framed_by_content_length_and_trailing_octets_ignored():
    data = REGISTER.replace(b"Content-Length: 0", b"Content-Length: 4") + b"bodyEXTRA"
    assert parse_message(data).body == b"body"


def test_udp_body_runs_to_end_without_content_length():
    data = REGISTER.replace(b"Content-Length: 0\r\n", b"") + b"v=0\r\n"
    assert parse_message(data).body == b"v=0\r\n"


def test_content_length_beyond_datagram_is_an_error():
    data = REGISTER.replace(b"Content-Length: 0", b"Content-Length: 10") + b"short"
    with pytest.raises(SipParseError, match="larger than the 5 body octets"):
        parse_message(data)


def test_stream_parser_frames_split_and_coalesced_messages():
    body = b"x" * 7
    second = REGISTER.replace(b"Content-Length: 0", b"Content-Length: 7") + body
    stream = b"\r\n\r\n" + REGISTER + second + UNAUTHORIZED
    parser = StreamParser()
    got = []
    for i in range(0, len(stream), 13):
        got += parser.feed(stream[i : i + 13])
    assert [type(m).__name__ for m in got] == ["Request", "Request", "Response"]
    assert got[1].body == body


def test_stream_parser_requires_content_length_and_stays_broken():
    parser = StreamParser()
    bad = REGISTER.replace(b"Content-Length: 0\r\n", b"")
    with pytest.raises(SipParseError, match="Content-Length header missing"):
        parser.feed(bad)
    with pytest.raises(SipParseError):
        parser.feed(REGISTER)


def test_stream_parser_limits_unterminated_head():
    parser = StreamParser()
    parser.feed(b"OPTIONS sip:a SIP/2.0\r\n")
    with pytest.raises(SipParseError, match="longer than"):
        parser.feed(b"X-Pad: " + b"a" * MAX_HEAD_BYTES)


def test_too_many_headers():
    data = REGISTER.replace(b"\r\n\r\n", b"\r\n" + b"X-A: 1\r\n" * MAX_HEADERS + b"\r\n")
    with pytest.raises(SipParseError, match="more than"):
        parse_message(data)


def test_missing_headers_raise_on_access_not_on_parse():
    msg = parse_message(b"OPTIONS sip:a.example SIP/2.0\r\nContent-Length: 0\r\n\r\n")
    with pytest.raises(SipParseError, match="Call-ID header missing"):
        _ = msg.call_id
    with pytest.raises(SipParseError, match="Via header missing"):
        _ = msg.top_via


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"", "empty message"),
        (b"\r\n\r\n", "empty message"),
        (b"OPTIONS sip:a SIP/2.0\r\n", "does not end"),
        (b"OPTIONS sip:a SIP/2.0\r\nBad Header: x\r\n\r\n", "not 'Name: value'"),
        (b"OPTIONS sip:a SIP/2.0\r\n folded: x\r\n\r\n", "continuation line"),
        (b"SIP/2.0 20 OK\r\n\r\n", "3 digits"),
        (b"SIP/2.0 700 Huh\r\n\r\n", "100-699"),
        (b"SIP/3.0 200 OK\r\n\r\n", "unsupported SIP version"),
        (b"OPTIONS sip:a SIP/2.0\r\nX: \xff\r\n\r\n", "not UTF-8"),
        (b"OPTIONS sip:a SIP/2.0\r\nX: a\x00b\r\n\r\n", "control character"),
    ],
)
def test_malformed_messages(data, problem):
    with pytest.raises(SipParseError, match=problem):
        parse_message(data)


def test_folding_compact_forms_and_lws():
    data = (
        b"OPTIONS sip:[2001:db8::5]:5070;transport=tcp SIP/2.0\r\n"
        b"v: SIP/2.0/TCP [2001:db8::1]:5070\r\n"
        b"\t;branch=z9hG4bK77 ;rport=5070;received=2001:db8::9\r\n"
        b"f :  <sip:a@[2001:db8::1]>;tag=1\r\n"
        b"t:<sip:b@example.com>\r\n"
        b"i: 1@2\r\n"
        b"CSEQ  :  7\r\n   OPTIONS\r\n"
        b"s:\r\n"
        b"k: path, outbound\r\n"
        b"l: 0\r\n"
        b"\r\n"
    )
    msg = parse_message(data)
    via = msg.top_via
    assert (via.host, via.port, via.branch, via.rport, via.received) == (
        "2001:db8::1",
        5070,
        "z9hG4bK77",
        5070,
        "2001:db8::9",
    )
    assert msg.headers.get_lines("Via") == [
        "SIP/2.0/TCP [2001:db8::1]:5070 ;branch=z9hG4bK77 ;rport=5070;received=2001:db8::9"
    ]
    assert msg.cseq == (7, "OPTIONS")
    assert msg.from_tag == "1"
    assert msg.headers.get("Subject") == ""
    assert msg.headers.get_all("Supported") == ["path", "outbound"]
    assert [name for name, _ in msg.headers.items()] == [
        "Via", "From", "To", "Call-ID", "CSeq", "Subject", "Supported", "Content-Length",
    ]  # fmt: skip


def test_quoted_pair_may_escape_control_octets_but_bare_ones_are_refused():
    ok = REGISTER.replace(b'"Room 1"', b'"Room\\\x07 1"')
    assert parse_message(ok).headers.get("From").startswith('"Room\\\x07 1"')
    with pytest.raises(SipParseError, match="control character"):
        parse_message(REGISTER.replace(b'"Room 1"', b'"Room\x07 1"'))


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        (b"CSeq: 1 REGISTER", b"CSeq: 1 INVITE", "does not match the 'REGISTER' request"),
        (b"Max-Forwards: 70", b"Max-Forwards: 256", "larger than 255"),
        (b"Expires: 3600", b"Expires: 4294967296", "larger than 4294967295"),
        (b"Call-ID: a84b4c76e66710@192.0.2.10", b"Call-ID: a b", "is not 'word"),
        (b"Contact: <sip", b"Contact: *, <sip", "not a valid URI"),
        (b"expires=3600", b"expires=" + b"9" * 5000, "larger than 4294967295"),
        (b"expires=3600", b"expires=soon", "non-negative integer"),
        (b"expires=3600", b"q=1.5", "not a qvalue"),
        (b"Content-Length: 0", b"Content-Length: 0\r\nl: 0", "appears again"),
        (b"Content-Length: 0", b"Route: sip:p.example.com", "enclosed in <>"),
        (b"Content-Length: 0", b'Warning: 1812 h "x"', "3DIGIT"),
        (b"Content-Length: 0", b"Require: a b", "not a token"),
        (b"Content-Length: 0", b"Content-Type: text", "type/subtype"),
        (b"Content-Length: 0", b"Retry-After: -1", "non-negative integer"),
        (b"REGISTER sip:pbx.example.com SIP/2.0", b"REGISTER sip:pbx.example.com SIP/2.1", "505"),
    ],
)
def test_header_grammar_is_checked_at_parse_time(old, new, problem):
    data = REGISTER.replace(old, new)
    assert data != REGISTER
    with pytest.raises(SipParseError) as info:
        parse_message(data)
    assert problem in f"{info.value} {info.value.status}"


def test_error_lines_stay_short_on_huge_values():
    for header in (
        b"Via: SIP/2.0/UDP " + b"a-" * 30000 + b"!",
        b"To: <sip:[" + b":" * 60000 + b">",
    ):
        data = REGISTER.replace(b"Expires: 3600", header)
        with pytest.raises(SipParseError) as info:
            parse_message(data)
        assert len(str(info.value)) < 300 and "\n" not in str(info.value)


def test_keepalive_crlf_before_a_message_is_skipped():
    assert parse_message(b"\r\n\r\n" + REGISTER).method == "REGISTER"


def test_request_and_response_build_from_scratch():
    h = Headers()
    h.add("Via", "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKx;rport")
    h.add("From", "<sip:1001@127.0.0.1>;tag=a")
    h.add("To", "<sip:1001@127.0.0.1>")
    h.add("Call-ID", "c1")
    h.add("CSeq", "2 OPTIONS")
    resp = Response(200, "OK", h.copy())
    resp.headers.set("To", "<sip:1001@127.0.0.1>;tag=b")
    parsed = parse_message(resp.to_bytes())
    assert parsed == resp and parsed.to_tag == "b" and parsed.cseq == (2, "OPTIONS")
    assert parse_message(Request("OPTIONS", "sip:127.0.0.1", h).to_bytes()).from_tag == "a"


def test_to_bytes_refuses_start_line_injection():
    with pytest.raises(SipError, match="CR or LF"):
        Response(200, "OK\r\nX-Evil: 1", Headers()).to_bytes()
    with pytest.raises(SipError, match="CR or LF"):
        Request("OPTIONS", "sip:a\r\nX-Evil: 1", Headers()).to_bytes()


def test_stream_parser_keepalives_split_across_reads():
    parser, got = StreamParser(), []
    for chunk in (b"\r", b"\n", b"\r", b"\n\r\n", REGISTER[:7], REGISTER[7:], b"\r", b"\n"):
        got += parser.feed(chunk)
    assert got == [parse_message(REGISTER)]


def test_stream_parser_octet_by_octet():
    parser, got = StreamParser(), []
    for i in range(len(UNAUTHORIZED)):
        got += parser.feed(UNAUTHORIZED[i : i + 1])
    assert got == [parse_message(UNAUTHORIZED)]


def test_folding_joins_with_one_space_and_skips_blank_continuations():
    data = REGISTER.replace(b"Expires: 3600", b"X-Long: a  \r\n \t \r\n\t b \r\n   c")
    assert parse_message(data).headers.get("X-Long") == "a b c"


def test_thousands_of_distinct_params_parse():
    """Duplicate detection uses sets: hostile parameter floods stay linear."""
    via_params = "".join(f";a{i}" for i in range(4000))
    uri_params = "".join(f";u{i}" for i in range(4000))
    data = REGISTER.replace(b";rport\r\n", f";rport{via_params}\r\n".encode()).replace(
        b"To: <sip:1001@pbx.example.com>", f"To: <sip:1001@pbx.example.com{uri_params}>".encode()
    )
    msg = parse_message(data)
    assert len(msg.top_via.params) == 4002
