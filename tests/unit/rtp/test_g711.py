"""G.711 against the ITU-T G.191 reference values (shared/vectors/g711), vectors first."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from qsipctl.rtp import g711
from tests.fixtures.common import REPO


@pytest.fixture(scope="module")
def vectors() -> dict[str, Any]:
    for base in (REPO.parent / "shared", Path("/work/shared")):
        path = base / "vectors" / "g711" / "g711-vectors.json"
        if path.exists():
            return dict(json.loads(path.read_text()))
    pytest.fail("shared/vectors/g711/g711-vectors.json not found next to the repo or in /work")


def test_alaw_encode_matches_itu(vectors: dict[str, Any]) -> None:
    for entry in vectors["encode"]:
        assert g711.alaw_encode_sample(entry["linear"]) == entry["alaw"], entry


def test_ulaw_encode_matches_itu_not_audioop(vectors: dict[str, Any]) -> None:
    differ = 0
    for entry in vectors["encode"]:
        assert g711.ulaw_encode_sample(entry["linear"]) == entry["ulaw"], entry
        differ += entry["ulaw"] != entry["ulaw_audioop"]
    assert differ == 26  # the README's count: these entries prove we follow ITU, not audioop


def test_decode_tables_match_itu(vectors: dict[str, Any]) -> None:
    for code, value in vectors["decode_ulaw"].items():
        assert g711.ulaw_decode_sample(int(code)) == value
    for code, value in vectors["decode_alaw"].items():
        assert g711.alaw_decode_sample(int(code)) == value


def test_table_codec_equals_per_sample(vectors: dict[str, Any]) -> None:
    linear = [e["linear"] for e in vectors["encode"]]
    assert list(g711.encode(linear, "ulaw")) == [e["ulaw"] for e in vectors["encode"]]
    assert list(g711.encode(linear, "alaw")) == [e["alaw"] for e in vectors["encode"]]
    assert list(g711.decode(bytes(range(256)), "alaw")) == [
        vectors["decode_alaw"][str(c)] for c in range(256)
    ]


def test_ulaw_sign_run_from_readme() -> None:
    # README: for -4..-1 ITU gives 0x7f where audioop gives 0x7e.
    assert [g711.ulaw_encode_sample(x) for x in (-4, -3, -2, -1)] == [0x7F] * 4
