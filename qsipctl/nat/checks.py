"""The NAT/firewall checks, each returning data the verdicts are built from.

Everything that touches the network is here and async; every socket is
opened and closed inside one function (``async with``), so an error,
a timeout or Ctrl-C leaves nothing bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import secrets
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from qsipctl.responder import client as rclient
from qsipctl.responder.protocol import PROBE_IN, mask, parse_probe, probe_out_packet
from qsipctl.stun.behavior import Behavior, BehaviorDiscovery
from qsipctl.stun.client import DEFAULT_SCHEDULE, BindingAnswer, binding
from qsipctl.stun.message import TransportAddress
from qsipctl.stun.transport import Addr, DatagramPort, UdpPort


@contextlib.asynccontextmanager
async def open_port(host: str, port: int = 0) -> AsyncIterator[UdpPort]:
    udp = await UdpPort.open(host, port)
    try:
        yield udp
    finally:
        await udp.aclose()


async def open_preferred(host: str, port: int | None) -> tuple[UdpPort, bool]:
    """Bind ``port`` if it is free here, else any port (second value: got the one asked for)."""
    if port:
        with contextlib.suppress(OSError):
            return await UdpPort.open(host, port), True
    return await UdpPort.open(host, 0), False


# -- STUN -----------------------------------------------------------------------
@contextlib.asynccontextmanager
async def sip_socket(
    bind_ip: str, sip_port: int | None
) -> AsyncIterator[tuple[DatagramPort, bool]]:
    """The endpoint driver's one UDP socket on the SIP port, STUN share borrowed.

    STUN leaves from the socket SIP uses, demultiplexed by first byte (RFC
    7983), as the core's softphone does.  Falls back to any port when the SIP
    port is taken here (second value: got the port asked for).
    """
    from qsipctl.net.driver import SipDriver
    from qsipctl.net.errors import NetError

    driver = SipDriver()
    got = False
    try:
        if sip_port:
            with contextlib.suppress(NetError):
                await driver.open_udp(bind_ip, sip_port)
                got = True
        if driver.udp is None:
            await driver.open_udp(bind_ip, 0)
        assert driver.udp is not None
        yield driver.udp.stun, got
    finally:
        await driver.close()
        for _ in range(2):  # asyncio releases the socket on the next turns
            await asyncio.sleep(0)


async def discover(
    server: Addr,
    bind_ip: str,
    local_ip: str,
    sip_port: int | None,
    schedule: tuple[float, ...] = DEFAULT_SCHEDULE,
) -> tuple[Behavior, bool]:
    """RFC 5780 behaviour, mapping tests from the SIP port (when it is free here)."""
    proc = BehaviorDiscovery(TransportAddress(*server))
    filtering: UdpPort | None = None
    async with sip_socket(bind_ip, sip_port) as (mapping, got_sip_port):
        try:
            while (test := proc.next_test()) is not None:
                if test.socket == "filtering" and filtering is None:
                    filtering = await UdpPort.open(bind_ip, 0)
                port: DatagramPort | None = mapping if test.socket == "mapping" else filtering
                assert port is not None
                answer = await binding(
                    port,
                    (test.dest.ip, test.dest.port),
                    change_ip=test.change_ip,
                    change_port=test.change_port,
                    schedule=schedule,
                    local_ip=local_ip,
                )
                proc.record(test, answer)
        finally:
            if filtering is not None:
                await filtering.aclose()
    return proc.result(), got_sip_port


async def public_from_ports(
    server: Addr,
    bind_ip: str,
    local_ip: str,
    ports: Sequence[int],
    schedule: tuple[float, ...] = DEFAULT_SCHEDULE,
) -> list[BindingAnswer]:
    """One Binding from each of ``ports`` (those free here), in parallel."""

    async def one(p: int) -> BindingAnswer | None:
        try:
            async with open_port(bind_ip, p) as udp:
                return await binding(udp, server, schedule=schedule, local_ip=local_ip)
        except OSError:
            return None

    got = await asyncio.gather(*(one(p) for p in ports))
    return [a for a in got if a is not None]


# -- SIP ALG (echo) -------------------------------------------------------------
def alg_test_message(local_ip: str, local_port: int, server_ip: str, rtp_port: int) -> bytes:
    """An INVITE with SDP naming our own address everywhere an ALG rewrites one."""
    tag = secrets.token_hex(4)
    sdp = (
        f"v=0\r\no=- {tag} 1 IN IP4 {local_ip}\r\ns=-\r\nc=IN IP4 {local_ip}\r\nt=0 0\r\n"
        f"m=audio {rtp_port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
    )
    head = (
        f"INVITE sip:alg-test@{server_ip} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {local_ip}:{local_port};branch=z9hG4bK{tag};rport\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:qsipctl@{local_ip}>;tag={tag}\r\n"
        f"To: <sip:alg-test@{server_ip}>\r\n"
        f"Call-ID: {tag}@{local_ip}\r\n"
        "CSeq: 1 INVITE\r\n"
        f"Contact: <sip:qsipctl@{local_ip}:{local_port}>\r\n"
        "Content-Type: application/sdp\r\n"
        f"Content-Length: {len(sdp)}\r\n\r\n"
    )
    return (head + sdp).encode()


@dataclass(frozen=True, slots=True)
class EchoResult:
    sent: bytes
    received: bytes | None
    seen_from: tuple[str, int] | None  # our address as the responder's control port saw it
    local: tuple[str, int]


async def sip_echo(
    responder: Addr,
    secret: bytes,
    sip_echo_port: int,
    bind_ip: str,
    local_ip: str,
    sip_port: int | None,
    rtp_port: int,
    timeout: float = 2.0,
) -> EchoResult:
    udp, _ = await open_preferred(bind_ip, sip_port)
    try:
        hello = await rclient.request(udp, responder, secret, "sip-echo", timeout=timeout)
        seen = hello.get("seen")
        msg = alg_test_message(local_ip, udp.local[1], responder[0], rtp_port)
        target = (responder[0], sip_echo_port)
        got: bytes | None = None
        for _ in range(3):
            udp.sendto(msg, target)
            deadline = time.monotonic() + timeout / 3
            while got is None and (left := deadline - time.monotonic()) > 0:
                received = await udp.recv(left)
                if received is None:
                    break
                data, src = received
                if src[1] == sip_echo_port and len(data) == len(msg):
                    got = mask(data)
                elif src[1] == sip_echo_port:
                    got = mask(data)  # a length change is itself the evidence
            if got is not None:
                break
        seen_t = (str(seen[0]), int(seen[1])) if isinstance(seen, list) else None
        return EchoResult(msg, got, seen_t, (local_ip, udp.local[1]))
    finally:
        await udp.aclose()


# -- port reachability -------------------------------------------------------------
def sample_ports(lo: int, hi: int, max_samples: int = 64) -> list[int]:
    """Every port when the range is small, else ``max_samples`` evenly spaced RTP (even) ports.

    Both ends are always included; transitions between samples are then
    narrowed by bisection (:func:`refine`), so a blocked sub-range wider than
    the spacing is found to the exact port.
    """
    if hi - lo + 1 <= max_samples:
        return list(range(lo, hi + 1))
    step = (hi - lo) / (max_samples - 1)
    ports = {lo, hi}
    for i in range(1, max_samples - 1):
        p = int(lo + i * step)
        ports.add(p - (p % 2))
    return sorted(p for p in ports if lo <= p <= hi)


@dataclass(frozen=True, slots=True)
class PortState:
    port: int
    outbound: bool | None  # None: port busy here, not tested
    public_port: int | None
    inbound: bool | None  # unsolicited, from a port we had not sent to
    inbound_reply: bool | None  # from the address we had sent to (symmetric RTP)


async def test_ports(
    responder: Addr,
    secret: bytes,
    bind_ip: str,
    ports: Sequence[int],
    wait: float = 1.0,
) -> list[PortState]:
    """Outbound then inbound reachability for each local port, through the responder."""
    socks: dict[int, UdpPort] = {}
    token = os.urandom(6).hex()
    ctl: UdpPort | None = None
    try:
        for p in ports:
            with contextlib.suppress(OSError):
                socks[p] = await UdpPort.open(bind_ip, p)
        ctl = await UdpPort.open(bind_ip, 0)
        await rclient.request(ctl, responder, secret, "expect-out", token=token)
        for _ in range(2):
            for p, s in socks.items():
                s.sendto(probe_out_packet(token, p), responder)
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)
        rep = await rclient.request(ctl, responder, secret, "report-out", token=token, pad_to=1350)
        public = {int(a): int(b) for a, b in rep.get("seen", [])}
        inbound = await _inbound(responder, secret, ctl, socks, public, token, "probe", wait)
        replies = await _inbound(responder, secret, ctl, socks, public, token, "control", wait)
    finally:
        for s in socks.values():
            await s.aclose()
        if ctl is not None:
            await ctl.aclose()
    out = []
    for p in ports:
        if p not in socks:
            out.append(PortState(p, None, None, None, None))
            continue
        out.append(PortState(p, p in public, public.get(p), p in inbound, p in replies))
    return out


async def _inbound(
    responder: Addr,
    secret: bytes,
    ctl: UdpPort,
    socks: dict[int, UdpPort],
    public: dict[int, int],
    token: str,
    via: str,
    wait: float,
) -> set[int]:
    """Ask for one probe to each port's public side; collect which local sockets got one."""
    targets = {public.get(p, p): p for p in socks}
    got: set[int] = set()
    tag = f"{token[:8]}{via[0]}"
    names = list(targets)
    for i in range(0, len(names), 64):
        chunk = names[i : i + 64]
        await rclient.request(ctl, responder, secret, "probe-in", ports=chunk, token=tag, via=via)

    async def listen(local: int, s: UdpPort) -> None:
        end = time.monotonic() + wait
        while (left := end - time.monotonic()) > 0:
            received = await s.recv(left)
            if received is None:
                return
            data = received[0]
            parsed = parse_probe(data, PROBE_IN)
            if parsed is not None and parsed[1] == tag:
                got.add(local)
                return

    await asyncio.gather(*(listen(p, s) for p, s in socks.items()))
    return got


async def refine(
    responder: Addr,
    secret: bytes,
    bind_ip: str,
    states: dict[int, PortState],
    rounds: int = 12,
) -> None:
    """Bisect between neighbouring samples whose inbound or outbound result differs."""
    for _ in range(rounds):
        known = sorted(p for p, s in states.items() if s.outbound is not None)
        mids = []
        for a, b in itertools.pairwise(known):
            sa, sb = states[a], states[b]
            differ = (sa.outbound, sa.inbound, sa.inbound_reply) != (
                sb.outbound,
                sb.inbound,
                sb.inbound_reply,
            )
            if differ and b - a > 1:
                mids.append((a + b) // 2)
        if not mids:
            return
        for st in await test_ports(responder, secret, bind_ip, mids[:64]):
            if st.outbound is None:  # busy here: step past it next round
                st = PortState(st.port, *_copy(states, st.port))
            states[st.port] = st


def _copy(states: dict[int, PortState], port: int) -> tuple[bool | None, ...]:
    nearest = min(states, key=lambda p: abs(p - port))
    s = states[nearest]
    return (s.outbound, None, s.inbound, s.inbound_reply)


async def tcp_inbound(
    responder: Addr, secret: bytes, bind_ip: str, port: int, wait: float = 4.0
) -> bool | None:
    """Can the far side open a TCP connection to our ``port``? None: port busy here."""
    from qsipctl.responder.protocol import PROBE_TCP

    token = os.urandom(6).hex()
    got = asyncio.Event()

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            data = await asyncio.wait_for(reader.read(64), 2.0)
            if data == PROBE_TCP + token.encode():
                got.set()
        except (OSError, TimeoutError):
            pass
        finally:
            writer.close()

    try:
        server = await asyncio.start_server(accept, bind_ip, port)
    except OSError:
        return None
    try:
        async with open_port(bind_ip, 0) as ctl:
            await rclient.request(ctl, responder, secret, "tcp-in", ports=[port], token=token)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(got.wait(), wait)
        return got.is_set()
    finally:
        server.close()
        await server.wait_closed()


async def tcp_hello(responder: Addr, secret: bytes, timeout: float = 3.0) -> str | None:
    """None when a TCP request to the responder's control port got its answer, else why not."""
    import struct

    from qsipctl.responder.protocol import new_request, sign, verify

    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(responder[0], responder[1]), timeout
        )
    except (OSError, TimeoutError) as exc:
        return f"TCP connect failed: {exc or 'timeout'}"
    try:
        body = new_request("hello", time.time(), pad_to=400)
        data = sign(secret, body)
        writer.write(struct.pack("!H", len(data)) + data)
        await writer.drain()
        head = await asyncio.wait_for(reader.readexactly(2), timeout)
        answer = verify(secret, await reader.readexactly(struct.unpack("!H", head)[0]))
        return None if answer.get("ok") else str(answer.get("error"))
    except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError) as exc:
        return f"no TCP answer: {exc or 'timeout'}"
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


# -- binding timeout ---------------------------------------------------------------
def hold_pauses(maximum: float, first: float = 2.0) -> list[float]:
    pauses = []
    p = first
    while p < maximum:
        pauses.append(p)
        p *= 2
    pauses.append(maximum)
    return pauses


async def binding_timeout(
    responder: Addr, secret: bytes, bind_ip: str, pauses: Sequence[float]
) -> dict[float, bool]:
    """For each pause, from its own fresh port: did the late answer still get in?"""

    async def one(pause: float) -> tuple[float, bool]:
        async with open_port(bind_ip, 0) as udp:
            return pause, await rclient.hold(udp, responder, secret, pause)

    return dict(await asyncio.gather(*(one(p) for p in pauses)))
