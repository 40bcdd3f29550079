from __future__ import annotations

import hashlib
import re
from base64 import b64encode
from pathlib import Path

import paramiko
import pytest

from qsipctl.rollout.errors import HostKeyError
from qsipctl.rollout.hostkeys import KnownHosts, fingerprint, host_entry


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> tuple[paramiko.PKey, paramiko.PKey]:
    from tests.fixtures.sshd import _ed25519_openssh

    tmp = tmp_path_factory.mktemp("keys")
    return _ed25519_openssh(tmp / "a"), _ed25519_openssh(tmp / "b")


def test_fingerprint_matches_openssh_format(keys) -> None:
    key = keys[0]
    expected = "SHA256:" + b64encode(hashlib.sha256(key.asbytes()).digest()).decode().rstrip("=")
    assert fingerprint(key) == expected and not expected.endswith("=")


def test_host_entry() -> None:
    assert host_entry("198.18.0.1", 22) == "198.18.0.1"
    assert host_entry("198.18.0.1", 2222) == "[198.18.0.1]:2222"


def test_unknown_refused_then_accept_new_appends(tmp_path: Path, keys) -> None:
    path = tmp_path / "kh"
    path.write_text("# my comment\n")
    with pytest.raises(HostKeyError, match=r"127.0.0.1:2222 is unknown .*SHA256:"):
        KnownHosts(path).verify("127.0.0.1", 2222, keys[0])
    KnownHosts(path, accept_new=True).verify("127.0.0.1", 2222, keys[0])
    text = path.read_text()
    assert text.startswith("# my comment\n")
    assert f"[127.0.0.1]:2222 ssh-ed25519 {keys[0].get_base64()}\n" in text
    KnownHosts(path).verify("127.0.0.1", 2222, keys[0])  # strict now passes


def test_changed_key_refused_even_with_accept_new(tmp_path: Path, keys) -> None:
    path = tmp_path / "kh"
    path.write_text(f"[127.0.0.1]:2222 ssh-ed25519 {keys[0].get_base64()}\n")
    before = path.read_text()
    with pytest.raises(HostKeyError, match=re.escape(fingerprint(keys[1]))):
        KnownHosts(path, accept_new=True).verify("127.0.0.1", 2222, keys[1])
    assert path.read_text() == before


def test_hashed_entries_understood(tmp_path: Path, keys) -> None:
    hashed = paramiko.HostKeys.hash_host("[127.0.0.1]:2200")
    path = tmp_path / "kh"
    path.write_text(f"{hashed} ssh-ed25519 {keys[0].get_base64()}\n")
    store = KnownHosts(path)
    store.verify("127.0.0.1", 2200, keys[0])
    assert store.preferred_algorithms("127.0.0.1", 2200) == ("ssh-ed25519",)
    assert store.preferred_algorithms("127.0.0.1", 2201) == ()


def test_hostport_brackets_ipv6() -> None:
    from qsipctl.rollout.hostkeys import hostport

    assert hostport("198.18.0.1", 22) == "198.18.0.1:22"
    assert hostport("2001:db8::1", 2222) == "[2001:db8::1]:2222"
