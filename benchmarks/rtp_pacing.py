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
3. The named peer, after each N: the same N calls made by SIPp alone (a SIPp
   UAC against a SIPp UAS, both streaming the tone with SIPp's own
   ``exec rtp_stream``, 20 ms PCMU), captured and measured the same way;
   printed under ours with the ours/SIPp ratios of p99 and CPU.

Each line also gives how long our process waited for a CPU (run-queue wait,
Linux schedstat): on a shared machine that, not our code, sets the tail.
--ticks adds, per N, where the pacer's ticks went (:func:`tick_report`):
timer lateness, tick duration and CPU, run-queue wait inside ticks, garbage
collections, and the cause of every interval off by more than 2 ms.
--peer-nice 19 runs the peer process at a low priority, to see whether it
is what preempts our ticks on a 2-core machine; --pin keeps our process on
one CPU and the peer and tcpdump on the others (the usual separation of the
system under test from its load generator).

Needs tcpdump (root) and sipp (Debian sip-tester; --no-sipp skips part 3).
Everything stays on 127.0.0.1.

    python3 benchmarks/rtp_pacing.py [--seconds 10] [--calls 1,50,100,150,200] [--no-sipp]
                                     [--ticks] [--peer-nice N] [--pin]
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import collections
import gc
import itertools
import json
import math
import os
import resource
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import wave
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


OUR_BASE, PEER_BASE = 20000, 36000


def runqueue_wait() -> float:
    """Seconds this thread has spent runnable but waiting for a CPU (Linux schedstat)."""
    try:
        return int(Path("/proc/thread-self/schedstat").read_text().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return float("nan")


def quantiles(values: list[float], scale: float = 1000.0) -> dict:
    """p50, p99 and max of ``values`` (seconds, printed in ms by default)."""
    v = sorted(values)
    if not v:
        return {}
    pick = lambda q: round(scale * v[min(len(v) - 1, math.ceil(q * len(v)) - 1)], 3)  # noqa: E731
    return {"p50": pick(0.5), "p99": pick(0.99), "max": round(scale * v[-1], 3)}


def tick_report(ticks: list, gc_pauses: list[tuple[int, float, float]],
                send_times: list[tuple[float, ...]], waits: list[float],
                waits_before: list[float]) -> dict:  # fmt: skip
    """Where each tick's time went, and what caused each send interval off by more than 2 ms.

    ``ticks`` are the pacer's :class:`~qsipctl.media.pacer.Tick` records,
    ``gc_pauses`` (generation, start, end) from ``gc.callbacks``, ``send_times``
    each stream's send times in the order the streams sit in the tick.  An
    interval of stream k spans two ticks a and b; its deviation from 20 ms is
    (start_b - start_a - 20 ms), the *tick start* part, plus the change of k's
    offset inside the tick, the *in-tick* part.  The larger part names the cause;
    an in-tick cause is further split by what stretched the tick: a garbage
    collection in it, or time off the CPU.  ``waits`` is, per tick, how long
    the process waited on a run queue during the tick (schedstat, read by
    probe callbacks first and last in the tick): the kernel ran another task
    on our CPU while we were ready to send.  ``waits_before`` is the same from
    the previous tick's end to this tick's start: a late timer with no
    run-queue wait before it was held up by the event loop itself (callbacks
    for received packets run before a due timer in the same loop iteration).
    """
    if not ticks:
        return {}
    starts = [t.start for t in ticks]
    skipped = sum(round((b.grid - a.grid) / 0.020) - 1 for a, b in itertools.pairwise(ticks))
    off_cpu = [max(0.0, (t.end - t.start) - t.cpu) for t in ticks]
    gc_in_tick = [0] * len(ticks)
    for _, g0, g1 in gc_pauses:
        i = bisect.bisect_right(starts, g1) - 1
        if i >= 0 and g0 <= ticks[i].end:
            gc_in_tick[i] = 1
    late_timer = [i for i, t in enumerate(ticks) if t.late > 0.0005 and i < len(waits_before)]
    causes = {"tick_start": 0, "in_tick_gc": 0, "in_tick_off_cpu": 0, "in_tick_other": 0}
    by_position: list[list[float]] = [[], [], [], []]
    for k, times in enumerate(send_times):
        quarter = min(3, 4 * k // max(1, len(send_times)))
        for t0, t1 in itertools.pairwise(times):
            dev = (t1 - t0) - 0.020
            by_position[quarter].append(abs(dev))
            if abs(dev) <= 0.002:
                continue
            a, b = bisect.bisect_right(starts, t0) - 1, bisect.bisect_right(starts, t1) - 1
            if a < 0 or b <= a:
                continue
            start_part = ticks[b].start - ticks[a].start - 0.020
            if abs(start_part) >= abs(dev - start_part):
                causes["tick_start"] += 1
            elif gc_in_tick[a] or gc_in_tick[b]:
                causes["in_tick_gc"] += 1
            elif max(off_cpu[a], off_cpu[b]) > 0.5 * abs(dev - start_part):
                causes["in_tick_off_cpu"] += 1
            else:
                causes["in_tick_other"] += 1
    gens = collections.Counter(g for g, _, _ in gc_pauses)
    return {
        "ticks": len(ticks),
        "skipped_grid_times": skipped,
        "timer_late_ms": quantiles([t.woke - t.scheduled for t in ticks]),
        "start_after_grid_ms": quantiles([t.late for t in ticks]),
        "duration_ms": quantiles([t.end - t.start for t in ticks]),
        "cpu_per_tick_ms": quantiles([t.cpu for t in ticks]),
        "off_cpu_in_tick_ms": quantiles(off_cpu),
        "runqueue_wait_in_tick_ms": quantiles(waits),
        "late_starts": {
            "count": len(late_timer),
            "runqueue_wait_before_ms": quantiles([waits_before[i] for i in late_timer]),
            "cpu_between_ticks_ms": quantiles([ticks[i].cpu_between for i in late_timer]),
        },
        "cpu_between_ticks_ms": quantiles([t.cpu_between for t in ticks]),
        "gc": {
            "collections": dict(sorted(gens.items())),
            "ticks_with_gc": sum(gc_in_tick),
            "pause_ms": quantiles([g1 - g0 for _, g0, g1 in gc_pauses]),
        },
        "intervals_over_2ms_by_cause": causes,
        "p99_by_position_quarter_ms": [quantiles(q).get("p99") for q in by_position],
    }


async def run_sessions(role: str, calls: int, seconds: float, rendezvous: Path) -> dict:
    """N sessions; ports are exchanged through files (other jobs on the machine hold ports)."""
    from qsipctl.media.pacer import Pacer
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
    pacer = Pacer.for_loop()
    ticks = pacer.record(limit=round(seconds * 50) + 100)
    wait_marks: list[float] = []
    waits: list[float] = []  # runqueue wait inside each tick, from probes at both its ends
    waits_before: list[float] = []  # and from the previous tick's end to this one's start
    end_mark = [runqueue_wait()]

    def tick_begins(now: float) -> None:
        wait_marks.append(runqueue_wait())
        waits_before.append(wait_marks[-1] - end_mark[0])

    def tick_ends(now: float) -> None:
        end_mark[0] = runqueue_wait()
        waits.append(end_mark[0] - wait_marks[-1])

    first = pacer.add(tick_begins)[0]
    gc_pauses: list[tuple[int, float, float]] = []
    gc_started = [0.0]

    def on_gc(phase: str, info: dict) -> None:
        if phase == "start":
            gc_started[0] = time.monotonic()
        else:
            gc_pauses.append((info["generation"], gc_started[0], time.monotonic()))

    gc.callbacks.append(on_gc)
    start_cpu, start_wait = resource.getrusage(resource.RUSAGE_SELF), runqueue_wait()
    for s in sessions:
        s.start()
    last = pacer.add(tick_ends)[0]
    await asyncio.sleep(seconds)
    for s in sessions:
        s.stop()
    pacer.remove(first)
    pacer.remove(last)
    wait = runqueue_wait() - start_wait
    gc.callbacks.remove(on_gc)
    report = tick_report(list(ticks), gc_pauses, [s.send_times for s in sessions], waits,
                         waits_before)  # fmt: skip
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
        "runqueue_wait_s": round(wait, 3),
        "ticks": report,
    }


def read_pcap(path: Path) -> list[tuple[float, int, int, int, int]]:
    """(time, source port, destination port, RTP SSRC, RTP sequence) of each IPv4/UDP packet.

    SSRC and sequence are 0 when the packet is too short to be RTP.  SIPp sends
    every call's stream from the same port, so its streams are told apart by SSRC.
    """
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
        rtp = ip[ihl + 8 :]
        seq, ssrc = struct.unpack_from("!H4xI", rtp, 2) if len(rtp) >= 12 else (0, 0)
        out.append((sec + frac / (1e9 if nano else 1e6), sport, dport, ssrc, seq))
    return out


def pacing_from_capture(packets: list[tuple[float, int, int, int, int]], ports: set[int]) -> dict:
    """Deviation of each interval from 20 ms, for the RTP sent from ``ports``.

    A stream is (source port, destination port, SSRC).  ``lost_pct`` counts the
    sequence numbers missing from the capture (what never reached ``lo``; a
    receiver's socket-buffer drops are not visible here).
    """
    streams: dict[tuple[int, int, int], list[float]] = defaultdict(list)
    seqs: dict[tuple[int, int, int], list[int]] = defaultdict(list)
    for t, sport, dport, ssrc, seq in packets:
        if sport in ports:
            streams[(sport, dport, ssrc)].append(t)
            seqs[(sport, dport, ssrc)].append(seq)
    # packets arrive in order on lo: each step forward (mod 2^16) spans step - 1 lost ones
    steps = (sum((b - a) % 65536 for a, b in itertools.pairwise(q)) for q in seqs.values())
    expected = sum(1 + n for n in steps)
    lost_pct = round(100 * (expected - sum(map(len, seqs.values()))) / max(1, expected), 3)
    devs: list[float] = []
    for times in streams.values():
        times.sort()
        devs += [abs((b - a) - 0.020) * 1000 for a, b in itertools.pairwise(times)]
    devs.sort()
    if not devs:
        return {"streams": 0}
    pick = lambda q: round(devs[min(len(devs) - 1, math.ceil(q * len(devs)) - 1)], 3)  # noqa: E731
    return {"streams": len(streams), "intervals": len(devs), "p50_ms": pick(0.5),
            "p99_ms": pick(0.99), "max_ms": round(devs[-1], 3), "lost_pct": lost_pct}  # fmt: skip


def cpu_split(pin: bool) -> tuple[set[int] | None, set[int] | None]:
    """(our CPU, everyone else's) with --pin on a machine with two or more CPUs.

    The load generator (the peer process, tcpdump) then cannot take our CPU in
    the middle of a tick; what is left in our tail is our own doing (and the
    kernel's).  Without pinning, on 2 CPUs, the peer's wake-ups preempt our
    ticks (see --ticks: the tick overrun equals the run-queue wait in it).
    """
    cpus = sorted(os.sched_getaffinity(0))
    if not pin or len(cpus) < 2:
        return None, None
    return {cpus[0]}, set(cpus[1:])


def _pin(pid: int, cpus: set[int] | None) -> None:
    if cpus is not None:
        os.sched_setaffinity(pid, cpus)


def measure(calls: int, seconds: float, tmp: Path, peer_nice: int = 0, pin: bool = False) -> dict:
    pcap = tmp / f"calls-{calls}.pcap"
    our_cpu, other_cpus = cpu_split(pin)
    rendezvous = tmp / f"ports-{calls}"
    rendezvous.mkdir()
    dump = subprocess.Popen(
        ["tcpdump", "-i", "lo", "-n", "-B", "16384", "-s", "64", "-w", str(pcap),
         f"udp and src portrange {OUR_BASE}-{PEER_BASE - 1}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    assert dump.stderr is not None
    _pin(dump.pid, other_cpus)
    dump.stderr.readline()  # "listening on lo"
    me = [sys.executable, __file__, "--role"]
    args = ["--calls", str(calls), "--seconds", str(seconds), "--rendezvous", str(rendezvous)]
    nice = ["nice", "-n", str(peer_nice)] if peer_nice else []
    peer = subprocess.Popen([*nice, *me, "peer", *args], stdout=subprocess.PIPE, text=True)
    _pin(peer.pid, other_cpus)
    ours = subprocess.Popen([*me, "ours", *args], stdout=subprocess.PIPE, text=True)
    _pin(ours.pid, our_cpu)
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
            "ticks": mine["ticks"], "runqueue_wait_s": mine["runqueue_wait_s"],
            "seconds": seconds}  # fmt: skip


# --- SIPp as the named peer: N SIPp UAC calls against a SIPp UAS, both streaming ---

_SDP = """v=0
o=- 1 1 IN IP[local_ip_type] [local_ip]
s=-
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 0
a=rtpmap:0 PCMU/8000
"""
_HDR = """Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:uac@[local_ip]:[local_port]>;tag=[pid]u[call_number]
Call-ID: [call_id]
Max-Forwards: 70
"""
SIPP_UAC = f"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="qsipctl rtp_pacing uac">
<send retrans="500"><![CDATA[
INVITE sip:bench@[remote_ip]:[remote_port] SIP/2.0
{_HDR}To: <sip:bench@[remote_ip]:[remote_port]>
CSeq: 1 INVITE
Contact: <sip:uac@[local_ip]:[local_port]>
Content-Type: application/sdp
Content-Length: [len]

{_SDP}]]></send>
<recv response="100" optional="true"/>
<recv response="200" rrs="true"/>
<send><![CDATA[
ACK [next_url] SIP/2.0
{_HDR}To: <sip:bench@[remote_ip]:[remote_port]>[peer_tag_param]
CSeq: 1 ACK
Content-Length: 0
]]></send>
<nop><action><exec rtp_stream="tone.wav,-1,0"/></action></nop>
<pause milliseconds="{{ms}}"/>
<nop><action><exec rtp_stream="pause"/></action></nop>
<send retrans="500"><![CDATA[
BYE [next_url] SIP/2.0
{_HDR}To: <sip:bench@[remote_ip]:[remote_port]>[peer_tag_param]
CSeq: 2 BYE
Content-Length: 0
]]></send>
<recv response="200"/>
</scenario>
"""
SIPP_UAS = f"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="qsipctl rtp_pacing uas">
<recv request="INVITE" crlf="true"/>
<send><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:];tag=[pid]s[call_number]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:uas@[local_ip]:[local_port]>
Content-Type: application/sdp
Content-Length: [len]

{_SDP}]]></send>
<recv request="ACK"/>
<nop><action><exec rtp_stream="tone.wav,-1,0"/></action></nop>
<recv request="BYE"/>
<nop><action><exec rtp_stream="pause"/></action></nop>
<send><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0
]]></send>
</scenario>
"""


def write_tone_wav(path: Path) -> None:
    """One second of a 440 Hz tone, already G.711 µ-law, in a WAV container.

    SIPp's rtp_stream skips the WAV header and sends the data chunk's bytes
    as they are, 160 per 20 ms for payload 0, so the samples must be µ-law
    octets; the wave module only labels them 8-bit PCM, which SIPp ignores.
    """
    from qsipctl.rtp.g711 import encode

    samples = [round(8000 * math.sin(2 * math.pi * 440 * i / 8000)) for i in range(8000)]
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(1)
        w.setframerate(8000)
        w.writeframes(encode(samples, "ulaw"))


def free_udp_port(pair: bool = False) -> int:
    """A UDP port on 127.0.0.1 free now (and its +1 when ``pair``): other jobs hold ports."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as a:
            a.bind(("127.0.0.1", 0))
            port = a.getsockname()[1]
            if not pair:
                return port
            try:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as b:
                    b.bind(("127.0.0.1", port + 1))
                    return port
            except OSError:
                continue
    raise RuntimeError("no free UDP port pair on 127.0.0.1")


def _stop(proc: subprocess.Popen) -> None:
    if proc.returncode is None and proc.poll() is None:
        proc.kill()
        proc.wait(timeout=10)


def measure_sipp(calls: int, seconds: float, tmp: Path, pin: bool = False) -> dict:
    """N SIPp calls, each side streaming the tone with SIPp's own rtp_stream, captured on lo."""
    uac_cpu, other_cpus = cpu_split(pin)  # as ours: the UAC alone, the UAS and tcpdump apart
    work = tmp / f"sipp-{calls}"
    work.mkdir()
    write_tone_wav(work / "tone.wav")
    (work / "uac.xml").write_text(SIPP_UAC.replace("{ms}", str(round(seconds * 1000))))
    (work / "uas.xml").write_text(SIPP_UAS)
    uas_sip, uac_sip = free_udp_port(), free_udp_port()
    uas_media, uac_media = free_udp_port(pair=True), free_udp_port(pair=True)
    pcap = work / "sipp.pcap"
    dump = subprocess.Popen(
        ["tcpdump", "-i", "lo", "-n", "-B", "16384", "-s", "64", "-w", str(pcap),
         f"udp and (src port {uas_media} or src port {uac_media})"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    assert dump.stderr is not None
    _pin(dump.pid, other_cpus)
    dump.stderr.readline()  # "listening on lo"
    common = ["-i", "127.0.0.1", "-mi", "127.0.0.1", "-m", str(calls), "-l", str(calls),
              "-nostdin", "-timeout", f"{round(seconds) + 120}s", "-timeout_error"]  # fmt: skip
    procs = []
    try:
        uas = subprocess.Popen(
            ["sipp", "-sf", "uas.xml", "-p", str(uas_sip), "-mp", str(uas_media), *common],
            cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        procs.append(uas)
        _pin(uas.pid, other_cpus)
        time.sleep(0.5)
        uac = subprocess.Popen(
            ["sipp", "-sf", "uac.xml", "-p", str(uac_sip), "-mp", str(uac_media), *common,
             "-r", "500", f"127.0.0.1:{uas_sip}"],
            cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        procs.append(uac)
        _pin(uac.pid, uac_cpu)
        # wait4 gives each SIPp process's own CPU time (whole life: set-up, SIP, RTP)
        _, uac_status, uac_ru = os.wait4(uac.pid, 0)
        uac.returncode = os.waitstatus_to_exitcode(uac_status)
        deadline, uas_ru = time.monotonic() + 30, None
        while uas_ru is None and time.monotonic() < deadline:
            pid, uas_status, ru = os.wait4(uas.pid, os.WNOHANG)
            if pid:
                uas.returncode, uas_ru = os.waitstatus_to_exitcode(uas_status), ru
            time.sleep(0.05)
    finally:
        for proc in procs:
            _stop(proc)
        time.sleep(0.5)
        os.killpg(dump.pid, signal.SIGTERM)
        dump.wait(timeout=10)
    packets = read_pcap(pcap)
    return {
        "uac": pacing_from_capture(packets, {uac_media}),
        "uas": pacing_from_capture(packets, {uas_media}),
        "uac_rc": uac.returncode,
        "uas_rc": uas.returncode,
        "uac_cpu_s": round(uac_ru.ru_utime + uac_ru.ru_stime, 2),
        "uas_cpu_s": round(uas_ru.ru_utime + uas_ru.ru_stime, 2) if uas_ru else None,
    }


def format_sipp(calls: int, seconds: float, sp: dict, ours: dict, our_cpu: float) -> str:
    """SIPp's line under ours, with ours/SIPp ratios (below 1: ours is better)."""
    u, a = sp["uac"], sp["uas"]
    ratio = lambda x, y: f"{x / y:.2f}" if x is not None and y else "n/a"  # noqa: E731
    return (f"        SIPp {calls:4d} calls: UAC streams p50 {u.get('p50_ms')} ms p99 "
            f"{u.get('p99_ms')} ms max {u.get('max_ms')} ms over {u.get('intervals')} intervals "
            f"({u.get('streams')} streams); UAS streams p99 {a.get('p99_ms')} ms; missing "
            f"from the capture UAC {u.get('lost_pct')} % UAS {a.get('lost_pct')} %; "
            f"CPU UAC {sp['uac_cpu_s']} s UAS {sp['uas_cpu_s']} s / {seconds:.0f} s "
            f"(exit {sp['uac_rc']}/{sp['uas_rc']})\n"
            f"        ours/SIPp: p99 {ratio(ours.get('p99_ms'), u.get('p99_ms'))}, "
            f"CPU {ratio(our_cpu, sp['uac_cpu_s'])}")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--calls", default="1,50,100,150,200")
    ap.add_argument("--no-sipp", action="store_true",
                    help="skip SIPp's own RTP playback of the same number of calls")  # fmt: skip
    ap.add_argument("--ticks", action="store_true",
                    help="print per-tick figures and what caused intervals > 2 ms")  # fmt: skip
    ap.add_argument("--peer-nice", type=int, default=0, metavar="N",
                    help="run the peer at nice N (does it preempt our ticks?)")  # fmt: skip
    ap.add_argument("--pin", action="store_true",
                    help="our process on one CPU, the peer and tcpdump on the others")  # fmt: skip
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
    if not args.no_sipp and shutil.which("sipp") is None:
        sys.exit("rtp_pacing.py: sipp (Debian sip-tester) is not installed; --no-sipp to skip it")
    with tempfile.TemporaryDirectory() as tmp:
        pinned = " our process pinned to one CPU, peer and tcpdump to the rest;" if args.pin else ""
        print(f"RTP pacing from a loopback capture, {args.seconds:.0f} s per run,{pinned} "
              f"load average {os.getloadavg()[0]:.1f} at start")  # fmt: skip
        for calls in (int(c) for c in args.calls.split(",")):
            r = measure(calls, args.seconds, Path(tmp), args.peer_nice, args.pin)
            p = r["pacing"]
            ok = (r["our_streams_loss_pct"] < 0.1 and r["peer_streams_loss_pct"] < 0.1
                  and p.get("p99_ms", 99) < (1.0 if calls == 1 else 2.0))  # fmt: skip
            print(f"  {calls:4d} calls ({2 * calls:4d} streams): pacing p50 {p.get('p50_ms')} ms "
                  f"p99 {p.get('p99_ms')} ms max {p.get('max_ms')} ms over "
                  f"{p.get('intervals')} intervals; loss ours->peer "
                  f"{r['our_streams_loss_pct']} %, peer->ours {r['peer_streams_loss_pct']} %; "
                  f"our CPU {r['our_cpu_s']} s / {args.seconds:.0f} s, "
                  f"waiting for a CPU {r['runqueue_wait_s']} s; "
                  f"p99 by our own clock (median/max stream) {r['own_clock']} ms; "
                  f"{'meets' if ok else 'MISSES'} the goal", flush=True)  # fmt: skip
            if args.ticks:
                print("        ticks: " + json.dumps(r["ticks"]), flush=True)
            if args.no_sipp:
                continue
            sp = measure_sipp(calls, args.seconds, Path(tmp), args.pin)
            print(format_sipp(calls, args.seconds, sp, p, r["our_cpu_s"]), flush=True)


if __name__ == "__main__":
    main()
