"""Errors of the SIP layer.

A SIP message comes from a network peer we do not control, so a malformed one
is an *expected* failure: it must surface as one readable line (what is wrong,
and where), never as a traceback.  ``status`` carries the response code an
element would answer with (RFC 3261 §21), so a server side can reply 400 or
505 without re-deriving the reason, much like h11's ``error_status_hint``.
"""

from __future__ import annotations

from qsipctl.errors import QsipctlError


class SipError(QsipctlError):
    """Base of every expected failure in the SIP layer."""


class SipParseError(SipError):
    """A message, header or URI that does not follow the RFC 3261 grammar."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def clip(text: str, limit: int = 60) -> str:
    """repr() of a peer-supplied value, cut short: error lines must stay one line."""
    return repr(text) if len(text) <= limit else repr(text[:limit]) + "..."
