"""The bindings a registrar lists in its 200 to a REGISTER, read liberally.

A registrar answers every successful REGISTER, with or without a Contact,
with *all* the current bindings of the address-of-record (RFC 3261 §10.3
step 8): one Contact per binding, its lifetime in the ``expires`` parameter
or, failing that, in the Expires header (§10.2.4).  That list is how the
register probe learns, without changing anything, whether the core is
registered right now, and, when it does add a binding, whether the PBX
kept the core's alongside it or replaced it.

The Contact values here are somebody else's (the core's, a desk phone's),
written by whatever device registered them: nothing in them decides a
verdict about *our* account, so they are read with plain string methods and
never rejected.  A value we cannot make sense of is still a binding, shown
as written.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from qsipctl.addr import host_port, split_host_port


@dataclass(frozen=True, slots=True)
class Binding:
    """One Contact bound to the account: where calls to it go, and for how long."""

    contact: str  # the Contact URI as the registrar wrote it (no <>, no header params)
    address: str  # "host:port" calls would go to (the ``received`` param when present)
    expires: int | None  # seconds left, None when the registrar did not say

    def describe(self) -> str:
        """``198.51.100.23:5060, 1234 s left``: the words the report uses."""
        left = "expiry not given" if self.expires is None else f"{self.expires} s left"
        return f"{self.address}, {left}"

    def as_json(self) -> dict[str, object]:
        return {"contact": self.contact, "address": self.address, "expires": self.expires}


def _split_contacts(value: str) -> list[str]:
    """Split a Contact header line at commas outside ``<...>`` and quotes."""
    if "," not in value:  # one contact, the usual answer: no need to walk it
        return [value.strip()] if value.strip() else []
    out, depth, quoted, start = [], 0, False, 0
    for i, c in enumerate(value):
        if c == '"' and (i == 0 or value[i - 1] != "\\"):
            quoted = not quoted
        elif quoted:
            continue
        elif c == "<":
            depth += 1
        elif c == ">":
            depth = max(0, depth - 1)
        elif c == "," and depth == 0:
            out.append(value[start:i])
            start = i + 1
    out.append(value[start:])
    return [part.strip() for part in out if part.strip()]


def _uri_and_params(entry: str) -> tuple[str, dict[str, str]]:
    """``"name" <uri>;p=v`` or ``uri;p=v`` -> (uri, header params, lower-case names)."""
    if "<" in entry and ">" in entry.split("<", 1)[1]:
        uri, rest = entry.split("<", 1)[1].split(">", 1)
    else:  # addr-spec: the header params start at the first ';' (RFC 3261 §20.10)
        uri, _, rest = entry.partition(";")
        rest = ";" + rest if rest else ""
    params: dict[str, str] = {}
    for item in rest.split(";"):
        name, _, val = item.partition("=")
        if name.strip():
            params[name.strip().lower()] = val.strip().strip('"')
    return uri.strip(), params


def _address(uri: str) -> str:
    """``host:port`` of a SIP URI written by anyone; the URI itself when unreadable."""
    rest = uri.split(":", 1)[1] if ":" in uri.split("@", 1)[0] else uri
    rest = rest.rsplit("@", 1)[-1]
    hostport = rest.split(";", 1)[0].split("?", 1)[0].strip()
    try:
        host, port = split_host_port(hostport)
    except ValueError:
        return hostport or uri
    secure = uri.lower().startswith("sips:") or ";transport=tls" in uri.lower()
    return host_port(host, port if port is not None else (5061 if secure else 5060))


def _seconds(text: str | None) -> int | None:
    text = (text or "").strip()
    return int(text) if text.isascii() and text.isdigit() and len(text) < 11 else None


def parse_bindings(contact_lines: Iterable[str], expires_header: str | None) -> list[Binding]:
    """Every binding in a 200's Contact header lines (``Headers.get_lines("Contact")``)."""
    default = _seconds(expires_header)
    out: list[Binding] = []
    for line in contact_lines:
        for entry in _split_contacts(line):
            if entry == "*":
                continue
            uri, params = _uri_and_params(entry)
            seen = params.get("received")
            address = _address(seen) if seen else _address(uri)
            expires = _seconds(params.get("expires"))
            out.append(Binding(uri, address, expires if expires is not None else default))
    return out


def _key(uri: str) -> str:
    return uri.strip().lower()


def is_ours(binding: Binding, our_contact: str) -> bool:
    """Our own Contact, compared as the registrar echoes it (case aside)."""
    return _key(binding.contact) == _key(our_contact.strip("<>"))


def others(bindings: Sequence[Binding], our_contact: str | None) -> list[Binding]:
    """The bindings that are not ours: the core's, or any other device's."""
    if our_contact is None:
        return list(bindings)
    return [b for b in bindings if not is_ours(b, our_contact)]


def displaced(before: Sequence[Binding], after: Sequence[Binding], elapsed: float) -> list[Binding]:
    """Bindings present before our REGISTER and gone from the 200 that answered it.

    A binding that was about to expire anyway (within ``elapsed`` seconds,
    plus one for rounding) is not counted: its device simply did not
    refresh in time, our REGISTER did not remove it.
    """
    kept = {_key(b.contact) for b in after}
    return [
        b
        for b in before
        if _key(b.contact) not in kept and (b.expires is None or b.expires > elapsed + 1)
    ]


def describe_bindings(bindings: Sequence[Binding]) -> str:
    """The answer to "is the core registered now?" in one phrase."""
    if not bindings:
        return "no binding: the core is not registered"
    if len(bindings) == 1:
        return f"bound from {bindings[0].describe()}"
    listed = "; ".join(b.describe() for b in bindings[:4])
    more = f"; and {len(bindings) - 4} more" if len(bindings) > 4 else ""
    return f"{len(bindings)} bindings: from {listed}{more}"
