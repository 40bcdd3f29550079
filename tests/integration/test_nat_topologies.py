"""Every NAT verdict from real packets crossing a real NAT (namespaces + nftables + coturn).

Each test builds the case on the router of :mod:`tests.fixtures.nattopo`
and runs the CLI inside the "lan" namespace, as an engineer on the cores'
network would; the verdict must name what was built.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.kamailio import LabCA, start_kamailio
from tests.fixtures.nattopo import LAN_IP, NET_A1, NET_A2, RESPONDER_PORT, ROUTER_WAN, NatTopo

pytestmark = [pytest.mark.integration, pytest.mark.root]

RESPONDER = f"{NET_A2}:{RESPONDER_PORT}"


def findings(stdout: str) -> dict[str, dict[str, Any]]:
    doc = json.loads(stdout)
    assert "THIS machine" in doc["scope"]
    return {f["check"]: f for f in doc["findings"]}


def stun(topo: NatTopo) -> tuple[int, dict[str, dict[str, Any]]]:
    res = topo.run_lan("probe", "stun", NET_A1, "--format", "json")
    assert res.returncode in (0, 1), res.stderr
    return res.returncode, findings(res.stdout)


def test_no_nat(nattopo: NatTopo) -> None:
    code, f = stun(nattopo)
    assert code == 0
    assert f["stun.nat"]["summary"].startswith("no NAT")
    assert f["stun.nat"]["evidence"]["public (STUN)"] == f"{LAN_IP}:5060"
    assert "stun.mapping" not in f  # nothing to map
    assert f["stun.filtering"]["summary"].startswith("endpoint-independent filtering")


def test_endpoint_independent_nat_with_port_preservation(nattopo: NatTopo) -> None:
    nattopo.masquerade()
    code, f = stun(nattopo)
    assert code == 0
    assert f["stun.nat"]["summary"].startswith("NAT, ports preserved")
    assert f["stun.nat"]["evidence"]["public (STUN)"] == f"{ROUTER_WAN}:5060"
    assert f["stun.mapping"]["summary"].startswith("endpoint-independent mapping")
    assert f["stun.filtering"]["summary"].startswith("address-and-port-dependent filtering")
    assert f["stun.rtp-ports"]["severity"] == "ok"


def test_endpoint_independent_nat_with_port_translation(nattopo: NatTopo) -> None:
    nattopo.masquerade(ports="40000-49999")
    code, f = stun(nattopo)
    assert code == 0
    assert f["stun.nat"]["summary"].startswith("NAT with port translation (PAT)")
    public_port = int(f["stun.nat"]["evidence"]["public (STUN)"].rsplit(":", 1)[1])
    assert 40000 <= public_port <= 49999
    assert f["stun.mapping"]["summary"].startswith("endpoint-independent mapping")
    assert f["stun.rtp-ports"]["severity"] == "warning"  # RTP ports translated too


def test_symmetric_nat(nattopo: NatTopo) -> None:
    nattopo.masquerade(fully_random=True)
    code, f = stun(nattopo)
    assert code == 1
    assert f["stun.nat"]["summary"].startswith("NAT with port translation (PAT)")
    m = f["stun.mapping"]
    assert m["severity"] == "problem"
    assert "symmetric NAT" in m["summary"] and "STUN cannot fix the SDP" in m["summary"]
    ports = {m["evidence"][k] for k in ("mapping-1", "mapping-2", "mapping-3")}
    assert len(ports) == 3  # a new public port per destination: seen, not assumed


def test_firewall_drops_part_of_the_rtp_range_inbound(nattopo: NatTopo) -> None:
    nattopo.firewall_drop_new_inbound(21000, 21999)
    nattopo.start_responder()
    res = nattopo.run_lan(
        "probe", "nat", "--responder", RESPONDER, "--secret-env", "QSR_SECRET",
        "--rtp-ports", "--rtp-range", "20000-21999", "--hold-max", "0", "--format", "json",
    )  # fmt: skip
    assert res.returncode == 1, res.stdout + res.stderr
    f = findings(res.stdout)
    assert f["ports.outbound"]["summary"] == "outbound: 20000-21999 open"
    inbound = f["ports.inbound"]
    assert inbound["severity"] == "problem"
    # the boundary is found to the port by bisection between the 64 samples
    assert "20000-20999 open, 21000-21999 blocked" in inbound["summary"]
    assert f["ports.replies"]["summary"].endswith("20000-21999 open")  # stateful: replies pass
    assert f["alg.echo"]["severity"] == "ok"
    assert f["ports.tcp"]["evidence"]["inbound to 5060/tcp"] == "open"  # routed, not filtered


def _site(tmp_path: Path, stun: bool = True) -> Path:
    site = tmp_path / "site.yml"
    stun_block = f"          stun:\n            server: {NET_A1}:3478\n" if stun else ""
    site.write_text(
        "all:\n  vars:\n    qsys_model: Core 110f\n  hosts:\n    core-a:\n"
        f"      ansible_host: {LAN_IP}\n      softphones:\n"
        "        - name: Phone 1\n          profile: generic\n"
        f'          registrar: {NET_A1}:5060\n          username: "1001"\n'
        "          password: env:PW1001\n          registration_timeout: 3600\n" + stun_block
    )
    return site


@pytest.fixture
def kamailio_in_internet(nattopo: NatTopo, tmp_path: Path, test_ca: LabCA):
    k = start_kamailio(
        tmp_path / "kamailio", test_ca, netns=nattopo.internet,
        extra_listen=(f"udp:{NET_A1}:5060",),
    )  # fmt: skip
    try:
        yield k
    finally:
        k.stop()


def test_short_udp_timeout_against_the_registration_interval(
    nattopo: NatTopo, kamailio_in_internet: Any, tmp_path: Path
) -> None:
    nattopo.masquerade()
    nattopo.udp_timeout(6)  # pauses 2, 4, 8: 2 s of margin either side
    nattopo.start_responder()
    res = nattopo.run_lan(
        "diagnose", str(_site(tmp_path)), "--nat", "--responder", RESPONDER,
        "--secret-env", "QSR_SECRET", "--hold-max", "8", "--format", "json",
        env={"PW1001": "secret-1001"},
    )  # fmt: skip
    assert res.returncode == 1, res.stdout + res.stderr
    f = findings(res.stdout)
    t = f["nat.binding-timeout"]
    assert t["severity"] == "problem"
    assert "between 4 and 8 s" in t["summary"] and "every 3600 s" in t["summary"]
    assert "inbound calls will fail" in t["summary"]
    assert f["alg.registrar"]["severity"] == "ok"
    assert f["alg.registrar"]["evidence"]["Via received/rport"].startswith(f"{ROUTER_WAN}:")


def test_sip_alg_from_the_kernel_sip_helper(
    nattopo: NatTopo, kamailio_in_internet: Any, tmp_path: Path
) -> None:
    nattopo.masquerade()
    nattopo.sip_alg()
    nattopo.start_responder()
    res = nattopo.run_lan(
        "diagnose", str(_site(tmp_path)), "--nat", "--responder", RESPONDER,
        "--secret-env", "QSR_SECRET", "--hold-max", "0", "--format", "json",
        env={"PW1001": "secret-1001"},
    )  # fmt: skip
    assert res.returncode == 1, res.stdout + res.stderr
    f = findings(res.stdout)
    echo = f["alg.echo"]
    assert echo["severity"] == "problem"
    assert echo["summary"].startswith("a SIP ALG on the router rewrote the ")
    for part in ("Via", "Contact", "SDP address"):
        assert part in echo["summary"]
    assert any(ROUTER_WAN in line for line in echo["evidence"]["rewritten"])
    reg = f["alg.registrar"]
    assert reg["severity"] == "problem"
    assert reg["evidence"]["Via received/rport"].startswith(f"{LAN_IP}:")


def test_sip_alg_found_without_stun_through_the_responder(
    nattopo: NatTopo, kamailio_in_internet: Any, tmp_path: Path
) -> None:
    nattopo.masquerade()
    nattopo.sip_alg()
    nattopo.start_responder()
    res = nattopo.run_lan(
        "diagnose", str(_site(tmp_path, stun=False)), "--nat", "--responder", RESPONDER,
        "--secret-env", "QSR_SECRET", "--hold-max", "0", "--format", "json",
        env={"PW1001": "secret-1001"},
    )  # fmt: skip
    f = findings(res.stdout)
    assert f["stun.server"]["severity"] == "warning"
    reg = f["alg.registrar"]
    assert reg["severity"] == "problem" and "although the responder shows" in reg["summary"]
    assert reg["evidence"]["public (the responder)"] == ROUTER_WAN


def test_no_stun_server_configured_says_what_that_means(nattopo: NatTopo, tmp_path: Path) -> None:
    nattopo.masquerade()
    res = nattopo.run_lan(
        "diagnose", str(_site(tmp_path, stun=False)), "--nat", "--format", "json",
        env={"PW1001": "secret-1001"},
    )  # fmt: skip
    f = findings(res.stdout)
    assert f["stun.server"]["severity"] == "warning"
    assert "private address" in f["stun.server"]["summary"]


def test_stun_over_tcp_gives_the_public_address_of_the_connection(nattopo: NatTopo) -> None:
    nattopo.masquerade()
    res = nattopo.run_lan("probe", "stun", NET_A1, "--transport", "tcp", "--format", "json")
    assert res.returncode == 0, res.stdout + res.stderr
    f = findings(res.stdout)["stun.nat"]
    assert f["evidence"]["public (STUN)"].startswith(f"{ROUTER_WAN}:")
    assert f["evidence"]["local"].startswith(f"{LAN_IP}:")
    assert "NAT" in f["summary"] and "need UDP" in f["summary"]
