"""STUN messages (RFC 5389/8489, RFC 5780), sans-IO: bytes in, values out.

aiostun (the declared dependency) lays out requests: :func:`build_request`
fills an ``aiostun.stun.Message`` and lets ``aiostun.stun.Codec.encode``
write the header and attributes, and aiostun's address decoders read
MAPPED-ADDRESS, OTHER-ADDRESS and RESPONSE-ORIGIN.  What aiostun lacks is
added here: a bounded parser that raises only :class:`StunParseError`
(aiostun's decoder prints unknown attributes to stdout and raises whatever a
truncated packet makes it raise), XOR-MAPPED-ADDRESS *encoding*,
MESSAGE-INTEGRITY (HMAC-SHA1) and FINGERPRINT (CRC-32) both ways, and the
transaction id being ours (random bytes, injectable) rather than aiostun's
letters.  The RFC 5769 vectors check all of it byte for byte.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
import zlib
from dataclasses import dataclass, field

from aiostun import attribute as aattr
from aiostun import constants as C
from aiostun import stun as astun

from qsipctl.addr import packed

MAGIC_COOKIE: int = C.MAGIC_COOKIE
HEADER_SIZE = 20
FINGERPRINT_XOR = 0x5354554E
MAX_MESSAGE = 1500  # one datagram; anything longer is not a STUN answer to us

BINDING_REQUEST = 0x0001
BINDING_SUCCESS = 0x0101
BINDING_ERROR = 0x0111

ATTR_MAPPED_ADDRESS: int = C.ATTR_MAPPED_ADDRESS
ATTR_CHANGE_REQUEST: int = C.ATTR_CHANGE_REQUEST
ATTR_USERNAME: int = C.ATTR_USERNAME
ATTR_MESSAGE_INTEGRITY: int = C.ATTR_MESSAGE_INTEGRITY
ATTR_ERROR_CODE: int = C.ATTR_ERROR_CODE
ATTR_XOR_MAPPED_ADDRESS: int = C.ATTR_XOR_MAPPED_ADDRESS
ATTR_SOFTWARE: int = C.ATTR_SOFTWARE
ATTR_FINGERPRINT: int = C.ATTR_FINGERPRINT
ATTR_RESPONSE_ORIGIN: int = C.ATTR_RESPONSE_ORIGIN
ATTR_OTHER_ADDRESS: int = C.ATTR_OTHER_ADDRESS
ATTR_CHANGED_ADDRESS: int = C.ATTR_CHANGED_ADDRESS  # RFC 3489's name for OTHER-ADDRESS


class StunParseError(ValueError):
    """Bytes that are not a well-formed STUN message (the message says what is wrong)."""


@dataclass(frozen=True, slots=True)
class TransportAddress:
    """An IP and port as a STUN attribute carries them."""

    ip: str
    port: int

    def __str__(self) -> str:
        from qsipctl.addr import host_port

        return host_port(self.ip, self.port)


@dataclass(frozen=True, slots=True)
class StunMessage:
    """A parsed message: type, transaction id and attributes in wire order.

    ``raw`` is kept because MESSAGE-INTEGRITY and FINGERPRINT are checked
    over the bytes as received, not over a re-encoding.
    """

    msg_type: int
    transaction_id: bytes
    attributes: tuple[tuple[int, bytes], ...]
    raw: bytes = field(repr=False)

    def get(self, attr_type: int) -> bytes | None:
        for t, v in self.attributes:
            if t == attr_type:
                return v
        return None

    @property
    def is_success(self) -> bool:
        return self.msg_type == BINDING_SUCCESS

    def xor_mapped(self) -> TransportAddress | None:
        v = self.get(ATTR_XOR_MAPPED_ADDRESS)
        return None if v is None else decode_xor_address(v, self.transaction_id)

    def mapped(self) -> TransportAddress | None:
        """XOR-MAPPED-ADDRESS, else the RFC 3489 MAPPED-ADDRESS (old servers)."""
        return self.xor_mapped() or self._plain(ATTR_MAPPED_ADDRESS)

    def other_address(self) -> TransportAddress | None:
        """RFC 5780 OTHER-ADDRESS, else RFC 3489 CHANGED-ADDRESS (same meaning)."""
        return self._plain(ATTR_OTHER_ADDRESS) or self._plain(ATTR_CHANGED_ADDRESS)

    def response_origin(self) -> TransportAddress | None:
        return self._plain(ATTR_RESPONSE_ORIGIN)

    def error_code(self) -> tuple[int, str] | None:
        v = self.get(ATTR_ERROR_CODE)
        if v is None or len(v) < 4:
            return None
        return (v[2] & 0x07) * 100 + v[3], v[4:].decode("utf-8", "replace")

    def _plain(self, attr_type: int) -> TransportAddress | None:
        v = self.get(attr_type)
        return None if v is None else decode_address(v)


def new_transaction_id() -> bytes:
    return os.urandom(12)


def _check_address(value: bytes) -> int:
    if len(value) < 4:
        raise StunParseError("address attribute shorter than 4 bytes")
    family = value[1]
    want = {1: 8, 2: 20}.get(family)
    if want is None:
        raise StunParseError(f"address family {family} is neither IPv4 (1) nor IPv6 (2)")
    if len(value) != want:
        raise StunParseError(f"address attribute of {len(value)} bytes for family {family}")
    return family


def decode_address(value: bytes) -> TransportAddress:
    """MAPPED-ADDRESS, OTHER-ADDRESS, RESPONSE-ORIGIN: aiostun's decoder, length-checked first."""
    _check_address(value)
    attr = aattr.AttributeAddr(0)
    attr.decode(value)
    return TransportAddress(str(attr.params["ip"]), int(attr.params["port"]))


def decode_xor_address(value: bytes, transaction_id: bytes) -> TransportAddress:
    """XOR-MAPPED-ADDRESS (RFC 5389 15.2) via aiostun, length-checked first."""
    _check_address(value)
    attr = aattr.AttrXorMappedAddr()
    attr.decode(value, transaction_id)
    return TransportAddress(str(attr.params["ip"]), int(attr.params["port"]))


def encode_xor_address(addr: TransportAddress, transaction_id: bytes) -> bytes:
    """The inverse aiostun does not have (a server's, or a test's, side)."""
    ip = packed(addr.ip)
    key = struct.pack("!I", MAGIC_COOKIE) + (transaction_id if len(ip) == 16 else b"")
    xip = bytes(a ^ b for a, b in zip(ip, key, strict=True))
    family = 1 if len(ip) == 4 else 2
    return struct.pack("!BBH", 0, family, addr.port ^ (MAGIC_COOKIE >> 16)) + xip


def encode_address(addr: TransportAddress) -> bytes:
    ip = packed(addr.ip)
    return struct.pack("!BBH", 0, 1 if len(ip) == 4 else 2, addr.port) + ip


def parse(data: bytes) -> StunMessage:
    """One STUN message from one datagram; :class:`StunParseError` for anything else."""
    if len(data) < HEADER_SIZE:
        raise StunParseError(f"{len(data)} bytes is shorter than a STUN header")
    if len(data) > MAX_MESSAGE:
        raise StunParseError(f"{len(data)} bytes is longer than one STUN datagram")
    msg_type, length, cookie = struct.unpack_from("!HHI", data)
    if msg_type & 0xC000:
        raise StunParseError("the first two bits of a STUN message must be zero")
    if cookie != MAGIC_COOKIE:
        raise StunParseError("no STUN magic cookie (not RFC 5389 STUN)")
    if length % 4 or HEADER_SIZE + length != len(data):
        raise StunParseError(f"length field {length} does not match {len(data) - 20} bytes")
    attrs: list[tuple[int, bytes]] = []
    pos = HEADER_SIZE
    while pos < len(data):
        if pos + 4 > len(data):
            raise StunParseError("truncated attribute header")
        a_type, a_len = struct.unpack_from("!HH", data, pos)
        end = pos + 4 + a_len
        if end > len(data):
            raise StunParseError(f"attribute 0x{a_type:04x} runs past the message")
        attrs.append((a_type, data[pos + 4 : end]))
        pos = end + (-a_len % 4)
    return StunMessage(msg_type, data[8:20], tuple(attrs), data)


def _tlv(attr_type: int, value: bytes, pad: bytes = b"\x00") -> bytes:
    return struct.pack("!HH", attr_type, len(value)) + value + pad * (-len(value) % 4)


def encode(
    msg_type: int,
    transaction_id: bytes,
    attributes: list[tuple[int, bytes]],
    *,
    integrity_key: bytes | None = None,
    fingerprint: bool = False,
    pad: bytes = b"\x00",
) -> bytes:
    """Any message, with MESSAGE-INTEGRITY and FINGERPRINT appended as RFC 5389 15.4/15.5 say.

    ``pad`` is the padding byte (any value is legal; RFC 5769 uses spaces).
    """
    body = b"".join(_tlv(t, v, pad) for t, v in attributes)
    head = struct.pack("!HHI", msg_type, 0, MAGIC_COOKIE) + transaction_id
    msg = head + body
    if integrity_key is not None:
        msg = _with_length(msg, len(msg) - HEADER_SIZE + 24)
        mac = hmac.new(integrity_key, msg, hashlib.sha1).digest()
        msg += _tlv(ATTR_MESSAGE_INTEGRITY, mac)
    if fingerprint:
        msg = _with_length(msg, len(msg) - HEADER_SIZE + 8)
        crc = (zlib.crc32(msg) ^ FINGERPRINT_XOR) & 0xFFFFFFFF
        msg += _tlv(ATTR_FINGERPRINT, struct.pack("!I", crc))
    return _with_length(msg, len(msg) - HEADER_SIZE)


def _with_length(msg: bytes, length: int) -> bytes:
    return msg[:2] + struct.pack("!H", length) + msg[4:]


def _offset_of(msg: StunMessage, attr_type: int) -> int | None:
    pos = HEADER_SIZE
    for t, v in msg.attributes:
        if t == attr_type:
            return pos
        pos += 4 + len(v) + (-len(v) % 4)
    return None


def check_fingerprint(msg: StunMessage) -> bool | None:
    """True/False when the message has a FINGERPRINT, None when it has none."""
    off = _offset_of(msg, ATTR_FINGERPRINT)
    value = msg.get(ATTR_FINGERPRINT)
    if off is None or value is None or len(value) != 4:
        return None
    crc = (zlib.crc32(msg.raw[:off]) ^ FINGERPRINT_XOR) & 0xFFFFFFFF
    return struct.pack("!I", crc) == value


def check_integrity(msg: StunMessage, key: bytes) -> bool | None:
    """HMAC-SHA1 over the bytes before MESSAGE-INTEGRITY, length adjusted (RFC 5389 15.4)."""
    off = _offset_of(msg, ATTR_MESSAGE_INTEGRITY)
    value = msg.get(ATTR_MESSAGE_INTEGRITY)
    if off is None or value is None:
        return None
    covered = _with_length(msg.raw[:off], off - HEADER_SIZE + 24)
    return hmac.compare_digest(hmac.new(key, covered, hashlib.sha1).digest(), value)


def build_request(
    transaction_id: bytes,
    *,
    change_ip: bool = False,
    change_port: bool = False,
    software: str | None = None,
) -> bytes:
    """A Binding request, laid out by aiostun's codec, with a FINGERPRINT of ours.

    CHANGE-REQUEST (RFC 5780 7.2) asks the server to answer from its other
    IP and/or port: how filtering behaviour is tested.
    """
    attrs: list[aattr.Attribute] = []
    if change_ip or change_port:
        attrs.append(aattr.AttrChangeRequest(changeIp=change_ip, changePort=change_port))
    if software:
        attrs.append(aattr.AttrSoftware(software))
    m = astun.Message(C.CLASS_REQUEST, C.METHOD_BINDING, attrs)
    m.transaction_id = transaction_id
    raw: bytes = astun.Codec().encode(m)
    base = parse(raw)
    return encode(base.msg_type, transaction_id, list(base.attributes), fingerprint=True)


def build_binding_success(
    transaction_id: bytes,
    mapped: TransportAddress,
    *,
    software: str | None = None,
    other: TransportAddress | None = None,
    origin: TransportAddress | None = None,
    integrity_key: bytes | None = None,
    fingerprint: bool = True,
    pad: bytes = b"\x00",
) -> bytes:
    """A Binding success (the server's side: the fake transport in tests, RFC 5769 checks)."""
    attrs: list[tuple[int, bytes]] = []
    if software is not None:
        attrs.append((ATTR_SOFTWARE, software.encode()))
    attrs.append((ATTR_XOR_MAPPED_ADDRESS, encode_xor_address(mapped, transaction_id)))
    if origin is not None:
        attrs.append((ATTR_RESPONSE_ORIGIN, encode_address(origin)))
    if other is not None:
        attrs.append((ATTR_OTHER_ADDRESS, encode_address(other)))
    return encode(
        BINDING_SUCCESS,
        transaction_id,
        attrs,
        integrity_key=integrity_key,
        fingerprint=fingerprint,
        pad=pad,
    )


def change_request_flags(data: bytes) -> tuple[bool, bool]:
    """(change IP, change port) from a CHANGE-REQUEST value."""
    if len(data) != 4:
        raise StunParseError("CHANGE-REQUEST must be 4 bytes")
    (flags,) = struct.unpack("!I", data)
    return bool(flags & 4), bool(flags & 2)
