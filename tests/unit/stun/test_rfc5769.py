"""RFC 5769 test vectors: the STUN codec byte for byte (aiostun layout + our MI/FINGERPRINT)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from aiostun import attribute as aattr
from aiostun import constants as C
from aiostun import stun as astun

from qsipctl.stun import message as m

PASSWORD = b"VOkJxbRl1RmTxUk/WvJxBt"


@pytest.fixture
def vectors() -> Path:
    repo = Path(__file__).resolve().parents[3]
    for base in (repo.parent / "shared", Path("/work/shared")):
        d = base / "vectors" / "rfc5769"
        if (d / "vectors.json").exists():
            return d
    pytest.fail("RFC 5769 vectors not found next to the repo or in /work/shared")


def load(d: Path, name: str) -> tuple[bytes, dict[str, Any]]:
    meta = {v["file"]: v for v in json.loads((d / "vectors.json").read_text())["vectors"]}
    data = (d / name).read_bytes()
    assert hashlib.sha256(data).hexdigest() == meta[name]["sha256"]
    return data, meta[name]


def test_sample_request_integrity_and_fingerprint(vectors: Path) -> None:
    data, meta = load(vectors, "sample-request.bin")
    msg = m.parse(data)
    assert msg.msg_type == m.BINDING_REQUEST
    assert msg.transaction_id.hex() == meta["transaction_id"]
    assert m.check_integrity(msg, PASSWORD) is True
    assert m.check_fingerprint(msg) is True
    assert m.check_integrity(msg, b"wrong password") is False


def test_sample_request_reencodes_byte_for_byte(vectors: Path) -> None:
    data, _ = load(vectors, "sample-request.bin")
    msg = m.parse(data)
    body = [(t, v) for t, v in msg.attributes if t not in (0x0008, 0x8028)]
    again = m.encode(
        msg.msg_type, msg.transaction_id, body, integrity_key=PASSWORD, fingerprint=True, pad=b" "
    )
    assert again == data


@pytest.mark.parametrize(
    ("name", "ip"),
    [
        ("sample-ipv4-response.bin", "192.0.2.1"),
        ("sample-ipv6-response.bin", "2001:db8:1234:5678:11:2233:4455:6677"),
    ],
)
def test_responses_xor_mapped_address_both_ways(vectors: Path, name: str, ip: str) -> None:
    data, _ = load(vectors, name)
    msg = m.parse(data)
    assert msg.xor_mapped() == m.TransportAddress(ip, 32853)
    assert m.check_integrity(msg, PASSWORD) is True
    assert m.check_fingerprint(msg) is True
    built = m.build_binding_success(
        msg.transaction_id,
        m.TransportAddress(ip, 32853),
        software="test vector",
        integrity_key=PASSWORD,
        pad=b" ",
    )
    assert built == data


def test_long_term_credentials(vectors: Path) -> None:
    data, meta = load(vectors, "sample-request-long-term-auth.bin")
    msg = m.parse(data)
    key = bytes.fromhex(meta["message_integrity_key_hex"])
    assert m.check_integrity(msg, key) is True
    assert m.check_fingerprint(msg) is None  # this vector has none


def test_corrupted_byte_breaks_the_fingerprint(vectors: Path) -> None:
    data, _ = load(vectors, "sample-ipv4-response.bin")
    bad = bytearray(data)
    bad[30] ^= 0x01
    msg = m.parse(bytes(bad))
    assert m.check_fingerprint(msg) is False
    assert m.check_integrity(msg, PASSWORD) is False


def test_request_agrees_with_aiostun_codec() -> None:
    """Our request is aiostun's layout plus a FINGERPRINT: the prefix is aiostun's bytes."""
    tid = bytes(range(12))
    ours = m.build_request(tid, change_ip=True, change_port=True)
    a = astun.Message(C.CLASS_REQUEST, C.METHOD_BINDING, [aattr.AttrChangeRequest(True, True)])
    a.transaction_id = tid
    theirs = astun.Codec().encode(a)
    assert ours[4 : len(theirs)] == theirs[4:]
    assert m.change_request_flags(m.parse(ours).get(m.ATTR_CHANGE_REQUEST) or b"") == (True, True)
    assert m.check_fingerprint(m.parse(ours)) is True


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00\x01\x00\x00",
        b"\x00\x01\x00\x04\x21\x12\xa4\x42" + b"x" * 12,  # length says 4, none follow
        b"\x00\x01\x00\x00\x00\x00\x00\x00" + b"x" * 12,  # no magic cookie
        b"\xc0\x01\x00\x00\x21\x12\xa4\x42" + b"x" * 12,  # top bits set
        b"\x01\x01\x00\x08\x21\x12\xa4\x42" + b"x" * 12 + b"\x00\x20\x00\x10abcd",
    ],
)
def test_malformed_input_raises_only_the_parse_error(data: bytes) -> None:
    with pytest.raises(m.StunParseError):
        m.parse(data)


def test_bad_address_family_is_a_parse_error() -> None:
    with pytest.raises(m.StunParseError):
        m.decode_xor_address(b"\x00\x03\x00\x00abcd", b"x" * 12)
    with pytest.raises(m.StunParseError):
        m.decode_address(b"\x00\x01\x00\x00abc")
