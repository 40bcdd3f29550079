"""The ``register`` probe: does the PBX accept this account, over this transport?

REGISTER from this machine with the account's credentials, answer the digest
challenge, then (unless asked to keep it) remove the binding again with
``Expires: 0``.  Besides the verdict we report what an engineer asks next:
how long the answer took, which digest algorithm was used, the lifetime
granted, how the server saw our address (Via ``received``/``rport``, RFC 3581:
a difference means NAT between us and the PBX) and who answered.
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
from qsipctl.probes.result import VERDICTS, ProbeResult, status_line, verdict_for_status
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


async def probe_register(target: ProbeTarget, keep_registered: bool = False) -> ProbeOutcome:
    """Register ``target`` and report; never raises for network or server failures."""

    def attempt(tp: SipTransport, result: ProbeResult) -> Awaitable[None]:
        return _register(tp, target, result, keep_registered)

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


async def _register(tp: SipTransport, target: ProbeTarget, result: ProbeResult, keep: bool) -> None:
    state = Dialogish.new()
    auth = _Auth()
    contact = _contact(tp, target)
    started = time.perf_counter()
    asked = target.expires
    resp = await _send_register(tp, target, state, auth, contact, asked)
    minimum = _min_expires(resp, asked)
    if minimum is not None and not auth.failure:
        # RFC 3261 10.2.8: retry with the server's minimum, as the core's softphone would
        result.warnings.append(
            f"the server requires at least {minimum} s (423 to {asked} s): raise the expiry"
        )
        asked = minimum
        resp = await _send_register(tp, target, state, auth, contact, asked)
    result.elapsed_ms = round((time.perf_counter() - started) * 1000.0, 2)
    _describe_answer(result, resp, tp.local)
    if auth.challenge is not None:
        result.algorithm = auth.challenge.algorithm
    if auth.failure:
        result.fail(auth.failure, auth.detail)
        return
    if not 200 <= resp.status < 300:
        result.fail(verdict_for_status(resp.status), status_line(resp.status, resp.reason))
        return
    result.expires = _granted(resp, tp.local, asked)
    result.succeed(f"registered for {result.expires} s")
    if keep:
        return
    try:
        unreg = await _send_register(tp, target, state, auth, contact, 0)
    except NetError as exc:  # the registration itself worked: that verdict stands
        result.unregistered = False
        result.warnings.append(f"unregistering failed: {exc.detail}")
        return
    result.unregistered = 200 <= unreg.status < 300 and not auth.failure
    if not result.unregistered:
        result.warnings.append("unregistering failed: " + status_line(unreg.status, unreg.reason))


async def _send_register(
    tp: SipTransport,
    target: ProbeTarget,
    state: Dialogish,
    auth: _Auth,
    contact: str,
    expires: int,
) -> Response:
    """REGISTER, answering up to MAX_CHALLENGES challenges; the final response."""
    deadline = time.monotonic() + target.timeout
    uri = target.request_uri
    headers = _preauthorize(auth, uri)  # reuse the nonces: saves a round trip
    preauthorized = bool(headers)
    auth.failure = None
    for _ in range(MAX_CHALLENGES + 1):
        extra = [("Contact", contact), ("Expires", str(expires)), *headers]
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
        auth.detail = f"{resp.status} again for auth user {target.auth_user or target.user}"
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


def _min_expires(resp: Response, asked: int) -> int | None:
    """The Min-Expires of a 423 when it is above what we asked, else None."""
    if resp.status != 423:
        return None
    value = (resp.headers.get("Min-Expires") or "").strip()
    minimum = int(value) if value.isascii() and value.isdigit() else None
    return minimum if minimum is not None and minimum > asked else None


def _same_host(a: str, b: str) -> bool:
    if a == b:
        return True  # the common case, without parsing addresses
    import ipaddress  # only when the server wrote our address differently

    try:
        return ipaddress.ip_address(a.strip("[]")) == ipaddress.ip_address(b.strip("[]"))
    except ValueError:
        return a.lower() == b.lower()


def _granted(resp: Response, local: tuple[str, int], asked: int) -> int:
    """Our binding's lifetime: its Contact ``expires``, else the Expires header."""
    from qsipctl.sip.headers import parse_name_addr

    port = str(local[1])
    for value in resp.headers.get_all("Contact"):
        if port != "5060" and port not in value:
            continue  # not ours: a registrar lists every binding of the AOR, maybe hundreds
        try:
            contact = parse_name_addr(value)
        except SipError:
            continue
        uri = contact.uri
        if _same_host(uri.host, local[0]) and (uri.port or 5060) == local[1]:
            exp = contact.params.get("expires")
            if exp and exp.isdigit():
                return int(exp)
    header = resp.headers.get("Expires")
    return int(header) if header and header.strip().isdigit() else asked
