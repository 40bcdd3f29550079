"""The baresip fixture itself: two real user agents call each other through Kamailio."""

from __future__ import annotations

import wave
from collections.abc import Callable

import pytest

from tests.fixtures.baresip import Baresip
from tests.fixtures.common import wait_until
from tests.fixtures.kamailio import Kamailio

pytestmark = pytest.mark.integration


def test_call_dtmf_and_recording(
    kamailio_factory: Callable[..., Kamailio], baresip_factory: Callable[..., Baresip]
) -> None:
    k = kamailio_factory(accounts={"3001": "pw-a", "3002": "pw-b"}, calls=True)
    reg = f"127.0.0.1:{k.udp_port}"
    caller = baresip_factory("3001", "pw-a", reg)
    callee = baresip_factory("3002", "pw-b", reg, auto_answer=True, record=True)
    assert k.registered_users() == {"3001", "3002"}
    with caller.control() as a, callee.control() as b:
        a.command("dial", f"sip:3002@{reg}")
        a.wait_event("CALL_ESTABLISHED", 10)
        a.command("sndcode", "7*")
        wait_until(lambda: b.dtmf_received() == "7*", 5)
        a.command("hangup")
        b.wait_event("CALL_CLOSED", 5)
    wait_until(lambda: len(callee.recordings()) == 2, 5)
    for path in callee.recordings():
        with wave.open(str(path)) as w:
            assert w.getnframes() > 0
