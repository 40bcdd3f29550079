"""SIP messages: parse bytes into Request/Response, write them back.

Sans-IO, h11 style: bytes in, objects out, no sockets.  ``parse_message``
takes one UDP datagram (or one message a stream framer cut out);
:class:`StreamParser` does the RFC 3261 §18.3 Content-Length framing for
TCP/TLS.

Strict where the verdict depends on it, liberal elsewhere (issue 8): the
start line and the headers that match a response to its request and frame
it (Via, CSeq, Call-ID, From/To and their tags, Content-Length) are checked
against the RFC 3261 grammar at parse time, so later layers never act on
half-valid values.  Every other header is kept as text and parsed when read
(``headers.parse_name_addr``, ``digest.parse_challenges``, ...), as Kamailio
and pjsip do, so a 200 OK never fails over a header the probe ignores.  Lines
may end in bare LF; a line that is not UTF-8 is read as Latin-1.  Where RFC
4475 lets an element choose, the choice is documented in
tests/unit/sip/test_rfc4475.py.

Limits (``MAX_HEAD_BYTES``, ``MAX_HEADERS``, ``MAX_BODY_BYTES``) bound memory
and time on hostile input; numbers are length-checked before ``int()``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from qsipctl.sip import grammar as g
from qsipctl.sip.errors import SipError, SipParseError, clip
from qsipctl.sip.headers import (
    Headers,
    Via,
    checked_name,
    param_lookup,
    parse_cseq,
    parse_name_addr,
    parse_uint,
    parse_via,
    split_list,
)
from qsipctl.sip.uri import is_sip_uri, parse_uri

MAX_HEAD_BYTES = 65536
MAX_HEADERS = 200
MAX_BODY_BYTES = 1 << 20
SIP_2_0 = "SIP/2.0"
# The empty line that ends a header section: CRLF CRLF, or bare LFs as some
# PBXs and hand-written scripts send (RFC 3261 §7.5 asks for CRLF; Kamailio,
# pjsip and tshark accept LF too, and over TCP refusing it looks like a
# silent server).  Searched from the LF, fast; find_head_end adds a CR before it.
_BLANK_LINE = re.compile(rb"\n\r?\n")
_LEADING_CRLF = re.compile(rb"(?:\r?\n)*")

# Headers that must not appear twice: picking one of two values is guessing,
# and guessing about framing or dialog identity is how smuggling starts.
# Each has a check in _CHECKS, so a second line finds the first one's result.
_ONCE = frozenset(("call-id", "cseq", "from", "to", "content-length"))
# The parse-time results that are what Headers.parsed() would compute for that
# header (the From/To checks only validate: the tags are read with the URI).
_KEPT = frozenset(("via", "cseq", "content-length"))


class _MessageBase:
    """What requests and responses share: headers, body and the core accessors."""

    __slots__ = ()
    headers: Headers
    body: bytes

    def _start_line(self) -> str:
        raise NotImplementedError

    def to_bytes(self) -> bytes:
        """Serialize for the wire.

        Content-Length is first set from the body *in* ``self.headers``: the
        header must frame the body on TCP/TLS, and keeping the object equal to
        what was sent is what retransmission and ``parse(to_bytes(m)) == m``
        rely on.
        """
        length = str(len(self.body))
        if self.headers.get_lines("Content-Length") != [length]:
            self.headers.set("Content-Length", length)
        start = self._start_line()
        if "\r" in start or "\n" in start:
            raise SipError(f"start line must not contain CR or LF: {clip(start)}")
        fields = [f"{name}: {value}" for name, value in self.headers.items()]
        return "\r\n".join([start, *fields, "", ""]).encode("utf-8") + self.body

    def _single(self, name: str) -> str:
        """A header that identifies the dialog or transaction: exactly one, or an error."""
        values = self.headers.get_lines(name)
        if len(values) != 1:
            problem = "missing" if not values else f"{len(values)} times"
            raise SipParseError(f"{name} header {problem}; it must appear once")
        return values[0]

    @property
    def call_id(self) -> str:
        return self._single("Call-ID")

    @property
    def cseq(self) -> tuple[int, str]:
        """(sequence number, method): what matches a response to its request."""
        return self.headers.parsed("CSeq", lambda h: parse_cseq(self._single("CSeq")))

    @property
    def top_via(self) -> Via:
        """The top Via: our branch, and the received/rport the server saw us from."""
        return self.headers.parsed("Via", _top_via)

    @property
    def from_tag(self) -> str | None:
        return self.headers.parsed("From", lambda h: _tag(self._single("From")))

    @property
    def to_tag(self) -> str | None:
        return self.headers.parsed("To", lambda h: _tag(self._single("To")))


def _top_via(headers: Headers) -> Via:
    first = headers.get("Via")
    if first is None:
        raise SipParseError("Via header missing")
    return parse_via(first)


def _tag(name_addr: str) -> str | None:
    return param_lookup(parse_name_addr(name_addr).params, "tag")


@dataclass(slots=True)
class Request(_MessageBase):
    """A SIP request; ``uri`` is the Request-URI text (any scheme)."""

    method: str
    uri: str
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""

    def _start_line(self) -> str:
        return f"{self.method} {self.uri} {SIP_2_0}"


@dataclass(slots=True)
class Response(_MessageBase):
    """A SIP response."""

    status: int
    reason: str
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""

    def _start_line(self) -> str:
        return f"{SIP_2_0} {self.status} {self.reason}"


Message = Request | Response


# --- start line ----------------------------------------------------------------


def _parse_request_line(line: str) -> Request:
    """``Method SP Request-URI SP SIP-Version``: exactly one SP between elements."""
    parts = line.split(" ")
    if len(parts) != 3 or not all(parts):
        raise SipParseError(
            f"Request-Line {clip(line)}: expected 'METHOD SP Request-URI SP SIP/2.0'"
        )
    method, uri, version = parts
    if not g.token_re.fullmatch(method):
        raise SipParseError(f"Request-Line {clip(line)}: method {clip(method)} is not a token")
    _check_request_uri(uri)
    _check_version(version)
    return Request(method, uri)


def _check_request_uri(uri: str) -> None:
    """SIP-URI / SIPS-URI / absoluteURI; no headers in a SIP Request-URI (§19.1.1)."""
    if is_sip_uri(uri):
        if parse_uri(uri).headers:
            raise SipParseError(f"Request-URI {clip(uri)}: headers ('?...') are not allowed here")
    elif not g.absolute_uri_re.fullmatch(uri):
        raise SipParseError(f"Request-URI {clip(uri)} is not a valid URI")


def _check_version(version: str) -> None:
    if version != SIP_2_0 and not g.sip_version_re.fullmatch(version):
        raise SipParseError(f"{clip(version)} is not a SIP-Version")
    if version.upper() != SIP_2_0:  # ASCII: the grammar matched
        raise SipParseError(f"unsupported SIP version {clip(version)}", status=505)


def _parse_status_line(line: str) -> Response:
    parts = line.split(" ", 2)
    if len(parts) != 3:
        raise SipParseError(f"Status-Line {clip(line)}: expected 'SIP/2.0 SP code SP reason'")
    version, code, reason = parts
    _check_version(version)
    if not (len(code) == 3 and code.isdigit() and code.isascii()) or not 100 <= int(code) <= 699:
        raise SipParseError(f"Status-Line {clip(line)}: status code must be 3 digits, 100-699")
    # Reason-Phrase: liberal (any text but the CTLs _parse_head refused): only people read it.
    return Response(int(code), reason)


# --- header section -------------------------------------------------------------


def _header_lines(lines: list[str]) -> list[tuple[int, str]]:
    """Unfold continuation lines (CRLF + WSP is one SP, RFC 3261 §7.3.1).

    Pieces are collected in lists and joined once, so a head folded into
    thousands of lines costs linear time.
    """
    out: list[tuple[int, list[str]]] = []
    for number, line in enumerate(lines[1:], start=2):
        if line[:1] in (" ", "\t"):
            if not out:
                raise SipParseError(f"line {number}: continuation line before any header")
            if piece := line.strip(" \t"):
                out[-1][1].append(piece)
        else:
            out.append((number, [line.rstrip(" \t")]))
    if len(out) > MAX_HEADERS:
        raise SipParseError(f"more than {MAX_HEADERS} header fields")
    return [(number, " ".join(parts)) for number, parts in out]


def _parse_headers(lines: list[tuple[int, str]]) -> Headers:
    """Each ``token *WSP ":" value`` line, checked; what the checks parsed is kept."""
    items: list[tuple[str, str, str]] = []
    checked: dict[str, Any] = {}  # the first line's result per checked header
    for number, line in lines:
        m = g.header_line_re.fullmatch(line)
        if m is None:
            raise SipParseError(f"line {number}: {clip(line)} is not 'Name: value'")
        (canon, key), value = checked_name(m[1]), m[2]  # stripped: the regex, _header_lines
        if g.bad_ctl_re.search(value):
            raise SipParseError(f"line {number}: {canon}: control character in value")
        if key in _ONCE and key in checked:
            raise SipParseError(f"line {number}: {canon} header appears again; it must appear once")
        if (check := _CHECKS.get(key)) is not None:
            try:
                checked.setdefault(key, check(value))
            except SipParseError as exc:  # say where: the line and the header
                detail = str(exc).removeprefix(f"{canon} ")
                raise SipParseError(f"line {number}: {canon}: {detail}", exc.status) from None
        items.append((canon, key, value))
    # the top Via, CSeq and Content-Length just parsed are what gets read next
    return Headers._trusted(items, {k: v for k, v in checked.items() if k in _KEPT})


# --- per-header grammar checks ---------------------------------------------------


def _check_via(value: str) -> Via:
    """Every via-parm, the top one returned; an empty element (``a,,b``) is an error here."""
    parts = split_list(value)
    if not all(parts):
        raise SipParseError(f"{clip(value)}: empty list element (stray ',')")
    top, *_ = [parse_via(element) for element in parts]  # every one checked
    return top


@functools.lru_cache(maxsize=1024)  # a verdict per text: a From comes back unchanged
def _check_name_addr(value: str) -> None:
    """From/To: the name-addr's shape and its tag; the URI is read when someone asks."""
    parse_name_addr(value, check_uri=False)


def _check_callid(value: str) -> None:
    if not g.callid_re.fullmatch(value):
        raise SipParseError(f"{clip(value)} is not 'word[@word]'")


# Checked at parse time: what matches a response to its request and frames it
# (Via, CSeq, Call-ID, From/To with their tags, Content-Length), strictly.
# Every other header is kept as text and parsed when someone reads it, as
# Kamailio and pjsip do: a 200 OK must not fail over a Contact of another
# device, an odd Allow list or a bad Date the probe never looks at (issue 8;
# RFC 4475 §3.1.2.12 lets an element ignore a bad Date it does not use).  The
# authentication headers are parsed strictly where they are used (digest.py).
_CHECKS: dict[str, Callable[[str], object]] = {
    "via": _check_via,
    "from": _check_name_addr,
    "to": _check_name_addr,
    "call-id": _check_callid,
    "cseq": parse_cseq,
    "content-length": lambda v: parse_uint(v, "Content-Length", MAX_BODY_BYTES),
}


# --- whole messages -------------------------------------------------------------


def _parse_head(head: bytes) -> Message:
    """Start line and headers (without the final empty line), all checked."""
    if len(head) > MAX_HEAD_BYTES:
        raise SipParseError(f"header section longer than {MAX_HEAD_BYTES} octets")
    lines = [line.removesuffix("\r") for line in _decode(head).split("\n")]
    if g.reason_bad_re.search(lines[0]):
        raise SipParseError(f"start line {clip(lines[0])}: control character")
    start = lines[0]
    msg = _parse_status_line(start) if start[:4].upper() == "SIP/" else _parse_request_line(start)
    msg.headers = _parse_headers(_header_lines(lines))
    if isinstance(msg, Request) and "CSeq" in msg.headers and msg.cseq[1] != msg.method:
        raise SipParseError(
            f"CSeq method {clip(msg.cseq[1])} does not match the {clip(msg.method)} request"
        )
    return msg


def _decode(head: bytes) -> str:
    """UTF-8 as RFC 3261 says; a line that is not UTF-8 is read as Latin-1.

    Real PBXs put Latin-1 display names and Server headers on the wire; no
    octet sequence is an error here (the grammar still decides), and what is
    written back is UTF-8 of the same characters.
    """
    try:
        return head.decode("utf-8")
    except UnicodeDecodeError:
        return "\n".join(_decode_line(line) for line in head.split(b"\n"))


def _decode_line(line: bytes) -> str:
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError:
        return line.decode("latin-1")


def _content_length(headers: Headers) -> int | None:
    """Read through Headers.parsed(): on a message just parsed, the check's result (_KEPT)."""
    value = headers.get("Content-Length")
    return None if value is None else parse_uint(value, "Content-Length", MAX_BODY_BYTES)


def _skip_crlf(data: bytes | bytearray) -> int:
    """RFC 3261 §7.5: CRLFs (or bare LFs) before a start line are ignored (keep-alives)."""
    m = _LEADING_CRLF.match(data)
    assert m is not None  # the pattern matches the empty string
    return m.end()


def find_head_end(data: bytes | bytearray, start: int = 0) -> tuple[int, int] | None:
    """Where the header section ends and the body starts, or None if not yet.

    The sans-IO half of stream framing (RFC 3261 §18.3): the head ends at the
    first empty line, CRLF CRLF or bare LF LF; the body is then Content-Length
    octets.  :class:`StreamParser` uses it; a driver that frames by itself
    must use it too, or a PBX ending lines with LF looks like a silent one.
    """
    if (m := _BLANK_LINE.search(data, start)) is None:
        return None
    return m.start() - (m.start() > start and data[m.start() - 1] == 0x0D), m.end()


def parse_message(data: bytes) -> Message:
    """Parse one datagram: the body is Content-Length octets, else to the end.

    Octets after Content-Length are ignored (RFC 3261 §18.3, RFC 4475
    §3.1.1.8); a Content-Length beyond the datagram is an error (§3.1.2.2).
    """
    start = _skip_crlf(data)
    found = find_head_end(data, start)
    if found is None:
        if start == len(data):
            raise SipParseError("empty message (only CRLF keep-alives)")
        raise SipParseError("header section does not end with an empty line (CRLF CRLF)")
    msg = _parse_head(data[start : found[0]])
    rest = data[found[1] :]
    length = msg.headers.parsed("Content-Length", _content_length)
    if length is None:
        length = len(rest)
        if length > MAX_BODY_BYTES:
            raise SipParseError(f"body longer than {MAX_BODY_BYTES} octets")
    elif length > len(rest):
        raise SipParseError(
            f"Content-Length {length} is larger than the {len(rest)} body octets received"
        )
    msg.body = bytes(rest[:length])
    return msg


class StreamParser:
    """Cut messages out of a TCP/TLS byte stream by Content-Length (RFC 3261 §18.3).

    Content-Length is mandatory on streams: without it nobody can tell where
    the body ends.  After a SipParseError the stream is out of sync for good,
    so every later ``feed`` raises again: close the connection.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._pending: Message | None = None
        self._need = 0
        self._scanned = 0  # head octets already searched for CRLF CRLF
        self._error: SipParseError | None = None

    def feed(self, data: bytes) -> list[Message]:
        """Add received octets; return every message they complete."""
        if self._error is not None:
            raise self._error
        self._buffer += data
        try:
            return list(iter(self._next, None))  # _next() until it returns None
        except SipParseError as exc:
            self._error = exc
            raise

    def _next(self) -> Message | None:
        if self._pending is None and not self._read_head():
            return None
        if len(self._buffer) < self._need:
            return None
        msg, self._pending = self._pending, None
        assert msg is not None
        msg.body = bytes(self._buffer[: self._need])
        del self._buffer[: self._need]
        return msg

    def _read_head(self) -> bool:
        """Parse the next header section once complete.

        The search resumes where the last one stopped, so a peer dripping a
        head one octet at a time costs linear, not quadratic, time.
        """
        skipped = _skip_crlf(self._buffer)
        if skipped:
            del self._buffer[:skipped]
            self._scanned = max(0, self._scanned - skipped)
        found = find_head_end(self._buffer, max(0, self._scanned - 3))
        if found is None:
            self._scanned = len(self._buffer)
            if self._scanned > MAX_HEAD_BYTES:
                raise SipParseError(f"header section longer than {MAX_HEAD_BYTES} octets")
            return False
        self._scanned = 0
        msg = _parse_head(bytes(self._buffer[: found[0]]))
        length = msg.headers.parsed("Content-Length", _content_length)
        if length is None:
            raise SipParseError("Content-Length header missing (required on TCP/TLS)")
        del self._buffer[: found[1]]
        self._pending, self._need = msg, length
        return True
