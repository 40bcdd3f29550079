"""Offer/answer glare in a dialog: 491 for a re-offer crossing ours (RFC 3261 §14, RFC 3311 §5)."""

from __future__ import annotations

from qsipctl.sip.dialog import Dialog
from qsipctl.sip.headers import Headers
from qsipctl.sip.message import Request, Response
from qsipctl.sip.transaction import new_branch

SDP = b"v=0\r\no=pbx 1 2 IN IP4 198.19.0.5\r\ns=-\r\nc=IN IP4 198.19.0.5\r\nt=0 0\r\n"


def _invite() -> Request:
    h = Headers()
    h.add("Via", f"SIP/2.0/UDP 198.18.0.2:5060;branch={new_branch()}")
    h.add("From", "<sip:alice@pbx.test>;tag=a1")
    h.add("To", "<sip:bob@pbx.test>")
    h.add("Call-ID", "c1")
    h.add("CSeq", "1 INVITE")
    return Request("INVITE", "sip:bob@198.19.0.5", h)


def call() -> Dialog:
    """The dialog of a call we placed (alice), confirmed by bob's 200."""
    invite = _invite()
    h = Headers()
    for name in ("Via", "From", "Call-ID", "CSeq"):
        h.add(name, invite.headers.get(name) or "")
    h.add("To", "<sip:bob@pbx.test>;tag=b1")
    h.add("Contact", "<sip:bob@198.19.0.5>")
    return Dialog.as_uac(invite, Response(200, "OK", h))


def far(method: str, cseq: int, body: bytes = b"", contact: str = "<sip:bob@198.19.0.6>"
        ) -> Request:  # fmt: skip
    """A request from bob inside the dialog."""
    h = Headers()
    h.add("Via", f"SIP/2.0/UDP 198.19.0.5:5060;branch={new_branch()}")
    h.add("From", "<sip:bob@pbx.test>;tag=b1")
    h.add("To", "<sip:alice@pbx.test>;tag=a1")
    h.add("Call-ID", "c1")
    h.add("CSeq", f"{cseq} {method}")
    h.add("Contact", contact)
    return Request(method, "sip:alice@198.18.0.2", h, body)


def test_a_reinvite_crossing_our_reinvite_gets_491_and_changes_nothing() -> None:
    dialog = call()
    ours = dialog.create_request("INVITE", [], SDP)
    assert dialog.pending_offer == ours.cseq[0] and dialog.invite_in_progress
    theirs = far("INVITE", 5, SDP)
    assert dialog.receive_request(theirs) == 491
    assert dialog.remote_seq == 5  # its CSeq is used up all the same (§12.2.2)
    assert dialog.remote_target == "sip:bob@198.19.0.5"  # a refused re-INVITE moves nothing
    assert not dialog.remote_invite_open
    dialog.request_done(ours)  # our answer came
    assert dialog.pending_offer is None and not dialog.invite_in_progress
    assert dialog.receive_request(far("INVITE", 6, SDP)) is None
    assert dialog.remote_target == "sip:bob@198.19.0.6"


def test_an_update_with_an_offer_crossing_ours_gets_491_one_without_sdp_does_not() -> None:
    dialog = call()
    ours = dialog.create_request("UPDATE", [], SDP)
    assert dialog.pending_offer == ours.cseq[0]
    assert dialog.receive_request(far("UPDATE", 2)) is None  # a plain refresh, no offer
    assert dialog.receive_request(far("UPDATE", 3, SDP)) == 491
    assert dialog.receive_request(far("INVITE", 4)) == 491  # an INVITE while ours is pending
    assert dialog.receive_request(far("BYE", 5)) is None  # a BYE is never glare


def test_requests_without_an_offer_leave_nothing_pending() -> None:
    dialog = call()
    dialog.create_request("INFO", [("Content-Type", "application/dtmf-relay")], b"Signal=5")
    dialog.create_request("UPDATE")  # a refresh without SDP: no offer
    assert dialog.pending_offer is None
    dialog.request_done(_invite())  # an answer to something else clears nothing wrongly
    assert dialog.pending_offer is None


def test_their_reinvite_is_in_progress_until_its_ack() -> None:
    dialog = call()
    invite = far("INVITE", 2, SDP)
    assert dialog.receive_request(invite) is None
    assert dialog.remote_invite_open and dialog.invite_in_progress
    ack = far("ACK", 2)
    assert dialog.receive_request(ack) is None
    assert not dialog.invite_in_progress


def test_a_refused_reinvite_ends_without_an_ack_reaching_us() -> None:
    dialog = call()
    invite = far("INVITE", 2, b"garbage")
    assert dialog.receive_request(invite) is None
    dialog.answered(invite, 488)  # its ACK stays in the transaction layer
    assert not dialog.invite_in_progress
    again = far("INVITE", 3, SDP)
    assert dialog.receive_request(again) is None
    dialog.answered(again, 200)  # a 2xx waits for the ACK: still in progress
    assert dialog.remote_invite_open
