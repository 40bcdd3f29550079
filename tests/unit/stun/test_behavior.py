"""RFC 5780 decision procedure on a fake NAT: every branch, without a socket."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qsipctl.stun import message as m
from qsipctl.stun.behavior import BehaviorDiscovery, BindingTest
from qsipctl.stun.client import BindingAnswer, BindingTransaction, binding
from qsipctl.stun.message import TransportAddress as TA

PRIMARY = TA("198.19.0.2", 3478)
OTHER = TA("198.19.0.3", 3479)
LOCAL = {"mapping": TA("198.18.0.2", 5060), "filtering": TA("198.18.0.2", 40000)}

NatModel = Callable[[BindingTest], BindingAnswer]


def nat(mapping: str, filtering: str, *, other: bool = True, nat: bool = True) -> NatModel:
    """A model NAT: public port by mapping rule, answer passes by filtering rule."""
    opened: dict[str, set[tuple[str, int]]] = {"mapping": set(), "filtering": set()}

    def run(test: BindingTest) -> BindingAnswer:
        local = LOCAL[test.socket]
        d = test.dest
        if not nat:
            public = local
        elif mapping == "eim":
            public = TA("198.19.0.1", local.port)
        elif mapping == "adm":
            public = TA("198.19.0.1", local.port + (0 if d.ip == PRIMARY.ip else 1))
        else:
            public = TA("198.19.0.1", local.port + hash((d.ip, d.port)) % 1000 + 1)
        opened[test.socket].add((d.ip, d.port))
        src = (
            OTHER.ip if test.change_ip else d.ip,
            OTHER.port if test.change_port else d.port,
        )
        allowed = {
            "eif": True,
            "adf": any(ip == src[0] for ip, _ in opened[test.socket]),
            "apdf": src in opened[test.socket],
        }[filtering]
        if not allowed:
            return BindingAnswer(d, local, None)
        return BindingAnswer(d, local, public, OTHER if other else None)

    return run


def drive(model: NatModel) -> BehaviorDiscovery:
    proc = BehaviorDiscovery(PRIMARY)
    while (test := proc.next_test()) is not None:
        proc.record(test, model(test))
    return proc


@pytest.mark.parametrize(
    ("mapping", "expected"),
    [
        ("eim", "endpoint-independent"),
        ("adm", "address-dependent"),
        ("apdm", "address-and-port-dependent"),
    ],
)
@pytest.mark.parametrize(
    ("filtering", "expected_f"),
    [
        ("eif", "endpoint-independent"),
        ("adf", "address-dependent"),
        ("apdf", "address-and-port-dependent"),
    ],
)
def test_every_mapping_and_filtering(
    mapping: str, expected: str, filtering: str, expected_f: str
) -> None:
    b = drive(nat(mapping, filtering)).result()
    assert (b.mapping, b.filtering) == (expected, expected_f)
    assert b.nat is True and b.rfc5780


def test_no_nat_skips_mapping_tests() -> None:
    proc = drive(nat("eim", "eif", nat=False))
    b = proc.result()
    assert b.mapping == "no-nat" and b.nat is False
    assert [n for n, _ in b.answers] == ["mapping-1", "filtering-1", "filtering-2"]


def test_server_without_other_address_stops_after_one_test() -> None:
    b = drive(nat("eim", "eif", other=False)).result()
    assert b.rfc5780 is False and b.mapping == "unknown" and len(b.answers) == 1


def test_no_answer_at_all() -> None:
    proc = BehaviorDiscovery(PRIMARY)
    test = proc.next_test()
    assert test is not None
    proc.record(test, BindingAnswer(PRIMARY, LOCAL["mapping"], None))
    assert proc.next_test() is None
    assert proc.result().reachable is False


def test_record_must_match_the_pending_test() -> None:
    proc = BehaviorDiscovery(PRIMARY)
    proc.next_test()
    with pytest.raises(RuntimeError):
        proc.next_test()
    with pytest.raises(RuntimeError):
        proc.record(BindingTest("x", "mapping", PRIMARY), BindingAnswer(PRIMARY, PRIMARY, None))


def test_transaction_retransmits_on_its_schedule_then_gives_up() -> None:
    tx = BindingTransaction(schedule=(0.5, 1.0, 2.0), transaction_id=b"t" * 12)
    data, at = tx.start(10.0)
    assert at == 10.5
    assert tx.on_timer(10.5) == (data, 11.5)
    assert tx.on_timer(11.5) == (data, 13.5)
    assert tx.on_timer(13.5) is None and tx.timed_out


def test_transaction_ignores_foreign_and_broken_datagrams() -> None:
    tx = BindingTransaction(transaction_id=b"t" * 12)
    tx.start(0.0)
    other = m.build_binding_success(b"u" * 12, TA("198.19.0.1", 1))
    assert not tx.on_datagram(other, ("198.19.0.2", 3478), 0.1)
    assert not tx.on_datagram(b"t" * 40, ("198.19.0.2", 3478), 0.1)
    mine = m.build_binding_success(b"t" * 12, TA("198.19.0.1", 1), other=OTHER)
    assert tx.on_datagram(mine, ("198.19.0.2", 3478), 0.2)
    assert tx.answer is not None and tx.answer.other_address() == OTHER


class FakePort:
    """A DatagramPort whose 'server' answers the n-th request (to test the async driver)."""

    def __init__(self, answer_on: int) -> None:
        self.sent: list[tuple[bytes, tuple[str, int]]] = []
        self.queue: asyncio.Queue[tuple[bytes, tuple[str, int]]] = asyncio.Queue()
        self.answer_on = answer_on

    @property
    def local(self) -> tuple[str, int]:
        return ("0.0.0.0", 5060)

    def sendto(self, data: bytes, addr: tuple[str, int]) -> None:
        self.sent.append((data, addr))
        if len(self.sent) == self.answer_on:
            tid = m.parse(data).transaction_id
            reply = m.build_binding_success(tid, TA("198.19.0.1", 6000), other=OTHER)
            self.queue.put_nowait((reply, addr))

    async def recv(self, timeout: float | None = None) -> tuple[bytes, tuple[str, int]] | None:
        try:
            return await asyncio.wait_for(self.queue.get(), timeout)
        except TimeoutError:
            return None


def test_async_binding_over_any_datagram_port() -> None:
    port = FakePort(answer_on=2)
    a = asyncio.run(
        binding(port, ("198.19.0.2", 3478), schedule=(0.01, 0.01, 0.01), local_ip="198.18.0.2")
    )
    assert len(port.sent) == 2  # one retransmission, then answered
    assert a.mapped == TA("198.19.0.1", 6000)
    assert a.local == TA("198.18.0.2", 5060)
    assert a.other == OTHER


def test_async_binding_silence_is_an_answer_without_address() -> None:
    port = FakePort(answer_on=99)
    a = asyncio.run(binding(port, ("198.19.0.2", 3478), schedule=(0.01, 0.01)))
    assert a.mapped is None and len(port.sent) == 2


@given(st.binary(max_size=200))
def test_parser_raises_only_its_own_error(data: bytes) -> None:
    try:
        msg = m.parse(data)
    except m.StunParseError:
        return
    for getter in (msg.mapped, msg.other_address, msg.response_origin, msg.error_code):
        with contextlib.suppress(m.StunParseError):
            getter()
