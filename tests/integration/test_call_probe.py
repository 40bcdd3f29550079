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
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from qsipctl.probes.call import CallOptions, place_call
from qsipctl.probes.target import ProbeTarget
from qsipctl.sdp import OfferSettings
from qsipctl.site.secrets import Secret
from tests.fixtures.baresip_phone import baresip_phone
from tests.fixtures.common import free_port, wait_until
from tests.fixtures.kamailio import Kamailio

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


UAS_SESSION_TIMER = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="uas with a session timer">
  <recv request="INVITE" crlf="true"/>
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
Require: timer
Session-Expires: 1;refresher=uac
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
</scenario>
"""


def _udp_bound(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def test_session_timer_reported(tmp_path: Path) -> None:
    (tmp_path / "uas.xml").write_text(UAS_SESSION_TIMER)
    sip, media, ctrl = (free_port(socket.SOCK_DGRAM) for _ in range(3))
    sipp = subprocess.Popen(
        ["sipp", "-sf", "uas.xml", "-i", "127.0.0.1", "-p", str(sip), "-mi", "127.0.0.1",
         "-mp", str(media - media % 2), "-cp", str(ctrl), "-m", "1", "-nostdin", "-trace_err"],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    try:
        wait_until(lambda: _udp_bound(sip), timeout=10)  # SIPp listens before we call
        opts = CallOptions(number="pbx", duration=1.0, port_range=(44000, 44999))
        outcome, report = asyncio.run(place_call(_target("127.0.0.1", sip), opts))
        assert outcome.result.ok, (outcome.result.message, report)
        rc = sipp.wait(timeout=20)
    finally:
        if sipp.poll() is None:
            os.killpg(sipp.pid, signal.SIGKILL)
            sipp.wait()
    assert outcome.result.ok, outcome.result.message
    assert (report.session_expires, report.refresher) == (1, "uac")
    assert any("session timer of 1 s" in w for w in outcome.result.warnings)
    assert rc == 0  # SIPp got its ACK and our BYE
