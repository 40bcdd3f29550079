"""Tone generation and detection (Goertzel): frequency, level in dBFS, silence, noise."""

from __future__ import annotations

import random

import pytest

from qsipctl.rtp import g711
from qsipctl.rtp.tone import analyse, goertzel_power, rms_dbfs, tone


@pytest.mark.parametrize(
    ("freq", "level"), [(440, -14.0), (1004, -3.0), (3300, -35.0), (150, -20.0)]
)
def test_tone_through_ulaw_is_recognised(freq: int, level: float) -> None:
    heard = analyse(g711.decode(g711.encode(tone(freq, level, 8000, 4000), "ulaw"), "ulaw"), 8000)
    assert heard.kind == "tone"
    assert heard.frequency == pytest.approx(freq, abs=2)
    assert heard.level_dbfs == pytest.approx(level, abs=0.5)
    assert heard.describe() == f"{freq} Hz at {level:.0f} dBFS"


def test_silence_and_noise() -> None:
    assert analyse([0] * 4000, 8000).kind == "silence"
    assert analyse(g711.decode(b"\xd5" * 4000, "alaw"), 8000).kind == "silence"  # A-law idle
    noise = [random.Random(1).randint(-5000, 5000) for _ in range(4000)]
    assert analyse(noise, 8000).kind == "noise"
    assert analyse([1, 2, 3], 8000).kind == "none"


def test_levels_and_goertzel_peak() -> None:
    assert rms_dbfs(tone(1000, -6.0, 8000, 8000)) == pytest.approx(-6.0, abs=0.05)
    samples = tone(697, -10.0, 8000, 800)
    assert goertzel_power(samples, 697, 8000) > 100 * goertzel_power(samples, 1209, 8000)
