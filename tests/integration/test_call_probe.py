"""The call probe end to end: our SIP endpoint/dialog layer + media against real peers.

baresip answers (directly, and behind Kamailio, which challenges the INVITE
with 407 and routes it to the registered phone); the call carries audio both
ways, DTMF reaches baresip, and the call is hung up by us.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import threading
import wave
from array import array
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from qsipctl.net.transport import TlsSettings
from qsipctl.probes.base import ProbeOutcome
from qsipctl.probes.call import CallOptions, CallReport, place_call
from qsipctl.probes.target import ProbeTarget
from qsipctl.rtp.tone import ToneAnalysis, analyse
from qsipctl.sdp import OfferSettings
from qsipctl.site.secrets import Secret
from tests.fixtures.baresip_phone import baresip_phone
from tests.fixtures.common import free_port, wait_until
from tests.fixtures.kamailio import Kamailio, make_ca

pytestmark = pytest.mark.integration


def test_call_to_baresip_audio_both_ways_and_dtmf(tmp_path: Path) -> None:
    with baresip_phone(tmp_path / "phone", tone=1000) as phone:
        events = phone.events()
        try:
            target = ProbeTarget(user="qsipctl", domain=phone.host, host=phone.host,
                                 port=phone.port, transport="udp")  # fmt: skip
            opts = CallOptions(number="phone", settings=OfferSettings(codecs=("PCMA", "PCMU")),
                               duration=3.0, dtmf="42#", port_range=(44000, 44999))  # fmt: skip
            outcome, report = asyncio.run(place_call(target, opts))
            wait_until(lambda: bool(phone.recordings()), timeout=10)
            wait_until(lambda: any(e.get("type") == "CALL_CLOSED" for e in events.events), 10)
        finally:
            events.close()
    result = outcome.result
    assert result.ok, (result.verdict, result.message)
    assert result.status == 200 and report.codec == "PCMA"
    assert 180 in report.provisional or report.answered_ms is not None
    assert report.hung_up_by == "us"
    media = report.media
    assert media is not None and media.audio.kind == "tone"
    assert media.audio.frequency == pytest.approx(1000, abs=3)
    assert media.received.lost == 0 and media.dtmf_sent == "42#"
    assert events.dtmf() == "42#"
    assert any(e.get("type") == "CALL_CLOSED" for e in events.events)  # our BYE ended it


def _target(phone_host: str, port: int, **kw: object) -> ProbeTarget:
    return ProbeTarget(user="qsipctl", domain=phone_host, host=phone_host, port=port,
                       transport="udp", **kw)  # type: ignore[arg-type]  # fmt: skip


def test_no_codec_in_common_is_explained(tmp_path: Path) -> None:
    # baresip with only G.722 answers a PCMU/PCMA offer with 488 (LAB-NOTES)
    with baresip_phone(tmp_path / "phone", codecs="G722/16000/1") as phone:
        opts = CallOptions(number="phone", settings=OfferSettings(codecs=("PCMU", "PCMA")),
                           duration=1.0, port_range=(44000, 44999))  # fmt: skip
        outcome, report = asyncio.run(place_call(_target(phone.host, phone.port), opts))
    result = outcome.result
    assert not result.ok and result.status == 488
    assert "488" in result.message and "PCMU, PCMA" in result.message
    assert report.media is None


def test_no_answer_is_cancelled(tmp_path: Path) -> None:
    with baresip_phone(tmp_path / "phone", answer="manual") as phone:
        events = phone.events()
        try:
            opts = CallOptions(number="phone", ring_timeout=2.0, port_range=(44000, 44999))
            outcome, report = asyncio.run(place_call(_target(phone.host, phone.port), opts))
            wait_until(lambda: any(e.get("type") == "CALL_CLOSED" for e in events.events), 10)
        finally:
            events.close()
    result = outcome.result
    assert not result.ok and result.verdict == "timeout" and report.cancelled
    assert "CANCEL" in result.message
    assert 180 in report.provisional and report.ringing_ms is not None


CALL_ROUTE = (
    'if (is_method("INVITE") && !has_totag()) {'
    ' if (!pv_proxy_authenticate("$fd", "$sht(auth=>$au)", "0")) {'
    ' proxy_challenge("$fd", "1"); exit; }'
    " consume_credentials();"
    ' if (!lookup("location")) { sl_send_reply("404", "Not Found"); exit; }'
    " t_relay(); exit; }"
    ' if (is_method("CANCEL|ACK|BYE")) { t_relay(); exit; }'
)


def test_call_through_kamailio_with_407_to_a_registered_phone(
    tmp_path: Path, kamailio_factory: Callable[..., Kamailio]
) -> None:
    k = kamailio_factory(extra_route=CALL_ROUTE)
    account = (f"<sip:1002@127.0.0.1:{k.udp_port};transport=udp>;auth_pass=secret-1002;"
               "regint=60")  # fmt: skip
    with baresip_phone(tmp_path / "phone", tone=697, account=account):
        wait_until(lambda: "1002" in k.registered_users(), timeout=10)
        target = ProbeTarget(user="1001", domain="127.0.0.1", host="127.0.0.1",
                             port=k.udp_port, transport="udp", auth_user="1001",
                             password=Secret("literal", "secret-1001"))  # fmt: skip
        opts = CallOptions(number="1002", settings=OfferSettings(codecs=("PCMU",)),
                           duration=2.0, port_range=(44000, 44999))  # fmt: skip
        outcome, report = asyncio.run(place_call(target, opts))
        unknown, _ = asyncio.run(place_call(target, replace(opts, number="1999")))
    result = outcome.result
    assert result.ok, (result.verdict, result.message)
    assert report.challenged == [407]  # Kamailio's proxy challenge, answered
    media = report.media
    assert media is not None and media.audio.frequency == pytest.approx(697, abs=3)
    assert report.hung_up_by == "us"
    assert not unknown.result.ok and unknown.result.status == 404
    assert "no such number" in unknown.result.message


def test_far_end_hangs_up_first(tmp_path: Path) -> None:
    with baresip_phone(tmp_path / "phone") as phone:
        events = phone.events()
        try:
            timer = threading.Timer(1.5, events.command, ("hangup",))
            timer.start()
            opts = CallOptions(number="phone", duration=6.0, port_range=(44000, 44999))
            outcome, report = asyncio.run(place_call(_target(phone.host, phone.port), opts))
            timer.cancel()
        finally:
            events.close()
    assert outcome.result.ok and report.hung_up_by == "far end"
    # "far end" is only set when their BYE arrived and was answered during the call
    assert report.media is not None and report.media.received.packets > 20


def test_rejected_call_in_plain_words(tmp_path: Path) -> None:
    with baresip_phone(tmp_path / "phone", answer="manual") as phone:
        events = phone.events()
        try:

            def reject_when_ringing() -> None:
                wait_until(lambda: any(e.get("type") == "CALL_INCOMING" for e in events.events),
                           10)  # fmt: skip
                events.command("hangup")

            rejecter = threading.Thread(target=reject_when_ringing)
            rejecter.start()
            opts = CallOptions(number="phone", ring_timeout=10.0, port_range=(44000, 44999))
            outcome, report = asyncio.run(place_call(_target(phone.host, phone.port), opts))
            rejecter.join()
        finally:
            events.close()
    result = outcome.result
    assert not result.ok and result.status is not None and 400 <= result.status < 700
    words = {486: "busy", 603: "declined", 480: "unavailable"}.get(result.status)
    assert words is not None and words in result.message, result.message
    assert report.media is None and not report.cancelled


_UAS_ANSWER = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="uas: {name}">
  <recv request="INVITE" crlf="true" rrs="true">
    <action><ereg regexp=".*" search_in="hdr" header="From:" assign_to="caller"/></action>
  </recv>
  <send><![CDATA[
SIP/2.0 180 Ringing
[last_Via:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:[local_ip]:[local_port];transport=[transport]>
Content-Length: 0

]]></send>
  <send retrans="500"><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:[local_ip]:[local_port];transport=[transport]>
{timer}Content-Type: application/sdp
Content-Length: [len]

v=0
o=pbx 1 1 IN IP[local_ip_type] [local_ip]
s=-
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 0
a=rtpmap:0 PCMU/8000

]]></send>
  <recv request="ACK" crlf="true"/>
{middle}
  <recv request="BYE"/>
  <send><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

]]></send>
  <Reference variables="{refs}"/>
</scenario>
"""
# We are the refresher: our re-INVITE must come with Session-Expires and our SDP, its
# o= version one up (RFC 3264 §8); SIPp's regexps with check_it fail the call otherwise.
_REFRESH = """
  <recv request="{method}">
    <action>
      <ereg regexp="^ *4;refresher=uac" search_in="hdr" header="Session-Expires:"
            check_it="true" assign_to="se"/>
      <ereg regexp="o=[^ ]+ [0-9]+ 2 IN" search_in="body" check_it="true" assign_to="ver"/>
    </action>
  </recv>
  <send><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:[local_ip]:[local_port];transport=[transport]>
Require: timer
Session-Expires: 4;refresher=uac
Content-Type: application/sdp
Content-Length: [len]

v=0
o=pbx 1 2 IN IP[local_ip_type] [local_ip]
s=-
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 0
a=rtpmap:0 PCMU/8000

]]></send>
{ack}
"""
# The far end re-INVITEs (hold/resume, a PBX re-anchoring media): our 200 must carry SDP.
_FAR_REINVITE = """
  <pause milliseconds="700"/>
  <send retrans="500"><![CDATA[
INVITE [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:pbx@[local_ip]:[local_port]>;tag=[pid]SIPpTag01[call_number]
To:[$caller]
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: <sip:[local_ip]:[local_port];transport=[transport]>
Max-Forwards: 70
Content-Type: application/sdp
Content-Length: [len]

v=0
o=pbx 1 2 IN IP[local_ip_type] [local_ip]
s=-
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 0
a=rtpmap:0 PCMU/8000

]]></send>
  <recv response="100" optional="true"/>
  <recv response="200">
    <action><ereg regexp="m=audio [0-9]+ RTP/AVP" search_in="body" check_it="true"
                  assign_to="ours"/></action>
  </recv>
  <send><![CDATA[
ACK [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:pbx@[local_ip]:[local_port]>;tag=[pid]SIPpTag01[call_number]
To:[$caller]
Call-ID: [call_id]
CSeq: 1 ACK
Max-Forwards: 70
Content-Length: 0

]]></send>
"""


# Our ACK "was lost": the far end repeats its 200 (RFC 3261 §13.3.1.4) and must get
# another ACK (§13.2.2.4), or it gives up on the call after 64*T1 and sends BYE.  (The
# in-dialog OPTIONS between keeps SIPp from taking our second ACK, identical to the
# first as it must be, for a retransmission of the first and answering it again.)
_ACK_LOST = """
  <pause milliseconds="300"/>
  <send retrans="500"><![CDATA[
OPTIONS [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:pbx@[local_ip]:[local_port]>;tag=[pid]SIPpTag01[call_number]
To:[$caller]
Call-ID: [call_id]
CSeq: 7 OPTIONS
Max-Forwards: 70
Content-Length: 0

]]></send>
  <recv response="200"/>
  <send><![CDATA[
SIP/2.0 200 OK
Via:[$invvia]
From:[$caller]
To:[$callee];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
CSeq:[$invcseq]
Contact: <sip:[local_ip]:[local_port];transport=[transport]>
Content-Type: application/sdp
Content-Length: [len]

v=0
o=pbx 1 1 IN IP[local_ip_type] [local_ip]
s=-
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 0
a=rtpmap:0 PCMU/8000

]]></send>
  <recv request="ACK" crlf="true"/>
"""


def _udp_bound(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def _call_sipp_uas(tmp_path: Path, scenario: str, opts: CallOptions
                   ) -> tuple[ProbeOutcome, CallReport, int, str]:  # fmt: skip
    """Place ``opts``'s call to a SIPp UAS running ``scenario``; SIPp's exit code and errors."""
    (tmp_path / "uas.xml").write_text(scenario)
    sip, media, ctrl = (free_port(socket.SOCK_DGRAM) for _ in range(3))
    sipp = subprocess.Popen(
        ["sipp", "-sf", "uas.xml", "-i", "127.0.0.1", "-p", str(sip), "-mi", "127.0.0.1",
         "-mp", str(media - media % 2), "-cp", str(ctrl), "-m", "1", "-nostdin", "-trace_err"],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    try:
        wait_until(lambda: _udp_bound(sip), timeout=10)  # SIPp listens before we call
        outcome, report = asyncio.run(place_call(_target("127.0.0.1", sip), opts))
        rc = sipp.wait(timeout=20)
    finally:
        if sipp.poll() is None:
            os.killpg(sipp.pid, signal.SIGKILL)
            sipp.wait()
    errors = "".join(p.read_text(errors="replace") for p in tmp_path.glob("*_errors.log"))
    return outcome, report, rc, errors


@pytest.mark.parametrize("method", ["INVITE", "UPDATE"])
def test_session_timer_refreshed_when_we_are_the_refresher(tmp_path: Path, method: str) -> None:
    timer = "Require: timer\nSession-Expires: 4;refresher=uac\n"
    if method == "UPDATE":  # the far end allows UPDATE: the refresh needs no ACK (RFC 3311)
        timer += "Allow: INVITE, ACK, CANCEL, BYE, UPDATE\n"
    ack = '  <recv request="ACK" crlf="true"/>' if method == "INVITE" else ""
    middle = _REFRESH.replace("{method}", method).replace("{ack}", ack)
    scenario = _UAS_ANSWER.format(name="session timer", timer=timer, middle=middle,
                                  refs="caller,se,ver")  # fmt: skip
    # the PBX sets 4 s: we refresh at 2 s (half, RFC 4028 §10), within a 3 s call
    opts = CallOptions(number="pbx", duration=3.0, port_range=(44000, 44999))
    outcome, report, rc, errors = _call_sipp_uas(tmp_path, scenario, opts)
    assert outcome.result.ok, (outcome.result.message, report)
    assert (report.session_expires, report.refresher) == (4, "uac")
    assert report.refreshes == [200] and report.refresh_method == method
    assert rc == 0, errors  # SIPp saw our refresh (Session-Expires, o= version 2), then BYE


def test_repeated_200_after_a_lost_ack_is_acked_again(tmp_path: Path) -> None:
    keep = (  # the INVITE's own Via, To and CSeq, for the repeated 200
        '<ereg regexp=".*" search_in="hdr" header="Via:" assign_to="invvia"/>'
        '<ereg regexp=".*" search_in="hdr" header="To:" assign_to="callee"/>'
        '<ereg regexp=".*" search_in="hdr" header="CSeq:" assign_to="invcseq"/></action>'
    )
    scenario = _UAS_ANSWER.format(name="ACK lost", timer="", middle=_ACK_LOST,
                                  refs="caller").replace("</action>", keep, 1)  # fmt: skip
    opts = CallOptions(number="pbx", duration=1.5, port_range=(44000, 44999))
    outcome, report, rc, errors = _call_sipp_uas(tmp_path, scenario, opts)
    assert outcome.result.ok, (outcome.result.message, report)
    assert report.far_requests == ["OPTIONS"]  # the in-dialog keepalive was answered 200
    assert rc == 0, errors  # SIPp got a second ACK for its repeated 200, then our BYE


def test_repeated_200_to_our_refresh_reinvite_is_acked_again(tmp_path: Path) -> None:
    timer = "Require: timer\nSession-Expires: 4;refresher=uac\n"
    keep = (  # our refresh's own Via, From, To and CSeq, for its repeated 200
        '<ereg regexp=".*" search_in="hdr" header="Via:" assign_to="rvia"/>'
        '<ereg regexp=".*" search_in="hdr" header="From:" assign_to="rfrom"/>'
        '<ereg regexp=".*" search_in="hdr" header="To:" assign_to="rto"/>'
        '<ereg regexp=".*" search_in="hdr" header="CSeq:" assign_to="rcseq"/></action>'
    )
    refresh = (
        _REFRESH.replace("{method}", "INVITE")
        .replace("{ack}", '  <recv request="ACK" crlf="true"/>')
        .replace("</action>", keep, 1)
    )
    repeat = (
        _ACK_LOST.replace("Via:[$invvia]", "Via:[$rvia]")
        .replace("From:[$caller]\nTo:[$callee];tag=[pid]SIPpTag01[call_number]",
                 "From:[$rfrom]\nTo:[$rto]")
        .replace("CSeq:[$invcseq]", "CSeq:[$rcseq]\n" + timer.rstrip("\n"))
        .replace("o=pbx 1 1", "o=pbx 1 2")
    )  # fmt: skip
    assert "[$rto]" in repeat and "[$rcseq]" in repeat
    scenario = _UAS_ANSWER.format(name="refresh ACK lost", timer=timer, middle=refresh + repeat,
                                  refs="caller,se,ver")  # fmt: skip
    opts = CallOptions(number="pbx", duration=3.5, port_range=(44000, 44999))
    outcome, report, rc, errors = _call_sipp_uas(tmp_path, scenario, opts)
    assert outcome.result.ok, (outcome.result.message, report)
    assert report.refreshes == [200] and report.far_requests == ["OPTIONS"]
    assert rc == 0, errors  # SIPp got a second ACK for its repeated 200 to our re-INVITE


def test_far_end_reinvite_answered_with_our_sdp(tmp_path: Path) -> None:
    scenario = _UAS_ANSWER.format(name="re-INVITE", timer="", middle=_FAR_REINVITE, refs="ours")
    opts = CallOptions(number="pbx", duration=2.0, port_range=(44000, 44999))
    outcome, report, rc, errors = _call_sipp_uas(tmp_path, scenario, opts)
    assert outcome.result.ok, (outcome.result.message, report)
    assert report.far_requests == ["INVITE"]  # (the ACK is absorbed by the dialog layer)
    assert report.hung_up_by == "us" and report.media is not None
    assert report.media.sent_packets > 50  # the call went on after the re-INVITE (0.7 s in)
    assert rc == 0, errors  # our 200 carried SDP, and our BYE came after the re-INVITE


def test_sip_info_dtmf_reaches_baresip(tmp_path: Path) -> None:
    with baresip_phone(tmp_path / "phone") as phone:
        events = phone.events()
        try:
            settings = OfferSettings(codecs=("PCMU",), dtmf_mode="sip-info")
            opts = CallOptions(number="phone", settings=settings, duration=3.0, dtmf="19*#",
                               port_range=(44000, 44999))  # fmt: skip
            outcome, report = asyncio.run(place_call(_target(phone.host, phone.port), opts))
            wait_until(lambda: any(e.get("type") == "CALL_CLOSED" for e in events.events), 10)
        finally:
            events.close()
    assert outcome.result.ok, (outcome.result.message, outcome.result.warnings)
    assert report.dtmf_info == [("1", 200), ("9", 200), ("*", 200), ("#", 200)]
    assert report.media is not None and report.media.dtmf_sent == ""  # no RFC 4733 events
    assert events.dtmf() == "19*#"  # baresip decoded our application/dtmf-relay INFOs


def _heard_by_baresip(path: Path) -> ToneAnalysis:
    """The middle half second of what baresip decoded from us (its sndfile recording)."""
    with wave.open(str(path)) as w:
        rate, channels = w.getframerate(), w.getnchannels()
        frames = array("h", w.readframes(w.getnframes()))[::channels]
    return analyse(frames[len(frames) // 2 :][: rate // 2], rate)


@pytest.mark.parametrize(
    ("transport", "srtp"), [("udp", False), ("tcp", False), ("tls", True), ("udp", True)]
)
def test_call_over_each_transport_audio_both_ways(
    tmp_path: Path, transport: str, srtp: bool
) -> None:
    ca = make_ca(tmp_path / "ca")
    pem = tmp_path / "phone-cert.pem"  # baresip wants certificate and key in one file
    pem.write_text(ca.cert_file.read_text() + ca.key_file.read_text())
    with baresip_phone(tmp_path / "phone", tone=1000, certificate=pem,
                       mediaenc="srtp-mand" if srtp else None) as phone:  # fmt: skip
        port = phone.tls_port if transport == "tls" else phone.port
        tls = TlsSettings(ca_file=str(ca.ca_file))  # verified: the CA signed baresip's certificate
        target = ProbeTarget(user="qsipctl", domain=phone.host, host=phone.host, port=port,
                             transport=transport, tls=tls)  # fmt: skip
        settings = OfferSettings(codecs=("PCMU",), srtp=srtp)
        opts = CallOptions(number="phone", settings=settings, duration=2.5,
                           port_range=(44000, 44999))  # fmt: skip
        outcome, report = asyncio.run(place_call(target, opts))
        wait_until(lambda: bool(phone.recordings()), timeout=10)
        wait_until(lambda: "terminated" in phone.log() or "closed" in phone.log(), timeout=10)
        recording = phone.recordings()[-1]
    result = outcome.result
    assert result.ok, (result.verdict, result.message)
    assert report.transport == transport and report.srtp is srtp
    media = report.media
    assert media is not None and media.audio.kind == "tone"  # baresip's 1 kHz reached us
    assert media.audio.frequency == pytest.approx(1000, abs=3)
    theirs = _heard_by_baresip(recording)  # and our 440 Hz reached baresip, decrypted
    assert theirs.kind == "tone" and theirs.frequency == pytest.approx(440, abs=3), theirs
    clear_keys = [w for w in result.warnings if "clear text" in w]
    assert bool(clear_keys) is (srtp and transport != "tls"), result.warnings


def test_silent_stun_server_warned_and_local_address_offered(tmp_path: Path) -> None:
    silent = free_port(socket.SOCK_DGRAM)  # nothing listens there: no STUN answer
    with baresip_phone(tmp_path / "phone") as phone:
        opts = CallOptions(number="phone", duration=1.0, port_range=(44000, 44999),
                           stun_server=("127.0.0.1", silent))  # fmt: skip
        outcome, report = asyncio.run(place_call(_target(phone.host, phone.port), opts))
    assert outcome.result.ok, outcome.result.message
    assert report.stun_mapped is None and report.offered_address == "127.0.0.1"
    assert any(f"STUN server 127.0.0.1:{silent}" in w for w in outcome.result.warnings)
    # nor did the RTP port get an answer: the offer carries the local port, said so
    assert report.stun_rtp_mapped is None and report.media is not None
    assert report.offered_port == int(report.media.local.rpartition(":")[2])
    assert report.stun_rtp_problem and "STUN from the RTP port" in report.stun_rtp_problem


# The far end asks for application/dtmf (its Accept lists it, not dtmf-relay): each INFO
# must carry that type and the digit alone; SIPp's regexps fail the call otherwise.
_INFO_DTMF = """
  <recv request="INFO">
    <action>
      <ereg regexp="^ *application/dtmf$" search_in="hdr" header="Content-Type:"
            check_it="true" assign_to="ct"/>
      <ereg regexp="^7$" search_in="body" check_it="true" assign_to="digit"/>
    </action>
  </recv>
  <send><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

]]></send>
"""


def test_sip_info_application_dtmf_when_the_far_end_asks(tmp_path: Path) -> None:
    accept = "Accept: application/sdp, application/dtmf\n"
    scenario = _UAS_ANSWER.format(name="INFO application/dtmf", timer=accept,
                                  middle=_INFO_DTMF, refs="caller,ct,digit")  # fmt: skip
    settings = OfferSettings(codecs=("PCMU",), dtmf_mode="sip-info")
    opts = CallOptions(number="pbx", settings=settings, duration=1.5, dtmf="7",
                       port_range=(44000, 44999))  # fmt: skip
    outcome, report, rc, errors = _call_sipp_uas(tmp_path, scenario, opts)
    assert outcome.result.ok, (outcome.result.message, report)
    assert report.dtmf_info == [("7", 200)]
    assert rc == 0, errors  # SIPp read Content-Type application/dtmf and the body "7"


def _far_info(cseq: int, body: str) -> str:
    return f"""
  <pause milliseconds="300"/>
  <send retrans="500"><![CDATA[
INFO [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:pbx@[local_ip]:[local_port]>;tag=[pid]SIPpTag01[call_number]
To:[$caller]
Call-ID: [call_id]
CSeq: {cseq} INFO
Max-Forwards: 70
Content-Type: application/dtmf-relay
Content-Length: [len]

{body}
]]></send>
  <recv response="200"/>
"""


def test_far_end_sip_info_digits_reported(tmp_path: Path) -> None:
    middle = _far_info(1, "Signal=4\r\nDuration=160") + _far_info(2, "Signal=#\r\nDuration=160")
    scenario = _UAS_ANSWER.format(name="far-end INFO", timer="", middle=middle, refs="caller")
    opts = CallOptions(number="pbx", duration=2.0, port_range=(44000, 44999))
    outcome, report, rc, errors = _call_sipp_uas(tmp_path, scenario, opts)
    assert outcome.result.ok, (outcome.result.message, report)
    assert report.dtmf_info_received == "4#" and report.far_requests == ["INFO", "INFO"]
    assert rc == 0, errors  # both INFOs answered 200, then our BYE
