"""Errors of the SDP layer.

An SDP body comes from a peer we do not control: a broken or hostile one is an
*expected* failure and must surface as one readable line, never a traceback.
"""

from __future__ import annotations

from qsipctl.errors import QsipctlError


class SdpError(QsipctlError):
    """An SDP body that cannot be read (too big, not text, broken m= or c= line)."""


class NoCommonCodec(SdpError):
    """Offer and answer (or offer and our list) share no audio codec; names both lists."""

    def __init__(self, ours: tuple[str, ...], theirs: tuple[str, ...], who: str = "the far end"):
        self.ours = ours
        self.theirs = theirs
        shown = ", ".join(theirs) if theirs else "no audio codec at all"
        super().__init__(
            f"no codec in common: we offered {', '.join(ours) or 'nothing'}; "
            f"{who} answered only {shown}"
        )
