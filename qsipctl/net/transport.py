"""Sockets for the SIP driver: one unconnected UDP port shared by SIP, STUN and RTP,
and TCP/TLS connections; IPv4 and IPv6.

Why unconnected: a Q-SYS softphone sends SIP, STUN and RTP from one local
port and hears from addresses it did not send to (a PBX answering from a
second interface, RTP from the address in the SDP answer, a STUN
CHANGE-REQUEST answer).  What arrives is sorted by its first byte as
RFC 7983 does: 0-3 STUN, 128-191 RTP/RTCP, anything else SIP.

ICMP errors stay per destination: on Linux ``IP_RECVERR``/``IPV6_RECVERR``
queue each error with the address the failed datagram was sent to, read from
``MSG_ERRQUEUE``, so "nothing listens on udp 198.18.0.5:5060" is as precise
as with a connected socket.  TLS verifies the certificate and host name
unless told not to (``verify=False``, which the CLI warns about).
"""

from __future__ import annotations

import asyncio
import os
import socket
import struct
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from qsipctl.addr import host_port, ip_version
from qsipctl.net.errors import NetError
from qsipctl.sip.endpoint import Peer
from qsipctl.sip.message import StreamParser
from qsipctl.stun.transport import Addr, SharedPort, is_stun

if TYPE_CHECKING:
    import ssl

TRANSPORTS = ("udp", "tcp", "tls")
DEFAULT_PORTS = {"udp": 5060, "tcp": 5060, "tls": 5061}
# OpenSSL verify codes for "trusted, but not for this name" (X509_V_ERR_HOSTNAME_MISMATCH,
# X509_V_ERR_IP_ADDRESS_MISMATCH)
_NAME_MISMATCH_CODES = {62, 64}
# OpenSSL's words for a handshake answered with plain text (SIP) instead of TLS
_PLAIN_TEXT_REASONS = {"WRONG_VERSION_NUMBER", "PACKET_LENGTH_TOO_LONG", "RECORD_LAYER_FAILURE"}
# Linux <linux/errqueue.h>: (level, type) of the error-queue cmsg, struct sock_extended_err
_RECVERR = {socket.AF_INET: (socket.IPPROTO_IP, 11), socket.AF_INET6: (socket.IPPROTO_IPV6, 25)}
_EXTENDED_ERR = struct.Struct("=IBBBBII")

OnSip = Callable[[bytes, Addr], None]  # a SIP datagram and its source
OnError = Callable[[Addr, OSError], None]  # an ICMP error and the destination it concerns
OnData = Callable[["StreamConnection", bytes], None]  # bytes read from a connection
OnLost = Callable[["StreamConnection"], None]  # the peer closed it (or it broke)


@dataclass(frozen=True, slots=True)
class TlsSettings:
    """How to check the server: CA bundle (None: system store), verify, expected name."""

    ca_file: str | None = None
    verify: bool = True
    server_name: str | None = None


def family_of(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ip_version(host) == 6 else socket.AF_INET


# the most unread STUN or RTP datagrams a share of the SIP port keeps
MAX_QUEUED = 1024


class UdpSocket:
    """The one unconnected UDP socket: SIP to ``on_sip``, STUN and RTP to their ports; read
    off the selector: a datagram transport's set-up and close cost more than a probe's traffic."""

    def __init__(self, host: str, port: int, on_sip: OnSip, on_error: OnError) -> None:
        """Bind ``host``:``port`` (0: any free one) and read it on the running loop."""
        self.sock = sock = socket.socket(family_of(host), socket.SOCK_DGRAM)
        try:
            if sys.platform == "linux":
                sock.setsockopt(*_RECVERR[sock.family], 1)
            sock.bind((host, port))
        except OSError as exc:
            sock.close()
            raise NetError(
                f"cannot open a udp socket from {host_port(host, port)}: {exc.strerror}"
            ) from None
        sock.setblocking(False)
        self.on_sip, self.on_error = on_sip, on_error
        self.local: Addr = sock.getsockname()[:2]
        self.stun, self.rtp = SharedPort(self, MAX_QUEUED), SharedPort(self, MAX_QUEUED)
        self._loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()  # None: closed
        # by fd: the selector formats a socket's (costly) repr into every lookup miss
        self._loop.add_reader(sock.fileno(), self._readable)

    def sendto(self, data: bytes, addr: Addr) -> None:
        try:
            if self._loop is not None:  # not closed
                self.sock.sendto(data, addr)
        except OSError as exc:  # an ICMP error an earlier datagram met; EAGAIN drops it
            self.error_received(exc)

    def _readable(self) -> None:
        """RFC 7983 §7: what a datagram on the shared port is, by its first byte."""
        try:
            data, addr = self.sock.recvfrom(65536)
        except OSError as exc:  # the kernel queued an ICMP error (IP_RECVERR)
            self.error_received(exc)
            return
        source: Addr = addr[:2]
        if is_stun(data):
            self.stun._put(data, source)
        elif data and 128 <= data[0] <= 191:
            self.rtp._put(data, source)
        else:
            self.on_sip(data, source)

    def error_received(self, exc: Exception) -> None:
        """The kernel queued ICMP errors: read each with the destination it concerns."""
        if sys.platform != "linux":
            return
        for _ in range(64):
            try:
                _, ancdata, _, addr = self.sock.recvmsg(512, 512, socket.MSG_ERRQUEUE)
            except OSError:  # EAGAIN: the queue is empty
                return
            for _level, _type, data in ancdata:
                if len(data) >= _EXTENDED_ERR.size and addr:
                    code = _EXTENDED_ERR.unpack_from(data)[0]
                    self.on_error((str(addr[0]), int(addr[1])), OSError(code, os.strerror(code)))

    def close(self) -> None:
        if self._loop is not None:
            self._loop.remove_reader(self.sock.fileno())
            self._loop = None
            self.sock.close()
        # the callbacks are the owner's bound methods: dropping them breaks the
        # owner <-> socket cycle, so both are freed as soon as nobody holds them
        self.on_sip, self.on_error = _ignore, _ignore


def _ignore(*_: object) -> None:
    """What a closed socket does with a late datagram or error."""


class StreamConnection(asyncio.Protocol):
    """One TCP or TLS connection, with the parser that frames its SIP messages;
    bytes go to ``on_data``, its end to ``on_lost`` (unless we closed it)."""

    def __init__(self, on_data: OnData, on_lost: OnLost) -> None:
        self.on_data, self.on_lost = on_data, on_lost
        self.transport: asyncio.Transport | None = None
        self.peer: Peer | None = None
        self.local: Addr = ("", 0)
        self.parser = StreamParser()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.on_data(self, data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.on_lost(self)

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def close(self) -> None:
        self.on_data, self.on_lost = _ignore, _ignore  # as UdpSocket.close: no cycle, no news
        if self.transport is not None:
            self.transport.close()


async def open_stream(
    peer: Peer, conn: StreamConnection, *, local: str | None, tls: TlsSettings, timeout: float
) -> None:
    """Connect ``conn`` to ``peer`` from ``local``; for TLS, the handshake is timed apart
    from TCP, so a port that speaks plain SIP (or nothing) over TLS is named as such."""
    where = f"{peer}" + (f" from {local}" if local else "")
    bind = (local, 0) if local else None
    connecting = asyncio.get_running_loop().create_connection(
        lambda: conn, peer.host, peer.port, local_addr=bind, family=family_of(peer.host)
    )
    try:
        transport, _ = await asyncio.wait_for(connecting, timeout)
    except TimeoutError:
        raise NetError(
            f"no connection to {where} within {timeout:g} s", f"{where}: no connection", "timeout"
        ) from None
    except ConnectionRefusedError:
        raise NetError(f"connection refused by {where}", where, "refused") from None
    except OSError as exc:
        raise NetError(f"cannot connect to {where}: {exc.strerror or exc}") from None
    if peer.transport == "tls":
        transport = await _start_tls(transport, peer, tls, timeout, where)
    conn.transport, conn.peer = transport, peer
    conn.local = transport.get_extra_info("sockname")[:2]


async def _start_tls(
    transport: asyncio.Transport, peer: Peer, tls: TlsSettings, timeout: float, where: str
) -> asyncio.Transport:
    import ssl

    ctx = make_ssl_context(tls)
    name = tls.server_name or peer.host
    error = NetError(
        f"{where}: this port speaks plain SIP or nothing over TLS; TLS is usually on 5061",
        f"{where}: TCP connected but the TLS handshake got no TLS answer"
        " (plain SIP or nothing on this port; TLS is usually on 5061)",
        "no-tls",
    )
    loop, conn = asyncio.get_running_loop(), transport.get_protocol()
    try:
        tls_transport = await asyncio.wait_for(
            loop.start_tls(transport, conn, ctx, server_hostname=name), timeout
        )
        if tls_transport is not None:
            return tls_transport
    except ssl.SSLCertVerificationError as exc:
        if exc.verify_code in _NAME_MISMATCH_CODES:
            error = NetError(
                f"{where}: the TLS certificate does not name {name}",
                f"{where}: it does not name {name}",
                "tls-hostname",
            )
        else:
            error = NetError(
                f"{where}: TLS certificate not trusted ({exc.verify_message})",
                f"{where}: {exc.verify_message}",
                "tls-certificate",
            )
    except ssl.SSLError as exc:
        if exc.reason not in _PLAIN_TEXT_REASONS:
            error = NetError(f"{where}: TLS handshake failed ({exc.reason or exc})")
    except OSError:  # silence (a timeout), or a reset mid-handshake: no TLS there
        pass
    transport.close()
    raise error


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
    except OSError as exc:  # ssl.SSLError is one: a file that is not PEM certificates
        raise NetError(
            f"cannot load CA file {tls.ca_file}: {exc}", kind="tls-certificate"
        ) from None
