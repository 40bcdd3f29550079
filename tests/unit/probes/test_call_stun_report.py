"""The call report's STUN lines: both mappings and the problem, in the table and the JSON."""

from __future__ import annotations

from qsipctl.probes.call import CallReport


def test_both_mappings_and_the_pool_problem_are_shown() -> None:
    r = CallReport(stun_mapped="198.19.0.1:40012", stun_rtp_mapped="198.19.0.4:45002",
                   offered_address="198.19.0.4", offered_port=45002,
                   stun_rtp_problem="address-dependent NAT pool: x")  # fmt: skip
    table = r.render()
    assert "offered address  198.19.0.4:45002" in table
    assert "SIP socket 198.19.0.1:40012, RTP socket 198.19.0.4:45002" in table
    assert "address-dependent NAT pool" in table
    doc = r.as_dict()
    assert doc["stun_rtp_mapped"] == "198.19.0.4:45002" and doc["offered_port"] == 45002


def test_no_stun_no_stun_lines() -> None:
    table = CallReport(offered_address="10.0.0.1", offered_port=16384).render()
    assert "STUN" not in table and "10.0.0.1:16384" in table


def test_rtp_port_unanswered_is_shown() -> None:
    r = CallReport(stun_mapped="203.0.113.7:5060", stun_rtp_problem="STUN from the RTP port …")
    assert "RTP socket no answer" in r.render()
