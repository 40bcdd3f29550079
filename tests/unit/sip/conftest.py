"""Fixtures of the SIP unit tests."""

from pathlib import Path

import pytest

from tests.unit.sip.vectors import shared_vectors


@pytest.fixture(scope="session")
def rfc4475_dir() -> Path:
    return shared_vectors() / "rfc4475"
