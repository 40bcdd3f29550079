"""RFC 3261 §17 transactions, driven by a fake clock: a 32 s Timer B runs in microseconds."""

from __future__ import annotations

from itertools import pairwise

import pytest

from qsipctl.sip.message import Request, Response, parse_message
from qsipctl.sip.transaction import (
    ClientTransaction,
    Peer,
    ServerTransaction,
    client_key,
    make_response,
    new_branch,
    server_key,
)

BRANCH = "z9hG4bKabc123"
UDP = Peer("udp", "127.0.0.1", 5060)  # retransmissions and lingering
TCP = Peer("tcp", "127.0.0.1", 5060)  # reliable: neither


def request(method="INVITE", branch=BRANCH, cseq=1, cseq_method=None, extra="") -> Request:
    text = (
        f"{method} sip:bob@127.0.0.1 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:5070;branch={branch}\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.9:5060;branch=z9hG4bKupstream\r\n"
        "Route: <sip:127.0.0.2;lr>\r\n"
        "Max-Forwards: 70\r\n"
        "From: <sip:alice@127.0.0.1>;tag=ftag\r\n"
        "To: <sip:bob@127.0.0.1>\r\n"
        "Call-ID: call-1@127.0.0.1\r\n"
        f"CSeq: {cseq} {cseq_method or method}\r\n"
        f"{extra}"
        "Content-Length: 0\r\n\r\n"
    )
    msg = parse_message(text.encode())
    assert isinstance(msg, Request)
    return msg


def response(req: Request, status: int, to_tag: str | None = "ttag") -> Response:
    return make_response(req, status, "Reason", to_tag=to_tag if status > 100 else None)


def run_timers(tx, until: float) -> list[tuple[float, int]]:
    """Fire timers up to ``until``; return (time, datagrams sent) at each firing."""
    sent = []
    while (t := tx.next_timer()) is not None and t <= until:
        tx.handle_timer(t)
        n = len(tx.datagrams_to_send())
        if n:
            sent.append((round(t, 6), n))
    return sent


def test_new_branch_has_magic_cookie_and_80_random_bits():
    branch = new_branch()
    assert branch.startswith("z9hG4bK") and len(branch) == len("z9hG4bK") + 20
    assert new_branch() != branch


def test_invite_client_timer_a_doubles_and_timer_b_times_out_after_64_t1():
    tx = ClientTransaction(request(), peer=UDP, now=0.0)
    assert tx.state == "calling" and len(tx.datagrams_to_send()) == 1
    sent = run_timers(tx, 100.0)
    assert [t for t, _ in sent] == [0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    assert tx.state == "terminated"
    assert tx.failure == "timeout" and tx.terminated


def test_invite_client_over_tcp_never_retransmits():
    tx = ClientTransaction(request(), peer=TCP, now=0.0)
    tx.datagrams_to_send()
    assert run_timers(tx, 100.0) == []
    assert tx.failure == "timeout" and tx.terminated


def test_invite_client_provisional_stops_retransmission_and_timeout():
    req = request()
    tx = ClientTransaction(req, peer=UDP, now=0.0)
    tx.receive(response(req, 180), 0.2)
    assert tx.state == "proceeding"
    assert tx.next_timer() is None
    assert tx.responses()[0].status == 180


def test_invite_client_non_2xx_generates_ack_and_waits_timer_d():
    req = request()
    tx = ClientTransaction(req, peer=UDP, now=0.0)
    tx.datagrams_to_send()
    final = response(req, 486)
    tx.receive(final, 1.0)
    assert tx.state == "completed"
    (ack_bytes,) = tx.datagrams_to_send()
    ack = parse_message(ack_bytes.data)
    assert ack.method == "ACK" and ack.uri == req.uri
    assert ack.cseq == (1, "ACK")
    assert ack.top_via.params["branch"] == BRANCH and len(ack.headers.get_all("Via")) == 1
    assert ack.to_tag == "ttag" and ack.from_tag == "ftag" and ack.call_id == req.call_id
    assert ack.headers.get_all("Route") == req.headers.get_all("Route")
    assert tx.responses() == [final]
    # a retransmitted final response gets the ACK again and is not passed up
    tx.receive(final, 2.0)
    assert tx.datagrams_to_send() == [ack_bytes]
    assert tx.responses() == []
    assert tx.next_timer() == pytest.approx(33.0)
    tx.handle_timer(33.0)
    assert tx.state == "terminated" and tx.failure is None


def test_invite_client_reliable_completes_at_once():
    req = request()
    tx = ClientTransaction(req, peer=TCP, now=0.0)
    tx.receive(response(req, 404), 0.1)
    assert tx.state == "terminated"
    assert len(tx.datagrams_to_send()) == 2  # INVITE and ACK


def test_invite_client_2xx_is_accepted_per_rfc6026_and_leaves_ack_to_the_tu():
    req = request()
    tx = ClientTransaction(req, peer=UDP, now=0.0)
    tx.datagrams_to_send()
    ok = response(req, 200)
    tx.receive(ok, 0.1)
    assert tx.state == "accepted"
    tx.receive(ok, 0.6)  # a retransmitted 2xx still reaches the TU, which ACKs it
    assert tx.datagrams_to_send() == []
    assert tx.responses() == [ok, ok]
    assert run_timers(tx, 10.0) == []  # no retransmission of the INVITE
    assert tx.next_timer() == pytest.approx(32.1)  # Timer M
    tx.handle_timer(32.1)
    assert tx.responses() == [] and tx.terminated and tx.failure is None


def test_non_invite_client_timer_e_caps_at_t2_and_timer_f():
    tx = ClientTransaction(request("REGISTER"), peer=UDP, now=0.0)
    assert tx.state == "trying"
    tx.datagrams_to_send()
    times = [t for t, _ in run_timers(tx, 100.0)]
    assert times[:5] == [0.5, 1.5, 3.5, 7.5, 11.5]  # 0.5, 1, 2, 4, 4, ...
    assert all(b - a == pytest.approx(4.0) for a, b in pairwise(times[3:]))
    assert times[-1] < 32.0
    assert tx.failure == "timeout" and tx.terminated


def test_non_invite_client_proceeding_retransmits_every_t2():
    req = request("REGISTER")
    tx = ClientTransaction(req, peer=UDP, now=0.0)
    tx.receive(response(req, 100, None), 0.1)
    assert tx.state == "proceeding"
    tx.datagrams_to_send()
    tx.handle_timer(0.5)
    assert tx.next_timer() == pytest.approx(4.5)


def test_non_invite_client_final_then_timer_k():
    req = request("REGISTER")
    tx = ClientTransaction(req, peer=UDP, now=0.0)
    tx.receive(response(req, 401), 0.05)
    assert tx.state == "completed"
    tx.receive(response(req, 401), 0.06)  # retransmission: absorbed
    assert [r.status for r in tx.responses()] == [401]
    assert tx.next_timer() == pytest.approx(5.05)  # Timer K = T4
    tx.handle_timer(5.05)
    assert tx.terminated


def test_reliable_transport_only_times_out_after_64_t1():
    tx = ClientTransaction(request("OPTIONS"), peer=TCP, now=10.0)
    assert tx.next_timer() == pytest.approx(10.0 + 64 * 0.5)  # Timer F, no Timer E


def test_transport_error_terminates():
    tx = ClientTransaction(request("OPTIONS"), peer=UDP, now=0.0)
    tx.transport_error(0.1)
    assert tx.failure == "transport" and tx.terminated
    assert tx.next_timer() is None


def test_client_key_matches_response_to_its_transaction_but_not_cancel():
    req = request()
    assert client_key(response(req, 200)) == client_key(req) == (BRANCH, "INVITE")
    cancel = request("CANCEL")
    assert client_key(response(cancel, 200)) != client_key(req)


def test_server_key_ack_matches_invite_and_cancel_does_not():
    inv = request()
    assert server_key(request("ACK", cseq_method="ACK")) == server_key(inv)
    assert server_key(request("CANCEL")) != server_key(inv)
    assert server_key(request(branch="z9hG4bKother")) != server_key(inv)


def test_server_key_rfc2543_fallback():
    a = request(branch="oldbranch")
    assert server_key(a) == server_key(request(branch="oldbranch"))
    assert server_key(a) != server_key(request(branch="oldbranch", cseq=2))
    assert server_key(request("ACK", branch="oldbranch", cseq_method="ACK")) == server_key(a)


def test_invite_server_sends_trying_then_retransmits_final_with_timer_g_until_ack():
    req = request()
    tx = ServerTransaction(req, peer=UDP, now=0.0)
    (trying,) = tx.datagrams_to_send()
    assert parse_message(trying.data).status == 100
    tx.receive(req, 0.2)  # INVITE retransmission: repeat the provisional
    assert tx.datagrams_to_send() == [trying]
    tx.send_response(response(req, 486), 1.0)
    assert tx.state == "completed"
    tx.datagrams_to_send()
    sent = run_timers(tx, 4.0)
    assert [t for t, _ in sent] == [1.5, 2.5]
    tx.receive(request("ACK", cseq_method="ACK"), 4.0)
    assert tx.state == "confirmed" and tx.next_timer() is not None
    assert tx.next_timer() == pytest.approx(9.0)  # Timer I = T4
    tx.handle_timer(9.0)
    assert tx.terminated


def test_invite_server_timer_h_without_ack():
    req = request()
    tx = ServerTransaction(req, peer=UDP, now=0.0)
    tx.send_response(response(req, 500), 0.0)
    run_timers(tx, 100.0)
    assert tx.failure == "timeout" and tx.terminated


def test_invite_server_2xx_is_accepted_per_rfc6026_until_timer_l():
    req = request()
    tx = ServerTransaction(req, peer=TCP, now=0.0)
    tx.datagrams_to_send()
    ok = response(req, 200)
    tx.send_response(ok, 0.0)
    assert tx.state == "accepted"
    tx.receive(req, 0.5)  # a retransmitted INVITE is absorbed, not a new call
    tx.send_response(ok, 0.5)  # the TU's own 2xx retransmission goes out
    assert [t.data for t in tx.datagrams_to_send()] == [ok.to_bytes(), ok.to_bytes()]
    tx.receive(request("ACK", cseq_method="ACK"), 0.6)
    assert tx.state == "accepted" and tx.datagrams_to_send() == []
    assert tx.next_timer() == pytest.approx(32.0)  # Timer L
    tx.handle_timer(32.0)
    assert tx.terminated


def test_non_invite_server_absorbs_retransmissions_and_repeats_final_until_timer_j():
    req = request("REGISTER")
    tx = ServerTransaction(req, peer=UDP, now=0.0)
    assert tx.state == "trying" and tx.datagrams_to_send() == []
    tx.receive(req, 0.1)
    assert tx.datagrams_to_send() == []
    tx.send_response(response(req, 200), 0.2)
    (final,) = tx.datagrams_to_send()
    tx.receive(req, 1.0)
    assert tx.datagrams_to_send() == [final]
    tx.send_response(response(req, 500), 1.1)  # a second final answer is refused
    assert tx.datagrams_to_send() == []
    assert tx.next_timer() == pytest.approx(32.2)
    tx.handle_timer(32.2)
    assert tx.terminated


def test_non_invite_server_reliable_terminates_on_final():
    req = request("OPTIONS")
    tx = ServerTransaction(req, peer=TCP, now=0.0)
    tx.send_response(response(req, 200), 0.0)
    assert tx.terminated and len(tx.datagrams_to_send()) == 1


def test_make_response_adds_to_tag_and_copies_vias():
    req = request("REGISTER")
    resp = make_response(req, 200, "OK", to_tag="xyz")
    assert (
        resp.to_tag == "xyz"
        and len(resp.headers.get_all("Via")) == 2
        and resp.cseq == (1, "REGISTER")
    )
    assert make_response(req, 100, "Trying").to_tag is None


def test_make_response_refuses_a_request_missing_mandatory_headers():
    from qsipctl.sip.errors import SipParseError

    raw = request("OPTIONS").to_bytes()
    for header in (b"Call-ID: call-1@127.0.0.1\r\n", b"CSeq: 1 OPTIONS\r\n"):
        broken = parse_message(raw.replace(header, b""))
        with pytest.raises(SipParseError):
            make_response(broken, 400, "Bad Request")
