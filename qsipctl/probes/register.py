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

from qsipctl.addr import host_port, same_ip
from qsipctl.errors import InvalidInput
from qsipctl.probes.base import (
    Conversation,
    ProbeOutcome,
    fail_from_net,
    move_on,
    probe_servers,
)
from qsipctl.probes.register_flow import (
    QUERY,
    Answer,
    RegisterFlow,
    RegisterPolicy,
    wrong_password_detail,
)
from qsipctl.probes.result import ProbeResult
from qsipctl.probes.target import ProbeTarget
from qsipctl.sip.digest import AuthResult, Challenge, ClientAuth, DigestCredentials
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


async def probe_register(
    target: ProbeTarget, policy: RegisterPolicy | bool = QUERY
) -> ProbeOutcome:
    """Check ``target``'s account as ``policy`` allows; never raises for network or server failures.

    Cancellation (Ctrl-C, SIGTERM) does raise, after any temporary binding is
    removed.  A bool (the runner's ``keep_registered`` for every probe) means
    bind-and-keep when true.
    """
    if isinstance(policy, bool):
        policy = RegisterPolicy.from_flags(keep=policy)
    chosen = policy

    async def attempt(conv: Conversation, result: ProbeResult) -> None:
        await _register(conv, result, chosen)

    return await probe_servers("register", target, attempt)


def _contact(conv: Conversation) -> str:
    transport = conv.peer.transport
    param = "" if transport == "udp" else f";transport={transport}"
    return f"<{conv.target.scheme}:{conv.target.user}@{host_port(*conv.local)}{param}>"


class ConversationSender:
    """The transport side of :class:`RegisterFlow`: one REGISTER, challenges answered."""

    def __init__(self, conv: Conversation) -> None:
        self.conv, self.auth = conv, _Auth()  # one Call-ID for all (RFC 3261 10.2)
        self.our_contact = _contact(conv)

    async def register(self, contact: str | None, expires: int | None) -> Answer:
        resp = await _send_register(self.conv, self.auth, contact, expires)
        algorithm = self.auth.challenge.algorithm if self.auth.challenge is not None else None
        return Answer(resp, self.auth.failure, self.auth.detail, algorithm)


async def _register(conv: Conversation, result: ProbeResult, policy: RegisterPolicy) -> None:
    def describe(resp: Response) -> None:
        describe_answer(result, resp, conv.local)

    flow = RegisterFlow(ConversationSender(conv), result, policy, conv.target.expires, describe)
    await flow.run()


async def _send_register(
    conv: Conversation, auth: _Auth, contact: str | None, expires: int | None
) -> Response:
    """REGISTER, answering up to MAX_CHALLENGES challenges; the final response.

    Without ``contact`` it is a binding query (RFC 3261 10.2.3): no Contact,
    no Expires, nothing changes at the registrar.
    """
    target = conv.target
    uri = target.request_uri
    preauthorized = auth.client is not None and bool(auth.client.realms)
    auth.failure = None
    for _ in range(MAX_CHALLENGES + 1):
        extra = [("Contact", contact), ("Expires", str(expires))] if contact else []
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
        auth.detail = wrong_password_detail(resp.status, target.user, target.auth_user)
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


def describe_answer(result: ProbeResult, resp: Response, local: tuple[str, int]) -> None:
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
