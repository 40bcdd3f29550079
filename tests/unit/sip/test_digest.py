"""Digest authentication: the RFCs' published examples first, then the behaviour."""

from __future__ import annotations

import hashlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qsipctl.sip.digest import (
    DigestCredentials,
    DigestError,
    NonceIssuer,
    Verdict,
    answer_challenge,
    choose_challenge,
    compute_ha1,
    compute_ha2,
    compute_response,
    compute_userhash,
    make_challenge_header,
    parse_authorization,
    parse_challenges,
    verify_authorization,
)
from tests.unit.sip.vectors import shared_vectors


def _vectors() -> dict[str, dict]:
    path = shared_vectors() / "digest" / "digest-vectors.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    return {v["id"]: v for v in data["vectors"]}


def _response(inputs: dict) -> str:
    return compute_response(inputs["algorithm"], inputs["password"], inputs["method"], inputs)


@pytest.mark.parametrize("vid", ["rfc2617-3.5", "rfc7616-3.9.1-md5", "rfc7616-3.9.1-sha256"])
def test_published_examples(vid):
    v = _vectors()[vid]
    i = v["inputs"]
    assert (
        compute_ha1(i["algorithm"], i["username"], i["realm"], i["password"])
        == (v["computed"]["ha1"])
    )
    assert compute_ha2(i["algorithm"], i["method"], i["uri"], i["qop"]) == v["computed"]["ha2"]
    assert _response(i) == v["expected"]["response"]


def test_rfc7616_sha512_256_follows_fips_not_the_published_text():
    """RFC 7616 §3.9.2 printed values from truncated SHA-512, not FIPS SHA-512/256.

    We implement the algorithm as FIPS 180-4 defines it (what real peers do), so
    we reproduce the recomputed values and must *not* match the printed ones.
    """
    v = _vectors()["rfc7616-3.9.2-sha512-256"]
    i = v["inputs"]
    assert _response(i) == v["computed"]["response"]
    assert _response(i) != v["expected"]["response"]
    assert compute_userhash(i["algorithm"], i["username"], i["realm"]) == v["computed"]["userhash"]
    # The published userhash is the first 256 bits of plain SHA-512, as the README says.
    truncated = hashlib.sha512(f"{i['username']}:{i['realm']}".encode()).hexdigest()[:64]
    assert truncated == v["expected"]["userhash"]


def test_rfc2617_header_round_trip():
    """The RFC 2617 challenge text, answered, yields the RFC's response."""
    header = (
        'Digest realm="testrealm@host.com", qop="auth,auth-int", '
        'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"'
    )
    (ch,) = parse_challenges([header])
    creds = DigestCredentials("Mufasa", "Circle Of Life")
    name, value = answer_challenge(ch, creds, "GET", "/dir/index.html", cnonce="0a4f113b")
    assert name == "Authorization"
    params = parse_authorization(value)
    assert params["response"] == "6629fae49393a05397450978507c4ef1"
    assert params["nc"] == "00000001"
    assert params["qop"] == "auth"
    assert params["opaque"] == "5ccc069c403ebaf9f0171e9517f40e41"


def test_parse_several_challenges_in_one_header_and_across_headers():
    values = [
        'Digest realm="a", nonce="n1", algorithm=MD5, qop="auth", '
        'Digest realm="a", nonce="n2", algorithm=SHA-256, qop="auth"',
        'Basic realm="x", Digest realm="a", nonce="n\\"3", algorithm=sha-512-256-SESS',
    ]
    chs = parse_challenges(values, "Proxy-Authenticate")
    assert [c.algorithm for c in chs] == ["MD5", "SHA-256", "SHA-512-256-sess"]
    assert chs[2].nonce == 'n"3'
    assert all(c.header_name == "Proxy-Authenticate" for c in chs)
    assert choose_challenge(chs) is chs[2]


def test_choose_skips_unknown_algorithms_and_keeps_first_on_tie():
    chs = parse_challenges(
        [
            'Digest realm="r", nonce="1", algorithm=AKAv1-MD5',
            'Digest realm="r", nonce="2"',
            'Digest realm="r", nonce="3", algorithm=MD5',
        ]
    )
    assert choose_challenge(chs).nonce == "2"
    assert choose_challenge(chs[:1]) is None


def test_parse_errors_are_digest_errors():
    with pytest.raises(DigestError):
        parse_challenges(['Digest realm="r"'])
    with pytest.raises(DigestError):
        parse_challenges(['realm="r", nonce="n"'])
    with pytest.raises(DigestError):
        parse_challenges(["Digest realm=@"])


def test_token68_scheme_is_skipped():
    assert parse_challenges(["Negotiate abc==, Digest realm=r, nonce=n"])[0].realm == "r"


@pytest.mark.parametrize(
    "algorithm", ["MD5", "MD5-sess", "SHA-256", "SHA-256-sess", "SHA-512-256", "SHA-512-256-sess"]
)
@pytest.mark.parametrize("qop", [("auth",), ("auth-int",), ()])
def test_client_and_server_agree(algorithm, qop):
    issuer = NonceIssuer(clock=lambda: 1000.0, key=b"k")
    header = make_challenge_header("lab", issuer.issue(), algorithm, qop)
    (ch,) = parse_challenges([header])
    assert ch.algorithm == algorithm and ch.qop == qop
    creds = DigestCredentials("1001", "pw")
    _, value = answer_challenge(ch, creds, "REGISTER", "sip:lab", cnonce="cn", body=b"body")
    result = verify_authorization(
        value, "REGISTER", lambda u, r: "pw" if u == "1001" else None, issuer.is_fresh, b"body"
    )
    assert result.verdict is Verdict.OK
    assert result.username == "1001" and result.algorithm == algorithm


def test_auth_int_hashes_the_body():
    (ch,) = parse_challenges(['Digest realm="r", nonce="n", qop="auth-int"'])
    creds = DigestCredentials("u", "p")
    _, value = answer_challenge(ch, creds, "INVITE", "sip:x", cnonce="c", body=b"v=0\r\n")
    assert parse_authorization(value)["qop"] == "auth-int"

    def check(body):
        return verify_authorization(value, "INVITE", lambda u, r: "p", lambda n: True, body).verdict

    assert check(b"v=0\r\n") is Verdict.OK
    assert check(b"v=1\r\n") is Verdict.BAD_PASSWORD


def test_prefers_auth_over_auth_int():
    (ch,) = parse_challenges(['Digest realm="r", nonce="n", qop="auth-int,auth"'])
    _, value = answer_challenge(ch, DigestCredentials("u", "p"), "REGISTER", "sip:r")
    assert parse_authorization(value)["qop"] == "auth"


def test_no_qop_is_rfc2069_form_without_nc():
    (ch,) = parse_challenges(['Digest realm="r", nonce="n"'])
    _, value = answer_challenge(ch, DigestCredentials("u", "p"), "REGISTER", "sip:r")
    params = parse_authorization(value)
    assert "nc" not in params and "cnonce" not in params
    ha1 = hashlib.md5(b"u:r:p").hexdigest()
    ha2 = hashlib.md5(b"REGISTER:sip:r").hexdigest()
    assert params["response"] == hashlib.md5(f"{ha1}:n:{ha2}".encode()).hexdigest()


def test_userhash_sent_when_asked_and_the_response_uses_the_real_name():
    (ch,) = parse_challenges(['Digest realm="r", nonce="n", algorithm=SHA-256, userhash=true'])
    _, value = answer_challenge(ch, DigestCredentials("1001", "pw"), "REGISTER", "sip:r")
    params = parse_authorization(value)
    assert params["username"] == hashlib.sha256(b"1001:r").hexdigest()
    assert params["userhash"] == "true"
    sent = {"username": "1001", "realm": "r", "uri": "sip:r", "nonce": "n"}  # the real name
    expected = compute_response("SHA-256", "pw", "REGISTER", sent)
    assert params["response"] == expected


def _verify(value, *, password="pw", nonce_ok=True):
    return verify_authorization(
        value,
        "REGISTER",
        lambda u, r: password if u == "1001" else None,
        lambda n: nonce_ok,
    ).verdict


def _answer(username="1001", password="pw"):
    (ch,) = parse_challenges([make_challenge_header("lab", "nonce", "SHA-256")])
    return answer_challenge(ch, DigestCredentials(username, password), "REGISTER", "sip:lab")[1]


def test_server_verdicts():
    assert _verify(_answer()) is Verdict.OK
    assert _verify(_answer(password="bad")) is Verdict.BAD_PASSWORD
    assert _verify(_answer(username="9999")) is Verdict.UNKNOWN_USER
    assert _verify(_answer(), nonce_ok=False) is Verdict.STALE
    # a wrong password with an old nonce is a wrong password, never "stale"
    assert _verify(_answer(password="bad"), nonce_ok=False) is Verdict.BAD_PASSWORD
    assert _verify("Basic Zm9vOmJhcg==") is Verdict.MALFORMED
    assert _verify(_answer().replace("qop=auth", "qop=bogus")) is Verdict.MALFORMED
    assert _verify(_answer().replace(", nc=00000001", "")) is Verdict.MALFORMED
    assert _verify('Digest username="1001", realm="lab"') is Verdict.MALFORMED
    assert (
        _verify(
            'Digest username="1001", realm="lab", nonce="n", uri="u", response="r", algorithm=XYZ'
        )
        is Verdict.MALFORMED
    )


def test_nonce_issuer_freshness_and_forgery():
    now = [100.0]
    issuer = NonceIssuer(lifetime=30, clock=lambda: now[0], key=b"secret")
    nonce = issuer.issue()
    assert issuer.is_fresh(nonce)
    now[0] = 131.0
    assert not issuer.is_fresh(nonce)
    now[0] = 110.0
    assert not NonceIssuer(lifetime=30, clock=lambda: now[0], key=b"other").is_fresh(nonce)
    assert not issuer.is_fresh("zz.abc") and not issuer.is_fresh("")


def test_credentials_repr_hides_password():
    assert "secretpw" not in repr(DigestCredentials("u", "secretpw"))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.text(max_size=80), max_size=3))
def test_parse_challenges_raises_only_digest_error(values):
    try:
        challenges = parse_challenges(values)
    except DigestError:
        return
    choose_challenge(challenges)


@settings(max_examples=150, deadline=None)
@given(
    st.text(max_size=120) | st.from_regex(r'Digest( [a-z]{1,8}=("[^"]{0,9}"|[a-z0-9]{1,5}),?){0,7}')
)
def test_verify_never_raises(value):
    result = verify_authorization(value, "REGISTER", lambda u, r: "p", lambda n: True)
    assert result.verdict in set(Verdict)
