"""`qsipctl diagnose` and `qsipctl probe` end to end, against a real Kamailio."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
from pathlib import Path

import pytest

from tests.fixtures.common import cli_command, free_port, run_cli
from tests.fixtures.kamailio import Kamailio

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

ENV = {"PW1001": "secret-1001", "PW1002": "secret-1002", "PWBAD": "wrong"}


def _site(tmp_path: Path, k: Kamailio) -> Path:
    site = tmp_path / "site.yml"
    site.write_text(
        f"""all:
  vars:
    qsys_model: Core 110f
  children:
    lobby:
      hosts:
        core-a:
          ansible_host: 127.0.0.1
          softphones:
            - name: Phone 1
              profile: generic
              registrar: 127.0.0.1:{k.udp_port}
              username: "1001"
              password: env:PW1001
            - name: Phone 2
              profile: generic
              registrar: 127.0.0.1:{k.udp_port}
              username: "1002"
              password: env:PWBAD
    secure:
      hosts:
        core-b:
          ansible_host: 127.0.0.1
          softphones:
            - name: Phone 3
              profile: generic-tls
              registrar: 127.0.0.1:{k.tls_port}
              username: "1002"
              password: env:PW1002
              tls:
                ca_file: {k.ca.ca_file}
"""
    )
    return site


def test_probe_register_udp_ok(kamailio: Kamailio) -> None:
    res = run_cli(
        "probe", "register", f"sip:1001@127.0.0.1:{kamailio.udp_port}",
        "--password-env", "PW1001", env=ENV,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    # the default changes nothing: credentials checked, bindings listed
    assert "credentials accepted; no binding: the core is not registered" in res.stdout
    assert "1 ok, 0 failed" in res.stdout
    assert "secret-1001" not in res.stdout + res.stderr
    assert kamailio.contacts("1001") == []


def test_probe_register_bind_adds_and_removes_a_binding(kamailio: Kamailio) -> None:
    res = run_cli(
        "probe", "register", f"sip:1001@127.0.0.1:{kamailio.udp_port}",
        "--password-env", "PW1001", "--bind", env=ENV,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "registered for 3600 s" in res.stdout and "binding removed" in res.stdout
    assert kamailio.contacts("1001") == []


def test_probe_register_force_without_bind_is_usage_error() -> None:
    res = run_cli("probe", "register", "sip:1001@127.0.0.1:9", "--force", env=ENV)
    assert res.returncode == 2 and "--force only applies with --bind" in res.stderr


def test_probe_register_json_is_stable_data(kamailio: Kamailio) -> None:
    res = run_cli(
        "probe", "register", f"sip:1001@127.0.0.1:{kamailio.tcp_port}", "--transport", "tcp",
        "--password-env", "PW1001", "--expires", "300", "--bind", "--format", "json", env=ENV,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    [r] = data["results"]
    assert data["summary"] == {"total": 1, "ok": 1, "failed": 0}
    assert (r["verdict"], r["status"], r["transport"], r["expires"]) == ("ok", 200, "tcp", 300)
    assert r["unregistered"] is True and r["algorithm"] == "MD5"
    assert (r["mode"], r["bindings"], r["displaced"], r["leftover"]) == ("bind", [], [], None)
    assert list(r) == sorted(r)


def test_probe_register_wrong_password_exits_1_with_verdict(kamailio: Kamailio) -> None:
    res = run_cli(
        "probe", "register", f"sip:1001@127.0.0.1:{kamailio.udp_port}",
        "--password-env", "PWBAD", env=ENV,
    )  # fmt: skip
    assert res.returncode == 1
    assert "wrong password" in res.stdout
    assert "Traceback" not in res.stderr


def test_probe_register_keep_registered(kamailio: Kamailio) -> None:
    res = run_cli(
        "probe", "register", f"sip:1001@127.0.0.1:{kamailio.udp_port}",
        "--password-env", "PW1001", "--keep-registered", env=ENV,
    )  # fmt: skip
    assert res.returncode == 0
    assert len(kamailio.contacts("1001")) == 1


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["sip:1001@127.0.0.1:5", "--password-env", "UNSET_VAR_QSIP"], "UNSET_VAR_QSIP"),
        (["foo:bar:baz", "--password-env", "PW1001"], "bad target"),
        (["sip:127.0.0.1:5", "--password-env", "PW1001"], "no user part"),
        (["sips:1001@127.0.0.1:5", "--transport", "udp"], "needs TLS"),
        (["sip:1001@127.0.0.1:5", "--transport", "sctp"], "sctp"),
        (["sip:1001@127.0.0.1:5", "--ca-file", "/nonexistent/ca.pem"], "ca.pem"),
        (["sip:1001@127.0.0.1:5", "--ca-file", __file__], "--ca-file"),  # not a CA bundle
    ],
)
def test_probe_bad_input_is_one_line_exit_2(args: list[str], needle: str) -> None:
    res = run_cli("probe", "register", *args, env=ENV)
    assert res.returncode == 2, res.stdout + res.stderr
    assert needle in res.stderr
    assert "Traceback" not in res.stderr


def test_probe_tls_pcap_and_ladder(kamailio: Kamailio, tmp_path: Path) -> None:
    pcap = tmp_path / "tls.pcapng"
    res = run_cli(
        "probe", "register", f"sip:1001@127.0.0.1:{kamailio.tls_port}", "--transport", "tls",
        "--ca-file", str(kamailio.ca.ca_file), "--password-env", "PW1001",
        "--pcap", str(pcap), "--ladder", env=ENV,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    ladder = res.stdout.split("1 ok, 0 failed", 1)[1]
    assert ladder.count("REGISTER sip:") == 2 and "401 Unauthorized" in ladder  # the query
    tshark = shutil.which("tshark")
    assert tshark
    out = subprocess.run(
        [tshark, "-r", str(pcap), "-Y", "sip", "-T", "fields", "-e", "sip.Method",
         "-e", "sip.Status-Code", "-e", "frame.comment"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    rows = [line.split("\t") for line in out.splitlines()]
    assert [r[0] or r[1] for r in rows] == ["REGISTER", "401", "REGISTER", "200"]
    assert all("decrypted" in r[2] for r in rows)
    assert b"secret-1001" not in pcap.read_bytes()


def test_probe_options_udp_pcap_decodes(kamailio: Kamailio, tmp_path: Path) -> None:
    pcap = tmp_path / "o.pcapng"
    res = run_cli(
        "probe", "options", f"sip:127.0.0.1:{kamailio.udp_port}", "--pcap", str(pcap),
        "--format", "json",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    [r] = json.loads(res.stdout)["results"]
    assert r["ok"] and "INVITE" in r["allow"]
    out = subprocess.run(
        ["tshark", "-r", str(pcap), "-Y", "sip", "-T", "fields", "-e", "sip.CSeq.method"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert out.split() == ["OPTIONS", "OPTIONS"]


def test_probe_no_verify_warns(kamailio: Kamailio) -> None:
    res = run_cli(
        "probe", "register", f"sip:1001@127.0.0.1:{kamailio.tls_port}", "--transport", "tls",
        "--no-verify", "--password-env", "PW1001", env=ENV,
    )  # fmt: skip
    assert res.returncode == 0
    assert "warning: TLS certificate not verified" in res.stderr


def test_diagnose_site_register_and_options(kamailio: Kamailio, tmp_path: Path) -> None:
    site = _site(tmp_path, kamailio)
    res = run_cli("diagnose", str(site), "--register", "--options", "--format", "json", env=ENV)
    assert res.returncode == 1, res.stderr  # Phone 2 has the wrong password
    data = json.loads(res.stdout)
    by = {(r["probe"], r["core"], r["softphone"]): r for r in data["results"]}
    assert by[("register", "core-a", "Phone 1")]["verdict"] == "ok"
    assert by[("register", "core-a", "Phone 2")]["verdict"] == "wrong-password"
    phone3 = by[("register", "core-b", "Phone 3")]
    assert (phone3["verdict"], phone3["transport"]) == ("ok", "tls")
    options = [r for r in data["results"] if r["probe"] == "options"]
    assert sorted(r["transport"] for r in options) == ["tls", "udp"]  # one per registrar
    assert data["summary"] == {"total": 5, "ok": 4, "failed": 1}
    assert kamailio.registered_users() == set()  # nothing was bound


def test_diagnose_limit_selects_cores(kamailio: Kamailio, tmp_path: Path) -> None:
    site = _site(tmp_path, kamailio)
    res = run_cli("diagnose", str(site), "--register", "--limit", "secure", env=ENV)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "core-b/Phone 3" in res.stdout and "core-a" not in res.stdout


def test_diagnose_without_a_probe_is_usage_error(tmp_path: Path, kamailio: Kamailio) -> None:
    res = run_cli("diagnose", str(_site(tmp_path, kamailio)), env=ENV)
    assert res.returncode == 2
    assert "--register" in res.stderr


def test_diagnose_bad_site_is_exit_2(tmp_path: Path) -> None:
    site = tmp_path / "bad.yml"
    site.write_text("all:\n  hosts:\n    x:\n      softphones: 7\n")
    res = run_cli("diagnose", str(site), "--register")
    assert res.returncode == 2
    assert "bad.yml" in res.stderr and "Traceback" not in res.stderr


def test_pcap_into_missing_directory_is_refused_before_probing(
    kamailio: Kamailio, tmp_path: Path
) -> None:
    res = run_cli(
        "probe", "register", f"sip:1001@127.0.0.1:{kamailio.udp_port}", "--password-env",
        "PW1001", "--keep-registered", "--pcap", str(tmp_path / "no" / "x.pcapng"), env=ENV,
    )  # fmt: skip
    assert res.returncode == 2
    assert "x.pcapng" in res.stderr and "Traceback" not in res.stderr
    assert kamailio.contacts("1001") == []  # nothing was sent


@pytest.mark.parametrize("where", ["tcp", "udp6"])
def test_probe_pcap_decodes_for_tcp_and_ipv6(
    kamailio: Kamailio, tmp_path: Path, where: str
) -> None:
    pcap = tmp_path / f"{where}.pcapng"
    uri = (
        f"sip:1001@127.0.0.1:{kamailio.tcp_port}"
        if where == "tcp"
        else f"sip:1001@[::1]:{kamailio.udp6_port}"
    )
    transport = "tcp" if where == "tcp" else "udp"
    res = run_cli(
        "probe", "register", uri, "--transport", transport, "--password-env", "PW1001",
        "--pcap", str(pcap), env=ENV,
    )  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr
    out = subprocess.run(
        ["tshark", "-r", str(pcap), "-Y", "sip", "-T", "fields", "-e", "sip.CSeq.method",
         "-e", "sip.Status-Code", "-e", "ipv6.src", "-e", "tcp.srcport"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    rows = [line.split("\t") for line in out.splitlines()]
    assert [r[1] or "req" for r in rows] == ["req", "401", "req", "200"]
    assert all(r[0] == "REGISTER" for r in rows)
    if where == "udp6":
        assert all(r[2] == "::1" for r in rows)
    else:
        assert str(kamailio.tcp_port) in {r[3] for r in rows}


@pytest.mark.parametrize("ns", ["notanip", "abc:def", "127.0.0.1:"])
def test_bad_dns_server_is_usage_error_not_a_crash(ns: str) -> None:
    res = run_cli(
        "probe", "register", "sip:1001@pbx.test", "--password-env", "PW1001",
        "--dns-server", ns, env=ENV,
    )  # fmt: skip
    assert res.returncode == 2, res.stdout + res.stderr
    assert "--dns-server" in res.stderr and "internal error" not in res.stderr


@pytest.mark.parametrize("addr", ["zz..!", "127.0.0.1:5", "localhost"])
def test_bad_local_address_is_usage_error(addr: str) -> None:
    res = run_cli(
        "probe", "register", "sip:1001@127.0.0.1:9", "--password-env", "PW1001",
        "--local-address", addr, env=ENV,
    )  # fmt: skip
    assert res.returncode == 2, res.stdout + res.stderr
    assert "--local-address" in res.stderr and "internal error" not in res.stderr


def test_transport_parameter_in_the_target_uri_is_used(kamailio: Kamailio) -> None:
    res = run_cli(
        "probe", "register", f"sip:1001@127.0.0.1:{kamailio.tcp_port};transport=tcp",
        "--password-env", "PW1001", "--format", "json", env=ENV,
    )  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr
    [r] = json.loads(res.stdout)["results"]
    assert (r["transport"], r["verdict"]) == ("tcp", "ok")


def test_probe_domain_without_port_or_transport_follows_naptr(kamailio: Kamailio, sip_dns) -> None:
    """RFC 3263 end to end from the command line: NAPTR prefers TCP, SRV gives the port."""
    res = run_cli(
        "probe", "register", "sip:1001@pbx.test", "--dns-server", sip_dns.nameserver,
        "--ca-file", str(kamailio.ca.ca_file), "--password-env", "PW1001", "--format", "json",
        env=ENV,
    )  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr
    [r] = json.loads(res.stdout)["results"]
    assert (r["transport"], r["server"]) == ("tcp", f"127.0.0.1:{kamailio.tcp_port}")
    assert r["target"] == "sip:1001@pbx.test" and r["mode"] == "query"
    assert r["unregistered"] is None  # nothing was bound, nothing to remove


def test_probe_fails_over_from_a_503_server_and_says_so(kamailio: Kamailio, failover_dns) -> None:
    """RFC 3263 4.3 from the command line: 503 at SRV priority 10, Kamailio at 20."""
    d, _, busy, _ = failover_dns
    res = run_cli(
        "probe", "register", "sip:1001@busy.failover.test", "--transport", "udp",
        "--dns-server", d.nameserver, "--timeout", "1", "--password-env", "PW1001",
        "--format", "json", env=ENV,
    )  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr
    [r] = json.loads(res.stdout)["results"]
    assert r["server"] == f"127.0.0.1:{kamailio.udp_port}"
    assert [(t["server"], t["verdict"]) for t in r["tried"]] == [
        (f"127.0.0.1:{busy.port}", "server-error"),
        (r["server"], "ok"),
    ]
    assert f"failed over (RFC 3263) from: 127.0.0.1:{busy.port} server-error" in res.stderr


def test_probe_all_servers_503_exits_1_with_the_last_verdict(failover_dns) -> None:
    res = run_cli(
        "probe", "register", "sip:1001@allbusy.failover.test", "--transport", "udp",
        "--dns-server", failover_dns[0].nameserver, "--timeout", "1",
        "--password-env", "PW1001", env=ENV,
    )  # fmt: skip
    assert res.returncode == 1, res.stdout + res.stderr
    assert "503 Service Unavailable" in res.stdout


def test_json_fields_are_the_documented_ones(kamailio: Kamailio) -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "diagnostics.md").read_text()
    listed = docs.split("Each result has every field", 1)[1].split("```", 1)[0]
    documented = set(re.findall(r"`?([a-z_]+)(?:,|`\.|`$)", listed.split(":", 1)[1]))
    res = run_cli("probe", "options", f"sip:127.0.0.1:{kamailio.udp_port}", "--format", "json")
    [r] = json.loads(res.stdout)["results"]
    assert set(r) == documented


def test_try_it_without_a_pbx_block_runs_as_documented(tmp_path: Path) -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "diagnostics.md").read_text()
    block = docs.split("### Try it without a PBX", 1)[1].split("```console", 1)[1].split("```")[0]
    lines = [ln.removeprefix("$ ") for ln in block.strip().splitlines()]
    assert lines[0] == "qsipctl lab --port 5070 &" and lines[1].startswith("export ")
    port = free_port(socket.SOCK_DGRAM)
    lab = subprocess.Popen(
        [*cli_command(), "lab", "--port", str(port), "--format", "json"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    env = dict(item.split("=", 1) for item in lines[1].split()[1:])
    try:
        assert json.loads(lab.stdout.readline())["event"] == "started"  # type: ignore[union-attr]
        for line in lines[2:]:
            cmd, _, comment = line.partition("#")
            args = shlex.split(cmd.replace("5070", str(port)))
            assert args[0] == "qsipctl"
            res = subprocess.run(
                [*cli_command(), *args[1:]],
                capture_output=True,
                text=True,
                cwd=tmp_path,
                env={**os.environ, **env},
            )
            expected = 1 if "exit 1" in comment else 0
            assert res.returncode == expected, (line, res.stdout, res.stderr)
            assert comment.split(":")[-1].strip() in res.stdout
    finally:
        lab.send_signal(signal.SIGINT)
        lab.communicate(timeout=10)
    assert (tmp_path / "lab.pcapng").stat().st_size > 0


def test_no_secret_anywhere_in_diagnose_evidence(kamailio: Kamailio, tmp_path: Path) -> None:
    site = _site(tmp_path, kamailio)
    pcap = tmp_path / "all.pcapng"
    env = {**ENV, "PWBAD": "bad-pw-Zq7"}  # "wrong" is also an ordinary word
    res = run_cli(
        "--debug", "diagnose", str(site), "--register", "--options", "--pcap", str(pcap),
        "--ladder", "--format", "json", env=env,
    )  # fmt: skip
    assert res.returncode == 1  # Phone 2's wrong password
    assert "REGISTER sip:" in res.stderr  # the ladders went to stderr
    evidence = res.stdout + res.stderr + pcap.read_bytes().decode("latin-1")
    assert "Authorization: Digest" in evidence  # the answers are there, as hashes
    for secret in env.values():
        assert secret not in evidence


def test_lab_listen_wants_an_ip_and_takes_all_of_127_8_as_loopback() -> None:
    bad = run_cli("lab", "--listen", "lab.example", "--duration", "0.2")
    assert bad.returncode == 2, bad.stdout + bad.stderr
    assert "--listen: 'lab.example' is not an IP address" in bad.stderr
    # 127.0.0.2 is loopback too (the whole /8): no warning; the lab stops after --duration
    ok = run_cli("lab", "--listen", "127.0.0.2", "--port", str(free_port(socket.SOCK_DGRAM)),
                 "--duration", "0.2", "--format", "json")  # fmt: skip
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "reachable from the network" not in ok.stderr
