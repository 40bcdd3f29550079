"""The lab's asyncio shell answers on loopback, over UDP and TCP; the CLI stops cleanly."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from qsipctl.lab.registrar import LabAccount
from qsipctl.lab.server import LabRegistrar
from qsipctl.sip.digest import AuthResult, ClientAuth, DigestCredentials
from qsipctl.sip.message import Response, StreamParser, parse_message


def register_bytes(port: int, transport: str, cseq: int) -> bytes:
    lines = [
        "REGISTER sip:127.0.0.1 SIP/2.0",
        f"Via: SIP/2.0/{transport} 127.0.0.1:{port};branch=z9hG4bKlab{cseq};rport",
        "Max-Forwards: 70",
        "From: <sip:1001@127.0.0.1>;tag=a",
        "To: <sip:1001@127.0.0.1>",
        "Call-ID: lab-test",
        f"CSeq: {cseq} REGISTER",
        f"Contact: <sip:1001@127.0.0.1:{port}>",
    ]
    return ("\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n").encode()


class _Udp(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data, addr):
        self.queue.put_nowait(data)


async def _udp_exchange() -> tuple[list[int], int, list]:
    async with LabRegistrar([LabAccount("1001", "pw")]) as lab:
        loop = asyncio.get_running_loop()
        transport, proto = await loop.create_datagram_endpoint(
            _Udp, remote_addr=("127.0.0.1", lab.udp_port)
        )
        port = transport.get_extra_info("sockname")[1]
        first = register_bytes(port, "UDP", 1)
        transport.sendto(first)
        r1 = parse_message(await asyncio.wait_for(proto.queue.get(), 5))
        transport.sendto(first)  # a retransmission gets the same answer, not a new one
        r1_again = await asyncio.wait_for(proto.queue.get(), 5)
        assert r1_again == r1.to_bytes()
        auth = ClientAuth(DigestCredentials("1001", "pw"))
        assert auth.on_challenge(r1).result is AuthResult.RETRY
        transport.sendto(auth.authorize(parse_message(register_bytes(port, "UDP", 2))).to_bytes())
        r2 = parse_message(await asyncio.wait_for(proto.queue.get(), 5))
        transport.close()
        assert isinstance(r2, Response)
        return [r1.status, r2.status], r2.top_via.rport, lab.events


@pytest.mark.integration
def test_udp_register_with_digest_on_loopback():
    statuses, rport, events = asyncio.run(_udp_exchange())
    assert statuses == [401, 200]
    assert isinstance(rport, int) and rport > 0
    assert [e.outcome for e in events] == ["challenged", "registered"]


async def _tcp_exchange() -> int:
    async with LabRegistrar([LabAccount("1001", "pw")]) as lab:
        reader, writer = await asyncio.open_connection("127.0.0.1", lab.tcp_port)
        writer.write(register_bytes(writer.get_extra_info("sockname")[1], "TCP", 1))
        parser = StreamParser()
        messages: list = []
        while not messages:
            messages = parser.feed(await asyncio.wait_for(reader.read(65536), 5))
        writer.close()
        return messages[0].status


@pytest.mark.integration
def test_tcp_register_is_challenged_on_loopback():
    assert asyncio.run(_tcp_exchange()) == 401


@pytest.mark.e2e
def test_cli_lab_prints_ports_and_stops_cleanly_on_ctrl_c(tmp_path: Path):
    exe = Path(sys.executable).with_name("qsipctl")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "qsipctl"]
    proc = subprocess.Popen(
        [*cmd, "lab", "--port", "0", "--format", "json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
    )
    try:
        started = json.loads(proc.stdout.readline())
        assert started["event"] == "started" and started["udp_port"] > 0
        assert started["accounts"] == ["1001", "1002"]
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert json.loads(out.splitlines()[-1]) == {"event": "stopped"}
    assert "lab-100" not in out + err  # demo passwords never printed


def test_cli_lab_on_ipv6_brackets_the_address():
    exe = Path(sys.executable).with_name("qsipctl")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "qsipctl"]
    res = subprocess.run(
        [*cmd, "lab", "--listen", "::1", "--port", "0", "--duration", "0.3"],
        capture_output=True, text=True, timeout=20,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert re.search(r"udp:\[::1\]:\d+ tcp:\[::1\]:\d+ ", res.stdout), res.stdout
