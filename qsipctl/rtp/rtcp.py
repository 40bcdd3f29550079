"""RTCP (RFC 3550 section 6): SR, RR, SDES (CNAME), BYE as values; compound packets.

``parse_compound`` reads every packet of a compound datagram; unknown types are
kept as :class:`RtcpUnknown` so APP/XR/feedback from a PBX never break a call.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from qsipctl.rtp.errors import RtpError

SR, RR, SDES, BYE = 200, 201, 202, 203
_BLOCK = struct.Struct("!IB3sIIII")
MAX_PACKETS = 32  # per compound datagram


@dataclass(frozen=True, slots=True)
class ReportBlock:
    """Reception report about one source (RFC 3550 6.4.1)."""

    ssrc: int
    fraction_lost: int  # 0-255, fixed point /256
    cumulative_lost: int  # signed 24-bit
    highest_sequence: int  # extended
    jitter: int  # RTP timestamp units
    lsr: int  # middle 32 bits of the NTP time of the last SR received
    dlsr: int  # delay since that SR, 1/65536 s

    def serialize(self) -> bytes:
        lost = self.cumulative_lost & 0xFFFFFF
        return _BLOCK.pack(self.ssrc, self.fraction_lost, lost.to_bytes(3, "big"),
                           self.highest_sequence & 0xFFFFFFFF, self.jitter & 0xFFFFFFFF,
                           self.lsr, self.dlsr)  # fmt: skip

    @classmethod
    def parse(cls, data: bytes, pos: int) -> ReportBlock:
        ssrc, frac, lost, high, jitter, lsr, dlsr = _BLOCK.unpack_from(data, pos)
        cum = int.from_bytes(lost, "big")
        if cum & 0x800000:
            cum -= 1 << 24
        return cls(ssrc, frac, cum, high, jitter, lsr, dlsr)


@dataclass(frozen=True, slots=True)
class SenderReport:
    ssrc: int
    ntp_timestamp: int  # 64-bit NTP format
    rtp_timestamp: int
    packet_count: int
    octet_count: int
    reports: tuple[ReportBlock, ...] = ()

    def serialize(self) -> bytes:
        m = 0xFFFFFFFF
        body = struct.pack("!IQIII", self.ssrc, self.ntp_timestamp, self.rtp_timestamp & m,
                           self.packet_count & m, self.octet_count & m)  # fmt: skip
        return _wrap(SR, len(self.reports), body + b"".join(r.serialize() for r in self.reports))


@dataclass(frozen=True, slots=True)
class ReceiverReport:
    ssrc: int
    reports: tuple[ReportBlock, ...] = ()

    def serialize(self) -> bytes:
        body = struct.pack("!I", self.ssrc) + b"".join(r.serialize() for r in self.reports)
        return _wrap(RR, len(self.reports), body)


@dataclass(frozen=True, slots=True)
class SourceDescription:
    """SDES with one CNAME per source, which is all RFC 3550 requires."""

    chunks: tuple[tuple[int, str], ...]  # (ssrc, cname)

    def serialize(self) -> bytes:
        body = b""
        for ssrc, cname in self.chunks:
            text = cname.encode()[:255]
            chunk = struct.pack("!IBB", ssrc, 1, len(text)) + text + b"\0"
            body += chunk + b"\0" * (-len(chunk) % 4)
        return _wrap(SDES, len(self.chunks), body)


@dataclass(frozen=True, slots=True)
class Bye:
    ssrcs: tuple[int, ...]
    reason: str = ""

    def serialize(self) -> bytes:
        body = b"".join(struct.pack("!I", s) for s in self.ssrcs)
        if self.reason:
            text = self.reason.encode()[:255]
            body += bytes([len(text)]) + text
            body += b"\0" * (-len(body) % 4)
        return _wrap(BYE, len(self.ssrcs), body)


@dataclass(frozen=True, slots=True)
class RtcpUnknown:
    packet_type: int
    data: bytes


RtcpPacket = SenderReport | ReceiverReport | SourceDescription | Bye | RtcpUnknown


def _wrap(packet_type: int, count: int, body: bytes) -> bytes:
    return struct.pack("!BBH", 0x80 | count, packet_type, len(body) // 4) + body


def serialize_compound(packets: list[RtcpPacket] | tuple[RtcpPacket, ...]) -> bytes:
    out = b""
    for p in packets:
        out += p.data if isinstance(p, RtcpUnknown) else p.serialize()
    return out


def parse_compound(data: bytes) -> list[RtcpPacket]:
    """Every packet of a compound RTCP datagram; :class:`RtpError` if lengths do not add up."""
    out: list[RtcpPacket] = []
    pos = 0
    while pos < len(data):
        if len(out) >= MAX_PACKETS:
            raise RtpError(f"RTCP compound packet holds more than {MAX_PACKETS} packets")
        if pos + 4 > len(data):
            raise RtpError("RTCP packet header runs past the end of the datagram")
        b0, pt, words = struct.unpack_from("!BBH", data, pos)
        if b0 >> 6 != 2:
            raise RtpError(f"RTCP version {b0 >> 6}, expected 2")
        end = pos + 4 + 4 * words
        if end > len(data):
            raise RtpError("RTCP length field runs past the end of the datagram")
        body = data[pos + 4 : end]
        if b0 & 0x20 and body:
            body = body[: len(body) - body[-1]]
        out.append(_parse_one(pt, b0 & 0x1F, body, bytes(data[pos:end])))
        pos = end
    return out


def _blocks(body: bytes, start: int, count: int) -> tuple[ReportBlock, ...]:
    if start + 24 * count > len(body):
        raise RtpError(f"RTCP report count {count} does not fit the packet")
    return tuple(ReportBlock.parse(body, start + 24 * i) for i in range(count))


def _parse_one(pt: int, count: int, body: bytes, raw: bytes) -> RtcpPacket:
    if pt == SR:
        if len(body) < 24:
            raise RtpError("RTCP SR shorter than its sender info")
        ssrc, ntp, rtp_ts, pkts, octets = struct.unpack_from("!IQIII", body)
        return SenderReport(ssrc, ntp, rtp_ts, pkts, octets, _blocks(body, 24, count))
    if pt == RR:
        if len(body) < 4:
            raise RtpError("RTCP RR shorter than its SSRC")
        return ReceiverReport(struct.unpack_from("!I", body)[0], _blocks(body, 4, count))
    if pt == SDES:
        return SourceDescription(_sdes_chunks(body, count))
    if pt == BYE:
        if len(body) < 4 * count:
            raise RtpError("RTCP BYE source count does not fit the packet")
        ssrcs = struct.unpack_from(f"!{count}I", body)
        rest = body[4 * count :]
        reason = rest[1 : 1 + rest[0]].decode("utf-8", "replace") if rest else ""
        return Bye(ssrcs, reason)
    return RtcpUnknown(pt, raw)


def _sdes_chunks(body: bytes, count: int) -> tuple[tuple[int, str], ...]:
    chunks: list[tuple[int, str]] = []
    pos = 0
    for _ in range(count):
        if pos + 4 > len(body):
            break
        ssrc = struct.unpack_from("!I", body, pos)[0]
        pos += 4
        cname = ""
        while pos < len(body) and body[pos] != 0:
            if pos + 2 > len(body):
                break
            kind, length = body[pos], body[pos + 1]
            if kind == 1:
                cname = body[pos + 2 : pos + 2 + length].decode("utf-8", "replace")
            pos += 2 + length
        pos += 4 - (pos % 4) if pos % 4 else 4  # the null item and padding to 32 bits
        chunks.append((ssrc, cname))
    return tuple(chunks)


def ntp_time(unix_time: float) -> int:
    """64-bit NTP timestamp for a Unix time."""
    seconds = unix_time + 2208988800
    return (int(seconds) << 32) | int((seconds % 1) * (1 << 32))


def ntp_middle(ntp: int) -> int:
    """The middle 32 bits of an NTP timestamp, as LSR/DLSR use (RFC 3550 6.4.1)."""
    return (ntp >> 16) & 0xFFFFFFFF
