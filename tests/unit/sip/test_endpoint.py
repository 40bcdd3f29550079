"""The sans-IO endpoint and dialogs on a fake clock: no sockets, no sleeping.

Two endpoints ("alice" the UAC, "bob" the UAS) are wired back to back by
:class:`Wire`, which moves what one queues to the other and can drop
messages, so retransmissions and timers B/F/H/J are exercised in
microseconds.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from qsipctl.sip.dialog import ClientInvite, Dialog
from qsipctl.sip.endpoint import (
    Endpoint,
    Peer,
    RequestCancelled,
    RequestReceived,
    ResponseReceived,
    TransactionFailed,
    Transmit,
    Unparsable,
)
from qsipctl.sip.headers import Headers
from qsipctl.sip.message import Request, Response, parse_message
from qsipctl.sip.transaction import T1, new_branch

A = Peer("udp", "198.18.0.2", 5060)
B = Peer("udp", "198.19.0.5", 5060)


def request(method: str, cseq: int = 1, to_tag: str | None = None, call_id: str = "c1") -> Request:
    h = Headers()
    h.add("Via", f"SIP/2.0/UDP 198.18.0.2:5060;branch={new_branch()};rport")
    h.add("Max-Forwards", "70")
    h.add("From", "<sip:alice@pbx.test>;tag=a1")
    h.add("To", "<sip:bob@pbx.test>" + (f";tag={to_tag}" if to_tag else ""))
    h.add("Call-ID", call_id)
    h.add("CSeq", f"{cseq} {method}")
    h.add("Contact", "<sip:alice@198.18.0.2:5060>")
    return Request(method, "sip:bob@198.19.0.5", h)


class Wire:
    """Alice at A, Bob at B; ``drop`` counts messages to lose in each direction."""

    def __init__(self, accept: tuple[str, ...] = ("INVITE", "OPTIONS")) -> None:
        self.alice = Endpoint()
        self.bob = Endpoint(accept=accept)
        self.now = 0.0
        self.sent: list[tuple[str, Transmit]] = []
        self.drop_to_bob = 0
        self.drop_to_alice = 0

    def flush(self) -> None:
        moved = True
        while moved:
            moved = False
            for name, src, dst, frm in (
                ("a", self.alice, self.bob, A),
                ("b", self.bob, self.alice, B),
            ):
                for tr in src.datagrams_to_send():
                    moved = True
                    self.sent.append((name, tr))
                    if name == "a" and self.drop_to_bob:
                        self.drop_to_bob -= 1
                        continue
                    if name == "b" and self.drop_to_alice:
                        self.drop_to_alice -= 1
                        continue
                    dst.receive_datagram(tr.data, frm, self.now)

    def advance(self, until: float) -> None:
        """Run both endpoints' timers up to ``until`` (seconds of fake time)."""
        while True:
            times = [t for t in (self.alice.next_timer(), self.bob.next_timer()) if t is not None]
            if not times or min(times) > until:
                break
            self.now = min(times)
            self.alice.handle_timer(self.now)
            self.bob.handle_timer(self.now)
            self.flush()
        self.now = until

    def count(self, who: str, first_line: str) -> int:
        return sum(1 for n, tr in self.sent if n == who and tr.data.startswith(first_line.encode()))


def test_non_invite_retransmits_until_answered_then_absorbs_duplicates() -> None:
    w = Wire()
    w.drop_to_bob = 2  # the first two copies are lost
    tx = w.alice.send_request(request("OPTIONS"), B, w.now)
    w.flush()
    w.advance(1.6)  # Timer E: 0.5, then 1.0 later: third copy at 1.5 s
    assert w.count("a", "OPTIONS") == 3
    (got,) = [e for e in w.bob.events() if isinstance(e, RequestReceived)]
    w.bob.respond(got.tx, w.bob.response_for(got.tx, 200, "OK"), w.now)
    w.flush()
    final = [e for e in w.alice.events() if isinstance(e, ResponseReceived)]
    assert [e.response.status for e in final] == [200] and final[0].tx is tx
    w.alice.receive_datagram(w.sent[-1][1].data, B, w.now)  # a duplicate 200
    assert w.alice.events() == []


def test_timer_f_and_timer_b_fire_after_64_t1() -> None:
    w = Wire()
    w.drop_to_bob = 10**6
    opt = w.alice.send_request(request("OPTIONS"), B, 0.0)
    inv = w.alice.send_request(request("INVITE", call_id="c2"), B, 0.0)
    w.flush()
    w.advance(64 * T1 - 0.01)
    assert not [e for e in w.alice.events() if isinstance(e, TransactionFailed)]
    w.advance(64 * T1 + 0.01)
    failed = [e.tx for e in w.alice.events() if isinstance(e, TransactionFailed)]
    assert {tx.failure for tx in failed} == {"timeout"}
    timed_out = set(failed)
    assert timed_out == {opt, inv}
    assert w.count("a", "INVITE") == 7  # 0, .5, 1.5, 3.5, 7.5, 15.5, 31.5 s
    assert w.alice.next_timer() is None  # both transactions are gone


def test_invite_2xx_retransmissions_reach_the_dialog_which_acks_each() -> None:
    w = Wire()
    invite = request("INVITE")
    tx = w.alice.send_request(invite, B, 0.0)
    w.flush()
    (got,) = [e for e in w.bob.events() if isinstance(e, RequestReceived)]
    ok = w.bob.response_for(got.tx, 200, "OK")
    ok.headers.add("Contact", "<sip:bob@198.19.0.5:5060>")
    w.drop_to_alice = 1  # 100 Trying was delivered; lose the first 200
    w.bob.respond(got.tx, ok, w.now)
    w.flush()
    call = ClientInvite(invite)
    acks = 0
    w.advance(T1 + 0.01)  # bob repeats his 2xx (no ACK yet)
    w.advance(2 * T1 + 0.02)  # and again: alice sees each one
    for e in w.alice.events():
        if isinstance(e, ResponseReceived) and e.response.status == 200:
            assert e.tx is tx
            _, ack = call.on_response(e.response)
            assert ack is not None
            w.alice.send_stateless(ack, B)
            acks += 1
    w.flush()
    assert acks >= 1
    bob_seen = [e for e in w.bob.events() if isinstance(e, RequestReceived)]
    assert bob_seen == []  # bob knows no dialog yet: an ACK outside one is absorbed
    before = w.count("b", "SIP/2.0 200")
    w.advance(20.0)
    assert w.count("b", "SIP/2.0 200") == before  # the ACK stopped bob's 2xx


def test_cancel_crossing_a_200_still_gives_the_call_to_the_uac() -> None:
    w = Wire()
    invite = request("INVITE")
    tx = w.alice.send_request(invite, B, 0.0)
    w.flush()
    (got,) = [e for e in w.bob.events() if isinstance(e, RequestReceived)]
    ok = w.bob.response_for(got.tx, 200, "OK")
    ok.headers.add("Contact", "<sip:bob@198.19.0.5:5060>")
    w.bob.respond(got.tx, ok, w.now)  # bob answers...
    cancel = w.alice.cancel(tx, w.now)  # ...while alice's CANCEL is on its way
    w.flush()
    answers = {
        (e.tx is tx, e.response.status) for e in w.alice.events() if isinstance(e, ResponseReceived)
    }
    assert (True, 200) in answers  # the INVITE's 200: alice must ACK and then BYE
    assert (False, 200) in answers  # §9.2: the CANCEL matched, though it changes nothing
    assert cancel.request.method == "CANCEL"
    assert not [e for e in w.bob.events() if isinstance(e, RequestCancelled)]


def test_cancel_before_the_answer_gets_200_and_487() -> None:
    w = Wire()
    tx = w.alice.send_request(request("INVITE"), B, 0.0)
    w.flush()
    w.bob.events()
    w.alice.cancel(tx, w.now)
    w.flush()
    assert [type(e) for e in w.bob.events()] == [RequestCancelled]
    statuses = sorted(
        e.response.status for e in w.alice.events() if isinstance(e, ResponseReceived)
    )
    assert statuses == [100, 200, 487]
    assert w.count("a", "ACK") == 1  # the transaction ACKs the 487 itself


def test_requests_nobody_takes_are_answered_405_501_and_481() -> None:
    w = Wire(accept=("OPTIONS",))
    w.alice.send_request(request("SUBSCRIBE"), B, 0.0)
    w.alice.send_request(request("FROBNICATE", call_id="c3"), B, 0.0)
    w.alice.send_request(request("BYE", 2, to_tag="nosuch", call_id="c4"), B, 0.0)
    w.flush()
    got = {
        e.response.cseq[1]: e.response for e in w.alice.events() if isinstance(e, ResponseReceived)
    }
    assert got["SUBSCRIBE"].status == 405 and "OPTIONS" in got["SUBSCRIBE"].headers.get_all("Allow")
    assert got["FROBNICATE"].status == 501
    assert got["BYE"].status == 481
    assert all(r.to_tag for r in got.values())
    assert w.bob.events() == []


def test_bye_in_a_dialog_reaches_the_tu_and_gets_answered() -> None:
    w = Wire()
    invite = request("INVITE")
    w.alice.send_request(invite, B, 0.0)
    w.flush()
    (got,) = [e for e in w.bob.events() if isinstance(e, RequestReceived)]
    ok = w.bob.response_for(got.tx, 200, "OK")
    ok.headers.add("Contact", "<sip:bob@198.19.0.5:5060>")
    ok.headers.add("Record-Route", "<sip:198.19.0.9;lr>")
    ok.headers.add("Record-Route", "<sip:198.19.0.8;lr>")
    bob_dialog = Dialog.as_uas(invite, ok, via="SIP/2.0/UDP 198.19.0.5:5060")
    w.bob.dialogs.add(bob_dialog.key)
    w.bob.respond(got.tx, ok, w.now)
    w.flush()
    call = ClientInvite(invite)
    for e in w.alice.events():
        if isinstance(e, ResponseReceived) and e.response.status == 200:
            dialog, ack = call.on_response(e.response)
            assert dialog is not None and ack is not None
            w.alice.send_stateless(ack, B)
    w.flush()
    (ack_event,) = w.bob.events()
    assert isinstance(ack_event, RequestReceived) and ack_event.request.method == "ACK"
    assert ack_event.dialog == bob_dialog.key
    (dialog,) = call.dialogs.values()
    assert dialog.state == "confirmed"
    assert dialog.route_set == ["<sip:198.19.0.8;lr>", "<sip:198.19.0.9;lr>"]  # reversed (UAC)
    bye = dialog.create_request("BYE")
    assert bye.uri == "sip:bob@198.19.0.5:5060" and bye.cseq == (2, "BYE")
    assert bye.headers.get_all("Route") == dialog.route_set
    w.alice.dialogs.add(dialog.key)
    w.alice.send_request(bye, B, w.now)
    w.flush()
    (bye_event,) = w.bob.events()
    assert isinstance(bye_event, RequestReceived) and bye_event.request.method == "BYE"
    assert bob_dialog.receive_request(bye_event.request) is None
    assert bob_dialog.state == "terminated"
    assert bob_dialog.receive_request(bye_event.request) == 500  # the same CSeq again
    w.bob.respond(bye_event.tx, w.bob.response_for(bye_event.tx, 200, "OK"), w.now)
    w.flush()
    assert [e.response.status for e in w.alice.events() if isinstance(e, ResponseReceived)] == [200]


def test_forked_early_dialogs_are_kept_apart_per_to_tag() -> None:
    invite = request("INVITE")
    call = ClientInvite(invite)
    for tag, contact in (("f1", "sip:bob@198.19.0.6"), ("f2", "sip:bob@198.19.0.7")):
        h = Headers()
        for name in ("Via", "From", "Call-ID", "CSeq"):
            h.add(name, invite.headers.get(name) or "")
        h.add("To", f"<sip:bob@pbx.test>;tag={tag}")
        h.add("Contact", f"<{contact}>")
        dialog, ack = call.on_response(Response(180, "Ringing", h))
        assert dialog is not None and dialog.state == "early" and ack is None
    assert {d.remote_target for d in call.dialogs.values()} == {
        "sip:bob@198.19.0.6",
        "sip:bob@198.19.0.7",
    }


def test_timer_h_and_j_end_server_transactions() -> None:
    w = Wire()
    w.drop_to_alice = 10**6
    w.alice.send_request(request("OPTIONS"), B, 0.0)
    w.alice.send_request(request("INVITE", call_id="c9"), B, 0.0)
    w.flush()
    for e in w.bob.events():
        assert isinstance(e, RequestReceived) and e.tx is not None
        status = 200 if e.request.method == "OPTIONS" else 486
        w.bob.respond(e.tx, w.bob.response_for(e.tx, status, "x"), w.now)
    w.flush()
    assert w.bob.next_timer() is not None
    w.advance(64 * T1 + 0.01)  # Timer J (non-INVITE) and Timer H (no ACK for the 486)
    assert w.bob.next_timer() is None
    assert w.count("b", "SIP/2.0 486") > 3  # Timer G repeated it meanwhile


def test_garbage_is_reported_not_raised() -> None:
    e = Endpoint()
    e.receive_datagram(b"HELLO\r\n\r\n", A, 0.0)
    e.receive_datagram(b"\r\n\r\n", A, 0.0)  # a keep-alive is nothing
    (event,) = e.events()
    assert isinstance(event, Unparsable) and event.source == A
    assert parse_message(request("OPTIONS").to_bytes()).method == "OPTIONS"


@given(st.binary(max_size=300), st.sampled_from([b"", b"OPTIONS sip:x SIP/2.0\r\n"]))
def test_no_datagram_makes_the_endpoint_raise(junk: bytes, head: bytes) -> None:
    e = Endpoint(accept=("OPTIONS",))
    e.receive_datagram(head + junk, A, 0.0)
    e.handle_timer(100.0)
    assert all(isinstance(ev, Unparsable | RequestReceived) for ev in e.events())


@given(st.integers(0, 7), st.sampled_from(["Via", "CSeq", "Call-ID", "From", "To"]))
def test_a_request_missing_a_core_header_is_unparsable_not_a_crash(cut: int, name: str) -> None:
    raw = request("INVITE").to_bytes().decode()
    lines = [ln for ln in raw.split("\r\n") if not ln.startswith(name + ":")]
    e = Endpoint(accept=("INVITE",))
    e.receive_datagram("\r\n".join(lines).encode()[: len(raw) - cut], A, 0.0)
    assert all(isinstance(ev, Unparsable) for ev in e.events())


def _ok_with(invite: Request, tag: str, *headers: tuple[str, str]) -> Response:
    h = Headers()
    for name in ("Via", "From", "Call-ID", "CSeq"):
        h.add(name, invite.headers.get(name) or "")
    h.add("To", f"<sip:bob@pbx.test>;tag={tag}")
    for name, value in headers:
        h.add(name, value)
    return Response(200, "OK", h)


def test_strict_router_gets_the_request_uri_and_the_target_goes_last() -> None:
    invite = request("INVITE")
    ok = _ok_with(invite, "b1", ("Contact", "<sip:bob@198.19.0.5>"),
                  ("Record-Route", "<sip:198.19.0.9>"))  # fmt: skip
    dialog = Dialog.as_uac(invite, ok)
    info = dialog.create_request("INFO", [("Content-Type", "application/dtmf-relay")], b"Signal=5")
    assert info.uri == "sip:198.19.0.9"  # §12.2.1.1: no ;lr, a strict router
    assert info.headers.get_all("Route") == ["<sip:bob@198.19.0.5>"]
    assert dialog.next_hop() == "sip:198.19.0.9"
    assert info.body == b"Signal=5" and info.cseq == (2, "INFO")


def test_ack_for_2xx_keeps_the_invite_cseq_and_credentials() -> None:
    invite = request("INVITE", cseq=7)
    invite.headers.add("Proxy-Authorization", 'Digest username="alice"')
    dialog = Dialog.as_uac(invite, _ok_with(invite, "b1", ("Contact", "<sip:bob@198.19.0.5>")))
    ack = dialog.ack(invite)
    assert ack.cseq == (7, "ACK") and ack.headers.get("Proxy-Authorization")
    assert ack.top_via.branch != invite.top_via.branch  # a 2xx ACK is its own transaction
    assert dialog.create_request("BYE").cseq == (8, "BYE")


def test_reinvite_refreshes_the_remote_target_on_the_uas_side() -> None:
    invite = request("INVITE")
    dialog = Dialog.as_uas(invite, _ok_with(invite, "b1"))
    assert dialog.remote_target == "sip:alice@198.18.0.2:5060"
    again = request("INVITE", cseq=2, to_tag="b1")
    again.headers.set("Contact", "<sip:alice@198.18.0.3:5062>")
    assert dialog.receive_request(again) is None
    assert dialog.remote_target == "sip:alice@198.18.0.3:5062"
    assert dialog.receive_request(request("UPDATE", cseq=1, to_tag="b1")) == 500


def test_rfc2543_peer_without_magic_cookie_is_matched_on_dialog_ids() -> None:
    """Retransmission, CANCEL and ACK of an old peer whose branch has no z9hG4bK."""
    e = Endpoint(accept=("INVITE",))
    raw = request("INVITE").to_bytes().replace(b"branch=z9hG4bK", b"branch=old")
    e.receive_datagram(raw, A, 0.0)
    e.receive_datagram(raw, A, 0.1)  # the same INVITE again: a retransmission
    assert [type(ev) for ev in e.events()] == [RequestReceived]
    cancel = raw.replace(b"1 INVITE", b"1 CANCEL").replace(b"INVITE sip:", b"CANCEL sip:", 1)
    e.receive_datagram(cancel, A, 0.2)
    assert [type(ev) for ev in e.events()] == [RequestCancelled]
    answers = [parse_message(t.data) for t in e.datagrams_to_send()]
    assert sorted(m.status for m in answers if isinstance(m, Response)) == [100, 100, 200, 487]
