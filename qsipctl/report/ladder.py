"""Text ladder diagrams: who sent what, in which order, how many ms apart.

The ladder is the picture SIP engineers draw on whiteboards; printing it lets
someone who never opened Wireshark see that the 401 came back, our answer
went out, and the 200 followed.  Input is any sequence of events with a time,
a direction ("out" from us, "in" from the server) and a one-line summary, so
the renderer knows nothing about sockets or SIP parsing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

MIN_WIDTH = 40


class LadderEvent(Protocol):
    @property
    def time(self) -> float: ...
    @property
    def direction(self) -> str: ...
    @property
    def summary(self) -> str: ...


def _arrow(label: str, width: int, outgoing: bool) -> str:
    text = f" {label} "
    if len(text) > width - 4:
        text = text[: width - 7] + "... "
    fill = width - 2 - len(text)
    left, right = fill // 2, fill - fill // 2
    if outgoing:
        return "|" + "-" * left + text + "-" * (right - 1) + ">|"
    return "|<" + "-" * (left - 1) + text + "-" * right + "|"


def render_ladder(local: str, remote: str, events: Sequence[LadderEvent], title: str = "") -> str:
    """The exchange as text: time since the first message on the left, one arrow each."""
    width = max(MIN_WIDTH, max((len(e.summary) + 8 for e in events), default=0))
    width = min(width, 90)
    gutter = 10
    lines = []
    if title:
        lines.append(title)
    if len(local) + len(remote) + 2 <= width:
        lines.append(" " * gutter + local + " " * (width - len(local) - len(remote)) + remote)
    else:
        lines.append(" " * gutter + local)
        lines.append(" " * (gutter + max(0, width - len(remote))) + remote)
    t0 = events[0].time if events else 0.0
    for e in events:
        ms = (e.time - t0) * 1000.0
        lines.append(f"{ms:8.1f}ms" + _arrow(e.summary, width, e.direction == "out"))
    if not events:
        lines.append(" " * gutter + "(no messages exchanged)")
    return "\n".join(lines) + "\n"
