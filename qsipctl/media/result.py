"""What one call's media did, as frozen data ready for JSON and tables."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from qsipctl.rtp.stats import StreamStats
from qsipctl.rtp.tone import ToneAnalysis


@dataclass(frozen=True, slots=True)
class FarEndView:
    """The far end's reception report about our stream (from its RTCP SR/RR)."""

    fraction_lost_percent: float
    cumulative_lost: int
    jitter_ms: float
    highest_sequence: int


@dataclass(frozen=True, slots=True)
class Pacing:
    """Intervals between our own sends, ms (our clock; the capture is the judge)."""

    packets: int
    mean_interval_ms: float
    p50_deviation_ms: float
    p99_deviation_ms: float
    max_deviation_ms: float


@dataclass(frozen=True, slots=True)
class HoldPeriod:
    """A stretch of the call the far end held (or stopped sending) by a re-offer (RFC 3264 §8.4).

    Times are seconds after media start; ``end_s`` is None when the call ended held.
    """

    start_s: float
    end_s: float | None
    offered: str  # how the far end said it: "a=sendonly", "a=inactive", "c=0.0.0.0 (...)"
    answered: str  # our answer's direction: recvonly, inactive, sendonly

    def describe(self) -> str:
        until = f"to t={self.end_s:.1f} s" if self.end_s is not None else "to the end of the call"
        who = "held the call" if self.answered in ("recvonly", "inactive") else "stopped sending"
        sent = "sent no RTP" if self.answered in ("recvonly", "inactive") else "kept sending"
        return (f"the far end {who} from t={self.start_s:.1f} s {until} ({self.offered}; "
                f"we answered {self.answered} and {sent})")  # fmt: skip


@dataclass(frozen=True, slots=True)
class MediaResult:
    codec: str
    local: str
    remote_sdp: str | None  # where the SDP said to send
    remote_actual: str | None  # where the far end's RTP came from
    latched: bool  # remote_actual differs from the SDP: we followed it (a NAT sign)
    srtp: bool
    sent_packets: int
    sent_octets: int
    received: StreamStats
    unexpected_packets: int  # from other sources, other SSRCs, or not RTP at all
    first_packet_ms: float | None  # after media start
    far_end: FarEndView | None
    rtt_ms: float | None
    rtcp_sent: int
    rtcp_received: int
    audio: ToneAnalysis
    r_factor: float | None
    mos: float | None
    dtmf_sent: str
    dtmf_received: str
    round_trip_ms: float | None
    pacing: Pacing
    verdicts: tuple[str, ...]
    held: tuple[HoldPeriod, ...] = ()  # far-end hold/resume by re-offer, in order

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["received"]["loss_percent"] = round(self.received.loss_percent, 3)
        out["audio"]["description"] = self.audio.describe()
        return out
