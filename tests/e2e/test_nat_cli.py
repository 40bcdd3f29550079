"""`probe stun`, `probe nat` and `responder` end to end on loopback, and their bad input."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.common import cli_command, free_port, run_cli

SECRET = "e2e-responder-secret-0123456789"


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["probe", "stun", "[::1"], "SERVER"),
        (["probe", "stun", "127.0.0.1:99999"], "port"),
        (["probe", "nat"], "--stun"),
        (["probe", "nat", "--responder", "127.0.0.1:7077"], "--secret-env"),
        (["probe", "nat", "--stun", "127.0.0.1", "--rtp-ports"], "--responder"),
        (["probe", "nat", "--responder", "127.0.0.1", "--secret-env", "NOPE_UNSET"], "NOPE"),
        (["probe", "nat", "--responder", "127.0.0.1", "--secret-env", "QSR_SHORT"], "16 bytes"),
        (
            [
                "probe",
                "nat",
                "--responder",
                "127.0.0.1",
                "--secret-env",
                "QSR_SECRET",
                "--rtp-range",
                "9-3",
            ],
            "--rtp-range",
        ),
        (["responder", "--secret-env", "NOPE_UNSET"], "NOPE"),
        (["responder"], "--secret-env"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], needle: str) -> None:
    res = run_cli(*args, env={"QSR_SECRET": SECRET, "QSR_SHORT": "short"})
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0]
    assert SECRET not in res.stdout + res.stderr


def _wait_udp(port: int, host: str = "127.0.0.1", timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.bind((host, port))
            except OSError:
                return  # taken: the daemon is up
        time.sleep(0.05)
    raise TimeoutError(f"nothing bound {host}:{port}")


@pytest.fixture
def loopback_lab(tmp_path: Path) -> Iterator[dict[str, int]]:
    """coturn on 127.0.0.1 and 127.0.0.2 (RFC 5780) and a responder on 127.0.0.1."""
    stun = free_port(socket.SOCK_DGRAM)
    ctl = free_port(socket.SOCK_DGRAM)
    echo = free_port(socket.SOCK_DGRAM)
    procs = [
        subprocess.Popen(
            ["turnserver", "-n", "--stun-only", "--no-cli", "--no-tls", "--no-dtls",
             "-L", "127.0.0.1", "-L", "127.0.0.2", "-p", str(stun),
             "--alt-listening-port", str(stun + 1), "--no-stdout-log",
             "--log-file", str(tmp_path / "coturn.log"), "--pidfile", str(tmp_path / "t.pid")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        ),
        subprocess.Popen(
            [*cli_command(), "responder", "--listen", f"127.0.0.1:{ctl}", "--sip-port",
             str(echo), "--secret-env", "QSR_SECRET"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "QSR_SECRET": SECRET}, start_new_session=True,
        ),
    ]  # fmt: skip
    try:
        _wait_udp(stun + 1, "127.0.0.2")
        _wait_udp(echo)
        yield {"stun": stun, "ctl": ctl, "echo": echo, "responder_pid": procs[1].pid}
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
            p.wait(10)


def test_probe_nat_on_loopback(loopback_lab: dict[str, int]) -> None:
    lab = loopback_lab
    res = run_cli(
        "probe", "nat", "--stun", f"127.0.0.1:{lab['stun']}",
        "--responder", f"127.0.0.1:{lab['ctl']}", "--secret-env", "QSR_SECRET",
        "--responder-sip-port", str(lab["echo"]), "--rtp-ports", "--rtp-range", "41000-41099",
        "--sip-port", "0", "--hold-max", "2", "--format", "json",
        env={"QSR_SECRET": SECRET},
    )  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr
    assert SECRET not in res.stdout + res.stderr
    doc = json.loads(res.stdout)
    f = {x["check"]: x for x in doc["findings"]}
    assert f["stun.nat"]["summary"].startswith("no NAT")
    assert f["alg.echo"]["severity"] == "ok"
    assert f["ports.inbound"]["summary"].endswith("41000-41099 open")
    assert f["nat.binding-timeout"]["severity"] == "ok"


def test_probe_stun_table_says_whose_nat_it_is(loopback_lab: dict[str, int]) -> None:
    res = run_cli("probe", "stun", f"127.0.0.1:{loopback_lab['stun']}", "--sip-port", "0")
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("These results describe the NAT and firewall between THIS")
    assert "stun.nat" in res.stdout and "do: " in res.stdout


def test_stun_server_that_does_not_answer_is_a_problem() -> None:
    port = free_port(socket.SOCK_DGRAM)
    res = run_cli("probe", "stun", f"127.0.0.1:{port}", "--sip-port", "0", "--format", "json")
    assert res.returncode == 1
    [finding] = json.loads(res.stdout)["findings"]
    assert finding["check"] == "stun.reachable" and finding["severity"] == "problem"


def test_responder_stops_on_sigterm_and_says_what_it_sent_and_refused() -> None:
    ctl = free_port(socket.SOCK_DGRAM)
    proc = subprocess.Popen(
        [*cli_command(), "responder", "--listen", f"127.0.0.1:{ctl}", "--sip-port", "0",
         "--secret-env", "QSR_SECRET"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "QSR_SECRET": SECRET}, start_new_session=True,
    )  # fmt: skip
    try:
        _wait_udp(ctl)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(b"QSR1" + b"x" * 64, ("127.0.0.1", ctl))  # unauthenticated
        time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
    assert proc.returncode == 0, err
    assert "responder stopped: 0 packets / 0 bytes sent" in err
    assert "'unauthenticated': 1" in err
    assert SECRET not in err


def test_stun_leaves_from_the_sip_drivers_own_socket(loopback_lab: dict[str, int]) -> None:
    """The endpoint driver's STUN share of its UDP port is a DatagramPort as it is."""
    import asyncio

    from qsipctl.net.driver import SipDriver
    from qsipctl.stun.client import binding
    from qsipctl.stun.message import TransportAddress

    async def main() -> tuple[object, tuple[str, int]]:
        driver = SipDriver()
        udp = await driver.open_udp("127.0.0.1", 0)
        try:
            answer = await binding(udp.stun, ("127.0.0.1", loopback_lab["stun"]))
            return answer.mapped, udp.local
        finally:
            await driver.close()

    mapped, local = asyncio.run(main())
    assert mapped == TransportAddress("127.0.0.1", local[1])  # the SIP socket's own port
