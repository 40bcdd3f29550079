"""Pure parts of the probes: verdicts, NAT detection, granted expiry, targets, timers."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from qsipctl.errors import UsageError
from qsipctl.net.resolve import _query, is_ip, split_nameserver
from qsipctl.probes.base import move_on as _move_on
from qsipctl.probes.register import describe_answer
from qsipctl.probes.result import VERDICTS, ProbeResult, verdict_for_status
from qsipctl.probes.target import adhoc_target, softphone_target
from qsipctl.sip.message import Response, parse_message
from qsipctl.site.model import Connection, Core, CoreSettings, HostPort, Softphone, TlsOptions
from qsipctl.site.secrets import Secret


def _response(via: str, extra: str = "") -> Response:
    msg = parse_message(
        (
            "SIP/2.0 200 OK\r\n"
            f"Via: {via}\r\n"
            "From: <sip:1001@pbx.test>;tag=a\r\nTo: <sip:1001@pbx.test>;tag=b\r\n"
            f"Call-ID: c\r\nCSeq: 2 REGISTER\r\n{extra}Content-Length: 0\r\n\r\n"
        ).encode()
    )
    assert isinstance(msg, Response)
    return msg


def _result() -> ProbeResult:
    return ProbeResult("register", "sip:1001@pbx.test", "udp")


@pytest.mark.parametrize(
    ("via", "local", "seen", "nat"),
    [
        # the server saw what we sent from: no NAT
        ("SIP/2.0/UDP 198.18.0.5:5060;branch=z9hG4bK1;rport=5060", ("198.18.0.5", 5060),
         "198.18.0.5:5060", False),
        # another public address and port: NAT between us and the PBX
        ("SIP/2.0/UDP 198.18.0.5:5060;branch=z9hG4bK1;rport=40123;received=198.19.0.9",
         ("198.18.0.5", 5060), "198.19.0.9:40123", True),
        # same address, port rewritten (a port-translating firewall is NAT too)
        ("SIP/2.0/UDP 198.18.0.5:5060;branch=z9hG4bK1;rport=6000", ("198.18.0.5", 5060),
         "198.18.0.5:6000", True),
        # no RFC 3581 support on the server: only the address can be compared
        ("SIP/2.0/UDP 198.18.0.5:5060;branch=z9hG4bK1;received=198.19.100.7", ("198.18.0.5", 5060),
         "198.19.100.7", True),
        ("SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bK1;rport=5060", ("2001:db8:0::1", 5060),
         "[2001:db8::1]:5060", False),
    ],
)  # fmt: skip
def test_nat_detection_from_via(via: str, local: tuple[str, int], seen: str, nat: bool) -> None:
    r = _result()
    describe_answer(r, _response(via), local)
    assert (r.seen_as, r.nat) == (seen, nat)


def test_server_identity_from_server_or_user_agent() -> None:
    via = "SIP/2.0/UDP 198.18.0.5:5060;branch=z9hG4bK1"
    r = _result()
    describe_answer(r, _response(via, "User-Agent: FPBX-16\r\n"), ("198.18.0.5", 5060))
    assert r.server_agent == "FPBX-16"
    describe_answer(r, _response(via, "Server: Asterisk PBX 20\r\n"), ("198.18.0.5", 5060))
    assert r.server_agent == "Asterisk PBX 20"


@pytest.mark.parametrize(
    ("status", "verdict"),
    [(403, "forbidden"), (404, "unknown-user"), (408, "server-timeout"), (500, "server-error"),
     (503, "server-error"), (488, "rejected"), (603, "rejected")],
)  # fmt: skip
def test_verdict_for_status(status: int, verdict: str) -> None:
    assert verdict_for_status(status) == verdict


def test_fail_message_is_plain_words_then_detail() -> None:
    r = _result().fail("timeout", "nothing came back from 198.18.0.1:5060")
    assert r.message == f"{VERDICTS['timeout']}: nothing came back from 198.18.0.1:5060"
    assert not r.ok and r.verdict == "timeout"


def test_adhoc_target_shapes() -> None:
    t = adhoc_target("sip:1001@198.18.0.1:5070", transport="tcp", password=Secret.parse("x"))
    assert (t.aor, t.request_uri, t.transport, t.port) == (
        "sip:1001@198.18.0.1",
        "sip:198.18.0.1:5070",
        "tcp",
        5070,
    )
    s = adhoc_target("sips:1001@[2001:db8::5]", transport=None, password=None)
    assert (s.transport, s.host, s.aor) == ("tls", "2001:db8::5", "sips:1001@[2001:db8::5]")
    d = adhoc_target("1001@198.18.0.1", transport=None, password=None, domain="pbx.test")
    assert (d.aor, d.request_uri) == ("sip:1001@pbx.test", "sip:pbx.test")


@pytest.mark.parametrize(
    ("text", "transport"),
    [
        ("sip:1001@198.18.0.1:5080;transport=tcp", "tcp"),
        ("sip:1001@198.18.0.1;TRANSPORT=TLS", "tls"),
        ("sips:1001@198.18.0.1;transport=tcp", "tls"),
        ("sip:1001@198.18.0.1", None),
    ],
)
def test_uri_transport_parameter_chooses_the_transport(text: str, transport: str | None) -> None:
    t = adhoc_target(text, transport=None, password=None)
    assert t.transport == transport
    assert adhoc_target(text, transport=transport, password=None).transport == transport


@pytest.mark.parametrize(
    ("text", "kw"),
    [
        ("sip:198.18.0.1", {}),  # no user
        ("sips:1001@198.18.0.1", {"transport": "udp"}),
        ("sip:1001@198.18.0.1", {"transport": "sctp"}),
        ("sip:1001@bad host", {}),
        ("sip:1001@198.18.0.1;transport=tcp", {"transport": "udp"}),  # contradiction
        ("sip:1001@198.18.0.1;transport=sctp", {}),
        ("sips:1001@198.18.0.1;transport=udp", {}),
    ],
)
def test_adhoc_target_bad_input(text: str, kw: dict) -> None:
    with pytest.raises(UsageError):
        adhoc_target(text, transport=kw.get("transport"), password=None)


def test_softphone_target_uses_profile_settings() -> None:
    phone = Softphone(
        index=1, name="Lobby", profile="generic-tls", username="2001", cid_name=None,
        transport="tls", proxy=HostPort("198.18.0.5", 5061), backup_proxy=None, register=True,
        auth_id="auth-2001", password=Secret.parse("env:X"), domain="pbx.test",
        registration_timeout=600, tls=TlsOptions("/ca.pem", True, "pbx.test"),
    )  # fmt: skip
    core = Core(
        "core-1", "Core 110f", (), "198.18.0.20", Connection("local", "198.18.0.20"),
        CoreSettings(), (phone,),
    )  # fmt: skip
    t = softphone_target(core, phone, timeout=2.0)
    assert (t.user, t.domain, t.host, t.port, t.transport) == (
        "2001", "pbx.test", "198.18.0.5", 5061, "tls"
    )  # fmt: skip
    assert (t.auth_user, t.expires, t.core, t.softphone) == ("auth-2001", 600, "core-1", "Lobby")
    assert (t.tls.ca_file, t.tls.verify, t.tls.server_name) == ("/ca.pem", True, "pbx.test")
    assert t.request_uri == "sip:pbx.test"


def test_softphone_behind_outbound_proxy_sends_there_for_the_registrar() -> None:
    from qsipctl.site.model import Expectations

    registrar, outbound = HostPort("198.18.0.5", 5070), HostPort("198.18.0.9", 5060)
    phone = Softphone(
        index=1, name="Lobby", profile="p", username="2001", cid_name=None, transport="udp",
        proxy=outbound, backup_proxy=None, register=True, auth_id="2001",
        password=Secret.parse("env:X"), domain="198.18.0.5",
        expectations=Expectations(registrar=registrar, outbound_proxy=outbound),
    )  # fmt: skip
    core = Core("c", "Core 110f", (), "198.18.0.20", Connection("local", "198.18.0.20"),
                CoreSettings(), (phone,))  # fmt: skip
    t = softphone_target(core, phone)
    assert (t.host, t.port) == ("198.18.0.9", 5060)  # where the packets go
    assert t.request_uri == "sip:198.18.0.5:5070"  # whom the REGISTER is for
    assert t.aor == "sip:2001@198.18.0.5"


def test_split_nameserver() -> None:
    assert split_nameserver("127.0.0.1") == ("127.0.0.1", 53)
    assert split_nameserver("127.0.0.1:5353") == ("127.0.0.1", 5353)
    assert split_nameserver("::1") == ("::1", 53)
    assert split_nameserver("[::1]:5353") == ("::1", 5353)
    assert is_ip("::1") and is_ip("198.18.0.1") and not is_ip("pbx.test")


@pytest.mark.parametrize("text", ["notanip", "abc:def", "127.0.0.1:", "127.0.0.1:99999", "[::1",
                                  "[::1]5353", "pbx.test:53", "127.0.0.1:５３"])  # fmt: skip
def test_split_nameserver_rejects_what_dnspython_would_crash_on(text: str) -> None:
    with pytest.raises(ValueError, match="name server"):
        split_nameserver(text)


def test_srv_records_come_priority_first_then_weighted() -> None:
    """RFC 2782 order from dnspython's processing order (a stub stands in for the resolver)."""
    import dns.rrset

    srv = ["20 100 5060 backup.", "10 0 5060 zero.", "10 60 5060 big.", "10 40 5060 small."]
    rrset = dns.rrset.from_text("_sip._udp.pbx.test.", 60, "IN", "SRV", *srv)

    class Resolver:
        async def resolve(self, name: str, rdtype: str) -> SimpleNamespace:
            return SimpleNamespace(rrset=rrset)

    async def orders() -> list[list[str]]:
        return [[str(r.target) for r in await _query(Resolver(), "x", "SRV")] for _ in range(500)]

    firsts = {"big.": 0, "small.": 0, "zero.": 0}
    for order in asyncio.run(orders()):
        assert order[-1] == "backup."
        firsts[order[0]] += 1
    assert firsts["big."] > firsts["small."] > firsts["zero."]


def test_udp_retransmits_on_timer_e_and_the_ladder_says_again() -> None:
    """A silent UDP peer (a bound socket that never answers) on loopback."""
    import socket

    from qsipctl.net.driver import SipDriver
    from qsipctl.net.errors import NoAnswer
    from qsipctl.probes.base import Conversation
    from qsipctl.sip.endpoint import Peer

    async def run() -> list[str]:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
            silent.bind(("127.0.0.1", 0))
            peer = Peer("udp", "127.0.0.1", silent.getsockname()[1])
            target = adhoc_target(f"sip:1001@127.0.0.1:{peer.port}", transport="udp", password=None)
            driver = SipDriver()
            await driver.open_udp("127.0.0.1")
            conv = Conversation(driver, peer, target.replace(timeout=1.2))
            with pytest.raises(NoAnswer):
                await conv.send(conv.build("REGISTER", "sip:127.0.0.1", "sip:x@127.0.0.1"))
            await driver.close()
            return [m.summary for m in driver.traces[0].messages]

    sent = asyncio.run(run())
    assert len(sent) >= 2 and not sent[0].endswith("(again)")
    assert all(s.endswith("(again)") for s in sent[1:])


@pytest.mark.parametrize(
    ("verdict", "status", "moves_on"),
    [
        ("timeout", None, True),  # Timer F / --timeout: no answer at all
        ("refused", None, True),
        ("closed", None, True),
        ("transport", None, True),
        ("tls-hostname", None, True),
        ("server-error", 503, True),  # RFC 3261 21.5.4: try another server
        ("server-error", 500, False),
        ("server-timeout", 408, False),  # a 408 is the server's own answer
        ("wrong-password", 401, False),
        ("forbidden", 403, False),
        ("unknown-user", 404, False),
        ("no-password", None, False),
        ("auth-unsupported", None, False),
    ],
)
def test_which_outcomes_fail_over_to_the_next_server(verdict, status, moves_on) -> None:
    r = ProbeResult("register", "sip:1001@pbx.test", "udp", status=status).fail(verdict)
    assert _move_on(r) is moves_on


def test_a_success_never_fails_over() -> None:
    r = ProbeResult("register", "sip:1001@pbx.test", "udp", status=200).succeed("ok")
    assert _move_on(r) is False
