"""The embedded lab's registrar logic, sans-IO: a request in, a response out.

Why a registrar of our own: a new user with no PBX at hand can still watch
``qsipctl diagnose --register`` succeed for one account and fail with a clear
verdict for another.  It behaves like the registrars we meet in the field
(Kamailio in particular) where that shapes the probes' verdicts: a wrong
password gets a *fresh* 401, an unknown address-of-record gets 404, an old
nonce gets ``stale=true``.  It is a demo, not a conformance target.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from qsipctl.sip.digest import (
    DigestError,
    NonceIssuer,
    Verdict,
    VerifyResult,
    make_challenge_header,
    parse_authorization,
    verify_authorization,
)
from qsipctl.sip.errors import SipError, SipParseError
from qsipctl.sip.headers import parse_name_addr, parse_via
from qsipctl.sip.message import Request, Response
from qsipctl.sip.transaction import make_response

REALM = "qsipctl.lab"
ALLOW = "REGISTER, OPTIONS"
SERVER = "qsipctl-lab"
DEFAULT_EXPIRES = 3600
MIN_EXPIRES = 60
# Offered most preferred first (RFC 8760 §2.4); old phones still find MD5.
ALGORITHMS = ("SHA-256", "MD5")


@dataclass(frozen=True)
class LabAccount:
    username: str
    password: str = field(repr=False)


# Documented in docs/cli.md; only for the loopback demo.
DEMO_ACCOUNTS = (LabAccount("1001", "lab-1001"), LabAccount("1002", "lab-1002"))


@dataclass(frozen=True)
class Binding:
    aor: str
    contact: str
    expires_at: float
    source: str


@dataclass(frozen=True)
class LabEvent:
    """One line of the lab's log: who tried what, and what the registrar said."""

    time: float
    user: str | None
    outcome: str  # challenged, registered, unregistered, wrong-password, unknown-user, ...
    status: int
    source: str
    contact: str | None = None
    algorithm: str | None = None
    expires: int | None = None


class Registrar:
    """REGISTER with digest auth, OPTIONS, and 405 for anything else.

    ``clock`` and ``tag`` are injectable so unit tests are deterministic.
    """

    def __init__(
        self,
        accounts: Iterable[LabAccount] = DEMO_ACCOUNTS,
        realm: str = REALM,
        clock: Callable[[], float] | None = None,
        nonces: NonceIssuer | None = None,
        tag: Callable[[], str] | None = None,
    ) -> None:
        import time

        self.accounts = {a.username: a for a in accounts}
        self.realm = realm
        self.clock = clock or time.time
        self.nonces = nonces or NonceIssuer(clock=self.clock)
        self._tag = tag or (lambda: secrets.token_hex(4))
        self.bindings: dict[str, dict[str, Binding]] = {}
        self.log: list[LabEvent] = []

    # ------------------------------------------------------------ entry point
    def handle(self, request: Request, source: tuple[str, int]) -> Response | None:
        """The response to ``request`` received from ``source``; None for ACK.

        A request too broken to answer (no Via, Call-ID, CSeq, From or To)
        raises :class:`SipError`; the caller drops it, as RFC 3261 §16.3 lets
        an element do when it cannot even build a 400.
        """
        try:
            return self._handle(request, source)
        except SipError as exc:
            response = make_response(request, 400, _reason(str(exc)), to_tag=self._tag())
            stamp_via(response, source)
            return response

    def _handle(self, request: Request, source: tuple[str, int]) -> Response | None:
        _ = request.call_id, request.cseq, request.from_tag, request.to_tag  # 400 if broken
        if request.method == "ACK":
            return None
        if request.method == "REGISTER":
            response = self._register(request, source)
        elif request.method == "OPTIONS":
            response = self._reply(request, 200, "OK")
            response.headers.add("Allow", ALLOW)
        else:
            response = self._reply(request, 405, "Method Not Allowed")
            response.headers.add("Allow", ALLOW)
        stamp_via(response, source)
        return response

    def contacts(self, aor: str) -> list[Binding]:
        """Live bindings of an address-of-record (expired ones are dropped)."""
        now = self.clock()
        live = {c: b for c, b in self.bindings.get(aor, {}).items() if b.expires_at > now}
        self.bindings[aor] = live
        return list(live.values())

    # ------------------------------------------------------------ REGISTER
    def _register(self, request: Request, source: tuple[str, int]) -> Response:
        src = f"{source[0]}:{source[1]}"
        user = _to_user(request)
        if user is None or user not in self.accounts:
            return self._logged(request, 404, "Not Found", user, "unknown-user", src)
        credentials = _our_credentials(request, self.realm)
        if credentials is None:
            return self._challenge(request, user, "challenged", src)
        result = verify_authorization(
            credentials, request.method, self._password_for, self.nonces.is_fresh, request.body
        )
        return self._after_verify(request, user, result, src)

    def _after_verify(
        self, request: Request, user: str, result: VerifyResult, src: str
    ) -> Response:
        if result.verdict is Verdict.STALE:
            return self._challenge(request, user, "stale-nonce", src, stale=True)
        if result.verdict is Verdict.MALFORMED:
            return self._logged(request, 400, "Bad Authorization", user, "malformed", src)
        if result.verdict is not Verdict.OK:
            outcome = "wrong-password" if result.verdict is Verdict.BAD_PASSWORD else "unknown-user"
            return self._challenge(request, user, outcome, src)
        if result.username != user:
            return self._logged(request, 403, "Forbidden", user, "user-mismatch", src)
        return self._bind(request, user, src, result.algorithm)

    def _bind(self, request: Request, user: str, src: str, algorithm: str | None) -> Response:
        try:
            contacts = _requested_contacts(request)
        except SipParseError:
            return self._logged(request, 400, "Bad Contact", user, "malformed", src)
        if contacts is None:
            self.bindings.pop(user, None)
            return self._ok(request, user, src, algorithm, "unregistered", None, 0)
        if any(0 < expires < MIN_EXPIRES for _, expires in contacts):
            response = self._logged(request, 423, "Interval Too Brief", user, "too-brief", src)
            response.headers.add("Min-Expires", str(MIN_EXPIRES))
            return response
        for uri, expires in contacts:
            self._store(user, uri, expires, src)
        if not contacts:  # a query: report the bindings, change nothing
            return self._ok(request, user, src, algorithm, "queried", None, None)
        uri, expires = contacts[-1]
        outcome = "unregistered" if expires == 0 else "registered"
        return self._ok(request, user, src, algorithm, outcome, uri, expires)

    def _store(self, user: str, uri: str, expires: int, src: str) -> None:
        bindings = self.bindings.setdefault(user, {})
        if expires == 0:
            bindings.pop(uri, None)
        else:
            bindings[uri] = Binding(user, uri, self.clock() + expires, src)

    def _ok(
        self,
        request: Request,
        user: str,
        src: str,
        algorithm: str | None,
        outcome: str,
        contact: str | None,
        expires: int | None,
    ) -> Response:
        response = self._reply(request, 200, "OK")
        now = self.clock()
        for b in self.contacts(user):
            response.headers.add(
                "Contact", f"<{b.contact}>;expires={max(0, round(b.expires_at - now))}"
            )
        self.log.append(LabEvent(now, user, outcome, 200, src, contact, algorithm, expires))
        return response

    # ------------------------------------------------------------ helpers
    def _password_for(self, username: str, realm: str) -> str | None:
        account = self.accounts.get(username)
        return account.password if account and realm == self.realm else None

    def _challenge(
        self, request: Request, user: str, outcome: str, src: str, stale: bool = False
    ) -> Response:
        response = self._logged(request, 401, "Unauthorized", user, outcome, src)
        nonce = self.nonces.issue()
        for algorithm in ALGORITHMS:
            header = make_challenge_header(self.realm, nonce, algorithm, ("auth",), stale=stale)
            response.headers.add("WWW-Authenticate", header)
        return response

    def _logged(
        self, request: Request, status: int, reason: str, user: str | None, outcome: str, src: str
    ) -> Response:
        self.log.append(LabEvent(self.clock(), user, outcome, status, src))
        return self._reply(request, status, reason)

    def _reply(self, request: Request, status: int, reason: str) -> Response:
        response = make_response(request, status, reason, to_tag=self._tag())
        response.headers.add("Server", SERVER)
        return response


def _reason(problem: str) -> str:
    """A Reason-Phrase may not hold CR/LF; keep it short and single-line."""
    return "Bad Request (" + " ".join(problem.split())[:80] + ")"


def _to_user(request: Request) -> str | None:
    try:
        return parse_name_addr(request.headers.get("To") or "").sip_uri().user
    except SipParseError:
        return None


def _our_credentials(request: Request, realm: str) -> str | None:
    """The Authorization value meant for our realm, if the client sent one."""
    for value in request.headers.get_all("Authorization"):
        try:
            if parse_authorization(value).get("realm") == realm:
                return value
        except DigestError:
            return value  # let verification report it as malformed
    return None


def _requested_contacts(request: Request) -> list[tuple[str, int]] | None:
    """Each Contact URI with its expiry; None for ``Contact: *`` (remove all, RFC 3261 §10.2.2)."""
    header_expires = _int(request.headers.get("Expires"), DEFAULT_EXPIRES)
    values = request.headers.get_all("Contact")
    if [v.strip() for v in values] == ["*"]:
        return None
    out: list[tuple[str, int]] = []
    for value in values:
        na = parse_name_addr(value)
        expires = _int(na.params.get("expires"), header_expires)
        out.append((str(na.sip_uri()), min(expires, DEFAULT_EXPIRES)))
    return out


def _int(value: str | None, default: int) -> int:
    try:
        return max(0, int(value)) if value is not None else default
    except ValueError:
        return default


def stamp_via(response: Response, source: tuple[str, int]) -> None:
    """Tell the client how we saw it: ``received`` and ``rport`` (RFC 3261 §18.2.1, RFC 3581).

    The register probe compares these with its own address to spot NAT.
    """
    vias = response.headers.get_all("Via")
    if not vias:
        return
    try:
        top = parse_via(vias[0])
    except SipParseError:
        return
    if top.rport is not None:
        key = next(k for k in top.params if k.lower() == "rport")
        top.params["received"] = source[0]  # RFC 3581 §4: even when equal to sent-by
        top.params[key] = str(source[1])
    elif top.host != source[0]:
        top.params["received"] = source[0]
    response.headers.set("Via", str(top))  # keeps the top Via's position
    for value in vias[1:]:
        response.headers.add("Via", value)
