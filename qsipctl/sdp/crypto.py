"""SDES key attribute (RFC 4568) for SRTP: ``a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:...``.

Only the suite the Q-SYS core uses is built; parsing accepts any suite (so the
verdict can name it) but only AES_CM_128_HMAC_SHA1_80 keys are usable.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from dataclasses import dataclass, field

from qsipctl.sdp.errors import SdpError

SUITE = "AES_CM_128_HMAC_SHA1_80"
KEY_SALT_LEN = 30  # 16-byte master key + 14-byte master salt
_CRYPTO = re.compile(r"^(\d{1,9})\s+(\S+)\s+inline:([A-Za-z0-9+/=]+)(\|[^\s]*)?(?:\s+(.*))?$")


@dataclass(frozen=True, slots=True)
class CryptoAttribute:
    """One a=crypto line; ``key_salt`` is secret material and never shown in repr."""

    tag: int
    suite: str
    key_salt: bytes = field(repr=False)
    lifetime_mki: str = ""  # "|2^31|1:1" etc., kept as written
    session_params: str = ""

    def serialize(self) -> str:
        key = base64.b64encode(self.key_salt).decode()
        tail = f" {self.session_params}" if self.session_params else ""
        return f"{self.tag} {self.suite} inline:{key}{self.lifetime_mki}{tail}"


def new_crypto(tag: int = 1) -> CryptoAttribute:
    """A fresh random master key and salt for our side of the call."""
    return CryptoAttribute(tag, SUITE, os.urandom(KEY_SALT_LEN))


def parse_crypto(value: str) -> CryptoAttribute:
    """Read the value of an a=crypto attribute; :class:`SdpError` when malformed."""
    m = _CRYPTO.match(value.strip())
    if not m:
        raise SdpError("a=crypto is not '<tag> <suite> inline:<key>' (RFC 4568)")
    try:
        key = base64.b64decode(m.group(3), validate=True)
    except (binascii.Error, ValueError):
        raise SdpError("a=crypto key is not valid base64") from None
    if m.group(2) == SUITE and len(key) != KEY_SALT_LEN:
        raise SdpError(f"a=crypto {SUITE} key is {len(key)} bytes, expected {KEY_SALT_LEN}")
    return CryptoAttribute(int(m.group(1)), m.group(2), key, m.group(4) or "", m.group(5) or "")
