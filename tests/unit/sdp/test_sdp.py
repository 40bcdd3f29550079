"""SDP: the offer the core would send, liberal parsing with bounds, RFC 3264 choices."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qsipctl.sdp import (
    NoCommonCodec,
    OfferSettings,
    SdpError,
    analyse_offer,
    answer_offer,
    build_offer,
    explain_status,
    negotiate,
    new_crypto,
    parse,
    parse_crypto,
)
from qsipctl.sdp.message import MAX_SDP_BYTES
from qsipctl.site.model import CoreSettings

OFFER = (
    "v=0\r\n"
    "o=- 7 1 IN IP4 198.18.0.10\r\n"
    "s=qsipctl\r\n"
    "c=IN IP4 198.18.0.10\r\n"
    "t=0 0\r\n"
    "m=audio 16384 RTP/AVP 8 0 101\r\n"
    "a=rtpmap:8 PCMA/8000\r\n"
    "a=rtpmap:0 PCMU/8000\r\n"
    "a=rtpmap:101 telephone-event/8000\r\n"
    "a=fmtp:101 0-16\r\n"
    "a=ptime:20\r\n"
    "a=sendrecv\r\n"
)


def answer(body_m: str, extra: str = "", c: str = "198.19.0.5") -> bytes:
    return (f"v=0\r\no=pbx 1 1 IN IP4 {c}\r\ns=-\r\nc=IN IP4 {c}\r\nt=0 0\r\n"
            f"m=audio {body_m}\r\n{extra}").encode()  # fmt: skip


def test_offer_is_the_cores_settings_exactly() -> None:
    core = CoreSettings(codecs=("PCMA", "PCMU"), dtmf_payload_type=101)
    offer = build_offer(OfferSettings.from_core(core), "198.18.0.10", 16384, 7)
    assert offer.serialize().decode() == OFFER


def test_offer_sip_info_srtp_and_stun_address() -> None:
    key = new_crypto()
    settings = OfferSettings(codecs=("G722",), dtmf_mode="sip-info", srtp=True)
    sd = build_offer(settings, "198.19.7.7", 20000, 1, crypto=key)
    m = sd.media[0]
    assert m.proto == "RTP/SAVP" and m.formats == ("9",)
    assert "telephone-event" not in sd.serialize().decode()
    assert parse_crypto(m.attribute("crypto") or "").key_salt == key.key_salt
    assert sd.connection == "198.19.7.7"  # the STUN-mapped address when given
    assert key.key_salt.hex() not in repr(key)
    with pytest.raises(SdpError, match="SRTP"):
        build_offer(settings, "198.18.0.1", 1, 1)
    with pytest.raises(SdpError, match="G729"):
        build_offer(OfferSettings(codecs=("G729",)), "198.18.0.1", 1, 1)


def test_parse_round_trip_and_liberal_input() -> None:
    sd = parse(OFFER)
    assert parse(sd.serialize()) == sd
    lf = OFFER.replace("\r\n", "\n") + "garbage line\nx\n" + "a=unknown-thing:42\n"
    assert parse(lf).media[0].formats == ("8", "0", "101")
    m = parse(lf).media[0]
    assert m.ptime == 20 and m.direction == "sendrecv" and m.fmtp(101) == "0-16"


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (b"v=0\r\n" + b"a=x\r\n" * 20000, "limit"),
        (b"v=0\r\nm=audio 99999 RTP/AVP 0\r\n", "out of range"),
        (b"v=0\r\nm=audio\r\n", "m="),
        (b"v=0\r\nc=IN IP4\r\n", "c="),
        (b"v=0\r\n" + b"m=audio 1 RTP/AVP 0\r\n" * 40, "m-lines"),
        (b"v=0\r\nm=audio 1 RTP/AVP " + b"0 " * 200 + b"\r\n", "formats"),
        (b"v=0\r\n" + b"x" * MAX_SDP_BYTES, "bytes"),
    ],
)
def test_hostile_sdp_is_one_clear_error(body: bytes, match: str) -> None:
    with pytest.raises(SdpError, match=match):
        parse(body)


@given(st.binary(max_size=2000))
def test_parse_raises_only_sdp_error(data: bytes) -> None:
    with contextlib.suppress(SdpError):
        parse(data)


@given(st.text(alphabet="vocmta=0123456789 /:\r\nIPAVRT", max_size=400))
def test_negotiate_raises_only_sdp_error(text: str) -> None:
    offer = build_offer(OfferSettings(), "198.18.0.1", 16384, 1)
    with contextlib.suppress(SdpError):
        negotiate(offer, parse(text))


def test_answer_picks_first_common_and_maps_dynamic_types() -> None:
    offer = build_offer(OfferSettings(), "198.18.0.10", 16384, 1)
    ans = answer(
        "30000 RTP/AVP 18 8 96",
        "a=rtpmap:18 G729/8000\r\na=rtpmap:96 telephone-event/8000\r\na=rtcp:30011\r\n",
    )
    n = negotiate(offer, parse(ans))
    assert n.codec.name == "PCMA" and n.remote_payload_type == 8
    assert n.telephone_event_pt == 96  # their number, not our 101
    assert (n.remote_address, n.remote_port, n.remote_rtcp_port) == ("198.19.0.5", 30000, 30011)
    assert n.answered == ("G729", "PCMA")


def test_no_codec_in_common_names_both_lists() -> None:
    offer = build_offer(OfferSettings(codecs=("PCMU", "PCMA")), "198.18.0.10", 16384, 1)
    with pytest.raises(NoCommonCodec) as err:
        negotiate(offer, parse(answer("30000 RTP/AVP 18", "a=rtpmap:18 G729/8000\r\n")), "the PBX")
    assert str(err.value) == (
        "no codec in common: we offered PCMU, PCMA; the PBX answered only G729"
    )
    with pytest.raises(NoCommonCodec, match="port 0"):
        negotiate(offer, parse(answer("0 RTP/AVP 0")))
    with pytest.raises(SdpError, match="no audio"):
        negotiate(offer, parse(b"v=0\r\nc=IN IP4 198.19.0.5\r\n"))


def test_clock_rate_must_match() -> None:
    offer = build_offer(OfferSettings(codecs=("PCMU",)), "198.18.0.10", 16384, 1)
    with pytest.raises(NoCommonCodec):
        negotiate(offer, parse(answer("30000 RTP/AVP 97", "a=rtpmap:97 PCMU/16000\r\n")))


def test_answering_an_incoming_offer_follows_its_order() -> None:
    incoming = parse(answer("40000 RTP/AVP 9 0 8 101", "a=rtpmap:101 telephone-event/8000\r\n"))
    n = answer_offer(OfferSettings(codecs=("PCMU", "G722")), incoming)
    assert n.codec.name == "G722" and n.telephone_event_pt == 101


def test_srtp_answer_needs_its_key() -> None:
    key = new_crypto()
    offer = build_offer(OfferSettings(srtp=True), "198.18.0.10", 16384, 1, crypto=key)
    theirs = new_crypto()
    ok = answer("30000 RTP/SAVP 0", f"a=crypto:1 {theirs.serialize()[2:]}\r\n")
    assert negotiate(offer, parse(ok)).srtp_crypto == theirs
    with pytest.raises(SdpError, match="AES_CM_128_HMAC_SHA1_80"):
        negotiate(offer, parse(answer("30000 RTP/SAVP 0")))
    with pytest.raises(SdpError, match=r"base64|inline"):
        parse_crypto("1 AES_CM_128_HMAC_SHA1_80 inline:!!!")
    with pytest.raises(SdpError, match="30"):
        parse_crypto("1 AES_CM_128_HMAC_SHA1_80 inline:AAAA")


def test_explain_488_606() -> None:
    text = explain_status(488, ("PCMU", "PCMA"), warning='304 pbx "Media type not available"')
    assert "488" in text and "PCMU, PCMA" in text and "Media type not available" in text
    assert "606" in explain_status(606, ("G722",)) and "G722" in explain_status(606, ("G722",))


def test_inbound_offer_analysis() -> None:
    core = ("PCMU", "PCMA", "G722")
    delayed = analyse_offer(None, None, core, "rfc2833")
    assert not delayed.early_offer and "delayed offer" in delayed.verdict
    assert "early offer" in delayed.verdict and "enable it" in delayed.verdict
    early = analyse_offer(
        answer("40000 RTP/AVP 18 8 101", "a=rtpmap:101 telephone-event/8000\r\n"),
        "application/sdp", core, "rfc2833")  # fmt: skip
    assert early.early_offer and early.codecs == ("G729", "PCMA") and early.common == ("PCMA",)
    assert early.telephone_event and early.telephone_event_pt == 101
    assert "PCMA" in early.verdict
    no_te = analyse_offer(answer("40000 RTP/AVP 0"), "application/sdp", core, "rfc2833")
    assert not no_te.telephone_event and "telephone-event" in no_te.verdict
    g729 = analyse_offer(answer("40000 RTP/AVP 18"), "application/sdp", core, "rfc2833")
    assert g729.common == () and "G729" in g729.verdict and "PCMU, PCMA, G722" in g729.verdict
    broken = analyse_offer(b"v=0\r\nm=audio x\r\n", "application/sdp", core, "rfc2833")
    assert broken.early_offer and broken.error
    other = analyse_offer(b"<xml/>", "application/xml", core, "rfc2833")
    assert not other.early_offer
