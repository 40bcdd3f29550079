"""The offer's c= carries the STUN-mapped address behind a real NAT (namespaces + nftables).

The CLI runs in the "lan" namespace of :mod:`tests.fixtures.nattopo` behind a
masquerading router; coturn and a SIPp UAS live on the "internet" side.  SIPp
checks the INVITE's SDP: its c= must be the router's public address (what
coturn saw), not the LAN address; the call then completes with audio sent
through the NAT.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.fixtures.nattopo import LAN_IP, NET_A1, ROUTER_WAN, NatTopo

pytestmark = [pytest.mark.integration, pytest.mark.root]

SIP_PORT = 5070

UAS = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="uas: the offer must carry the NAT's public address">
  <recv request="INVITE" crlf="true">
    <action>
      <ereg regexp="c=IN IP4 {public}" search_in="body" check_it="true" assign_to="c"/>
    </action>
  </recv>
  <send retrans="500"><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:[local_ip]:[local_port];transport=[transport]>
Content-Type: application/sdp
Content-Length: [len]

v=0
o=pbx 1 1 IN IP4 [local_ip]
s=-
c=IN IP4 [media_ip]
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
  <Reference variables="c"/>
</scenario>
"""


def test_offer_carries_the_stun_mapped_address(nattopo: NatTopo, tmp_path: Path) -> None:
    nattopo.masquerade()
    scenario = tmp_path / "uas.xml"
    scenario.write_text(UAS.format(public=ROUTER_WAN.replace(".", r"\.")))
    errors = tmp_path / "sipp-errors.log"
    nattopo.spawn(nattopo.internet, ["sipp", "-sf", str(scenario), "-i", NET_A1,
                                     "-p", str(SIP_PORT), "-mi", NET_A1, "-mp", "46000",
                                     "-m", "1", "-nostdin", "-trace_err",
                                     "-error_file", str(errors)], "sipp")  # fmt: skip
    sipp = nattopo.procs[-1]
    nattopo.wait_udp(nattopo.internet, NET_A1, SIP_PORT)
    res = nattopo.run_lan("probe", "call", f"sip:pbx@{NET_A1}:{SIP_PORT}", "--from-user",
                          "2001", "--stun", f"{NET_A1}:3478", "--codecs", "PCMU",
                          "--duration", "1.5", "--rtp-ports", "45000-45999",
                          "--format", "json")  # fmt: skip
    assert res.returncode == 0, (res.stdout, res.stderr)
    call = json.loads(res.stdout)["calls"][0]
    assert call["offered_address"] == ROUTER_WAN != LAN_IP
    assert call["stun_mapped"].startswith(f"{ROUTER_WAN}:")
    assert call["media"]["sent_packets"] > 50
    try:
        rc = sipp.wait(timeout=20)
    except subprocess.TimeoutExpired:
        rc = None
    log = errors.read_text(errors="replace") if errors.exists() else ""
    assert rc == 0, log  # SIPp's regexp found c=IN IP4 <public>, and it got our ACK and BYE


def test_diagnose_call_uses_the_cores_stun_server(nattopo: NatTopo, tmp_path: Path) -> None:
    """The site's core enables STUN: ``diagnose --call`` asks that server, offers its answer."""
    nattopo.masquerade()
    scenario = tmp_path / "uas.xml"
    scenario.write_text(UAS.format(public=ROUTER_WAN.replace(".", r"\.")))
    errors = tmp_path / "sipp-errors.log"
    nattopo.spawn(nattopo.internet, ["sipp", "-sf", str(scenario), "-i", NET_A1,
                                     "-p", str(SIP_PORT), "-mi", NET_A1, "-mp", "46000",
                                     "-m", "1", "-nostdin", "-trace_err",
                                     "-error_file", str(errors)], "sipp")  # fmt: skip
    sipp = nattopo.procs[-1]
    nattopo.wait_udp(nattopo.internet, NET_A1, SIP_PORT)
    site = tmp_path / "site.yml"
    site.write_text(
        f"""all:
  hosts:
    core-a:
      ansible_host: {LAN_IP}
      qsys_model: Core 110f
      softphones:
        - name: Phone 1
          profile: generic
          registrar: {NET_A1}:{SIP_PORT}
          username: "2001"
          password: env:PW2001
          codecs: [PCMU]
          stun:
            server: {NET_A1}:3478
"""
    )
    res = nattopo.run_lan("diagnose", str(site), "--call", "--to", "pbx", "--duration", "1.5",
                          "--format", "json", env={"PW2001": "unused"})  # fmt: skip
    assert res.returncode == 0, (res.stdout, res.stderr)
    call = json.loads(res.stdout)["calls"][0]
    assert call["offered_address"] == ROUTER_WAN
    assert call["stun_mapped"].startswith(f"{ROUTER_WAN}:")
    try:
        rc = sipp.wait(timeout=20)
    except subprocess.TimeoutExpired:
        rc = None
    log = errors.read_text(errors="replace") if errors.exists() else ""
    assert rc == 0, log
