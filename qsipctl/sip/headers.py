"""SIP header fields: the multimap, list splitting, Via, name-addr, CSeq.

Why values are kept as text in :class:`Headers` and parsed on demand: most
headers of most messages are never looked at, and a proxy-like tool must pass
unknown ones on unchanged.  The structured parsers below (``parse_via``,
``parse_name_addr``, ...) are also what :mod:`qsipctl.sip.message` runs at
parse time on the headers it relies on, so a message that parsed has
well-formed Via, From, To, Contact, CSeq, ... values.

Header parameter values (Via, name-addr) are kept as written, so a
quoted-string value keeps its quotes: that is what round-trips unchanged.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from qsipctl import addr
from qsipctl.sip import grammar as g
from qsipctl.sip.errors import SipError, SipParseError, clip
from qsipctl.sip.uri import (
    SipUri,
    check_host,
    check_port,
    has_param,
    is_sip_uri,
    param_lookup,
    parse_uri,
)

MAX_UINT32 = 2**32 - 1
T = TypeVar("T")

# RFC 3261 §7.3.3 and the IANA registry's compact forms.
COMPACT = {
    "a": "Accept-Contact",
    "b": "Referred-By",
    "c": "Content-Type",
    "d": "Request-Disposition",
    "e": "Content-Encoding",
    "f": "From",
    "i": "Call-ID",
    "j": "Reject-Contact",
    "k": "Supported",
    "l": "Content-Length",
    "m": "Contact",
    "o": "Event",
    "r": "Refer-To",
    "s": "Subject",
    "t": "To",
    "u": "Allow-Events",
    "v": "Via",
    "x": "Session-Expires",
    "y": "Identity",
}

# Headers whose grammar is a comma-separated list (RFC 3261 §7.3.1: these,
# and only these, may be split or combined).  Not the auth headers or Date.
_LIST_NAMES = [
    "Accept", "Accept-Contact", "Accept-Encoding", "Accept-Language", "Alert-Info", "Allow",
    "Allow-Events", "Call-Info", "Contact", "Content-Encoding", "Content-Language", "Error-Info",
    "History-Info", "In-Reply-To", "P-Asserted-Identity", "P-Associated-URI", "Path",
    "Proxy-Require", "Reason", "Record-Route", "Reject-Contact", "Request-Disposition", "Require",
    "Route", "Security-Client", "Security-Server", "Security-Verify", "Service-Route", "Supported",
    "Unsupported", "Via", "Warning",
]  # fmt: skip
# The other names we know, for their conventional spelling (``CSeq``, ``WWW-Authenticate``).
_SINGLE_NAMES = [
    "Authentication-Info", "Authorization", "Call-ID", "Content-Disposition", "Content-Length",
    "Content-Type", "CSeq", "Date", "Event", "Expires", "From", "Identity", "Max-Forwards",
    "MIME-Version", "Min-Expires", "Min-SE", "Organization", "Priority", "Privacy",
    "Proxy-Authenticate", "Proxy-Authorization", "RAck", "Refer-To", "Referred-By", "Reply-To",
    "Retry-After", "RSeq", "Server", "Session-Expires", "SIP-ETag", "SIP-If-Match", "Subject",
    "Subscription-State", "Timestamp", "To", "User-Agent", "WWW-Authenticate",
]  # fmt: skip
LIST_HEADERS = frozenset(name.lower() for name in _LIST_NAMES)
_CANONICAL = {name.lower(): name for name in _LIST_NAMES + _SINGLE_NAMES}
_CANONICAL.update(COMPACT)


@functools.lru_cache(maxsize=512)
def _key(name: str) -> str:
    """The lookup key: compact forms expanded, then case folded.

    Remembered per spelling: every header lookup and every header parsed asks
    (~20 times a message), and a message uses a few dozen spellings at most.
    """
    return _CANONICAL.get(name.lower(), name).lower()


@functools.lru_cache(maxsize=512)
def canonical_name(name: str) -> str:
    """The long, conventionally cased name (``v`` and ``VIA`` become ``Via``)."""
    return _CANONICAL.get(name.lower(), name)


def split_list(value: str) -> list[str]:
    """Split a list header at commas outside quoted strings and ``<...>``.

    Elements are stripped and may be empty (``a,,b``); callers decide whether
    that is an error.  An unbalanced quote or ``<`` raises SipParseError.
    """
    out, pos, end = [], 0, len(value)
    while True:
        m = g.list_element_re.match(value, pos)
        assert m is not None  # the pattern matches the empty string
        out.append(m.group(0).strip(" \t"))
        pos = m.end()
        if pos == end:
            return out
        if value[pos] != ",":
            raise SipParseError(f"unbalanced {clip(value[pos])} in {clip(value)}")
        pos += 1


class Headers:
    """Ordered, case-insensitive multimap of header fields.

    Names are stored canonically (compact forms expanded), so lookups and
    equality do not depend on how the peer spelled them.
    """

    __slots__ = ("_items", "_parsed")

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items: list[tuple[str, str, str]] = []
        self._parsed: dict[str, Any] = {}
        for name, value in items:
            self.add(name, value)

    @classmethod
    def _trusted(cls, items: list[tuple[str, str, str]], parsed: dict[str, Any]) -> Headers:
        """Build from already-checked (name, key, value) triples (the parser's path),
        with what the checks already parsed (see :meth:`parsed`)."""
        h = cls.__new__(cls)
        h._items = items
        h._parsed = parsed
        return h

    def parsed(self, name: str, parse: Callable[[Headers], T]) -> T:
        """``parse(self)``: what the message reads from header ``name``, computed once.

        Why: matching a message to its transaction, building the answer and
        describing it each read the top Via, CSeq and tags of the same
        message; running the grammar again every time was most of the cost
        of a response.  Each value derives from one header, so a change to
        that header forgets it and a change to any other (Authorization,
        Content-Length) does not.
        """
        key = _key(name)
        if key not in self._parsed:
            self._parsed[key] = parse(self)
        return self._parsed[key]

    def remember(self, name: str, value: object) -> None:
        """Record what :meth:`parsed` would compute for ``name``, when the builder has it.

        A request we build carries a Via we composed from parts: parsing our
        own text back to learn its branch was a Via parse per request sent.
        """
        self._parsed[_key(name)] = value

    def get(self, name: str) -> str | None:
        """The first value; for list headers the first list element (``get_all()[0]``)."""
        key = _key(name)
        for _, k, v in self._items:
            if k == key:
                if key not in LIST_HEADERS:
                    return v
                if first := next((e for e in split_list(v) if e), None):
                    return first
        return None

    def get_all(self, name: str) -> list[str]:
        """Every value in order; list headers split into their elements."""
        key = _key(name)
        values = [v for _, k, v in self._items if k == key]
        if key not in LIST_HEADERS:
            return values
        return [e for v in values for e in split_list(v) if e]

    def get_lines(self, name: str) -> list[str]:
        """Every header line's value as received, never split."""
        key = _key(name)
        return [v for _, k, v in self._items if k == key]

    def add(self, name: str, value: str) -> None:
        """Append a field; CR/LF in a value would inject headers, so it is refused."""
        canon, key = checked_name(name)
        self._items.append((canon, key, _check_value(value)))
        self._parsed.pop(key, None)

    def set(self, name: str, value: str) -> None:
        """Replace every field of this name, keeping the first one's position."""
        canon, key = checked_name(name)
        value = _check_value(value)
        out: list[tuple[str, str, str]] = []
        placed = False
        for item in self._items:
            if item[1] != key:
                out.append(item)
            elif not placed:
                out.append((canon, key, value))
                placed = True
        if not placed:
            out.append((canon, key, value))
        self._items = out
        self._parsed.pop(key, None)

    def remove(self, name: str) -> None:
        """Drop every field of this name."""
        key = _key(name)
        self._items = [item for item in self._items if item[1] != key]
        self._parsed.pop(key, None)

    def items(self) -> list[tuple[str, str]]:
        """(canonical name, value) pairs in order."""
        return [(n, v) for n, _, v in self._items]

    def __contains__(self, name: str) -> bool:
        return _key(name) in (k for _, k, _ in self._items)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Headers):
            return NotImplemented
        return self.items() == other.items()

    def __repr__(self) -> str:
        return f"Headers({self.items()!r})"


@functools.lru_cache(maxsize=256)
def checked_name(name: str) -> tuple[str, str]:
    """(canonical name, lookup key) of a header name, checked once per spelling.

    Requests are built, and responses parsed, with the same dozen names over
    and over; the token check and canonicalisation were a tenth of building one.
    """
    if not g.token_re.fullmatch(name):
        raise SipError(f"invalid header name {clip(name)}")
    return canonical_name(name), _key(name)


def _check_value(value: str) -> str:
    if "\r" in value or "\n" in value:
        raise SipError(f"header value must not contain CR or LF: {clip(value)}")
    return value.strip(" \t")


# --- header parameters -------------------------------------------------------


def parse_params(text: str, pos: int, what: str, *, strict: bool = True) -> dict[str, str | None]:
    """Parse ``*( SEMI generic-param )`` from ``pos`` to the end of ``text``.

    ``strict`` (Via: the parameters a client acts on) follows the grammar and
    refuses repeats.  Otherwise empty parameters (``;;``), empty or unquoted
    odd values and repeats pass, a repeat keeping its first value, as
    production stacks read what they do not act on; only a second ``tag``
    is refused, since the dialog depends on it.
    """
    pattern = g.generic_param_re if strict else g.loose_param_re
    params: dict[str, str | None] = {}
    seen: set[str] = set()  # lower-cased names: a set keeps many params linear
    while pos < len(text):
        m = pattern.match(text, pos)
        if m is None:
            raise SipParseError(f"{what}: unexpected {clip(text[pos:])} where ';param' should be")
        pos = m.end()
        name, value = m.groups()
        if name is None:
            continue  # liberal: ";;"
        if (lname := name.lower()) in seen:
            if strict or lname == "tag":
                raise SipParseError(f"{what}: parameter {clip(name)} appears twice")
            continue
        seen.add(lname)
        params[name] = value if value is None or strict else value.rstrip(" \t")
    return params


# --- Via -----------------------------------------------------------------------


@dataclass(slots=True)
class Via:
    """One via-parm; ``host`` holds an IPv6 address without brackets."""

    transport: str
    host: str
    port: int | None = None
    params: dict[str, str | None] = field(default_factory=dict)
    protocol: str = "SIP/2.0"

    @property
    def branch(self) -> str | None:
        return param_lookup(self.params, "branch")

    @property
    def received(self) -> str | None:
        """The address the server saw us from, IPv6 without brackets.

        RFC 5118 §4.5: servers write an IPv6 ``received`` with or without
        brackets; both mean the same address (``params`` keeps the text).
        """
        value = param_lookup(self.params, "received")
        return None if value is None else addr.unbracket(value)

    @property
    def rport(self) -> int | bool | None:
        """RFC 3581: True when asked for (bare ``;rport``), the port when filled in."""
        if not has_param(self.params, "rport"):
            return None
        value = param_lookup(self.params, "rport")
        return True if value is None else int(value)

    def __str__(self) -> str:
        params = "".join(f";{k}" if v is None else f";{k}={v}" for k, v in self.params.items())
        return f"{self.protocol}/{self.transport} {addr.host_port(self.host, self.port)}{params}"


def parse_via(value: str) -> Via:
    """Parse one via-parm (a Via header holds a list: split it first)."""
    text = value.strip(" \t")
    m = g.via_re.match(text)
    if m is None:
        raise SipParseError(f"Via {clip(value)}: expected 'SIP/2.0/transport host[:port]'")
    name, version, transport, host, port = m.group("name", "version", "transport", "host", "port")
    host = check_host(host, "Via", value)
    params = parse_params(text, m.end(), f"Via {clip(value)}")
    _check_via_params(params, value)
    number = None if port is None else check_port(port, "Via", value)
    return Via(transport.upper(), host, number, params, f"{name.upper()}/{version}")


def _check_via_params(params: dict[str, str | None], value: str) -> None:
    """via-received, via-rport (RFC 3581), via-maddr, via-ttl and via-branch rules.

    These are the parameters a client acts on (NAT detection, where to send
    responses), so a malformed one must not slip through as an opaque string.
    """
    for key, param in params.items():  # every spelling of a name is checked (case-insensitive)
        name = key.lower()
        if param is None:
            if name == "branch":
                raise SipParseError(f"Via {clip(value)}: branch needs a value")
        elif name == "received":
            check_host(addr.bracket(param), "Via received in", value)
        elif name == "rport":
            check_port(param, "Via rport in", value)
        elif name == "maddr":
            check_host(param, "Via maddr in", value)
        elif name == "ttl" and not (
            g.digits_re.fullmatch(param) and len(param) <= 3 and int(param) <= 255
        ):
            raise SipParseError(f"Via {clip(value)}: ttl must be 0-255")


# --- name-addr / addr-spec -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NameAddr:
    """A From/To/Contact/Route value: display name, URI as written (any scheme), params."""

    display_name: str | None
    uri: str
    params: dict[str, str | None]

    def sip_uri(self) -> SipUri:
        """The URI parsed, for a reader that needs a SIP one (any other scheme raises)."""
        return parse_uri(self.uri)


# quoted-pair is needed for '"', backslash and the controls qdtext leaves out (HTAB is allowed)
_MUST_ESCAPE = re.compile(r'["\\\x00-\x08\x0a-\x1f\x7f]')


@functools.lru_cache(maxsize=1024)  # Digest answers quote the same username, realm, nonce
def quote(text: str) -> str:
    """Write a display name as a quoted-string, escaping what must be escaped."""
    if "\r" in text or "\n" in text:
        raise SipError(f"a display name cannot contain CR or LF: {clip(text)}")
    return '"' + _MUST_ESCAPE.sub(lambda m: "\\" + m.group(), text) + '"'


def unquote(quoted: str) -> str:
    """The text of a quoted-string, quoted-pairs resolved."""
    return g.quoted_pair_re.sub(lambda m: m.group(1), quoted[1:-1])


def parse_name_addr(value: str, *, check_uri: bool = True) -> NameAddr:
    """Check ``(name-addr / addr-spec) *(SEMI generic-param)``; any URI scheme.

    Liberal where nothing rests on it (issue 8): unquoted display names of any
    characters, whitespace around the URI inside ``<>`` and after ``sip:``,
    empty or repeated parameters (see parse_params).  A second ``tag`` is
    still refused: the dialog is identified by it.  ``check_uri=False`` leaves
    the URI for whoever reads it (From/To at parse time: only the tag counts).
    """
    text = value.strip(" \t")
    if (m := g.name_addr_re.match(text)) is not None:
        display = _display(m)
        uri = g.scheme_space_re.sub("", m.group("uri").strip(" \t"), count=1)
        pos = m.end()
    elif "<" in text or text.startswith('"'):
        raise SipParseError(_name_addr_problem(text, value))
    else:
        m2 = g.addr_spec_re.match(text)
        if m2 is None:
            raise SipParseError(f"{clip(value)}: expected a URI")
        display, uri, pos = None, m2.group(0), m2.end()
        if "?" in uri or "," in uri:
            raise SipParseError(f"{clip(value)}: a URI with '?' or ',' must be enclosed in <>")
    if check_uri:
        check_any_uri(uri, value)
    elif not uri:
        raise SipParseError(f"{clip(value)}: expected a URI")
    params = parse_params(text, pos, clip(value), strict=False)
    tag = param_lookup(params, "tag")
    if has_param(params, "tag") and (tag is None or not g.token_re.fullmatch(tag)):
        raise SipParseError(f"{clip(value)}: tag must be a token")
    return NameAddr(display, uri, params)


def _display(m: re.Match[str]) -> str | None:
    if m.group("quoted") is not None:
        return unquote(m.group("quoted"))
    return m.group("tokens").rstrip(" \t") or None


def _name_addr_problem(text: str, value: str) -> str:
    if text.startswith('"') and g.quoted_string_prefix_re.match(text) is None:
        return f"{clip(value)}: unterminated quoted string in display name"
    if "<" not in text:
        return f"{clip(value)}: the URI must be enclosed in <>"
    if ">" not in text.split("<", 1)[1]:
        return f"{clip(value)}: '<' without '>'"
    return f"{clip(value)}: display name has characters only allowed in quotes"


def check_any_uri(uri: str, value: str) -> None:
    """A SIP/SIPS URI strictly, any other scheme as an absoluteURI."""
    if uri != uri.strip(" \t") or " " in uri or "\t" in uri:
        raise SipParseError(f"{clip(value)}: whitespace inside the URI")
    if is_sip_uri(uri):
        parse_uri(uri)
    elif not g.absolute_uri_re.fullmatch(uri):
        raise SipParseError(f"{clip(value)}: {clip(uri)} is not a valid URI")


# --- scalar headers ---------------------------------------------------------------


@functools.lru_cache(maxsize=1024)  # a run meets a handful of CSeq values: 1 REGISTER, ...
def parse_cseq(value: str) -> tuple[int, str]:
    """``CSeq: 1*DIGIT LWS Method``; the number must fit 32 bits (RFC 3261 §8.1.1.5)."""
    m = g.cseq_re.fullmatch(value.strip(" \t"))
    if m is None:
        raise SipParseError(f"CSeq {clip(value)}: expected 'number METHOD'")
    return parse_uint(m[1], "CSeq", MAX_UINT32), m[2]


@functools.lru_cache(maxsize=1024)  # Content-Length (mostly 0) and Expires recur
def parse_uint(text: str, what: str, maximum: int) -> int:
    """Digits only, at most ``maximum``; long strings are refused before int()."""
    text = text.strip(" \t")
    if not g.digits_re.fullmatch(text):
        raise SipParseError(f"{what} {clip(text)}: expected a non-negative integer")
    stripped = text.lstrip("0") or "0"
    if len(stripped) > len(str(maximum)) or int(stripped) > maximum:
        raise SipParseError(f"{what} {clip(text)}: larger than {maximum}")
    return int(stripped)
