"""STUN for the RTP port itself behind a real NAT (issue 9 point 1; namespaces + nftables).

The CLI runs in the "lan" namespace of :mod:`tests.fixtures.nattopo`; coturn
and the far end live on the "internet" side.  The router's NAT gives the RTP
socket a public port other than its local one (``masquerade to :40000-40100``,
endpoint-independent), so only a Binding sent from the media socket itself
learns it.  Proven with the wire on the internet side (tcpdump): the m= port
of the INVITE we sent is the port our RTP really arrives from, and a baresip
that sends its audio to the address and port of our SDP is heard.  Two NATs
that break the simple case: the RTP port's STUN blocked (the offer falls back
to the local address and port, with a warning) and an address-dependent pool
(the RTP port leaves from another public address than the SIP port).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from pathlib import Path

import pytest

from tests.e2e.test_call_stun import UAS
from tests.fixtures.baresip_phone import _config as baresip_config
from tests.fixtures.common import wait_until
from tests.fixtures.nattopo import LAN_IP, NAT_RULES, NET_A1, ROUTER_WAN, NatTopo

pytestmark = [pytest.mark.integration, pytest.mark.root]

SIP_PORT = 5070
# what the probe binds; the NAT maps it into PUBLIC_RTP.  Below the kernel's ephemeral
# range (32768-60999), where the SIP socket's port comes from: the rules that single out
# the RTP ports by source port must never catch the SIP port (they did, 1 run in ~28)
LOCAL_RTP = "20000-20999"
PUBLIC_RTP = (40000, 40100)
POOL_IP = "198.19.0.4"  # the router's second public address


def _tcpdump(topo: NatTopo, path: Path) -> subprocess.Popen[bytes]:
    topo.spawn(topo.internet, ["tcpdump", "-n", "-i", "eth0", "-U", "-w", str(path), "udp"],
               "tcpdump")  # fmt: skip
    log = topo.tmp / "tcpdump.log"
    wait_until(lambda: "listening on" in log.read_text(errors="replace"), timeout=10)
    return topo.procs[-1]


def _stop(proc: subprocess.Popen[bytes]) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(10)


def _fields(pcap: Path, display_filter: str, *fields: str, decode: str = "") -> list[list[str]]:
    cmd = ["tshark", "-n", "-r", str(pcap), "-Y", display_filter, "-T", "fields"]
    if decode:
        cmd += ["-d", decode]
    for f in fields:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=True).stdout
    return [line.split("\t") for line in out.splitlines() if line.strip()]


def _call_json(res: subprocess.CompletedProcess[str]) -> dict:
    assert "Traceback" not in res.stderr, res.stderr
    return json.loads(res.stdout)["calls"][0]


def _port(hostport: str) -> int:
    return int(hostport.rpartition(":")[2])


def test_offer_carries_the_rtp_ports_public_mapping(nattopo: NatTopo, tmp_path: Path) -> None:
    nattopo.masquerade(ports=f"{PUBLIC_RTP[0]}-{PUBLIC_RTP[1]}")
    phone = tmp_path / "baresip"
    phone.mkdir()
    (phone / "config").write_text(baresip_config(phone, NET_A1, 5080, 5090, 1000,
                                                 "PCMU/8000/1"))  # fmt: skip
    (phone / "accounts").write_text(f"<sip:phone@{NET_A1}>;regint=0;answermode=auto\n")
    nattopo.spawn(nattopo.internet, ["baresip", "-f", str(phone)], "baresip")
    nattopo.wait_udp(nattopo.internet, NET_A1, 5080)
    wire = tmp_path / "internet.pcap"
    dump = _tcpdump(nattopo, wire)
    res = nattopo.run_lan("probe", "call", f"sip:phone@{NET_A1}:5080", "--from-user", "2001",
                          "--stun", f"{NET_A1}:3478", "--codecs", "PCMU", "--duration", "2",
                          "--rtp-ports", LOCAL_RTP, "--format", "json")  # fmt: skip
    _stop(dump)
    assert res.returncode == 0, (res.stdout, res.stderr)
    call = _call_json(res)
    public = _port(call["stun_rtp_mapped"])
    local = _port(call["media"]["local"])
    assert call["stun_rtp_mapped"] == f"{ROUTER_WAN}:{public}"
    assert PUBLIC_RTP[0] <= public <= PUBLIC_RTP[1] and public != local  # the NAT remapped it
    assert (call["offered_address"], call["offered_port"]) == (ROUTER_WAN, public)
    assert call["stun_mapped"].startswith(f"{ROUTER_WAN}:") and call["stun_rtp_problem"] is None
    # the wire on the internet side: the INVITE's m= port is where our RTP comes from
    sip = "udp.port==5080,sip"
    [[m_port, c_addr]] = _fields(wire, "sip.Method == INVITE", "sdp.media.port",
                                 "sdp.connection_info.address", decode=sip)  # fmt: skip
    assert (c_addr, int(m_port)) == (ROUTER_WAN, public)
    [[answer_port]] = _fields(wire, "sip.Status-Code == 200 && sdp", "sdp.media.port",
                              decode=sip)  # fmt: skip
    ours = _fields(wire, f"ip.src == {ROUTER_WAN} && udp.dstport == {answer_port}", "udp.srcport")
    assert len(ours) > 50 and {int(p) for [p] in ours} == {public}
    # baresip sends to the address and port of our SDP: through the NAT, we hear its tone
    theirs = _fields(wire, f"ip.dst == {ROUTER_WAN} && udp.dstport == {public}", "udp.srcport")
    assert len(theirs) > 50
    media = call["media"]
    assert media["received"]["packets"] > 50 and media["audio"]["kind"] == "tone"
    assert abs(media["audio"]["frequency"] - 1000) < 5


def _sipp_uas(topo: NatTopo, tmp_path: Path, c_address: str) -> subprocess.Popen[bytes]:
    """SIPp answers (checking the offer's c=) and echoes our RTP back (``-rtp_echo``)."""
    scenario = tmp_path / "uas.xml"
    scenario.write_text(UAS.format(public=re.escape(c_address)))
    topo.spawn(topo.internet, ["sipp", "-sf", str(scenario), "-i", NET_A1, "-p", str(SIP_PORT),
                               "-mi", NET_A1, "-mp", "46000", "-rtp_echo", "-m", "1",
                               "-nostdin", "-trace_err", "-error_file",
                               str(tmp_path / "sipp-errors.log")], "sipp")  # fmt: skip
    proc = topo.procs[-1]
    topo.wait_udp(topo.internet, NET_A1, SIP_PORT)
    return proc


def _sipp_ok(proc: subprocess.Popen[bytes], tmp_path: Path) -> None:
    try:
        rc = proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        rc = None
    errors = tmp_path / "sipp-errors.log"
    assert rc == 0, errors.read_text(errors="replace") if errors.exists() else ""


def _probe(topo: NatTopo) -> subprocess.CompletedProcess[str]:
    return topo.run_lan("probe", "call", f"sip:pbx@{NET_A1}:{SIP_PORT}", "--from-user", "2001",
                        "--stun", f"{NET_A1}:3478", "--codecs", "PCMU", "--duration", "1.5",
                        "--rtp-ports", LOCAL_RTP, "--format", "json")  # fmt: skip


def test_rtp_port_stun_blocked_falls_back_to_local(nattopo: NatTopo, tmp_path: Path) -> None:
    nattopo.masquerade(ports=f"{PUBLIC_RTP[0]}-{PUBLIC_RTP[1]}")
    nattopo.nft(  # a firewall that lets the SIP port ask STUN, not the RTP ports
        "table ip qsstun {\n  chain stunblock {\n    type filter hook forward priority -10;\n"
        f"    ip saddr {LAN_IP} udp sport {LOCAL_RTP} udp dport 3478 drop\n  }}\n}}\n"
    )
    sipp = _sipp_uas(nattopo, tmp_path, LAN_IP)  # the offer carries the local address
    res = _probe(nattopo)
    assert res.returncode == 0, (res.stdout, res.stderr)
    call = _call_json(res)
    local = _port(call["media"]["local"])
    assert call["stun_rtp_mapped"] is None and call["stun_mapped"].startswith(f"{ROUTER_WAN}:")
    assert (call["offered_address"], call["offered_port"]) == (LAN_IP, local)
    assert "STUN from the RTP port" in call["stun_rtp_problem"]
    assert "warning: STUN from the RTP port" in res.stderr and "local address" in res.stderr
    assert call["media"]["sent_packets"] > 50
    _sipp_ok(sipp, tmp_path)


def test_address_dependent_nat_pool_is_reported(nattopo: NatTopo, tmp_path: Path) -> None:
    """The RTP ports leave from another public address than the SIP port (a NAT pool)."""
    subprocess.run(["ip", "-n", nattopo.router, "addr", "add", f"{POOL_IP}/24", "dev", "wan0"],
                   check=True)  # fmt: skip
    rules = NAT_RULES.format(l4="", random="")
    rules = rules.replace('oifname "wan0" masquerade',
                          f'oifname "wan0" udp sport {LOCAL_RTP} snat to {POOL_IP}\n'
                          '    oifname "wan0" masquerade')  # fmt: skip
    nattopo.nft(rules)
    sipp = _sipp_uas(nattopo, tmp_path, POOL_IP)  # the offer carries the RTP port's mapping
    res = _probe(nattopo)
    assert res.returncode == 0, (res.stdout, res.stderr)
    call = _call_json(res)
    assert call["stun_rtp_mapped"].startswith(f"{POOL_IP}:")
    assert call["stun_mapped"].startswith(f"{ROUTER_WAN}:")
    assert call["offered_address"] == POOL_IP
    assert "address-dependent NAT pool" in call["stun_rtp_problem"]
    assert "address-dependent NAT pool" in res.stderr
    assert call["media"]["received"]["packets"] > 50  # SIPp's echo came back through the NAT
    _sipp_ok(sipp, tmp_path)
