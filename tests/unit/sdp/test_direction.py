"""Hold and resume from the far end: the answer's direction for each offer (RFC 3264 §6.1, §8.4)."""

from __future__ import annotations

import pytest

from qsipctl.sdp import OfferSettings, build_offer, parse, read_offer, with_direction
from qsipctl.sdp.direction import answer_direction, offered_direction


def reoffer(
    direction: str | None = None, address: str = "198.51.100.7", session: str = ""
) -> bytes:
    """A PBX's re-offer: PCMU, the direction at media level (or none), optional session attr."""
    family = "IP6" if ":" in address else "IP4"
    lines = ["v=0", f"o=pbx 1 2 IN {family} {address}", "s=-", f"c=IN {family} {address}",
             "t=0 0"]  # fmt: skip
    if session:
        lines.append(f"a={session}")
    lines += ["m=audio 40000 RTP/AVP 0", "a=rtpmap:0 PCMU/8000"]
    if direction:
        lines.append(f"a={direction}")
    return ("\r\n".join(lines) + "\r\n").encode()


@pytest.mark.parametrize(
    ("offered", "answer", "we_send", "they_send"),
    [
        ("sendrecv", "sendrecv", True, True),
        ("sendonly", "recvonly", False, True),  # hold: they may play music, we go quiet
        ("inactive", "inactive", False, False),  # hold: nobody sends
        ("recvonly", "sendonly", True, False),
    ],
)
def test_answer_mirrors_the_offered_direction(offered: str, answer: str, we_send: bool,
                                              they_send: bool) -> None:  # fmt: skip
    d = read_offer(parse(reoffer(offered)))
    assert (d.offered, d.answer, d.we_send, d.they_send) == (offered, answer, we_send, they_send)
    assert d.held is (not we_send)
    assert not d.old_style_hold and d.send_rtcp
    assert d.describe() == f"a={offered}"


def test_no_direction_attribute_means_sendrecv_and_session_level_counts() -> None:
    assert read_offer(parse(reoffer(None))).answer == "sendrecv"
    d = read_offer(parse(reoffer(None, session="sendonly")))
    assert (d.offered, d.answer) == ("sendonly", "recvonly")
    # a media-level attribute overrides the session-level one (RFC 4566 §6)
    d = read_offer(parse(reoffer("sendrecv", session="inactive")))
    assert d.answer == "sendrecv"


@pytest.mark.parametrize(
    ("direction", "address", "answer"),
    [
        (None, "0.0.0.0", "recvonly"),  # RFC 2543 hold: as sendonly, never answered held
        ("sendrecv", "0.0.0.0", "recvonly"),
        ("sendonly", "0.0.0.0", "recvonly"),
        ("recvonly", "0.0.0.0", "inactive"),
        ("inactive", "0.0.0.0", "inactive"),
        ("sendrecv", "::", "recvonly"),
    ],
)
def test_old_style_hold_with_no_address(direction: str | None, address: str, answer: str
                                        ) -> None:  # fmt: skip
    d = read_offer(parse(reoffer(direction, address)))
    assert d.old_style_hold and d.answer == answer
    assert not d.we_send and not d.send_rtcp  # neither RTP nor RTCP to 0.0.0.0 (§8.4)
    assert d.describe().startswith("c=0.0.0.0 (old-style hold")


def test_answer_direction_table_and_unknown_values() -> None:
    assert [answer_direction(x) for x in ("sendrecv", "sendonly", "recvonly", "inactive")] == [
        "sendrecv", "recvonly", "sendonly", "inactive"]  # fmt: skip
    assert answer_direction("bogus") == "sendrecv"
    sd = parse(reoffer("sendonly"))
    audio = sd.audio()
    assert audio is not None and offered_direction(sd, audio) == "sendonly"


def test_no_audio_line_reads_as_sendrecv() -> None:
    assert read_offer(parse(b"v=0\r\ns=-\r\nt=0 0\r\n")).answer == "sendrecv"


def test_our_answer_gets_the_direction_once_and_a_new_version_only_when_changed() -> None:
    ours = build_offer(OfferSettings(), "192.0.2.10", 16384, 42, version=3)
    same = with_direction(ours, "sendrecv")
    assert same == ours  # unchanged: same version (RFC 3264 §8)
    held = with_direction(ours, "recvonly")
    assert held.session_version == 4
    text = held.serialize().decode()
    assert "a=recvonly\r\n" in text and "a=sendrecv" not in text
    assert text.count("a=recvonly") == 1
    again = with_direction(held, "recvonly")
    assert again.session_version == 4
    back = with_direction(held, "sendrecv")
    assert back.session_version == 5 and "a=sendrecv\r\n" in back.serialize().decode()
    # the answer still parses as what it says
    audio = parse(back.serialize()).audio()
    assert audio is not None and audio.direction == "sendrecv"


def test_unknown_direction_is_refused() -> None:
    ours = build_offer(OfferSettings(), "192.0.2.10", 16384, 42)
    with pytest.raises(ValueError, match="unknown SDP direction"):
        with_direction(ours, "sideways")
