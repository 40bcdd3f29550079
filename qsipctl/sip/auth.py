"""Client Digest authentication for any request (RFC 3261 §22, RFC 7616, RFC 8760).

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

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

from qsipctl.sip.digest import (
    Challenge,
    DigestCredentials,
    DigestError,
    answer_challenge,
    choose_challenge,
    parse_challenges,
)
from qsipctl.sip.message import Request, Response

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
    """Digest state of one user agent, across every request and realm."""

    credentials: DigestCredentials
    cnonce: Callable[[], str] = field(default=lambda: os.urandom(8).hex())
    realms: dict[tuple[str, str], _RealmState] = field(default_factory=dict)

    def headers(self, method: str, uri: str, body: bytes = b"") -> list[tuple[str, str]]:
        """Authorization / Proxy-Authorization for every realm met so far."""
        return [self._answer(state, method, uri, body) for state in self.realms.values()]

    def authorize(self, request: Request) -> Request:
        """Replace ``request``'s credentials with fresh answers for every realm."""
        for name in ("Authorization", "Proxy-Authorization"):
            request.headers.remove(name)
        for name, value in self.headers(request.method, request.uri, request.body):
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

    def _answer(self, state: _RealmState, method: str, uri: str, body: bytes) -> tuple[str, str]:
        state.nc += 1
        state.answered = True
        return answer_challenge(
            state.challenge, self.credentials, method, uri,
            nc=state.nc, cnonce=state.cnonce, body=body,
        )  # fmt: skip
