"""``diagnose --via-core --answer-as`` with the "core" behind a real NAT.

The stand-in core (its QRC service and the baresip behind its Softphone)
runs as its own process in the LAN namespace on 198.18.0.2, behind a router
that masquerades everything leaving its WAN side (nftables) and forwards
TCP 1710 on its WAN address to the core, as a site would publish QRC.
Kamailio and qsipctl (registering the ``--answer-as`` account) run on the
internet side (198.19.x).  So the INVITE qsipctl inspects was sent by a UA
whose packets really crossed a NAT, and the SDP address it carries is what a
core without STUN puts there: its own LAN address, not the router's.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.common import cli_command, wait_until
from tests.fixtures.kamailio import Kamailio, LabCA, start_kamailio
from tests.fixtures.nattopo import LAN_IP, NET_A1, ROUTER_WAN, NatTopo

pytestmark = [pytest.mark.integration, pytest.mark.root]

REPO = Path(__file__).resolve().parents[2]
ACCOUNTS = {"1001": "pw-1001", "2004": "pw-2004"}
ENV = {"PW2004": "pw-2004", "PWSITE": "pw-1001"}
REGISTRAR = f"{NET_A1}:5060"
QRC_PORT = 1710

# Masquerade out of the WAN side; the WAN side may open nothing new except
# QRC on TCP 1710, forwarded to the core (a site's published port forward).
RULES = f"""
table ip qsnat {{
  chain pre {{
    type nat hook prerouting priority -100;
    iifname "wan0" tcp dport {QRC_PORT} dnat to {LAN_IP}:{QRC_PORT}
  }}
  chain post {{
    type nat hook postrouting priority 100;
    oifname "wan0" masquerade
  }}
  chain inc {{
    type filter hook input priority 0;
    iifname "wan0" ct state new drop
  }}
  chain fwdc {{
    type filter hook forward priority 0;
    iifname "wan0" ct status dnat accept
    iifname "wan0" ct state new drop
  }}
}}
"""


@dataclass
class Lab:
    topo: NatTopo
    pbx: Kamailio
    tmp: Path


def _start_core(topo: NatTopo, tmp: Path) -> int:
    """The stand-in core as a process in the LAN namespace; returns its baresip's PID."""
    ready = tmp / "core-ready.json"
    topo.spawn(
        topo.lan,
        [sys.executable, "-m", "tests.fixtures.qrc_standin", "--host", LAN_IP,
         "--port", str(QRC_PORT), "--code-name", "Softphone-Lobby", "--user", "1001",
         "--password-env", "PWSITE", "--registrar", REGISTRAR,
         "--workdir", str(tmp / "core"), "--ready", str(ready)],
        "standin",
        env={"PWSITE": "pw-1001", "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    proc = topo.procs[-1]
    wait_until(lambda: ready.exists() or proc.poll() is not None, 30, interval=0.05)
    if not ready.exists():
        raise RuntimeError(f"stand-in core did not start: {(tmp / 'standin.log').read_text()}")
    return int(json.loads(ready.read_text())["baresip_pid"])


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, test_ca: LabCA) -> Iterator[Lab]:
    tmp = tmp_path_factory.mktemp("answer-as-nat")
    topo = NatTopo(tmp, tag=f"a{os.getpid() % 100000}")
    pbx: Kamailio | None = None
    baresip_pid = 0
    try:
        topo.build()
        topo.nft(RULES)
        pbx = start_kamailio(tmp / "kamailio", test_ca, accounts=ACCOUNTS, netns=topo.internet,
                             extra_listen=(f"udp:{REGISTRAR}",), calls=True)  # fmt: skip
        baresip_pid = _start_core(topo, tmp)
        yield Lab(topo, pbx, tmp)
    finally:
        topo.close()  # the stand-in stops its baresip on SIGTERM ...
        if baresip_pid:  # ... and if it could not, that baresip is stopped here, by PID
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(baresip_pid, signal.SIGKILL)
        if pbx is not None:
            pbx.stop()


def _site(tmp: Path, stun: bool) -> Path:
    path = tmp / f"site-stun-{stun}.yml"
    stun_cfg = f"\n          stun:\n            enabled: true\n            server: {NET_A1}:3478"
    path.write_text(
        f"""all:
  hosts:
    core-a:
      ansible_host: {ROUTER_WAN}
      qsys_model: Core 110f
      qsys_qrc_port: {QRC_PORT}
      softphones:
        - name: Lobby
          code_name: Softphone-Lobby
          profile: generic
          username: "1001"
          password: env:PWSITE
          registrar: {REGISTRAR}
          codecs: [PCMU, PCMA]{stun_cfg if stun else ""}
"""
    )
    return path


def _run(lab: Lab, stun: bool) -> tuple[int, dict[str, Any], str]:
    """qsipctl on the internet side: bind 2004 there, the core dials it through the NAT."""
    res = subprocess.run(
        ["ip", "netns", "exec", lab.topo.internet, *cli_command(),
         "diagnose", str(_site(lab.tmp, stun)), "--via-core",
         "--answer-as", f"sip:2004@{REGISTRAR}", "--answer-password-env", "PW2004",
         "--duration", "1.5", "--ring-timeout", "10", "--format", "json"],
        capture_output=True, text=True, timeout=90, check=False,
        env={**os.environ, "NO_COLOR": "1", **ENV},
    )  # fmt: skip
    assert "Traceback" not in res.stderr, res.stderr
    assert "pw-2004" not in res.stdout + res.stderr
    assert lab.pbx.bindings("2004") == []  # our binding is gone
    return res.returncode, json.loads(res.stdout), res.stderr


def _checks(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    [one] = doc["inbound"]
    assert one["core_call"]["verdict"] == "connected", one["core_call"]
    return {c["item"]: c for c in one["checks"]}


def test_the_core_behind_a_nat_offers_its_lan_address(lab: Lab) -> None:
    """No STUN on the site: the INVITE that crossed the NAT carries the core's LAN address."""
    rc, doc, err = _run(lab, stun=False)
    sdp = _checks(doc)["SDP address"]
    # the core's own address, not the public one the NAT gave its packets (named beside it)
    assert sdp["seen"] == f"{LAN_IP} (behind a NAT: its RTP came from {ROUTER_WAN})", (sdp, err)
    assert sdp["expected"] == "the core's own (no STUN)" and sdp["ok"], sdp
    [one] = doc["inbound"]
    assert one["core_call"]["qrc"] == f"{ROUTER_WAN}:{QRC_PORT}"  # QRC through the port forward
    media = one["inbound"]["media"]
    # The NAT is real: the core's RTP arrives from the router's WAN address, not from
    # the address in its SDP, and qsipctl says so (and answers where it comes from).
    assert media["remote_sdp"].startswith(f"{LAN_IP}:"), media
    assert media["remote_actual"].startswith(f"{ROUTER_WAN}:"), media
    assert any("a NAT is in between" in v for v in media["verdicts"]), media["verdicts"]
    assert media["audio"]["kind"] == "tone" and rc == 0, err


def test_stun_on_in_the_site_but_the_offer_is_private(lab: Lab) -> None:
    """The site says STUN, the core's offer still carries its LAN address: shown as a mismatch,
    from the evidence (its RTP came from the router's address), not from address ranges."""
    rc, doc, _ = _run(lab, stun=True)
    sdp = _checks(doc)["SDP address"]
    assert sdp["seen"].startswith(f"{LAN_IP} ") and sdp["expected"] == "public (STUN-mapped)"
    assert sdp["seen"] == f"{LAN_IP} (behind a NAT: its RTP came from {ROUTER_WAN})", sdp
    assert not sdp["ok"] and rc == 1
