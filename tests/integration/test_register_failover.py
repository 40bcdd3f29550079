"""RFC 3263 §4.3 failover: SRV lists two servers on loopback, the first is no good.

The ``failover_dns`` fixture (tests/fixtures/dnsmasq.py) serves SRV records
for ``*.failover.test`` whose first (priority 10) target is a UDP socket that
never answers, a tiny responder that answers every request with 503, or a
port nobody listens on; the second (priority 20) is the real Kamailio.  The
probe must move on with a new transaction and report both in ``tried``.
"""

from __future__ import annotations

import pytest

from qsipctl.probes.register_flow import BIND
from qsipctl.probes.runner import run_probes
from qsipctl.probes.target import adhoc_target
from qsipctl.site.secrets import Secret
from tests.fixtures.dnsmasq import Dnsmasq

pytestmark = pytest.mark.integration

PER_SERVER_TIMEOUT = 1.0


def _register(d: Dnsmasq, name: str, password: str = "secret-1001"):
    t = adhoc_target(
        f"sip:1001@{name}.failover.test",
        transport="udp",
        password=Secret.parse(password),
        timeout=PER_SERVER_TIMEOUT,
        nameserver=d.nameserver,
    )
    [outcome] = run_probes([("register", t)], policy=BIND)  # the binding test: bound, removed
    return outcome


def test_silent_first_server_times_out_then_second_registers(failover_dns, kamailio) -> None:
    d, silent, _, _ = failover_dns
    outcome = _register(d, "silent")
    r = outcome.result
    assert r.ok, (r.message, r.tried)
    assert r.server == f"127.0.0.1:{kamailio.udp_port}"
    first = f"127.0.0.1:{silent.getsockname()[1]}"
    assert [(t["server"], t["verdict"]) for t in r.tried] == [
        (first, "timeout"),
        (r.server, "ok"),
    ]
    assert r.warnings[0] == f"failed over (RFC 3263) from: {first} timeout"
    assert r.unregistered is True
    # the first server got (retransmissions of) one REGISTER; the second a new transaction
    branches = []
    for trace in outcome.traces:
        for seg in trace.segments:
            if seg.direction == "out":
                via = seg.data.split(b"\r\nVia: ", 1)[1].split(b"\r\n", 1)[0]
                branches.append((trace.remote, via.split(b"branch=")[1].split(b";")[0]))
    silent_branches = {b for remote, b in branches if remote[1] == silent.getsockname()[1]}
    kam_branches = {b for remote, b in branches if remote[1] == kamailio.udp_port}
    assert len(silent_branches) == 1 and kam_branches and not silent_branches & kam_branches


def test_503_from_first_server_moves_on(failover_dns, kamailio) -> None:
    d, _, busy, _ = failover_dns
    before = len(busy.requests)
    r = _register(d, "busy").result
    assert r.ok, (r.message, r.tried)
    assert [t["verdict"] for t in r.tried] == ["server-error", "ok"]
    assert r.tried[0]["server"] == f"127.0.0.1:{busy.port}"
    assert r.tried[0]["message"].endswith("503 Service Unavailable")
    assert len(busy.requests) == before + 1  # a final 503: no retransmission, no retry there
    assert kamailio.contacts("1001") == []  # and unregistered at the server that took it


def test_nothing_listening_on_first_udp_port_moves_on(failover_dns, kamailio) -> None:
    d, _, _, closed = failover_dns
    r = _register(d, "closed").result
    assert r.ok, (r.message, r.tried)
    assert r.tried[0]["server"] == f"127.0.0.1:{closed}"
    assert r.tried[0]["verdict"] == "refused"  # ICMP port unreachable on loopback
    assert r.tried[1]["server"] == f"127.0.0.1:{kamailio.udp_port}"


def test_every_server_503_gives_the_last_verdict(failover_dns) -> None:
    d = failover_dns[0]
    r = _register(d, "allbusy").result
    assert (r.ok, r.verdict, r.status) == (False, "server-error", 503)
    assert [t["verdict"] for t in r.tried] == ["server-error", "server-error"]


def test_wrong_password_is_not_failed_over(failover_dns, kamailio) -> None:
    d = failover_dns[0]
    r = _register(d, "busy", password="nope").result
    # the 503 moves on; the second server's 401-again is its verdict, not a reason to move
    assert (r.ok, r.verdict) == (False, "wrong-password")
    assert len(r.tried) == 2


def test_options_fails_over_too(failover_dns, kamailio) -> None:
    d = failover_dns[0]
    t = adhoc_target(
        "sip:silent.failover.test",
        transport="udp",
        password=None,
        timeout=PER_SERVER_TIMEOUT,
        nameserver=d.nameserver,
        need_user=False,
    )
    [outcome] = run_probes([("options", t)])
    r = outcome.result
    assert r.ok, (r.message, r.tried)
    assert [t["verdict"] for t in r.tried] == ["timeout", "ok"]
    assert "OPTIONS" in r.allow
