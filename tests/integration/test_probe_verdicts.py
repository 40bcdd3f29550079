"""Verdicts that point the right way (issue 8 §4), each from a real socket.

* a PBX that answers from another address: a loopback peer that receives on
  127.0.0.1 and answers from 127.0.0.2 (a second interface);
* TLS to a port that speaks plain SIP (Kamailio's TCP port) or nothing;
* the ladder and the pcap keep what could not be parsed or connected.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from qsipctl.net.pcap import pcapng_bytes
from qsipctl.probes.base import ProbeOutcome
from qsipctl.probes.runner import run_probes
from qsipctl.probes.target import adhoc_target
from qsipctl.report.probes import render_ladders
from tests.fixtures.kamailio import Kamailio

pytestmark = pytest.mark.integration


def _answer_for(request: bytes) -> bytes:
    head = request.split(b"\r\n\r\n", 1)[0].decode()
    keep = [
        line
        for line in head.split("\r\n")[1:]
        if line.split(":", 1)[0] in ("Via", "From", "To", "Call-ID", "CSeq")
    ]
    return ("SIP/2.0 200 OK\r\n" + "\r\n".join(keep) + "\r\nContent-Length: 0\r\n\r\n").encode()


def _options(uri: str, transport: str, timeout: float = 2.0) -> ProbeOutcome:
    t = adhoc_target(uri, transport=transport, password=None, need_user=False, timeout=timeout)
    [outcome] = run_probes([("options", t)])
    return outcome


@pytest.fixture
def multihomed() -> Iterator[tuple[int, int]]:
    """Receives on 127.0.0.1, answers from 127.0.0.2: two interfaces of one PBX."""
    inside = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    inside.bind(("127.0.0.1", 0))
    other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    other.bind(("127.0.0.2", 0))
    inside.settimeout(5)

    def serve() -> None:
        try:
            data, addr = inside.recvfrom(65536)
            other.sendto(_answer_for(data), addr)
        except OSError:
            pass

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield inside.getsockname()[1], other.getsockname()[1]
    inside.close()
    other.close()
    t.join(timeout=5)


def test_an_answer_from_another_address_is_used_and_named(multihomed: tuple[int, int]) -> None:
    port, answer_port = multihomed
    r = _options(f"sip:127.0.0.1:{port}", "udp").result
    assert r.ok and r.status == 200, r.message
    assert any(
        w.startswith(f"the answer came from 127.0.0.2:{answer_port}, not 127.0.0.1:{port}")
        and "multi-homed" in w
        and "firewall" in w
        for w in r.warnings
    ), r.warnings


def test_tls_to_the_plain_sip_port_says_so(kamailio: Kamailio) -> None:
    outcome = _options(f"sip:127.0.0.1:{kamailio.tcp_port}", "tls")
    r = outcome.result
    assert (r.ok, r.verdict) == (False, "no-tls"), r.message
    assert "plain SIP or nothing" in r.message and "5061" in r.message
    # the failed attempt is evidence: one SYN with the reason as its comment
    capture = pcapng_bytes(outcome.traces)
    assert b"connection attempt" in capture and b"plain SIP or nothing over TLS" in capture


def test_tls_to_a_silent_port_says_so() -> None:
    with socket.create_server(("127.0.0.1", 0)) as srv:  # accepts, never speaks
        r = _options(f"sip:127.0.0.1:{srv.getsockname()[1]}", "tls", timeout=1.0).result
    assert (r.ok, r.verdict) == (False, "no-tls"), r.message


def test_the_ladder_shows_answers_it_could_not_parse() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer:
        peer.bind(("127.0.0.1", 0))
        peer.settimeout(5)

        def babble() -> None:
            try:
                _, addr = peer.recvfrom(4096)
                peer.sendto(b"SIP/2.0 2000 Way Too OK\r\n\r\n", addr)
            except OSError:
                pass

        t = threading.Thread(target=babble, daemon=True)
        t.start()
        outcome = _options(f"sip:127.0.0.1:{peer.getsockname()[1]}", "udp", timeout=1.0)
        t.join(timeout=5)
    ladder = render_ladders([outcome])
    assert "unparsable: 'SIP/2.0 2000 Way Too OK'" in ladder


def test_pcap_of_a_refused_tcp_connection_is_not_empty(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as srv:
        port = srv.getsockname()[1]
    outcome = _options(f"sip:127.0.0.1:{port}", "tcp", timeout=1.0)
    assert outcome.result.verdict == "refused"
    assert b"connection refused" in pcapng_bytes(outcome.traces)
