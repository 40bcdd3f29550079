"""The register and options probes against a real Kamailio registrar on loopback."""

from __future__ import annotations

import contextlib
import hashlib
import re
import socket
import threading

import pytest

from qsipctl.net.transport import TlsSettings
from qsipctl.probes.register import ProbeOutcome
from qsipctl.probes.register_flow import BIND, KEEP
from qsipctl.probes.runner import run_probes
from qsipctl.probes.target import ProbeTarget, adhoc_target
from qsipctl.site.secrets import Secret
from tests.fixtures.common import free_port
from tests.fixtures.kamailio import Kamailio

pytestmark = pytest.mark.integration


def target(
    k: Kamailio,
    user: str,
    password: str | None,
    transport: str = "udp",
    *,
    host: str = "127.0.0.1",
    port: int | None = None,
    ca: bool = True,
    **kwargs: object,
) -> ProbeTarget:
    tls = kwargs.pop("tls", None) or TlsSettings(str(k.ca.ca_file) if ca else None)
    return adhoc_target(
        f"sip:{user}@{host}:{port or k.port(transport)}",
        transport=transport,
        password=Secret.parse(password) if password is not None else None,
        tls=tls,  # type: ignore[arg-type]
        timeout=kwargs.pop("timeout", 3.0),  # type: ignore[arg-type]
        **kwargs,  # type: ignore[arg-type]
    )


def register(t: ProbeTarget, keep: bool = False) -> ProbeOutcome:
    """The binding test (--bind, or --keep-registered): what most tests here exercise."""
    [outcome] = run_probes([("register", t)], policy=KEEP if keep else BIND)
    return outcome


@pytest.mark.parametrize("transport", ["udp", "tcp", "tls"])
def test_register_succeeds_and_reports_details(kamailio: Kamailio, transport: str) -> None:
    r = register(target(kamailio, "1001", "secret-1001", transport), keep=True).result
    assert r.ok, r.message
    assert (r.verdict, r.status, r.transport) == ("ok", 200, transport)
    assert r.algorithm == "MD5"
    assert r.expires == 3600
    assert r.server_agent == "kamailio-qsipctl-test"
    assert r.elapsed_ms is not None and r.elapsed_ms > 0
    # loopback: the server saw exactly our own address and port, so no NAT
    assert r.seen_as == r.local and r.nat is False
    assert r.unregistered is None  # kept
    local_port = r.local.rsplit(":", 1)[1]
    [contact] = kamailio.contacts("1001")
    assert f"127.0.0.1:{local_port}" in contact


@pytest.mark.parametrize("evidence", [True, False])
def test_wire_trace_kept_only_when_asked(kamailio: Kamailio, evidence: bool) -> None:
    # --pcap and --ladder read the trace; without them a large run keeps none of it
    t = target(kamailio, "1001", "secret-1001").replace(evidence=evidence)
    outcome = register(t)
    assert outcome.result.ok, outcome.result.message
    assert kamailio.contacts("1001") == []  # bound and unbound either way
    sent = [m.summary.split()[0] for tr in outcome.traces for m in tr.messages
            if m.direction == "out"]  # fmt: skip
    assert sent == (["REGISTER"] * 4 if evidence else [])


def test_unregistration_removes_the_binding_on_the_server(kamailio: Kamailio) -> None:
    register(target(kamailio, "1002", "secret-1002"), keep=True)
    assert kamailio.contacts("1002"), "precondition: the kept registration is on the server"
    r = register(target(kamailio, "1001", "secret-1001")).result
    assert r.ok and r.unregistered is True
    assert kamailio.contacts("1001") == []
    assert kamailio.registered_users() == {"1002"}


def test_requested_expiry_is_what_the_server_grants(kamailio: Kamailio) -> None:
    r = register(target(kamailio, "1001", "secret-1001", expires=120), keep=True).result
    assert r.ok and r.expires == 120


def test_wrong_password(kamailio: Kamailio) -> None:
    r = register(target(kamailio, "1001", "not-the-password")).result
    assert not r.ok
    assert (r.verdict, r.status) == ("wrong-password", 401)
    assert r.message.startswith("wrong password")
    assert "not-the-password" not in repr(r)
    assert kamailio.contacts("1001") == []


def test_unknown_user(kamailio: Kamailio) -> None:
    r = register(target(kamailio, "8888", "whatever")).result
    assert (r.ok, r.verdict, r.status) == (False, "unknown-user", 404)


def test_auth_user_of_another_account_is_forbidden(kamailio: Kamailio) -> None:
    r = register(target(kamailio, "1001", "secret-1002", auth_user="1002")).result
    assert (r.ok, r.verdict, r.status) == (False, "forbidden", 403)


def test_server_error_is_reported_as_5xx(kamailio: Kamailio) -> None:
    r = register(target(kamailio, "1500", "x")).result
    assert (r.ok, r.verdict, r.status) == (False, "server-error", 503)


@pytest.mark.parametrize(
    ("user", "verdict", "words"),
    [
        ("1408", "server-timeout", "the PBX says a downstream hop did not answer (408): 408"),
        ("1603", "rejected", "the server rejected the request: 603"),
    ],
)
def test_other_final_answers_have_plain_words(
    kamailio: Kamailio, user: str, verdict: str, words: str
) -> None:
    r = register(target(kamailio, user, "x")).result
    assert (r.ok, r.verdict, r.status) == (False, verdict, int(user[1:]))
    assert r.message.startswith(words)


def test_no_password_configured(kamailio: Kamailio) -> None:
    r = register(target(kamailio, "1001", None)).result
    assert (r.ok, r.verdict) == (False, "no-password")


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_nothing_listening_is_connection_refused(kamailio: Kamailio, transport: str) -> None:
    kind = socket.SOCK_DGRAM if transport == "udp" else socket.SOCK_STREAM
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # the port is closed again: nothing listens there
    r = register(target(kamailio, "1001", "secret-1001", transport, port=port)).result
    assert (r.ok, r.verdict) == (False, "refused")
    assert r.message.startswith("connection refused")


def test_silent_server_is_no_answer(kamailio: Kamailio) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))  # receives and never answers
        port = silent.getsockname()[1]
        r = register(target(kamailio, "1001", "secret-1001", port=port, timeout=1.2)).result
        silent.settimeout(0.2)
        got = []
        with contextlib.suppress(TimeoutError):
            while True:
                got.append(silent.recv(4096))
    # Timer E: sent at 0 and again at T1 (0.5 s), the same request (same branch)
    assert len(got) == 2 and got[0] == got[1]
    assert (r.ok, r.verdict) == (False, "timeout")
    assert r.message.startswith("no answer: wrong transport or port, or a firewall")


def test_lost_request_is_retransmitted_and_registers(kamailio: Kamailio) -> None:
    """A relay in front of Kamailio drops the first datagram: Timer E saves the probe."""
    relay = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    relay.bind(("127.0.0.1", 0))
    upstream = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    upstream.connect(("127.0.0.1", kamailio.udp_port))
    stop = threading.Event()

    def pump() -> None:
        client, dropped = None, False
        relay.settimeout(0.05)
        upstream.settimeout(0.05)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                data, client = relay.recvfrom(65535)
                if dropped:
                    upstream.send(data)
                dropped = True
            with contextlib.suppress(TimeoutError):
                answer = upstream.recv(65535)
                if client is not None:
                    relay.sendto(answer, client)

    t = threading.Thread(target=pump, daemon=True)
    t.start()
    try:
        port = relay.getsockname()[1]
        outcome = register(target(kamailio, "1001", "secret-1001", port=port), keep=True)
    finally:
        stop.set()
        t.join(timeout=5)
        relay.close()
        upstream.close()
    r = outcome.result
    assert r.ok, r.message
    assert kamailio.contacts("1001")
    sent = [m.summary for m in outcome.traces[0].messages if m.direction == "out"]
    assert sent[1].endswith("(again)") and not sent[0].endswith("(again)")
    assert r.elapsed_ms is not None and r.elapsed_ms >= 400  # waited T1 (500 ms) for Timer E


def test_tls_certificate_for_another_name(kamailio: Kamailio) -> None:
    t = target(
        kamailio, "1001", "secret-1001", "tls", host="127.0.0.2", port=kamailio.tls_wrong_name_port
    )
    r = register(t).result
    assert (r.ok, r.verdict) == (False, "tls-hostname")
    assert "127.0.0.2" in r.message


def test_tls_expected_name_differs(kamailio: Kamailio) -> None:
    tls = TlsSettings(str(kamailio.ca.ca_file), True, "other.test")
    r = register(target(kamailio, "1001", "secret-1001", "tls", tls=tls)).result
    assert (r.ok, r.verdict) == (False, "tls-hostname")


def test_tls_untrusted_certificate(kamailio: Kamailio) -> None:
    r = register(target(kamailio, "1001", "secret-1001", "tls", ca=False)).result
    assert (r.ok, r.verdict) == (False, "tls-certificate")


def test_tls_name_checked_against_dns_name_in_certificate(kamailio: Kamailio) -> None:
    tls = TlsSettings(str(kamailio.ca.ca_file), True, kamailio.realm)
    r = register(target(kamailio, "1001", "secret-1001", "tls", tls=tls)).result
    assert r.ok, r.message


def test_tls_without_verification_works_and_warns(kamailio: Kamailio) -> None:
    tls = TlsSettings(None, verify=False)
    r = register(target(kamailio, "1001", "secret-1001", "tls", tls=tls)).result
    assert r.ok
    assert any("not verified" in w for w in r.warnings)


def test_sips_target_uses_tls(kamailio: Kamailio) -> None:
    t = adhoc_target(
        f"sips:1001@127.0.0.1:{kamailio.tls_port}",
        transport=None,
        password=Secret.parse("secret-1001"),
        tls=TlsSettings(str(kamailio.ca.ca_file)),
    )
    r = register(t).result
    assert r.ok and r.transport == "tls"


def test_options_reports_allow_and_supported(kamailio: Kamailio) -> None:
    t = adhoc_target(
        f"sip:127.0.0.1:{kamailio.tcp_port}", transport="tcp", password=None, need_user=False
    )
    [outcome] = run_probes([("options", t)])
    r = outcome.result
    assert r.ok and r.status == 200
    assert "REGISTER" in r.allow and "OPTIONS" in r.allow
    assert r.supported == ["path", "outbound"]
    assert r.elapsed_ms is not None


def test_options_to_nothing_fails(kamailio: Kamailio) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t = adhoc_target(f"sip:127.0.0.1:{port}", transport="tcp", password=None, need_user=False)
    [outcome] = run_probes([("options", t)])
    assert (outcome.result.ok, outcome.result.verdict) == (False, "refused")


@pytest.fixture(scope="module")
def kamailio_sha256(kamailio_factory) -> Kamailio:
    return kamailio_factory(accounts={"3001": "sha-secret"}, algorithm="SHA-256")


def test_sha256_challenge_is_answered(kamailio_sha256: Kamailio) -> None:
    r = register(target(kamailio_sha256, "3001", "sha-secret")).result
    assert r.ok, r.message
    assert r.algorithm == "SHA-256"
    assert r.unregistered is True


def test_sha256_wrong_password(kamailio_sha256: Kamailio) -> None:
    r = register(target(kamailio_sha256, "3001", "nope")).result
    assert (r.verdict, r.algorithm) == ("wrong-password", "SHA-256")


def test_trace_records_the_whole_exchange(kamailio: Kamailio) -> None:
    outcome = register(target(kamailio, "1001", "secret-1001"))
    [trace] = outcome.traces
    summaries = [(m.direction, m.summary.split()[0]) for m in trace.messages]
    # the binding query (challenged, then answered), our binding, its removal
    assert summaries == [
        ("out", "REGISTER"),
        ("in", "401"),
        ("out", "REGISTER"),
        ("in", "200"),
        ("out", "REGISTER"),
        ("in", "200"),
        ("out", "REGISTER"),
        ("in", "200"),
    ]
    assert len(trace.segments) == 8


def test_register_over_ipv6(kamailio: Kamailio) -> None:
    t = target(kamailio, "1001", "secret-1001", host="[::1]", port=kamailio.udp6_port)
    r = register(t, keep=True).result
    assert r.ok, r.message
    assert r.server == f"[::1]:{kamailio.udp6_port}"
    assert r.local is not None and r.local.startswith("[::1]:")
    assert r.nat is False
    assert any("[::1]" in c for c in kamailio.contacts("1001"))


def test_options_over_ipv6(kamailio: Kamailio) -> None:
    t = adhoc_target(
        f"sip:[::1]:{kamailio.udp6_port}", transport="udp", password=None, need_user=False
    )
    [outcome] = run_probes([("options", t)])
    assert outcome.result.ok and outcome.result.status == 200


def test_proxy_authentication_407(kamailio: Kamailio) -> None:
    outcome = register(target(kamailio, "7001", "proxy-secret"), keep=True)
    r = outcome.result
    assert r.ok, r.message
    assert kamailio.contacts("7001")
    assert [m.summary.split()[0] for m in outcome.traces[0].messages][:2] == ["REGISTER", "407"]


def test_proxy_authentication_wrong_password(kamailio: Kamailio) -> None:
    r = register(target(kamailio, "7001", "nope")).result
    assert (r.ok, r.verdict, r.status) == (False, "wrong-password", 407)


def _sent_registers(outcome: ProbeOutcome) -> list[bytes]:
    segs = [s.data for s in outcome.traces[0].segments if s.direction == "out"]
    return [d for d in segs if d.startswith(b"REGISTER ")]


def test_proxy_407_then_registrar_401_carries_both_answers(kamailio: Kamailio) -> None:
    outcome = register(target(kamailio, "7701", "both-secret"))
    r = outcome.result
    assert r.ok, r.message
    summaries = [m.summary.split()[0] for m in outcome.traces[0].messages]
    assert summaries[:6] == ["REGISTER", "407", "REGISTER", "401", "REGISTER", "200"], summaries
    sent = _sent_registers(outcome)
    # the third REGISTER (the binding query), our binding and the unregister each
    # answer both hops
    for data in (sent[2], sent[3], sent[-1]):
        assert b"\r\nProxy-Authorization: Digest " in data
        assert b"\r\nAuthorization: Digest " in data
    assert b"\r\nContact:" not in sent[2] and b"\r\nContact:" in sent[3]
    assert b"Expires: 0" in sent[-1] and len(sent) == 5  # bind, unbind: no new challenge
    assert r.unregistered is True
    assert kamailio.contacts("7701") == []


def test_proxy_and_registrar_wrong_password(kamailio: Kamailio) -> None:
    r = register(target(kamailio, "7701", "nope")).result
    assert (r.ok, r.verdict, r.status) == (False, "wrong-password", 407)


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_local_address_is_used_and_seen_by_the_server(kamailio: Kamailio, transport: str) -> None:
    t = target(kamailio, "1001", "secret-1001", transport, local_address="127.0.0.3")
    r = register(t, keep=True).result
    assert r.ok, r.message
    assert r.local is not None and r.local.startswith("127.0.0.3:")
    assert r.seen_as == r.local and r.nat is False
    [contact] = kamailio.contacts("1001")
    assert "127.0.0.3" in contact


def test_unusable_local_address_is_a_transport_failure(kamailio: Kamailio) -> None:
    # 198.18.0.99 is not configured anywhere on this machine: bind() fails
    r = register(target(kamailio, "1001", "secret-1001", local_address="198.18.0.99")).result
    assert (r.ok, r.verdict) == (False, "transport")
    assert "from 198.18.0.99" in r.message


@pytest.fixture(scope="module")
def kamailio_one_time_nonce(kamailio_factory) -> Kamailio:
    # each nonce is good for one request only: our pre-authorized unregistration is
    # challenged again with a fresh (not stale) nonce, which is not a wrong password
    return kamailio_factory(
        accounts={"4001": "otn-secret"}, modparams=('modparam("auth", "one_time_nonce", 1)',)
    )


def test_one_time_nonce_server_still_unregisters(kamailio_one_time_nonce: Kamailio) -> None:
    outcome = register(target(kamailio_one_time_nonce, "4001", "otn-secret"))
    r = outcome.result
    assert r.ok and r.verdict == "ok", r.message
    assert r.unregistered is True, r.warnings
    assert kamailio_one_time_nonce.contacts("4001") == []
    statuses = [m.summary.split()[0] for m in outcome.traces[0].messages if m.direction == "in"]
    assert statuses == ["401", "200", "401", "200", "401", "200"]  # query, bind, unbind


def test_one_time_nonce_wrong_password_is_still_detected(
    kamailio_one_time_nonce: Kamailio,
) -> None:
    r = register(target(kamailio_one_time_nonce, "4001", "bad")).result
    assert (r.ok, r.verdict) == (False, "wrong-password")


@pytest.fixture(scope="module")
def kamailio_stale(kamailio_factory) -> Kamailio:
    return kamailio_factory(
        accounts={"5001": "stale-secret"},
        modparams=('modparam("auth", "one_time_nonce", 1)',),
        stale_on_reuse=True,
    )


def test_stale_nonce_is_retried_with_the_new_one(kamailio_stale: Kamailio) -> None:
    outcome = register(target(kamailio_stale, "5001", "stale-secret"))
    r = outcome.result
    assert r.ok and r.unregistered is True, (r.message, r.warnings)
    inbound = [s.data for s in outcome.traces[0].segments if s.direction == "in"]
    statuses = [d.split(b" ", 2)[1] for d in inbound]
    assert statuses == [b"401", b"200", b"401", b"200", b"401", b"200"]  # query, bind, unbind
    # the binding's and the unregistration's reused nonces were refused as stale
    assert b"stale=true" in inbound[2] and b"stale=true" in inbound[4]


@pytest.fixture(scope="module")
def kamailio_auth_int(kamailio_factory) -> Kamailio:
    return kamailio_factory(accounts={"6001": "ai-secret"}, challenge_flags="2")


def test_auth_int_only_server_is_not_blamed_on_the_password(kamailio_auth_int: Kamailio) -> None:
    """Kamailio 5.6 offers qop=auth-int alone and rejects our (RFC 2617-correct) answer.

    The right password must not read as a plain "wrong password": the verdict
    names auth-int as the other possible cause.
    """
    outcome = register(target(kamailio_auth_int, "6001", "ai-secret"))
    r = outcome.result
    sent = [s.data for s in outcome.traces[0].segments if s.direction == "out"]
    assert b"qop=auth-int" in sent[1]
    # our answer is RFC 2617 §3.2.2 to the letter (computed here independently): the
    # rejection is Kamailio's, so the verdict must not blame the password alone
    head = sent[1].decode().split("\r\n\r\n", 1)[0]
    auth = next(ln for ln in head.split("\r\n") if ln.startswith("Authorization:"))
    p = dict(re.findall(r'(\w+)="?([^",]*)"?', auth.split("Digest", 1)[1]))

    def md5(text: str) -> str:
        return hashlib.md5(text.encode()).hexdigest()

    ha1 = md5(f"6001:{p['realm']}:ai-secret")
    ha2 = md5(f"REGISTER:{p['uri']}:{md5('')}")  # auth-int: H(entity-body), empty here
    expected = md5(f"{ha1}:{p['nonce']}:{p['nc']}:{p['cnonce']}:auth-int:{ha2}")
    assert p["response"] == expected
    assert (r.ok, r.verdict) == (False, "wrong-password")
    assert "qop=auth-int" in r.message and "Kamailio" in r.message


@pytest.fixture(scope="module")
def kamailio_two_challenges(kamailio_factory) -> Kamailio:
    # RFC 8760: MD5 listed first, then Kamailio's own SHA-256 for the same realm; Kamailio
    # never issued the MD5 nonce, so answering it cannot succeed: success proves SHA-256
    decoy = 'Digest realm="127.0.0.1", nonce="decoy-md5", qop="auth", algorithm=MD5'
    return kamailio_factory(
        accounts={"3101": "two-secret"}, algorithm="SHA-256", decoy_challenge=decoy
    )


def test_strongest_of_several_challenges_is_answered(kamailio_two_challenges: Kamailio) -> None:
    outcome = register(target(kamailio_two_challenges, "3101", "two-secret"))
    r = outcome.result
    first_401 = next(s.data for s in outcome.traces[0].segments if s.direction == "in")
    assert first_401.count(b"WWW-Authenticate:") == 2 and b"decoy-md5" in first_401
    assert r.ok, r.message
    assert r.algorithm == "SHA-256" and r.unregistered is True
    sent = b"".join(s.data for s in outcome.traces[0].segments if s.direction == "out")
    assert b"decoy-md5" not in sent


@pytest.fixture(scope="module")
def kamailio_min_expires(kamailio_factory) -> Kamailio:
    return kamailio_factory(
        accounts={"4101": "min-secret"},
        modparams=(
            'modparam("registrar", "min_expires", 60)',
            'modparam("registrar", "min_expires_mode", 1)',  # 423 instead of silently raising
        ),
    )


def test_interval_too_brief_is_retried_with_min_expires(kamailio_min_expires: Kamailio) -> None:
    outcome = register(target(kamailio_min_expires, "4101", "min-secret", expires=30), keep=True)
    r = outcome.result
    inbound = [m.summary.split()[0] for m in outcome.traces[0].messages if m.direction == "in"]
    # query, 423 to our binding, 200 to the retry (keep: no unregister)
    assert inbound == ["401", "200", "423", "200"]
    assert r.ok, r.message
    assert r.expires == 60
    assert any("at least 60 s" in w for w in r.warnings), r.warnings
    assert kamailio_min_expires.contacts("4101")


@pytest.fixture(scope="module")
def kamailio_v6_streams(kamailio_factory) -> tuple[Kamailio, int, int]:
    tcp, tls = free_port(host="::1"), free_port(host="::1")
    k = kamailio_factory(
        accounts={"1001": "secret-1001"}, extra_listen=(f"tcp:[::1]:{tcp}", f"tls:[::1]:{tls}")
    )
    return k, tcp, tls


@pytest.mark.parametrize("transport", ["tcp", "tls"])
def test_register_over_ipv6_streams(kamailio_v6_streams, transport: str) -> None:
    k, tcp, tls = kamailio_v6_streams
    port = tcp if transport == "tcp" else tls
    r = register(target(k, "1001", "secret-1001", transport, host="[::1]", port=port)).result
    assert r.ok, r.message  # TLS: the certificate names IP ::1, verified by default
    assert (r.transport, r.server) == (transport, f"[::1]:{port}")
    assert r.nat is False and r.unregistered is True
