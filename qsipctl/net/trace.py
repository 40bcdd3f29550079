"""What went over the wire during one probe: evidence for ``--pcap`` and ``--ladder``.

Two views are kept because they answer different questions: *segments* are
the raw bytes as sent and received (a TCP read may hold half a message, or
two), which is what a capture must show; *messages* are the parsed SIP
messages, which is what a ladder diagram shows.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal

Direction = Literal["out", "in"]


@dataclass(frozen=True, slots=True)
class Segment:
    """Bytes as they went over the wire, one send or one read."""

    time: float  # wall clock, seconds since the epoch
    direction: Direction
    data: bytes


@dataclass(frozen=True, slots=True)
class MessageEvent:
    """One SIP message, as a ladder diagram names it."""

    time: float
    direction: Direction
    summary: str  # start line, e.g. "REGISTER sip:pbx.test SIP/2.0" or "401 Unauthorized"


# A hostile or broken server may flood us for the whole timeout: keep the
# evidence bounded (what is over the cap is counted, not stored).
MAX_TRACE_BYTES = 8 << 20
MAX_TRACE_EVENTS = 10_000


@dataclass(slots=True, eq=False)
class Trace:
    """Everything one connection carried, with both ends' addresses."""

    transport: str  # "udp" | "tcp" | "tls"
    local: tuple[str, int]
    remote: tuple[str, int]
    segments: list[Segment] = field(default_factory=list)
    messages: list[MessageEvent] = field(default_factory=list)
    stored: int = 0  # bytes kept in segments
    dropped: int = 0  # segments and messages over the caps

    def wire(self, direction: Direction, data: bytes) -> None:
        if self.stored + len(data) > MAX_TRACE_BYTES or len(self.segments) >= MAX_TRACE_EVENTS:
            self.dropped += 1
            return
        self.stored += len(data)
        self.segments.append(Segment(time.time(), direction, bytes(data)))

    def message(self, direction: Direction, summary: str) -> None:
        if len(self.messages) >= MAX_TRACE_EVENTS:
            self.dropped += 1
            return
        self.messages.append(MessageEvent(time.time(), direction, summary))
