"""NAT between the diagnosing machine and the PBX, built with namespaces and nftables.

Three namespaces the test creates and deletes: a client (198.18.0.2), a
router (198.18.0.1 / 198.19.0.1) and a server running Kamailio (198.19.0.2).
First the router only routes: the probe must say "no NAT".  Then it
masquerades: the probe must see Kamailio's Via received/rport name the
router's WAN address and call it NAT.  Nothing is added to the root namespace.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.kamailio import Kamailio, LabCA, start_kamailio

pytestmark = [pytest.mark.integration, pytest.mark.root]

CLIENT, ROUTER_LAN, ROUTER_WAN, SERVER = "198.18.0.2", "198.18.0.1", "198.19.0.1", "198.19.0.2"


def sh(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True)


@pytest.fixture
def nat_lab(tmp_path: Path, test_ca: LabCA) -> Iterator[tuple[dict[str, str], Kamailio]]:
    tag = f"{os.getpid() % 100000}"
    ns = {"client": f"qsc{tag}", "router": f"qsr{tag}", "server": f"qss{tag}"}
    created: list[str] = []
    k: Kamailio | None = None
    try:
        for name in ns.values():
            sh("ip", "netns", "add", name)
            created.append(name)
            sh("ip", "-n", name, "link", "set", "lo", "up")
        c, r, s = ns["client"], ns["router"], ns["server"]
        sh("ip", "-n", r, "link", "add", "lan0", "type", "veth", "peer", "name", "eth0", "netns", c)
        sh("ip", "-n", r, "link", "add", "wan0", "type", "veth", "peer", "name", "eth0", "netns", s)
        for name, dev, addr in [(c, "eth0", CLIENT), (r, "lan0", ROUTER_LAN),
                                (r, "wan0", ROUTER_WAN), (s, "eth0", SERVER)]:  # fmt: skip
            sh("ip", "-n", name, "addr", "add", f"{addr}/24", "dev", dev)
            sh("ip", "-n", name, "link", "set", dev, "up")
        sh("ip", "-n", c, "route", "add", "default", "via", ROUTER_LAN)
        sh("ip", "-n", s, "route", "add", "198.18.0.0/24", "via", ROUTER_WAN)
        sh("ip", "netns", "exec", r, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        k = start_kamailio(
            tmp_path / "kamailio", test_ca, netns=s, extra_listen=(f"udp:{SERVER}:5060",)
        )
        yield ns, k
    finally:
        if k is not None:
            k.stop()
        for name in created:
            subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True)


def probe_from_client(ns: dict[str, str]) -> dict:
    exe = Path(sys.executable).with_name("qsipctl")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "qsipctl"]
    res = subprocess.run(
        ["ip", "netns", "exec", ns["client"], *cmd, "probe", "register",
         f"sip:1001@{SERVER}:5060", "--password-env", "PW", "--bind", "--format", "json"],
        capture_output=True, text=True, env={**os.environ, "PW": "secret-1001"}, timeout=60,
    )  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr
    [result] = json.loads(res.stdout)["results"]
    return result


def test_routed_path_is_not_nat(nat_lab) -> None:
    ns, _ = nat_lab
    r = probe_from_client(ns)
    assert r["local"].startswith(f"{CLIENT}:")
    assert r["seen_as"] == r["local"]
    assert r["nat"] is False


def test_masquerading_router_is_reported_as_nat(nat_lab) -> None:
    ns, _ = nat_lab
    rules = (
        "table ip qsnat {\n  chain post {\n    type nat hook postrouting priority 100;\n"
        '    oifname "wan0" masquerade\n  }\n}\n'
    )
    subprocess.run(
        ["ip", "netns", "exec", ns["router"], "nft", "-f", "-"],
        input=rules, text=True, check=True, capture_output=True,
    )  # fmt: skip
    r = probe_from_client(ns)
    assert r["local"].startswith(f"{CLIENT}:")
    assert r["seen_as"].startswith(f"{ROUTER_WAN}:")
    assert r["nat"] is True
    assert r["ok"] and r["unregistered"] is True
