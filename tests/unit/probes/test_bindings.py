"""Reading a registrar's bindings from its 200, and the register policy's decisions."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qsipctl.probes.bindings import (
    Binding,
    describe_bindings,
    displaced,
    is_ours,
    others,
    parse_bindings,
)
from qsipctl.probes.register_flow import (
    BIND,
    KEEP,
    LEDGER,
    QUERY,
    Answer,
    Cleanup,
    RegisterFlow,
    RegisterPolicy,
    wrong_password_detail,
)
from qsipctl.probes.result import VERDICTS, ProbeResult
from qsipctl.sip.message import Response, parse_message


def test_expires_param_wins_over_the_expires_header() -> None:
    lines = [
        "<sip:1001@198.18.0.9:5060>;expires=3600, <sip:1001@198.18.0.5:5070>;expires=90",
        "<sip:1001@198.18.0.7>",
    ]
    got = parse_bindings(lines, "1800")
    assert got == [
        Binding("sip:1001@198.18.0.9:5060", "198.18.0.9:5060", 3600),
        Binding("sip:1001@198.18.0.5:5070", "198.18.0.5:5070", 90),
        Binding("sip:1001@198.18.0.7", "198.18.0.7:5060", 1800),  # RFC 3261 10.2.4 fallback
    ]
    assert parse_bindings(["<sip:1001@198.18.0.7>"], None)[0].expires is None


def test_odd_contacts_written_by_other_devices_are_still_bindings() -> None:
    lines = [
        '"Salle \xe9t\xe9" <sip:2001@[2001:db8::1]:5080;transport=tcp>;expires=60'
        ';+sip.instance="<urn:x>"',
        "sip:2001@my_host.local:5062;expires=30",  # addr-spec: params belong to the header
        "<sips:2001@198.18.0.4>;q=0.5;expires=20",
        '<sip:2001@10.0.0.5:5060>;expires=99;received="sip:198.19.0.7:40000"',
        "*",
    ]
    got = parse_bindings(lines, None)
    assert [(b.address, b.expires) for b in got] == [
        ("[2001:db8::1]:5080", 60),
        ("my_host.local:5062", 30),
        ("198.18.0.4:5061", 20),
        ("198.19.0.7:40000", 99),  # where the PBX really sends calls: behind NAT
    ]


def test_ours_others_and_displacement() -> None:
    core = Binding("sip:2001@198.18.0.23:5060", "198.18.0.23:5060", 1234)
    dying = Binding("sip:2001@198.18.0.24:5060", "198.18.0.24:5060", 1)
    ours = Binding("sip:2001@127.0.0.1:40000", "127.0.0.1:40000", 3600)
    assert is_ours(ours, "<SIP:2001@127.0.0.1:40000>")
    assert others([core, ours], "<sip:2001@127.0.0.1:40000>") == [core]
    # replaced by ours: displaced; about to expire anyway: not our doing
    assert displaced([core, dying], [ours], elapsed=0.5) == [core]
    assert displaced([core], [core, ours], elapsed=0.5) == []


def test_describe_bindings_answers_is_the_core_registered() -> None:
    core = Binding("sip:2001@198.51.100.23:5060", "198.51.100.23:5060", 1234)
    assert describe_bindings([]) == "no binding: the core is not registered"
    assert describe_bindings([core]) == "bound from 198.51.100.23:5060, 1234 s left"
    assert describe_bindings([core, core]).startswith("2 bindings: from 198.51.100.23:5060")


def test_wrong_password_names_the_auth_id_when_it_differs() -> None:
    assert VERDICTS["wrong-password"] == (
        "wrong password, or the server does not know this user (it answers both the same)"
    )
    same = wrong_password_detail(401, "2001", "2001")
    assert same == "401 again for auth user 2001" and "auth ID" not in same
    differs = wrong_password_detail(401, "4100", "qsys-auditorium")
    assert "auth ID 'qsys-auditorium' differs from the user name '4100'" in differs


def test_policy_from_flags() -> None:
    assert RegisterPolicy.from_flags() == QUERY and QUERY.mode == "query"
    assert RegisterPolicy.from_flags(bind=True) == BIND and BIND.mode == "bind"
    assert RegisterPolicy.from_flags(keep=True) == KEEP and KEEP.mode == "keep"


# --- the flow's decisions, with a scripted registrar (no network: one unit's logic) ---


def _resp(status: int, contacts: str = "") -> Response:
    msg = parse_message(
        (
            f"SIP/2.0 {status} X\r\nVia: SIP/2.0/UDP 198.18.0.5:5060;branch=z9hG4bK1\r\n"
            "From: <sip:1001@pbx.test>;tag=a\r\nTo: <sip:1001@pbx.test>;tag=b\r\n"
            f"Call-ID: c\r\nCSeq: 2 REGISTER\r\n{contacts}Content-Length: 0\r\n\r\n"
        ).encode()
    )
    assert isinstance(msg, Response)
    return msg


CORE = "Contact: <sip:1001@198.18.0.23:5060>;expires=1234\r\n"
OURS = "Contact: <sip:1001@198.18.0.5:40000>;expires=3600\r\n"


class Scripted:
    """Answers REGISTERs from a script; records (contact, expires) of each."""

    our_contact = "<sip:1001@198.18.0.5:40000>"

    def __init__(self, *answers: Response | BaseException) -> None:
        self.answers = list(answers)
        self.sent: list[tuple[str | None, int | None]] = []

    async def register(self, contact: str | None, expires: int | None) -> Answer:
        self.sent.append((contact, expires))
        item = self.answers.pop(0)
        if isinstance(item, BaseException):
            raise item
        return Answer(item, algorithm="MD5")


def _run(reg: Scripted, policy: RegisterPolicy) -> ProbeResult:
    result = ProbeResult("register", "sip:1001@pbx.test", "udp")
    flow = RegisterFlow(reg, result, policy, 3600, lambda r: None)

    async def go() -> None:
        await flow.run()

    asyncio.run(go())
    return result


def test_query_changes_nothing_and_reports_the_core() -> None:
    reg = Scripted(_resp(200, CORE))
    r = _run(reg, QUERY)
    assert reg.sent == [(None, None)]  # one Contact-less REGISTER, nothing else
    assert r.ok and r.mode == "query" and r.expires is None and r.unregistered is None
    assert r.message == "credentials accepted; bound from 198.18.0.23:5060, 1234 s left"
    assert r.bindings == [
        {"contact": "sip:1001@198.18.0.23:5060", "address": "198.18.0.23:5060", "expires": 1234}
    ]


def test_bind_refuses_when_another_device_is_bound() -> None:
    reg = Scripted(_resp(200, CORE))
    r = _run(reg, BIND)
    assert reg.sent == [(None, None)]
    assert (r.ok, r.verdict) == (False, "in-use")
    assert "--force" in r.message and "198.18.0.23:5060" in r.message


def test_forced_bind_reports_displacement_and_unbinds() -> None:
    reg = Scripted(_resp(200, CORE), _resp(200, OURS), _resp(200))
    r = _run(reg, RegisterPolicy(bind=True, force=True))
    assert reg.sent == [(None, None), (Scripted.our_contact, 3600), (Scripted.our_contact, 0)]
    assert r.ok and r.unregistered is True and r.expires == 3600
    assert r.displaced and r.displaced[0]["address"] == "198.18.0.23:5060"
    assert "displaced the core's (the PBX keeps one contact per account)" in r.message


def test_a_query_refused_says_how_to_run_the_binding_test() -> None:
    r = _run(Scripted(_resp(400)), QUERY)
    assert (r.ok, r.verdict) == (False, "query-refused")
    assert "--bind" in r.message


@pytest.mark.parametrize("failure", [TimeoutError("no answer"), asyncio.CancelledError()])
def test_no_ghost_binding_when_the_answer_to_our_register_never_comes(
    failure: BaseException,
) -> None:
    reg = Scripted(_resp(200), failure, _resp(200))
    ledger: list[Cleanup] = []

    async def go() -> ProbeResult:
        LEDGER.set(ledger)
        result = ProbeResult("register", "sip:1001@pbx.test", "udp")
        flow = RegisterFlow(reg, result, BIND, 3600, lambda r: None)
        with pytest.raises(type(failure)):
            await flow.run()
        return result

    r = asyncio.run(go())
    assert reg.sent[-1] == (Scripted.our_contact, 0)  # unregistered all the same
    assert r.unregistered is True and r.leftover is None
    assert [c.state for c in ledger] == ["removed"]


def test_a_failed_unbind_reports_what_may_remain() -> None:
    reg = Scripted(_resp(200), _resp(200, OURS), _resp(500))
    r = _run(reg, BIND)
    assert r.ok and r.unregistered is False
    assert r.leftover == {"contact": "sip:1001@198.18.0.5:40000", "expires": 3600}
    assert any("may remain bound for up to 3600 s" in w for w in r.warnings)


@given(st.lists(st.text(max_size=80), max_size=4), st.one_of(st.none(), st.text(max_size=12)))
def test_any_contact_text_is_read_never_raised_over(lines: list[str], expires: str | None) -> None:
    """Somebody else's Contact can never fail our probe: anything in, bindings out."""
    for b in parse_bindings(lines, expires):
        assert isinstance(b.address, str) and (b.expires is None or b.expires >= 0)
        assert b.describe()
