"""RTP (RFC 3550 section 5.1) packets as values: ``parse()`` and ``serialize()``.

Every length in the header is checked against the datagram before it is
used, so a hostile packet raises :class:`RtpError` and nothing else.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from qsipctl.rtp.errors import RtpError

_HEADER = struct.Struct("!BBHII")


@dataclass(frozen=True, slots=True)
class RtpPacket:
    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes = b""
    marker: bool = False
    csrc: tuple[int, ...] = ()
    extension: tuple[int, bytes] | None = None  # (profile, data as a multiple of 4 bytes)
    padding: int = 0  # padding octets after the payload (0 = P bit clear)

    @classmethod
    def parse(cls, data: bytes) -> RtpPacket:
        if len(data) < 12:
            raise RtpError(f"RTP packet of {len(data)} bytes is shorter than its 12-byte header")
        b0, b1, seq, ts, ssrc = _HEADER.unpack_from(data)
        if b0 >> 6 != 2:
            raise RtpError(f"RTP version {b0 >> 6}, expected 2")
        pos = 12 + 4 * (b0 & 0x0F)
        if pos > len(data):
            raise RtpError("RTP CSRC list runs past the end of the packet")
        csrc = struct.unpack_from(f"!{b0 & 0x0F}I", data, 12)
        ext = None
        if b0 & 0x10:
            if pos + 4 > len(data):
                raise RtpError("RTP header extension runs past the end of the packet")
            profile, words = struct.unpack_from("!HH", data, pos)
            end = pos + 4 + 4 * words
            if end > len(data):
                raise RtpError("RTP header extension runs past the end of the packet")
            ext = (profile, bytes(data[pos + 4 : end]))
            pos = end
        end = len(data)
        padding = 0
        if b0 & 0x20:
            padding = data[-1]
            if padding == 0 or pos + padding > len(data):
                raise RtpError(f"RTP padding count {padding} does not fit the packet")
            end -= padding
        return cls(b1 & 0x7F, seq, ts, ssrc, bytes(data[pos:end]), bool(b1 & 0x80), csrc, ext,
                   padding)  # fmt: skip

    def serialize(self) -> bytes:
        b0 = 0x80 | len(self.csrc) | (0x10 if self.extension else 0) | (0x20 if self.padding else 0)
        b1 = (0x80 if self.marker else 0) | (self.payload_type & 0x7F)
        out = _HEADER.pack(b0, b1, self.sequence & 0xFFFF, self.timestamp & 0xFFFFFFFF, self.ssrc)
        if self.csrc:
            out += struct.pack(f"!{len(self.csrc)}I", *self.csrc)
        if self.extension:
            profile, data = self.extension
            data += b"\0" * (-len(data) % 4)
            out += struct.pack("!HH", profile, len(data) // 4) + data
        out += self.payload
        if self.padding:
            out += b"\0" * (self.padding - 1) + bytes([self.padding])
        return out


def is_rtcp(data: bytes) -> bool:
    """RFC 5761 section 4: on a muxed port, payload types 192-223 (second byte) are RTCP."""
    return len(data) >= 2 and 192 <= data[1] <= 223
