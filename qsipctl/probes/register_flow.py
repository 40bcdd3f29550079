"""What the register probe may change on a live PBX, and how it undoes it.

A core's softphone account is usually *live*: the core is registered on it
and the room takes calls through it.  Registering the same account from a
laptop can replace the core's binding (a PBX that keeps one contact per
account: FreePBX ``max_contacts=1`` with ``remove_existing``, Kamailio
``save()`` flag 0x04, many hosted platforms), and the core then has no
binding until its next refresh, up to its registration timeout.  So:

* by default (``query``) the probe changes nothing: a REGISTER without a
  Contact is authenticated like any other and its 200 lists the current
  bindings untouched (RFC 3261 §10.2.3), which answers both questions an
  engineer has: are the credentials right, and is the core registered now;
* ``bind`` adds a temporary binding and removes it; it first lists the
  bindings and refuses when another device is bound, unless ``force``;
* ``keep`` (``--keep-registered``) adds one and leaves it.

Once our Contact has been on the wire, the binding is removed on every path
out (an error, an answer we cannot read, a timeout, Ctrl-C, SIGTERM), and
whatever may remain is reported with its expiry.

The flow is written against a small :class:`Registrar` interface (send one
REGISTER with or without a Contact, get the final answer) so it does not
depend on how the transport layer moves the bytes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Protocol

from qsipctl.probes.bindings import (
    Binding,
    describe_bindings,
    displaced,
    is_ours,
    others,
    parse_bindings,
)
from qsipctl.probes.result import ProbeResult, status_line, verdict_for_status
from qsipctl.sip.message import Response

MODES = ("query", "bind", "keep")


@dataclass(frozen=True, slots=True)
class RegisterPolicy:
    """How far the register probe may go: list bindings, add one briefly, or keep one."""

    bind: bool = False  # add a temporary binding (and remove it again)
    keep: bool = False  # add a binding and leave it (implies bind)
    force: bool = False  # bind even when another device is bound to the account

    @property
    def mode(self) -> str:
        return "keep" if self.keep else "bind" if self.bind else "query"

    @classmethod
    def from_flags(
        cls, bind: bool = False, keep: bool = False, force: bool = False
    ) -> RegisterPolicy:
        return cls(bind=bind or keep, keep=keep, force=force)


QUERY = RegisterPolicy()
BIND = RegisterPolicy(bind=True)
KEEP = RegisterPolicy(bind=True, keep=True)


@dataclass(frozen=True, slots=True)
class Answer:
    """The final answer to one (authenticated) REGISTER, and whether digest gave up."""

    response: Response
    failure: str | None = None  # verdict code when authentication gave up
    detail: str = ""
    algorithm: str | None = None  # digest algorithm used, None when not challenged


class Registrar(Protocol):
    """What the flow needs from the layer that talks to the PBX."""

    @property
    def our_contact(self) -> str: ...

    async def register(self, contact: str | None, expires: int | None) -> Answer:
        """One REGISTER (challenges answered); ``contact=None`` is a binding query."""
        ...


@dataclass(slots=True)
class Cleanup:
    """One temporary binding of this run, for the report when the run is interrupted."""

    target: str
    contact: str
    state: str = "pending"  # pending -> removed | may-remain | kept | not-bound
    expires: int | None = None
    detail: str = ""

    def describe(self) -> str:
        if self.state == "removed":
            return f"{self.target}: our temporary binding {self.contact} was removed"
        if self.state == "not-bound":
            return f"{self.target}: the PBX refused our binding, nothing to remove"
        if self.state == "kept":
            return f"{self.target}: binding {self.contact} kept (--keep-registered)"
        return f"{self.target}: {leftover_words(self.contact, self.expires)}" + (
            f" ({self.detail})" if self.detail else ""
        )


# the temporary bindings of the current run (the runner sets a list; tasks share it)
LEDGER: ContextVar[list[Cleanup] | None] = ContextVar("qsipctl_register_ledger", default=None)


def leftover_words(contact: str, expires: int | None, now: float | None = None) -> str:
    if expires is None:
        return f"our binding {contact} may remain bound until it expires"
    stamp = time.gmtime((time.time() if now is None else now) + expires)
    until = time.strftime("%H:%M:%S UTC", stamp)
    return f"our binding {contact} may remain bound for up to {expires} s (until {until})"


def wrong_password_detail(status: int, user: str | None, auth_user: str | None) -> str:
    """Why a repeated challenge: the server answers a bad password and an unknown user alike."""
    auth = auth_user or user
    detail = f"{status} again for auth user {auth}"
    if auth_user and user and auth_user != user:
        detail += (
            f"; the auth ID {auth_user!r} differs from the user name {user!r}:"
            " check the auth ID as well as the password"
        )
    return detail


def _is_2xx(answer: Answer) -> bool:
    return answer.failure is None and 200 <= answer.response.status < 300


def _bindings(resp: Response) -> list[Binding]:
    return parse_bindings(resp.headers.get_lines("Contact"), resp.headers.get("Expires"))


def _refused_query(status: int) -> bool:
    """An answer that refuses the Contact-less REGISTER itself, not the account."""
    return status == 501 or (400 <= status < 500 and status not in (401, 403, 404, 407, 408, 423))


BIND_HINT = "Run the binding test with --bind (it adds a temporary binding and removes it)"


@dataclass(slots=True)
class RegisterFlow:
    """One account's register probe on one server, for a given policy."""

    reg: Registrar
    result: ProbeResult
    policy: RegisterPolicy
    expires: int  # the lifetime to ask for when binding
    describe: Callable[[Response], None]  # status, Server, Via received/rport -> result
    clock: Callable[[], float] = time.perf_counter
    started: float = 0.0
    before: list[Binding] | None = None

    async def run(self) -> None:
        self.result.mode = self.policy.mode
        self.started = self.clock()
        query = await self.reg.register(None, None)
        self._answered(query)
        if not self._query_ok(query):
            return
        if self.policy.mode == "query":
            return
        theirs = others(self.before or [], self.reg.our_contact)
        if not self.policy.force and (theirs or self.before is None):
            self._refuse(theirs)
            return
        await self._bind(theirs)

    def _answered(self, answer: Answer) -> None:
        self.result.elapsed_ms = round((self.clock() - self.started) * 1000.0, 2)
        self.describe(answer.response)
        if answer.algorithm is not None:
            self.result.algorithm = answer.algorithm

    def _query_ok(self, query: Answer) -> bool:
        """Report the query; True when the probe may go on to bind."""
        resp = query.response
        if query.failure:
            self.result.fail(query.failure, query.detail)
            return False
        if not 200 <= resp.status < 300:
            if not _refused_query(resp.status):
                self.result.fail(
                    verdict_for_status(resp.status), status_line(resp.status, resp.reason)
                )
                return False
            what = status_line(resp.status, resp.reason)
            if self.policy.mode == "query" or not self.policy.force:
                self.result.fail(
                    "query-refused",
                    f"{what} to a REGISTER without Contact; the credentials were not"
                    f" confirmed. {BIND_HINT}; add --force, as the bindings cannot be listed",
                )
                return False
            self.result.warnings.append(
                f"the PBX refuses a binding query ({what}): binding anyway (--force)"
            )
            return True
        self.before = _bindings(resp)
        self.result.bindings = [b.as_json() for b in self.before]
        accepted = "credentials accepted" if query.algorithm else "accepted without a challenge"
        self.result.succeed(f"{accepted}; {describe_bindings(self.before)}")
        return True

    def _refuse(self, theirs: list[Binding]) -> None:
        where = describe_bindings(theirs)
        self.result.fail(
            "in-use",
            f"credentials accepted; {where}; on a PBX that keeps one contact per account"
            " ours would displace it until it registers again (--force to bind anyway)",
        )

    async def _bind(self, theirs: list[Binding]) -> None:
        contact = self.reg.our_contact
        entry = Cleanup(self.result.target, contact.strip("<>"), expires=self.expires)
        ledger = LEDGER.get()
        if ledger is not None:
            ledger.append(entry)
        bound = True  # from here our Contact is (about to be) on the wire
        try:
            answer = await self._register_with_retry(contact)
            self._answered(answer)
            if not _is_2xx(answer):
                bound = False  # a final refusal: nothing was bound
                self._bind_failed(answer)
                entry.state = "not-bound"
                return
            self._bound(answer.response, contact, theirs, entry)
            if self.policy.keep:
                bound = False
                entry.state = "kept"
        except BaseException as exc:
            why = "interrupted" if isinstance(exc, asyncio.CancelledError) else "no usable answer"
            self.result.warnings.append(
                f"{why} while binding: the PBX may have bound us, so the binding is removed anyway"
            )
            raise
        finally:
            if bound:
                await self.unbind(contact, entry)

    async def _register_with_retry(self, contact: str) -> Answer:
        answer = await self.reg.register(contact, self.expires)
        minimum = _min_expires(answer.response, self.expires)
        if minimum is not None and answer.failure is None:
            # RFC 3261 10.2.8: retry with the server's minimum, as the core's softphone would
            self.result.warnings.append(
                f"the server requires at least {minimum} s (423 to {self.expires} s):"
                " raise the expiry"
            )
            self.expires = minimum
            answer = await self.reg.register(contact, self.expires)
        return answer

    def _bind_failed(self, answer: Answer) -> None:
        if answer.failure:
            self.result.fail(answer.failure, answer.detail)
            return
        resp = answer.response
        self.result.fail(verdict_for_status(resp.status), status_line(resp.status, resp.reason))

    def _bound(self, resp: Response, contact: str, theirs: list[Binding], entry: Cleanup) -> None:
        after = _bindings(resp)
        mine = next((b for b in after if is_ours(b, contact)), None)
        header = resp.headers.get("Expires")
        granted = mine.expires if mine and mine.expires is not None else None
        if granted is None and header and header.strip().isdigit():
            granted = int(header)
        self.result.expires = granted if granted is not None else self.expires
        entry.expires = self.result.expires
        gone = displaced(theirs, after, (self.clock() - self.started))
        self.result.displaced = [b.as_json() for b in gone]
        words = f"registered for {self.result.expires} s"
        if gone:
            words += "; our binding displaced the core's (the PBX keeps one contact per account)"
            lost = ", ".join(b.describe() for b in gone)
            self.result.warnings.append(
                f"our binding displaced the core's (the PBX keeps one contact per account):"
                f" {lost} is unbound, and unreachable, until it registers again"
            )
        elif theirs:
            kept = describe_bindings(theirs)
            words += f"; the PBX keeps several contacts per account ({kept} stayed)"
        self.result.succeed(words)

    async def unbind(self, contact: str, entry: Cleanup) -> None:
        """``Expires: 0`` for our Contact; report what may remain when it does not work."""
        interrupted: asyncio.CancelledError | None = None
        while True:
            try:
                answer = await self.reg.register(contact, 0)
                break
            except asyncio.CancelledError as exc:
                if interrupted is not None:
                    raise  # interrupted twice: give up, the ledger says what may remain
                interrupted = exc  # Ctrl-C while unregistering: finish the cleanup first
            except Exception as exc:  # any failure: report it, never raise over the verdict
                self._left(entry, f"unregistering failed: {getattr(exc, 'detail', None) or exc}")
                if interrupted is not None:
                    raise interrupted from None
                return
        self._check_unbound(answer, contact, entry)
        if interrupted is not None:
            raise interrupted

    def _check_unbound(self, answer: Answer, contact: str, entry: Cleanup) -> None:
        if not _is_2xx(answer):
            why = answer.detail or status_line(answer.response.status, answer.response.reason)
            self._left(entry, f"unregistering failed: {why}")
            return
        still = [b for b in _bindings(answer.response) if is_ours(b, contact)]
        if still:
            entry.expires = still[0].expires
            self._left(entry, "the PBX still lists our binding after Expires: 0")
            return
        self.result.unregistered = True
        entry.state = "removed"

    def _left(self, entry: Cleanup, why: str) -> None:
        self.result.unregistered = False
        entry.state, entry.detail = "may-remain", why
        self.result.leftover = {"contact": entry.contact, "expires": entry.expires}
        self.result.warnings.append(f"{why}; {leftover_words(entry.contact, entry.expires)}")


def _min_expires(resp: Response, asked: int) -> int | None:
    """The Min-Expires of a 423 when it is above what we asked, else None."""
    if resp.status != 423:
        return None
    value = (resp.headers.get("Min-Expires") or "").strip()
    minimum = int(value) if value.isascii() and value.isdigit() else None
    return minimum if minimum is not None and minimum > asked else None
