"""Client Digest auth for any method: per-realm state, nonce-counts, stale, -sess, qop.

The first test reproduces the RFC 2617 §3.5 example through ClientAuth (with
the cnonce injected), so the header we send is byte-exact to the published
response; the rest check the answers against the server side of digest.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qsipctl.sip.digest import (
    AuthResult,
    ClientAuth,
    DigestCredentials,
    compute_response,
    make_challenge_header,
    parse_authorization,
)
from qsipctl.sip.headers import Headers
from qsipctl.sip.message import Request, Response


@pytest.fixture
def digest_vectors() -> dict[str, dict]:
    repo = Path(__file__).resolve().parents[3]
    for shared in (repo.parent / "shared", Path("/work/shared")):
        path = shared / "vectors" / "digest" / "digest-vectors.json"
        if path.exists():
            return {v["id"]: v for v in json.loads(path.read_text("utf-8"))["vectors"]}
    pytest.fail("published digest vectors not found (../shared/vectors/digest)")


def challenge(status: int, *values: str) -> Response:
    h = Headers()
    name = "WWW-Authenticate" if status == 401 else "Proxy-Authenticate"
    for value in values:
        h.add(name, value)
    return Response(status, "Unauthorized" if status == 401 else "Proxy Auth Required", h)


def req(method: str, uri: str = "sip:bob@pbx.test", body: bytes = b"") -> Request:
    return Request(method, uri, Headers(), body)


def params(request: Request, name: str = "Authorization") -> dict[str, str]:
    (value,) = request.headers.get_all(name) or [None]
    assert value is not None, f"no {name}"
    return parse_authorization(value)


def test_rfc2617_example_byte_exact(digest_vectors: dict[str, dict]) -> None:
    i = digest_vectors["rfc2617-3.5"]["inputs"]
    auth = ClientAuth(DigestCredentials(i["username"], i["password"]), cnonce=lambda: i["cnonce"])
    offer = (
        f'Digest realm="{i["realm"]}", qop="auth,auth-int", nonce="{i["nonce"]}",'
        f' opaque="{i["opaque"]}"'
    )
    assert auth.on_challenge(challenge(401, offer)).result is AuthResult.RETRY
    p = params(auth.authorize(req(i["method"], i["uri"])))
    assert p["response"] == digest_vectors["rfc2617-3.5"]["expected"]["response"]
    assert (p["qop"], p["nc"], p["cnonce"]) == ("auth", "00000001", i["cnonce"])  # auth preferred


@pytest.mark.parametrize("method", ["REGISTER", "INVITE", "BYE", "INFO"])
@pytest.mark.parametrize("status", [401, 407])
def test_any_method_any_challenge(method: str, status: int) -> None:
    auth = ClientAuth(DigestCredentials("1001", "pw"))
    ch = make_challenge_header("pbx.test", "n1", algorithm="SHA-256", qop=("auth",))
    assert auth.on_challenge(challenge(status, ch)).result is AuthResult.RETRY
    request = auth.authorize(req(method))
    name = "Authorization" if status == 401 else "Proxy-Authorization"
    p = params(request, name)
    sent = {
        "username": "1001",
        "realm": "pbx.test",
        "uri": "sip:bob@pbx.test",
        "nonce": "n1",
        "qop": "auth",
        "nc": p["nc"],
        "cnonce": p["cnonce"],
    }
    assert p["response"] == compute_response("SHA-256", "pw", method, sent)
    assert p["algorithm"] == "SHA-256"


def test_nonce_count_grows_across_requests_and_realms_are_answered_together() -> None:
    auth = ClientAuth(DigestCredentials("1001", "pw"))
    auth.on_challenge(challenge(407, make_challenge_header("proxy.test", "p1")))
    auth.on_challenge(challenge(401, make_challenge_header("pbx.test", "r1")))
    first = auth.authorize(req("INVITE"))
    assert params(first, "Proxy-Authorization")["nc"] == "00000001"
    assert params(first, "Authorization")["nc"] == "00000001"
    bye = auth.authorize(req("BYE"))  # later requests reuse both nonces, next nc
    assert params(bye, "Proxy-Authorization")["nc"] == "00000002"
    assert params(bye, "Authorization")["realm"] == "pbx.test"
    again = auth.authorize(bye)  # authorize() replaces, never piles up answers
    assert len(again.headers.get_all("Authorization")) == 1


def test_stale_is_retried_a_fresh_challenge_after_answering_is_rejected() -> None:
    auth = ClientAuth(DigestCredentials("1001", "pw"))
    auth.on_challenge(challenge(401, make_challenge_header("pbx.test", "n1")))
    auth.authorize(req("REGISTER"))
    stale = auth.on_challenge(challenge(401, make_challenge_header("pbx.test", "n2", stale=True)))
    assert stale.result is AuthResult.RETRY and stale.challenge and stale.challenge.stale
    assert params(auth.authorize(req("REGISTER")))["nonce"] == "n2"
    wrong = auth.on_challenge(challenge(401, make_challenge_header("pbx.test", "n3")))
    assert wrong.result is AuthResult.REJECTED


def test_one_time_nonce_after_forget_answers_is_not_a_wrong_password() -> None:
    auth = ClientAuth(DigestCredentials("1001", "pw"))
    auth.on_challenge(challenge(401, make_challenge_header("pbx.test", "n1")))
    auth.authorize(req("REGISTER"))
    auth.forget_answers()
    fresh = auth.on_challenge(challenge(401, make_challenge_header("pbx.test", "n2")))
    assert fresh.result is AuthResult.RETRY


def test_sess_keeps_one_cnonce_per_nonce() -> None:
    cnonces = iter(["c1", "c2", "c3"])
    auth = ClientAuth(DigestCredentials("1001", "pw"), cnonce=lambda: next(cnonces))
    ch = make_challenge_header("pbx.test", "n1", algorithm="MD5-sess", qop=("auth",))
    auth.on_challenge(challenge(401, ch))
    one, two = params(auth.authorize(req("INVITE"))), params(auth.authorize(req("BYE")))
    assert one["cnonce"] == two["cnonce"] == "c1"  # H(A1) binds the first cnonce
    assert (one["nc"], two["nc"]) == ("00000001", "00000002")
    sent = {
        "username": "1001",
        "realm": "pbx.test",
        "uri": "sip:bob@pbx.test",
        "nonce": "n1",
        "nc": "00000002",
        "cnonce": "c1",
        "qop": "auth",
    }
    assert two["response"] == compute_response("MD5-sess", "pw", "BYE", sent)


def test_auth_int_only_hashes_the_body_and_no_qop_is_rfc2069() -> None:
    auth = ClientAuth(DigestCredentials("1001", "pw"))
    auth.on_challenge(challenge(401, make_challenge_header("pbx.test", "n1", qop=("auth-int",))))
    p = params(auth.authorize(req("INFO", body=b"Signal=5\r\n")))
    assert p["qop"] == "auth-int"
    plain = ClientAuth(DigestCredentials("1001", "pw"))
    plain.on_challenge(challenge(401, make_challenge_header("pbx.test", "n1", qop=())))
    p = params(plain.authorize(req("INFO")))
    assert "qop" not in p and "nc" not in p and "cnonce" not in p


def test_unsupported_and_malformed_challenges_are_unsupported() -> None:
    auth = ClientAuth(DigestCredentials("1001", "pw"))
    for offer in (
        'Basic realm="x"',
        'Digest realm="x", nonce="n", algorithm=MD7',
        'Digest realm="x"',
    ):
        assert auth.on_challenge(challenge(401, offer)).result is AuthResult.UNSUPPORTED
    assert auth.on_challenge(Response(403, "Forbidden")).result is AuthResult.UNSUPPORTED
    assert not auth.realms  # nothing to answer on the next request


def test_a_malformed_challenge_does_not_hide_a_good_one() -> None:
    auth = ClientAuth(DigestCredentials("1001", "pw"))
    decision = auth.on_challenge(challenge(401, 'Digest realm="x"', 'Digest realm="r", nonce="n"'))
    assert decision.result is AuthResult.RETRY and decision.challenge is not None
    assert params(auth.authorize(req("REGISTER")))["realm"] == "r"
