"""One 20 ms clock per event loop, shared by every media session in the process.

Each wake-up serves one grid time ``base + k * 20 ms``: absolute, so a late
wake-up never shifts the following ones (no drift).  How the wake-up is made
precise, and why:

* asyncio runs a timer up to ~1 ms late (epoll rounds its timeout up to whole
  milliseconds), which alone put the send-interval deviation near 1 ms
  (p50 0.98 ms measured here).  The timer is therefore set ``EARLY`` before
  the grid time.
* The rest of the wait used to be a busy spin: about 2 ms of CPU per 20 ms
  whatever the number of streams, at the very moment a benchmark's peer
  process (or tcpdump, or the far end on the same host) wants the CPU on a
  2-core machine.  Now the pacer sleeps (``time.sleep`` is a nanosleep:
  0.1-0.4 ms late here, up to ~1 ms on a loaded machine) until ``SPIN``
  before the grid time and spins only that last bit: about 1 ms less CPU
  per 20 ms.  The event loop is blocked for the same ``EARLY`` either way.
* A wake-up (or a tick) so late that the next grid time has passed is
  followed at once by that grid time, not by the one after it: skipping a
  grid time made every stream send two packets back to back 20 ms later
  (a 20 ms deviation in each stream, where serving it late costs only the
  lateness).

A benchmark can ask the pacer to :meth:`~Pacer.record` every wake-up
(:class:`Tick`): how late the timer fired, how long the callbacks took and
how much CPU they used.  That is how the causes of the p99 outliers at 100
calls were told apart (benchmarks/README.md); it costs a few clock reads per
tick, and nothing when not asked for.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import math
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass

FRAME = 0.020
EARLY = 0.0025  # the timer is set this long before the grid time (epoll rounds up to 1 ms)
SPIN = 0.001  # sleep until this long before it (nanosleep can be ~1 ms late under load), then spin

_PACERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Pacer] = weakref.WeakKeyDictionary()


@dataclass(frozen=True, slots=True)
class Tick:
    """One wake-up: times on the loop's clock (s), CPU from this thread's CPU clock (s)."""

    grid: float  # the grid time the callbacks were due at
    scheduled: float  # when the timer was set to fire (grid - EARLY)
    woke: float  # when the timer callback ran
    start: float  # when the spin ended and the first callback ran (grid, or later when woken late)
    end: float  # when the last callback returned
    callbacks: int
    cpu: float  # CPU time the callbacks used (start to end, without the spin)
    cpu_between: float  # CPU used from the previous tick's end to this wake-up: receiving, RTCP

    @property
    def late(self) -> float:
        """How far the first callback ran after its grid time (0 when the spin had slack)."""
        return self.start - self.grid


class Pacer:
    """Calls every subscriber once per grid time, in the order they subscribed.

    The order is kept (a dict), so each stream keeps its place in the tick
    and its own interval stays 20 ms even though the tick takes ~1.5 ms at
    100 streams.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._subs: dict[int, Callable[[float], None]] = {}
        self._ids = itertools.count()
        self._timer: asyncio.TimerHandle | None = None
        self.next = 0.0
        self.wakeups = 0
        self.ticks: collections.deque[Tick] | None = None
        self._cpu_mark = 0.0
        self._due = 0.0

    @classmethod
    def for_loop(cls, loop: asyncio.AbstractEventLoop | None = None) -> Pacer:
        loop = loop or asyncio.get_running_loop()
        pacer = _PACERS.get(loop)
        if pacer is None:
            pacer = _PACERS[loop] = cls(loop)
        return pacer

    def record(self, limit: int = 3000) -> collections.deque[Tick]:
        """Keep the last ``limit`` wake-ups as :class:`Tick` values (for benchmarks)."""
        self.ticks = collections.deque(maxlen=limit)
        self._cpu_mark = time.thread_time()
        return self.ticks

    def add(self, callback: Callable[[float], None]) -> tuple[int, float]:
        """Subscribe; returns (token, the grid time of the first call)."""
        if not self._subs:
            self.next = self.loop.time() + 0.002
            self._schedule()
        token = next(self._ids)
        self._subs[token] = callback
        return token, self.next

    def remove(self, token: int) -> None:
        self._subs.pop(token, None)
        if not self._subs and self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _schedule(self) -> None:
        self._due = self.next - EARLY
        self._timer = self.loop.call_at(self._due, self._wake)

    def _wake(self) -> None:
        target = self.next
        woke = now = self.loop.time()
        cpu_woke = time.thread_time() if self.ticks is not None else 0.0
        if target - now > SPIN:
            time.sleep(target - now - SPIN)
            now = self.loop.time()
        while now < target:  # the last SPIN at most (nothing when the sleep overshot)
            now = self.loop.time()
        self.wakeups += 1
        cpu = time.thread_time() if self.ticks is not None else 0.0
        for callback in list(self._subs.values()):
            callback(now)
        end = self.loop.time()
        if self.ticks is not None:
            cpu_end = time.thread_time()
            self.ticks.append(Tick(target, self._due, woke, now, end, len(self._subs),
                                   cpu_end - cpu, cpu_woke - self._cpu_mark))  # fmt: skip
            self._cpu_mark = cpu_end
        # The latest grid time already past (served at once), or the next one.
        self.next = target + FRAME * max(1, math.floor((end - target) / FRAME))
        if self._subs:
            self._schedule()
