#!/usr/bin/env python3
"""RTP sender pacing and concurrent streams, measured from a loopback capture.

1. One call: one media session sends a tone to a second one for --seconds;
   tcpdump captures on ``lo``; the deviation of every inter-packet interval
   from 20 ms is taken from the capture's timestamps (not from our own clock).
   Goal (issue 9): p99 deviation under 1 ms.
2. Concurrent calls: a process with N media sessions (N streams out, N in)
   against a peer process with N sessions, for N in --calls.  From the
   capture: p99 pacing deviation of our N outgoing streams; from both
   processes' RTP statistics: loss of our streams at the peer and of the
   peer's at us; our process's CPU time.  Goal: at least 100 calls (200
   streams) with < 0.1 % loss and p99 pacing < 2 ms.

Needs tcpdump (root).  Everything stays on 127.0.0.1.

    python3 benchmarks/rtp_pacing.py [--seconds 10] [--calls 1,50,100,150,200]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import math
import os
import resource
import signal
import struct
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

OUR_BASE, PEER_BASE = 20000, 36000


async def run_sessions(role: str, calls: int, seconds: float, rendezvous: Path) -> dict:
    """N sessions; ports are exchanged through files (other jobs on the machine hold ports)."""
    from qsipctl.media.session import MediaConfig, MediaSession
    from qsipctl.sdp import CODECS

    lo, hi = (OUR_BASE, PEER_BASE) if role == "ours" else (PEER_BASE, PEER_BASE + 16000)
    sessions = []
    for _ in range(calls):
        cfg = MediaConfig(codec=CODECS["PCMU"], local_host="127.0.0.1", port_range=(lo, hi),
                          analyse_audio=False, rtcp_interval=5.0)  # fmt: skip
        s = MediaSession(cfg)
        await s.__aenter__()
        sessions.append(s)
    mine, other = rendezvous / f"{role}.json", rendezvous / ("peer" if role == "ours" else "ours")
    tmp = mine.with_suffix(".tmp")
    tmp.write_text(json.dumps([s.local[1] for s in sessions]))
    tmp.replace(mine)
    other_file = other.with_suffix(".json")
    while not other_file.exists():
        await asyncio.sleep(0.01)
    for s, port in zip(sessions, json.loads(other_file.read_text()), strict=True):
        s.set_remote(("127.0.0.1", port))
    start_cpu = resource.getrusage(resource.RUSAGE_SELF)
    for s in sessions:
        s.start()
    await asyncio.sleep(seconds)
    for s in sessions:
        s.stop()
    await asyncio.sleep(0.3)  # what is in flight arrives
    end_cpu = resource.getrusage(resource.RUSAGE_SELF)
    results = [s.result() for s in sessions]
    for s in sessions:
        await s.aclose()
    expected = sum(r.received.expected for r in results)
    lost = sum(r.received.lost for r in results)
    cpu = (end_cpu.ru_utime - start_cpu.ru_utime) + (end_cpu.ru_stime - start_cpu.ru_stime)
    own = sorted(r.pacing.p99_deviation_ms for r in results)
    return {
        "ports": [s.local[1] for s in sessions],
        "own_p99_median_ms": own[len(own) // 2],
        "own_p99_max_ms": own[-1],
        "sent": sum(r.sent_packets for r in results),
        "expected": expected,
        "lost": lost,
        "received": sum(r.received.packets for r in results),
        "cpu_s": round(cpu, 2),
    }


def read_pcap(path: Path) -> list[tuple[float, int, int]]:
    """(time, UDP source port, destination port) of each IPv4/UDP packet of a tcpdump file."""
    data = path.read_bytes()
    magic = struct.unpack_from("<I", data)[0]
    nano = magic == 0xA1B23C4D
    linktype = struct.unpack_from("<I", data, 20)[0]
    offset = {1: 14, 113: 16, 276: 20, 101: 0, 0: 4}.get(linktype, 14)
    pos, out = 24, []
    while pos + 16 <= len(data):
        sec, frac, incl, _ = struct.unpack_from("<IIII", data, pos)
        pkt = data[pos + 16 : pos + 16 + incl]
        pos += 16 + incl
        ip = pkt[offset:]
        if len(ip) < 28 or ip[0] >> 4 != 4 or ip[9] != 17:
            continue
        ihl = (ip[0] & 0x0F) * 4
        sport, dport = struct.unpack_from("!HH", ip, ihl)
        out.append((sec + frac / (1e9 if nano else 1e6), sport, dport))
    return out


def pacing_from_capture(packets: list[tuple[float, int, int]], ports: set[int]) -> dict:
    """Deviation of each interval from 20 ms, for the RTP sent from ``ports``."""
    streams: dict[tuple[int, int], list[float]] = defaultdict(list)
    for t, sport, dport in packets:
        if sport in ports:
            streams[(sport, dport)].append(t)
    devs: list[float] = []
    for times in streams.values():
        times.sort()
        devs += [abs((b - a) - 0.020) * 1000 for a, b in itertools.pairwise(times)]
    devs.sort()
    if not devs:
        return {"streams": 0}
    pick = lambda q: round(devs[min(len(devs) - 1, math.ceil(q * len(devs)) - 1)], 3)  # noqa: E731
    return {"streams": len(streams), "intervals": len(devs), "p50_ms": pick(0.5),
            "p99_ms": pick(0.99), "max_ms": round(devs[-1], 3)}  # fmt: skip


def measure(calls: int, seconds: float, tmp: Path) -> dict:
    pcap = tmp / f"calls-{calls}.pcap"
    rendezvous = tmp / f"ports-{calls}"
    rendezvous.mkdir()
    dump = subprocess.Popen(
        ["tcpdump", "-i", "lo", "-n", "-B", "16384", "-s", "64", "-w", str(pcap),
         f"udp and src portrange {OUR_BASE}-{PEER_BASE - 1}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    assert dump.stderr is not None
    dump.stderr.readline()  # "listening on lo"
    me = [sys.executable, __file__, "--role"]
    args = ["--calls", str(calls), "--seconds", str(seconds), "--rendezvous", str(rendezvous)]
    peer = subprocess.Popen([*me, "peer", *args], stdout=subprocess.PIPE, text=True)
    ours = subprocess.Popen([*me, "ours", *args], stdout=subprocess.PIPE, text=True)
    our_out, _ = ours.communicate(timeout=seconds + 120)
    peer_out, _ = peer.communicate(timeout=seconds + 120)
    time.sleep(0.5)
    os.killpg(dump.pid, signal.SIGTERM)
    dump.wait(timeout=10)
    mine, theirs = json.loads(our_out), json.loads(peer_out)
    pacing = pacing_from_capture(read_pcap(pcap), set(mine["ports"]))
    loss_at_peer = 100 * theirs["lost"] / max(1, theirs["expected"])
    loss_at_us = 100 * mine["lost"] / max(1, mine["expected"])
    return {"calls": calls, "pacing": pacing, "our_streams_loss_pct": round(loss_at_peer, 3),
            "peer_streams_loss_pct": round(loss_at_us, 3), "our_cpu_s": mine["cpu_s"],
            "own_clock": (mine["own_p99_median_ms"], mine["own_p99_max_ms"]),
            "seconds": seconds}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--calls", default="1,50,100,150,200")
    ap.add_argument("--role", choices=("ours", "peer"))
    ap.add_argument("--rendezvous", type=Path)
    args = ap.parse_args()
    if args.role:
        extra = 0.0 if args.role == "ours" else 1.0  # the peer outlives our streams
        summary = asyncio.run(
            run_sessions(args.role, int(args.calls), args.seconds + extra, args.rendezvous)
        )
        print(json.dumps(summary), flush=True)
        return
    with tempfile.TemporaryDirectory() as tmp:
        print(f"RTP pacing from a loopback capture, {args.seconds:.0f} s per run, "
              f"load average {os.getloadavg()[0]:.1f} at start")  # fmt: skip
        for calls in (int(c) for c in args.calls.split(",")):
            r = measure(calls, args.seconds, Path(tmp))
            p = r["pacing"]
            ok = (r["our_streams_loss_pct"] < 0.1 and r["peer_streams_loss_pct"] < 0.1
                  and p.get("p99_ms", 99) < (1.0 if calls == 1 else 2.0))  # fmt: skip
            print(f"  {calls:4d} calls ({2 * calls:4d} streams): pacing p50 {p.get('p50_ms')} ms "
                  f"p99 {p.get('p99_ms')} ms max {p.get('max_ms')} ms over "
                  f"{p.get('intervals')} intervals; loss ours->peer "
                  f"{r['our_streams_loss_pct']} %, peer->ours {r['peer_streams_loss_pct']} %; "
                  f"our CPU {r['our_cpu_s']} s / {args.seconds:.0f} s; "
                  f"p99 by our own clock (median/max stream) {r['own_clock']} ms; "
                  f"{'meets' if ok else 'MISSES'} the goal", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
