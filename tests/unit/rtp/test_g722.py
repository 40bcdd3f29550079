"""G.722 (64 kbit/s) checked bit-exact against a reference implementation on this machine.

No ITU-T G.722 test sequences are published in a form we may copy here, so
the reference is libspandsp (Debian ``libspandsp2``), whose own test suite
runs the ITU sequences and whose codec Asterisk, FreeSWITCH and baresip ship.
It is loaded with ctypes: nothing of it is copied.  One known difference is
kept on purpose: on overload spandsp's decoder wraps the 16-bit output
around (int16 cast) where we saturate, so samples at full scale may differ.
"""

from __future__ import annotations

import array
import ctypes
import ctypes.util
import math
import random

import pytest

from qsipctl.rtp.g722 import G722Decoder, G722Encoder
from qsipctl.rtp.tone import analyse, tone


@pytest.fixture(scope="module")
def spandsp() -> ctypes.CDLL:
    name = ctypes.util.find_library("spandsp") or "libspandsp.so.2"
    try:
        lib = ctypes.CDLL(name)
    except OSError:
        pytest.fail("libspandsp2 is not installed (scripts/test installs it): no G.722 reference")
    lib.g722_encode_init.restype = ctypes.c_void_p
    lib.g722_encode_init.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int]
    lib.g722_decode_init.restype = ctypes.c_void_p
    lib.g722_decode_init.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int]
    lib.g722_encode.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_int]
    lib.g722_decode.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
    lib.g722_encode_release.argtypes = [ctypes.c_void_p]
    lib.g722_decode_release.argtypes = [ctypes.c_void_p]
    return lib


def ref_encode(lib: ctypes.CDLL, samples: list[int]) -> bytes:
    state = lib.g722_encode_init(None, 64000, 0)
    buf = (ctypes.c_int16 * len(samples))(*samples)
    out = ctypes.create_string_buffer(len(samples))
    n = lib.g722_encode(state, out, buf, len(samples))
    lib.g722_encode_release(state)
    return out.raw[:n]


def ref_decode(lib: ctypes.CDLL, data: bytes) -> list[int]:
    state = lib.g722_decode_init(None, 64000, 0)
    out = (ctypes.c_int16 * (2 * len(data)))()
    n = lib.g722_decode(state, out, data, len(data))
    lib.g722_decode_release(state)
    return list(out[:n])


def signals() -> dict[str, list[int]]:
    rnd = random.Random(722)
    w1, w2 = 2 * math.pi * 440 / 16000, 2 * math.pi * 5200 / 16000
    two_tones = [int(12000 * math.sin(w1 * i) + 6000 * math.sin(w2 * i)) for i in range(8000)]
    sweep = [int(20000 * math.sin(2 * math.pi * (50 + 0.4 * i) * i / 16000)) for i in range(8000)]
    return {
        "two tones": two_tones,
        "sweep": sweep,
        "noise": [rnd.randint(-32768, 32767) for _ in range(4000)],
        "steps": [32767] * 200 + [-32768] * 200 + [0] * 400 + [1, -1] * 200,
        "quiet noise": [rnd.randint(-40, 40) for _ in range(4000)],
    }


@pytest.mark.parametrize("name", list(signals()))
def test_encoder_bit_exact_with_spandsp(spandsp: ctypes.CDLL, name: str) -> None:
    samples = signals()[name]
    assert G722Encoder().encode(samples) == ref_encode(spandsp, samples)


@pytest.mark.parametrize("name", list(signals()))
def test_decoder_matches_spandsp(spandsp: ctypes.CDLL, name: str) -> None:
    data = ref_encode(spandsp, signals()[name])
    ours = list(G722Decoder().decode(data))
    ref = ref_decode(spandsp, data)
    assert len(ours) == len(ref)
    for a, b in zip(ours, ref, strict=True):
        assert a == b or a in (32767, -32768), (a, b)  # see the module docstring


def test_decoder_on_arbitrary_octets(spandsp: ctypes.CDLL) -> None:
    data = bytes(random.Random(9).randrange(256) for _ in range(4000))
    ours, ref = list(G722Decoder().decode(data)), ref_decode(spandsp, data)
    mismatches = [(a, b) for a, b in zip(ours, ref, strict=True) if a != b]
    assert all(a in (32767, -32768) for a, _ in mismatches)
    assert len(mismatches) < len(ours) // 20


def test_streaming_equals_one_shot() -> None:
    samples = signals()["sweep"]
    enc = G722Encoder()
    chunks = b"".join(enc.encode(samples[i : i + 320]) for i in range(0, len(samples), 320))
    assert chunks == G722Encoder().encode(samples)


def test_round_trip_keeps_frequency_and_level() -> None:
    samples = tone(1000, -12.0, 16000, 8000)
    heard = analyse(G722Decoder().decode(G722Encoder().encode(samples)), 16000)
    assert heard.kind == "tone" and heard.frequency == pytest.approx(1000, abs=2)
    assert heard.level_dbfs == pytest.approx(-12.0, abs=0.5)


def test_odd_sample_count_rejected() -> None:
    with pytest.raises(ValueError):
        G722Encoder().encode(array.array("h", [0, 1, 2]))
