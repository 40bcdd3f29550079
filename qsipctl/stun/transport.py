"""What the STUN client needs from a socket, and a minimal one of our own.

STUN must leave from the very port whose mapping we ask about (the SIP port,
an RTP port), so the client never opens sockets itself: it talks to a
:class:`DatagramPort`, "send this datagram to (host, port)" and "give me the
next datagram with its source".  :class:`UdpPort` is an unconnected asyncio
UDP socket that does exactly that; the endpoint driver's STUN share of its
one UDP port (``SipDriver.udp.stun``: SIP, STUN and RTP demultiplexed by
first byte, RFC 7983) has the same shape and is handed in directly.

Unconnected matters: an RFC 5780 CHANGE-REQUEST answer comes from the
server's *other* address, which a connected socket would drop.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import socket
import weakref
from typing import Protocol, runtime_checkable

Addr = tuple[str, int]


@runtime_checkable
class DatagramPort(Protocol):
    """An unconnected datagram socket (or a demultiplexed share of one)."""

    def sendto(self, data: bytes, addr: Addr) -> None: ...

    async def recv(self, timeout: float | None = None) -> tuple[bytes, Addr] | None:
        """The next datagram and its source, or None after ``timeout`` seconds."""
        ...

    @property
    def local(self) -> Addr: ...


def is_stun(data: bytes) -> bool:
    """RFC 7983 §7: a datagram whose first byte is 0-3 is STUN (RTP/RTCP start at 128-191,
    SIP with a letter), on any port that carries STUN beside something else."""
    return bool(data) and data[0] <= 3


class _Owner(Protocol):
    """A socket some other layer owns: it sends, and knows its local address."""

    def sendto(self, data: bytes, addr: Addr) -> None: ...

    @property
    def local(self) -> Addr: ...


class SharedPort:
    """One demultiplexed class (STUN, or RTP/RTCP) of a socket another layer owns.

    The SIP driver's one UDP port and a media session's RTP port each carry
    STUN beside their own traffic (RFC 7983: told apart by the first byte), as
    the device's ports do; the owner's demultiplexer hands this share what is
    its (``_put``), and what it sends leaves from the owner's port, so a STUN
    answer tells that very port's mapping.  Unread datagrams are capped
    (oldest dropped).  The owner is held weakly: it owns its shares, and a
    reference cycle would leave every closed socket to the cyclic GC.
    """

    def __init__(self, owner: _Owner, maxlen: int) -> None:
        self._owner = weakref.ref(owner)
        self._queue: collections.deque[tuple[bytes, Addr]] = collections.deque(maxlen=maxlen)
        self._waiter: asyncio.Future[None] | None = None

    @property
    def local(self) -> Addr:
        owner = self._owner()
        return ("", 0) if owner is None else owner.local

    def sendto(self, data: bytes, addr: Addr) -> None:
        owner = self._owner()
        if owner is not None:
            owner.sendto(data, addr)

    async def recv(self, timeout: float | None = None) -> tuple[bytes, Addr] | None:
        """The next datagram of this class, or None after ``timeout`` seconds."""
        if not self._queue:
            self._waiter = asyncio.get_running_loop().create_future()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._waiter, timeout)
            self._waiter = None
        return self._queue.popleft() if self._queue else None

    def _put(self, data: bytes, addr: Addr) -> None:
        self._queue.append((data, addr))
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)


class _Queue(asyncio.DatagramProtocol):
    def __init__(self, limit: int) -> None:
        self.queue: asyncio.Queue[tuple[bytes, Addr]] = asyncio.Queue(limit)
        self.closed = asyncio.Event()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed.set()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if not self.queue.full():  # a flood is dropped, not buffered without bound
            self.queue.put_nowait((data, (addr[0], addr[1])))

    def error_received(self, exc: Exception) -> None:  # ICMP unreachable: nothing to do
        pass


class UdpPort:
    """One unconnected UDP socket bound to ``(host, port)`` (port 0: any)."""

    def __init__(self, transport: asyncio.DatagramTransport, proto: _Queue) -> None:
        self._transport = transport
        self._proto = proto

    @classmethod
    async def open(cls, host: str = "0.0.0.0", port: int = 0, limit: int = 256) -> UdpPort:
        loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        transport, proto = await loop.create_datagram_endpoint(
            lambda: _Queue(limit), local_addr=(host, port), family=family
        )
        return cls(transport, proto)

    @property
    def local(self) -> Addr:
        name = self._transport.get_extra_info("sockname")
        return str(name[0]), int(name[1])

    def sendto(self, data: bytes, addr: Addr) -> None:
        self._transport.sendto(data, addr)

    async def recv(self, timeout: float | None = None) -> tuple[bytes, Addr] | None:
        try:
            return await asyncio.wait_for(self._proto.queue.get(), timeout)
        except TimeoutError:
            return None

    def close(self) -> None:
        """Start closing; the port is free again only after :meth:`aclose` returns."""
        self._transport.close()

    async def aclose(self) -> None:
        """Close and wait until the socket is released (asyncio closes on the next turn)."""
        self._transport.close()
        await self._proto.closed.wait()

    async def __aenter__(self) -> UdpPort:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def source_ip_towards(host: str, port: int) -> str:
    """The local IP the kernel would send from to reach ``host`` (no packet is sent).

    A socket bound to 0.0.0.0 does not know its address; comparing a STUN
    mapped address with 0.0.0.0 is how aiostun's classic_discover misreports
    "no NAT".
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        s.connect((host, port))
        return str(s.getsockname()[0])
