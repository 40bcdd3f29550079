"""RFC 3550 receive statistics (A.1, A.3, A.8), RTT (6.4.1) and the E-model."""

from __future__ import annotations

import pytest

from qsipctl.rtp.rtcp import ReportBlock
from qsipctl.rtp.stats import ReceiveStats, mos, quality, r_factor, rtt_seconds


def feed(stats: ReceiveStats, seqs: list[int], arrivals: list[float] | None = None) -> None:
    for i, seq in enumerate(seqs):
        at = arrivals[i] if arrivals else i * 0.02
        stats.feed(seq & 0xFFFF, (seq * 160) & 0xFFFFFFFF, 0, at)


def test_perfect_stream() -> None:
    s = ReceiveStats(8000)
    feed(s, list(range(100)))
    snap = s.snapshot()
    assert (snap.packets, snap.expected, snap.lost, snap.duplicates, snap.reordered) == (
        100, 100, 0, 0, 0)  # fmt: skip
    assert snap.jitter_ms == 0


def test_loss_duplicates_reordering_and_wrap() -> None:
    s = ReceiveStats(8000)
    seqs = [65530, 65531, 65533, 65532, 65532, 65534, 65535, 0, 1, 3, 3, 4]
    feed(s, seqs)
    snap = s.snapshot()
    # 65530..4 is 11 packets expected; 2 is missing; 65532 came late; 65532 and 3 twice.
    assert snap.expected == 11 and snap.lost == 1
    assert snap.duplicates == 2 and snap.reordered == 1
    assert snap.packets == 12


def test_jitter_follows_a8_arithmetic() -> None:
    # Transit alternates by 80 timestamp units (10 ms at 8 kHz): J_i = J + (80 - J)/16.
    s = ReceiveStats(8000)
    arrivals = [i * 0.02 + (0.01 if i % 2 else 0.0) for i in range(50)]
    feed(s, list(range(50)), arrivals)
    j = 0.0
    for _ in range(49):
        j += (80 - j) / 16
    assert s.jitter == pytest.approx(j, rel=1e-9)
    assert s.snapshot().jitter_ms == pytest.approx(1000 * j / 8000, abs=1e-3)


def test_restart_after_big_jump_needs_two_packets() -> None:
    s = ReceiveStats(8000)
    feed(s, [10, 11, 12])
    s.feed(40000, 0, 0, 1.0)  # one stray packet far away: dropped
    assert s.snapshot().expected == 3
    s.feed(40001, 0, 0, 1.02)
    s.feed(40002, 0, 0, 1.04)  # two in a row: the source restarted
    assert s.snapshot().expected == 2


def test_report_block_fraction_lost() -> None:
    s = ReceiveStats(8000)
    feed(s, [0, 1, 2, 3, 5, 6, 7])  # 1 of 8 lost
    block = s.report_block(lsr=0x11112222, dlsr=0x8000)
    assert block.fraction_lost == 32 and block.cumulative_lost == 1
    assert block.highest_sequence == 7 and (block.lsr, block.dlsr) == (0x11112222, 0x8000)


def test_rtt_from_lsr_dlsr() -> None:
    # RFC 3550 6.4.1's example: A=0xb710:8000, LSR=0xb705:2000, DLSR=0x0005:4000 -> 6.125 s
    block = ReportBlock(1, 0, 0, 0, 0, 0xB7052000, 0x00054000)
    assert rtt_seconds(0xB7108000, block) == pytest.approx(6.125)
    assert rtt_seconds(0xB7108000, ReportBlock(1, 0, 0, 0, 0, 0, 0)) is None


def test_e_model_figures() -> None:
    assert r_factor("PCMU", 0, 0) == pytest.approx(93.2)
    assert mos(93.2) == pytest.approx(4.41, abs=0.01)
    # 1 % random loss, no PLC credit: Ie_eff = 95 * 1 / (1 + 4.3) = 17.92
    assert r_factor("PCMA", 1.0, 0) == pytest.approx(93.2 - 95 / 5.3, abs=1e-6)
    # delay past 177.3 ms costs the extra slope
    assert r_factor("PCMU", 0, 200) == pytest.approx(93.2 - 4.8 - 0.11 * 22.7, abs=1e-6)
    r, m = quality("PCMU", 0.0, rtt_ms=40.0, jitter_ms=5.0)
    assert r == pytest.approx(93.2 - 0.024 * (20 + 10 + 20), abs=0.05) and 4.3 < m < 4.5
    assert mos(0) == 1.0 and mos(120) == 4.5


def test_first_packets_reordered_still_count_from_the_lowest() -> None:
    s = ReceiveStats(8000)
    feed(s, [101, 100, 102, 104])  # 100 arrived after 101; 103 lost
    snap = s.snapshot()
    assert (snap.expected, snap.lost, snap.reordered) == (5, 1, 1)
    w = ReceiveStats(8000)
    feed(w, [1, 65535, 0, 2])  # across the wrap
    assert (w.snapshot().expected, w.snapshot().lost) == (4, 0)


def test_restart_timing_after_a_hold_takes_no_jitter_sample_across_it() -> None:
    """A far end that resumes after 3 s of hold with its timestamps where it left them:
    without the restart the first packet after would look like 3 s of jitter."""
    held, plain = ReceiveStats(8000), ReceiveStats(8000)
    for stats in (held, plain):
        for i in range(50):
            stats.feed(i, i * 160, 0, i * 0.02)
    held.restart_timing()
    for stats in (held, plain):
        for i in range(50, 100):  # the timestamps go on from 50 * 160, the arrivals 3 s later
            stats.feed(i, i * 160, 0, 3.0 + i * 0.02)
    assert held.snapshot().jitter_ms == 0.0 and held.snapshot().max_jitter_ms == 0.0
    assert plain.snapshot().max_jitter_ms > 100  # one sample of 3 s, / 16
    assert held.snapshot().packets == 100 and held.snapshot().lost == 0
