"""``qsipctl probe call`` end to end: the console script against baresip on loopback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.fixtures.baresip_phone import baresip_phone
from tests.fixtures.common import run_cli, wait_until
from tests.fixtures.media import tshark_streams

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


def test_probe_call_json_and_pcap(tmp_path: Path) -> None:
    pcap = tmp_path / "call.pcapng"
    with baresip_phone(tmp_path / "phone", tone=1000) as phone:
        events = phone.events()
        try:
            res = run_cli("probe", "call", f"sip:phone@{phone.host}:{phone.port}",
                          "--from-user", "qsipctl", "--codecs", "PCMU", "--duration", "2",
                          "--dtmf", "7*", "--rtp-ports", "45000-45999", "--format", "json",
                          "--pcap", str(pcap))  # fmt: skip
            wait_until(lambda: events.dtmf() == "7*", timeout=5)
        finally:
            events.close()
    assert res.returncode == 0, res.stderr + res.stdout
    doc = json.loads(res.stdout)
    assert doc["results"][0]["ok"] and doc["results"][0]["status"] == 200
    call = doc["call"]
    assert call["codec"] == "PCMU" and call["hung_up_by"] == "us"
    assert call["media"]["audio"]["description"] == "1000 Hz at -6 dBFS"
    assert call["media"]["dtmf_sent"] == "7*"
    streams = tshark_streams(pcap)  # SIP/SDP and RTP in one file
    ours = [s for s in streams if s.src_port == int(call["media"]["local"].rsplit(":", 1)[1])]
    assert ours and ours[0].packets >= call["media"]["sent_packets"] - 1


def test_probe_call_table_and_refusal(tmp_path: Path) -> None:
    with baresip_phone(tmp_path / "phone", codecs="G722/16000/1") as phone:
        uri = f"sip:phone@{phone.host}:{phone.port}"
        res = run_cli("probe", "call", uri, "--from-user", "qsipctl", "--codecs", "PCMU,PCMA")
    assert res.returncode == 1
    assert "488" in res.stdout and "PCMU, PCMA" in res.stdout
    assert "Traceback" not in res.stderr


def test_probe_call_bad_input_is_exit_2() -> None:
    res = run_cli("probe", "call", "sip:100@127.0.0.1", "--from-user", "u", "--codecs", "G729")
    assert res.returncode == 2 and "G729" in res.stderr and "Traceback" not in res.stderr
    res = run_cli("probe", "call", "sip:100@127.0.0.1", "--from-user", "u", "--dtmf", "12x")
    assert res.returncode == 2 and "--dtmf" in res.stderr
