"""G.711 µ-law and A-law (ITU-T G.711), bit-exact with the ITU-T G.191 reference.

µ-law deliberately follows G.191 and not CPython's old ``audioop``: for
negative inputs ``audioop`` takes the magnitude as ``-(x >> 2)`` where G.191
takes the one's complement ``(~x) >> 2``, so 508 of the 65536 inputs encode
one code apart (shared/vectors/g711/README).  Encoding goes through a
65536-entry table built once, decoding through a 256-entry table.
"""

from __future__ import annotations

import array
from functools import cache


def ulaw_encode_sample(x: int) -> int:
    """One 16-bit sample to its µ-law octet (G.191 ``ulaw_compress``)."""
    absno = ((~x) >> 2) + 33 if x < 0 else (x >> 2) + 33
    absno = min(absno, 0x1FFF)
    segno = (absno >> 6).bit_length() + 1
    low = 0x0F - ((absno >> segno) & 0x0F)
    code = ((8 - segno) << 4) | low
    return code | 0x80 if x >= 0 else code


def ulaw_decode_sample(code: int) -> int:
    """One µ-law octet to its 16-bit value (G.191 ``ulaw_expand``)."""
    inv = ~code & 0xFF
    exponent = (inv >> 4) & 7
    step = 4 << (exponent + 1)
    magnitude = (0x80 << exponent) + step * (inv & 0x0F) + step // 2 - 4 * 33
    return magnitude if code >= 0x80 else -magnitude


def alaw_encode_sample(x: int) -> int:
    """One 16-bit sample to its A-law octet (G.191 ``alaw_compress``)."""
    ix = (~x) >> 4 if x < 0 else x >> 4
    if ix > 15:
        exponent = 1
        while ix > 31:
            ix >>= 1
            exponent += 1
        ix = ix - 16 + (exponent << 4)
    if x >= 0:
        ix |= 0x80
    return ix ^ 0x55


def alaw_decode_sample(code: int) -> int:
    """One A-law octet to its 16-bit value (G.191 ``alaw_expand``)."""
    ix = (code ^ 0x55) & 0x7F
    exponent, mantissa = ix >> 4, ix & 0x0F
    if exponent > 0:
        mantissa += 16
    mantissa = (mantissa << 4) + 8
    if exponent > 1:
        mantissa <<= exponent - 1
    return mantissa if code > 127 else -mantissa


@cache
def _encode_table(law: str) -> bytes:
    fn = ulaw_encode_sample if law == "ulaw" else alaw_encode_sample
    return bytes(fn(v - 65536 if v > 32767 else v) for v in range(65536))


@cache
def _decode_table(law: str) -> tuple[int, ...]:
    fn = ulaw_decode_sample if law == "ulaw" else alaw_decode_sample
    return tuple(fn(c) for c in range(256))


def encode(samples: array.array | list[int], law: str) -> bytes:
    """16-bit samples to G.711 octets; ``law`` is ``"ulaw"`` (PCMU) or ``"alaw"`` (PCMA)."""
    table = _encode_table(law)
    return bytes(table[s & 0xFFFF] for s in samples)


def decode(data: bytes, law: str) -> array.array:
    """G.711 octets to 16-bit samples."""
    table = _decode_table(law)
    return array.array("h", (table[c] for c in data))
