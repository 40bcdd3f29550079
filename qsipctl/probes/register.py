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

from qsipctl.addr import host_port, same_ip
from qsipctl.errors import InvalidInput
from qsipctl.net.errors import NetError
from qsipctl.probes.base import (
    Conversation,
    ProbeOutcome,
    elapsed_ms,
    fail_from_net,
    move_on,
    probe_servers,
)
from qsipctl.probes.result import ProbeResult, status_line, verdict_for_status
from qsipctl.probes.target import ProbeTarget
from qsipctl.sip.auth import AuthResult, ClientAuth
from qsipctl.sip.digest import Challenge, DigestCredentials
from qsipctl.sip.errors import SipError
from qsipctl.sip.message import Response

__all__ = ["ProbeOutcome", "fail_from_net", "move_on", "probe_register"]

MAX_CHALLENGES = 3  # a stale nonce may be retried; more than this is a loop


class _Auth:
    """Digest state across the REGISTERs of one probe, and why it gave up."""

    def __init__(self) -> None:
        self.client: ClientAuth | None = None
        self.challenge: Challenge | None = None
        self.failure: str | None = None  # verdict code when authentication gave up
        self.detail = ""


async def probe_register(target: ProbeTarget, keep_registered: bool = False) -> ProbeOutcome:
    """Register ``target`` and report; never raises for network or server failures."""

    async def attempt(conv: Conversation, result: ProbeResult) -> None:
        await _register(conv, result, keep_registered)

    return await probe_servers("register", target, attempt)


def _contact(conv: Conversation) -> str:
    transport = conv.peer.transport
    param = "" if transport == "udp" else f";transport={transport}"
    return f"<{conv.target.scheme}:{conv.target.user}@{host_port(*conv.local)}{param}>"


async def _register(conv: Conversation, result: ProbeResult, keep: bool) -> None:
    target = conv.target
    auth = _Auth()
    contact = _contact(conv)
    started = time.perf_counter()
    asked = target.expires
    resp = await _send_register(conv, auth, contact, asked)
    minimum = _min_expires(resp, asked)
    if minimum is not None and not auth.failure:
        # RFC 3261 10.2.8: retry with the server's minimum, as the core's softphone would
        result.warnings.append(
            f"the server requires at least {minimum} s (423 to {asked} s): raise the expiry"
        )
        asked = minimum
        resp = await _send_register(conv, auth, contact, asked)
    result.elapsed_ms = elapsed_ms(started)
    _describe_answer(result, resp, conv.local)
    if auth.challenge is not None:
        result.algorithm = auth.challenge.algorithm
    if auth.failure:
        result.fail(auth.failure, auth.detail)
        return
    if not 200 <= resp.status < 300:
        result.fail(verdict_for_status(resp.status), status_line(resp.status, resp.reason))
        return
    result.expires = _granted(resp, conv.local, asked)
    result.succeed(f"registered for {result.expires} s")
    if keep:
        return
    try:
        unreg = await _send_register(conv, auth, contact, 0)
    except NetError as exc:  # the registration itself worked: that verdict stands
        result.unregistered = False
        result.warnings.append(f"unregistering failed: {exc.detail}")
        return
    result.unregistered = 200 <= unreg.status < 300 and not auth.failure
    if not result.unregistered:
        result.warnings.append("unregistering failed: " + status_line(unreg.status, unreg.reason))


async def _send_register(conv: Conversation, auth: _Auth, contact: str, expires: int) -> Response:
    """REGISTER, answering up to MAX_CHALLENGES challenges; the final response."""
    target = conv.target
    uri = target.request_uri
    preauthorized = auth.client is not None and bool(auth.client.realms)
    auth.failure = None
    for _ in range(MAX_CHALLENGES + 1):
        extra = [("Contact", contact), ("Expires", str(expires))]
        req = conv.build("REGISTER", uri, target.aor, extra)
        if auth.client is not None:
            auth.client.authorize(req)  # every realm met so far: saves a round trip
        resp = (await conv.send(req)).response
        if resp.status not in (401, 407):
            return resp
        if preauthorized and auth.client is not None:
            # servers with one-time nonces challenge a reused nonce afresh, often
            # without stale=true: that is not a wrong password, so answer it anew
            auth.client.forget_answers()
            preauthorized = False
        if not _answer(auth, target, resp):
            return resp
    # only stale=true or a new realm each time gets here: not the password's fault
    auth.failure = "rejected"
    auth.detail = f"{MAX_CHALLENGES + 1} challenges in a row; the server never took our answer"
    return resp


def _answer(auth: _Auth, target: ProbeTarget, resp: Response) -> bool:
    """Take in a challenge: True to send again, False (and auth.failure) to give up."""
    if target.password is None:
        auth.failure = "no-password"
        return False
    if auth.client is None:
        try:
            password = target.password.reveal()
        except InvalidInput as exc:
            auth.failure, auth.detail = "no-password", exc.diagnostics[0].message
            return False
        creds = DigestCredentials(target.auth_user or target.user or "", password)
        auth.client = ClientAuth(creds)
    decision = auth.client.on_challenge(resp)
    if decision.challenge is not None:
        auth.challenge = decision.challenge
    if decision.result is AuthResult.REJECTED:
        auth.failure = "wrong-password"
        auth.detail = f"{resp.status} again for auth user {target.auth_user or target.user}"
        if decision.challenge is not None and decision.challenge.qop == ("auth-int",):
            auth.detail += (
                "; or the server rejects qop=auth-int, the only protection it offered"
                " (Kamailio 5.6 rejects even a correct auth-int answer)"
            )
        return False
    if decision.result is AuthResult.UNSUPPORTED:
        auth.failure = "auth-unsupported"
        name = "WWW-Authenticate" if resp.status == 401 else "Proxy-Authenticate"
        auth.detail = "; ".join(resp.headers.get_all(name))[:200]
        return False
    return True


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
    result.nat = not same_ip(seen_host, local[0]) or (
        seen_port is not None and seen_port != local[1]
    )


def _min_expires(resp: Response, asked: int) -> int | None:
    """The Min-Expires of a 423 when it is above what we asked, else None."""
    if resp.status != 423:
        return None
    value = (resp.headers.get("Min-Expires") or "").strip()
    minimum = int(value) if value.isascii() and value.isdigit() else None
    return minimum if minimum is not None and minimum > asked else None


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
        if same_ip(uri.host, local[0]) and (uri.port or 5060) == local[1]:
            exp = contact.params.get("expires")
            if exp and exp.isdigit():
                return int(exp)
    header = resp.headers.get("Expires")
    return int(header) if header and header.strip().isdigit() else asked
