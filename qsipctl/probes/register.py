"""The ``register`` probe: does the PBX accept this account, over this transport?

REGISTER from this machine with the account's credentials and answer the
digest challenge.  By default the REGISTER carries no Contact and changes
nothing; ``--bind`` adds a temporary binding and removes it (the policy and
the undoing live in :mod:`qsipctl.probes.register_flow`).  Besides the
verdict we report what an engineer asks next: how long the answer took,
which digest algorithm was used, the bindings the account has now, the
lifetime granted to ours, how the server saw our address (Via
``received``/``rport``, RFC 3581: a difference means NAT between us and the
PBX) and who answered.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from qsipctl.errors import InvalidInput
from qsipctl.net.errors import NetError
from qsipctl.net.trace import Trace
from qsipctl.net.transport import ServerAddress, SipTransport
from qsipctl.probes.exchange import (
    Dialogish,
    ProbeTimeout,
    build_request,
    host_port,
    locate,
    open_to,
    transact,
)
from qsipctl.probes.register_flow import (
    QUERY,
    Answer,
    RegisterFlow,
    RegisterPolicy,
    wrong_password_detail,
)
from qsipctl.probes.result import VERDICTS, ProbeResult
from qsipctl.probes.target import ProbeTarget
from qsipctl.sip.digest import AuthOutcome, Challenge, DigestCredentials, DigestSession
from qsipctl.sip.errors import SipError
from qsipctl.sip.message import Response

MAX_CHALLENGES = 3  # a stale nonce may be retried; more than this is a loop


class ProbeOutcome:
    """A result and the wire evidence behind it (not part of the JSON result)."""

    __slots__ = ("result", "traces")

    def __init__(self, result: ProbeResult, traces: list[Trace] | None = None) -> None:
        self.result = result
        self.traces: list[Trace] = [] if traces is None else traces

    def __repr__(self) -> str:
        return f"ProbeOutcome(result={self.result!r}, traces={self.traces!r})"


class _Auth:
    """Digest state across the REGISTERs of one probe (a plain class: start-up cost)."""

    def __init__(self) -> None:
        self.session: DigestSession | None = None
        self.challenge: Challenge | None = None
        # answer header -> last challenge: past a proxy a request needs both answers
        self.answered: dict[str, Challenge] = {}
        self.failure: str | None = None  # verdict code when authentication gave up
        self.detail = ""


def new_result(probe: str, target: ProbeTarget) -> ProbeResult:
    return ProbeResult(
        probe=probe,
        target=target.aor,
        transport=target.transport or "auto",
        core=target.core,
        softphone=target.softphone,
    )


def warn_unverified(result: ProbeResult, transport: str, target: ProbeTarget) -> None:
    """Checked on the transport actually used: RFC 3263 may have chosen TLS."""
    if transport == "tls" and not target.tls.verify:
        result.warnings.append("TLS certificate not verified (verify: false)")


def fail_from_net(result: ProbeResult, exc: NetError) -> ProbeResult:
    """Map a transport failure to its plain-words verdict (the error's kind names it)."""
    if isinstance(exc, ProbeTimeout):
        return result.fail("timeout", f"nothing came back from {result.server}")
    verdict = exc.kind if exc.kind in VERDICTS else "transport"
    return result.fail(verdict, exc.detail)


Attempt = Callable[[SipTransport, ProbeResult], Awaitable[None]]

# no answer or a broken path: RFC 3263 4.3 says try the next server
_MOVE_ON = {"timeout", "refused", "closed", "transport", "tls-certificate", "tls-hostname"}


async def probe_register(target: ProbeTarget, policy: RegisterPolicy = QUERY) -> ProbeOutcome:
    """Check ``target``'s account as ``policy`` allows; never raises for network or server failures.

    Cancellation (Ctrl-C, SIGTERM) does raise, after any temporary binding is removed.
    """

    def attempt(tp: SipTransport, result: ProbeResult) -> Awaitable[None]:
        return _register(tp, target, result, policy)

    return await probe_servers("register", target, attempt)


async def probe_servers(probe: str, target: ProbeTarget, attempt: Attempt) -> ProbeOutcome:
    """Run ``attempt`` on each located server until one gives an answer to keep.

    RFC 3263 4.3 / RFC 3261 21.5.4: no answer (Timer F or --timeout), a
    transport error or a 503 moves on to the next server in SRV order, with a
    fresh transaction; the last server's verdict is the result, and ``tried``
    says what happened at each.
    """
    result = new_result(probe, target)
    outcome = ProbeOutcome(result)
    try:
        servers = await locate(target)
    except NetError as exc:
        fail_from_net(result, exc)
        return outcome
    tried: list[dict[str, str]] = []
    for server in servers:
        result = new_result(probe, target)
        await _on_server(target, server, result, outcome.traces, attempt)
        tried.append(_tried(server, result))
        if not _move_on(result):
            break
    result.tried = tried
    if len(tried) > 1:
        gave_up = "; ".join(f"{t['server']} {t['verdict']}" for t in tried[:-1])
        result.warnings.insert(0, f"failed over (RFC 3263) from: {gave_up}")
    outcome.result = result
    return outcome


async def _on_server(
    target: ProbeTarget,
    server: ServerAddress,
    result: ProbeResult,
    traces: list[Trace],
    attempt: Attempt,
) -> None:
    result.transport, result.server = server.transport, host_port(server.host, server.port)
    try:
        tp = await open_to(target, server)
    except NetError as exc:
        fail_from_net(result, exc)
        return
    traces.append(tp.trace)
    warn_unverified(result, server.transport, target)
    result.local = host_port(*tp.local)
    try:
        await attempt(tp, result)
    except NetError as exc:
        fail_from_net(result, exc)
    except SipError as exc:
        result.fail("transport", f"unusable answer from the server: {exc}")
    finally:
        tp.close()


def _move_on(result: ProbeResult) -> bool:
    """A 503, or no final answer at all; a 408 or 5xx other than 503 is the server's word."""
    if result.ok:
        return False
    if result.status is None:
        return result.verdict in _MOVE_ON
    return result.status == 503


def _tried(server: ServerAddress, result: ProbeResult) -> dict[str, str]:
    return {
        "server": host_port(server.host, server.port),
        "transport": server.transport,
        "verdict": result.verdict,
        "message": result.message,
    }


def _contact(tp: SipTransport, target: ProbeTarget) -> str:
    param = "" if tp.name == "udp" else f";transport={tp.name}"
    return f"<{target.scheme}:{target.user}@{host_port(*tp.local)}{param}>"


class _Sender:
    """The transport side of :class:`RegisterFlow`: one REGISTER, challenges answered."""

    def __init__(self, tp: SipTransport, target: ProbeTarget) -> None:
        self.tp, self.target = tp, target
        self.state, self.auth = Dialogish.new(), _Auth()  # one Call-ID for all (RFC 3261 10.2)
        self.our_contact = _contact(tp, target)

    async def register(self, contact: str | None, expires: int | None) -> Answer:
        resp = await _send_register(self.tp, self.target, self.state, self.auth, contact, expires)
        algorithm = self.auth.challenge.algorithm if self.auth.challenge is not None else None
        return Answer(resp, self.auth.failure, self.auth.detail, algorithm)


async def _register(
    tp: SipTransport, target: ProbeTarget, result: ProbeResult, policy: RegisterPolicy
) -> None:
    def describe(resp: Response) -> None:
        _describe_answer(result, resp, tp.local)

    flow = RegisterFlow(_Sender(tp, target), result, policy, target.expires, describe)
    await flow.run()


async def _send_register(
    tp: SipTransport,
    target: ProbeTarget,
    state: Dialogish,
    auth: _Auth,
    contact: str | None,
    expires: int | None,
) -> Response:
    """REGISTER, answering up to MAX_CHALLENGES challenges; the final response.

    Without ``contact`` it is a binding query (RFC 3261 10.2.3): no Contact,
    no Expires, nothing changes at the registrar.
    """
    deadline = time.monotonic() + target.timeout
    uri = target.request_uri
    headers = _preauthorize(auth, uri)  # reuse the nonces: saves a round trip
    preauthorized = bool(headers)
    auth.failure = None
    for _ in range(MAX_CHALLENGES + 1):
        binding = [("Contact", contact), ("Expires", str(expires))] if contact else []
        extra = [*binding, *headers]
        req = build_request(tp, target, state, "REGISTER", uri, target.aor, extra)
        resp = await transact(tp, req, deadline)
        if resp.status not in (401, 407):
            return resp
        if preauthorized and auth.session is not None:
            # servers with one-time nonces challenge a reused nonce afresh, often
            # without stale=true: that is not a wrong password, so answer it anew
            auth.session = DigestSession(auth.session.credentials)
            preauthorized = False
        header = _answer(auth, target, resp, uri)
        if header is None:
            return resp
        headers = _with_others(auth, header, uri)
    # only stale=true or a new realm each time gets here: not the password's fault
    auth.failure = "rejected"
    auth.detail = f"{MAX_CHALLENGES + 1} challenges in a row; the server never took our answer"
    return resp


def _preauthorize(auth: _Auth, uri: str) -> list[tuple[str, str]]:
    """Answers to every challenge met so far (a proxy's 407 and the registrar's 401)."""
    if auth.session is None:
        return []
    session = auth.session
    return [session.authorize(ch, "REGISTER", uri) for ch in auth.answered.values()]


def _with_others(auth: _Auth, header: tuple[str, str], uri: str) -> list[tuple[str, str]]:
    """The new answer plus fresh ones for the other hop's challenge.

    A 401 from the registrar after the proxy took our Proxy-Authorization must
    not drop it: RFC 3261 22.3, the proxy checks it on every request.
    """
    assert auth.session is not None
    session = auth.session
    others = [
        session.authorize(ch, "REGISTER", uri)
        for name, ch in auth.answered.items()
        if name != header[0]
    ]
    return [*others, header]


def _answer(auth: _Auth, target: ProbeTarget, resp: Response, uri: str) -> tuple[str, str] | None:
    """The Authorization header for a challenge, or None (and auth.failure) to give up."""
    if target.password is None:
        auth.failure = "no-password"
        return None
    if auth.session is None:
        try:
            password = target.password.reveal()
        except InvalidInput as exc:
            auth.failure, auth.detail = "no-password", exc.diagnostics[0].message
            return None
        creds = DigestCredentials(target.auth_user or target.user or "", password)
        auth.session = DigestSession(creds)
    name = "WWW-Authenticate" if resp.status == 401 else "Proxy-Authenticate"
    decision = auth.session.handle_challenge(
        resp.status, resp.headers.get_all(name), "REGISTER", uri
    )
    if decision.challenge is not None:
        auth.challenge = decision.challenge
        auth.answered[decision.challenge.answer_header] = decision.challenge
    if decision.outcome is AuthOutcome.WRONG_CREDENTIALS:
        auth.failure = "wrong-password"
        auth.detail = wrong_password_detail(resp.status, target.user, target.auth_user)
        if decision.challenge is not None and decision.challenge.qop == ("auth-int",):
            auth.detail += (
                "; or the server rejects qop=auth-int, the only protection it offered"
                " (Kamailio 5.6 rejects even a correct auth-int answer)"
            )
        return None
    if decision.outcome is AuthOutcome.UNSUPPORTED:
        auth.failure = "auth-unsupported"
        auth.detail = "; ".join(resp.headers.get_all(name))[:200]
        return None
    return decision.header


def _describe_answer(result: ProbeResult, resp: Response, local: tuple[str, int]) -> None:
    result.status, result.reason = resp.status, resp.reason
    result.server_agent = resp.headers.get("Server") or resp.headers.get("User-Agent")
    try:
        via = resp.top_via
    except SipError:
        return
    seen_host = via.received or via.host
    seen_port = via.rport if isinstance(via.rport, int) and via.rport is not True else None
    result.seen_as = host_port(seen_host, seen_port) if seen_port else seen_host
    result.nat = not _same_host(seen_host, local[0]) or (
        seen_port is not None and seen_port != local[1]
    )


def _same_host(a: str, b: str) -> bool:
    if a == b:
        return True  # the common case, without parsing addresses
    import ipaddress  # only when the server wrote our address differently

    try:
        return ipaddress.ip_address(a.strip("[]")) == ipaddress.ip_address(b.strip("[]"))
    except ValueError:
        return a.lower() == b.lower()
