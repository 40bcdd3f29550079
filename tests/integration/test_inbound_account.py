"""``probe call --inbound``: ring as the account, through a real Kamailio, binding-safe.

qsipctl binds the account at Kamailio (after a Contact-less query), then a
caller reaches it through Kamailio's ``lookup("location")``: SIPp with an
early offer and with a delayed offer, or qsipctl's own call probe as a second
account (``--from-account``: a real call with audio both ways).  A "core"
(SIPp) bound first on a one-contact Kamailio makes the check refuse without
``--force``.  After every test Kamailio holds no binding of ours.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.fixtures.common import cli_command, free_port, run_cli, wait_until
from tests.fixtures.inbound import ACCOUNTS, ENV, lobby_and_desk_site
from tests.fixtures.kamailio import Kamailio
from tests.fixtures.sipp import SIPP, register_core

pytestmark = pytest.mark.integration

# Kamailio does not Record-Route: in-dialog requests SIPp sends to it (it can only
# send to one address) are forwarded statelessly to their Request-URI, our Contact
IN_DIALOG = 'if (has_totag() && !is_method("CANCEL") && !t_check_trans()) { forward(); exit; }'

SCENARIO = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="a PBX calls the softphone">
  <send retrans="500"><![CDATA[
INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:pbx@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: <sip:pbx@[local_ip]:[local_port]>
Max-Forwards: 70
{invite_body}
]]></send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="200" rrs="true"/>
  <send><![CDATA[
ACK [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:pbx@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 1 ACK
Max-Forwards: 70
{ack_body}
]]></send>
  <pause milliseconds="1500"/>
  <send retrans="500"><![CDATA[
BYE [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:pbx@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 2 BYE
Max-Forwards: 70
Content-Length: 0

]]></send>
  <recv response="200" crlf="true"/>
</scenario>
"""
SDP = """Content-Type: application/sdp
Content-Length: [len]

v=0
o=pbx 1 1 IN IP[local_ip_type] [local_ip]
s=-
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio [media_port] RTP/AVP {pts}
{rtpmaps}
"""
NO_BODY = "Content-Length: 0\n"


def sdp(pts: str, rtpmaps: str) -> str:
    return SDP.format(pts=pts, rtpmaps=rtpmaps)


EARLY = SCENARIO.format(
    invite_body=sdp("8 0 101", "a=rtpmap:8 PCMA/8000\na=rtpmap:0 PCMU/8000\n"
                    "a=rtpmap:101 telephone-event/8000\na=fmtp:101 0-16"),
    ack_body=NO_BODY,
)  # fmt: skip
DELAYED = SCENARIO.format(invite_body=NO_BODY, ack_body=sdp("0", "a=rtpmap:0 PCMU/8000"))


@pytest.fixture(scope="module")
def pbx_calls(kamailio_factory: Callable[..., Kamailio]) -> Kamailio:
    return kamailio_factory(accounts=ACCOUNTS, calls=True, extra_route=IN_DIALOG)


@pytest.fixture(scope="module")
def pbx_one_contact(kamailio_factory: Callable[..., Kamailio]) -> Kamailio:
    return kamailio_factory(accounts=ACCOUNTS, calls=True, extra_route=IN_DIALOG,
                            save_flags="0x04")  # fmt: skip


@pytest.fixture
def pbx(pbx_calls: Kamailio) -> Iterator[Kamailio]:
    pbx_calls.clear()
    yield pbx_calls
    pbx_calls.clear()


def _start(k: Kamailio, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*cli_command(), "probe", "call", "--inbound", f"sip:1001@127.0.0.1:{k.udp_port}",
         "--password-env", "PW1001", "--format", "json", "--rtp-ports", "47000-47999", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, **ENV}, start_new_session=True,
    )  # fmt: skip


def _finish(proc: subprocess.Popen[str]) -> tuple[int, dict, str]:
    try:
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert "Traceback" not in err, err
    return proc.returncode, json.loads(out), err


def _sipp_call(k: Kamailio, tmp_path: Path, scenario: str) -> int:
    (tmp_path / "call.xml").write_text(scenario)
    res = subprocess.run(
        [SIPP, f"127.0.0.1:{k.udp_port}", "-sf", "call.xml", "-s", "1001", "-i", "127.0.0.1",
         "-p", str(free_port(socket.SOCK_DGRAM)), "-mi", "127.0.0.1",
         "-mp", str(free_port(socket.SOCK_DGRAM)), "-m", "1", "-nostdin", "-timeout", "20s"],
        cwd=tmp_path, capture_output=True, text=True, timeout=40, check=False,
    )  # fmt: skip
    return res.returncode


def _call_in(k: Kamailio, tmp_path: Path, scenario: str) -> tuple[int, dict, int]:
    proc = _start(k, "--ring-timeout", "20", "--duration", "5")
    try:
        wait_until(lambda: bool(k.bindings("1001")), timeout=15)
        sipp_rc = _sipp_call(k, tmp_path, scenario)
    finally:
        rc, doc, _ = _finish(proc)
    return rc, doc, sipp_rc


def test_early_offer_through_kamailio(pbx: Kamailio, tmp_path: Path) -> None:
    rc, doc, sipp_rc = _call_in(pbx, tmp_path, EARLY)
    [r] = doc["results"]
    [inbound] = doc["inbound"]
    a = inbound["inbound"]["analysis"]
    assert a["early_offer"] and a["codecs"] == ["PCMA", "PCMU"]
    assert a["common"] == ["PCMA", "PCMU"] and a["telephone_event_pt"] == 101
    assert inbound["inbound"]["status_sent"] == 200 and inbound["inbound"]["codec"] == "PCMA"
    assert inbound["inbound"]["hung_up_by"] == "caller" and sipp_rc == 0
    assert rc == 0 and r["verdict"] == "ok" and r["unregistered"] is True
    assert pbx.bindings("1001") == []


def test_delayed_offer_through_kamailio(pbx: Kamailio, tmp_path: Path) -> None:
    rc, doc, sipp_rc = _call_in(pbx, tmp_path, DELAYED)
    [r] = doc["results"]
    inbound = doc["inbound"][0]["inbound"]
    assert inbound["analysis"]["early_offer"] is False
    assert r["verdict"] == "delayed-offer" and "needs early offer" in r["message"]
    assert inbound["codec"] == "PCMU"  # answered anyway: the answer came in the ACK
    assert rc == 1 and sipp_rc == 0 and r["unregistered"] is True
    assert pbx.bindings("1001") == []


def test_from_account_places_the_call_with_audio_both_ways(pbx: Kamailio) -> None:
    proc = _start(pbx, "--from-account", "1002", "--from-password-env", "PW1002",
                  "--ring-timeout", "15", "--duration", "3")  # fmt: skip
    rc, doc, err = _finish(proc)
    [r] = doc["results"]
    [inbound] = doc["inbound"]
    call_in = inbound["inbound"]
    assert call_in["analysis"]["early_offer"] and call_in["analysis"]["codecs"][0] == "PCMU"
    assert call_in["analysis"]["telephone_event"] is True
    assert call_in["media"]["received"]["packets"] > 50  # the caller's tone reached us
    assert inbound["caller"]["call"]["media"]["received"]["packets"] > 50  # ours reached it
    assert inbound["caller"]["result"]["verdict"] == "ok"
    assert rc == 0, err
    assert r["unregistered"] is True and pbx.bindings("1001") == []
    assert pbx.bindings("1002") == []  # the caller never bound


def test_live_core_is_not_displaced(pbx_one_contact: Kamailio, tmp_path: Path) -> None:
    k = pbx_one_contact
    k.clear()
    try:
        core = register_core(tmp_path / "core", k.udp_port, "1001", ACCOUNTS["1001"])
        [before] = k.bindings("1001")
        rc, doc, _ = _finish(_start(k, "--ring-timeout", "3"))
        [r] = doc["results"]
        assert rc == 1 and r["verdict"] == "in-use"
        assert "--force" in r["message"] and "core's calls" in r["message"]
        [after] = k.bindings("1001")
        assert after["Address"] == core and after["Call-ID"] == before["Call-ID"]
    finally:
        k.clear()


def test_no_call_still_unbinds(pbx: Kamailio) -> None:
    rc, doc, err = _finish(_start(pbx, "--ring-timeout", "2"))
    [r] = doc["results"]
    assert rc == 1 and r["verdict"] == "no-call" and r["unregistered"] is True
    assert "call 1001 now" in err  # the engineer was told to dial
    assert pbx.bindings("1001") == []


def test_sigterm_while_waiting_unbinds(pbx: Kamailio) -> None:
    proc = _start(pbx, "--ring-timeout", "30")
    try:
        wait_until(lambda: bool(pbx.bindings("1001")), timeout=15)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130 and "Traceback" not in err
    assert "was removed" in err
    assert pbx.bindings("1001") == []


def test_diagnose_call_inbound_from_a_second_softphone(pbx: Kamailio, tmp_path: Path) -> None:
    site = lobby_and_desk_site(tmp_path / "site.yml", pbx.udp_port)
    args = ["--call", "--inbound", "--from-account", "Desk", "--duration", "2"]
    res = run_cli("diagnose", str(site), *args, "--ring-timeout", "15", "--format", "json",
                  env=ENV)  # fmt: skip
    assert res.returncode == 0, res.stderr + res.stdout
    doc = json.loads(res.stdout)
    [r] = doc["results"]  # the calling softphone is not checked itself
    assert r["softphone"] == "Lobby" and r["probe"] == "inbound" and r["unregistered"]
    call_in = doc["inbound"][0]["inbound"]
    assert call_in["analysis"]["codecs"][:2] == ["PCMA", "PCMU"]  # Desk offers the site's order
    assert call_in["codec"] == "PCMA" and call_in["media"]["audio"]["kind"] == "tone"
    assert "secret-100" not in res.stdout + res.stderr
    assert pbx.bindings("1001") == [] and pbx.bindings("1002") == []


def test_usage_errors(tmp_path: Path) -> None:
    res = run_cli("probe", "call", "sip:1001@127.0.0.1", "--from-account", "1002")
    assert res.returncode == 2 and "--inbound" in res.stderr and "Traceback" not in res.stderr
    res = run_cli("probe", "call", "sip:1001@127.0.0.1")
    assert res.returncode == 2 and "--from-user" in res.stderr
    res = run_cli("probe", "call", "--inbound", "sip:1001@127.0.0.1", "--dtmf", "1")
    assert res.returncode == 2 and "--dtmf" in res.stderr
    site = tmp_path / "s.yml"
    site.write_text(
        """all:
  hosts:
    core-a:
      ansible_host: 127.0.0.1
      qsys_model: Core 110f
      softphones:
        - {name: P, profile: generic, registrar: 127.0.0.1, username: "1001", password: env:PW1001}
"""
    )
    res = run_cli("diagnose", str(site), "--inbound", env=ENV)
    assert res.returncode == 2 and "--call" in res.stderr
    res = run_cli("diagnose", str(site), "--via-core", "--answer-as", "P", "--to", "1", env=ENV)
    assert res.returncode == 2 and "--to" in res.stderr
    res = run_cli("diagnose", str(site), "--call", "--inbound", "--from-account", "Nope", env=ENV)
    assert res.returncode == 2 and "Nope" in res.stderr and "Traceback" not in res.stderr
