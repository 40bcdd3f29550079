"""The responder's wire protocol and its policy, without I/O.

A responder runs beyond the firewall and sends packets *towards* the
engineer's network on request, which is exactly what a reflection attack
wants.  So every rule that keeps it harmless lives here, testable without a
socket:

* a request is ``QSR1 | HMAC-SHA256(secret, body) | body`` (body: JSON with
  ``ts`` and a random ``nonce``); a bad MAC, a stale timestamp (±30 s) or a
  nonce seen before gets **no answer at all**;
* it only ever sends to the request's source IP: there is no address field
  to ask for another one, and a request that carries one is refused;
* every answer is no larger than the request that caused it (the client pads
  its request when it wants a longer answer), except the inbound port probes
  and the SIP echo, which are bounded per source by a fixed packet and byte
  budget (``Limits``);
* requests are rate-limited per source IP, and anything longer than
  ``Limits.max_request`` is dropped unread.

Other datagrams: ``QSO1`` outbound probes sent by the engineer's machine to
the probe port (recorded, never answered), and raw SIP sent to the echo port
(answered once, masked so a SIP ALG on the way back cannot rewrite the copy,
only while the source has an authenticated echo window open).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import struct
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeGuard

MAGIC = b"QSR1"  # control request and answer
PROBE_IN = b"QSI1"  # inbound probe, responder -> requester
PROBE_OUT = b"QSO1"  # outbound probe, requester -> responder
PROBE_TCP = b"QST1"  # inbound TCP probe: the responder connects and writes this
MAC_LEN = 32
ECHO_MASK = 0x5A  # XOR over echoed SIP bytes: same length, unreadable to an ALG
MAX_SKEW = 30.0
MAX_NONCES = 200_000  # remembered at once (60 s of requests); beyond that: refuse

Addr = tuple[str, int]
Sock = Literal["control", "probe", "sip", "tcp"]  # "tcp": connect to dest, write, close


@dataclass(frozen=True, slots=True)
class Limits:
    """What one source may make the responder send (the anti-amplifier budget)."""

    max_request: int = 1400
    requests_per_window: int = 200
    window: float = 10.0
    probes_per_request: int = 64
    probe_packets_per_minute: int = 2048
    hold_max_pause: float = 600.0
    holds_open: int = 16
    echoes_per_window: int = 8
    echo_window: float = 30.0


@dataclass(frozen=True, slots=True)
class Send:
    """An action for the driver: send ``data`` from socket ``sock`` to ``dest`` at time ``at``."""

    data: bytes
    dest: Addr
    sock: Sock = "control"
    at: float = 0.0


class ProtocolError(ValueError):
    """A control message that cannot be read (wrong magic, bad MAC, bad JSON)."""


def sign(secret: bytes, body: dict[str, Any]) -> bytes:
    raw = json.dumps(body, separators=(",", ":"), sort_keys=True).encode()
    return MAGIC + hmac.new(secret, raw, hashlib.sha256).digest() + raw


def verify(secret: bytes, data: bytes) -> dict[str, Any]:
    """The body of an authentic message; :class:`ProtocolError` for anything else."""
    if len(data) < len(MAGIC) + MAC_LEN + 2 or not data.startswith(MAGIC):
        raise ProtocolError("not a responder message")
    mac, raw = data[4 : 4 + MAC_LEN], data[4 + MAC_LEN :]
    if not hmac.compare_digest(mac, hmac.new(secret, raw, hashlib.sha256).digest()):
        raise ProtocolError("bad MAC")
    try:
        body = json.loads(raw)
    except ValueError:
        raise ProtocolError("body is not JSON") from None
    if not isinstance(body, dict):
        raise ProtocolError("body is not an object")
    return body


def new_request(op: str, now: float | None = None, pad_to: int = 0, **args: Any) -> dict[str, Any]:
    """A request body with a fresh nonce; ``pad_to`` makes room for a longer answer."""
    body: dict[str, Any] = {
        "op": op,
        "ts": round(time.time() if now is None else now, 3),
        "nonce": os.urandom(12).hex(),
        **args,
    }
    if pad_to:
        base = len(json.dumps(body, separators=(",", ":"))) + 4 + MAC_LEN + 10
        body["pad"] = "." * max(0, pad_to - base)
    return body


def _token(body: dict[str, object]) -> str:
    """A test's token as at most 16 ASCII octets: it is echoed in probes, whose size is fixed."""
    text = str(body.get("token", ""))
    return "".join(c for c in text if " " < c < "\x7f")[:16]


def probe_out_packet(token: str, local_port: int) -> bytes:
    """What the requester sends from each tested port: the port it left from, before NAT."""
    return PROBE_OUT + struct.pack("!H", local_port) + token.encode()[:16]


def probe_in_packet(token: str, port: int) -> bytes:
    return PROBE_IN + struct.pack("!H", port) + token.encode()[:16]


def parse_probe(data: bytes, magic: bytes) -> tuple[int, str] | None:
    if not data.startswith(magic) or len(data) < 6 or len(data) > 22:
        return None
    (port,) = struct.unpack_from("!H", data, 4)
    return port, data[6:].decode("ascii", "replace")


def mask(data: bytes) -> bytes:
    return bytes(b ^ ECHO_MASK for b in data)


@dataclass
class _Source:
    """Per-source-IP bookkeeping (the budget is per IP: ports are free to an attacker)."""

    requests: deque[float] = field(default_factory=deque)
    probes: deque[tuple[float, int]] = field(default_factory=deque)
    echo_until: float = 0.0
    echoes_left: int = 0
    holds: deque[float] = field(default_factory=deque)
    seen_out: dict[str, dict[int, int]] = field(default_factory=dict)  # token -> local -> public


@dataclass
class Stats:
    """Counters for tests and the server's log line: what was refused, what was sent."""

    refused: dict[str, int] = field(default_factory=dict)
    packets_out: int = 0
    bytes_out: int = 0

    def refuse(self, why: str) -> list[Send]:
        self.refused[why] = self.refused.get(why, 0) + 1
        return []


class Responder:
    """The responder's state: feed it datagrams with the time, send what it returns."""

    def __init__(self, secret: bytes, limits: Limits | None = None) -> None:
        if len(secret) < 16:
            raise ValueError("the shared secret must be at least 16 bytes")
        self._secret = secret
        self.limits = limits or Limits()
        self._nonces: dict[str, float] = {}
        self._sources: dict[str, _Source] = {}
        self.stats = Stats()

    # -- entry points ----------------------------------------------------
    def on_control(self, data: bytes, src: Addr, now: float, wall: float) -> list[Send]:
        """A datagram (or TCP frame) on the control port; ``wall`` is Unix time for ``ts``."""
        lim = self.limits
        if len(data) > lim.max_request:
            return self.stats.refuse("oversized")
        if data.startswith(PROBE_OUT):
            return self.on_probe(data, src, now)
        try:
            body = verify(self._secret, data)
        except ProtocolError:
            return self.stats.refuse("unauthenticated")
        if not self._fresh(body, wall, now):
            return self.stats.refuse("replay-or-stale")
        s = self._source(src[0])
        if not self._allow(s.requests, now, lim.window, lim.requests_per_window):
            return self.stats.refuse("rate-limited")
        s.requests.append(now)
        return self._bounded(self._dispatch(body, s, src, now), len(data), body, src)

    def on_probe(self, data: bytes, src: Addr, now: float) -> list[Send]:
        """An outbound probe: remember which public port it came from; never answered."""
        got = parse_probe(data, PROBE_OUT)
        s = self._sources.get(src[0])
        if got is None or s is None or got[1] not in s.seen_out:
            return self.stats.refuse("unexpected-probe")
        seen = s.seen_out[got[1]]
        if len(seen) < 4096:
            seen[got[0]] = src[1]
        return []

    def on_sip(self, data: bytes, src: Addr, now: float) -> list[Send]:
        """Raw SIP on the echo port: one masked copy back, only inside an open window."""
        s = self._sources.get(src[0])
        if s is None or now > s.echo_until or s.echoes_left <= 0:
            return self.stats.refuse("echo-not-open")
        if len(data) > self.limits.max_request:
            return self.stats.refuse("oversized")
        s.echoes_left -= 1
        return self._count([Send(mask(data), src, "sip", now)])

    # -- policy helpers --------------------------------------------------
    def _fresh(self, body: dict[str, Any], wall: float, now: float) -> bool:
        ts, nonce = body.get("ts"), body.get("nonce")
        if not isinstance(ts, int | float) or not isinstance(nonce, str) or len(nonce) > 64:
            return False
        if abs(wall - ts) > MAX_SKEW:
            return False
        # nonces in arrival order: forget those older than any timestamp still accepted
        while self._nonces and now - next(iter(self._nonces.values())) > 2 * MAX_SKEW:
            self._nonces.pop(next(iter(self._nonces)))
        if nonce in self._nonces or len(self._nonces) >= MAX_NONCES:
            return False
        self._nonces[nonce] = now
        return True

    def _source(self, ip: str) -> _Source:
        s = self._sources.get(ip)
        if s is None:
            if len(self._sources) > 4096:  # forget the oldest: memory is bounded too
                self._sources.pop(next(iter(self._sources)))
            s = self._sources[ip] = _Source()
        return s

    @staticmethod
    def _allow(log: deque[float], now: float, window: float, limit: int) -> bool:
        while log and now - log[0] > window:
            log.popleft()
        return len(log) < limit

    def _reply(self, body: dict[str, Any], src: Addr, **fields: Any) -> bytes:
        return sign(self._secret, {"nonce": body["nonce"], "ok": True, **fields})

    def _error(self, body: dict[str, Any], text: str) -> bytes:
        return sign(self._secret, {"nonce": body["nonce"], "ok": False, "error": text})

    def _bounded(
        self, sends: list[Send], request_len: int, body: dict[str, Any], src: Addr
    ) -> list[Send]:
        """Control answers are never larger than the request; probes were budgeted already."""
        out = []
        for send in sends:
            if send.sock == "control" and len(send.data) > request_len:
                err = self._error(body, "answer larger than request: pad the request")
                if len(err) > request_len:
                    self.stats.refuse("answer-too-large")
                    continue
                send = Send(err, send.dest, send.sock, send.at)
            out.append(send)
        return self._count(out)

    def _count(self, sends: list[Send]) -> list[Send]:
        for send in sends:
            self.stats.packets_out += 1
            self.stats.bytes_out += len(send.data)
        return sends

    # -- operations --------------------------------------------------------
    def _dispatch(self, body: dict[str, Any], s: _Source, src: Addr, now: float) -> list[Send]:
        if any(k in body for k in ("host", "addr", "address", "ip", "to", "dest")):
            self.stats.refuse("third-address")
            return [Send(self._error(body, "the responder only answers the sender"), src)]
        op = body.get("op")
        handler = {
            "hello": self._hello,
            "sip-echo": self._sip_echo,
            "probe-in": self._probe_in,
            "expect-out": self._expect_out,
            "report-out": self._report_out,
            "hold": self._hold,
            "tcp-in": self._tcp_in,
        }.get(op if isinstance(op, str) else "")
        if handler is None:
            return [Send(self._error(body, f"unknown op {op!r}"), src)]
        return handler(body, s, src, now)

    def _hello(self, body: dict[str, Any], s: _Source, src: Addr, now: float) -> list[Send]:
        return [Send(self._reply(body, src, seen=[src[0], src[1]]), src)]

    def _sip_echo(self, body: dict[str, Any], s: _Source, src: Addr, now: float) -> list[Send]:
        s.echo_until = now + self.limits.echo_window
        s.echoes_left = self.limits.echoes_per_window
        return [Send(self._reply(body, src, seen=[src[0], src[1]]), src)]

    def _probe_in(self, body: dict[str, Any], s: _Source, src: Addr, now: float) -> list[Send]:
        raw_ports = body.get("ports")
        ports: list[int] = raw_ports if _port_list(raw_ports) else []
        token = _token(body)
        lim = self.limits
        if not ports or len(ports) > lim.probes_per_request:
            return [Send(self._error(body, f"ports: 1 to {lim.probes_per_request} ports"), src)]
        while s.probes and now - s.probes[0][0] > 60.0:
            s.probes.popleft()
        used = sum(n for _, n in s.probes)
        if used + len(ports) > lim.probe_packets_per_minute:
            self.stats.refuse("probe-budget")
            return [Send(self._error(body, "probe budget for this minute used up"), src)]
        s.probes.append((now, len(ports)))
        # "control": as a reply on the flow the requester opened (symmetric RTP);
        # "probe": from a port it never sent to (a PBX's media sending first)
        sock: Sock = "control" if body.get("via") == "control" else "probe"
        sends = [Send(probe_in_packet(token, p), (src[0], p), sock, now) for p in ports]
        return [Send(self._reply(body, src, sent=len(ports)), src), *sends]

    def _tcp_in(self, body: dict[str, Any], s: _Source, src: Addr, now: float) -> list[Send]:
        """Connect back to a few TCP ports of the sender (a SIP port over TCP/TLS)."""
        raw_ports = body.get("ports")
        ports: list[int] = raw_ports if _port_list(raw_ports) else []
        token = _token(body)
        if not ports or len(ports) > 4:
            return [Send(self._error(body, "ports: 1 to 4 TCP ports"), src)]
        while s.probes and now - s.probes[0][0] > 60.0:
            s.probes.popleft()
        if sum(n for _, n in s.probes) + len(ports) > self.limits.probe_packets_per_minute:
            self.stats.refuse("probe-budget")
            return [Send(self._error(body, "probe budget for this minute used up"), src)]
        s.probes.append((now, len(ports)))
        data = PROBE_TCP + token.encode()
        sends = [Send(data, (src[0], p), "tcp", now) for p in ports]
        return [Send(self._reply(body, src, sent=len(ports)), src), *sends]

    def _expect_out(self, body: dict[str, Any], s: _Source, src: Addr, now: float) -> list[Send]:
        token = _token(body)
        if not token or len(s.seen_out) >= 8:
            return [Send(self._error(body, "token missing or too many open"), src)]
        s.seen_out[token] = {}
        return [Send(self._reply(body, src), src)]

    def _report_out(self, body: dict[str, Any], s: _Source, src: Addr, now: float) -> list[Send]:
        token = _token(body)
        seen = s.seen_out.pop(token, None)
        if seen is None:
            return [Send(self._error(body, "unknown token"), src)]
        pairs = sorted(seen.items())
        return [Send(self._reply(body, src, seen=[[a, b] for a, b in pairs]), src)]

    def _hold(self, body: dict[str, Any], s: _Source, src: Addr, now: float) -> list[Send]:
        """Answer now and again after ``pause`` s: did the NAT keep the mapping that long?"""
        pause = body.get("pause")
        lim = self.limits
        if not isinstance(pause, int | float) or not 0 < pause <= lim.hold_max_pause:
            return [Send(self._error(body, f"pause: 0 to {lim.hold_max_pause} s"), src)]
        while s.holds and s.holds[0] < now:
            s.holds.popleft()
        if len(s.holds) >= lim.holds_open:
            return [Send(self._error(body, "too many holds open"), src)]
        s.holds.append(now + pause)
        first = self._reply(body, src, phase="now")
        later = self._reply(body, src, phase="later")
        return [Send(first, src), Send(later, src, "control", now + float(pause))]


def _port_list(ports: object) -> TypeGuard[list[int]]:
    return (
        isinstance(ports, list)
        and bool(ports)
        and all(isinstance(p, int) and 1 <= p <= 65535 for p in ports)
    )


def compact_ranges(ports: Iterable[int]) -> str:
    """``16384-16390,16400`` from a set of ports."""
    out: list[str] = []
    run: list[int] = []
    for p in sorted(set(ports)):
        if run and p == run[-1] + 1:
            run.append(p)
            continue
        if run:
            out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
        run = [p]
    if run:
        out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
    return ",".join(out)
