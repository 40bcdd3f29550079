"""The lab registrar's logic, request in and response out (no sockets)."""

from __future__ import annotations

import itertools

import pytest

from qsipctl.lab.registrar import LabAccount, Registrar
from qsipctl.sip.digest import (
    AuthResult,
    ClientAuth,
    DigestCredentials,
    NonceIssuer,
    parse_challenges,
)
from qsipctl.sip.message import Request, parse_message

SOURCE = ("127.0.0.1", 40000)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def registrar(clock):
    tags = (f"t{i}" for i in itertools.count())
    return Registrar(
        [LabAccount("1001", "pw1"), LabAccount("1002", "pw2")],
        clock=clock,
        nonces=NonceIssuer(lifetime=60, clock=clock, key=b"k"),
        tag=lambda: next(tags),
    )


def register(user="1001", cseq=1, auth=None, contact="<sip:1001@127.0.0.1:40000>", expires=None):
    lines = [
        "REGISTER sip:127.0.0.1 SIP/2.0",
        "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1;rport",
        "Max-Forwards: 70",
        f"From: <sip:{user}@127.0.0.1>;tag=f1",
        f"To: <sip:{user}@127.0.0.1>",
        "Call-ID: c1",
        f"CSeq: {cseq} REGISTER",
    ]
    if contact:
        lines.append(f"Contact: {contact}")
    if expires is not None:
        lines.append(f"Expires: {expires}")
    if auth:
        lines.append(f"{auth[0]}: {auth[1]}")
    msg = parse_message(("\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n").encode())
    assert isinstance(msg, Request)
    return msg


def login(registrar, user="1001", password="pw1", **kw):
    """Run the REGISTER/401/REGISTER exchange; return the final response."""
    auth = ClientAuth(DigestCredentials(user, password))
    first = registrar.handle(register(user, **kw), SOURCE)
    if first.status != 401:
        return first
    assert auth.on_challenge(first).result is AuthResult.RETRY
    return registrar.handle(auth.authorize(register(user, cseq=2, **kw)), SOURCE)


def test_unauthenticated_register_is_challenged_sha256_first(registrar):
    resp = registrar.handle(register(), SOURCE)
    assert resp.status == 401
    chs = parse_challenges(resp.headers.get_all("WWW-Authenticate"))
    assert [c.algorithm for c in chs] == ["SHA-256", "MD5"]
    assert resp.to_tag == "t0"
    assert registrar.log[-1].outcome == "challenged"


def test_right_password_registers_and_lists_the_binding(registrar, clock):
    resp = login(registrar)
    assert resp.status == 200
    assert resp.headers.get_all("Contact") == ["<sip:1001@127.0.0.1:40000>;expires=3600"]
    event = registrar.log[-1]
    assert (event.user, event.outcome, event.algorithm, event.expires) == (
        "1001",
        "registered",
        "SHA-256",
        3600,
    )
    clock.now += 3601
    assert registrar.contacts("1001") == []


def test_wrong_password_gets_a_fresh_challenge_like_kamailio(registrar):
    resp = login(registrar, password="nope")
    assert resp.status == 401
    assert not parse_challenges(resp.headers.get_all("WWW-Authenticate"))[0].stale
    assert registrar.log[-1].outcome == "wrong-password"
    assert registrar.bindings == {}


def test_unknown_aor_is_404(registrar):
    assert registrar.handle(register("9999"), SOURCE).status == 404
    assert registrar.log[-1].outcome == "unknown-user"


def test_credentials_of_another_account_are_forbidden(registrar):
    auth = ClientAuth(DigestCredentials("1002", "pw2"))
    first = registrar.handle(register("1001"), SOURCE)
    auth.on_challenge(first)
    assert registrar.handle(auth.authorize(register("1001", cseq=2)), SOURCE).status == 403


def test_old_nonce_is_stale_not_wrong_password(registrar, clock):
    auth = ClientAuth(DigestCredentials("1001", "pw1"))
    first = registrar.handle(register(), SOURCE)
    auth.on_challenge(first)
    clock.now += 61
    resp = registrar.handle(auth.authorize(register(cseq=2)), SOURCE)
    assert resp.status == 401
    assert parse_challenges(resp.headers.get_all("WWW-Authenticate"))[0].stale
    assert registrar.log[-1].outcome == "stale-nonce"
    assert auth.on_challenge(resp).result is AuthResult.RETRY
    assert registrar.handle(auth.authorize(register(cseq=3)), SOURCE).status == 200


def test_unregister_with_expires_zero_and_star(registrar):
    login(registrar)
    assert login(registrar, expires=0).status == 200
    assert registrar.log[-1].outcome == "unregistered"
    assert registrar.contacts("1001") == []
    login(registrar)
    assert login(registrar, contact="*", expires=0).status == 200
    assert registrar.contacts("1001") == []


def test_too_brief_expiry_is_423(registrar):
    resp = login(registrar, expires=10)
    assert resp.status == 423 and resp.headers.get("Min-Expires") == "60"


def test_via_gets_received_and_rport(registrar):
    resp = registrar.handle(register(), ("127.0.0.5", 41234))
    top = resp.top_via
    assert top.received == "127.0.0.5" and top.rport == 41234
    assert top.branch == "z9hG4bK1"


def test_options_and_other_methods(registrar):
    opts = parse_message(
        register()
        .to_bytes()
        .replace(b"REGISTER sip", b"OPTIONS sip")
        .replace(b"1 REGISTER", b"1 OPTIONS")
    )
    resp = registrar.handle(opts, SOURCE)
    assert resp.status == 200 and "REGISTER" in resp.headers.get("Allow")
    invite = parse_message(opts.to_bytes().replace(b"OPTIONS", b"INVITE"))
    assert registrar.handle(invite, SOURCE).status == 405
    ack = parse_message(opts.to_bytes().replace(b"OPTIONS", b"ACK"))
    assert registrar.handle(ack, SOURCE) is None


def test_unanswerable_requests_raise_sip_error_for_the_caller_to_drop(registrar):
    from qsipctl.sip.errors import SipError

    bad_contact = register(contact="<sip:1001@127.0.0.1>;expires=60").to_bytes()
    no_cseq = parse_message(bad_contact.replace(b"CSeq: 1 REGISTER\r\n", b""))
    with pytest.raises(SipError):
        registrar.handle(no_cseq, SOURCE)
    no_to = parse_message(bad_contact.replace(b"To: <sip:1001@127.0.0.1>\r\n", b""))
    with pytest.raises(SipError):
        registrar.handle(no_to, SOURCE)


def test_malformed_credentials_get_400(registrar):
    resp = registrar.handle(
        register(auth=("Authorization", 'Digest username="1001", realm="qsipctl.lab"')), SOURCE
    )
    assert resp.status == 400 and registrar.log[-1].outcome == "malformed"
