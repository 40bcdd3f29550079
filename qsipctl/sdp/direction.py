"""Media direction in a re-offer: hold and resume from the far end (RFC 3264 §6.1, §8.4).

Why a module of its own: a PBX puts a call on hold with a re-INVITE (or
UPDATE) whose SDP says ``a=sendonly`` ("I send music or nothing, do not send
to me"), ``a=inactive`` (nobody sends), or -- RFC 2543's old style, still met
in the field -- ``c=0.0.0.0`` (no address: send it neither RTP nor RTCP).
The answer mirrors the offer (sendonly -> recvonly, RFC 3264 §6.1); RFC 3264
§8.4 asks the recipient of a held offer NOT to answer "held" itself (a
sendonly offer gets recvonly, never inactive).  What we may send and what we
may expect to receive follow from the answer, and the media session obeys
that.  Pure functions on SDP values: no I/O, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from qsipctl.sdp.message import Media, SessionDescription

DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")
# RFC 3264 §6.1: the answer's direction for each offered one
_ANSWER = {"sendrecv": "sendrecv", "sendonly": "recvonly", "recvonly": "sendonly",
           "inactive": "inactive"}  # fmt: skip
# c= with the unspecified address: RFC 2543 hold (RFC 3264 §8.4), IPv4 or IPv6
_NO_ADDRESS = frozenset({"0.0.0.0", "::"})


@dataclass(frozen=True, slots=True)
class OfferDirection:
    """What a (re-)offer's direction means for our side of the one audio stream."""

    offered: str  # the offer's direction attribute (media level over session level)
    old_style_hold: bool  # c=0.0.0.0: the far end wants neither RTP nor RTCP (RFC 2543)
    answer: str  # the direction we answer with

    @property
    def we_send(self) -> bool:
        """We may send RTP (our answer says send, and the far end gave an address)."""
        return self.answer in ("sendrecv", "sendonly")

    @property
    def they_send(self) -> bool:
        """The far end may send us RTP under this answer."""
        return self.answer in ("sendrecv", "recvonly")

    @property
    def send_rtcp(self) -> bool:
        """RTCP continues on a held stream (RFC 3264 §5.1), except to ``c=0.0.0.0``."""
        return not self.old_style_hold

    @property
    def held(self) -> bool:
        """The far end does not want our audio: it put the call on hold."""
        return not self.we_send

    def describe(self) -> str:
        """How the offer said it, for reports: ``a=sendonly``, ``c=0.0.0.0 (old-style hold)``."""
        if self.old_style_hold:
            return f"c=0.0.0.0 (old-style hold, a={self.offered})"
        return f"a={self.offered}"


def offered_direction(sd: SessionDescription, media: Media) -> str:
    """The direction an SDP gives a stream: its own attribute, else the session's (RFC 4566
    §6: a media-level direction overrides the session-level one), else sendrecv."""
    for key, _ in media.attributes:
        if key in DIRECTIONS:
            return key
    for key, _ in sd.attributes:
        if key in DIRECTIONS:
            return key
    return "sendrecv"


def answer_direction(offered: str) -> str:
    """RFC 3264 §6.1: sendonly -> recvonly, recvonly -> sendonly, the others as they are."""
    return _ANSWER.get(offered, "sendrecv")


def read_offer(sd: SessionDescription) -> OfferDirection:
    """The direction of an incoming (re-)offer's audio stream and the answer we give it.

    ``c=0.0.0.0`` takes the receiving half away from whatever the attribute
    says (sendrecv -> as sendonly, recvonly -> as inactive): we must not send
    to that address, and answer as to the equivalent attribute.
    """
    audio = sd.audio()
    if audio is None:
        return OfferDirection("sendrecv", False, "sendrecv")
    offered = offered_direction(sd, audio)
    address = sd.media_address(audio)
    old_style = address is not None and address in _NO_ADDRESS
    effective = offered
    if old_style:
        effective = {"sendrecv": "sendonly", "recvonly": "inactive"}.get(offered, offered)
    return OfferDirection(offered, old_style, answer_direction(effective))


def with_direction(sd: SessionDescription, direction: str) -> SessionDescription:
    """Our SDP with the audio stream's direction set; the o= version goes up when that
    changes anything (RFC 3264 §8: a changed description gets a new version)."""
    if direction not in DIRECTIONS:
        raise ValueError(f"unknown SDP direction {direction!r}")
    media = []
    changed = False
    for m in sd.media:
        if m.kind != "audio":
            media.append(m)
            continue
        current = offered_direction(sd, m)
        attrs = tuple(a for a in m.attributes if a[0] not in DIRECTIONS)
        media.append(replace(m, attributes=(*attrs, (direction, None))))
        changed = changed or current != direction
    if not changed:
        return sd
    return replace(sd, media=tuple(media), session_version=sd.session_version + 1)
