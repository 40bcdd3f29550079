"""``diagnose --via-core`` against QRC stand-in cores whose softphones are real baresips.

Every call here is a real SIP call: the stand-in's ``call.connect`` makes its
baresip dial through a real Kamailio to another baresip, keypad presses are
real RFC 4733 events the far end reports (``CALL_DTMF_START``), and busy /
rejected come from Kamailio's real 486/603 answers.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator

import pytest

from qsipctl.qrc.client import QrcClient
from qsipctl.qrc.errors import QrcRequestError
from qsipctl.qrc.viacore import ViaCoreTarget, run_via_core, run_via_core_async
from qsipctl.site.secrets import Secret
from tests.fixtures.common import wait_until
from tests.fixtures.kamailio import LabCA
from tests.fixtures.qrc_standin import BUSY, DECLINE, Lab, QrcStandin, Softphone, via_core_lab

pytestmark = pytest.mark.integration


def target(core: QrcStandin, code_name: str, number: str, **kw: object) -> ViaCoreTarget:
    base: dict[str, object] = {"duration": 0.5, "ring_timeout": 8.0, "timeout": 5.0}
    base.update(kw)
    return ViaCoreTarget(core=f"core-{core.port}", softphone=code_name, code_name=code_name,
                         host=core.host, port=core.port, number=number, **base)  # type: ignore[arg-type]  # fmt: skip


def assert_clean(core: QrcStandin, phone: Softphone) -> None:
    """The probe left nothing behind: no change group, phone on hook."""
    assert core.calls("ChangeGroup.Destroy"), core.methods()
    wait_until(lambda: core.open_connections == 0, 5)
    assert core.live_groups() == 0
    wait_until(lambda: not phone.get("offhook"), 5)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, test_ca: LabCA) -> Iterator[Lab]:
    yield from via_core_lab(tmp_path_factory.mktemp("via-core"), test_ca)


def test_connected_call_sends_dtmf_to_the_far_end(lab: Lab, qrc_standin_factory) -> None:  # type: ignore[no-untyped-def]
    phone = Softphone("Softphone-Lobby", lab.registrar, lab.uas["1001"], style="dotted")
    core = qrc_standin_factory([phone])
    with lab.answerer.control() as far:
        [r] = run_via_core([target(core, "Softphone-Lobby", "2002", dtmf="12#")])
        assert r.verdict == "connected", r
        assert r.ok and r.setup_ms is not None and r.dtmf_sent == "12#"
        wait_until(lambda: far.dtmf_received() == "12#", 5)
        far.wait_event("CALL_CLOSED", 5)
    assert r.design == "qsipctl-lab" and r.engine_state == "Active" and r.redundant is False
    assert r.controls["number"] == "call.number" and r.controls["pinpad.#"] == "call.pinpad.#"
    assert [t.value for t in r.transitions if t.control == "state"][-1] == "Disconnected"
    assert "Connected" in [t.value for t in r.transitions if t.control == "state"]
    assert r.hung_up and r.group_destroyed
    assert phone.dials == ["2002"] and phone.hangups == 1
    assert_clean(core, phone)


def test_underscored_control_names_are_found_not_assumed(lab: Lab, qrc_standin_factory) -> None:  # type: ignore[no-untyped-def]
    phone = Softphone("SP_Board", lab.registrar, lab.uas["1002"], style="underscored")
    core = qrc_standin_factory([phone], autopoll_style="response")
    with lab.answerer.control() as far:
        [r] = run_via_core([target(core, "SP_Board", "2002", dtmf="9*")])
        wait_until(lambda: far.dtmf_received() == "9*", 5)
    assert r.verdict == "connected", r
    assert r.controls["connect"] == "call_connect" and r.controls["pinpad.*"] == "call_pinpad_*"
    sets = [c["Name"] for p in core.calls("Component.Set") for c in p["Controls"]]
    assert sets == ["call_number", "call_connect", "call_pinpad_9", "call_pinpad_*",
                    "call_disconnect"]  # fmt: skip
    assert_clean(core, phone)


@pytest.mark.parametrize(("number", "verdict"), [(BUSY, "busy"), (DECLINE, "rejected")])
def test_busy_and_rejected(lab: Lab, qrc_standin_factory, number: str, verdict: str) -> None:  # type: ignore[no-untyped-def]
    phone = Softphone("Softphone-1", lab.registrar, lab.uas["1003"])
    core = qrc_standin_factory([phone])
    [r] = run_via_core([target(core, "Softphone-1", number)])
    assert r.verdict == verdict, r
    assert not r.ok and r.call_status is not None and number[1:] in r.call_status
    assert r.call_status in r.message  # the core's own words are shown
    assert_clean(core, phone)


def test_no_answer_hangs_up_after_the_ring_timeout(lab: Lab, qrc_standin_factory) -> None:  # type: ignore[no-untyped-def]
    phone = Softphone("Softphone-1", lab.registrar, lab.uas["1003"])
    core = qrc_standin_factory([phone])
    with lab.silent.control() as far:
        [r] = run_via_core([target(core, "Softphone-1", "2003", ring_timeout=2.0)])
        far.wait_event("CALL_INCOMING", 5)
        far.wait_event("CALL_CLOSED", 5)  # our hang-up reached it as a CANCEL
    assert r.verdict == "no-answer", r
    assert phone.hangups == 1 and r.hung_up and r.group_destroyed
    assert_clean(core, phone)


def test_refuses_a_softphone_that_is_off_hook(lab: Lab, qrc_standin_factory) -> None:  # type: ignore[no-untyped-def]
    phone = Softphone("Softphone-1", lab.registrar, lab.uas["1004"])
    core = qrc_standin_factory([phone])
    with lab.silent.control() as far:
        phone.values["call.number"] = "2003"
        core.run(core._trigger(phone, "connect"))  # someone is on a call
        far.wait_event("CALL_INCOMING", 5)
        wait_until(lambda: phone.get("state") == "Ringing", 5)
        [r] = run_via_core([target(core, "Softphone-1", "2002")])
        assert r.verdict == "in-use", r
        assert "Ringing" in r.message
        assert core.calls("Component.Set") == []  # nothing was touched
        assert core.calls("ChangeGroup.AddComponentControl") == []
        assert phone.get("offhook") and phone.dials == ["2003"]
        core.run(core._trigger(phone, "disconnect"))
        far.wait_event("CALL_CLOSED", 5)


def test_refuses_a_softphone_that_is_ringing(lab: Lab, qrc_standin_factory) -> None:  # type: ignore[no-untyped-def]
    phone = Softphone("Softphone-1", lab.registrar, lab.uas["1004"])
    core = qrc_standin_factory([phone])
    with lab.silent.control() as caller:
        caller.command("dial", f"sip:1004@{lab.registrar}")
        wait_until(lambda: phone.get("ringing"), 5)
        [r] = run_via_core([target(core, "Softphone-1", "2002")])
        assert r.verdict == "ringing", r
        assert core.calls("Component.Set") == [] and phone.dials == []
        caller.command("hangup")
        wait_until(lambda: not phone.get("ringing"), 5)


def test_many_cores_in_parallel(lab: Lab, qrc_standin_factory) -> None:  # type: ignore[no-untyped-def]
    users = ["1001", "1002", "1003"]
    cores = [qrc_standin_factory([Softphone("Softphone-1", lab.registrar, lab.uas[u])])
             for u in users]  # fmt: skip
    numbers = ["2002", BUSY, DECLINE]
    results = run_via_core(
        [target(c, "Softphone-1", n) for c, n in zip(cores, numbers, strict=True)], concurrency=3
    )
    assert [r.verdict for r in results] == ["connected", "busy", "rejected"]
    assert len({r.core for r in results}) == 3
    for core in cores:
        assert_clean(core, core.phones["Softphone-1"])


# -- QRC itself: errors, logon, the 60 s rule, change groups --------------------------
def run(coro: object) -> object:
    return asyncio.run(coro)  # type: ignore[arg-type]


def test_each_qrc_error_code_has_a_message_that_says_what_to_do(qrc_standin_factory) -> None:  # type: ignore[no-untyped-def]
    core = qrc_standin_factory([Softphone("Softphone-1", "127.0.0.1:9")])

    async def errors() -> dict[int, str]:
        c = QrcClient(core.host, core.port)
        await c.connect(5)
        out: dict[int, str] = {}
        for method, params in [
            ("ChangeGroup.Poll", {"Id": "never-made"}),
            ("Component.GetControls", {"Name": "Softphone-Lobby"}),
            ("Component.Get", {"Name": "Softphone-1", "Controls": [{"Name": "call.nope"}]}),
            ("No.Such.Method", {}),
        ]:
            with pytest.raises(QrcRequestError) as info:
                await c.call(method, params)
            out[info.value.code] = str(info.value)
        await c.close()
        return out

    msgs = run(errors())
    assert isinstance(msgs, dict)
    assert "forgot our change group" in msgs[6]
    assert "no component with Code Name 'Softphone-Lobby'" in msgs[7]
    assert "Script Access" in msgs[7]
    assert "control of component 'Softphone-1'" in msgs[8]
    assert "Method not found" in msgs[-32601]
    [r] = run_via_core([target(core, "Softphone-Lobby", "2002")])
    assert r.verdict == "no-component" and "Code Name 'Softphone-Lobby'" in r.message


def test_logon_required_wrong_password_and_right_password(qrc_standin_factory) -> None:  # type: ignore[no-untyped-def]
    core = qrc_standin_factory([Softphone("Softphone-1", "127.0.0.1:9")], user="qsipctl",
                               password="right-pw")  # fmt: skip
    [no_user] = run_via_core([target(core, "Softphone-1", "2002")])
    assert no_user.verdict == "logon-required", no_user
    assert "qsys_qrc_user" in no_user.message
    wrong = target(core, "Softphone-1", "2002", user="qsipctl", password=Secret.parse("nope"))
    [bad] = run_via_core([wrong])
    assert bad.verdict == "logon-failed" and "'qsipctl'" in bad.message
    assert "nope" not in repr(bad)  # the password never shows
    right = target(core, "Softphone-1", "2002", user="qsipctl", password=Secret.parse("right-pw"),
                   ring_timeout=1.0)  # fmt: skip
    [good] = run_via_core([right])
    # past the logon: this component has no SIP behind it, and says so plainly
    assert good.verdict not in ("logon-failed", "logon-required"), good
    assert {"User": "qsipctl", "Password": "right-pw"} in core.calls("Logon")


def test_keepalive_holds_a_connection_past_a_short_60s_rule(qrc_standin_factory) -> None:  # type: ignore[no-untyped-def]
    core = qrc_standin_factory([Softphone("Softphone-1", "127.0.0.1:9")], idle_limit=1.0)

    # a silent client is dropped (so the rule is real) ...
    with socket.create_connection((core.host, core.port), timeout=5) as raw:
        raw.settimeout(5)
        data = b""
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            chunk = raw.recv(4096)
            if not chunk:
                break
            data += chunk
        assert b"EngineStatus" in data and not chunk  # pushed on connect, then closed
    assert core.idle_closed == 1

    # ... and ours stays, by sending NoOp on its own
    async def hold() -> int:
        c = QrcClient(core.host, core.port, keepalive=0.3)
        await c.connect(5)
        await asyncio.sleep(2.5)
        status = await c.call("StatusGet", {})
        assert status["DesignName"] == "qsipctl-lab"
        await c.close()
        return c.noops_sent

    noops = run(hold())
    assert isinstance(noops, int) and noops >= 3
    assert core.idle_closed == 1
    assert "NoOp" in core.methods()


def test_change_groups_vanish_with_their_connection(qrc_standin_factory) -> None:  # type: ignore[no-untyped-def]
    core = qrc_standin_factory([Softphone("Softphone-1", "127.0.0.1:9")])
    add = {"Id": "g1", "Component": {"Name": "Softphone-1", "Controls": [{"Name": "call.state"}]}}

    async def first() -> object:
        c = QrcClient(core.host, core.port)
        await c.connect(5)
        await c.call("ChangeGroup.AddComponentControl", add)
        polled = await c.call("ChangeGroup.Poll", {"Id": "g1"})
        await c.close()
        return polled

    polled = run(first())
    assert isinstance(polled, dict) and polled["Changes"][0]["String"] == "Idle"
    wait_until(lambda: "g1" in core.dropped_groups, 5)

    async def second() -> int:
        c = QrcClient(core.host, core.port)
        await c.connect(5)
        try:
            await c.call("ChangeGroup.Poll", {"Id": "g1"})
        except QrcRequestError as exc:
            return exc.code
        finally:
            await c.close()
        return 0

    assert run(second()) == 6


def test_a_call_held_past_a_short_60s_rule_keeps_its_connection(  # type: ignore[no-untyped-def]
    lab: Lab, qrc_standin_factory
) -> None:
    phone = Softphone("Softphone-1", lab.registrar, lab.uas["1001"])
    core = qrc_standin_factory([phone], idle_limit=1.0)
    [r] = run_via_core([target(core, "Softphone-1", "2002", duration=2.5, keepalive=0.3)])
    assert r.verdict == "connected", r
    assert "the far end hung up first" not in r.message
    assert core.idle_closed == 0 and "NoOp" in core.methods()
    assert phone.hangups == 1  # the hang-up still reached the core after the hold
    assert_clean(core, phone)


def test_a_connection_lost_mid_call_still_hangs_up(  # type: ignore[no-untyped-def]
    lab: Lab, qrc_standin_factory
) -> None:
    """Keep-alive deliberately too slow: the core drops us mid-call, the call stays up."""
    phone = Softphone("Softphone-1", lab.registrar, lab.uas["1002"])
    core = qrc_standin_factory([phone], idle_limit=1.0)
    with lab.answerer.control() as far:
        [r] = run_via_core([target(core, "Softphone-1", "2002", duration=2.0, keepalive=30.0)])
        far.wait_event("CALL_CLOSED", 5)
    assert r.verdict == "unreachable" and "closed the connection" in r.message, r
    assert core.idle_closed >= 1
    assert r.hung_up and phone.hangups == 1  # over a second connection
    assert core.connections == 2
    wait_until(lambda: not phone.get("offhook"), 5)


def test_cancelled_twice_mid_call_still_hangs_up_and_destroys(  # type: ignore[no-untyped-def]
    lab: Lab, qrc_standin_factory
) -> None:
    phone = Softphone("Softphone-1", lab.registrar, lab.uas["1003"])
    core = qrc_standin_factory([phone])

    async def go() -> None:
        task = asyncio.create_task(
            run_via_core_async([target(core, "Softphone-1", "2002", duration=60)])
        )
        while phone.get("state") != "Connected":
            await asyncio.sleep(0.05)
        task.cancel()
        await asyncio.sleep(0.01)  # let cleanup start, then interrupt it too
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    with lab.answerer.control() as far:
        asyncio.run(go())
        far.wait_event("CALL_CLOSED", 5)
    assert phone.hangups == 1
    assert_clean(core, phone)


def test_engine_status_is_pushed_on_change_and_a_standby_core_is_not_asked(  # type: ignore[no-untyped-def]
    qrc_standin_factory,
) -> None:
    core = qrc_standin_factory([Softphone("Softphone-1", "127.0.0.1:9")], redundant=True)

    async def watch() -> object:
        c = QrcClient(core.host, core.port)
        await c.connect(5)
        first = await c.wait_engine_status(5)
        assert first is not None and first["State"] == "Active" and first["IsRedundant"] is True
        c.status_changed.clear()
        await asyncio.to_thread(core.set_engine_state, "Standby")
        await asyncio.wait_for(c.status_changed.wait(), 5)
        await c.close()
        return c.engine_status

    status = run(watch())
    assert isinstance(status, dict) and status["State"] == "Standby"
    [r] = run_via_core([target(core, "Softphone-1", "2002")])
    assert r.verdict == "standby" and r.redundant is True, r
    assert core.calls("Component.Set") == [] and core.calls("Component.GetControls") == []
