"""STUN on the media socket itself (RFC 7983 demultiplexing), against a real coturn on loopback.

The offer's m= port must be the RTP socket's own public mapping, so the STUN
Binding leaves from that socket and its answer is read there; STUN datagrams
must never reach the RTP statistics or latch the stream onto the STUN server.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from qsipctl.media.session import MAX_STUN_QUEUED, MediaSession
from qsipctl.stun.client import binding
from qsipctl.stun.message import build_request, new_transaction_id
from tests.fixtures.common import free_port, wait_until
from tests.fixtures.media import config

pytestmark = pytest.mark.integration


@pytest.fixture
def coturn(tmp_path: Path) -> Iterator[tuple[str, int]]:
    """coturn, STUN only, on a free loopback port; stopped by its process group."""
    port = free_port(socket.SOCK_DGRAM)
    proc = subprocess.Popen(
        ["turnserver", "-n", "--stun-only", "--no-cli", "--no-tls", "--no-dtls",
         "-L", "127.0.0.1", "-p", str(port), "--log-file", str(tmp_path / "coturn.log"),
         "--no-stdout-log", "--pidfile", str(tmp_path / "coturn.pid")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        wait_until(lambda: _listening(port) or proc.poll() is not None, timeout=10)
        assert proc.poll() is None, "coturn exited at start"
        yield "127.0.0.1", port
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def _listening(port: int) -> bool:
    out = subprocess.run(["ss", "-Hlun", f"sport = :{port}"], capture_output=True, text=True,
                         check=False).stdout  # fmt: skip
    return bool(out.strip())


def test_binding_from_the_rtp_socket_maps_that_socket(coturn: tuple[str, int]) -> None:
    async def run() -> None:
        async with MediaSession(config("PCMU", capture_limit=100)) as media:
            answer = await binding(media.stun, coturn)
            assert answer.mapped is not None, answer.error
            assert (answer.mapped.ip, answer.mapped.port) == media.local  # no NAT on loopback
            # the answer went to the STUN client, not to RTP: nothing latched or counted
            assert media.actual_source is None and media.unexpected == 0
            assert media.stats.received == 0
            # both STUN datagrams are in the --pcap capture, sent from the RTP port
            sent = [c for c in media.captured if c.src == media.local]
            got = [c for c in media.captured if c.dst == media.local]
            assert sent and got and sent[0].dst == coturn and got[0].src == coturn
        assert media.closed

    asyncio.run(run())


def test_stun_flood_on_the_rtp_port_stays_bounded() -> None:
    async def run() -> None:
        async with MediaSession(config("PCMU")) as media:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                for _ in range(500):
                    s.sendto(build_request(new_transaction_id()), media.local)
            await asyncio.sleep(0.2)
            queued = 0
            while await media.stun.recv(0.01) is not None:
                queued += 1
            assert 0 < queued <= MAX_STUN_QUEUED
            assert media.unexpected == 0 and media.actual_source is None

    asyncio.run(run())


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def test_media_socket_closed_when_cancelled_during_the_stun_query() -> None:
    """Ctrl-C while STUN is asked (before any INVITE): the RTP/RTCP pair is released."""
    from qsipctl.probes.call import CallOptions, place_call
    from qsipctl.probes.target import ProbeTarget

    silent = free_port(socket.SOCK_DGRAM)  # STUN never answers: the query waits its 2.75 s
    rtp = next(p for p in (free_port(socket.SOCK_DGRAM) & ~1 for _ in range(50))
               if _bindable(p) and _bindable(p + 1))  # fmt: skip
    target = ProbeTarget(user="qsipctl", domain="127.0.0.1", host="127.0.0.1",
                         port=free_port(socket.SOCK_DGRAM), transport="udp")  # fmt: skip
    opts = CallOptions(number="x", duration=1.0, port_range=(rtp, rtp + 1),
                       stun_server=("127.0.0.1", silent))  # fmt: skip
    held: list[bool] = []

    async def run() -> None:
        task = asyncio.create_task(place_call(target, opts))
        await asyncio.sleep(0.8)
        held.append(not _bindable(rtp))  # the probe holds the pair meanwhile
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(run())
    assert held == [True]
    assert _bindable(rtp) and _bindable(rtp + 1)
