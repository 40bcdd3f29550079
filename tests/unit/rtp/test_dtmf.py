"""RFC 4733 telephone-events: what goes on the wire, and digits read back."""

from __future__ import annotations

import pytest

from qsipctl.rtp.dtmf import DtmfReceiver, TelephoneEvent, event_code, event_packets


def test_event_codes() -> None:
    assert [event_code(d) for d in "09*#AD"] == [0, 9, 10, 11, 12, 15]
    with pytest.raises(ValueError):
        event_code("x")


def test_packets_for_one_digit() -> None:
    packets = event_packets("5", duration_ms=100, volume=10)
    events = [TelephoneEvent.parse(p.payload) for p in packets]
    # 4 packets before the end (20..80 ms), then the end packet three times.
    assert [e.duration for e in events] == [160, 320, 480, 640, 800, 800, 800]
    assert [e.end for e in events] == [False] * 4 + [True] * 3
    assert [p.marker for p in packets] == [True] + [False] * 6
    assert [p.tick for p in packets] == [0, 1, 2, 3, 4, 5, 6]
    assert {e.event for e in events} == {5} and {e.volume for e in events} == {10}
    assert packets[0].payload == bytes([5, 10, 0, 160])


def test_short_digit_still_marked_and_ended() -> None:
    packets = event_packets("#", duration_ms=20)
    assert [p.marker for p in packets] == [True, False, False]
    assert all(TelephoneEvent.parse(p.payload).end for p in packets)


def test_receiver_reports_each_digit_once() -> None:
    rx = DtmfReceiver()
    got = []
    for ts, digit in ((1000, "1"), (3000, "#")):
        for p in event_packets(digit):
            got.append(rx.feed(ts, p.payload))
    assert [g for g in got if g] == ["1", "#"]
    assert rx.digits == "1#"
    assert all(e.ended and e.duration == 800 for e in rx.events)


def test_receiver_survives_lost_start_and_garbage() -> None:
    rx = DtmfReceiver(limit=2)
    packets = event_packets("7")
    for p in packets[2:]:  # the first two (with the marker) were lost
        rx.feed(500, p.payload)
    rx.feed(600, b"\x01")  # too short
    rx.feed(700, bytes([200, 0, 0, 160]))  # not a DTMF event
    for ts in (800, 900, 1000):
        rx.feed(ts, event_packets("1")[0].payload)
    assert rx.digits == "71" and rx.malformed == 1  # bounded at two digits
