"""Transport edge cases no well-behaved registrar produces, with small loopback peers.

Kamailio proves the normal paths; these peers misbehave on purpose: a TCP
server that hangs up without answering, one that dribbles its answer a few
bytes at a time, and a UDP peer that answers garbage.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator

import pytest

from qsipctl.probes.register_flow import BIND, QUERY, RegisterPolicy
from qsipctl.probes.runner import run_probes
from qsipctl.probes.target import adhoc_target
from qsipctl.site.secrets import Secret

pytestmark = pytest.mark.integration


def _answer_for(request: bytes) -> bytes:
    head = request.split(b"\r\n\r\n", 1)[0].decode()
    keep = [
        line
        for line in head.split("\r\n")[1:]
        if line.split(":", 1)[0] in ("Via", "From", "To", "Call-ID", "CSeq")
    ]
    return ("SIP/2.0 200 OK\r\n" + "\r\n".join(keep) + "\r\nContent-Length: 0\r\n\r\n").encode()


@pytest.fixture
def tcp_peer() -> Iterator[Callable[[Callable[[socket.socket], None]], int]]:
    threads: list[threading.Thread] = []
    servers: list[socket.socket] = []

    def start(handle: Callable[[socket.socket], None]) -> int:
        srv = socket.create_server(("127.0.0.1", 0))
        servers.append(srv)

        def serve() -> None:
            conn, _ = srv.accept()
            with conn:
                handle(conn)

        t = threading.Thread(target=serve, daemon=True)
        t.start()
        threads.append(t)
        return int(srv.getsockname()[1])

    yield start
    for srv in servers:
        srv.close()
    for t in threads:
        t.join(timeout=5)


def _read_request(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def _options(port: int, transport: str = "tcp", timeout: float = 3.0):
    t = adhoc_target(
        f"sip:127.0.0.1:{port}", transport=transport, password=None, need_user=False,
        timeout=timeout,
    )  # fmt: skip
    [outcome] = run_probes([("options", t)])
    return outcome


def test_server_hanging_up_is_closed_verdict(tcp_peer) -> None:
    port = tcp_peer(lambda conn: _read_request(conn))  # read, then close without a word
    r = _options(port).result
    assert (r.ok, r.verdict) == (False, "closed")


def test_answer_dribbled_in_tiny_segments_is_reassembled(tcp_peer) -> None:
    def dribble(conn: socket.socket) -> None:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        answer = b"\r\n\r\n" + _answer_for(_read_request(conn))  # a keep-alive first
        for i in range(0, len(answer), 7):
            conn.sendall(answer[i : i + 7])
        conn.recv(10)  # wait for the client to hang up

    port = tcp_peer(dribble)
    outcome = _options(port)
    assert outcome.result.ok, outcome.result.message
    [trace] = outcome.traces
    inbound = [s for s in trace.segments if s.direction == "in"]
    assert b"".join(s.data for s in inbound).endswith(b"Content-Length: 0\r\n\r\n")


def test_udp_garbage_is_dropped_and_named_in_the_verdict() -> None:
    # RFC 3261 18.3 drops it, but "nothing came back" would send the engineer
    # hunting for a firewall when the server did answer
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer:
        peer.bind(("127.0.0.1", 0))
        port = peer.getsockname()[1]

        def babble() -> None:
            peer.settimeout(3)
            try:
                _, addr = peer.recvfrom(4096)
                peer.sendto(b"HELLO THIS IS NOT SIP\r\n\r\n", addr)
            except OSError:
                pass

        t = threading.Thread(target=babble, daemon=True)
        t.start()
        r = _options(port, "udp", timeout=1.0).result
        t.join(timeout=5)
    assert (r.ok, r.verdict) == (False, "transport")
    assert "unparsable data from the server on udp (1 datagram(s) dropped)" in r.message
    assert "nothing came back" not in r.message


def test_register_secret_never_in_the_wire_trace(tcp_peer) -> None:
    port = tcp_peer(lambda conn: conn.sendall(_answer_for(_read_request(conn))))
    t = adhoc_target(
        f"sip:1001@127.0.0.1:{port}", transport="tcp", password=Secret.parse("hunter2-secret")
    )
    [outcome] = run_probes([("register", t)])
    assert outcome.result.ok  # not challenged: accepted without sending any credentials
    assert outcome.result.algorithm is None
    wire = b"".join(s.data for tr in outcome.traces for s in tr.segments)
    assert b"hunter2" not in wire and b"Authorization" not in wire


def _udp_peer(answer: Callable[[bytes, int], bytes], requests: int = 6):
    """A UDP peer answering each request with ``answer(request, n)``; returns (port, thread)."""
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind(("127.0.0.1", 0))
    peer.settimeout(3)

    def serve() -> None:
        with peer:
            for n in range(requests):
                try:
                    data, addr = peer.recvfrom(65535)
                except OSError:
                    return
                peer.sendto(answer(data, n), addr)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    return peer.getsockname()[1], t


def _register(port: int, timeout: float = 2.0, policy: RegisterPolicy = QUERY):
    t = adhoc_target(
        f"sip:1001@127.0.0.1:{port}", transport="udp", password=Secret.parse("pw"),
        timeout=timeout,
    )  # fmt: skip
    [outcome] = run_probes([("register", t)], policy=policy)
    return outcome.result


def test_endless_stale_challenges_are_not_called_a_wrong_password() -> None:
    def stale(request: bytes, n: int) -> bytes:
        return _answer_for(request).replace(
            b"SIP/2.0 200 OK",
            b'SIP/2.0 401 Unauthorized\r\nWWW-Authenticate: Digest realm="r", '
            + f'nonce="n{n}", qop="auth", stale=true'.encode(),
        )

    port, t = _udp_peer(stale)
    r = _register(port)
    t.join(timeout=5)
    assert (r.ok, r.verdict) == (False, "rejected")
    assert "never took our answer" in r.message


def test_a_page_long_reason_phrase_is_cut_short() -> None:
    def long_reason(request: bytes, n: int) -> bytes:
        return _answer_for(request).replace(b"200 OK", b"500 " + b"x" * 5000)

    port, t = _udp_peer(long_reason)
    r = _register(port)
    t.join(timeout=5)
    assert (r.ok, r.verdict, r.status) == (False, "server-error", 500)
    assert len(r.message) < 200 and r.message.endswith("...")


def test_unregistration_without_answer_keeps_the_registration_verdict() -> None:
    # the query and our binding are accepted; the Expires: 0 one is never answered
    port, t = _udp_peer(lambda req, n: _answer_for(req) if n <= 1 else b"")  # b"": silence
    r = _register(port, timeout=1.0, policy=BIND)
    t.join(timeout=5)
    assert (r.ok, r.verdict, r.unregistered) == (True, "ok", False)
    assert any(w.startswith("unregistering failed: no answer") for w in r.warnings), r.warnings
    # and the binding that may remain is reported with its expiry
    assert r.leftover is not None and r.leftover["expires"] == 3600
    assert any("may remain bound for up to 3600 s" in w for w in r.warnings), r.warnings


def test_unreadable_answer_to_our_binding_still_unregisters() -> None:
    """The 200 to our binding arrives as bytes that are not SIP: the PBX may have bound us.

    The probe fails (it cannot read the answer) but sends Expires: 0 all the
    same, and the peer's 200 to that is reported as the binding removed.
    """
    seen: list[bytes] = []

    def answer(request: bytes, n: int) -> bytes:
        seen.append(request)
        if b"\r\nContact:" in request and b"\r\nExpires: 0\r\n" not in request:
            return b"SIP/2.0 200 OK\r\nthis is no header\r\n\r\n"  # the binding's "answer"
        return _answer_for(request)  # the query, and the unregistration

    port, t = _udp_peer(answer, requests=12)
    r = _register(port, timeout=1.0, policy=BIND)
    t.join(timeout=5)
    assert (r.ok, r.verdict) == (False, "transport")
    assert "unparsable data" in r.message
    assert r.unregistered is True and r.leftover is None
    assert b"\r\nExpires: 0\r\n" in seen[-1]
    assert any("may have bound us, so the binding is removed anyway" in w for w in r.warnings)
