"""Thin asyncio transports for the sans-IO SIP stack: UDP, TCP and TLS, IPv4 and IPv6.

A transport carries bytes to one server and hands back parsed SIP messages;
it knows nothing about transactions.  UDP sockets are *connected*, so an ICMP
port-unreachable from a host with nothing listening surfaces as
:class:`ConnectRefused` instead of a silent 32-second timeout.  TLS verifies
the certificate and the host name unless told not to (``verify=False``, which
the CLI warns about).  ``ssl`` is imported only when TLS is used, to keep the
UDP probe's start-up short.
"""

from __future__ import annotations

import asyncio
import socket
from collections import deque
from typing import TYPE_CHECKING, Any

from qsipctl.net.errors import (
    ConnectionLost,
    ConnectRefused,
    ConnectTimeout,
    NetError,
    TlsCertificateError,
    TlsHostnameError,
)
from qsipctl.net.trace import Trace
from qsipctl.sip.record import FrozenRecord

if TYPE_CHECKING:
    import ssl

    from qsipctl.sip.message import Message

TRANSPORTS = ("udp", "tcp", "tls")
DEFAULT_PORTS = {"udp": 5060, "tcp": 5060, "tls": 5061}
# OpenSSL verify codes for "trusted, but not for this name" (X509_V_ERR_HOSTNAME_MISMATCH,
# X509_V_ERR_IP_ADDRESS_MISMATCH)
_NAME_MISMATCH_CODES = {62, 64}


class ServerAddress(FrozenRecord):
    """One place to try: transport, IP address, port (RFC 3263's output)."""

    _fields = ("transport", "host", "port")
    __slots__ = _fields
    transport: str
    host: str  # an IP address
    port: int

    def __init__(self, transport: str, host: str, port: int) -> None:
        self._set(transport=transport, host=host, port=port)

    def __str__(self) -> str:
        return f"{self.transport} {_fmt((self.host, self.port))}"


def is_ip(host: str) -> bool:
    """An IPv4 or IPv6 literal (no brackets), checked without the ipaddress module."""
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, host)
        except (OSError, ValueError):
            continue
        return True
    return False


class TlsSettings(FrozenRecord):
    """How to check the server: CA bundle (None: system store), verify, expected name."""

    _fields = ("ca_file", "verify", "server_name")
    __slots__ = _fields
    ca_file: str | None
    verify: bool
    server_name: str | None

    def __init__(
        self, ca_file: str | None = None, verify: bool = True, server_name: str | None = None
    ) -> None:
        self._set(ca_file=ca_file, verify=verify, server_name=server_name)


def _summary(msg: Message) -> tuple[str, str]:
    from qsipctl.sip.message import Request

    line = f"{msg.method} {msg.uri}" if isinstance(msg, Request) else f"{msg.status} {msg.reason}"
    try:
        number, method = msg.cseq
        cseq = f"{number} {method}"
    except Exception:  # a message without a usable CSeq still belongs in the ladder
        cseq = ""
    return line, cseq


class SipTransport:
    """One connection (or connected UDP socket) to one SIP server."""

    name: str = "udp"
    reliable: bool = False

    def __init__(self, trace: Trace) -> None:
        self.trace = trace
        self._inbox: deque[Message | NetError] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False
        # UDP drops what it cannot parse (RFC 3261 18.3); remembered so that a
        # probe can say "the server answered garbage" rather than "no answer"
        self.discarded = 0
        self.discard_reason = ""

    @property
    def local(self) -> tuple[str, int]:
        return self.trace.local

    @property
    def remote(self) -> tuple[str, int]:
        return self.trace.remote

    def send(self, data: bytes) -> None:
        self.trace.wire("out", data)
        self._write(data)

    def _write(self, data: bytes) -> None:
        raise NotImplementedError

    async def receive(self, timeout: float | None) -> Message | None:
        """The next message from the server; None when ``timeout`` passes first.

        A future and one timer instead of ``wait_for(queue.get())``: that
        makes a task per wait, which shows when a thousand probes run at once.
        """
        if not self._inbox:
            loop = asyncio.get_running_loop()
            waiter = self._waiter = loop.create_future()
            timer = None if timeout is None else loop.call_later(timeout, _wake, waiter)
            try:
                await waiter
            finally:
                self._waiter = None
                if timer is not None:
                    timer.cancel()
            if not self._inbox:
                return None
        item = self._inbox.popleft()
        if isinstance(item, NetError):
            raise item
        return item

    def _push(self, item: Message | NetError) -> None:
        self._inbox.append(item)
        _wake(self._waiter)

    def _deliver(self, msg: Message) -> None:
        line, cseq = _summary(msg)
        self.trace.message("in", line, cseq)
        self._push(msg)

    def _fail(self, exc: NetError) -> None:
        self._push(exc)

    def close(self) -> None:
        self._closed = True


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, owner: UdpTransport) -> None:
        self.owner = owner

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.owner._datagram(data)

    def error_received(self, exc: Exception) -> None:
        if isinstance(exc, ConnectionRefusedError):
            self.owner._fail(
                ConnectRefused(
                    f"nothing listens on udp {_fmt(self.owner.remote)}",
                    f"udp {_fmt(self.owner.remote)} (ICMP port unreachable)",
                )
            )
        else:
            self.owner._fail(NetError(f"udp {_fmt(self.owner.remote)}: {exc}"))


class UdpTransport(SipTransport):
    name = "udp"
    reliable = False

    def __init__(self, trace: Trace) -> None:
        super().__init__(trace)
        self._dgram: asyncio.DatagramTransport | None = None

    def _datagram(self, data: bytes) -> None:
        from qsipctl.sip.errors import SipError
        from qsipctl.sip.message import parse_message

        self.trace.wire("in", data)
        if data.strip(b"\r\n") == b"":
            return  # keep-alive
        try:
            msg = parse_message(data)
        except SipError as exc:
            self.discarded += 1  # RFC 3261 18.3: discard what cannot be parsed
            self.discard_reason = self.discard_reason or str(exc)
            return
        self._deliver(msg)

    def _write(self, data: bytes) -> None:
        assert self._dgram is not None
        self._dgram.sendto(data)

    def close(self) -> None:
        super().close()
        if self._dgram is not None:
            self._dgram.close()


class _StreamProtocol(asyncio.Protocol):
    def __init__(self, owner: StreamTransport) -> None:
        self.owner = owner

    def data_received(self, data: bytes) -> None:
        self.owner._chunk(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.owner._closed:
            self.owner._fail(ConnectionLost(f"the server closed the {self.owner.name} connection"))


class StreamTransport(SipTransport):
    """TCP or TLS: messages framed by Content-Length (RFC 3261 18.3)."""

    reliable = True

    def __init__(self, trace: Trace, name: str) -> None:
        super().__init__(trace)
        from qsipctl.sip.message import StreamParser

        self.name = name
        self._parser = StreamParser()
        self._stream: asyncio.Transport | None = None

    def _chunk(self, data: bytes) -> None:
        from qsipctl.sip.errors import SipError

        self.trace.wire("in", data)
        try:
            messages = self._parser.feed(data)
        except SipError as exc:
            self._fail(NetError(f"unparsable data from the server on {self.name}: {exc}"))
            return
        for msg in messages:
            self._deliver(msg)

    def _write(self, data: bytes) -> None:
        assert self._stream is not None
        self._stream.write(data)

    def close(self) -> None:
        super().close()
        if self._stream is not None:
            self._stream.close()


def _wake(waiter: asyncio.Future[None] | None) -> None:
    if waiter is not None and not waiter.done():
        waiter.set_result(None)


def _fmt(addr: tuple[str, int]) -> str:
    host, port = addr[0], addr[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _local_bind(local_address: str | None) -> tuple[str, int] | None:
    return (local_address, 0) if local_address else None


async def open_transport(
    transport: str,
    host: str,
    port: int,
    *,
    local_address: str | None = None,
    tls: TlsSettings | None = None,
    timeout: float = 5.0,
    label: str = "",
) -> SipTransport:
    """Connect to ``host`` (an IP address) on ``port`` over ``transport``."""
    if transport == "udp":
        return await _open_udp(host, port, local_address, label)
    if transport in ("tcp", "tls"):
        return await _open_stream(transport, host, port, local_address, tls, timeout, label)
    raise NetError(f"unknown transport {transport!r} (use udp, tcp or tls)")


async def _open_udp(host: str, port: int, local_address: str | None, label: str) -> SipTransport:
    loop = asyncio.get_running_loop()
    trace = Trace("udp", ("", 0), (host, port), label)
    owner = UdpTransport(trace)
    try:
        dgram, _ = await loop.create_datagram_endpoint(
            lambda: _UdpProtocol(owner),
            remote_addr=(host, port),
            local_addr=_local_bind(local_address),
            family=_family(host),
        )
    except OSError as exc:
        source = f" from {local_address}" if local_address else ""
        raise NetError(
            f"cannot open udp socket{source} to {_fmt((host, port))}: {exc.strerror}"
        ) from None
    owner._dgram = dgram
    sock = dgram.get_extra_info("sockname")
    trace.local = (sock[0], sock[1])
    return owner


async def _open_stream(
    name: str,
    host: str,
    port: int,
    local_address: str | None,
    tls: TlsSettings | None,
    timeout: float,
    label: str,
) -> SipTransport:
    loop = asyncio.get_running_loop()
    trace = Trace(name, ("", 0), (host, port), label)
    owner = StreamTransport(trace, name)
    ctx = make_ssl_context(tls or TlsSettings()) if name == "tls" else None
    server_hostname = ((tls and tls.server_name) or host) if ctx is not None else None
    where = f"{name} {_fmt((host, port))}" + (f" from {local_address}" if local_address else "")
    try:
        stream, _ = await asyncio.wait_for(
            loop.create_connection(
                lambda: _StreamProtocol(owner),
                host,
                port,
                ssl=ctx,
                server_hostname=server_hostname,
                local_addr=_local_bind(local_address),
                family=_family(host),
            ),
            timeout,
        )
    except TimeoutError:
        raise ConnectTimeout(
            f"no connection to {where} within {timeout:g} s", f"{where}: no connection"
        ) from None
    except ConnectionRefusedError:
        raise ConnectRefused(f"connection refused by {where}", where) from None
    except OSError as exc:
        raise _classify_os_error(exc, where, server_hostname) from None
    owner._stream = stream
    sock = stream.get_extra_info("sockname")
    trace.local = (sock[0], sock[1])
    return owner


def _classify_os_error(exc: OSError, where: str, server_name: str | None) -> NetError:
    import ssl

    if isinstance(exc, ssl.SSLCertVerificationError):
        if exc.verify_code in _NAME_MISMATCH_CODES:
            return TlsHostnameError(
                f"{where}: the TLS certificate does not name {server_name}",
                f"{where}: it does not name {server_name}",
            )
        return TlsCertificateError(
            f"{where}: TLS certificate not trusted ({exc.verify_message})",
            f"{where}: {exc.verify_message}",
        )
    if isinstance(exc, ssl.SSLError):
        return NetError(f"{where}: TLS handshake failed ({exc.reason or exc})")
    return NetError(f"cannot connect to {where}: {exc.strerror or exc}")


def make_ssl_context(tls: TlsSettings) -> ssl.SSLContext:
    """A client context: system or given CA, hostname checked, unless verify is off."""
    import ssl

    if not tls.verify:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    try:
        return ssl.create_default_context(cafile=tls.ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise TlsCertificateError(f"cannot load CA file {tls.ca_file}: {exc}") from None
