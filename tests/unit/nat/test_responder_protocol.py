"""The responder's policy without sockets: authentication, replay, budgets, sizes."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from qsipctl.responder import protocol as p

SECRET = b"unit-test-secret-0123456789"
SRC = ("198.18.0.2", 40000)
T0 = 1_800_000_000.0


def req(
    op: str, now: float = T0, secret: bytes = SECRET, pad_to: int = 400, **args: object
) -> bytes:
    return p.sign(secret, p.new_request(op, now, pad_to=pad_to, **args))


def answer(r: p.Responder, data: bytes, src: tuple[str, int] = SRC, t: float = 0.0) -> list[p.Send]:
    return r.on_control(data, src, t, T0 + t)


def test_hello_is_answered_to_the_sender_and_no_larger_than_the_request() -> None:
    r = p.Responder(SECRET)
    data = req("hello")
    [send] = answer(r, data)
    assert send.dest == SRC and len(send.data) <= len(data)
    body = p.verify(SECRET, send.data)
    assert body["ok"] and body["seen"] == list(SRC)


@pytest.mark.parametrize("secret", [b"another-secret-0123456789", b""])
def test_wrong_or_no_secret_gets_nothing(secret: bytes) -> None:
    r = p.Responder(SECRET)
    data = req("hello", secret=secret) if secret else b"QSR1" + b"\0" * 32 + b"{}"
    assert answer(r, data) == []
    assert r.stats.packets_out == 0


def test_replay_and_stale_requests_get_nothing() -> None:
    r = p.Responder(SECRET)
    data = req("hello")
    assert len(answer(r, data)) == 1
    assert answer(r, data, t=1.0) == []  # same nonce
    assert answer(r, req("hello", now=T0 - 120)) == []  # too old
    assert r.stats.refused["replay-or-stale"] == 2


def test_a_third_address_is_refused() -> None:
    r = p.Responder(SECRET)
    [send] = answer(r, req("probe-in", ports=[5060], addr="203.0.113.9"))
    assert send.dest == SRC  # the refusal goes to the sender only
    assert p.verify(SECRET, send.data)["ok"] is False


def test_oversized_request_is_dropped_unread() -> None:
    r = p.Responder(SECRET)
    assert answer(r, req("hello", pad_to=5000)) == []
    assert r.stats.refused["oversized"] == 1


def test_rate_limit_per_source() -> None:
    r = p.Responder(SECRET, p.Limits(requests_per_window=5))
    sent = sum(len(answer(r, req("hello"), t=i * 0.01)) for i in range(50))
    assert sent == 5
    other = ("198.18.0.3", 1)
    assert len(answer(r, req("hello"), src=other, t=1.0)) == 1  # another source is not punished


def test_answer_larger_than_request_becomes_a_short_error_or_nothing() -> None:
    r = p.Responder(SECRET)
    data = req("hello", pad_to=0)
    sends = answer(r, data)
    assert all(len(s.data) <= len(data) for s in sends)
    assert sends or r.stats.refused["answer-too-large"] == 1


def test_probe_in_goes_only_to_the_senders_ip_within_budget() -> None:
    r = p.Responder(SECRET, p.Limits(probe_packets_per_minute=100, requests_per_window=100))
    sends = answer(r, req("probe-in", ports=list(range(20000, 20064)), token="t"))
    probes = [s for s in sends if s.sock == "probe"]
    assert len(probes) == 64 and {s.dest[0] for s in probes} == {SRC[0]}
    assert all(len(s.data) <= 22 for s in probes)
    again = answer(r, req("probe-in", ports=list(range(20000, 20064)), token="t"), t=1)
    assert [s for s in again if s.sock == "probe"] == []  # 128 > 100 per minute
    later = answer(r, req("probe-in", now=T0 + 61, ports=[20000], token="t"), t=61)
    assert len([s for s in later if s.sock == "probe"]) == 1


def test_too_many_ports_in_one_request_is_refused() -> None:
    r = p.Responder(SECRET)
    [send] = answer(r, req("probe-in", ports=list(range(1, 100)), token="t"))
    assert p.verify(SECRET, send.data)["ok"] is False


def test_outbound_probes_are_recorded_never_answered() -> None:
    r = p.Responder(SECRET)
    answer(r, req("expect-out", token="tok"))
    nat_src = (SRC[0], 31000)  # the same public IP as the control requests
    assert r.on_probe(p.probe_out_packet("tok", 20000), nat_src, 0.1) == []
    [send] = answer(r, req("report-out", token="tok", pad_to=600), t=0.2)
    assert p.verify(SECRET, send.data)["seen"] == [[20000, 31000]]
    assert r.on_probe(p.probe_out_packet("nobody", 1), nat_src, 0.3) == []


def test_sip_echo_only_inside_an_authenticated_window() -> None:
    r = p.Responder(SECRET)
    sip = b"OPTIONS sip:x SIP/2.0\r\n\r\n"
    assert r.on_sip(sip, SRC, 0.0) == []  # no window yet
    answer(r, req("sip-echo"))
    [echo] = r.on_sip(sip, (SRC[0], 5060), 0.1)
    assert p.mask(echo.data) == sip and len(echo.data) == len(sip)
    for i in range(20):
        r.on_sip(sip, SRC, 0.2 + i / 100)
    assert r.stats.refused["echo-not-open"] >= 20 - p.Limits().echoes_per_window


def test_hold_answers_now_and_after_the_pause() -> None:
    r = p.Responder(SECRET)
    sends = answer(r, req("hold", pause=8))
    assert [s.at for s in sends] == [0.0, 8.0]
    assert [p.verify(SECRET, s.data)["phase"] for s in sends] == ["now", "later"]
    [refused] = answer(r, req("hold", pause=10_000), t=1)
    assert p.verify(SECRET, refused.data)["ok"] is False


def test_tcp_in_connects_back_to_a_few_ports_of_the_sender_only() -> None:
    r = p.Responder(SECRET)
    sends = answer(r, req("tcp-in", ports=[5060], token="tok"))
    tcp = [s for s in sends if s.sock == "tcp"]
    assert [(s.dest, s.data) for s in tcp] == [((SRC[0], 5060), p.PROBE_TCP + b"tok")]
    [refused] = answer(r, req("tcp-in", ports=list(range(5060, 5070)), token="t"), t=1)
    assert p.verify(SECRET, refused.data)["ok"] is False


def test_short_secret_is_refused() -> None:
    with pytest.raises(ValueError):
        p.Responder(b"short")


def test_compact_ranges() -> None:
    assert p.compact_ranges([5, 1, 2, 3, 9, 10]) == "1-3,5,9-10"
    assert p.compact_ranges([]) == ""


@given(st.binary(max_size=1600))
def test_random_bytes_never_get_an_answer(data: bytes) -> None:
    r = p.Responder(SECRET)
    assert answer(r, data) == []
    assert r.on_sip(data, SRC, 0.0) == []
    assert r.on_probe(data, SRC, 0.0) == []


OPS = ["hello", "sip-echo", "probe-in", "expect-out", "report-out", "hold", "tcp-in", "nope"]
ARGS = st.dictionaries(
    st.sampled_from(["ports", "token", "pause", "via"]),
    st.one_of(
        st.integers(-5, 70000),
        st.text(max_size=40),
        st.lists(st.integers(-5, 70000), max_size=80),
        st.floats(allow_nan=False),
    ),
)


@given(st.sampled_from(OPS), ARGS, st.integers(0, 1400))
@example("tcp-in", {"token": "000\x80\x80\x80\x80\U00010000\U00010000", "ports": [1]}, 0)
def test_authenticated_answers_are_never_larger_than_the_request(
    op: str, args: dict[str, object], pad_to: int
) -> None:
    r = p.Responder(SECRET)
    data = req(op, pad_to=pad_to, **args)
    for send in answer(r, data):
        assert send.dest[0] == SRC[0]  # only ever the sender's address
        if send.sock == "control":
            assert len(send.data) <= len(data)
        else:  # probes: the fixed, small budget
            assert len(send.data) <= 22
