"""The shared 20 ms pacer's grid arithmetic, driven by a stand-in loop clock.

Only the pacer's own decisions are under test here (which grid time comes
next, who is called in which order, what a recorded tick holds); the real
timing is measured by benchmarks/rtp_pacing.py, never asserted in tests.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import cast

import pytest

from qsipctl.media.pacer import EARLY, FRAME, Pacer


class Handle:
    cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class Clock:
    """Just the two loop methods the pacer uses; time moves only when a test says so."""

    def __init__(self) -> None:
        self.now = 100.0
        self.timers: list[tuple[float, Callable[[], None]]] = []

    def time(self) -> float:
        return self.now

    def call_at(self, when: float, callback: Callable[[], None]) -> Handle:
        self.timers.append((when, callback))
        return Handle()

    def fire(self) -> float:
        """Run the last timer as if the loop woke at its time (or now, if later)."""
        when, callback = self.timers[-1]
        self.now = max(self.now, when)
        callback()
        return when


def make() -> tuple[Pacer, Clock]:
    clock = Clock()
    return Pacer(cast(asyncio.AbstractEventLoop, clock)), clock


def test_timer_is_set_early_and_callbacks_see_the_grid_time() -> None:
    pacer, clock = make()
    seen: list[float] = []
    _, first = pacer.add(seen.append)
    assert clock.timers[-1][0] == pytest.approx(first - EARLY)
    clock.now = first  # woke exactly on time: nothing to wait for
    clock.fire()
    assert seen == [first]
    assert pacer.next == pytest.approx(first + FRAME)


@pytest.mark.parametrize(
    ("tick_takes", "frames_on"),
    [(0.001, 1), (1.5 * FRAME, 1), (2.5 * FRAME, 2), (4.2 * FRAME, 4)],
)
def test_an_overdue_grid_time_is_served_at_once_not_skipped(
    tick_takes: float, frames_on: int
) -> None:
    pacer, clock = make()

    def slow(now: float) -> None:
        clock.now = now + tick_takes

    _, first = pacer.add(slow)
    clock.now = first
    clock.fire()
    # The latest grid time already past (its packets are due now), or the next one.
    assert pacer.next == pytest.approx(first + frames_on * FRAME)


def test_subscribers_keep_their_order_and_removal_stops_the_timer() -> None:
    pacer, clock = make()
    order: list[str] = []
    a, _ = pacer.add(lambda now: order.append("a"))
    b, first = pacer.add(lambda now: order.append("b"))
    c, _ = pacer.add(lambda now: order.append("c"))
    pacer.remove(b)
    clock.now = first
    clock.fire()
    assert order == ["a", "c"]
    pacer.remove(a)
    pacer.remove(c)
    assert pacer._timer is None


def test_recorded_ticks_say_when_the_timer_fired_and_when_sending_started() -> None:
    pacer, clock = make()
    ticks = pacer.record(limit=2)
    _, first = pacer.add(lambda now: None)
    for late in (0.0, 0.003, 0.0):  # the middle wake-up came 3 ms after its grid time
        clock.now = pacer.next + late
        clock.fire()
    assert len(ticks) == 2  # bounded
    late_tick, on_time = ticks
    assert late_tick.grid == pytest.approx(first + FRAME)
    assert late_tick.late == pytest.approx(0.003)
    assert on_time.late == 0.0 and on_time.callbacks == 1
