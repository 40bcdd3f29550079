"""The asyncio driver against a real Kamailio: several transactions and an
incoming request in flight at once on one unconnected UDP port.

Kamailio relays MESSAGE (after its own 407 challenge, answered by
:class:`ClientAuth` like any method) to the registered contact (``lookup("location")``),
so our own REGISTER makes it send us a request while our OPTIONS and a
REGISTER refresh are outstanding; we answer the MESSAGE only after both
came back, so all three live in the endpoint together.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from qsipctl.net.driver import SipDriver
from qsipctl.net.errors import NetError
from qsipctl.sip.digest import AuthResult, ClientAuth, DigestCredentials
from qsipctl.sip.endpoint import Endpoint, Peer, RequestReceived
from qsipctl.sip.headers import Headers
from qsipctl.sip.message import Request
from qsipctl.sip.transaction import new_branch
from tests.fixtures.kamailio import Kamailio

pytestmark = pytest.mark.integration

RELAY = (
    'if (is_method("MESSAGE")) {'
    ' if (!pv_proxy_authenticate("$fd", "$sht(auth=>$au)", "0")) {'
    ' proxy_challenge("$fd", "1"); exit; }'
    " consume_credentials();"
    ' if (!lookup("location")) { sl_send_reply("404", "Not Here"); exit; }'
    " t_relay(); exit; }"
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
        me = SipDriver(Endpoint(accept=("MESSAGE",)))
        other = SipDriver()
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

            def message(cseq: int) -> Request:
                msg = make(other, peer, "MESSAGE", "sip:1001@pbx.test", "1002", cseq, "msg-1")
                msg.body = b"hello"
                msg.headers.add("Content-Type", "text/plain")
                return msg

            # the proxy wants Proxy-Authorization for MESSAGE too: auth for any method
            challenged = await other.request(message(1), peer, 5.0)
            assert challenged.response.status == 407
            sender = ClientAuth(DigestCredentials("1002", "secret-1002"))
            assert sender.on_challenge(challenged.response).result is AuthResult.RETRY
            sent = other.start(sender.authorize(message(2)), peer)
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


def test_stun_rtp_and_sip_share_one_port_demultiplexed_by_first_byte() -> None:
    """RFC 7983: 0-3 STUN, 128-191 RTP/RTCP, else SIP; replies leave from the SIP port."""
    import socket

    async def scenario() -> tuple[object, ...]:
        driver = SipDriver(Endpoint(accept=("OPTIONS",)))
        udp = await driver.open_udp("127.0.0.1")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as far:
            far.bind(("127.0.0.1", 0))
            far.setblocking(False)
            loop = asyncio.get_running_loop()
            stun = b"\x00\x01\x00\x00\x21\x12\xa4\x42" + bytes(12)  # a Binding request header
            rtp = b"\x80\x00\x00\x01" + bytes(8) + b"payload"
            await loop.sock_sendto(far, stun, udp.local)
            await loop.sock_sendto(far, rtp, udp.local)
            options = (
                b"OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKx\r\n"
                b"From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:b@127.0.0.1>\r\nCall-ID: demux\r\n"
                b"CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
            )
            await loop.sock_sendto(far, options, udp.local)
            got_stun = await udp.stun.recv(5.0)
            got_rtp = await udp.rtp.recv(5.0)
            incoming = await asyncio.wait_for(driver.incoming.get(), 5.0)
            udp.stun.sendto(b"\x01\x01\x00\x00", far.getsockname())  # a STUN answer, say
            reply, source = await loop.sock_recvfrom(far, 2048)
            await driver.close()
            return got_stun, got_rtp, incoming, reply, source, udp.local, far.getsockname()

    got_stun, got_rtp, incoming, reply, source, local, far = asyncio.run(scenario())
    assert got_stun is not None and got_stun[1] == far and got_stun[0][:2] == b"\x00\x01"
    assert got_rtp is not None and got_rtp[0].endswith(b"payload")
    assert isinstance(incoming, RequestReceived) and incoming.request.call_id == "demux"
    assert reply == b"\x01\x01\x00\x00" and source == local  # the SIP port, not another one


def test_icmp_port_unreachable_fails_only_the_transaction_sent_there(
    relay_kamailio: Kamailio,
) -> None:
    """One unconnected socket, two destinations: the ICMP error names the dead one."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        dead = Peer("udp", "127.0.0.1", s.getsockname()[1])  # closed below: nothing listens
    live = Peer("udp", "127.0.0.1", relay_kamailio.udp_port)

    async def scenario() -> tuple[object, object]:
        d = SipDriver()
        await d.open_udp("0.0.0.0")
        to_dead = d.start(
            make(d, dead, "OPTIONS", f"sip:{dead.host}:{dead.port}", "1001", 1, "x1"), dead
        )
        to_live = d.start(
            make(d, live, "OPTIONS", f"sip:{live.host}:{live.port}", "1001", 1, "x2"), live
        )
        results = await asyncio.gather(
            d.final(to_dead, 5.0), d.final(to_live, 5.0), return_exceptions=True
        )
        await d.close()
        return results[0], results[1]

    refused, answer = asyncio.run(scenario())
    assert isinstance(refused, NetError) and refused.kind == "refused"
    assert f"udp 127.0.0.1:{dead.port}" in str(refused)
    assert not isinstance(answer, BaseException) and answer.response.status == 200
