"""The ladder diagram renders arrows in order, in the right direction, with times."""

from __future__ import annotations

from qsipctl.net.trace import MessageEvent
from qsipctl.report.ladder import render_ladder


def test_arrows_point_the_right_way_with_relative_times() -> None:
    events = [
        MessageEvent(10.0, "out", "REGISTER sip:pbx.test"),
        MessageEvent(10.0015, "in", "401 Unauthorized"),
        MessageEvent(10.003, "out", "REGISTER sip:pbx.test"),
        MessageEvent(10.0042, "in", "200 OK"),
    ]
    text = render_ladder("127.0.0.1:40000", "udp 127.0.0.1:5060", events, title="1001")
    lines = text.splitlines()
    assert lines[0] == "1001"
    assert "127.0.0.1:40000" in lines[1] and "udp 127.0.0.1:5060" in lines[1]
    body = lines[2:]
    assert body[0].strip().startswith("0.0ms|") and body[0].endswith(">|")
    assert "401 Unauthorized" in body[1] and "|<" in body[1]
    assert body[3].strip().startswith("4.2ms")
    assert len({len(line) for line in body}) == 1  # every arrow has the same length


def test_long_summary_is_shortened_not_wrapped() -> None:
    events = [MessageEvent(0.0, "out", "OPTIONS sip:" + "x" * 200)]
    (line,) = render_ladder("a", "b", events).splitlines()[1:]
    assert "..." in line and len(line) < 120


def test_no_messages_says_so() -> None:
    assert "(no messages exchanged)" in render_ladder("a", "b", [])
