"""Where the published test vectors are: ``<repo>/../shared/vectors``, else ``/work/shared``.

Resolved when a test asks (a fixture, or a hypothesis strategy drawn at run
time), never at import: a checkout in another place must still collect.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]


@cache
def shared_vectors() -> Path:
    for base in (REPO.parent / "shared", Path("/work/shared")):
        if (base / "vectors").is_dir():
            return base / "vectors"
    pytest.fail(f"published test vectors not found in {REPO.parent / 'shared'} or /work/shared")


@cache
def rfc4475_seeds() -> tuple[bytes, ...]:
    return tuple(p.read_bytes() for p in sorted((shared_vectors() / "rfc4475").glob("*.dat")))
