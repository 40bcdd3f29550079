"""When to send a session refresh (RFC 4028 §10) and how to retry after a 491 (RFC 3261 §14.1).

Sans-IO, aioquic style: :class:`SessionRefresher` holds no clock and sleeps
on nothing; the owner asks :meth:`~SessionRefresher.next_timer`, calls
:meth:`~SessionRefresher.poll` at that time, sends the refresh when told to,
and feeds the final status to :meth:`~SessionRefresher.on_answer`.  That
keeps the random glare waits (2.1-4 s, several times over) testable on a
fake clock in microseconds.

Why the 491 handling matters: when both sides send a re-INVITE at the same
time ("glare"), each answers the other's with 491 Request Pending.  RFC 3261
§14.1 breaks the tie with different random waits -- 2.1-4 s for the UA that
owns the Call-ID (the caller), 0-2 s for the other -- in 10 ms units; an
UPDATE refresh refused with 491 (RFC 3311 §5.2's glare answer) is retried
with the same waits.  A PBX that answers 491 every time
would let the session timer run out and cut the call, so the retries are
bounded and the give-up is a verdict of its own.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

GLARE_WAIT_OWNER = (2.1, 4.0)  # s, we generated the Call-ID (we placed the call)
GLARE_WAIT_OTHER = (0.0, 2.0)  # s, the far end did
MAX_GLARE_RETRIES = 3  # refreshes sent again after a 491, before we give up
BUSY_STEP = 0.5  # s: a re-INVITE of theirs awaits its ACK; look again after this
BUSY_LIMIT = 32.0  # s (64*T1): then refresh anyway, an ACK that never came is not waited for


def glare_wait(owner: bool, rng: random.Random) -> float:
    """RFC 3261 §14.1: a random wait in units of 10 ms."""
    lo, hi = GLARE_WAIT_OWNER if owner else GLARE_WAIT_OTHER
    return rng.randint(round(lo * 100), round(hi * 100)) / 100


@dataclass(slots=True)
class SessionRefresher:
    """The refresh schedule of one dialog where we are the refresher."""

    interval: int  # Session-Expires, seconds
    owner: bool  # we own the Call-ID: the longer glare wait
    first_after: float | None = None  # the first refresh; None: half the interval (§10)
    max_glare_retries: int = MAX_GLARE_RETRIES
    rng: random.Random = field(default_factory=random.Random)
    due: float | None = None
    in_flight: bool = False
    done: bool = False
    glare_in_row: int = 0  # 491s since the last success
    gave_up: str | None = None  # the verdict when the PBX kept answering 491
    _busy_since: float | None = None

    def start(self, now: float) -> None:
        self.due = now + (self.first_after or self._period())

    def _period(self) -> float:
        return max(1.0, self.interval / 2)

    def next_timer(self) -> float | None:
        """When :meth:`poll` wants to be called (None: nothing scheduled)."""
        return None if self.done or self.in_flight else self.due

    def poll(self, now: float, busy: bool = False) -> bool:
        """True when a refresh should be sent now; ``busy``: an INVITE transaction of
        the far end is still in progress (§14.1: no new re-INVITE until it ends)."""
        if self.done or self.in_flight or self.due is None or now < self.due:
            return False
        if busy:
            if self._busy_since is None:
                self._busy_since = now
            if now - self._busy_since < BUSY_LIMIT:
                self.due = now + BUSY_STEP
                return False
        self._busy_since = None
        self.in_flight = True
        return True

    def on_answer(self, status: int, now: float, interval: int | None = None) -> float | None:
        """The refresh's final status; returns the glare wait chosen after a 491, else None.

        2xx: the next refresh at half the (possibly new) interval.  491: again
        after the §14.1 wait, at most ``max_glare_retries`` times in a row, then
        ``gave_up``.  Anything else (or no answer) ends refreshing: the caller
        reports the status.
        """
        self.in_flight = False
        if 200 <= status < 300:
            self.glare_in_row = 0
            self.interval = interval or self.interval
            self.due = now + self._period()
            return None
        if status == 491 and self.glare_in_row < self.max_glare_retries:
            self.glare_in_row += 1
            wait = glare_wait(self.owner, self.rng)
            self.due = now + wait
            return wait
        self.done = True
        if status == 491:
            self.gave_up = (
                f"the PBX kept answering 491 Request Pending to the session refresh "
                f"({self.glare_in_row + 1} times in a row, each retried after the RFC 3261 "
                f"§14.1 wait): the session timer ({self.interval} s) will run out and the "
                "PBX may cut the call; look for a device that re-INVITEs at the same moment "
                "(the PBX's own session refresh or a media re-anchoring loop)"
            )
        return None
