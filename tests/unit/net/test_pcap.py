"""The pcap writer: valid checksums and framing, and tshark decodes it as SIP."""

from __future__ import annotations

import shutil
import struct
import subprocess

from qsipctl.net.pcap import TLS_NOTE, _checksum, pcapng_bytes, trace_packets, write_pcap
from qsipctl.net.trace import Trace

REGISTER = (
    b"REGISTER sip:pbx.test SIP/2.0\r\n"
    b"Via: SIP/2.0/%s 127.0.0.1:40000;branch=z9hG4bKabc;rport\r\n"
    b"From: <sip:1001@pbx.test>;tag=1\r\nTo: <sip:1001@pbx.test>\r\n"
    b"Call-ID: c1\r\nCSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n"
)
UNAUTHORIZED = (
    b"SIP/2.0 401 Unauthorized\r\n"
    b"Via: SIP/2.0/%s 127.0.0.1:40000;branch=z9hG4bKabc;rport=40000\r\n"
    b"From: <sip:1001@pbx.test>;tag=1\r\nTo: <sip:1001@pbx.test>;tag=2\r\n"
    b"Call-ID: c1\r\nCSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n"
)


def _trace(transport: str, local: tuple[str, int], remote: tuple[str, int]) -> Trace:
    t = Trace(transport, local, remote)
    name = transport.upper().encode()
    t.wire("out", REGISTER % name)
    # a stream read may split a message: the capture keeps the segments as read
    reply = UNAUTHORIZED % name
    if transport == "udp":
        t.wire("in", reply)
    else:
        t.wire("in", reply[:30])
        t.wire("in", reply[30:])
    return t


def test_checksum_of_rfc1071_example() -> None:
    # RFC 1071 section 3 example: 0001 f203 f4f5 f6f7 sums to ddf2 (checksum 220d)
    assert _checksum(bytes.fromhex("0001f203f4f5f6f7")) == 0x220D


def test_ipv4_header_checksum_verifies() -> None:
    (_, packet, _), *_ = trace_packets(_trace("udp", ("127.0.0.1", 40000), ("127.0.0.1", 5060)))
    assert _checksum(packet[:20]) == 0
    assert struct.unpack("!H", packet[2:4])[0] == len(packet)


def test_tcp_sequence_numbers_follow_payload() -> None:
    packets = trace_packets(_trace("tcp", ("127.0.0.1", 40000), ("127.0.0.1", 5060)))
    assert len(packets) == 3 + 3  # handshake + three segments
    seqs = [struct.unpack("!I", p[20 + 4 : 20 + 8])[0] for _, p, _ in packets[4:]]
    assert seqs[1] - seqs[0] == 30  # the second inbound segment follows the first


def test_tls_packets_carry_the_note() -> None:
    packets = trace_packets(_trace("tls", ("127.0.0.1", 40000), ("127.0.0.1", 5061)))
    assert all(comment == TLS_NOTE for _, _, comment in packets)


def test_pcapng_starts_with_section_header() -> None:
    data = pcapng_bytes([_trace("udp", ("127.0.0.1", 1), ("127.0.0.1", 2))])
    assert data[:4] == b"\x0a\x0d\x0d\x0a"
    assert struct.unpack("<I", data[8:12])[0] == 0x1A2B3C4D


def test_tshark_decodes_every_transport_as_sip(tmp_path) -> None:
    traces = [
        _trace("udp", ("127.0.0.1", 40000), ("127.0.0.1", 41234)),
        _trace("tcp", ("127.0.0.1", 40001), ("127.0.0.1", 42345)),
        _trace("tls", ("127.0.0.1", 40002), ("127.0.0.1", 5061)),
        _trace("udp", ("::1", 40003), ("::1", 5060)),
    ]
    path = tmp_path / "probe.pcapng"
    write_pcap(path, traces)
    tshark = shutil.which("tshark")
    assert tshark, "tshark is a test dependency (scripts/test installs it)"
    res = subprocess.run(
        [tshark, "-r", str(path), "-Y", "sip", "-T", "fields", "-e", "sip.CSeq.method",
         "-e", "sip.Status-Code", "-e", "frame.comment",
         "-o", "tcp.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    rows = [line.split("\t") for line in res.stdout.splitlines()]
    assert len(rows) == 8, res.stdout
    assert [r[1] for r in rows].count("401") == 4
    assert sum(1 for r in rows if TLS_NOTE in r[2]) == 2
    bad = subprocess.run(
        [tshark, "-r", str(path), "-o", "tcp.check_checksum:TRUE", "-o",
         "udp.check_checksum:TRUE", "-Y", "_ws.expert.severity >= warning"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert bad.stdout.strip() == ""


def test_write_is_atomic_and_leaves_no_temp(tmp_path) -> None:
    path = tmp_path / "x.pcapng"
    write_pcap(path, [])
    assert path.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["x.pcapng"]


def test_trace_of_a_flood_stays_bounded() -> None:
    from qsipctl.net.trace import MAX_TRACE_BYTES, MAX_TRACE_EVENTS, Trace

    big = Trace("udp", ("127.0.0.1", 1), ("127.0.0.1", 2))
    for _ in range(MAX_TRACE_BYTES // 60000 + 50):
        big.wire("in", b"x" * 60000)
    assert big.stored <= MAX_TRACE_BYTES and big.dropped >= 50
    many = Trace("udp", ("127.0.0.1", 1), ("127.0.0.1", 2))
    for _ in range(MAX_TRACE_EVENTS + 7):
        many.wire("in", b"SIP/2.0 200 OK\r\n\r\n")
        many.message("in", "200 OK")
    assert len(many.segments) == len(many.messages) == MAX_TRACE_EVENTS
    assert many.dropped == 14
    from qsipctl.net.pcap import pcapng_bytes

    assert b"14 segments over the capture limit not kept" in pcapng_bytes([many])
