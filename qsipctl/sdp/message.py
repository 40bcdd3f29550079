"""SDP (RFC 4566) as values: parse liberally, serialize exactly.

Parsing follows what production stacks do with bodies from the field: accept
LF or CRLF, skip lines that are not ``<letter>=<value>`` and attributes we
do not know, and read only what a verdict depends on strictly (m= and c=).
The body is bounded (size, lines, m-lines, formats) *before* any work is
done, so a hostile peer cannot make us spend memory or time on it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any

from qsipctl.sdp.errors import SdpError

MAX_SDP_BYTES = 64 * 1024  # a real audio SDP is < 2 KiB; ICE-heavy WebRTC ones < 16 KiB
MAX_LINES = 2000
MAX_MEDIA = 32
MAX_FORMATS = 128

# RFC 3551 table 4: static audio payload types we may meet without an rtpmap.
STATIC_PAYLOADS: dict[int, tuple[str, int]] = {
    0: ("PCMU", 8000),
    3: ("GSM", 8000),
    4: ("G723", 8000),
    8: ("PCMA", 8000),
    9: ("G722", 8000),  # RTP clock 8000 although G.722 samples at 16 kHz (RFC 3551 4.5.2)
    18: ("G729", 8000),
}

_MLINE = re.compile(r"^(\S+) (\d+)(?:/(\d+))? (\S+)(?: (.*))?$")
_CLINE = re.compile(r"^IN (IP4|IP6) ([^\s/]+)(?:/\d+){0,2}$")
_RTPMAP = re.compile(r"^(\d+) ([^/\s]+)/(\d+)(?:/(\d+))?$")


@dataclass(frozen=True, slots=True)
class RtpMap:
    """One payload type's encoding, e.g. ``101 telephone-event/8000``."""

    payload_type: int
    encoding: str
    clock_rate: int
    channels: int = 1

    @property
    def key(self) -> tuple[str, int]:
        """What identifies a codec across both sides: name (case-insensitive) and clock."""
        return self.encoding.upper(), self.clock_rate


@dataclass(frozen=True, slots=True)
class Media:
    """One m= section with its own attributes (a= lines in order, value None for flags)."""

    kind: str
    port: int
    proto: str
    formats: tuple[str, ...]
    connection: str | None = None
    attributes: tuple[tuple[str, str | None], ...] = ()
    port_count: int = 1

    def attribute(self, name: str) -> str | None:
        """The first value of ``a=name:value`` (``""`` for a flag), None when absent."""
        for key, value in self.attributes:
            if key == name:
                return value if value is not None else ""
        return None

    def attribute_values(self, name: str) -> tuple[str, ...]:
        return tuple(v or "" for k, v in self.attributes if k == name)

    @property
    def payload_types(self) -> tuple[int, ...]:
        return tuple(int(f) for f in self.formats if f.isdigit() and int(f) < 128)

    def rtpmaps(self) -> dict[int, RtpMap]:
        """Payload type -> encoding: explicit rtpmaps over RFC 3551's static table."""
        out: dict[int, RtpMap] = {}
        for value in self.attribute_values("rtpmap"):
            m = _RTPMAP.match(value.strip())
            if m:
                pt = int(m.group(1))
                out[pt] = RtpMap(pt, m.group(2), int(m.group(3)), int(m.group(4) or 1))
        for pt in self.payload_types:
            if pt not in out and pt in STATIC_PAYLOADS:
                name, rate = STATIC_PAYLOADS[pt]
                out[pt] = RtpMap(pt, name, rate)
        return out

    def codecs(self) -> tuple[RtpMap | str, ...]:
        """Formats in the m-line's order; an unknown dynamic type stays as its number."""
        maps = self.rtpmaps()
        return tuple(maps.get(int(f), f) if f.isdigit() else f for f in self.formats)

    def fmtp(self, payload_type: int) -> str | None:
        for value in self.attribute_values("fmtp"):
            pt, _, params = value.partition(" ")
            if pt == str(payload_type):
                return params.strip()
        return None

    @property
    def direction(self) -> str:
        for key, _ in self.attributes:
            if key in ("sendrecv", "sendonly", "recvonly", "inactive"):
                return key
        return "sendrecv"

    @property
    def ptime(self) -> int | None:
        value = self.attribute("ptime")
        try:
            return int(float(value)) if value else None
        except ValueError:
            return None

    @property
    def rtcp_mux(self) -> bool:
        return self.attribute("rtcp-mux") is not None


@dataclass(frozen=True, slots=True)
class SessionDescription:
    """A whole SDP body; ``media`` in order. Only the fields a call needs are modelled."""

    origin_address: str = "0.0.0.0"
    session_id: int = 0
    session_version: int = 0
    username: str = "-"
    session_name: str = "-"
    connection: str | None = None
    attributes: tuple[tuple[str, str | None], ...] = ()
    media: tuple[Media, ...] = field(default_factory=tuple)

    def audio(self) -> Media | None:
        """The first audio m-line (the one a softphone call uses)."""
        return next((m for m in self.media if m.kind == "audio"), None)

    def media_address(self, media: Media) -> str | None:
        """Where RTP goes: the media-level c= over the session-level one."""
        return media.connection or self.connection

    def serialize(self) -> bytes:
        family = "IP6" if ":" in self.origin_address else "IP4"
        lines = [
            "v=0",
            f"o={self.username} {self.session_id} {self.session_version} IN {family} "
            f"{self.origin_address}",
            f"s={self.session_name}",
        ]
        if self.connection:
            lines.append(f"c=IN {'IP6' if ':' in self.connection else 'IP4'} {self.connection}")
        lines.append("t=0 0")
        lines += [_attr_line(k, v) for k, v in self.attributes]
        for m in self.media:
            lines.append(f"m={m.kind} {m.port} {m.proto} {' '.join(m.formats)}")
            if m.connection:
                lines.append(f"c=IN {'IP6' if ':' in m.connection else 'IP4'} {m.connection}")
            lines += [_attr_line(k, v) for k, v in m.attributes]
        return ("\r\n".join(lines) + "\r\n").encode()


def _attr_line(key: str, value: str | None) -> str:
    return f"a={key}" if value is None else f"a={key}:{value}"


def _connection(value: str, lineno: int) -> str:
    m = _CLINE.match(value.strip())
    if not m:
        raise SdpError(f"SDP line {lineno}: c= is not 'IN IP4|IP6 <address>': {value[:60]!r}")
    return m.group(2)


@dataclass(slots=True)
class _Builder:
    """Mutable scratch for one section while parsing."""

    connection: str | None = None
    attributes: list[tuple[str, str | None]] = field(default_factory=list)
    media: Media | None = None


def parse(body: bytes | str) -> SessionDescription:
    """Read an SDP body; raises :class:`SdpError` (one line) for what cannot be read."""
    if len(body) > MAX_SDP_BYTES:
        raise SdpError(f"SDP body of {len(body)} bytes is over the {MAX_SDP_BYTES}-byte limit")
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    lines = text.split("\n")
    if len(lines) > MAX_LINES:
        raise SdpError(f"SDP body has {len(lines)} lines, over the {MAX_LINES}-line limit")
    session = _Builder()
    origin: dict[str, Any] = {}
    name = "-"
    sections: list[_Builder] = []
    for lineno, raw in enumerate(lines, 1):
        line = raw.rstrip("\r")
        if len(line) < 2 or line[1] != "=":
            continue  # blank or garbage line: skipped, as lenient stacks do
        kind, value = line[0], line[2:]
        target = sections[-1] if sections else session
        if kind == "m":
            if len(sections) >= MAX_MEDIA:
                raise SdpError(f"SDP has more than {MAX_MEDIA} m-lines")
            sections.append(_Builder(media=_mline(value, lineno)))
        elif kind == "c":
            target.connection = _connection(value, lineno)
        elif kind == "a":
            key, sep, val = value.partition(":")
            target.attributes.append((key.strip(), val if sep else None))
        elif kind == "o" and not sections:
            origin = _origin(value)
        elif kind == "s" and not sections:
            name = value
    media = tuple(
        replace(b.media, connection=b.connection, attributes=tuple(b.attributes))
        for b in sections
        if b.media is not None
    )
    return SessionDescription(
        session_name=name,
        connection=session.connection,
        attributes=tuple(session.attributes),
        media=media,
        **origin,
    )


def _mline(value: str, lineno: int) -> Media:
    m = _MLINE.match(value.strip())
    if not m:
        raise SdpError(f"SDP line {lineno}: m= is not '<media> <port> <proto> <fmt>...'")
    port = int(m.group(2))
    if port > 65535:
        raise SdpError(f"SDP line {lineno}: m= port {port} is out of range")
    formats = tuple((m.group(5) or "").split())
    if len(formats) > MAX_FORMATS:
        raise SdpError(f"SDP line {lineno}: m= lists {len(formats)} formats (limit {MAX_FORMATS})")
    return Media(m.group(1), port, m.group(4), formats, port_count=int(m.group(3) or 1))


def _origin(value: str) -> dict[str, Any]:
    parts = value.split()
    if len(parts) != 6 or not parts[1].isdigit() or not parts[2].isdigit():
        return {}  # a broken o= line is not worth failing a call over
    sid, ver = int(parts[1][:20]), int(parts[2][:20])
    return {"username": parts[0], "session_id": sid, "session_version": ver,
            "origin_address": parts[5]}  # fmt: skip
