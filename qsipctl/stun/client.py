"""Binding transactions: a sans-IO retransmission machine and a thin async driver.

RFC 5389 7.2.1 retransmits a UDP request with a doubling RTO (500 ms, Rc=7,
39.5 s in all).  A diagnosis that waits 40 s for an answer the filtering
test *expects* to be missing is unusable, so the schedule is ours to choose
(default 0.25, 0.5, 1, 1 s: four sends, 2.75 s) and documented in docs/nat.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass

from qsipctl.stun.message import (
    StunMessage,
    StunParseError,
    TransportAddress,
    build_request,
    new_transaction_id,
    parse,
)
from qsipctl.stun.transport import Addr, DatagramPort

DEFAULT_SCHEDULE: tuple[float, ...] = (0.25, 0.5, 1.0, 1.0)


@dataclass(frozen=True, slots=True)
class BindingAnswer:
    """What one Binding exchange taught us (``mapped`` None: no answer at all)."""

    server: TransportAddress
    local: TransportAddress
    mapped: TransportAddress | None
    other: TransportAddress | None = None
    origin: TransportAddress | None = None  # RESPONSE-ORIGIN, else the datagram's source
    error: str | None = None
    rtt_ms: float | None = None


class BindingTransaction:
    """One request, its retransmissions and its answer; time is passed in.

    ``start(now)`` returns the bytes to send and when to call ``on_timer``;
    ``on_datagram`` returns True once the matching answer arrived.
    """

    def __init__(
        self,
        *,
        change_ip: bool = False,
        change_port: bool = False,
        schedule: tuple[float, ...] = DEFAULT_SCHEDULE,
        transaction_id: bytes | None = None,
    ) -> None:
        self.transaction_id = transaction_id or new_transaction_id()
        self.request = build_request(
            self.transaction_id, change_ip=change_ip, change_port=change_port
        )
        self._schedule = schedule
        self._sent = 0
        self.started: float | None = None
        self.answer: StunMessage | None = None
        self.answer_from: Addr | None = None
        self.answered_at: float | None = None
        self.timed_out = False

    def start(self, now: float) -> tuple[bytes, float]:
        self.started = now
        self._sent = 1
        return self.request, now + self._schedule[0]

    def on_timer(self, now: float) -> tuple[bytes, float] | None:
        """Retransmit (bytes, next deadline), or None: the transaction timed out."""
        if self.answer is not None:
            return None
        if self._sent >= len(self._schedule):
            self.timed_out = True
            return None
        self._sent += 1
        return self.request, now + self._schedule[self._sent - 1]

    def on_datagram(self, data: bytes, source: Addr, now: float) -> bool:
        """Take ``data`` if it answers this transaction; anything else is ignored."""
        if self.answer is not None or len(data) < 20 or data[8:20] != self.transaction_id:
            return False
        try:
            msg = parse(data)
        except StunParseError:
            return False
        if msg.msg_type & 0x0110 not in (0x0100, 0x0110):  # a response class
            return False
        self.answer, self.answer_from, self.answered_at = msg, source, now
        return True


async def binding(
    port: DatagramPort,
    server: Addr,
    *,
    change_ip: bool = False,
    change_port: bool = False,
    schedule: tuple[float, ...] = DEFAULT_SCHEDULE,
    clock: Callable[[], float] = time.monotonic,
    local_ip: str | None = None,
) -> BindingAnswer:
    """Run one Binding transaction on ``port`` towards ``server``; never raises on silence."""
    tx = BindingTransaction(change_ip=change_ip, change_port=change_port, schedule=schedule)
    data, deadline = tx.start(clock())
    port.sendto(data, server)
    while tx.answer is None:
        got = await port.recv(max(deadline - clock(), 0.0))
        if got is None:
            step = tx.on_timer(clock())
            if step is None:
                break
            data, deadline = step
            port.sendto(data, server)
            continue
        tx.on_datagram(got[0], got[1], clock())
    return _answer(tx, server, port.local, local_ip)


def _answer(
    tx: BindingTransaction, server: Addr, local: Addr, local_ip: str | None
) -> BindingAnswer:
    srv = TransportAddress(server[0], server[1])
    loc = TransportAddress(local_ip or local[0], local[1])
    msg = tx.answer
    if msg is None:
        return BindingAnswer(srv, loc, None)
    rtt = None
    if tx.started is not None and tx.answered_at is not None:
        rtt = round((tx.answered_at - tx.started) * 1000.0, 2)
    origin = msg.response_origin()
    if origin is None and tx.answer_from is not None:
        origin = TransportAddress(*tx.answer_from)
    if not msg.is_success:
        code = msg.error_code()
        text = f"STUN error {code[0]} {code[1]}" if code else "STUN error response"
        return BindingAnswer(srv, loc, None, error=text, origin=origin, rtt_ms=rtt)
    try:
        mapped = msg.mapped()
        other = msg.other_address()
    except StunParseError as exc:
        return BindingAnswer(srv, loc, None, error=f"bad STUN answer: {exc}", rtt_ms=rtt)
    if mapped is None:
        return BindingAnswer(srv, loc, None, error="answer without a mapped address", rtt_ms=rtt)
    return BindingAnswer(srv, loc, mapped, other, origin, None, rtt)


async def binding_stream(
    server: Addr,
    *,
    ssl_context: ssl.SSLContext | None = None,
    server_name: str | None = None,
    timeout: float = 3.0,
    local_ip: str | None = None,
) -> BindingAnswer:
    """One Binding over TCP (or TLS: RFC 5389 7.2.2); STUN frames itself, no extra framing.

    RFC 5780 behaviour tests are UDP-only; over a stream we learn the public
    address of that connection, which is what a TCP/TLS STUN user gets.
    """
    srv = TransportAddress(server[0], server[1])
    tx = BindingTransaction()
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(
                server[0],
                server[1],
                ssl=ssl_context,
                server_hostname=(server_name or server[0]) if ssl_context else None,
            ),
            timeout,
        )
    except (OSError, TimeoutError, ssl.SSLError) as exc:
        reason = str(exc) or type(exc).__name__
        return BindingAnswer(srv, TransportAddress(local_ip or "", 0), None, error=reason)
    sock = writer.get_extra_info("sockname")
    local = (str(sock[0]), int(sock[1]))
    try:
        data, _ = tx.start(time.monotonic())
        writer.write(data)
        await writer.drain()
        head = await asyncio.wait_for(reader.readexactly(20), timeout)
        length = int.from_bytes(head[2:4], "big")
        if length > 1480:
            return _answer(tx, server, local, local_ip)
        body = await asyncio.wait_for(reader.readexactly(length), timeout)
        tx.on_datagram(head + body, server, time.monotonic())
    except (OSError, TimeoutError, asyncio.IncompleteReadError, ssl.SSLError):
        pass
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
    return _answer(tx, server, local, local_ip)
