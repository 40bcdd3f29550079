"""Write the SIP traffic of probes as a capture Wireshark and tshark open.

We never sniff: the transports record what they sent and received, and this
module wraps each segment in synthesized IPv4/IPv6 + UDP/TCP headers (with
correct lengths, checksums and TCP sequence numbers, and a synthesized TCP
handshake) so that the SIP dissector sees ordinary packets.  The format is
pcapng because it carries comments: TLS connections are written as the
*decrypted* SIP over plain TCP, and every such packet says so.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from pathlib import Path

from qsipctl.addr import packed
from qsipctl.net.trace import Trace

LINKTYPE_RAW = 101  # packets start with the IPv4 or IPv6 header
Packet = tuple[float, bytes, str | None]  # timestamp, IP packet, comment
TLS_NOTE = "qsipctl: TLS on the wire, shown decrypted as plain TCP"
_SYN, _ACK, _PSH = 0x02, 0x10, 0x08


def _checksum(data: bytes) -> int:
    data += b"\0" * (len(data) % 2)  # an odd length is padded with a zero byte
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _ip_packet(src: str, dst: str, proto: int, l4: bytes, ident: int) -> bytes:
    """Wrap ``l4`` (whose checksum field is zero) in an IP header; fill the L4 checksum."""
    s, d = packed(src), packed(dst)
    if len(s) == 4:
        pseudo = s + d + struct.pack("!BBH", 0, proto, len(l4))
        head = struct.pack(
            "!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), ident & 0xFFFF, 0x4000, 64, proto, 0, s, d
        )
        head = head[:10] + struct.pack("!H", _checksum(head)) + head[12:]
    else:
        pseudo = s + d + struct.pack("!I3xB", len(l4), proto)
        head = struct.pack("!IHBB16s16s", 0x60000000, len(l4), proto, 64, s, d)
    offset = 6 if proto == 17 else 16  # where the UDP or TCP checksum sits
    csum = _checksum(pseudo + l4) or (0xFFFF if proto == 17 else 0)
    return head + l4[:offset] + struct.pack("!H", csum) + l4[offset + 2 :]


def _tcp(sport: int, dport: int, seq: int, ack: int, flags: int, payload: bytes) -> bytes:
    return struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 65535, 0, 0) + payload


def trace_packets(trace: Trace) -> list[Packet]:
    """(timestamp, IP packet, comment) for every segment of ``trace``."""
    ends = {"out": (trace.local, trace.remote), "in": (trace.remote, trace.local)}
    if trace.transport == "udp":
        return [
            (seg.time, udp_datagram(*ends[seg.direction], seg.data, i), None)
            for i, seg in enumerate(trace.segments)
        ]
    if not trace.segments:
        return _failed_connection(trace)
    # the handshake the connection had (initial sequence numbers 1000 and 5000), then
    # every segment; each side's sequence number grows by its bytes, and a SYN counts one
    t0 = trace.segments[0].time
    steps = [(t0, "out", _SYN, b""), (t0, "in", _SYN | _ACK, b""), (t0, "out", _ACK, b"")]
    steps += [(seg.time, seg.direction, _PSH | _ACK, seg.data) for seg in trace.segments]
    seq = {"out": 1000, "in": 5000}
    note = TLS_NOTE if trace.transport == "tls" else None
    out: list[Packet] = []
    for i, (when, direction, flags, data) in enumerate(steps):
        (src, sp), (dst, dp) = ends[direction]
        ack = seq["in" if direction == "out" else "out"] if flags & _ACK else 0
        tcp = _tcp(sp, dp, seq[direction], ack, flags, data)
        out.append((when, _ip_packet(src, dst, 6, tcp, i), note))
        seq[direction] += len(data) + (1 if flags & _SYN else 0)
    return out


def udp_datagram(src: tuple[str, int], dst: tuple[str, int], payload: bytes, ident: int) -> bytes:
    """One UDP datagram (e.g. RTP/RTCP a media session sent or received) as an IP packet."""
    udp = struct.pack("!HHHH", src[1], dst[1], 8 + len(payload), 0) + payload
    return _ip_packet(src[0], dst[0], 17, udp, ident)


def _failed_connection(trace: Trace) -> list[Packet]:
    """A connection that never carried SIP: its SYN, with why it failed as the comment,
    so the capture of a refused or failed TLS attempt is not an empty file."""
    (src, sp), (dst, dp) = trace.local, trace.remote
    why = "; ".join(m.summary for m in trace.messages) or "no connection"
    when = trace.messages[0].time if trace.messages else 0.0
    syn = _ip_packet(src, dst, 6, _tcp(sp, dp, 1000, 0, _SYN, b""), 0)
    return [(when, syn, f"qsipctl: {trace.transport} connection attempt: {why}")]


def _option(code: int, value: bytes) -> bytes:
    return struct.pack("<HH", code, len(value)) + value + b"\0" * (-len(value) % 4)


def _block(block_type: int, body: bytes) -> bytes:
    length = 12 + len(body)
    return struct.pack("<II", block_type, length) + body + struct.pack("<I", length)


def _section_header(comment: str) -> bytes:
    opts = _option(1, comment.encode()) + _option(0, b"")
    return _block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1) + opts)


def _interface() -> bytes:
    return _block(1, struct.pack("<HHI", LINKTYPE_RAW, 0, 0) + _option(0, b""))


def _packet(ts: float, data: bytes, comment: str | None) -> bytes:
    micros = round(ts * 1_000_000)
    body = struct.pack("<IIIII", 0, micros >> 32, micros & 0xFFFFFFFF, len(data), len(data))
    body += data + b"\0" * ((-len(data)) % 4)
    if comment:
        body += _option(1, comment.encode()) + _option(0, b"")
    return _block(6, body)


def pcapng_bytes(traces: Iterable[Trace], extra: Iterable[Packet] = ()) -> bytes:
    """All traces, plus ``extra`` (timestamp, IP packet, comment) such as RTP and RTCP."""
    traces = list(traces)
    packets = [p for trace in traces for p in trace_packets(trace)] + list(extra)
    packets.sort(key=lambda p: p[0])
    comment = "SIP messages sent and received by qsipctl"
    dropped = sum(t.dropped for t in traces)
    if dropped:
        comment += f" ({dropped} segments over the capture limit not kept)"
    return b"".join([_section_header(comment), _interface(), *(_packet(*p) for p in packets)])


def write_pcap(path: str | Path, traces: Iterable[Trace], extra: Iterable[Packet] = ()) -> None:
    """Write all traces into one pcapng file (atomically: nothing half-written)."""
    target = Path(path)
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_bytes(pcapng_bytes(traces, extra))
    tmp.replace(target)
