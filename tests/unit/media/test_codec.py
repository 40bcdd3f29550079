"""Frames a media session sends: encoding ahead must not change one byte of G.722.

The reference is a plain G.722 encoder fed the same sequence of 20 ms tone
frames; the encoder itself is checked bit-exact against libspandsp in
tests/unit/rtp/test_g722.py.
"""

from __future__ import annotations

from qsipctl.media.codec import FRAMES_PER_SECOND, FrameSource, pcm_frames, tone_frames
from qsipctl.rtp.g722 import G722Encoder
from qsipctl.sdp.negotiate import CODECS

TONE, SILENCE, MARKER = (440, -14.0), (0, 0.0), (1400, -10.0)


def test_g722_encoded_ahead_equals_live_encoding_across_switches_and_pauses() -> None:
    # What a call does: tone, a DTMF pause (no audio frame, nothing encoded ahead
    # again), a switch to silence and the marker that the frame encoded ahead did
    # not foresee, back to the tone, and a run past the one-second table's wrap.
    plan = [TONE] * 3 + ["pause"] + [TONE] * 2 + [SILENCE] * 2 + [MARKER] + [TONE] * 3
    plan += [TONE] * (FRAMES_PER_SECOND - len(plan) + 2)
    source = FrameSource(CODECS["G722"])
    reference = G722Encoder()
    source.encode_ahead(*TONE)
    sent: list[bytes] = []
    expected: list[bytes] = []
    index = 0
    for step in plan:
        if step == "pause":
            continue
        frequency, level = step
        sent.append(source.next(frequency, level))
        source.encode_ahead(frequency, level)
        pcm = pcm_frames(16000, frequency, level)[index % FRAMES_PER_SECOND]
        expected.append(reference.encode(pcm))
        index += 1
    assert sent == expected
    assert len(set(sent)) > 3  # the frames differ: the comparison means something


def test_g711_frames_come_from_the_encoded_table() -> None:
    source = FrameSource(CODECS["PCMU"])
    source.encode_ahead(*TONE)  # nothing to do for a stateless codec
    frames = [source.next(*TONE) for _ in range(FRAMES_PER_SECOND + 1)]
    table = tone_frames("PCMU", *TONE)
    assert frames[:FRAMES_PER_SECOND] == list(table)
    assert frames[FRAMES_PER_SECOND] == table[0]
