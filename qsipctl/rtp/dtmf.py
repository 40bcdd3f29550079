"""RFC 4733 telephone-events (DTMF named events) sent and received, sans-IO.

Sender: one event is a run of packets sharing the event's start timestamp:
the first with the marker bit, continuation packets every 20 ms whose
duration grows by the packet interval, and the final duration in an end
packet (E bit) sent three times (RFC 4733 section 2.5.1.4), each with its
own sequence number.  Receiver: reports each digit once, keyed by the
event's timestamp, whether or not its first or end packets were lost.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from qsipctl.rtp.errors import RtpError

DIGITS = "0123456789*#ABCD"
END_REPEATS = 3


def event_code(digit: str) -> int:
    index = DIGITS.find(digit.upper())
    if index < 0 or len(digit) != 1:
        raise ValueError(f"{digit!r} is not a DTMF digit (0-9, *, #, A-D)")
    return index


@dataclass(frozen=True, slots=True)
class TelephoneEvent:
    """The 4-octet payload of RFC 4733 section 2.3."""

    event: int
    end: bool
    volume: int  # 0-63, -dBm0
    duration: int  # RTP timestamp units

    def serialize(self) -> bytes:
        return struct.pack("!BBH", self.event, (0x80 if self.end else 0) | (self.volume & 0x3F),
                           min(self.duration, 0xFFFF))  # fmt: skip

    @classmethod
    def parse(cls, payload: bytes) -> TelephoneEvent:
        if len(payload) < 4:
            raise RtpError(f"telephone-event payload of {len(payload)} bytes, expected 4")
        event, flags, duration = struct.unpack_from("!BBH", payload)
        return cls(event, bool(flags & 0x80), flags & 0x3F, duration)

    @property
    def digit(self) -> str | None:
        return DIGITS[self.event] if self.event < len(DIGITS) else None


@dataclass(frozen=True, slots=True)
class EventPacket:
    """One packet to send: payload, marker, and its offset (packets) from the event start."""

    payload: bytes
    marker: bool
    tick: int  # packet intervals after the event's start (one packet per tick)


def event_packets(digit: str, duration_ms: int = 100, volume: int = 10, step: int = 160
                  ) -> list[EventPacket]:  # fmt: skip
    """All packets for one digit of ``duration_ms`` (``step`` = timestamp units per 20 ms).

    The caller stamps them: every packet carries the event's start timestamp
    and a fresh sequence number.  The end packet's duration is the full event
    length; it goes out three times, on three consecutive ticks.
    """
    code = event_code(digit)
    ticks = max(1, round(duration_ms / 20))
    out = [
        EventPacket(TelephoneEvent(code, False, volume, step * (i + 1)).serialize(), i == 0, i)
        for i in range(ticks - 1)
    ]
    end = TelephoneEvent(code, True, volume, step * ticks).serialize()
    # The end packet goes out three times, one packet interval apart, so that a short
    # burst of loss cannot take all three (RFC 4733 2.5.1.4); same timestamp and duration.
    out += [EventPacket(end, not out and i == 0, ticks - 1 + i) for i in range(END_REPEATS)]
    return out


@dataclass(frozen=True, slots=True)
class ReceivedDigit:
    digit: str
    timestamp: int
    duration: int  # timestamp units, the longest seen
    ended: bool  # an end packet arrived


class DtmfReceiver:
    """Collects digits from telephone-event packets; bounded (at most ``limit`` digits)."""

    def __init__(self, limit: int = 256) -> None:
        self._events: dict[int, ReceivedDigit] = {}
        self._order: list[int] = []
        self.limit = limit
        self.malformed = 0

    def feed(self, timestamp: int, payload: bytes) -> str | None:
        """Record a packet; returns the digit when this packet starts a new event."""
        try:
            ev = TelephoneEvent.parse(payload)
        except RtpError:
            self.malformed += 1
            return None
        digit = ev.digit
        if digit is None:
            return None
        known = self._events.get(timestamp)
        if known is None:
            if len(self._order) >= self.limit:
                return None
            self._order.append(timestamp)
            self._events[timestamp] = ReceivedDigit(digit, timestamp, ev.duration, ev.end)
            return digit
        self._events[timestamp] = ReceivedDigit(
            known.digit, timestamp, max(known.duration, ev.duration), known.ended or ev.end
        )
        return None

    @property
    def digits(self) -> str:
        return "".join(self._events[t].digit for t in self._order)

    @property
    def events(self) -> tuple[ReceivedDigit, ...]:
        return tuple(self._events[t] for t in self._order)
