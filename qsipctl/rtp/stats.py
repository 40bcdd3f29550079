"""Receive statistics of one RTP stream (RFC 3550 appendix A) and a call-quality estimate.

* Sequence bookkeeping as A.1 (extended sequence numbers across wrap, resync
  after a big jump), expected/lost as A.3, interarrival jitter as A.8
  (J += (|D| - J) / 16, in timestamp units).
* Duplicates are found with a bitmap of the last ``WINDOW`` sequence numbers,
  so memory stays constant whatever a peer floods us with; a packet older
  than the highest seen and not a duplicate counts as reordered.
* Round-trip time from a report block about our stream: RTT = A - LSR - DLSR
  (RFC 3550 6.4.1), in 1/65536 s.
* :func:`r_factor` is the simplified ITU-T G.107 E-model documented there.
"""

from __future__ import annotations

from dataclasses import dataclass

from qsipctl.rtp.rtcp import ReportBlock

MAX_DROPOUT = 3000
MAX_MISORDER = 100
WINDOW = 1024


@dataclass(frozen=True, slots=True)
class StreamStats:
    """One direction's figures, ready for JSON (times in ms)."""

    packets: int
    expected: int
    lost: int  # may be negative with duplicates, as RFC 3550 allows; we report >= 0
    duplicates: int
    reordered: int
    jitter_ms: float  # the running estimate after the last packet (what RTCP reports)
    mean_jitter_ms: float  # its mean over the packets (what Wireshark's RTP analysis shows)
    max_jitter_ms: float
    ssrc: int | None
    payload_types: tuple[int, ...]

    @property
    def loss_percent(self) -> float:
        return 100.0 * self.lost / self.expected if self.expected else 0.0


class ReceiveStats:
    """Feed every RTP packet of one source; read :meth:`snapshot` any time."""

    def __init__(self, clock_rate: int) -> None:
        self.clock_rate = clock_rate
        self.ssrc: int | None = None
        self.received = 0
        self.duplicates = 0
        self.reordered = 0
        self._base_seq = 0
        self._max_seq = 0
        self._cycles = 0
        self._bad_seq = -1
        self._seen = 0  # bitmap: bit i set = max_ext - i was received
        self._transit: float | None = None
        self.jitter = 0.0  # timestamp units (A.8)
        self.max_jitter = 0.0
        self._jitter_sum = 0.0
        self._jitter_n = 0
        self._pts: set[int] = set()
        self._expected_prior = 0
        self._received_prior = 0

    def restart_timing(self) -> None:
        """Start a new jitter series with the next packet (the far end resumed after a hold:
        its timestamps may have stood still or jumped across the pause; that is no network
        jitter).  Sequence bookkeeping and the jitter so far are kept."""
        self._transit = None

    def _ext_max(self) -> int:
        return self._cycles + self._max_seq

    def feed(
        self, sequence: int, timestamp: int, payload_type: int, arrival: float, timing: bool = True
    ) -> None:
        """One packet; ``arrival`` in seconds on any monotonic clock.

        ``timing=False`` counts the packet without a jitter sample (RFC 4733
        events carry the event's start timestamp, not their send time).
        """
        if self.received == 0:
            self._init(sequence)
        elif not self._update_seq(sequence):
            return
        if len(self._pts) < 16:
            self._pts.add(payload_type)
        if not timing:
            return
        # A.8: transit in timestamp units; the clock offset cancels in the difference.
        transit = arrival * self.clock_rate - timestamp
        if self._transit is not None:
            d = abs(transit - self._transit)
            if d < self.clock_rate * 10:  # a timestamp jump (new talkspurt source) is no jitter
                self.jitter += (d - self.jitter) / 16
                self.max_jitter = max(self.max_jitter, self.jitter)
            self._jitter_sum += self.jitter
            self._jitter_n += 1
        self._transit = transit

    def _init(self, seq: int) -> None:
        self._base_seq = seq
        self._max_seq = seq
        self._cycles = 0
        self._bad_seq = -1
        self._seen = 1
        self.received = 1

    def _update_seq(self, seq: int) -> bool:
        """A.1 without probation (a call's peer is known); False drops the packet."""
        udelta = (seq - self._max_seq) & 0xFFFF
        if 0 < udelta < MAX_DROPOUT:
            if seq < self._max_seq:
                self._cycles += 1 << 16
            self._max_seq = seq
            self._seen = ((self._seen << udelta) | 1) & ((1 << WINDOW) - 1)
        elif udelta == 0:
            self.duplicates += 1
            return False
        elif udelta <= 0x10000 - MAX_MISORDER:
            if seq == self._bad_seq:  # two in a row: the source restarted, resync
                self._init(seq)
                return True
            self._bad_seq = (seq + 1) & 0xFFFF
            return False
        else:  # late packet within the misorder window
            back = 0x10000 - udelta
            # Older than the first packet we saw (the stream's start arrived reordered):
            # it belongs to the stream, so the count of expected packets starts there.
            self._base_seq = min(self._base_seq, self._ext_max() - back)
            if back < WINDOW:
                if self._seen >> back & 1:
                    self.duplicates += 1
                    return False
                self._seen |= 1 << back
            self.reordered += 1
        self.received += 1
        return True

    def expected(self) -> int:
        return self._ext_max() - self._base_seq + 1 if self.received else 0

    def snapshot(self) -> StreamStats:
        expected = self.expected()
        return StreamStats(
            packets=self.received + self.duplicates,
            expected=expected,
            lost=max(0, expected - self.received),
            duplicates=self.duplicates,
            reordered=self.reordered,
            jitter_ms=round(1000 * self.jitter / self.clock_rate, 3),
            mean_jitter_ms=round(
                1000 * self._jitter_sum / max(1, self._jitter_n) / self.clock_rate, 3
            ),
            max_jitter_ms=round(1000 * self.max_jitter / self.clock_rate, 3),
            ssrc=self.ssrc,
            payload_types=tuple(sorted(self._pts)),
        )

    def report_block(self, lsr: int, dlsr: int) -> ReportBlock:
        """The reception report about this source for our next SR/RR (A.3 fraction lost)."""
        expected = self.expected()
        lost = expected - self.received
        exp_int = expected - self._expected_prior
        rec_int = self.received - self._received_prior
        self._expected_prior, self._received_prior = expected, self.received
        lost_int = exp_int - rec_int
        fraction = 0 if exp_int == 0 or lost_int <= 0 else (lost_int << 8) // exp_int
        lost = max(-(1 << 23), min(lost, (1 << 23) - 1))
        return ReportBlock(self.ssrc or 0, min(fraction, 255), lost, self._ext_max(),
                           int(self.jitter), lsr, dlsr)  # fmt: skip


def rtt_seconds(arrival_ntp_middle: int, block: ReportBlock) -> float | None:
    """RFC 3550 6.4.1: A - LSR - DLSR; None when the peer has seen no SR of ours."""
    if block.lsr == 0:
        return None
    rtt = (arrival_ntp_middle - block.lsr - block.dlsr) & 0xFFFFFFFF
    return rtt / 65536 if rtt < 0x80000000 else 0.0


# --- Simplified E-model (ITU-T G.107, narrowband; equipment factors from G.113) ---
# R = R0 - Is - Id - Ie,eff + A with the G.107 defaults R0 - Is = 93.2 and A = 0.
# Id (delay impairment) uses the widely used fit of the G.107 curve for a
# mouth-to-ear delay d in ms (Cole & Rosenbluth, 2001):
#   Id = 0.024 d + 0.11 (d - 177.3) H(d - 177.3)
# Ie,eff = Ie + (95 - Ie) * Ppl / (Ppl / BurstR + Bpl), G.107 7-29, BurstR = 1 (random loss).
# d = RTT/2 + jitter buffer (2 x jitter) + packetization 20 ms + codec look-ahead.
# G.722 is rated on the same narrowband scale with G.711's figures: a
# wideband R (G.107.1, up to 129) would need its own scale, and the verdict
# ("is the path good enough") does not change.
EQUIPMENT = {"PCMU": (0.0, 4.3), "PCMA": (0.0, 4.3), "G722": (0.0, 4.3)}  # (Ie, Bpl)


def r_factor(codec: str, loss_percent: float, one_way_delay_ms: float) -> float:
    ie, bpl = EQUIPMENT.get(codec.upper(), (0.0, 4.3))
    d = max(0.0, one_way_delay_ms)
    idd = 0.024 * d + (0.11 * (d - 177.3) if d > 177.3 else 0.0)
    ppl = max(0.0, loss_percent)
    ie_eff = ie + (95 - ie) * ppl / (ppl + bpl)
    return max(0.0, min(100.0, 93.2 - idd - ie_eff))


def mos(r: float) -> float:
    """G.107 annex B: R to MOS-CQE."""
    if r <= 0:
        return 1.0
    if r >= 100:
        return 4.5
    return 1 + 0.035 * r + r * (r - 60) * (100 - r) * 7e-6


def mouth_to_ear_ms(rtt_ms: float | None, jitter_ms: float) -> float:
    """The delay the E-model charges: half the RTT, a 2x-jitter buffer, one packet."""
    return (rtt_ms or 0.0) / 2 + 2 * jitter_ms + 20.0


def quality(codec: str, loss_percent: float, rtt_ms: float | None, jitter_ms: float
            ) -> tuple[float, float]:  # fmt: skip
    """(R, MOS), rounded for reports."""
    r = r_factor(codec, loss_percent, mouth_to_ear_ms(rtt_ms, jitter_ms))
    return round(r, 1), round(mos(r), 2)
