"""Errors of the RTP layer: a datagram from the network that is not what it claims."""

from __future__ import annotations

from qsipctl.errors import QsipctlError


class RtpError(QsipctlError):
    """A malformed RTP or RTCP packet, or an SRTP packet that fails authentication."""
