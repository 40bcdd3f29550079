"""The session-refresh schedule and its 491 retries on a fake clock.

RFC 4028 §10 (when), RFC 3261 §14.1 (the glare waits).
"""

from __future__ import annotations

import random

import pytest

from qsipctl.sip.session_timer import (
    BUSY_LIMIT,
    BUSY_STEP,
    GLARE_WAIT_OTHER,
    GLARE_WAIT_OWNER,
    SessionRefresher,
    glare_wait,
)


def refresher(**kw: object) -> SessionRefresher:
    timer = SessionRefresher(interval=90, owner=True, rng=random.Random(7), **kw)  # type: ignore[arg-type]
    timer.start(100.0)
    return timer


def test_first_refresh_at_half_the_interval_then_again_after_each_success() -> None:
    timer = refresher()
    assert timer.next_timer() == 145.0
    assert not timer.poll(144.99)
    assert timer.poll(145.0)
    assert timer.next_timer() is None and not timer.poll(146.0)  # one refresh in flight
    assert timer.on_answer(200, 145.2, interval=120) is None
    assert timer.interval == 120 and timer.next_timer() == pytest.approx(205.2)


def test_first_after_moves_only_the_first_refresh() -> None:
    timer = refresher(first_after=1.0)
    assert timer.next_timer() == 101.0 and timer.poll(101.0)
    timer.on_answer(200, 101.0)
    assert timer.next_timer() == 146.0  # then half the interval again


@pytest.mark.parametrize(("owner", "bounds"), [(True, GLARE_WAIT_OWNER), (False, GLARE_WAIT_OTHER)])
def test_glare_waits_are_in_the_rfc_ranges_in_10_ms_units(
    owner: bool, bounds: tuple[float, float]
) -> None:
    rng = random.Random(1)
    waits = [glare_wait(owner, rng) for _ in range(2000)]
    assert all(bounds[0] <= w <= bounds[1] for w in waits)
    assert all(abs(w * 100 - round(w * 100)) < 1e-9 for w in waits)
    assert min(waits) < bounds[0] + 0.1 and max(waits) > bounds[1] - 0.1  # the whole range


def test_491_is_retried_after_the_owner_wait_and_a_success_resets_the_count() -> None:
    timer = refresher()
    assert timer.poll(145.0)
    wait = timer.on_answer(491, 145.1)
    assert wait is not None and 2.1 <= wait <= 4.0
    assert timer.next_timer() == pytest.approx(145.1 + wait)
    assert not timer.poll(145.1 + wait - 0.01)
    assert timer.poll(145.1 + wait)
    assert timer.on_answer(200, 149.5) is None
    assert timer.glare_in_row == 0 and timer.gave_up is None
    assert not timer.done and timer.next_timer() == pytest.approx(194.5)


def test_the_non_owner_waits_at_most_two_seconds() -> None:
    timer = SessionRefresher(interval=90, owner=False, rng=random.Random(3))
    timer.start(0.0)
    assert timer.poll(45.0)
    wait = timer.on_answer(491, 45.0)
    assert wait is not None and 0.0 <= wait <= 2.0


def test_gives_up_after_the_bounded_retries_with_a_verdict() -> None:
    timer = refresher(max_glare_retries=2)
    now = 145.0
    statuses, waits = [], []
    while (due := timer.next_timer()) is not None:
        now = max(now, due)
        assert timer.poll(now)
        waits.append(timer.on_answer(491, now))
        statuses.append(491)
    assert statuses == [491, 491, 491]  # the first try and two retries
    assert timer.done and waits[-1] is None and None not in waits[:2]
    assert timer.gave_up is not None
    assert "kept answering 491 Request Pending to the session refresh" in timer.gave_up
    assert "3 times in a row" in timer.gave_up and "90 s" in timer.gave_up


def test_another_refusal_ends_refreshing_without_the_glare_verdict() -> None:
    timer = refresher()
    assert timer.poll(145.0)
    assert timer.on_answer(481, 145.0) is None
    assert timer.done and timer.gave_up is None and timer.next_timer() is None


def test_a_far_end_invite_in_progress_defers_the_refresh_but_not_forever() -> None:
    timer = refresher()
    assert not timer.poll(145.0, busy=True)
    assert timer.next_timer() == pytest.approx(145.0 + BUSY_STEP)
    assert timer.poll(145.5, busy=False)  # its ACK came: go
    timer.on_answer(200, 145.6)
    now = timer.next_timer()
    assert now is not None
    while not timer.poll(now, busy=True):  # an ACK that never comes
        now = timer.next_timer() or now
        assert now < 190.6 + BUSY_LIMIT + 1
    assert now >= 190.6 + BUSY_LIMIT
