"""SIP INFO DTMF bodies and the choice of their content type (pure functions)."""

from __future__ import annotations

from qsipctl.probes.call import _info_type, info_body
from qsipctl.sip.headers import Headers
from qsipctl.sip.message import Response


def _ok(accept: str | None) -> Response:
    h = Headers()
    if accept is not None:
        h.add("Accept", accept)
    return Response(200, "OK", h)


def test_dtmf_relay_body_has_signal_and_duration() -> None:
    assert info_body("5", "application/dtmf-relay", 160) == b"Signal=5\r\nDuration=160\r\n"
    assert info_body("#", "application/dtmf-relay", 250) == b"Signal=#\r\nDuration=250\r\n"


def test_application_dtmf_body_is_the_digit() -> None:
    assert info_body("*", "application/dtmf", 160) == b"*"


def test_application_dtmf_only_when_the_far_end_asks_for_it() -> None:
    assert _info_type(_ok(None)) == "application/dtmf-relay"
    assert _info_type(_ok("application/sdp")) == "application/dtmf-relay"
    assert _info_type(_ok("application/sdp, application/dtmf")) == "application/dtmf"
    both = "application/sdp, application/dtmf-relay, application/dtmf"
    assert _info_type(_ok(both)) == "application/dtmf-relay"


def test_received_info_digits() -> None:
    from qsipctl.probes.call import info_digit

    assert info_digit("application/dtmf-relay", b"Signal=5\r\nDuration=160\r\n") == "5"
    assert info_digit("Application/DTMF-Relay", b"signal= #\nDuration=100") == "#"
    assert info_digit("application/dtmf", b"9\r\n") == "9"
    assert info_digit("application/dtmf-relay", b"Duration=160\r\n") == ""  # no Signal
    assert info_digit("application/dtmf-relay", b"Signal=55") == ""  # not one digit
    assert info_digit("text/plain", b"Signal=5") == ""
    assert info_digit(None, b"") == ""
