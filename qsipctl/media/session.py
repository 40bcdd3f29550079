"""One call's media: an asyncio UDP socket (pair) around the sans-IO RTP pieces.

* Binds an even port from the site's RTP range (RTCP on the next odd port,
  or the same port with rtcp-mux), and always closes it (async context
  manager, also on errors and cancellation).
* Sends a tone at exact 20 ms pacing: packet *n* is scheduled for
  ``t0 + n * 20 ms`` on the loop's monotonic clock, never "20 ms after the
  last one", so lateness never accumulates into drift.
* Receives the far end's stream; latches onto the address its RTP actually
  comes from when that differs from the SDP (symmetric RTP) and reports it.
* Sends RTCP SR (with a report block once we receive) and reads SR/RR to
  compute the round-trip time and learn the far end's view of our stream.
* RFC 4733 DTMF out, digits in; a marker burst for an echo service's round trip.
* STUN on the media socket itself (:attr:`MediaSession.stun`): datagrams
  whose first byte is 0-3 are STUN (RFC 7983 §7) and go to the STUN client,
  never to the RTP statistics or the latching, so the offer can carry the
  RTP port's own public mapping.
* Bounded whatever arrives: statistics are O(1), kept audio and captured
  packets are capped.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import math
import os
import random
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType

from qsipctl.addr import host_port, same_ip
from qsipctl.media.codec import Decoder, FrameSource
from qsipctl.media.pacer import FRAME, Pacer
from qsipctl.media.result import FarEndView, HoldPeriod, MediaResult, Pacing
from qsipctl.rtp import dtmf
from qsipctl.rtp.errors import RtpError
from qsipctl.rtp.packet import RtpPacket, is_rtcp
from qsipctl.rtp.rtcp import (
    Bye,
    ReceiverReport,
    ReportBlock,
    RtcpPacket,
    SenderReport,
    SourceDescription,
    ntp_middle,
    ntp_time,
    parse_compound,
    serialize_compound,
)
from qsipctl.rtp.srtp import SrtpContext
from qsipctl.rtp.stats import ReceiveStats, quality, rtt_seconds
from qsipctl.rtp.tone import ToneAnalysis, analyse, goertzel_power
from qsipctl.sdp.negotiate import Codec
from qsipctl.stun.transport import SharedPort, is_stun

KEEP_FRAMES = 25  # 0.5 s of the far end's audio kept for analysis
MAX_CATCH_UP = 5  # packets sent at once after a stall; beyond that the gap is skipped
MARKER_HZ = 1400
NO_RTP_SECONDS = 5.0
MAX_STUN_QUEUED = 32  # STUN datagrams nobody reads yet (a flood is dropped, oldest first)
MAX_HOLDS = 64  # hold periods kept: a far end re-INVITEing in a loop stays bounded
_RTP_HEADER = struct.Struct("!BBHII")

Address = tuple[str, int]


class MediaError(RtpError):
    """The media socket could not be set up (no free port in the range, bad address)."""


@dataclass(frozen=True, slots=True)
class MediaConfig:
    """Everything the session needs, as negotiated: nothing here is read from the network."""

    codec: Codec
    local_host: str
    port_range: tuple[int, int] = (16384, 32768)
    send_payload_type: int | None = None  # the far end's number for the codec
    remote: Address | None = None
    remote_rtcp: Address | None = None
    rtcp_mux: bool = False
    tone_hz: int = 440
    tone_dbfs: float = -14.0
    telephone_event_pt: int | None = 101  # the far end's number; None = no RFC 4733
    srtp_local_key: bytes | None = field(default=None, repr=False)
    srtp_remote_key: bytes | None = field(default=None, repr=False)
    rtcp_interval: float = 5.0
    latch: bool = True
    analyse_audio: bool = True
    capture_limit: int = 0  # packets kept for --pcap (0 = none)
    cname: str = "qsipctl"


@dataclass(frozen=True, slots=True)
class Captured:
    time: float  # wall clock
    src: Address
    dst: Address
    data: bytes


class _Endpoint(asyncio.DatagramProtocol):
    def __init__(self, on_datagram: Callable[[bytes, Address], None]) -> None:
        self.on_datagram = on_datagram

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        port = addr[1]
        assert isinstance(port, int)
        self.on_datagram(data, (str(addr[0]), port))

    def error_received(self, exc: Exception) -> None:
        pass  # ICMP port unreachable while the far end is not up yet: not our concern here


def bind_pair(host: str, port_range: tuple[int, int], mux: bool) -> tuple[socket.socket, ...]:
    """UDP socket(s) on an even port of the range (and port+1 for RTCP without mux)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    lo, hi = port_range
    first = lo + (lo % 2)
    evens = list(range(first, hi, 2))
    if not evens:
        raise MediaError(f"RTP port range {lo}-{hi} has no even port")
    start = random.randrange(len(evens))
    for port in evens[start:] + evens[:start]:
        if not mux and port + 1 > hi:
            continue
        socks: list[socket.socket] = []
        try:
            for p in (port,) if mux else (port, port + 1):
                s = socket.socket(family, socket.SOCK_DGRAM)
                socks.append(s)
                s.setblocking(False)
                s.bind((host, p))
            return tuple(socks)
        except OSError:
            for s in socks:
                s.close()
    raise MediaError(f"no free even UDP port pair on {host} in {lo}-{hi}")


class MediaSession:
    """``async with MediaSession(cfg) as media: media.start(); await media.run(5)``."""

    def __init__(self, config: MediaConfig, clock: Callable[[], float] = time.time) -> None:
        self.cfg = config
        self.wall = clock
        self.ssrc = int.from_bytes(os.urandom(4), "big")
        self._seq = random.randrange(0x10000)
        self._ts0 = random.randrange(1 << 32)
        self._rtp_t: asyncio.DatagramTransport | None = None
        self._rtcp_t: asyncio.DatagramTransport | None = None
        self.local: Address = ("", 0)
        self.remote = config.remote
        self.remote_rtcp = config.remote_rtcp
        self.sdp_remote = config.remote  # where the SDP said; ``remote`` may latch away
        self.actual_source: Address | None = None
        self.latched = False
        self.srtp = (
            SrtpContext(config.srtp_local_key, config.srtp_remote_key)
            if config.srtp_local_key and config.srtp_remote_key
            else None
        )
        self.stats = ReceiveStats(config.codec.clock_rate)
        self.dtmf_in = dtmf.DtmfReceiver()
        self.unexpected = 0
        self.sent = 0
        self.sent_octets = 0
        self.rtcp_sent = 0
        self.rtcp_received = 0
        self.captured: list[Captured] = []
        self.capture_dropped = 0
        # STUN from/to the RTP port (RFC 7983): a Binding sent through it leaves from the
        # RTP port, so its answer is that port's public mapping
        self.stun = SharedPort(self, MAX_STUN_QUEUED)
        self._source = FrameSource(config.codec)
        for frequency, level in ((config.tone_hz, config.tone_dbfs), (0, 0.0), (MARKER_HZ, -10.0)):
            self._source.prepare(frequency, level)  # ~20 ms of table building, before t0
        self._kept: collections.deque[bytes] = collections.deque(maxlen=KEEP_FRAMES)
        self._send_times: collections.deque[float] = collections.deque(maxlen=3000)
        self._slots: collections.deque[tuple[str, dtmf.EventPacket, bool] | None] = (
            collections.deque()
        )
        self._event_ts = 0
        self.dtmf_sent = ""
        self._t0 = 0.0
        self._n = 0
        self._pacer: Pacer | None = None
        self._pace_token: int | None = None
        self._rtcp_timer: asyncio.TimerHandle | None = None
        self._started_at: float | None = None
        self._first_rx: float | None = None
        self._last_sr: tuple[int, float] | None = None  # (LSR, arrival monotonic)
        self._rtt: float | None = None
        self._far: FarEndView | None = None
        self._mode = "tone"  # "tone", "silence", "marker"
        self._marker_sent: float | None = None
        self._marker_heard: float | None = None
        self._marker_decoder: Decoder | None = None
        self._remote_ssrc: int | None = None
        self._round_trip: float | None = None
        # hold (RFC 3264 §8.4): the "paused" switch of the sender, see set_direction()
        self.paused = False
        self._rtcp_muted = False
        self._talkspurt = False  # the next packet starts a talkspurt: marker bit
        self._paused_at = 0.0
        self._pause_spans: collections.deque[tuple[float, float]] = collections.deque(
            maxlen=MAX_HOLDS
        )
        self._holds: list[HoldPeriod] = []
        self._open_hold: tuple[float, str, str] | None = None  # (start_s, offered, answered)

    # --- lifetime -------------------------------------------------------------------------

    async def __aenter__(self) -> MediaSession:
        loop = asyncio.get_running_loop()
        socks = bind_pair(self.cfg.local_host, self.cfg.port_range, self.cfg.rtcp_mux)
        try:
            self._rtp_t, _ = await loop.create_datagram_endpoint(
                lambda: _Endpoint(self._on_rtp_port), sock=socks[0]
            )
            if len(socks) > 1:
                self._rtcp_t, _ = await loop.create_datagram_endpoint(
                    lambda: _Endpoint(self._on_rtcp_port), sock=socks[1]
                )
        except BaseException:
            for s in socks:
                s.close()
            await self.aclose()
            raise
        name = socks[0].getsockname()
        self.local = (name[0], name[1])
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop sending, say RTCP BYE when we can, close every socket (idempotent)."""
        self.stop()
        if self._rtp_t is not None and self.remote is not None and self.sent:
            with contextlib.suppress(OSError):
                self._send_rtcp(bye=True)
        for t in (self._rtp_t, self._rtcp_t):
            if t is not None:
                t.close()
        self._rtp_t = self._rtcp_t = None
        await asyncio.sleep(0)  # let the transports' close callbacks run

    @property
    def closed(self) -> bool:
        return self._rtp_t is None

    def reconfigure(self, config: MediaConfig) -> None:
        """Apply what the answer agreed (codec, payload numbers, SRTP keys) before start().

        The socket was bound before the offer could name its port, so the
        session exists before the codec is known; everything codec-bound is
        rebuilt here.  rtcp-mux cannot be switched on after binding a pair:
        with mux agreed we send RTCP to the RTP port and still read both.
        """
        if self._pace_token is not None:
            raise MediaError("reconfigure() after start()")
        self.cfg = config
        self.srtp = (
            SrtpContext(config.srtp_local_key, config.srtp_remote_key)
            if config.srtp_local_key and config.srtp_remote_key
            else None
        )
        self.stats = ReceiveStats(config.codec.clock_rate)
        self._source = FrameSource(config.codec)
        for frequency, level in ((config.tone_hz, config.tone_dbfs), (0, 0.0), (MARKER_HZ, -10.0)):
            self._source.prepare(frequency, level)

    def set_remote(self, rtp: Address, rtcp: Address | None = None) -> None:
        """Where to send (from the answer); latching may still move it."""
        self.remote = self.sdp_remote = rtp
        self.remote_rtcp = rtcp or (rtp if self.cfg.rtcp_mux else (rtp[0], rtp[1] + 1))

    def start(self) -> None:
        """Begin sending on the shared 20 ms clock; RTCP every interval."""
        loop = asyncio.get_running_loop()
        self._pacer = Pacer.for_loop(loop)
        self._n = 0
        self._source.encode_ahead(self.cfg.tone_hz, self.cfg.tone_dbfs)  # G.722: frame 0
        self._pace_token, self._t0 = self._pacer.add(self._tick)
        self._started_at = self._t0
        first_rtcp = min(1.0, self.cfg.rtcp_interval) * random.uniform(0.5, 1.0)
        self._rtcp_timer = loop.call_at(self._t0 + first_rtcp, self._rtcp_tick)

    def stop(self) -> None:
        if self._pacer is not None and self._pace_token is not None:
            self._pacer.remove(self._pace_token)
        self._pace_token = None
        if self._rtcp_timer is not None:
            self._rtcp_timer.cancel()
        self._rtcp_timer = None

    async def run(self, seconds: float) -> None:
        if self._pace_token is None:
            self.start()
        await asyncio.sleep(seconds)

    # --- sending ------------------------------------------------------------------------

    def _tick(self, now: float) -> None:
        """Called by the pacer on each grid time: send every packet whose time has come."""
        due = int((now - self._t0) / FRAME + 1e-6) + 1
        if due - self._n > MAX_CATCH_UP:
            self._n = due - MAX_CATCH_UP  # a stall over 100 ms: leave a timestamp gap
        while self._n < due:
            self._send_frame(self._n, now)
            self._n += 1

    def _send_frame(self, n: int, now: float) -> None:
        if self.remote is None or self._rtp_t is None or self.paused:
            return  # paused (held): the grid and the timestamps run on, nothing is sent
        ts = (self._ts0 + n * self.cfg.codec.timestamp_step) & 0xFFFFFFFF
        marker = n == 0 or self._talkspurt
        self._talkspurt = False
        slot = self._slots.popleft() if self._slots else None
        if slot is not None and self.cfg.telephone_event_pt is not None:
            digit, packet, last = slot
            if packet.tick == 0:
                self._event_ts = ts
            self._send_rtp(
                self.cfg.telephone_event_pt, packet.marker, self._event_ts, packet.payload, now
            )
            if last:
                self.dtmf_sent += digit
            return
        frequency, level = {
            "tone": (self.cfg.tone_hz, self.cfg.tone_dbfs),
            "silence": (0, 0.0),
            "marker": (MARKER_HZ, -10.0),
        }[self._mode]
        if self._mode == "marker" and self._marker_sent is None:
            self._marker_sent = now
        pt = self.cfg.send_payload_type
        pt = self.cfg.codec.payload_type if pt is None else pt
        self._send_rtp(pt, marker, ts, self._source.next(frequency, level), now)
        self._source.encode_ahead(frequency, level)  # G.722: the next frame, now it has left

    def _send_rtp(self, pt: int, marker: bool, ts: int, payload: bytes, now: float) -> None:
        header = _RTP_HEADER.pack(0x80, pt | (0x80 if marker else 0), self._seq, ts, self.ssrc)
        self._seq = (self._seq + 1) & 0xFFFF
        data = header + payload
        wire = self.srtp.protect(data) if self.srtp else data
        assert self._rtp_t is not None and self.remote is not None
        self._rtp_t.sendto(wire, self.remote)
        self.sent += 1
        self.sent_octets += len(payload)
        self._send_times.append(time.monotonic())  # = loop.time(): when it really left
        self._capture(self.local, self.remote, wire)

    def send_dtmf(self, digits: str, duration_ms: int = 100, gap_ms: int = 60) -> float:
        """Queue RFC 4733 events; returns the seconds they take. ValueError for a bad digit."""
        if self.cfg.telephone_event_pt is None:
            raise MediaError("the far end did not offer telephone-event: no RFC 4733 DTMF")
        gap_ticks = max(1, round(gap_ms / 20))
        slots: list[tuple[str, dtmf.EventPacket, bool] | None] = []
        for digit in digits:
            packets = dtmf.event_packets(digit, duration_ms)  # ValueError before anything queues
            slots += [(digit, p, i == len(packets) - 1) for i, p in enumerate(packets)]
            slots += [None] * gap_ticks  # audio between events
        self._slots.extend(slots)
        return len(slots) * FRAME

    async def measure_round_trip(self, timeout: float = 3.0, quiet: float = 0.4) -> float | None:
        """Echo service: silence, then a 1400 Hz burst; seconds until it comes back, or None."""
        loop = asyncio.get_running_loop()
        self._mode = "silence"
        await asyncio.sleep(quiet)
        self._marker_sent = self._marker_heard = None
        self._marker_decoder = Decoder(self.cfg.codec)
        self._mode = "marker"
        deadline = loop.time() + timeout
        while self._marker_heard is None and loop.time() < deadline:
            await asyncio.sleep(0.01)
            if self._marker_sent is not None and loop.time() - self._marker_sent > 0.2:
                self._mode = "silence"
        self._mode = "tone"
        self._marker_decoder = None
        if self._marker_heard is None or self._marker_sent is None:
            return None
        self._round_trip = self._marker_heard - self._marker_sent
        return self._round_trip

    # --- hold / resume (RFC 3264 §8.4) -----------------------------------------------------

    def set_direction(self, answered: str, offered: str = "", send_rtcp: bool = True) -> None:
        """Apply the direction we answered a far-end re-offer with (``offered`` says how the
        far end put it, for the report).

        The sender's "paused" switch: while our answer says we must not send
        (recvonly, inactive) no RTP leaves, but the 20 ms grid and the RTP
        timestamps run on, so sending resumes on the grid with a timestamp gap
        as long as the pause and the marker bit of a new talkspurt.  RTCP goes
        on while held (RFC 3264 §5.1) unless the far end gave no address
        (``c=0.0.0.0``).  A direction other than sendrecv opens a hold period;
        the far end's silence in it is not judged as one-way audio.
        """
        now = asyncio.get_running_loop().time()
        t = round(now - (self._started_at if self._started_at is not None else now), 3)
        if self._open_hold is not None and self._open_hold[1:] != (offered, answered):
            if len(self._holds) < MAX_HOLDS:
                self._holds.append(HoldPeriod(self._open_hold[0], t, *self._open_hold[1:]))
            self._open_hold = None
            self.stats.restart_timing()  # their timestamps across the hold are no jitter
        if answered != "sendrecv" and self._open_hold is None:
            self._open_hold = (t, offered or f"a={answered}", answered)
        paused = answered not in ("sendrecv", "sendonly")
        if paused and not self.paused:
            self._paused_at = now
        elif self.paused and not paused:
            self._pause_spans.append((self._paused_at, now))
            self._talkspurt = True
        self.paused = paused
        self._rtcp_muted = not send_rtcp

    def hold_periods(self) -> tuple[HoldPeriod, ...]:
        """Every hold period so far; an open one ends "now" only in the held time, not here."""
        if self._open_hold is None:
            return tuple(self._holds)
        return (*self._holds, HoldPeriod(self._open_hold[0], None, *self._open_hold[1:]))

    def _held_seconds(self, elapsed: float) -> float:
        return sum((h.end_s if h.end_s is not None else elapsed) - h.start_s
                   for h in self.hold_periods())  # fmt: skip

    # --- RTCP ---------------------------------------------------------------------------

    def _rtcp_tick(self) -> None:
        loop = asyncio.get_running_loop()
        with contextlib.suppress(OSError):
            self._send_rtcp()
        interval = self.cfg.rtcp_interval * random.uniform(0.5, 1.5)  # RFC 3550 6.3.1
        self._rtcp_timer = loop.call_at(loop.time() + interval, self._rtcp_tick)

    def _send_rtcp(self, bye: bool = False) -> None:
        if self._rtcp_muted:
            return  # the far end's SDP gave no address (c=0.0.0.0): nothing goes there
        if self.remote_rtcp is None:
            if self.remote is None:
                return
            self.set_remote(self.remote)
        assert self.remote_rtcp is not None
        transport = self._rtcp_t or self._rtp_t
        if transport is None:
            return
        blocks: tuple[ReportBlock, ...] = ()
        if self.stats.received:
            lsr, dlsr = 0, 0
            if self._last_sr is not None:
                lsr = self._last_sr[0]
                dlsr = int((asyncio.get_running_loop().time() - self._last_sr[1]) * 65536)
            blocks = (self.stats.report_block(lsr, dlsr),)
        report: RtcpPacket
        if self.sent:
            elapsed = asyncio.get_running_loop().time() - self._t0
            rtp_ts = self._ts0 + int(elapsed * self.cfg.codec.clock_rate)
            report = SenderReport(self.ssrc, ntp_time(self.wall()), rtp_ts, self.sent,
                                  self.sent_octets, blocks)  # fmt: skip
        else:
            report = ReceiverReport(self.ssrc, blocks)
        packets: list[RtcpPacket] = [report, SourceDescription(((self.ssrc, self.cfg.cname),))]
        if bye:
            packets.append(Bye((self.ssrc,)))
        data = serialize_compound(packets)
        wire = self.srtp.protect_rtcp(data) if self.srtp else data
        transport.sendto(wire, self.remote_rtcp)
        self.rtcp_sent += 1
        self._capture((self.local[0], self.local[1] + (0 if self._rtcp_t is None else 1)),
                      self.remote_rtcp, wire)  # fmt: skip

    def _on_rtcp_port(self, data: bytes, source: Address) -> None:
        self._capture(source, (self.local[0], self.local[1] + 1), data)
        self._rtcp_in(data)

    def _rtcp_in(self, data: bytes) -> None:
        try:
            plain = self.srtp.unprotect_rtcp(data) if self.srtp else data
            packets = parse_compound(plain)
        except RtpError:
            self.unexpected += 1
            return
        self.rtcp_received += 1
        now = asyncio.get_running_loop().time()
        arrival = ntp_middle(ntp_time(self.wall()))
        for p in packets:
            if isinstance(p, SenderReport):
                self._last_sr = (ntp_middle(p.ntp_timestamp), now)
            if isinstance(p, SenderReport | ReceiverReport):
                for block in p.reports:
                    if block.ssrc != self.ssrc:
                        continue
                    rtt = rtt_seconds(arrival, block)
                    if rtt is not None:
                        self._rtt = rtt
                    self._far = FarEndView(
                        round(100 * block.fraction_lost / 256, 2),
                        block.cumulative_lost,
                        round(1000 * block.jitter / self.cfg.codec.clock_rate, 3),
                        block.highest_sequence,
                    )

    # --- receiving ----------------------------------------------------------------------

    def sendto(self, data: bytes, addr: Address) -> None:
        """A datagram from the RTP port other than our RTP (the STUN share's sends)."""
        if self._rtp_t is None:  # closed: like any closed socket's share, nothing goes out
            return
        self._rtp_t.sendto(data, addr)
        self._capture(self.local, addr, data)

    def _on_rtp_port(self, data: bytes, source: Address) -> None:
        self._capture(source, self.local, data)
        if is_stun(data):  # e.g. the answer about our RTP port's public mapping
            self.stun._put(data, source)
            return
        if self.cfg.rtcp_mux and is_rtcp(data):
            self._rtcp_in(data)
            return
        if not self._source_ok(source):
            self.unexpected += 1
            return
        try:
            plain = self.srtp.unprotect(data) if self.srtp else data
            pkt = RtpPacket.parse(plain)
        except RtpError:
            self.unexpected += 1
            return
        if self._remote_ssrc is None:
            self._remote_ssrc = pkt.ssrc
            self.stats.ssrc = pkt.ssrc
        elif pkt.ssrc != self._remote_ssrc:
            self.unexpected += 1
            return
        now = asyncio.get_running_loop().time()
        if self._first_rx is None:
            self._first_rx = now
        if pkt.payload_type == self.cfg.telephone_event_pt:
            # Events share the stream's sequence numbers but not its timing (their
            # timestamp is the event start): count them, leave jitter alone.
            self.stats.feed(pkt.sequence, pkt.timestamp, pkt.payload_type, now, timing=False)
            self.dtmf_in.feed(pkt.timestamp, pkt.payload)
            return
        self.stats.feed(pkt.sequence, pkt.timestamp, pkt.payload_type, now)
        if self.cfg.analyse_audio:
            self._kept.append(pkt.payload)
        if self._marker_decoder is not None and self._marker_sent is not None:
            self._check_marker(pkt.payload, now)

    def _source_ok(self, source: Address) -> bool:
        """Symmetric RTP: follow the first source when it is not where the SDP pointed."""
        if self.actual_source is None:
            self.actual_source = source
            expected = self.remote
            differs = expected is None or not (
                same_ip(expected[0], source[0]) and expected[1] == source[1]
            )
            if differs and self.cfg.latch:
                self.latched = expected is not None
                self.remote = source
                if not self.cfg.rtcp_mux:
                    self.remote_rtcp = (source[0], source[1] + 1)
            return True
        return source == self.actual_source

    def _check_marker(self, payload: bytes, now: float) -> None:
        assert self._marker_decoder is not None
        samples = self._marker_decoder.decode(payload)
        rate = self.cfg.codec.sample_rate
        power = goertzel_power(samples, MARKER_HZ, rate)
        total = sum(x * x for x in samples) * len(samples) / 2
        if total > 0 and power > 0.5 * total and power > (len(samples) * 100) ** 2:
            self._marker_heard = now

    def _capture(self, src: Address, dst: Address, data: bytes) -> None:
        if not self.cfg.capture_limit:
            return
        if len(self.captured) >= self.cfg.capture_limit:
            self.capture_dropped += 1
            return
        self.captured.append(Captured(self.wall(), src, dst, bytes(data)))

    # --- results ------------------------------------------------------------------------

    @property
    def send_times(self) -> tuple[float, ...]:
        """When the last (up to 3000) RTP packets left, on the loop's clock (for benchmarks)."""
        return tuple(self._send_times)

    def pacing(self) -> Pacing:
        times = list(self._send_times)
        gaps = [b - a for a, b in itertools.pairwise(times) if not self._across_pause(a, b)]
        if not gaps:
            return Pacing(len(times), 0.0, 0.0, 0.0, 0.0)
        devs = sorted(abs(g - FRAME) * 1000 for g in gaps)
        return Pacing(
            len(times),
            round(1000 * sum(gaps) / len(gaps), 3),
            round(devs[len(devs) // 2], 3),
            round(devs[min(len(devs) - 1, math.ceil(0.99 * len(devs)) - 1)], 3),
            round(devs[-1], 3),
        )

    def _across_pause(self, a: float, b: float) -> bool:
        """The gap between two sends spans a hold pause: not a pacing interval."""
        return any(a <= p0 and p1 <= b for p0, p1 in self._pause_spans)

    def heard(self) -> ToneAnalysis:
        if not self._kept:
            return ToneAnalysis("none", None, None, None)
        decoder = Decoder(self.cfg.codec)
        samples = decoder.decode(b"".join(self._kept))
        return analyse(samples, self.cfg.codec.sample_rate)

    def result(self) -> MediaResult:
        rx = self.stats.snapshot()
        audio = self.heard() if self.cfg.analyse_audio else ToneAnalysis("none", None, None, None)
        rtt_ms = None if self._rtt is None else round(self._rtt * 1000, 2)
        r = m = None
        if rx.expected:
            r, m = quality(self.cfg.codec.name, rx.loss_percent, rtt_ms, rx.jitter_ms)
        first = None
        if self._first_rx is not None and self._started_at is not None:
            first = round(1000 * (self._first_rx - self._started_at), 1)
        rt = None if self._round_trip is None else round(1000 * self._round_trip, 1)
        return MediaResult(
            codec=self.cfg.codec.name,
            local=host_port(*self.local),
            remote_sdp=host_port(*self.sdp_remote) if self.sdp_remote else None,
            remote_actual=host_port(*self.actual_source) if self.actual_source else None,
            latched=self.latched,
            srtp=self.srtp is not None,
            sent_packets=self.sent,
            sent_octets=self.sent_octets,
            received=rx,
            unexpected_packets=self.unexpected,
            first_packet_ms=first,
            far_end=self._far,
            rtt_ms=rtt_ms,
            rtcp_sent=self.rtcp_sent,
            rtcp_received=self.rtcp_received,
            audio=audio,
            r_factor=r,
            mos=m,
            dtmf_sent=self.dtmf_sent,
            dtmf_received=self.dtmf_in.digits,
            round_trip_ms=rt,
            pacing=self.pacing(),
            verdicts=self._verdicts(rx, audio),
            held=self.hold_periods(),
        )

    def _verdicts(self, rx: object, audio: ToneAnalysis) -> tuple[str, ...]:
        out: list[str] = []
        started = self._started_at
        elapsed = 0.0 if started is None else asyncio.get_running_loop().time() - started
        held = self._held_seconds(elapsed)
        waited = elapsed - held  # the far end may stay silent while it holds the call
        if self.stats.received == 0:
            out.append(
                f"no RTP at all for {waited:.0f} s"
                + (f" (not counting the {held:.0f} s the far end held the call)" if held else "")
                + ": one-way audio, the far end's audio does not reach us (NAT/firewall on "
                "the way to us, or a wrong address in their SDP)"
                if waited >= NO_RTP_SECONDS or waited > 1
                else "no RTP received yet"
                + (f" (the far end held the call for {held:.0f} s of it)" if held else "")
            )
        elif audio.kind == "silence":
            out.append("RTP arrives but carries silence")
        elif audio.kind in ("tone", "noise"):
            out.append(f"audio from the far end: {audio.describe()}")
        out += [h.describe() for h in self.hold_periods()]
        if self.latched and self.actual_source and self.sdp_remote:
            out.append(
                f"the far end's RTP comes from {host_port(*self.actual_source)}, not from "
                f"{host_port(*self.sdp_remote)} as its SDP says: a NAT is in between; we "
                "answer to where it comes from (symmetric RTP)"
            )
        return tuple(out)
