"""The responder must never be a reflector or an amplifier: measured in packets and bytes.

The responder runs in the "internet" namespace; the attacker sends from the
"lan" namespace (198.18.0.2); a third address (198.18.0.3, the would-be
victim) sits beside it.  nftables counters on the responder's namespace
count every packet and byte it sends, and every packet that reaches the
victim: the numbers are the kernel's, not the responder's own bookkeeping.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from tests.fixtures.nattopo import NET_A2, RESPONDER_PORT, SECRET, NatTopo, sh

pytestmark = [pytest.mark.integration, pytest.mark.root]

VICTIM = "198.18.0.3"

COUNTERS = f"""
table inet qscount {{
  chain out {{
    type filter hook output priority 0;
    ip saddr {NET_A2} counter
    ip daddr {VICTIM} counter
  }}
}}
"""

# the attacker: sends what the scenario says, reports what came back
ATTACK = r"""
import json, os, socket, sys, time
from qsipctl.responder.protocol import new_request, sign
secret = os.environ["QSR_SECRET"].encode()
server = (sys.argv[1], int(sys.argv[2]))
scenario = sys.argv[3]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("198.18.0.2", 0))
def signed(op, key=secret, pad_to=400, **a):
    return sign(key, new_request(op, time.time(), pad_to=pad_to, **a))
if scenario == "no-secret":
    packets = [os.urandom(300) for _ in range(50)] + [b"QSR1" + os.urandom(300) for _ in range(50)]
elif scenario == "wrong-secret":
    packets = [signed("hello", key=b"not-the-secret-0123456789") for _ in range(100)]
elif scenario == "replay":
    packets = [signed("hello")] * 100
elif scenario == "third-address":
    packets = [signed("probe-in", ports=[5060, 16384], token="x", addr="198.18.0.3"),
               signed("hello", to="198.18.0.3"), signed("hold", pause=1, dest="198.18.0.3")]
elif scenario == "oversized":
    packets = [signed("probe-in", pad_to=1450, ports=list(range(20000, 20064)), token="x")] * 20
elif scenario == "flood":
    packets = [signed("hello") for _ in range(1000)]
sent_bytes = 0
for p in packets:
    s.sendto(p, server)
    sent_bytes += len(p)
s.settimeout(1.5)
got, got_bytes = 0, 0
try:
    while True:
        data = s.recv(65535)
        got += 1
        got_bytes += len(data)
except socket.timeout:
    pass
print(json.dumps({"sent": len(packets), "sent_bytes": sent_bytes, "got": got,
                  "got_bytes": got_bytes}))
"""


@pytest.fixture
def responder_lab(nattopo: NatTopo) -> NatTopo:
    sh("ip", "-n", nattopo.lan, "addr", "add", f"{VICTIM}/24", "dev", "eth0")
    nattopo.start_responder()
    sh("ip", "netns", "exec", nattopo.internet, "nft", "-f", "-", input=COUNTERS)
    return nattopo


def counters(topo: NatTopo) -> dict[str, tuple[int, int]]:
    out = subprocess.run(
        ["ip", "netns", "exec", topo.internet, "nft", "-j", "list", "table", "inet", "qscount"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    found: dict[str, tuple[int, int]] = {}
    for item in json.loads(out)["nftables"]:
        rule = item.get("rule")
        if not rule:
            continue
        match = next(e["match"] for e in rule["expr"] if "match" in e)
        field = match["left"]["payload"]["field"]
        counter = next(e["counter"] for e in rule["expr"] if "counter" in e)
        found[field] = (counter["packets"], counter["bytes"])
    return found


def attack(topo: NatTopo, scenario: str) -> tuple[dict[str, Any], dict[str, tuple[int, int]]]:
    before = counters(topo)
    res = subprocess.run(
        ["ip", "netns", "exec", topo.lan, sys.executable, "-c", ATTACK, NET_A2,
         str(RESPONDER_PORT), scenario],
        capture_output=True, text=True, timeout=60, env={"QSR_SECRET": SECRET, "PATH": "/usr/bin"},
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    after = counters(topo)
    delta = {k: (after[k][0] - before[k][0], after[k][1] - before[k][1]) for k in after}
    return json.loads(res.stdout), delta


@pytest.mark.parametrize("scenario", ["no-secret", "wrong-secret", "oversized"])
def test_unauthenticated_or_oversized_requests_get_nothing(
    responder_lab: NatTopo, scenario: str
) -> None:
    seen, out = attack(responder_lab, scenario)
    assert seen["got"] == 0
    assert out["saddr"] == (0, 0)  # not one packet left the responder


def test_replayed_request_is_answered_once(responder_lab: NatTopo) -> None:
    seen, out = attack(responder_lab, "replay")
    assert seen["sent"] == 100 and seen["got"] == 1
    packets, nbytes = out["saddr"]
    assert packets == 1
    assert nbytes <= seen["sent_bytes"] / seen["sent"] + 28  # one answer, IP+UDP headers


def test_third_address_is_never_sent_to(responder_lab: NatTopo) -> None:
    seen, out = attack(responder_lab, "third-address")
    assert out["daddr"] == (0, 0)  # the victim got nothing
    assert seen["got"] <= seen["sent"]  # at most one short refusal per request
    assert out["saddr"][1] <= seen["sent_bytes"] + 28 * seen["sent"]


def test_flood_from_one_source_is_rate_limited(responder_lab: NatTopo) -> None:
    seen, out = attack(responder_lab, "flood")
    packets, nbytes = out["saddr"]
    assert seen["sent"] == 1000
    assert packets <= 200  # Limits.requests_per_window per 10 s
    assert nbytes < seen["sent_bytes"]  # less out than in: no amplification
