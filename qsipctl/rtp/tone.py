"""Test tones and what we hear: a sine generator and a Goertzel-based detector.

Levels are in dBFS with the AES17 convention: a full-scale sine is 0 dBFS
(so a sine of peak amplitude A reads 20*log10(A/32768)).  Detection scans
the spectrum with Goertzel filters (coarse then fine), which needs no FFT
library and is exact at the frequencies it probes.
"""

from __future__ import annotations

import array
import math
from dataclasses import dataclass

SILENCE_DBFS = -55.0  # below this the far end is sending silence (µ-law idle is -inf)
TONE_PURITY = 0.5
COARSE_WINDOW = 256
MAX_ANALYSIS_SAMPLES = 4000  # 0.25 s at 16 kHz: enough for 1 Hz, cheap in pure Python


def tone(frequency: float, level_dbfs: float, sample_rate: int, count: int, start: int = 0
         ) -> array.array:  # fmt: skip
    """``count`` 16-bit samples of a sine, from sample index ``start`` (phase-continuous)."""
    amplitude = 32767 * 10 ** (level_dbfs / 20)
    w = 2 * math.pi * frequency / sample_rate
    return array.array("h", (round(amplitude * math.sin(w * (start + n))) for n in range(count)))


def goertzel_power(samples: array.array | list[int], frequency: float, sample_rate: int) -> float:
    """|X(f)|^2 of the samples at ``frequency`` (any real frequency, not only bins)."""
    coeff = 2 * math.cos(2 * math.pi * frequency / sample_rate)
    s1 = s2 = 0.0
    for x in samples:
        s1, s2 = x + coeff * s1 - s2, s1
    return s1 * s1 + s2 * s2 - coeff * s1 * s2


def rms_dbfs(samples: array.array | list[int]) -> float:
    """RMS level in dBFS (sine reference), -inf for digital silence."""
    if not samples:
        return float("-inf")
    ms = sum(x * x for x in samples) / len(samples)
    return 10 * math.log10(2 * ms / (32768.0 * 32768.0)) if ms else float("-inf")


@dataclass(frozen=True, slots=True)
class ToneAnalysis:
    """What a block of decoded audio contains."""

    kind: str  # "tone", "silence", "noise" (audio, but no dominant tone), "none" (no audio)
    frequency: float | None
    level_dbfs: float | None  # of the tone (or the whole signal for noise)
    rms_dbfs: float | None

    def describe(self) -> str:
        if self.kind == "tone":
            return f"{self.frequency:.0f} Hz at {self.level_dbfs:.0f} dBFS"
        if self.kind == "silence":
            return "silence"
        if self.kind == "noise":
            return f"sound without a clear tone at {self.rms_dbfs:.0f} dBFS"
        return "no audio"


def analyse(samples: array.array | list[int], sample_rate: int) -> ToneAnalysis:
    """Find the dominant tone and its level, or say silence/noise."""
    samples = samples[-MAX_ANALYSIS_SAMPLES:]
    n = len(samples)
    if n < COARSE_WINDOW:
        return ToneAnalysis("none", None, None, None)
    rms = rms_dbfs(samples)
    if rms < SILENCE_DBFS:
        return ToneAnalysis("silence", None, None, rms)
    nyquist = sample_rate / 2
    # Coarse: a short window has wide Goertzel lobes, so a 15 Hz grid cannot miss a tone;
    # fine: the whole window, 1 Hz steps around the coarse peak.
    head = samples[:COARSE_WINDOW]
    coarse = max(_scan(head, sample_rate, 50.0, nyquist - 50, 15.0))[1]
    lo, hi = max(20.0, coarse - 40), min(nyquist - 20, coarse + 40)
    power, freq = max(_scan(samples, sample_rate, lo, hi, 1.0))
    amplitude = 2 * math.sqrt(max(power, 0.0)) / n
    level = 20 * math.log10(amplitude / 32768) if amplitude > 0 else float("-inf")
    total = 2 * sum(x * x for x in samples) / n  # = A^2 for a pure sine
    if amplitude * amplitude < TONE_PURITY * total:
        return ToneAnalysis("noise", None, rms, rms)
    return ToneAnalysis("tone", freq, level, rms)


def _scan(samples: array.array | list[int], rate: int, lo: float, hi: float, step: float
          ) -> list[tuple[float, float]]:  # fmt: skip
    out = []
    f = lo
    while f <= hi:
        out.append((goertzel_power(samples, f, rate), f))
        f += step
    return out
