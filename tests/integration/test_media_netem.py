"""A stream through a lossy, jittery link between two namespaces, judged by tshark.

Two namespaces the test creates and deletes, joined by a veth pair
(198.18.90.1 and 198.18.90.2).  With ``tc netem`` (when the kernel has
sch_netem) A's side delays, jitters (and so reorders) and drops A's packets.
Kernels without it (this machine's Firecracker kernel) get the same
impairment from parts that exist: an nftables ``numgen random`` rule drops 4 %
on A's interface, and a delaying relay in A's namespace
(tests/fixtures/impair_relay.py) adds 30 ms ± 15 ms per datagram (enough to
reorder 20 ms packets).  Each side is one media session in its own
process.  tcpdump captures on B's interface; ``tshark -z rtp,streams`` on that
capture must agree with B's own statistics: packets and loss exactly, mean
jitter within 0.5 ms.  Nothing is added to the root namespace.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.common import REPO
from tests.fixtures.media import tshark_streams

pytestmark = [pytest.mark.integration, pytest.mark.root]

A, B, PORT_A, PORT_B, RELAY = "198.18.90.1", "198.18.90.2", 30000, 31000, 32000
LOSS_RULES = f"""table inet impair {{
  chain out {{
    type filter hook output priority 0;
    oifname "va" udp dport {PORT_B} numgen random mod 100 < 4 drop
  }}
}}
"""


def sh(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True)


@pytest.fixture
def link() -> Iterator[tuple[str, str, bool]]:
    tag = f"{os.getpid() % 100000}"
    ns_a, ns_b = f"qma{tag}", f"qmb{tag}"
    created: list[str] = []
    try:
        for name in (ns_a, ns_b):
            sh("ip", "netns", "add", name)
            created.append(name)
            sh("ip", "-n", name, "link", "set", "lo", "up")
        sh(
            "ip",
            "-n",
            ns_a,
            "link",
            "add",
            "va",
            "type",
            "veth",
            "peer",
            "name",
            "vb",
            "netns",
            ns_b,
        )
        for name, dev, addr in ((ns_a, "va", A), (ns_b, "vb", B)):
            sh("ip", "-n", name, "addr", "add", f"{addr}/24", "dev", dev)
            sh("ip", "-n", name, "link", "set", dev, "up")
        netem = subprocess.run(
            ["ip", "netns", "exec", ns_a, "tc", "qdisc", "add", "dev", "va", "root", "netem",
             "delay", "30ms", "15ms", "loss", "4%"], capture_output=True, text=True,
        )  # fmt: skip
        if netem.returncode != 0:
            assert "unknown" in netem.stderr, netem.stderr
            subprocess.run(["ip", "netns", "exec", ns_a, "nft", "-f", "-"], input=LOSS_RULES,
                           text=True, check=True, capture_output=True)  # fmt: skip
        yield ns_a, ns_b, netem.returncode == 0
    finally:
        for name in created:
            subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True)


def capture_sequences(pcap: Path) -> list[int]:
    """A's RTP sequence numbers as B received them, unwrapped, in arrival order."""
    out = subprocess.run(
        ["tshark", "-n", "-r", str(pcap), "-d", f"udp.port=={PORT_B},rtp", "-Y",
         f"ip.src=={A} && udp.dstport=={PORT_B} && rtp", "-T", "fields", "-e", "rtp.seq"],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout.split()  # fmt: skip
    seqs: list[int] = []
    for value in map(int, out):
        ext = value if not seqs else seqs[-1] + ((value - seqs[-1] + 0x8000) & 0xFFFF) - 0x8000
        seqs.append(ext)
    return seqs


def peer(ns: str, local: str, port: int, remote: str, seconds: float) -> subprocess.Popen[str]:
    return subprocess.Popen(
        ["ip", "netns", "exec", ns, sys.executable, "-m", "tests.fixtures.media_peer",
         "--local", local, "--port", str(port), "--remote", remote, "--seconds", str(seconds)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def test_netem_stream_agrees_with_tshark(link: tuple[str, str, bool], tmp_path: Path) -> None:
    ns_a, ns_b, netem = link
    pcap = tmp_path / "b.pcap"
    helpers: list[subprocess.Popen[str]] = []
    dump = subprocess.Popen(
        ["ip", "netns", "exec", ns_b, "tcpdump", "-i", "vb", "-n", "-U", "-w", str(pcap), "udp"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        assert dump.stderr is not None
        line = dump.stderr.readline()  # "listening on vb ..." once the capture runs
        assert "listening" in line, line
        a_sends_to, b_sends_to = f"{B}:{PORT_B}", f"{A}:{PORT_A}"
        if not netem:
            relay = subprocess.Popen(
                ["ip", "netns", "exec", ns_a, sys.executable, "-m", "tests.fixtures.impair_relay",
                 "--listen", f"{A}:{RELAY}", "--upstream", a_sends_to, "--seconds", "20",
                 "--jitter", "15"],
                cwd=REPO, stdout=subprocess.PIPE, text=True, start_new_session=True,
            )  # fmt: skip
            helpers.append(relay)
            assert relay.stdout is not None and relay.stdout.readline().strip() == "ready"
            a_sends_to = b_sends_to = f"{A}:{RELAY}"
        b = peer(ns_b, B, PORT_B, b_sends_to, 6.0)
        time.sleep(0.3)
        a = peer(ns_a, A, PORT_A, a_sends_to, 5.0)
        out_a, err_a = a.communicate(timeout=60)
        out_b, err_b = b.communicate(timeout=60)
        assert a.returncode == 0 and b.returncode == 0, err_a + err_b
    finally:
        for proc in helpers:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)
        os.killpg(dump.pid, signal.SIGTERM)
        dump.wait(timeout=10)
    got = json.loads(out_b)["received"]
    sent = json.loads(out_a)
    streams = [
        s
        for s in tshark_streams(pcap, PORT_B)
        if s.src == A and s.dst == B and s.dst_port == PORT_B
    ]
    assert len(streams) == 1, streams
    ts = streams[0]
    assert got["lost"] > 0 and got["reordered"] > 0  # netem did its job
    assert got["expected"] <= sent["sent_packets"]  # first/last packets may be among the lost
    assert ts.packets == got["packets"]
    # tshark counts the expected packets from the *first* to the *last* packet to arrive;
    # we count from the lowest to the highest sequence number (RFC 3550 A.3's intent).
    # When the stream's first or last packets arrive reordered the two differ by exactly
    # those gaps, which the capture itself shows.
    seqs = capture_sequences(pcap)
    assert len(seqs) == got["packets"]
    assert ts.lost + (max(seqs) - seqs[-1]) + (seqs[0] - min(seqs)) == got["lost"]
    assert got["lost"] == max(seqs) - min(seqs) + 1 - len(set(seqs))
    assert abs(ts.mean_jitter_ms - got["mean_jitter_ms"]) < 0.5, (ts, got)
