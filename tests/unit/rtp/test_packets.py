"""RTP/RTCP packets: round trips, RFC 3550 layouts, hostile input raises RtpError only."""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qsipctl.rtp.errors import RtpError
from qsipctl.rtp.packet import RtpPacket, is_rtcp
from qsipctl.rtp.rtcp import (
    Bye,
    ReceiverReport,
    ReportBlock,
    RtcpUnknown,
    SenderReport,
    SourceDescription,
    ntp_middle,
    ntp_time,
    parse_compound,
    serialize_compound,
)


def test_rtp_header_layout() -> None:
    p = RtpPacket(payload_type=0, sequence=0x1234, timestamp=0xDEADBEEF, ssrc=0x01020304,
                  payload=b"\xff" * 160, marker=True)  # fmt: skip
    data = p.serialize()
    assert data[:12] == bytes.fromhex("8080 1234 deadbeef 01020304".replace(" ", ""))
    assert RtpPacket.parse(data) == p


def test_rtp_csrc_extension_padding_round_trip() -> None:
    p = RtpPacket(8, 65535, 1, 2, b"abc", False, (7, 8), (0xBEDE, b"\x10\x01\x00\x00"), 4)
    assert RtpPacket.parse(p.serialize()) == p


@pytest.mark.parametrize(
    "data, why",
    [
        (b"\x80\x00", "shorter"),
        (bytes([0x40]) + bytes(11), "version"),
        (bytes([0x8F]) + bytes(11), "CSRC"),
        (bytes([0x90]) + bytes(11) + b"\x00\x00\x00\x09", "extension"),
        (bytes([0xA0]) + bytes(11) + b"\x00", "padding"),
        (bytes([0xA0]) + bytes(11) + b"\x40", "padding"),
    ],
)
def test_rtp_broken(data: bytes, why: str) -> None:
    with pytest.raises(RtpError, match=why):
        RtpPacket.parse(data)


@given(st.binary(max_size=300))
def test_rtp_parse_raises_only_rtp_error(data: bytes) -> None:
    with contextlib.suppress(RtpError):
        RtpPacket.parse(data)


@given(st.binary(max_size=300))
def test_rtcp_parse_raises_only_rtp_error(data: bytes) -> None:
    with contextlib.suppress(RtpError):
        parse_compound(data)


def test_rtcp_compound_round_trip() -> None:
    block = ReportBlock(0xAABBCCDD, 25, -3, 70000, 120, 0x12345678, 65536)
    sr = SenderReport(1, ntp_time(1_700_000_000.25), 160, 50, 8000, (block,))
    packets = [sr, SourceDescription(((1, "qsipctl@198.18.0.1"),)), Bye((1,), "done")]
    data = serialize_compound(packets)
    assert parse_compound(data) == packets
    rr = ReceiverReport(2, (block,))
    assert parse_compound(rr.serialize()) == [rr]
    assert struct.unpack_from("!BBH", sr.serialize()) == (0x81, 200, 12)  # RC=1, 12 words


def test_rtcp_unknown_kept_and_length_checked() -> None:
    app = bytes([0x80, 204, 0, 2]) + b"name" + b"\0\0\0\0"
    assert parse_compound(app) == [RtcpUnknown(204, app)]
    with pytest.raises(RtpError, match="length"):
        parse_compound(bytes([0x80, 200, 0, 40]) + bytes(24))
    with pytest.raises(RtpError, match="report count"):
        parse_compound(bytes([0x85, 201, 0, 1]) + bytes(4))


def test_ntp_middle_and_mux_demux() -> None:
    ntp = ntp_time(0.5)  # 1970 + 0.5 s
    assert ntp >> 32 == 2208988800 and ntp & 0xFFFFFFFF == 1 << 31
    assert ntp_middle(ntp) == ((2208988800 & 0xFFFF) << 16) | 0x8000
    assert is_rtcp(ReceiverReport(1).serialize())
    assert not is_rtcp(RtpPacket(0, 1, 1, 1).serialize())
    assert not is_rtcp(RtpPacket(101, 1, 1, 1, marker=True).serialize())  # 0xE5: still RTP
    assert is_rtcp(RtpPacket(72, 1, 1, 1, marker=True).serialize())  # why RFC 5761 bars 64-95
