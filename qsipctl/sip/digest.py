"""HTTP Digest authentication as SIP uses it (RFC 2617, RFC 7616, RFC 8760).

Sans-IO: strings in, strings out.  The client side parses challenges, picks
one and answers it, and :class:`ClientAuth` keeps its state across requests
(nonce-counts, realms, what a second challenge means); the server side (the
embedded lab registrar, tests) issues challenges and checks answers.
Randomness (cnonce) is injectable so that tests reproduce the RFCs'
published examples byte for byte.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import hmac
import os
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from qsipctl.sip.errors import SipError
from qsipctl.sip.headers import quote, unquote
from qsipctl.sip.message import Request, Response

# hashlib's constructor for each Digest algorithm (RFC 7616 §3.2, RFC 8760), weakest first;
# the direct constructors, as hashlib.new(name) looks the name up again at every hash
_HASHES: dict[str, Callable[[bytes], Any]] = {
    "MD5": hashlib.md5,
    "SHA-256": hashlib.sha256,
    "SHA-512-256": functools.partial(hashlib.new, "sha512_256"),
}
# Canonical spellings, each with its -sess variant; the wire value is matched case-insensitively.
ALGORITHMS = tuple(name + sess for name in _HASHES for sess in ("", "-sess"))
# Higher is stronger; the -sess variant is ranked just above its base so that
# two otherwise equal offers resolve deterministically.
_STRENGTH = {name: rank for rank, name in enumerate(ALGORITHMS)}
_CANONICAL = {name.lower(): name for name in ALGORITHMS}
# what an Authorization must carry, whatever its qop (RFC 7616 §3.4)
_REQUIRED = ("username", "realm", "nonce", "uri", "response")
_QOPS = frozenset({"auth", "auth-int"})  # the qop values we can answer (RFC 7616 §3.3)
# Credentials' parameters sent as tokens; the others are quoted strings (RFC 7616 §3.4).
_TOKEN_PARAMS = frozenset({"algorithm", "qop", "nc", "userhash"})


class DigestError(SipError):
    """A challenge or credentials header that cannot be used."""


# --------------------------------------------------------------------------
# auth-param grammar (RFC 7235 §2.1, RFC 3261 §25.1)
# --------------------------------------------------------------------------

_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
# One item of a challenge list, after any commas and white space: a parameter
# (its value a token, a quoted string or a token68), a token68 (token "="s,
# then a comma or the end), or a bare token, which starts a new challenge.
_AUTH_ITEM = re.compile(
    rf"""[ \t\r\n,]*(?:
      (?P<name>{_TOKEN})[ \t\r\n]*=[ \t\r\n]*
      (?P<value>"(?:[^"\\]++|\\.)*+"|{_TOKEN}=+(?=[ \t]*(?:,|$))|{_TOKEN})
    | (?P<token68>{_TOKEN}=+)(?=[ \t]*(?:,|$))
    | (?P<scheme>{_TOKEN})
    )[ \t\r\n]*""",
    re.VERBOSE | re.DOTALL,
)


def _parse_auth_values(values: Iterable[str]) -> list[tuple[str, dict[str, str]]]:
    """Every (scheme, params) in the given header values, in order.

    Commas separate both parameters and challenges, so a new challenge is
    recognised as a token that is *not* followed by ``=``.
    """
    result: list[tuple[str, dict[str, str]]] = []
    for value in values:
        pos, end = 0, len(value.rstrip(" \t\r\n,"))
        while pos < end:
            m = _AUTH_ITEM.match(value, pos)
            if m is None:
                raise DigestError(f"unexpected {value[pos:][:20]!r} in auth header {value!r}")
            pos = m.end()
            if m["scheme"]:
                result.append((m["scheme"], {}))
            elif not result:
                raise DigestError(f"auth header does not start with a scheme: {value!r}")
            elif m["token68"]:
                result[-1][1].setdefault("", m["token68"])
            else:
                quoted = m["value"].startswith('"')
                result[-1][1][m["name"].lower()] = unquote(m["value"]) if quoted else m["value"]
    return result


# --------------------------------------------------------------------------
# Challenges (client side)
# --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Challenge:
    """One Digest challenge as received; ``algorithm`` is canonical when known."""

    scheme: str
    realm: str
    nonce: str
    opaque: str | None = None
    algorithm: str = "MD5"
    qop: tuple[str, ...] = ()
    stale: bool = False
    userhash: bool = False
    header_name: str = "WWW-Authenticate"

    @property
    def supported(self) -> bool:
        return self.scheme.lower() == "digest" and self.algorithm in _STRENGTH


def parse_challenges(values: list[str], header_name: str = "WWW-Authenticate") -> list[Challenge]:
    """Parse every Digest challenge in ``values`` (several headers or several per header).

    Non-Digest schemes (Basic, Bearer, ...) are skipped: SIP forbids Basic and we
    cannot answer the others.  A Digest challenge without realm or nonce is an
    error because nothing sensible can be answered to it.
    """
    return [
        _challenge_from_params(scheme, params, header_name)
        for scheme, params in _parse_auth_values(values)
        if scheme.lower() == "digest"
    ]


def _challenge_from_params(scheme: str, params: dict[str, str], header_name: str) -> Challenge:
    if "realm" not in params or "nonce" not in params:
        raise DigestError(f"{header_name}: Digest challenge lacks realm or nonce")
    algorithm = params.get("algorithm", "MD5")
    qop = tuple(q.strip().lower() for q in params.get("qop", "").split(",") if q.strip())
    return Challenge(
        scheme=scheme,
        realm=params["realm"],
        nonce=params["nonce"],
        opaque=params.get("opaque"),
        algorithm=_CANONICAL.get(algorithm.lower(), algorithm),
        qop=qop,
        stale=params.get("stale", "").lower() == "true",
        userhash=params.get("userhash", "").lower() == "true",
        header_name=header_name,
    )


def choose_challenge(challenges: Iterable[Challenge]) -> Challenge | None:
    """The challenge with the strongest algorithm we support; the first one on ties.

    RFC 8760 §2.4 lets the UAC follow local policy; ours is "strongest wins", so
    a server listing MD5 before SHA-256 for old phones still gets SHA-256 from us.
    """
    usable = [ch for ch in challenges if ch.supported and (not ch.qop or _QOPS & set(ch.qop))]
    return max(usable, key=lambda ch: _STRENGTH[ch.algorithm], default=None)  # first of equals


# --------------------------------------------------------------------------
# The arithmetic (pure; tested against the RFC examples)
# --------------------------------------------------------------------------


def hash_hex(algorithm: str, data: str | bytes) -> str:
    """H(data) for a Digest algorithm name (with or without ``-sess``)."""
    new = _HASHES.get(algorithm.removesuffix("-sess"))
    if new is None:
        raise DigestError(f"unsupported digest algorithm {algorithm}")
    return str(new(data.encode("utf-8") if isinstance(data, str) else data).hexdigest())


def compute_ha1(
    algorithm: str, username: str, realm: str, password: str, nonce: str = "", cnonce: str = ""
) -> str:
    """H(A1); for ``-sess`` algorithms A1 also binds the nonce and cnonce (RFC 7616 §3.4.2)."""
    ha1 = hash_hex(algorithm, f"{username}:{realm}:{password}")
    if algorithm.endswith("-sess"):
        ha1 = hash_hex(algorithm, f"{ha1}:{nonce}:{cnonce}")
    return ha1


def compute_ha2(algorithm: str, method: str, uri: str, qop: str | None, body: bytes = b"") -> str:
    """H(A2); ``auth-int`` adds the hash of the body so it cannot be swapped in transit."""
    if qop == "auth-int":
        return hash_hex(algorithm, f"{method}:{uri}:{hash_hex(algorithm, body)}")
    return hash_hex(algorithm, f"{method}:{uri}")


def compute_response(
    algorithm: str, password: str, method: str, params: Mapping[str, str], body: bytes = b""
) -> str:
    """The ``response`` parameter for the credentials' other parameters.

    ``params`` is what the Authorization carries (or will): username (the real
    one, not a userhash), realm, nonce, uri and, with a qop, nc and cnonce.
    The client and the server compute from the same mapping, so they cannot
    disagree about which value goes where.  Without qop it is the RFC 2069 form.
    """
    nonce, qop, cnonce = params["nonce"], params.get("qop"), params.get("cnonce", "")
    ha1 = compute_ha1(algorithm, params["username"], params["realm"], password, nonce, cnonce)
    ha2 = compute_ha2(algorithm, method, params["uri"], qop, body)
    if qop:
        return hash_hex(algorithm, f"{ha1}:{nonce}:{params['nc']}:{cnonce}:{qop}:{ha2}")
    return hash_hex(algorithm, f"{ha1}:{nonce}:{ha2}")


def compute_userhash(algorithm: str, username: str, realm: str) -> str:
    """RFC 7616 §3.4.4: the username the server asked us not to send in clear."""
    return hash_hex(algorithm, f"{username}:{realm}")


# --------------------------------------------------------------------------
# Client session
# --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DigestCredentials:
    """Who we are; the same credentials answer any realm.  The repr hides the password."""

    username: str
    password: str = field(repr=False)


def answer_challenge(
    challenge: Challenge,
    credentials: DigestCredentials,
    method: str,
    uri: str,
    *,
    nc: int = 1,
    cnonce: str = "",
    body: bytes = b"",
) -> tuple[str, str]:
    """The header name and value that answer ``challenge`` (pure: the caller keeps nc/cnonce).

    ``auth`` is chosen when both qops are offered: many registrars (Kamailio
    among them) offer auth-int but reject even a correct answer to it.
    """
    ch, user = challenge, credentials.username
    if not ch.supported:
        raise DigestError(f"cannot answer a {ch.scheme} {ch.algorithm} challenge")
    params = {"username": user, "realm": ch.realm, "nonce": ch.nonce, "uri": uri}
    if ch.qop:
        qop = "auth" if "auth" in ch.qop else "auth-int"
        params |= {"cnonce": cnonce, "qop": qop, "nc": f"{nc:08x}"}
    elif ch.algorithm.endswith("-sess"):
        params["cnonce"] = cnonce
    params["response"] = compute_response(ch.algorithm, credentials.password, method, params, body)
    params["algorithm"] = ch.algorithm
    if ch.opaque is not None:
        params["opaque"] = ch.opaque
    if ch.userhash:  # the response above used the real name
        params |= {"username": compute_userhash(ch.algorithm, user, ch.realm), "userhash": "true"}
    fields = (f"{k}={v if k in _TOKEN_PARAMS else quote(v)}" for k, v in params.items())
    header = "Proxy-Authorization" if ch.header_name == "Proxy-Authenticate" else "Authorization"
    return header, "Digest " + ", ".join(fields)


# --------------------------------------------------------------------------
# Client state across requests
# --------------------------------------------------------------------------

CHALLENGE_HEADERS = {401: "WWW-Authenticate", 407: "Proxy-Authenticate"}


class AuthResult(Enum):
    RETRY = "retry"  # send the request again: answers were added for the new challenges
    REJECTED = "rejected"  # challenged afresh after answering: wrong password or unknown user
    UNSUPPORTED = "unsupported"  # nothing in the challenge that we can answer


@dataclass(frozen=True, slots=True)
class AuthDecision:
    """What a 401/407 means, and the challenge it was about."""

    result: AuthResult
    challenge: Challenge | None = None  # its ``stale`` says whether only the nonce was old


@dataclass(slots=True)
class _RealmState:
    challenge: Challenge
    cnonce: str
    nc: int = 0
    answered: bool = False  # a request went out with an answer to this nonce


@dataclass(slots=True)
class ClientAuth:
    """Digest state of one user agent, across every request and realm (RFC 3261 §22).

    Why per realm, not per request: a call meets a proxy's 407 and a
    registrar's or UAS's 401, for INVITE, then BYE, INFO or a re-INVITE.  Each
    realm (and header: WWW- or Proxy-) keeps its last challenge, a nonce-count
    that grows with every use of the same nonce, and a cnonce (fixed per nonce,
    so ``-sess`` keeps one H(A1), RFC 7616 §3.4.2).  Later requests carry
    answers for every realm met so far, which saves a round trip and is what a
    proxy checking every request wants (§22.3).

    A fresh, non-stale challenge for a realm we just answered means the server
    rejected our credentials; ``stale=true`` only asks for the new nonce
    (§22.4, RFC 7616 §3.3).  When both ``auth`` and ``auth-int`` are offered we
    answer ``auth``, as sipsak and most UAs do (and Kamailio 5.6 rejects even a
    correct auth-int answer).
    """

    credentials: DigestCredentials
    cnonce: Callable[[], str] = field(default=lambda: os.urandom(8).hex())
    realms: dict[tuple[str, str], _RealmState] = field(default_factory=dict)

    def authorize(self, request: Request) -> Request:
        """Replace ``request``'s credentials with fresh answers for every realm met so far."""
        for name in ("Authorization", "Proxy-Authorization"):
            request.headers.remove(name)
        for state in self.realms.values():
            state.nc += 1
            state.answered = True
            name, value = answer_challenge(
                state.challenge, self.credentials, request.method, request.uri,
                nc=state.nc, cnonce=state.cnonce, body=request.body,
            )  # fmt: skip
            request.headers.add(name, value)
        return request

    def on_challenge(self, response: Response) -> AuthDecision:
        """Take in a 401/407; RETRY means :meth:`authorize` the request again."""
        header = CHALLENGE_HEADERS.get(response.status)
        if header is None:
            return AuthDecision(AuthResult.UNSUPPORTED)
        offered: list[Challenge] = []
        for value in response.headers.get_all(header):
            with contextlib.suppress(DigestError):  # a malformed header spoils only itself
                offered += parse_challenges([value], header)
        challenge = choose_challenge(offered)
        if challenge is None:
            return AuthDecision(AuthResult.UNSUPPORTED)
        key = (header, challenge.realm)
        old = self.realms.get(key)
        if old is not None and old.answered and not challenge.stale:
            return AuthDecision(AuthResult.REJECTED, challenge)
        self.realms[key] = _RealmState(challenge, self.cnonce())
        return AuthDecision(AuthResult.RETRY, challenge)

    def forget_answers(self) -> None:
        """A reused nonce was challenged afresh (one-time nonces): not a wrong password."""
        for state in self.realms.values():
            state.answered = False


# --------------------------------------------------------------------------
# Server side
# --------------------------------------------------------------------------


def make_challenge_header(
    realm: str,
    nonce: str,
    algorithm: str = "MD5",
    qop: tuple[str, ...] = ("auth",),
    stale: bool = False,
) -> str:
    """The value of a WWW-Authenticate/Proxy-Authenticate header we issue."""
    parts = [f"realm={quote(realm)}", f"nonce={quote(nonce)}", f"algorithm={algorithm}"]
    if qop:
        parts.append(f"qop={quote(','.join(qop))}")
    if stale:
        parts.append("stale=true")
    return "Digest " + ", ".join(parts)


class Verdict(Enum):
    OK = "ok"
    BAD_PASSWORD = "bad-password"
    UNKNOWN_USER = "unknown-user"
    STALE = "stale"  # right password, old nonce: challenge again with stale=true
    MALFORMED = "malformed"


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """A registrar's finding about one Authorization header."""

    verdict: Verdict
    username: str | None = None
    algorithm: str | None = None


def parse_authorization(header_value: str) -> dict[str, str]:
    """The parameters of a ``Digest`` Authorization value (keys lower-cased)."""
    parsed = _parse_auth_values([header_value])
    if len(parsed) != 1 or parsed[0][0].lower() != "digest":
        raise DigestError("Authorization is not a single Digest credential")
    return parsed[0][1]


def verify_authorization(
    header_value: str,
    method: str,
    password_for: Callable[[str, str], str | None],
    nonce_ok: Callable[[str], bool],
    body: bytes = b"",
) -> VerifyResult:
    """Check an Authorization value the way a registrar must.

    The password is checked *before* the nonce's freshness: ``stale`` is only
    honest when the credentials were right (RFC 7616 §3.3).  We never ask for
    a ``userhash``, so the username is taken as sent.
    """
    try:
        params = parse_authorization(header_value)
    except DigestError:
        return VerifyResult(Verdict.MALFORMED)
    algorithm = _CANONICAL.get(params.get("algorithm", "MD5").lower())
    if algorithm is None or any(k not in params for k in _REQUIRED):
        return VerifyResult(Verdict.MALFORMED)
    username, qop = params["username"], params.get("qop")
    password = password_for(username, params["realm"])
    if password is None:
        verdict = Verdict.UNKNOWN_USER
    elif qop not in (None, *_QOPS) or (qop and not {"nc", "cnonce"} <= params.keys()):
        verdict = Verdict.MALFORMED  # an unknown qop, or a qop without nc and cnonce
    elif not hmac.compare_digest(
        compute_response(algorithm, password, method, params, body), params["response"].lower()
    ):
        verdict = Verdict.BAD_PASSWORD
    elif not nonce_ok(params["nonce"]):
        verdict = Verdict.STALE
    else:
        verdict = Verdict.OK
    return VerifyResult(verdict, username, algorithm)


@dataclass(slots=True)
class NonceIssuer:
    """Stateless server nonces: a timestamp signed with a per-process key.

    Why signed and timed: the registrar can tell its own recent nonces from
    forged or old ones without remembering each one, and an old-but-genuine
    nonce yields ``stale=true`` instead of a wrong-password verdict.
    """

    lifetime: float = 300.0  # s
    clock: Callable[[], float] = time.time
    key: bytes = field(default_factory=lambda: os.urandom(32), repr=False)

    def issue(self) -> str:
        stamp = f"{int(self.clock() * 1000):x}"
        return f"{stamp}.{self._sign(stamp)}"

    def is_fresh(self, nonce: str) -> bool:
        """Genuine and younger than ``lifetime``: what ``nonce_ok`` should be.

        A stamp with our signature is one :meth:`issue` wrote, so it is hex.
        """
        stamp, _, sig = nonce.partition(".")
        if not stamp or not hmac.compare_digest(sig, self._sign(stamp)):
            return False
        return 0 <= self.clock() - int(stamp, 16) / 1000 <= self.lifetime

    def _sign(self, stamp: str) -> str:
        return hmac.new(self.key, stamp.encode(), hashlib.sha256).hexdigest()[:32]
