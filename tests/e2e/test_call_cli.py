"""``qsipctl probe call`` end to end: the console script against baresip on loopback."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.fixtures.baresip_phone import baresip_phone
from tests.fixtures.common import cli_command, free_port, run_cli, wait_until
from tests.fixtures.kamailio import Kamailio, make_ca
from tests.fixtures.media import tshark_streams
from tests.integration.test_call_probe import CALL_ROUTE

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
    call = doc["calls"][0]
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
    for bad in ("[::1", "127.0.0.1:99999", ":3478"):
        res = run_cli("probe", "call", "sip:100@127.0.0.1", "--from-user", "u", "--stun", bad)
        assert res.returncode == 2 and "--stun" in res.stderr, (bad, res.stderr)
        assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_diagnose_call_from_each_softphone(
    tmp_path: Path, kamailio_factory: Callable[..., Kamailio]
) -> None:
    k = kamailio_factory(extra_route=CALL_ROUTE)
    site = tmp_path / "site.yml"
    site.write_text(
        f"""all:
  vars:
    qsys_model: Core 110f
  hosts:
    core-a:
      ansible_host: 127.0.0.1
      softphones:
        - name: Phone 1
          profile: generic
          registrar: 127.0.0.1:{k.udp_port}
          username: "1001"
          password: env:PW1001
          codecs: [PCMA, PCMU]
        - name: Phone 2
          profile: generic
          registrar: 127.0.0.1:{k.udp_port}
          username: "1003"
          password: env:PWBAD
          codecs: [PCMA, PCMU]
"""
    )
    account = (f"<sip:1002@127.0.0.1:{k.udp_port};transport=udp>;auth_pass=secret-1002;"
               "regint=60")  # fmt: skip
    with baresip_phone(tmp_path / "phone", tone=1000, account=account):
        wait_until(lambda: "1002" in k.registered_users(), timeout=10)
        env = {"PW1001": "secret-1001", "PWBAD": "wrong"}
        res = run_cli("diagnose", str(site), "--call", "--to", "1002", "--duration", "1.5",
                      "--format", "json", env=env)  # fmt: skip
    assert res.returncode == 1, res.stderr  # Phone 2's password is wrong
    doc = json.loads(res.stdout)
    ok, bad = doc["results"]
    assert ok["ok"] and ok["softphone"] == "Phone 1"
    assert doc["calls"][0]["codec"] == "PCMA"  # the core's codec order
    assert doc["calls"][0]["media"]["audio"]["kind"] == "tone"
    assert not bad["ok"] and bad["verdict"] == "wrong-password"
    assert "secret-1001" not in res.stdout + res.stderr


def test_diagnose_call_needs_to_or_a_test_number(tmp_path: Path) -> None:
    site = tmp_path / "s.yml"
    site.write_text(
        """all:
  hosts:
    core-a:
      ansible_host: 127.0.0.1
      qsys_model: Core 110f
      softphones:
        - {name: Phone 1, profile: generic, registrar: 127.0.0.1, username: "1001",
           password: env:PW1001}
"""
    )
    res = run_cli("diagnose", str(site), "--call", env={"PW1001": "pw"})
    assert res.returncode == 2 and "--to" in res.stderr and "test_number" in res.stderr, res.stderr


def test_sigterm_during_a_call_still_hangs_up(tmp_path: Path) -> None:
    with baresip_phone(tmp_path / "phone") as phone:
        events = phone.events()
        try:
            proc = subprocess.Popen(
                [*cli_command(), "probe", "call", f"sip:phone@{phone.host}:{phone.port}",
                 "--from-user", "qsipctl", "--duration", "30"],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )  # fmt: skip
            try:
                wait_until(lambda: any(e.get("type") == "CALL_ESTABLISHED"
                                       for e in events.events), timeout=15)  # fmt: skip
                proc.send_signal(signal.SIGTERM)
                _, err = proc.communicate(timeout=15)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
            wait_until(lambda: any(e.get("type") == "CALL_CLOSED" for e in events.events), 10)
        finally:
            events.close()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    # baresip (no rtp_timeout configured) closes a call only on a BYE or CANCEL; it words
    # a remote BYE as "Connection reset by peer" (ECONNRESET), the same as after a normal
    # call's BYE.
    closed = [e for e in events.events if e.get("type") == "CALL_CLOSED"]
    assert closed and closed[0].get("param") == "Connection reset by peer"


def _udp_bound(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def test_probe_call_echo_round_trip_through_sipp(tmp_path: Path) -> None:
    """SIPp's built-in UAS answers with SDP and echoes RTP (-rtp_echo): our marker returns."""
    sip, media, ctrl = (free_port(socket.SOCK_DGRAM) for _ in range(3))
    sipp = subprocess.Popen(
        ["sipp", "-sn", "uas", "-i", "127.0.0.1", "-p", str(sip), "-mi", "127.0.0.1",
         "-mp", str(media - media % 2), "-cp", str(ctrl), "-rtp_echo", "-nostdin"],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    try:
        wait_until(lambda: _udp_bound(sip), timeout=10)  # SIPp listens before we call
        uri = f"sip:echo@127.0.0.1:{sip}"
        res = run_cli("probe", "call", uri, "--from-user", "qsipctl", "--codecs", "PCMU",
                      "--echo", "--duration", "1", "--format", "json")  # fmt: skip
    finally:
        os.killpg(sipp.pid, signal.SIGTERM)
        sipp.wait(timeout=10)
    assert res.returncode == 0, res.stderr + res.stdout
    media_result = json.loads(res.stdout)["calls"][0]["media"]
    assert media_result["round_trip_ms"] is not None and media_result["round_trip_ms"] > 0
    assert media_result["audio"]["frequency"] in (440.0, 1400.0)  # our own audio, echoed


def test_probe_call_over_tls_with_srtp_and_sip_info(tmp_path: Path) -> None:
    """``--transport tls --srtp --dtmf-mode sip-info``: the site's secure settings, from the CLI."""
    ca = make_ca(tmp_path / "ca")
    pem = tmp_path / "phone.pem"
    pem.write_text(ca.cert_file.read_text() + ca.key_file.read_text())
    with baresip_phone(tmp_path / "phone", certificate=pem, mediaenc="srtp-mand") as phone:
        events = phone.events()
        try:
            res = run_cli("probe", "call", f"sip:phone@{phone.host}:{phone.tls_port}",
                          "--transport", "tls", "--ca-file", str(ca.ca_file), "--srtp",
                          "--from-user", "qsipctl", "--codecs", "PCMU", "--duration", "2",
                          "--dtmf-mode", "sip-info", "--dtmf", "3", "--format", "json")  # fmt: skip
            wait_until(lambda: events.dtmf() == "3", timeout=5)
        finally:
            events.close()
    assert res.returncode == 0, res.stderr + res.stdout
    call = json.loads(res.stdout)["calls"][0]
    assert (call["transport"], call["srtp"]) == ("tls", True)
    assert call["dtmf_info"] == [["3", 200]]
    assert call["media"]["audio"]["kind"] == "tone"  # baresip's SRTP decrypted by us
    assert "clear text" not in res.stdout + res.stderr  # keys went over TLS: no warning
