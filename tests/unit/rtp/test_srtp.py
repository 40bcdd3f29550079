"""SRTP/SRTCP through pylibsrtp with SDES keys: both directions, tampering rejected."""

from __future__ import annotations

import os

import pytest

from qsipctl.rtp.errors import RtpError
from qsipctl.rtp.packet import RtpPacket
from qsipctl.rtp.rtcp import ReceiverReport
from qsipctl.rtp.srtp import SrtpContext


def test_protect_unprotect_both_ways() -> None:
    key_a, key_b = os.urandom(30), os.urandom(30)
    a, b = SrtpContext(key_a, key_b), SrtpContext(key_b, key_a)
    rtp = RtpPacket(0, 1, 160, 0x1234, b"\xff" * 160).serialize()
    wire = a.protect(rtp)
    assert len(wire) == len(rtp) + 10 and wire[:12] == rtp[:12] and wire[12:172] != rtp[12:]
    assert b.unprotect(wire) == rtp
    rtcp = ReceiverReport(0x1234).serialize()
    assert b.unprotect_rtcp(a.protect_rtcp(rtcp)) == rtcp


def test_tampered_replayed_or_wrong_key_rejected() -> None:
    key_a, key_b = os.urandom(30), os.urandom(30)
    a, b = SrtpContext(key_a, key_b), SrtpContext(key_b, key_a)
    wire = bytearray(a.protect(RtpPacket(0, 7, 160, 5, b"x" * 160).serialize()))
    wire[20] ^= 1
    with pytest.raises(RtpError, match="rejected"):
        b.unprotect(bytes(wire))
    good = a.protect(RtpPacket(0, 8, 320, 5, b"y" * 160).serialize())
    b.unprotect(good)
    with pytest.raises(RtpError):
        b.unprotect(good)  # replay
    with pytest.raises(RtpError):
        SrtpContext(key_a, os.urandom(30)).unprotect(a.protect(RtpPacket(0, 9, 1, 5).serialize()))
    with pytest.raises(RtpError, match="30"):
        SrtpContext(b"short", key_a)
