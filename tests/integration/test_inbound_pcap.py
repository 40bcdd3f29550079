"""The inbound check's ``--pcap`` holds the answered call's RTP/RTCP both ways (issue 9 point 7).

A real caller rings the softphone account we bind at Kamailio: baresip (its
own tone, its own RTP stack) for ``probe call --inbound``, and qsipctl's call
probe as a second softphone for ``diagnose --call --inbound --from-account``.
tshark reads the file *without* the RTP heuristic: it finds both streams by
the SDP of the INVITE and of our 200 in the same capture, as Wireshark's RTP
analysis does, and counts exactly the packets our JSON reports.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.fixtures.baresip import Baresip
from tests.fixtures.common import cli_command, run_cli, wait_until
from tests.fixtures.inbound import ACCOUNTS, ENV, lobby_and_desk_site
from tests.fixtures.kamailio import Kamailio
from tests.fixtures.media import TsharkStream, tshark_streams

pytestmark = pytest.mark.integration


def _sip_times(pcap: Path) -> dict[str, float]:
    """Frame time of the first INVITE and the last BYE (any direction) in the capture."""
    out = subprocess.run(
        ["tshark", "-n", "-r", str(pcap), "-Y", "sip.Method", "-T", "fields",
         "-e", "frame.time_epoch", "-e", "sip.Method"],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    times: dict[str, float] = {}
    for line in out.splitlines():
        when, _, method = line.partition("\t")
        if method == "INVITE":
            times.setdefault("INVITE", float(when))
        if method == "BYE":
            times["BYE"] = float(when)
    return times


def _rtp_times(pcap: Path) -> list[float]:
    out = subprocess.run(
        ["tshark", "-n", "-r", str(pcap), "-Y", "rtp", "-T", "fields", "-e", "frame.time_epoch"],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    return [float(x) for x in out.split()]


def _check_streams(pcap: Path, media: dict) -> tuple[TsharkStream, TsharkStream]:
    """Both directions in tshark's RTP analysis, counted as our JSON counts them."""
    local_ip, _, local_port = media["local"].rpartition(":")
    streams = tshark_streams(pcap, heuristic=False)
    ours = [s for s in streams if (s.src, s.src_port) == (local_ip, int(local_port))]
    theirs = [s for s in streams if (s.dst, s.dst_port) == (local_ip, int(local_port))]
    assert len(ours) == 1 and len(theirs) == 1, streams
    assert ours[0].packets == media["sent_packets"] > 50
    assert theirs[0].packets == media["received"]["packets"] > 50
    assert theirs[0].lost == media["received"]["lost"]
    # wall-clock timestamps: the media lies between the INVITE and the hang-up
    sip = _sip_times(pcap)
    rtp = _rtp_times(pcap)
    assert len(rtp) == ours[0].packets + theirs[0].packets
    assert sip["INVITE"] < min(rtp) and max(rtp) < sip["BYE"] + 1.0
    return ours[0], theirs[0]


def test_probe_call_inbound_pcap_with_baresip_calling(
    kamailio_factory: Callable[..., Kamailio],
    baresip_factory: Callable[..., Baresip],
    tmp_path: Path,
) -> None:
    k = kamailio_factory(accounts=ACCOUNTS, calls=True)
    reg = f"127.0.0.1:{k.udp_port}"
    caller = baresip_factory("1002", ACCOUNTS["1002"], reg)
    pcap = tmp_path / "inbound.pcapng"
    proc = subprocess.Popen(
        [*cli_command(), "probe", "call", "--inbound", f"sip:1001@{reg}",
         "--password-env", "PW1001", "--format", "json", "--rtp-ports", "47000-47999",
         "--ring-timeout", "20", "--duration", "3", "--pcap", str(pcap)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, **ENV}, start_new_session=True,
    )  # fmt: skip
    try:
        wait_until(lambda: bool(k.bindings("1001")), timeout=15)
        with caller.control() as ctl:
            ctl.command("dial", f"sip:1001@{reg}")
            ctl.wait_event("CALL_ESTABLISHED", 10)
            out, err = proc.communicate(timeout=40)
            ctl.wait_event("CALL_CLOSED", 10)  # our BYE reached baresip
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 0, err + out
    assert "Traceback" not in err
    call_in = json.loads(out)["inbound"][0]["inbound"]
    assert call_in["hung_up_by"] == "us" and call_in["media"]["audio"]["kind"] == "tone"
    assert "captured" not in call_in  # packets go to the pcap, never into the JSON
    _check_streams(pcap, call_in["media"])
    assert k.bindings("1001") == []


def test_diagnose_call_inbound_pcap(kamailio_factory: Callable[..., Kamailio], tmp_path: Path
                                    ) -> None:  # fmt: skip
    k = kamailio_factory(accounts=ACCOUNTS, calls=True)
    site = lobby_and_desk_site(tmp_path / "site.yml", k.udp_port)
    pcap = tmp_path / "diag.pcapng"
    res = run_cli("diagnose", str(site), "--call", "--inbound", "--from-account", "Desk",
                  "--duration", "2", "--ring-timeout", "15", "--format", "json",
                  "--pcap", str(pcap), env=ENV)  # fmt: skip
    assert res.returncode == 0, res.stderr + res.stdout
    call_in = json.loads(res.stdout)["inbound"][0]["inbound"]
    assert call_in["codec"] == "PCMA"
    ours, theirs = _check_streams(pcap, call_in["media"])
    assert theirs.src_port != ours.src_port
    assert k.bindings("1001") == [] and k.bindings("1002") == []
