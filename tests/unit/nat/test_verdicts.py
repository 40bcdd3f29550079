"""The plain-words verdicts and the port sampling, from data."""

from __future__ import annotations

from qsipctl.nat import verdicts
from qsipctl.nat.checks import EchoResult, PortState, alg_test_message, hold_pauses, sample_ports


def test_sampling_keeps_both_ends_and_its_size() -> None:
    ports = sample_ports(16384, 32768, 64)
    assert ports[0] == 16384 and ports[-1] == 32768
    assert len(ports) == 64 and ports == sorted(set(ports))
    assert sample_ports(20000, 20009, 64) == list(range(20000, 20010))


def test_describe_ranges() -> None:
    got = {16384: True, 16990: True, 17000: False, 32768: False}
    assert verdicts.describe_ranges(got) == "16384-16990 open, 17000-32768 blocked"


def test_partial_inbound_block_is_a_problem_with_the_ranges() -> None:
    states = [PortState(p, True, p, p < 17000, True) for p in (16384, 16990, 17000, 32768)]
    out = {f.check: f for f in verdicts.port_ranges(states, 16384, 32768, 4)}
    assert out["ports.inbound"].severity == "problem"
    assert "16384-16990 open, 17000-32768 blocked" in out["ports.inbound"].summary
    assert out["ports.replies"].severity == "ok"


def test_binding_timeout_against_registration() -> None:
    f = verdicts.binding_timeout({2: True, 4: True, 8: False}, 3600, None)
    assert f.severity == "problem"
    assert "between 4 and 8 s" in f.summary and "every 3600 s" in f.summary
    ok = verdicts.binding_timeout({2: True, 4: True}, 3600, None)
    assert ok.severity == "ok"
    assert hold_pauses(16) == [2, 4, 8, 16]


def test_echo_names_what_was_rewritten() -> None:
    sent = alg_test_message("198.18.0.2", 5060, "198.19.0.3", 16384)
    got = sent.replace(b"198.18.0.2:5060", b"198.19.0.1:5060").replace(
        b"IN IP4 198.18.0.2", b"IN IP4 198.19.0.1"
    )
    f = verdicts.echo(EchoResult(sent, got, ("198.19.0.1", 5060), ("198.18.0.2", 5060)))
    assert f.severity == "problem"
    assert f.summary == (
        "a SIP ALG on the router rewrote the Via, Contact, SDP address: turn it off"
    )
    same = verdicts.echo(EchoResult(sent, sent, None, ("198.18.0.2", 5060)))
    assert same.severity == "ok"


def test_registrar_view_flags_a_private_received() -> None:
    f = verdicts.registrar_view(
        "sip:1001@pbx", "198.18.0.2:40000", "198.18.0.2:40000", "198.19.0.1"
    )
    assert f.severity == "problem"
    g = verdicts.registrar_view(
        "sip:1001@pbx", "198.18.0.2:40000", "198.19.0.1:40000", "198.19.0.1"
    )
    assert g.severity == "ok"
