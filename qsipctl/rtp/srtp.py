"""SRTP/SRTCP (RFC 3711) with SDES keys, through ``pylibsrtp`` (libsrtp; the binding aiortc uses).

Crypto is never hand-written: libsrtp does AES-CM and HMAC-SHA1-80 and the
replay checks.  One :class:`SrtpContext` per call holds our outbound key and
the far end's inbound key (from its a=crypto line).
"""

from __future__ import annotations

import pylibsrtp

from qsipctl.rtp.errors import RtpError


class SrtpContext:
    """Protect what we send with ``local_key``; unprotect what arrives with ``remote_key``."""

    def __init__(self, local_key: bytes, remote_key: bytes) -> None:
        self._tx = pylibsrtp.Session(self._policy(local_key, pylibsrtp.Policy.SSRC_ANY_OUTBOUND))
        self._rx = pylibsrtp.Session(self._policy(remote_key, pylibsrtp.Policy.SSRC_ANY_INBOUND))

    @staticmethod
    def _policy(key: bytes, direction: int) -> pylibsrtp.Policy:
        if len(key) != 30:
            raise RtpError(f"SRTP master key+salt is {len(key)} bytes, expected 30")
        return pylibsrtp.Policy(
            key=key,
            ssrc_type=direction,
            srtp_profile=pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80,
        )

    def protect(self, rtp: bytes) -> bytes:
        return bytes(self._tx.protect(rtp))

    def protect_rtcp(self, rtcp: bytes) -> bytes:
        return bytes(self._tx.protect_rtcp(rtcp))

    def unprotect(self, srtp: bytes) -> bytes:
        try:
            return bytes(self._rx.unprotect(srtp))
        except pylibsrtp.Error as exc:
            raise RtpError(f"SRTP packet rejected: {exc}") from None

    def unprotect_rtcp(self, srtcp: bytes) -> bytes:
        try:
            return bytes(self._rx.unprotect_rtcp(srtcp))
        except pylibsrtp.Error as exc:
            raise RtpError(f"SRTCP packet rejected: {exc}") from None
