"""The sans-IO QRC layer: framing, ids, answers matched to requests, pushes, keep-alive."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qsipctl.qrc.errors import QrcProtocolError, explain
from qsipctl.qrc.protocol import (
    Changes,
    ErrorResponse,
    FrameDecoder,
    Notification,
    QrcSession,
    Response,
    encode_message,
)
from qsipctl.qrc.viacore import classify, is_on, resolve_controls


def frame(obj: object) -> bytes:
    return json.dumps(obj).encode() + b"\0"


def test_a_request_is_one_json_object_and_a_nul_with_a_numeric_id() -> None:
    s = QrcSession()
    rid, data = s.request("StatusGet", {}, now=5.0)
    assert data.endswith(b"\0") and data.count(b"\0") == 1
    msg = json.loads(data[:-1])
    assert msg == {"jsonrpc": "2.0", "id": rid, "method": "StatusGet", "params": {}}
    rid2, _ = s.request("NoOp", {}, now=6.0)
    assert isinstance(rid, int) and rid2 == rid + 1
    assert s.pending() == 2


def test_answers_are_matched_to_their_requests_in_any_order() -> None:
    s = QrcSession()
    a, _ = s.request("StatusGet", {}, 0)
    b, _ = s.request("Component.Get", {"Name": "X"}, 0)
    first = frame({"jsonrpc": "2.0", "id": b, "result": {"Name": "X"}})
    second = frame({"jsonrpc": "2.0", "id": a, "result": {"State": "Active"}})
    events = s.receive(first + second)
    assert events == [
        Response(b, "Component.Get", {"Name": "X"}),
        Response(a, "StatusGet", {"State": "Active"}),
    ]
    assert s.pending() == 0


def test_a_frame_split_anywhere_is_reassembled() -> None:
    s = QrcSession()
    rid, _ = s.request("NoOp", {}, 0)
    data = frame({"jsonrpc": "2.0", "id": rid, "result": {}})
    for cut in range(1, len(data)):
        s2 = QrcSession()
        s2.request("NoOp", {}, 0)
        assert s2.receive(data[:cut]) == []
        assert s2.receive(data[cut:]) == [Response(rid, "NoOp", {})]


def test_engine_status_push_is_kept() -> None:
    s = QrcSession()
    status = {"State": "Active", "DesignName": "HQ", "IsRedundant": True}
    [ev] = s.receive(frame({"jsonrpc": "2.0", "method": "EngineStatus", "params": status}))
    assert ev == Notification("EngineStatus", status)
    assert s.engine_status == status


def test_error_answers_carry_code_and_the_request() -> None:
    s = QrcSession()
    rid, _ = s.request("Component.GetControls", {"Name": "SP"}, 0)
    err = {"code": 7, "message": "Unknown component name"}
    [ev] = s.receive(frame({"jsonrpc": "2.0", "id": rid, "error": err}))
    assert ev == ErrorResponse(rid, 7, "Unknown component name", "Component.GetControls",
                               {"Name": "SP"})  # fmt: skip


@pytest.mark.parametrize("style", ["notification", "response"])
def test_autopoll_results_as_a_push_or_reusing_the_autopoll_id(style: str) -> None:
    s = QrcSession()
    rid, _ = s.request("ChangeGroup.AutoPoll", {"Id": "g", "Rate": 0.2}, 0)
    s.receive(frame({"jsonrpc": "2.0", "id": rid, "result": {"Id": "g", "Changes": []}}))
    result = {"Id": "g", "Changes": [{"Component": "SP", "Name": "call.state", "Value": 0,
                                      "String": "Connected"}]}  # fmt: skip
    push = {"jsonrpc": "2.0", "method": "ChangeGroup.Poll", "params": result}
    reply = {"jsonrpc": "2.0", "id": rid, "result": result}
    msg = push if style == "notification" else reply
    [ev] = s.receive(frame(msg))
    assert isinstance(ev, Changes) and ev.group == "g"
    assert ev.changes[0].component == "SP" and ev.changes[0].string == "Connected"


def test_an_answer_to_an_id_we_never_sent_is_a_protocol_error() -> None:
    with pytest.raises(QrcProtocolError, match="never sent"):
        QrcSession().receive(frame({"jsonrpc": "2.0", "id": 99, "result": {}}))


def test_not_json_is_a_protocol_error() -> None:
    with pytest.raises(QrcProtocolError, match="not JSON"):
        QrcSession().receive(b"{nope\0")


def test_an_endless_frame_is_refused() -> None:
    dec = FrameDecoder(limit=100)
    with pytest.raises(QrcProtocolError, match="without a NUL"):
        dec.feed(b"x" * 101)


def test_keepalive_is_due_after_the_configured_silence() -> None:
    s = QrcSession(keepalive=30.0)
    s.request("StatusGet", {}, now=100.0)
    assert s.keepalive_due() == 130.0
    s.request("NoOp", {}, now=129.0)
    assert s.keepalive_due() == 159.0


def test_encode_message_never_contains_a_raw_nul() -> None:
    data = encode_message({"method": "Component.Set", "params": {"Value": "a\0b"}})
    assert data.count(b"\0") == 1 and data.endswith(b"\0")


@given(st.binary(max_size=300))
def test_any_bytes_give_events_or_a_protocol_error(data: bytes) -> None:
    s = QrcSession()
    s.request("NoOp", {}, 0)
    with contextlib.suppress(QrcProtocolError):
        s.receive(data)


@given(st.lists(st.sampled_from(["{", "}", '"id":1', '"result":', "[]", "null", ",", "\0", "1"]),
                max_size=30))  # fmt: skip
def test_json_ish_noise_gives_events_or_a_protocol_error(parts: list[str]) -> None:
    s = QrcSession()
    s.request("NoOp", {}, 0)
    with contextlib.suppress(QrcProtocolError):
        s.receive("".join(parts).encode())


# -- the via-core logic's pure parts ----------------------------------------------------
def test_control_names_are_discovered_in_either_spelling() -> None:
    dotted = ["call.number", "call.connect", "call.disconnect", "call.offhook", "call.pinpad.#"]
    under = [n.replace(".", "_") for n in dotted]
    assert resolve_controls(dotted)["pinpad.#"] == "call.pinpad.#"
    assert resolve_controls(under)["offhook"] == "call_offhook"
    assert "state" not in resolve_controls(dotted)  # never invented


@pytest.mark.parametrize(
    ("texts", "verdict"),
    [
        (["Dialing 2002", "Disconnected: 486 Busy Here"], "busy"),
        (["Dialing", "Busy"], "busy"),
        (["Ringing", "Disconnected: 603 Declined"], "rejected"),
        (["Call Rejected"], "rejected"),
        (["Ringing", "Disconnected: 480 Temporarily Unavailable"], "no-answer"),
        (["Dialing", "Disconnected: 503 Service Unavailable"], "failed"),
        (["Dialing", "Failed"], "failed"),
    ],
)
def test_an_ended_call_is_classified_from_the_cores_own_words(
    texts: list[str], verdict: str
) -> None:
    assert classify(texts) == verdict


def test_boolean_controls_read_from_value_or_string() -> None:
    assert is_on({"Value": 1}) and is_on({"Value": True}) and is_on({"String": "true"})
    assert not is_on({"Value": 0, "String": "false"}) and not is_on({})


def test_explain_names_the_fix_for_each_qrc_error() -> None:
    assert "Code Name 'Softphone-Lobby'" in explain(7, "", "Component.GetControls",
                                                     {"Name": "Softphone-Lobby"})  # fmt: skip
    assert "Script Access" in explain(7, "", "Component.GetControls", {"Name": "X"})
    assert "'SP'" in explain(8, "", "Component.Get", {"Name": "SP"})
    assert "drops them when a connection drops" in explain(6, "", "ChangeGroup.Poll")
    assert "Q-SYS Administrator" in explain(10, "", "StatusGet")
    assert "Method not found" in explain(-32601, "", "Nope")
