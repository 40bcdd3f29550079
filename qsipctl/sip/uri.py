"""SIP and SIPS URIs (RFC 3261 §19.1).

Why values are stored unescaped: RFC 3261 §19.1.4 makes ``sip:%61lice@h``
and ``sip:alice@h`` the same URI, so comparing or using a user part is only
right on the decoded text.  ``str()`` escapes again exactly the characters the
grammar does not allow in that component, so ``parse_uri(str(u)) == u``.
Escapes are decoded once, never recursively (RFC 4475 §3.1.1.3:
``v%61lue%25%34%31`` is ``value%41``); octets that are not UTF-8 survive as
surrogate escapes, so nothing is lost or truncated (``%00`` stays a NUL).

IPv6 hosts are stored without brackets (what a socket wants); ``str()`` adds
them back.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field

from qsipctl import addr
from qsipctl.sip import grammar as g
from qsipctl.sip.errors import SipParseError, clip

MAX_PORT = 65535
# The SIP-URI's pieces, unchecked: userinfo ends at the first "@", hostport
# at the first ";" or "?", the params at the first "?" (each is then checked
# against its own rule).
_SIP_URI = re.compile(
    r"(?P<scheme>[Ss][Ii][Pp][Ss]?):(?:(?P<userinfo>[^@]*)@)?"
    r"(?P<hostport>[^;?]*)(?P<params>;[^?]*)?(?:\?(?P<headers>.*))?",
    re.S,
)
_HOSTPORT = re.compile(f"(?P<host>{g.HOST_CANDIDATE})(?::(?P<port>[0-9]*))?")

# Characters each component may carry unescaped (RFC 3261 §25.1).
_UNRESERVED = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.!~*'()")
_SAFE_USER = _UNRESERVED | frozenset("&=+$,;?/")
_SAFE_PASSWORD = _UNRESERVED | frozenset("&=+$,")
_SAFE_PARAM = _UNRESERVED | frozenset("[]/:&+$")
_SAFE_HEADER = _UNRESERVED | frozenset("[]/?:+$")


def unescape(text: str) -> str:
    """Decode ``%HH`` escapes once; invalid UTF-8 becomes surrogate escapes."""
    if "%" not in text:
        return text
    data = g.escaped_re.sub(_octet, text).encode("utf-8", "surrogateescape")
    return data.decode("utf-8", "surrogateescape")


def _octet(m: re.Match[str]) -> str:
    byte = int(m.group(0)[1:], 16)
    return chr(byte) if byte < 0x80 else chr(0xDC00 + byte)


def escape(text: str, safe: frozenset[str]) -> str:
    """Percent-escape every octet of ``text`` that ``safe`` does not allow."""
    if all(c in safe for c in text):
        return text
    data = text.encode("utf-8", "surrogateescape")
    return "".join(chr(b) if chr(b) in safe else f"%{b:02X}" for b in data)


def check_host(host: str, what: str, context: str) -> str:
    """Validate a ``host`` production and return it without IPv6 brackets.

    Liberal as issue 8 asks: host names may carry "_" or end in a digit label
    (see grammar.HOSTNAME), an IPv6 reference may carry a zone id, and the
    "three colons" form RFC 5118 §4.10 asks parsers to tolerate
    (``[2001:db8:::192.0.2.1]``) passes; each is kept as written.
    """
    inner, problem = _host_check(host)
    if problem is not None:
        raise SipParseError(f"{what} {clip(context)}: {problem}")
    return inner


@functools.lru_cache(maxsize=4096)
def _host_check(host: str) -> tuple[str, str | None]:
    """(host without brackets, what is wrong or None), remembered per spelling.

    A probe run reads the same few hosts in every Via, Contact and URI of
    thousands of messages; the check itself is several regular expressions
    and an IPv6 parse, so it is done once per distinct spelling.
    """
    if not g.host_re.fullmatch(host):
        return host, f"{clip(host)} is not a valid host"
    if g.ipv4_re.fullmatch(host) and any(int(octet) > 255 for octet in host.split(".")):
        return host, f"{clip(host)} is not a valid IPv4 address"
    inner = addr.unbracket(host)  # host_re: only an IPv6 reference has brackets
    if host.startswith("[") and not is_ipv6_liberal(inner):
        return inner, f"[{clip(inner)}] is not a valid IPv6 reference"
    return inner, None


def is_ipv6_liberal(text: str) -> bool:
    """An IPv6 address, also with a zone id or RFC 5118's "three colons" before IPv4."""
    address = text.split("%", 1)[0]
    if ":::" in address and g.ipv4_re.search(address):
        address = address.replace(":::", "::", 1)
    return addr.ip_version(address) == 6


def check_port(text: str, what: str, context: str) -> int:
    """A port: digits only, 0-65535 (the length check keeps int() cheap)."""
    if not g.digits_re.fullmatch(text) or len(text) > 5 or int(text) > MAX_PORT:
        where = f"{what} {clip(context)}"
        raise SipParseError(f"{where}: port {clip(text)} is not a number from 0 to 65535")
    return int(text)


@dataclass(slots=True)
class SipUri:
    """A parsed ``sip:``/``sips:`` URI; ``str()`` writes it back.

    Mutable, like the messages that carry it: a UA builds URIs field by field.
    """

    scheme: str
    user: str | None
    password: str | None
    host: str
    port: int | None = None
    params: dict[str, str | None] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)

    def param(self, name: str) -> str | None:
        """A URI parameter by case-insensitive name (RFC 3261 §19.1.4)."""
        return param_lookup(self.params, name)

    def __str__(self) -> str:
        parts = [self.scheme, ":"]
        if self.user is not None:
            parts.append(escape(self.user, _SAFE_USER))
            if self.password is not None:
                parts += [":", escape(self.password, _SAFE_PASSWORD)]
            parts.append("@")
        parts.append(addr.host_port(self.host, self.port))
        for name, value in self.params.items():
            parts += [";", escape(name, _SAFE_PARAM)]
            if value is not None:
                parts += ["=", escape(value, _SAFE_PARAM)]
        if self.headers:
            pairs = (
                f"{escape(k, _SAFE_HEADER)}={escape(v, _SAFE_HEADER)}"
                for k, v in self.headers.items()
            )
            parts += ["?", "&".join(pairs)]
        return "".join(parts)


def param_lookup(params: dict[str, str | None], name: str) -> str | None:
    """A URI or header parameter by case-insensitive name (RFC 3261 §7.3.1, §19.1.4);
    None both when absent and when valueless (see :func:`has_param`)."""
    if name in params:
        return params[name]
    lname = name.lower()
    return next((value for key, value in params.items() if key.lower() == lname), None)


def has_param(params: dict[str, str | None], name: str) -> bool:
    """Whether a parameter is present at all (``;lr``, ``;rport`` have no value)."""
    lname = name.lower()
    return name in params or any(k.lower() == lname for k in params)


def is_sip_uri(text: str) -> bool:
    """Whether ``text`` claims the sip/sips scheme (and so must parse as one)."""
    head = text[:5].lower()
    return head.startswith("sip:") or head == "sips:"


def parse_uri(text: str) -> SipUri:
    """Parse a SIP or SIPS URI strictly; anything else raises SipParseError."""
    m = _SIP_URI.fullmatch(text)
    if m is None:
        raise SipParseError(f"{clip(text)} is not a sip: or sips: URI")
    user, password = _userinfo(m["userinfo"], text)
    host, port = _hostport(m["hostport"], text)
    params, headers = _uri_params(m["params"], text), _uri_headers(m["headers"], text)
    return SipUri(m["scheme"].lower(), user, password, host, port, params, headers)


def _userinfo(info: str | None, text: str) -> tuple[str | None, str | None]:
    if info is None:
        return None, None
    user, sep, password = info.partition(":")
    if not g.user_re.fullmatch(user):
        raise SipParseError(f"URI {clip(text)}: invalid user part {clip(user)}")
    if sep and not g.password_re.fullmatch(password):
        raise SipParseError(f"URI {clip(text)}: invalid password part")
    return unescape(user), (unescape(password) if sep else None)


def _hostport(hostport: str, text: str) -> tuple[str, int | None]:
    m = _HOSTPORT.fullmatch(hostport)
    if m is None:
        raise SipParseError(f"URI {clip(text)}: invalid host or port {clip(hostport)}")
    host = check_host(m["host"], "URI", text)
    port = m["port"]
    return host, (None if port is None else check_port(port, "URI", text))


def _uri_params(params: str | None, text: str) -> dict[str, str | None]:
    """uri-parameters, read liberally: empty ones (``;;``, ``;x=``) and repeats pass.

    A repeated name keeps its first value (what a lookup would find first);
    only characters outside ``paramchar`` make the URI invalid.
    """
    result: dict[str, str | None] = {}
    seen: set[str] = set()  # lower-cased names (§19.1.4: names compare case-insensitively)
    for item in (params or ";")[1:].split(";"):
        name, sep, value = item.partition("=")
        if not name and not sep:
            continue  # ";;" or a trailing ";"
        if not g.pname_re.fullmatch(name) or (value and not g.pname_re.fullmatch(value)):
            raise SipParseError(f"URI {clip(text)}: invalid parameter {clip(item)}")
        key = unescape(name)
        if key.lower() not in seen:
            seen.add(key.lower())
            result[key] = unescape(value) if sep else None
    return result


def _uri_headers(headers: str | None, text: str) -> dict[str, str]:
    result: dict[str, str] = {}
    if headers is None:
        return result
    for item in headers.split("&"):
        name, sep, value = item.partition("=")
        if not sep or not g.hname_re.fullmatch(name) or not g.hvalue_re.fullmatch(value):
            raise SipParseError(f"URI {clip(text)}: invalid header {clip(item)}")
        result[unescape(name)] = unescape(value)
    return result
