"""Encode and decode 20 ms frames for the negotiated codec (G.711 µ/A-law, G.722).

Sending a tone at 50 packets a second per stream must cost almost nothing, so
for G.711 (stateless: each octet is one sample) a tone is encoded once per
(codec, frequency, level) and replayed: one second holds a whole number of
cycles for any integer frequency, so 50 frames loop without a phase jump.
G.722 is ADPCM: the decoder's state follows the encoder's, so replaying
frames out of their order (a loop wrap, a pause for DTMF, a switch to the
echo marker) would desynchronise the far end's decoder into loud noise.
:class:`FrameSource` therefore encodes G.722 live with one encoder per
stream, from cached 16-bit frames.  Encoding one 20 ms frame takes ~4 ms of
CPU here, so it is done *after* a packet has left, for the next one
(:meth:`FrameSource.encode_ahead`), on a copy of the encoder that replaces
it only when that frame is the one asked for next; otherwise (the tone was
switched meanwhile) the frame is encoded live as before.  The bytes sent are
the same either way.
"""

from __future__ import annotations

import array
import copy
from functools import cache

from qsipctl.rtp import g711
from qsipctl.rtp.g722 import G722Decoder, G722Encoder
from qsipctl.rtp.tone import tone
from qsipctl.sdp.negotiate import CODECS, Codec

FRAMES_PER_SECOND = 50


class Decoder:
    """Stateful per-stream decoder (G.722 keeps ADPCM state between frames)."""

    def __init__(self, codec: Codec) -> None:
        self.codec = codec
        self._g722 = G722Decoder() if codec.name == "G722" else None

    def decode(self, payload: bytes) -> array.array:
        if self._g722 is not None:
            return self._g722.decode(payload)
        return g711.decode(payload, "ulaw" if self.codec.name == "PCMU" else "alaw")


def encode(codec: Codec, samples: array.array) -> bytes:
    """One-shot encode (a fresh G.722 encoder state)."""
    if codec.name == "G722":
        return G722Encoder().encode(samples)
    return g711.encode(samples, "ulaw" if codec.name == "PCMU" else "alaw")


@cache
def pcm_frames(sample_rate: int, frequency: int, level_dbfs: float) -> tuple[array.array, ...]:
    """One second of a tone as 50 frames of 16-bit samples (silence when frequency is 0)."""
    n = sample_rate
    samples = tone(frequency, level_dbfs, n, n) if frequency else array.array("h", bytes(2 * n))
    size = n // FRAMES_PER_SECOND
    return tuple(samples[i * size : (i + 1) * size] for i in range(FRAMES_PER_SECOND))


class FrameSource:
    """The next 20 ms payload of a stream, whatever tone it plays at the moment."""

    def __init__(self, codec: Codec) -> None:
        self.codec = codec
        self._encoder = G722Encoder() if codec.name == "G722" else None
        self.index = 0  # audio frames sent: a pause (DTMF) does not skip any
        # G.722 only: ((frequency, level, index), the encoder after that frame, its payload)
        self._ahead: tuple[tuple[int, float, int], G722Encoder, bytes] | None = None

    def prepare(self, frequency: int, level_dbfs: float) -> None:
        """Encode (G.711) or generate (G.722) a tone's frames now, not in the first tick."""
        if self._encoder is None:
            tone_frames(self.codec.name, frequency, level_dbfs)
        else:
            pcm_frames(self.codec.sample_rate, frequency, level_dbfs)

    def next(self, frequency: int, level_dbfs: float) -> bytes:
        i = self.index % FRAMES_PER_SECOND
        key = (frequency, level_dbfs, self.index)
        self.index += 1
        if self._encoder is None:
            return tone_frames(self.codec.name, frequency, level_dbfs)[i]
        ahead, self._ahead = self._ahead, None
        if ahead is not None and ahead[0] == key:
            self._encoder = ahead[1]
            return ahead[2]
        return self._encoder.encode(pcm_frames(self.codec.sample_rate, frequency, level_dbfs)[i])

    def encode_ahead(self, frequency: int, level_dbfs: float) -> None:
        """G.722: encode the frame :meth:`next` will most likely be asked for (no-op for G.711).

        Called once a packet has left, so the ~4 ms of encoding no longer
        sits between a tick and its packet.
        """
        if self._encoder is None:
            return
        encoder = copy.deepcopy(self._encoder)
        frame = pcm_frames(self.codec.sample_rate, frequency, level_dbfs)
        payload = encoder.encode(frame[self.index % FRAMES_PER_SECOND])
        self._ahead = ((frequency, level_dbfs, self.index), encoder, payload)


@cache
def tone_frames(codec_name: str, frequency: int, level_dbfs: float) -> tuple[bytes, ...]:
    """One second of a tone as 50 encoded 20 ms payloads (silence when frequency is 0)."""
    codec = CODECS[codec_name]
    n = codec.sample_rate
    samples = tone(frequency, level_dbfs, n, n) if frequency else array.array("h", bytes(2 * n))
    data = encode(codec, samples)
    size = len(data) // FRAMES_PER_SECOND
    return tuple(data[i * size : (i + 1) * size] for i in range(FRAMES_PER_SECOND))
