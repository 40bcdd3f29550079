"""Far-end hold/resume and 491 on our session refresh, against SIPp UASes, judged by a capture.

SIPp (Debian ``sip-tester``) plays the PBX: it answers our call, streams a
µ-law tone (``rtp_stream``), then

* re-INVITEs with ``a=sendonly`` (or ``a=inactive``, when it also stops its
  own RTP), waits, re-INVITEs with ``a=sendrecv`` and hangs up: SIPp's
  regexps check that our 200s carried ``a=recvonly`` (``a=inactive``) then
  ``a=sendrecv``; a tshark capture on loopback shows no RTP from us between
  the two 200s, and our stream resuming after the second with the next
  sequence number, the marker bit and a timestamp gap on the 20 ms grid;
* sets a short Session-Expires making us the refresher and answers our
  re-INVITE refresh with 491 Request Pending, then 200 (we retry after the
  RFC 3261 §14.1 wait of 2.1-4 s), or with 491 every time (we give up with
  a verdict).
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import signal
import socket
import subprocess
import wave
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from qsipctl.probes.base import ProbeOutcome
from qsipctl.probes.call import CallOptions, CallReport, place_call
from qsipctl.probes.target import ProbeTarget
from qsipctl.rtp.g711 import encode
from tests.fixtures.common import free_port, run_cli, wait_until

pytestmark = pytest.mark.integration

PORTS = (47200, 47399)  # our RTP range in these tests

_ANSWER = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="uas: {name}">
  <recv request="INVITE" crlf="true" rrs="true">
    <action><ereg regexp=".*" search_in="hdr" header="From:" assign_to="caller"/></action>
  </recv>
  <send retrans="500"><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:[local_ip]:[local_port];transport=[transport]>
{timer}Content-Type: application/sdp
Content-Length: [len]

v=0
o=pbx 1 1 IN IP[local_ip_type] [local_ip]
s=-
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 0
a=rtpmap:0 PCMU/8000
a=sendrecv

]]></send>
  <recv request="ACK" crlf="true"/>
{middle}
  <Reference variables="{refs}"/>
</scenario>
"""

# The PBX re-INVITEs with a direction; our 200 must carry the mirrored one (SIPp checks it).
_REINVITE = """
  <send retrans="500"><![CDATA[
INVITE [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:pbx@[local_ip]:[local_port]>;tag=[pid]SIPpTag01[call_number]
To:[$caller]
Call-ID: [call_id]
CSeq: {cseq} INVITE
Contact: <sip:[local_ip]:[local_port];transport=[transport]>
Max-Forwards: 70
Content-Type: application/sdp
Content-Length: [len]

v=0
o=pbx 1 {version} IN IP[local_ip_type] [local_ip]
s=-
{conn}
t=0 0
m=audio [media_port] RTP/AVP 0
a=rtpmap:0 PCMU/8000
a={direction}

]]></send>
  <recv response="100" optional="true"/>
  <recv response="200">
    <action><ereg regexp="a={expect}" search_in="body" check_it="true" assign_to="{var}"/>
    </action>
  </recv>
  <send><![CDATA[
ACK [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:pbx@[local_ip]:[local_port]>;tag=[pid]SIPpTag01[call_number]
To:[$caller]
Call-ID: [call_id]
CSeq: {cseq} ACK
Max-Forwards: 70
Content-Length: 0

]]></send>
"""

_FAR_BYE = """
  <send retrans="500"><![CDATA[
BYE [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:pbx@[local_ip]:[local_port]>;tag=[pid]SIPpTag01[call_number]
To:[$caller]
Call-ID: [call_id]
CSeq: 9 BYE
Max-Forwards: 70
Content-Length: 0

]]></send>
  <recv response="200"/>
"""

_OUR_BYE = """
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
"""

# Our refresh re-INVITE, answered with ``status``; a 491 is ACKed by our transaction layer.
_REFRESH = """
  <recv request="INVITE">
    <action><ereg regexp="^ *8;refresher=uac" search_in="hdr" header="Session-Expires:"
                  check_it="true" assign_to="{var}"/></action>
  </recv>
  <send><![CDATA[
SIP/2.0 {status}
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:[local_ip]:[local_port];transport=[transport]>
{extra}Content-Length: [len]
{body}
]]></send>
  <recv request="ACK" crlf="true"/>
"""
_REFRESH_OK_EXTRA = (
    "Require: timer\nSession-Expires: 8;refresher=uac\nContent-Type: application/sdp\n"
)
_REFRESH_OK_BODY = """
v=0
o=pbx 1 2 IN IP[local_ip_type] [local_ip]
s=-
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 0
a=rtpmap:0 PCMU/8000
"""
TIMER = "Require: timer\nSession-Expires: 8;refresher=uac\n"
CONN = "c=IN IP[media_ip_type] [media_ip]"
OLD_HOLD = "c=IN IP4 0.0.0.0"

# Our refresh re-INVITE arrives; before answering it SIPp sends its own re-INVITE (glare),
# which we must answer 491 (RFC 3261 §14.2); SIPp ACKs that, then answers ours with 200.
_CROSSING = (
    """
  <recv request="INVITE">
    <action>
      <ereg regexp=".*" search_in="hdr" header="Via:" assign_to="r_via"/>
      <ereg regexp=".*" search_in="hdr" header="From:" assign_to="r_from"/>
      <ereg regexp=".*" search_in="hdr" header="To:" assign_to="r_to"/>
      <ereg regexp=".*" search_in="hdr" header="CSeq:" assign_to="r_cseq"/>
    </action>
  </recv>
  <send><![CDATA[
INVITE [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:pbx@[local_ip]:[local_port]>;tag=[pid]SIPpTag01[call_number]
To:[$caller]
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: <sip:[local_ip]:[local_port];transport=[transport]>
Max-Forwards: 70
Content-Type: application/sdp
Content-Length: [len]
"""
    + _REFRESH_OK_BODY
    + """
]]></send>
  <recv response="100" optional="true"/>
  <recv response="491"/>
  <send><![CDATA[
ACK [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch-3]
From: <sip:pbx@[local_ip]:[local_port]>;tag=[pid]SIPpTag01[call_number]
To:[$caller]
Call-ID: [call_id]
CSeq: 1 ACK
Max-Forwards: 70
Content-Length: 0

]]></send>
  <send><![CDATA[
SIP/2.0 200 OK
Via:[$r_via]
From:[$r_from]
To:[$r_to]
Call-ID: [call_id]
CSeq:[$r_cseq]
Contact: <sip:[local_ip]:[local_port];transport=[transport]>
"""
    + _REFRESH_OK_EXTRA
    + """Content-Length: [len]
"""
    + _REFRESH_OK_BODY
    + """
]]></send>
  <recv request="ACK" crlf="true"/>
"""
)


def _rtp(action: str) -> str:
    return f'  <nop><action><exec rtp_stream="{action}"/></action></nop>\n'


def _pause(ms: int) -> str:
    return f'  <pause milliseconds="{ms}"/>\n'


def _tone_wav(path: Path) -> None:
    """A 440 Hz tone as µ-law octets in a WAV container (SIPp's rtp_stream sends the data
    chunk as it is, 160 bytes per 20 ms for payload 0)."""
    samples = [round(8000 * math.sin(2 * math.pi * 440 * i / 8000)) for i in range(8000)]
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(1)
        w.setframerate(8000)
        w.writeframes(encode(samples, "ulaw"))


def _target(port: int) -> ProbeTarget:
    return ProbeTarget(user="qsipctl", domain="127.0.0.1", host="127.0.0.1", port=port,
                       transport="udp")  # fmt: skip


def _udp_bound(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


@dataclass
class Run:
    outcome: ProbeOutcome
    report: CallReport
    sipp_rc: int
    sipp_errors: str
    sip_port: int
    pcap: Path


def _run(tmp_path: Path, scenario: str, opts: CallOptions, capture: bool = False) -> Run:
    """Our call to a SIPp UAS running ``scenario``; with ``capture``, tshark records loopback."""
    got: list[tuple[ProbeOutcome, CallReport]] = []
    rc, errors, sip, pcap = _with_sipp(
        tmp_path,
        scenario,
        lambda port: got.append(asyncio.run(place_call(_target(port), opts))),
        capture,
    )
    return Run(got[0][0], got[0][1], rc, errors, sip, pcap)


def _with_sipp(tmp_path: Path, scenario: str, call: Callable[[int], object],
               capture: bool = False) -> tuple[int, str, int, Path]:  # fmt: skip
    """Start SIPp (and tshark on lo), run ``call(sip_port)``; SIPp's exit code and errors log.
    Everything started here is stopped by PID (own process groups), also on failure."""
    (tmp_path / "uas.xml").write_text(scenario)
    _tone_wav(tmp_path / "tone.wav")
    sip, media, ctrl = (free_port(socket.SOCK_DGRAM) for _ in range(3))
    pcap = tmp_path / "call.pcapng"
    capture_proc: subprocess.Popen[bytes] | None = None
    sipp: subprocess.Popen[bytes] | None = None
    try:
        if capture:
            with (tmp_path / "tshark.err").open("wb") as err:
                capture_proc = subprocess.Popen(
                    ["tshark", "-n", "-i", "lo", "-w", str(pcap), "-f",
                     f"udp port {sip} or udp portrange {PORTS[0]}-{PORTS[1] + 1}"],
                    stdout=subprocess.DEVNULL, stderr=err, start_new_session=True,
                )  # fmt: skip
            wait_until(lambda: b"Capturing on" in (tmp_path / "tshark.err").read_bytes(), 20)
        sipp = subprocess.Popen(
            ["sipp", "-sf", "uas.xml", "-i", "127.0.0.1", "-p", str(sip), "-mi", "127.0.0.1",
             "-mp", str(media - media % 2), "-cp", str(ctrl), "-m", "1", "-nostdin",
             "-trace_err"],
            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
        wait_until(lambda: _udp_bound(sip), timeout=10)
        call(sip)
        rc = sipp.wait(timeout=20)
    finally:
        _stop(sipp, signal.SIGKILL)
        _stop(capture_proc, signal.SIGINT)  # tshark writes out its capture on SIGINT
    errors = "".join(p.read_text(errors="replace") for p in tmp_path.glob("*_errors.log"))
    return rc, errors, sip, pcap


def _stop(proc: subprocess.Popen[bytes] | None, sig: signal.Signals) -> None:
    if proc is None or proc.poll() is not None:
        return
    os.killpg(proc.pid, sig)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@dataclass(frozen=True)
class Frame:
    number: int
    src_port: int
    status: int | None
    cseq_method: str
    sdp_attrs: tuple[str, ...]
    rtp_seq: int | None
    rtp_ts: int | None
    rtp_marker: bool


def _frames(run: Run, our_rtp: int) -> list[Frame]:
    out = subprocess.run(
        ["tshark", "-n", "-r", str(run.pcap), "-d", f"udp.port=={run.sip_port},sip",
         "-d", f"udp.port=={our_rtp},rtp", "-T", "fields", "-E", "separator=|",
         "-E", "aggregator=;", "-e", "frame.number", "-e", "udp.srcport",
         "-e", "sip.Status-Code", "-e", "sip.CSeq.method", "-e", "sdp.media_attr",
         "-e", "rtp.seq", "-e", "rtp.timestamp", "-e", "rtp.marker"],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    frames = []
    for line in out.splitlines():
        num, src, status, method, attrs, seq, ts, marker = (line.split("|") + [""] * 8)[:8]
        frames.append(Frame(int(num), int(src or 0), int(status) if status else None, method,
                            tuple(a for a in attrs.split(";") if a),
                            int(seq) if seq else None, int(ts) if ts else None,
                            marker in ("1", "True")))  # fmt: skip
    return frames


def _check_capture(run: Run, held_attr: str, rtcp_while_held: bool) -> None:
    """No RTP from us between our 200 with ``held_attr`` and our 200 with sendrecv; then our
    stream goes on: next sequence number, marker bit, a timestamp gap of whole 20 ms frames.
    RTCP goes on while held, except to an old-style hold's c=0.0.0.0."""
    assert run.report.media is not None
    our_rtp = int(run.report.media.local.rsplit(":", 1)[1])
    frames = _frames(run, our_rtp)
    ours_200 = [f for f in frames if f.status == 200 and f.cseq_method == "INVITE"
                and f.src_port != run.sip_port and f.sdp_attrs]  # fmt: skip
    directions = [next(a for a in f.sdp_attrs if a in ("sendrecv", "recvonly", "inactive",
                                                      "sendonly")) for f in ours_200]  # fmt: skip
    assert directions == [held_attr, "sendrecv"], directions  # our answers to hold, resume
    hold_at, resume_at = ours_200[0].number, ours_200[1].number
    rtp = [f for f in frames if f.src_port == our_rtp and f.rtp_seq is not None]
    before = [f for f in rtp if f.number < hold_at]
    during = [f for f in rtp if hold_at < f.number < resume_at]
    after = [f for f in rtp if f.number > resume_at]
    assert len(before) > 25 and len(after) > 25, (len(before), len(after))
    assert during == [], f"{len(during)} RTP packets from us while held"
    rtcp = [f for f in frames if f.src_port == our_rtp + 1 and hold_at < f.number < resume_at]
    assert bool(rtcp) is rtcp_while_held, len(rtcp)
    last, first = before[-1], after[0]
    assert first.rtp_seq == (last.rtp_seq + 1) % 65536  # type: ignore[operator]
    assert first.rtp_marker and not after[1].rtp_marker  # a new talkspurt
    gap = ((first.rtp_ts or 0) - (last.rtp_ts or 0)) % (1 << 32)
    assert gap % 160 == 0 and gap > 160 * 25  # whole frames: the 20 ms grid ran on


@pytest.mark.parametrize(
    ("offer", "conn", "answer", "label", "far_rtp_pauses"),
    [
        ("sendonly", CONN, "recvonly", "a=sendonly", False),  # SIPp keeps sending (music)
        ("inactive", CONN, "inactive", "a=inactive", True),  # SIPp stops its RTP too
        ("sendrecv", OLD_HOLD, "recvonly", "c=0.0.0.0 (old-style hold, a=sendrecv)", False),
    ],
    ids=["sendonly", "inactive", "old-style-c0"],
)
def test_far_end_hold_and_resume(tmp_path: Path, offer: str, conn: str, answer: str,
                                 label: str, far_rtp_pauses: bool) -> None:  # fmt: skip
    hold = _REINVITE.format(cseq=1, version=2, direction=offer, expect=answer, var="held",
                            conn=conn)  # fmt: skip
    resume = _REINVITE.format(cseq=2, version=3, direction="sendrecv", expect="sendrecv",
                              var="resumed", conn=CONN)  # fmt: skip
    middle = (_rtp("tone.wav,-1,0") + _pause(1500) + hold
              + (_rtp("pause") if far_rtp_pauses else "") + _pause(2500) + resume
              + (_rtp("resume") if far_rtp_pauses else "") + _pause(1500)
              + _rtp("pause") + _FAR_BYE)  # fmt: skip
    scenario = _ANSWER.format(name=f"hold {offer}", timer="", middle=middle,
                              refs="caller,held,resumed")  # fmt: skip
    opts = CallOptions(number="pbx", duration=15.0, port_range=PORTS)
    run = _run(tmp_path, scenario, opts, capture=True)
    report, media = run.report, run.report.media
    assert run.outcome.result.ok, (run.outcome.result.message, report)
    assert run.sipp_rc == 0, run.sipp_errors  # our 200s carried the mirrored directions
    assert report.hung_up_by == "far end" and media is not None
    assert report.reoffers == [f"{label} -> a={answer}", "a=sendrecv -> a=sendrecv"]
    assert len(media.held) == 1
    period = media.held[0]
    assert (period.offered, period.answered) == (label, answer)
    assert period.end_s is not None and period.end_s > period.start_s > 0
    assert f"the far end held the call from t={period.start_s:.1f} s" in " ".join(media.verdicts)
    assert f"held by the far end from t={period.start_s:.1f} s to t=" in run.outcome.result.message
    assert not any("one-way" in v for v in media.verdicts), media.verdicts
    assert media.received.packets > 120 and media.audio.kind == "tone"  # before and after
    assert media.pacing.max_deviation_ms < 2000  # the 2.5 s hold gap is no pacing interval
    _check_capture(run, answer, rtcp_while_held=conn == CONN)


def test_hold_from_the_start_is_not_one_way_audio(tmp_path: Path) -> None:
    """The far end holds with a=inactive before it ever sends RTP and stays held: its
    silence is no 'no RTP at all' verdict (the held time is not counted)."""
    hold = _REINVITE.format(cseq=1, version=2, direction="inactive", expect="inactive",
                            var="held", conn=CONN)  # fmt: skip
    middle = _pause(200) + hold + _pause(3000) + _FAR_BYE
    scenario = _ANSWER.format(
        name="held from the start", timer="", middle=middle, refs="caller,held"
    )
    run = _run(tmp_path, scenario, CallOptions(number="pbx", duration=10.0, port_range=PORTS))
    media = run.report.media
    assert run.outcome.result.ok and run.sipp_rc == 0, run.sipp_errors
    assert media is not None and media.received.packets == 0
    assert media.held and media.held[0].end_s is None  # still held when it hung up
    assert any("to the end of the call" in v for v in media.verdicts), media.verdicts
    assert not any("one-way" in v for v in media.verdicts), media.verdicts
    # nothing after the hold: at most one packet per 20 ms grid slot before it began
    assert media.sent_packets <= int(media.held[0].start_s / 0.020) + 2


def test_refresh_answered_491_is_retried_after_the_glare_wait(tmp_path: Path) -> None:
    middle = (
        _REFRESH.format(var="first", status="491 Request Pending", extra="", body="")
        + _REFRESH.format(var="second", status="200 OK", extra=_REFRESH_OK_EXTRA,
                          body=_REFRESH_OK_BODY)
        + _OUR_BYE
    )  # fmt: skip
    scenario = _ANSWER.format(name="491 then 200", timer=TIMER, middle=middle,
                              refs="caller,first,second")  # fmt: skip
    # first refresh 1 s in; the retry 2.1-4 s later (we own the Call-ID); the next refresh
    # would be 4 s after that (half of 8), after our BYE at 6 s
    opts = CallOptions(number="pbx", duration=6.0, port_range=PORTS, refresh_after=1.0)
    run = _run(tmp_path, scenario, opts)
    report = run.report
    assert run.outcome.result.ok, (run.outcome.result.message, report)
    assert run.sipp_rc == 0, run.sipp_errors  # 491, its ACK, the retry, 200, ACK, BYE
    assert report.refreshes == [491, 200] and report.refresh_method == "INVITE"
    assert report.refresh_glare == 1 and len(report.refresh_glare_waits) == 1
    assert 2.1 <= report.refresh_glare_waits[0] <= 4.0
    assert report.refresh_verdict is None
    assert not any("refresh" in w for w in run.outcome.result.warnings)
    assert "491 Request Pending" in report.render()


def test_refresh_always_answered_491_gives_up_with_a_verdict(tmp_path: Path) -> None:
    middle = (
        _REFRESH.format(var="first", status="491 Request Pending", extra="", body="")
        + _REFRESH.format(var="second", status="491 Request Pending", extra="", body="")
        + _OUR_BYE
    )  # fmt: skip
    scenario = _ANSWER.format(name="491 always", timer=TIMER, middle=middle,
                              refs="caller,first,second")  # fmt: skip
    opts = CallOptions(number="pbx", duration=6.0, port_range=PORTS, refresh_after=1.0,
                       glare_retries=1)  # fmt: skip
    run = _run(tmp_path, scenario, opts)
    report = run.report
    assert run.sipp_rc == 0, run.sipp_errors
    assert report.refreshes == [491, 491] and report.refresh_glare == 2
    assert report.refresh_verdict is not None
    assert "kept answering 491 Request Pending to the session refresh" in report.refresh_verdict
    assert report.refresh_verdict in run.outcome.result.warnings
    assert run.outcome.result.ok  # the call itself worked; the verdict says what will fail


def test_far_end_reinvite_crossing_our_refresh_gets_491(tmp_path: Path) -> None:
    scenario = _ANSWER.format(name="glare", timer=TIMER, middle=_CROSSING + _OUR_BYE,
                              refs="caller,r_via,r_from,r_to,r_cseq")  # fmt: skip
    opts = CallOptions(number="pbx", duration=3.0, port_range=PORTS, refresh_after=1.0)
    run = _run(tmp_path, scenario, opts)
    report = run.report
    assert run.sipp_rc == 0, run.sipp_errors  # SIPp got 491 for its INVITE, we ACKed its 200
    assert run.outcome.result.ok, (run.outcome.result.message, report)
    assert report.glare_refused == 1 and report.far_requests == ["INVITE"]
    assert report.refreshes == [200] and report.refresh_glare == 0
    assert report.reoffers == []  # the refused offer changed nothing
    assert "answered 491" in report.render()


def test_probe_call_cli_reports_the_hold_in_json_and_table(tmp_path: Path) -> None:
    """The console script: ``media.held`` and ``reoffers`` in JSON, a far-end hold row in the
    table; the hold is no one-way audio and the exit code stays 0."""
    hold = _REINVITE.format(cseq=1, version=2, direction="sendonly", expect="recvonly",
                            var="held", conn=CONN)  # fmt: skip
    resume = _REINVITE.format(cseq=2, version=3, direction="sendrecv", expect="sendrecv",
                              var="resumed", conn=CONN)  # fmt: skip
    middle = (_rtp("tone.wav,-1,0") + _pause(800) + hold + _pause(1200) + resume + _pause(800)
              + _rtp("pause") + _FAR_BYE)  # fmt: skip
    scenario = _ANSWER.format(name="cli hold", timer="", middle=middle,
                              refs="caller,held,resumed")  # fmt: skip
    out: dict[str, subprocess.CompletedProcess[str]] = {}

    def cli(port: int, fmt: str) -> None:
        out[fmt] = run_cli(
            "probe", "call", f"sip:pbx@127.0.0.1:{port}", "--from-user", "qsipctl",
            "--codecs", "PCMU", "--duration", "10", "--rtp-ports", f"{PORTS[0]}-{PORTS[1]}",
            "--format", fmt)  # fmt: skip

    for fmt in ("json", "table"):
        work = tmp_path / fmt
        work.mkdir()
        rc, errors, _, _ = _with_sipp(work, scenario, lambda port, fmt=fmt: cli(port, fmt))
        assert rc == 0, errors
        assert out[fmt].returncode == 0, out[fmt].stderr + out[fmt].stdout
    call = json.loads(out["json"].stdout)["calls"][0]
    assert call["reoffers"] == ["a=sendonly -> a=recvonly", "a=sendrecv -> a=sendrecv"]
    (held,) = call["media"]["held"]
    assert set(held) == {"start_s", "end_s", "offered", "answered"}
    assert (held["offered"], held["answered"]) == ("a=sendonly", "recvonly")
    assert held["end_s"] > held["start_s"] > 0
    assert call["glare_refused"] == 0 and call["refresh_glare"] == 0
    assert not any("one-way" in v for v in call["media"]["verdicts"])
    table = out["table"].stdout
    assert "far-end hold" in table and "the far end held the call from t=" in table, table
