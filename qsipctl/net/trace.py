"""What went over the wire during one probe: evidence for ``--pcap`` and ``--ladder``.

Two views are kept because they answer different questions: *segments* are
the raw bytes as sent and received (a TCP read may hold half a message, or
two), which is what a capture must show; *messages* are the parsed SIP
messages, which is what a ladder diagram shows.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

Direction = Literal["out", "in"]


@dataclass(frozen=True)
class Segment:
    time: float  # wall clock, seconds since the epoch
    direction: Direction
    data: bytes


@dataclass(frozen=True)
class MessageEvent:
    time: float
    direction: Direction
    summary: str  # start line, e.g. "REGISTER sip:pbx.test SIP/2.0" or "401 Unauthorized"
    cseq: str = ""


@dataclass
class Trace:
    """Everything one connection carried, with both ends' addresses."""

    transport: str  # "udp" | "tcp" | "tls"
    local: tuple[str, int]
    remote: tuple[str, int]
    label: str = ""
    segments: list[Segment] = field(default_factory=list)
    messages: list[MessageEvent] = field(default_factory=list)
    clock: Callable[[], float] = time.time

    def wire(self, direction: Direction, data: bytes) -> None:
        self.segments.append(Segment(self.clock(), direction, bytes(data)))

    def message(self, direction: Direction, summary: str, cseq: str = "") -> None:
        self.messages.append(MessageEvent(self.clock(), direction, summary, cseq))
