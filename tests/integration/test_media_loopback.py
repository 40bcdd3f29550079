"""Two real media sessions on loopback: tone both ways, DTMF, RTCP, SRTP, latching, floods.

Everything goes over real UDP sockets on 127.0.0.1; the far end is either a
second session or SIPp's RTP echo (``-rtp_echo``, which echoes without a call).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
from pathlib import Path

import pytest

from qsipctl.media.capture import write_media_pcap
from qsipctl.media.result import MediaResult
from qsipctl.media.session import KEEP_FRAMES, MediaSession
from qsipctl.rtp.packet import RtpPacket
from tests.fixtures.common import free_port, wait_until
from tests.fixtures.media import config, tshark_streams

pytestmark = pytest.mark.integration


async def call(a_kw: dict, b_kw: dict, seconds: float = 2.5, digits: str = ""
               ) -> tuple[MediaResult, MediaResult, MediaSession]:  # fmt: skip
    async with MediaSession(config(**a_kw)) as a, MediaSession(config(base=400, **b_kw)) as b:
        a.set_remote(b.local)
        b.set_remote(a.local)
        a.start()
        b.start()
        if digits:
            await asyncio.sleep(0.3)
            a.send_dtmf(digits)
        await asyncio.sleep(seconds)
        return a.result(), b.result(), a


@pytest.mark.parametrize("codec", ["PCMU", "PCMA", "G722"])
def test_tone_both_ways_recognised(codec: str) -> None:
    ra, rb, _ = asyncio.run(
        call({"codec": codec, "tone_hz": 440, "rtcp_interval": 0.5},
             {"codec": codec, "tone_hz": 1000, "tone_dbfs": -20.0, "rtcp_interval": 0.5})
    )  # fmt: skip
    assert ra.audio.kind == "tone" and ra.audio.frequency == pytest.approx(1000, abs=2)
    assert ra.audio.level_dbfs == pytest.approx(-20, abs=1)
    assert rb.audio.kind == "tone" and rb.audio.frequency == pytest.approx(440, abs=2)
    assert rb.audio.level_dbfs == pytest.approx(-14, abs=1)
    assert "audio from the far end: 440 Hz at -14 dBFS" in rb.verdicts
    for r in (ra, rb):
        assert r.received.lost == 0 and r.received.packets > 50
        assert r.rtcp_received > 0 and r.rtt_ms is not None and r.far_end is not None
        assert r.far_end.cumulative_lost == 0 and r.mos is not None and r.mos > 4
        assert not r.latched


def test_dtmf_rfc4733_reaches_the_far_end() -> None:
    ra, rb, _ = asyncio.run(call({}, {}, seconds=3.0, digits="123#*9"))
    assert ra.dtmf_sent == "123#*9"
    assert rb.dtmf_received == "123#*9"
    assert rb.received.lost == 0  # events share the stream's sequence numbers
    assert 101 in rb.received.payload_types


def test_srtp_and_rtcp_mux() -> None:
    ka, kb = os.urandom(30), os.urandom(30)
    ra, rb, _ = asyncio.run(
        call({"srtp_local_key": ka, "srtp_remote_key": kb, "rtcp_mux": True, "rtcp_interval": 0.5},
             {"srtp_local_key": kb, "srtp_remote_key": ka, "rtcp_mux": True, "rtcp_interval": 0.5,
              "tone_hz": 697})
    )  # fmt: skip
    assert ra.srtp and rb.srtp
    assert ra.audio.frequency == pytest.approx(697, abs=2) and rb.audio.kind == "tone"
    assert ra.rtcp_received > 0 and ra.unexpected_packets == 0


def test_srtp_with_wrong_key_hears_nothing() -> None:
    ka, kb = os.urandom(30), os.urandom(30)
    ra, rb, _ = asyncio.run(
        call({"srtp_local_key": ka, "srtp_remote_key": kb},
             {"srtp_local_key": os.urandom(30), "srtp_remote_key": ka}, seconds=1.5)
    )  # fmt: skip
    assert ra.received.packets == 0 and ra.unexpected_packets > 50
    assert rb.audio.kind == "tone"


def test_latching_follows_the_real_source() -> None:
    async def run() -> tuple[MediaResult, MediaResult]:
        async with MediaSession(config()) as a, MediaSession(config(base=400)) as b:
            wrong = free_port(socket.SOCK_DGRAM)
            a.set_remote(("127.0.0.1", wrong))  # what a NATed far end's SDP would say
            b.set_remote(a.local)
            a.start()
            b.start()
            await asyncio.sleep(2.0)
            return a.result(), b.result()

    ra, rb = asyncio.run(run())
    assert ra.latched and ra.remote_actual and ra.remote_actual != ra.remote_sdp
    assert any("NAT" in v for v in ra.verdicts)
    assert rb.received.packets > 50 and rb.audio.kind == "tone"  # our audio follows the latch


def test_no_rtp_is_one_way_audio_verdict() -> None:
    async def run() -> MediaResult:
        async with MediaSession(config()) as a:
            a.set_remote(("127.0.0.1", free_port(socket.SOCK_DGRAM)))
            a.start()
            await asyncio.sleep(1.5)
            return a.result()

    r = asyncio.run(run())
    assert r.received.packets == 0 and r.audio.kind == "none"
    assert any("no RTP at all" in v and "NAT/firewall" in v for v in r.verdicts)


def test_silence_is_named() -> None:
    ra, _, _ = asyncio.run(call({}, {"tone_hz": 0}, seconds=1.5))
    assert "RTP arrives but carries silence" in ra.verdicts


def test_flood_and_garbage_stay_bounded() -> None:
    async def run() -> tuple[MediaResult, MediaSession]:
        async with (
            MediaSession(config(capture_limit=500)) as a,
            MediaSession(config(base=400)) as b,
        ):
            a.set_remote(b.local)
            b.set_remote(a.local)
            a.start()
            b.start()
            await asyncio.sleep(0.5)
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.setblocking(False)
                junk = RtpPacket(0, 1, 1, 99, b"\x00" * 160).serialize()
                for i in range(20000):
                    try:
                        s.sendto(junk if i % 2 else os.urandom(40), a.local)
                    except BlockingIOError:
                        await asyncio.sleep(0)
                    if i % 50 == 0:
                        await asyncio.sleep(0.001)  # let the loop drain the socket
            await asyncio.sleep(1.0)
            return a.result(), a

    r, a = asyncio.run(run())
    assert r.unexpected_packets > 2000  # counted, not stored
    assert len(a._kept) <= KEEP_FRAMES and len(a.captured) == 500 and a.capture_dropped > 0
    assert r.audio.kind == "tone" and r.received.ssrc != 99


def test_socket_closed_on_exit_and_on_error() -> None:
    async def run() -> tuple[int, int]:
        async with MediaSession(config()) as a:
            port = a.local[1]
        try:
            async with MediaSession(config(base=400)) as b:
                other = b.local[1]
                b.start()
                raise RuntimeError("boom")
        except RuntimeError:
            pass
        assert a.closed and b.closed
        return port, other

    for port in asyncio.run(run()):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", port))  # free again
            assert port % 2 == 0


def test_pcap_read_by_tshark_matches_our_counts(tmp_path: Path) -> None:
    ra, _rb, a = asyncio.run(
        call({"capture_limit": 5000, "rtcp_interval": 0.5}, {}, seconds=2.0)
    )  # fmt: skip
    pcap = tmp_path / "call.pcapng"
    write_media_pcap(pcap, a.captured)
    streams = {s.ssrc: s for s in tshark_streams(pcap)}
    sent = [s for s in streams.values() if s.src_port == int(ra.local.rsplit(":", 1)[1])]
    assert len(sent) == 1 and sent[0].packets >= ra.sent_packets and sent[0].lost == 0
    got = streams[ra.received.ssrc]
    assert got.packets >= ra.received.packets and got.lost == 0


@pytest.fixture
def sipp_echo(tmp_path: Path):  # type: ignore[no-untyped-def]
    """SIPp as a UAS with ``-rtp_echo``: echoes RTP on its media port, no call needed."""
    if shutil.which("sipp") is None:
        pytest.fail("sipp is not installed (Debian sip-tester; scripts/test installs it)")
    sip, media, ctrl = (free_port(socket.SOCK_DGRAM) for _ in range(3))
    media -= media % 2
    proc = subprocess.Popen(
        ["sipp", "-sn", "uas", "-i", "127.0.0.1", "-p", str(sip), "-mi", "127.0.0.1",
         "-mp", str(media), "-cp", str(ctrl), "-rtp_echo", "-nostdin"],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip

    def bound() -> bool:
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            probe.bind(("127.0.0.1", media))
        except OSError:
            return True
        finally:
            probe.close()
        return False

    try:
        wait_until(bound, timeout=10)
        yield ("127.0.0.1", media)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_round_trip_through_sipp_rtp_echo(sipp_echo: tuple[str, int]) -> None:
    async def run() -> tuple[float | None, MediaResult]:
        async with MediaSession(config()) as a:
            a.set_remote(sipp_echo)
            a.start()
            await asyncio.sleep(0.5)
            rt = await a.measure_round_trip(timeout=3.0)
            await asyncio.sleep(0.6)
            return rt, a.result()

    rt, r = asyncio.run(run())
    assert rt is not None and 0 < rt < 0.5
    assert r.round_trip_ms == pytest.approx(rt * 1000, abs=0.1)
    assert r.audio.kind == "tone" and r.audio.frequency == pytest.approx(440, abs=2)  # our own
    assert r.received.ssrc is not None and r.received.lost == 0
