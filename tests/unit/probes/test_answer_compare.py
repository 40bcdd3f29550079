"""compare_offer: the core's INVITE against the site's settings (``--answer-as``), pure logic."""

from __future__ import annotations

from qsipctl.probes.answer import compare_offer
from qsipctl.probes.inbound import InboundReport
from qsipctl.sdp import OfferSettings, analyse_offer

OFFER = b"""v=0\r
o=core 1 1 IN IP4 192.168.10.20\r
s=-\r
c=IN IP4 192.168.10.20\r
t=0 0\r
m=audio 16400 RTP/AVP 0 8 101\r
a=rtpmap:0 PCMU/8000\r
a=rtpmap:8 PCMA/8000\r
a=rtpmap:101 telephone-event/8000\r
a=fmtp:101 0-15\r
"""


def report(body: bytes | None, settings: OfferSettings, connection: str | None) -> InboundReport:
    r = InboundReport()
    r.analysis = analyse_offer(body, "application/sdp", settings.codecs, settings.dtmf_mode)
    r.connection = connection
    return r


def by_item(checks: list) -> dict:  # type: ignore[type-arg]
    return {c.item: c for c in checks}


def test_all_as_the_site_says() -> None:
    s = OfferSettings(codecs=("PCMU", "PCMA"))
    checks = by_item(compare_offer(report(OFFER, s, "192.168.10.20"), s, stun=False))
    assert all(c.ok for c in checks.values()), checks
    assert checks["telephone-event payload type"].seen == "101"
    assert "private" in checks["SDP address"].seen


def test_each_difference_is_named() -> None:
    site = OfferSettings(codecs=("PCMA", "PCMU"), dtmf_payload_type=96, srtp=True)
    checks = by_item(compare_offer(report(OFFER, site, "192.168.10.20"), site, stun=True))
    assert not checks["codecs and order"].ok and checks["codecs and order"].seen == "PCMU, PCMA"
    assert not checks["telephone-event payload type"].ok
    assert not checks["SRTP"].ok and checks["SRTP"].expected == "RTP/SAVP"
    sdp_address = checks["SDP address"]
    assert not sdp_address.ok and "STUN" in sdp_address.expected  # STUN on, private address


def test_delayed_offer_is_the_only_check() -> None:
    s = OfferSettings()
    [check] = compare_offer(report(None, s, None), s, stun=False)
    assert check.item == "early offer" and not check.ok


def test_sip_info_mode_expects_no_telephone_event() -> None:
    s = OfferSettings(codecs=("PCMU", "PCMA"), dtmf_mode="sip-info")
    checks = by_item(compare_offer(report(OFFER, s, "203.0.113.7"), s, stun=True))
    assert not checks["telephone-event"].ok  # offered although the site says SIP INFO
    assert checks["SDP address"].ok  # public: STUN worked from the core's network
