"""The inbound early-offer check against SIPp as the calling PBX.

SIPp calls our endpoint twice: with SDP in the INVITE (early offer, SIPp's
built-in ``uac`` scenario) and without (delayed offer, a scenario written
here: the SDP answer comes in the ACK).  The check must tell them apart,
answer both like the core would, and hang up or take the caller's BYE.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
from pathlib import Path

import pytest

from qsipctl.net.driver import SipDriver
from qsipctl.probes.inbound import InboundReport, answer_one_call
from qsipctl.sdp import OfferSettings
from qsipctl.sip.endpoint import Endpoint
from tests.fixtures.common import free_port

pytestmark = pytest.mark.integration

DELAYED_OFFER = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="delayed offer">
  <send retrans="500"><![CDATA[
INVITE sip:softphone@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:pbx@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:softphone@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: <sip:pbx@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Length: 0

]]></send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="200" rtd="true"/>
  <send><![CDATA[
ACK sip:softphone@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:pbx@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:softphone@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 1 ACK
Contact: <sip:pbx@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Type: application/sdp
Content-Length: [len]

v=0
o=pbx 1 1 IN IP[local_ip_type] [local_ip]
s=-
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 8
a=rtpmap:8 PCMA/8000

]]></send>
  <pause milliseconds="1500"/>
  <send retrans="500"><![CDATA[
BYE sip:softphone@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:pbx@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:softphone@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 2 BYE
Max-Forwards: 70
Content-Length: 0

]]></send>
  <recv response="200" crlf="true"/>
</scenario>
"""


def run_check(
    tmp_path: Path, scenario: list[str], accept: tuple[str, ...] = ("INVITE", "BYE")
) -> tuple[InboundReport, int]:
    if shutil.which("sipp") is None:
        pytest.fail("sipp is not installed (Debian sip-tester; scripts/test installs it)")

    async def scenario_run() -> tuple[InboundReport, int]:
        driver = SipDriver(Endpoint(accept=accept))
        await driver.open_udp("127.0.0.1")
        assert driver.udp is not None
        port = driver.udp.local[1]
        sipp = subprocess.Popen(
            ["sipp", f"127.0.0.1:{port}", *scenario, "-i", "127.0.0.1",
             "-p", str(free_port(socket.SOCK_DGRAM)), "-mi", "127.0.0.1",
             "-mp", str(free_port(socket.SOCK_DGRAM)), "-cp", str(free_port(socket.SOCK_DGRAM)),
             "-m", "1", "-nostdin", "-timeout", "20s"],
            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
        try:
            report = await answer_one_call(driver, OfferSettings(), "127.0.0.1", wait=10.0,
                                           duration=5.0, port_range=(46000, 46999))  # fmt: skip
            rc = await asyncio.to_thread(sipp.wait, 30)
        finally:
            if sipp.poll() is None:
                os.killpg(sipp.pid, signal.SIGKILL)
                sipp.wait()
            await driver.close()
        return report, rc

    return asyncio.run(scenario_run())


def test_early_offer_invite(tmp_path: Path) -> None:
    report, rc = run_check(tmp_path, ["-sn", "uac", "-d", "1500"])
    a = report.analysis
    assert a is not None and a.early_offer and a.codecs == ("PCMU",) and a.common == ("PCMU",)
    assert not a.telephone_event  # SIPp's uac offers no telephone-event: said so
    assert "telephone-event" in a.verdict
    assert report.status_sent == 200 and report.codec == "PCMU"
    assert report.hung_up_by == "caller" and rc == 0  # SIPp saw its call through


def test_delayed_offer_invite(tmp_path: Path) -> None:
    (tmp_path / "delayed.xml").write_text(DELAYED_OFFER)
    report, rc = run_check(tmp_path, ["-sf", "delayed.xml"])
    a = report.analysis
    assert a is not None and not a.early_offer
    assert "delayed offer" in a.verdict and "needs early offer" in a.verdict
    assert report.status_sent == 200 and report.codec == "PCMA"  # the answer came in the ACK
    assert report.hung_up_by == "caller" and rc == 0


_OPTIONS = """  <send retrans="500"><![CDATA[
OPTIONS sip:softphone@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:pbx@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:softphone@[remote_ip]:[remote_port]>{to_tag}
Call-ID: [call_id]
CSeq: {cseq} OPTIONS
Max-Forwards: 70
Content-Length: 0

]]></send>
  <recv response="200">
    <action><ereg regexp="OPTIONS" search_in="hdr" header="Allow:" check_it="true"
                  assign_to="allow{cseq}"/></action>
  </recv>
"""


def test_options_pings_answered_before_and_during_the_call(tmp_path: Path) -> None:
    # A PBX pings the binding (Asterisk's qualify) and audits the call with OPTIONS:
    # both get 200 with our Allow list, or the call never comes / is torn down.
    ping = _OPTIONS.format(to_tag="", cseq=7)  # no To tag: outside any dialog
    audit = _OPTIONS.format(to_tag="[peer_tag_param]", cseq=2)
    scenario = (
        DELAYED_OFFER.replace('<scenario name="delayed offer">\n',
                              '<scenario name="pings">\n' + ping, 1)
        .replace('  <pause milliseconds="1500"/>', audit + '  <pause milliseconds="1000"/>', 1)
        .replace("CSeq: 2 BYE", "CSeq: 3 BYE", 1)
        .replace("</scenario>", '  <Reference variables="allow7,allow2"/>\n</scenario>')
    )  # fmt: skip
    (tmp_path / "pings.xml").write_text(scenario)
    report, rc = run_check(tmp_path, ["-sf", "pings.xml"], accept=("INVITE", "BYE", "OPTIONS"))
    assert report.status_sent == 200 and report.hung_up_by == "caller"
    assert rc == 0  # SIPp got 200 (with OPTIONS in Allow) to both OPTIONS, then to its BYE
