"""The asyncio driver against a real Kamailio: several transactions and an
incoming request in flight at once on one unconnected UDP port.

Kamailio relays MESSAGE to the registered contact (``lookup("location")``),
so our own REGISTER makes it send us a request while our OPTIONS and a
REGISTER refresh are outstanding; we answer the MESSAGE only after both
came back, so all three live in the endpoint together.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from qsipctl.net.driver import SipDriver
from qsipctl.sip.auth import AuthResult, ClientAuth
from qsipctl.sip.digest import DigestCredentials
from qsipctl.sip.endpoint import Endpoint, Peer, RequestReceived
from qsipctl.sip.headers import Headers
from qsipctl.sip.message import Request
from qsipctl.sip.transaction import new_branch
from tests.fixtures.kamailio import Kamailio

pytestmark = pytest.mark.integration

RELAY = (
    'if (is_method("MESSAGE")) { if (!lookup("location")) { sl_send_reply("404", "Not Here"); '
    "exit; } t_relay(); exit; }"
)


def make(driver: SipDriver, peer: Peer, method: str, uri: str, user: str, cseq: int,
         call_id: str, extra: list[tuple[str, str]] | None = None) -> Request:  # fmt: skip
    host, port = driver.local_for(peer)
    h = Headers()
    h.add("Via", f"SIP/2.0/UDP {host}:{port};branch={new_branch()};rport")
    h.add("Max-Forwards", "70")
    h.add("From", f"<sip:{user}@pbx.test>;tag={call_id}-tag")
    h.add("To", f"<{uri if method != 'REGISTER' else f'sip:{user}@pbx.test'}>")
    h.add("Call-ID", call_id)
    h.add("CSeq", f"{cseq} {method}")
    for name, value in extra or []:
        h.add(name, value)
    return Request(method, uri, h)


@pytest.fixture(scope="module")
def relay_kamailio(kamailio_factory: Callable[..., Kamailio]) -> Kamailio:
    return kamailio_factory(extra_route=RELAY)


def test_two_transactions_and_an_incoming_request_at_once(relay_kamailio: Kamailio) -> None:
    k = relay_kamailio
    peer = Peer("udp", "127.0.0.1", k.udp_port)

    async def scenario() -> None:
        me = SipDriver(Endpoint(accept=("MESSAGE",)), label="driver test")
        other = SipDriver(label="sender")
        await me.open_udp("127.0.0.1")
        await other.open_udp("127.0.0.1")
        try:
            auth = ClientAuth(DigestCredentials("1001", "secret-1001"))
            host, port = me.local_for(peer)
            contact = [("Contact", f"<sip:1001@{host}:{port}>"), ("Expires", "60")]
            reg = make(me, peer, "REGISTER", "sip:pbx.test", "1001", 1, "reg-1", contact)
            first = await me.request(reg, peer, 5.0)
            assert first.response.status == 401
            assert auth.on_challenge(first.response).result is AuthResult.RETRY
            reg = auth.authorize(
                make(me, peer, "REGISTER", "sip:pbx.test", "1001", 2, "reg-1", contact)
            )
            assert (await me.request(reg, peer, 5.0)).response.status == 200

            msg = make(other, peer, "MESSAGE", "sip:1001@pbx.test", "1002", 1, "msg-1")
            msg.body = b"hello"
            msg.headers.add("Content-Type", "text/plain")
            sent = other.start(msg, peer)
            incoming = await asyncio.wait_for(me.incoming.get(), 5.0)
            assert isinstance(incoming, RequestReceived) and incoming.request.body == b"hello"

            # the MESSAGE is still unanswered: now two client transactions at once
            options = me.start(
                make(me, peer, "OPTIONS", f"sip:127.0.0.1:{k.udp_port}", "1001", 1, "opt-1"), peer
            )
            refresh = me.start(
                auth.authorize(
                    make(me, peer, "REGISTER", "sip:pbx.test", "1001", 3, "reg-1", contact)
                ),
                peer,
            )
            got = await asyncio.gather(me.final(options, 5.0), me.final(refresh, 5.0))
            assert [a.response.status for a in got] == [200, 200]
            assert incoming.tx is not None and incoming.tx.state == "trying"
            me.respond(incoming.tx, me.endpoint.response_for(incoming.tx, 200, "Got it"))
            assert (await other.final(sent, 5.0)).response.reason == "Got it"

            unreg = auth.authorize(
                make(
                    me,
                    peer,
                    "REGISTER",
                    "sip:pbx.test",
                    "1001",
                    4,
                    "reg-1",
                    [("Contact", contact[0][1]), ("Expires", "0")],
                )
            )
            assert (await me.request(unreg, peer, 5.0)).response.status == 200
        finally:
            await me.close()
            await other.close()

    asyncio.run(scenario())
    assert k.contacts("1001") == []
