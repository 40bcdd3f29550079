"""``diagnose --via-core``: make the core's own Softphone place a test call over QRC.

Every other probe runs on the engineer's machine and sees the PBX through
that machine's network.  This one asks the core, through QSC's QRC control
protocol, to dial with a design's Softphone component: from the core's VLAN,
through its firewall and NAT, with the settings it actually runs.

The steps for one softphone, each bounded in time:

1. connect, read the pushed ``EngineStatus`` (design, state, redundancy),
   log on when the inventory names a QRC user;
2. list the component's controls (``Component.GetControls``) and map them
   to logical names, whatever the design's spelling (``call.number`` or
   ``call_number``);
3. refuse, touching nothing, when the softphone is off hook or ringing;
4. watch ``call.state``/``call.status``/``call.offhook`` through a change
   group with AutoPoll, set the number, trigger ``call.connect``, press the
   keypad for ``--dtmf``, hold for ``--duration``, trigger
   ``call.disconnect``;
5. always (errors, timeouts, Ctrl-C): hang up if we dialled and the call is
   not seen to end, and destroy the change group.

What is not knowable over QRC is said plainly: no public source names a
registration-status control, so the result reports ``call.status`` as the
core says it and never claims a registration state.

Point 4 of the issue (``--answer-as``: qsipctl answers the core's call and
inspects its INVITE) plugs in at :func:`_place_call`'s number; see
docs/via-core.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from qsipctl.addr import host_port
from qsipctl.qrc.client import QrcClient
from qsipctl.qrc.errors import (
    LOGON_REQUIRED,
    UNKNOWN_COMPONENT,
    QrcClosed,
    QrcError,
    QrcRequestError,
)
from qsipctl.qrc.protocol import DEFAULT_PORT, Changes
from qsipctl.site.secrets import Secret

# verdict code -> words for people (stable codes, documented in docs/via-core.md)
VERDICTS: dict[str, str] = {
    "connected": "the core placed the call and it was answered",
    "busy": "the far end is busy",
    "rejected": "the call was rejected",
    "no-answer": "nobody answered in time",
    "failed": "the call failed",
    "in-use": "refused: the softphone is off hook (a live call); nothing was touched",
    "ringing": "refused: the softphone is ringing; nothing was touched",
    "standby": "this core is the standby of a redundant pair; ask the active core",
    "no-component": "no such component in the running design",
    "not-a-softphone": "the component lacks the Softphone controls a call needs",
    "logon-required": "the core wants a QRC logon",
    "logon-failed": "the core refused the QRC logon",
    "unreachable": "cannot reach the core's QRC port",
    "qrc-error": "the core answered with a QRC error",
}

REQUIRED = ("number", "connect", "disconnect", "offhook")
WATCHED = ("state", "status", "offhook", "ringing")
OPTIONAL = ("state", "status", "ringing", "dnd", "autoanswer", "cid.name")
DTMF_DIGITS = "0123456789*#"
NOT_KNOWABLE = (
    "registration state: no public source names a Softphone control that reports it; "
    "a call that connects proves the account works"
)

_CONNECTED = re.compile(r"(?<!dis)connected|\bin call\b|\bactive\b", re.I)
_BUSY = re.compile(r"\bbusy\b|\b486\b|\b600\b", re.I)
_REJECTED = re.compile(r"reject|declin|\b603\b|\b403\b|forbidden", re.I)
_NO_ANSWER = re.compile(r"no answer|not answer|\b408\b|\b480\b|\b487\b|timed? ?out", re.I)
_ENDED = re.compile(r"disconnect|\bfail|\berror\b|\bended\b|hung up", re.I)


@dataclass(frozen=True, slots=True)
class ViaCoreTarget:
    """One softphone to test through its core, and how to reach that core."""

    core: str
    softphone: str
    code_name: str
    host: str
    number: str
    port: int = DEFAULT_PORT
    user: str | None = None
    password: Secret | None = None
    dtmf: str = ""
    duration: float = 3.0
    ring_timeout: float = 30.0
    timeout: float = 5.0  # connect and each request
    keepalive: float = 30.0  # seconds of silence before NoOp (the core allows 60)
    poll_rate: float = 0.2  # AutoPoll interval, seconds
    dtmf_gap: float = 0.3  # between keypad presses


@dataclass(frozen=True, slots=True)
class Transition:
    """A watched control changed: when (ms after the connect trigger), which, to what."""

    at_ms: float
    control: str
    value: str


@dataclass(frozen=True, slots=True)
class ViaCoreResult:
    """What happened when the core dialled (or why it did not)."""

    core: str
    softphone: str
    code_name: str
    qrc: str
    ok: bool
    verdict: str
    message: str
    number: str | None = None
    design: str | None = None
    engine_state: str | None = None
    platform: str | None = None
    redundant: bool | None = None
    controls: dict[str, str] = field(default_factory=dict)  # logical -> the design's name
    dtmf_sent: str = ""
    setup_ms: float | None = None  # connect trigger -> connected
    elapsed_ms: float | None = None
    call_status: str | None = None  # the last call.status text, the core's own words
    transitions: tuple[Transition, ...] = ()
    dialled: bool = False
    hung_up: bool = False  # we triggered call.disconnect (or the call was seen to end)
    group_destroyed: bool | None = None  # None: no change group was created
    not_knowable: tuple[str, ...] = (NOT_KNOWABLE,)
    probe: str = "via-core"


def resolve_controls(names: Iterable[str]) -> dict[str, str]:
    """Map logical names (``number``, ``pinpad.5``) to the design's spelling.

    Designs show ``call.number`` or ``call_number``; we compare with ``_``
    read as ``.`` and never assume one spelling.
    """
    by_norm = {name.replace("_", ".").lower(): name for name in names}
    logical = (*REQUIRED, *OPTIONAL, *(f"pinpad.{d}" for d in DTMF_DIGITS))
    return {n: by_norm[f"call.{n}"] for n in logical if f"call.{n}" in by_norm}


def is_on(ctl: dict[str, Any]) -> bool:
    """A Boolean control's state from a QRC control object (Value, Position or String)."""
    value = ctl.get("Value")
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value != 0:
        return True
    text = str(ctl.get("String", "")).strip().lower()
    return text in ("true", "on", "yes", "1")


def classify(texts: Sequence[str]) -> str:
    """The verdict an ended, never-connected call's texts point to (latest first)."""
    for text in reversed(texts):
        if _BUSY.search(text):
            return "busy"
        if _REJECTED.search(text):
            return "rejected"
        if _NO_ANSWER.search(text):
            return "no-answer"
    return "failed"


class _Watch:
    """The watched controls' current values, fed by change-group results."""

    def __init__(self, client: QrcClient, code_name: str, controls: dict[str, str]) -> None:
        self.client = client
        self.code_name = code_name
        self.by_actual = {controls[n]: n for n in WATCHED if n in controls}
        self.values: dict[str, str] = {}
        self.transitions: list[Transition] = []
        self.texts: list[str] = []  # state/status texts seen since the dial
        self.t0: float | None = None
        self.connected_at: float | None = None
        self.ended = False

    def seed(self, ctls: Iterable[dict[str, Any]]) -> None:
        for ctl in ctls:
            logical = self.by_actual.get(str(ctl.get("Name")))
            if logical is not None:
                self.values[logical] = _text(logical, ctl)

    def apply(self, changes: Changes) -> None:
        now = time.monotonic()
        for ch in changes.changes:
            if ch.component not in (None, self.code_name):
                continue
            logical = self.by_actual.get(ch.name)
            if logical is None:
                continue
            text = _text(logical, {"Value": ch.value, "String": ch.string})
            if self.values.get(logical) == text:
                continue
            self.values[logical] = text
            if self.t0 is None:
                continue
            self.transitions.append(Transition(round((now - self.t0) * 1000, 1), logical, text))
            self._judge(logical, text, now)

    def _judge(self, logical: str, text: str, now: float) -> None:
        if logical in ("state", "status"):
            self.texts.append(text)
            if _CONNECTED.search(text) and self.connected_at is None:
                self.connected_at = now
            elif _ENDED.search(text) or _BUSY.search(text) or _REJECTED.search(text):
                self.ended = True
        elif logical == "offhook" and text == "on hook":
            self.ended = True  # back on hook after we dialled: the call is over

    async def until(self, done: Callable[[], bool], deadline: float) -> bool:
        """Apply change results until ``done()`` or the deadline; returns ``done()``."""
        while not done():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            try:
                changes = await asyncio.wait_for(self.client.changes.get(), left)
            except TimeoutError:
                return done()
            self.apply(changes)
        return True


def _text(logical: str, ctl: dict[str, Any]) -> str:
    if logical in ("offhook", "ringing"):
        on = is_on(ctl)
        if logical == "offhook":
            return "off hook" if on else "on hook"
        return "ringing" if on else "not ringing"
    string = ctl.get("String")
    return str(string) if string not in (None, "") else str(ctl.get("Value", ""))


class _Probe:
    """One softphone's test call; ``run()`` never raises an expected failure."""

    def __init__(self, target: ViaCoreTarget) -> None:
        self.t = target
        self.client = QrcClient(target.host, target.port, keepalive=target.keepalive)
        self.info: dict[str, Any] = {}
        self.controls: dict[str, str] = {}
        self.group: str | None = None
        self.group_destroyed: bool | None = None
        self.dialled = False
        self.hung_up = False
        self.dtmf_sent = ""
        self.watch: _Watch | None = None
        self.started = time.monotonic()

    def result(self, verdict: str, detail: str = "", **extra: Any) -> ViaCoreResult:
        words = VERDICTS[verdict]
        w = self.watch
        status = w.values.get("status") if w else None
        setup = None
        if w is not None and w.connected_at is not None and w.t0 is not None:
            setup = round((w.connected_at - w.t0) * 1000, 1)
        return ViaCoreResult(
            core=self.t.core,
            softphone=self.t.softphone,
            code_name=self.t.code_name,
            qrc=host_port(self.t.host, self.t.port),
            ok=verdict == "connected",
            verdict=verdict,
            message=f"{words}: {detail}" if detail else words,
            number=self.t.number,
            design=self.info.get("DesignName"),
            engine_state=self.info.get("State"),
            platform=self.info.get("Platform"),
            redundant=self.info.get("IsRedundant"),
            controls=dict(self.controls),
            dtmf_sent=self.dtmf_sent,
            setup_ms=setup,
            elapsed_ms=round((time.monotonic() - self.started) * 1000, 1),
            call_status=status,
            transitions=tuple(w.transitions) if w else (),
            dialled=self.dialled,
            hung_up=self.hung_up,
            group_destroyed=self.group_destroyed,
            **extra,
        )

    async def run(self) -> ViaCoreResult:
        try:
            result = await self._outcome()
        finally:
            await self._cleanup()
        # what cleanup did belongs in the result too
        return replace(result, hung_up=self.hung_up, group_destroyed=self.group_destroyed)

    async def _outcome(self) -> ViaCoreResult:
        try:
            return await self._run()
        except QrcClosed as exc:
            return self.result("unreachable", str(exc))
        except QrcRequestError as exc:
            if exc.code == LOGON_REQUIRED:
                return self.result("logon-required", str(exc))
            if exc.code == UNKNOWN_COMPONENT:
                return self.result("no-component", str(exc))
            return self.result("qrc-error", str(exc))
        except QrcError as exc:
            return self.result("qrc-error", str(exc))

    async def _run(self) -> ViaCoreResult:
        t = self.t
        await self.client.connect(t.timeout)
        self.info = dict(await self.client.wait_engine_status(min(t.timeout, 2.0)) or {})
        if t.user is not None:
            params = {"User": t.user, "Password": t.password.reveal() if t.password else ""}
            try:
                await self.client.call("Logon", params, t.timeout)
            except QrcRequestError as exc:
                return self.result(
                    "logon-failed",
                    f"user {t.user!r} (accounts and passwords are set in Q-SYS Administrator) "
                    f"[QRC {exc.code} {exc.core_message}]",
                )
        status = await self.client.call("StatusGet", {}, t.timeout)
        if isinstance(status, dict):
            self.info.update(status)
        if self.info.get("State") == "Standby":
            return self.result("standby", f"design {self.info.get('DesignName')!r}")
        return await self._softphone()

    async def _softphone(self) -> ViaCoreResult:
        t = self.t
        listing = await self.client.call("Component.GetControls", {"Name": t.code_name}, t.timeout)
        names = [c.get("Name") for c in _controls_of(listing)]
        self.controls = resolve_controls(n for n in names if isinstance(n, str))
        missing = [n for n in REQUIRED if n not in self.controls]
        keys = [f"pinpad.{d}" for d in dict.fromkeys(t.dtmf)]
        missing += [k for k in keys if k not in self.controls]
        if missing:
            shown = ", ".join(f"call.{m}" for m in missing)
            return self.result("not-a-softphone", f"{t.code_name!r} has no {shown}")
        self.watch = _Watch(self.client, t.code_name, self.controls)
        now = await self._get([self.controls[n] for n in WATCHED if n in self.controls])
        self.watch.seed(now)
        if self.watch.values.get("offhook") == "off hook":
            return self.result("in-use", self._now_text())
        if self.watch.values.get("ringing") == "ringing":
            return self.result("ringing", self._now_text())
        return await self._place_call()

    def _now_text(self) -> str:
        w = self.watch
        text = (w.values.get("status") or w.values.get("state")) if w else None
        return f"call.status says {text!r}" if text else ""

    async def _get(self, actual: list[str]) -> list[dict[str, Any]]:
        params = {"Name": self.t.code_name, "Controls": [{"Name": n} for n in actual]}
        return _controls_of(await self.client.call("Component.Get", params, self.t.timeout))

    async def _set(self, logical: str, value: Any) -> None:
        control = {"Name": self.controls[logical], "Value": value}
        params = {"Name": self.t.code_name, "Controls": [control]}
        await self.client.call("Component.Set", params, self.t.timeout)

    async def _place_call(self) -> ViaCoreResult:
        t, w = self.t, self.watch
        assert w is not None
        self.group = f"qsipctl-{secrets.token_hex(4)}"
        watched = [{"Name": self.controls[n]} for n in WATCHED if n in self.controls]
        await self.client.call(
            "ChangeGroup.AddComponentControl",
            {"Id": self.group, "Component": {"Name": t.code_name, "Controls": watched}},
            t.timeout,
        )
        self.group_destroyed = False
        poll = {"Id": self.group, "Rate": t.poll_rate}
        await self.client.call("ChangeGroup.AutoPoll", poll, t.timeout)
        await self._set("number", t.number)
        w.t0 = time.monotonic()
        self.dialled = True
        await self._set("connect", 1)
        answered = await w.until(
            lambda: w.connected_at is not None or w.ended, w.t0 + t.ring_timeout
        )
        if not answered:
            await self._hang_up()
            return self.result("no-answer", f"no answer within {t.ring_timeout:g} s; hung up")
        if w.connected_at is None:
            self.hung_up = True  # it ended by itself
            verdict = classify(w.texts)
            return self.result(verdict, f"call.status says {w.values.get('status', '')!r}")
        await self._dtmf()
        hold_until = time.monotonic() + t.duration
        await w.until(lambda: w.ended, hold_until)
        early = w.ended
        await self._hang_up()
        detail = f"after {t.duration:g} s"
        if early:
            detail = "the far end hung up first"
        if self.dtmf_sent:
            detail += f", keypad sent {self.dtmf_sent}"
        return self.result("connected", detail)

    async def _dtmf(self) -> None:
        for digit in self.t.dtmf:
            await self._set(f"pinpad.{digit}", 1)
            self.dtmf_sent += digit
            await asyncio.sleep(self.t.dtmf_gap)

    async def _hang_up(self) -> None:
        w = self.watch
        if w is not None and not w.ended:
            await self._set("disconnect", 1)
            self.hung_up = True
            await w.until(lambda: w.ended, time.monotonic() + self.t.timeout)
        else:
            self.hung_up = True

    async def _cleanup(self) -> None:
        """Hang up and destroy the change group on every path, then close.

        Runs from ``finally``: also when the task was cancelled (Ctrl-C,
        a caller's timeout).  Each step is bounded and shielded so a second
        cancellation cannot leave the core's phone off hook.
        """
        task = asyncio.ensure_future(self._cleanup_steps())
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:  # cancelled again while cleaning up: finish first
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(asyncio.shield(task), self.t.timeout * 3)
            raise

    async def _cleanup_steps(self) -> None:
        w = self.watch
        if self.dialled and not self.hung_up and w is not None and not w.ended:
            try:
                await self._set("disconnect", 1)
                self.hung_up = True
            except (QrcError, OSError):
                await self._hang_up_anew()
        if self.group is not None and self.group_destroyed is False:
            with contextlib.suppress(QrcError, OSError):
                await self.client.call("ChangeGroup.Destroy", {"Id": self.group}, self.t.timeout)
                self.group_destroyed = True
                self.client.session.forget_autopoll(self.group)
        await self.client.close()

    async def _hang_up_anew(self) -> None:
        """The QRC connection died mid-call; the call did not: hang up over a new one."""
        t = self.t
        client = QrcClient(t.host, t.port, keepalive=t.keepalive)
        try:
            await client.connect(t.timeout)
            if t.user is not None:
                password = t.password.reveal() if t.password else ""
                await client.call("Logon", {"User": t.user, "Password": password}, t.timeout)
            control = {"Name": self.controls["disconnect"], "Value": 1}
            await client.call(
                "Component.Set", {"Name": t.code_name, "Controls": [control]}, t.timeout
            )
            self.hung_up = True
        except (QrcError, OSError):
            pass  # reported: hung_up stays false, and the message says the connection was lost
        finally:
            await client.close()


def _controls_of(result: Any) -> list[dict[str, Any]]:
    controls = result.get("Controls") if isinstance(result, dict) else result
    return [c for c in controls if isinstance(c, dict)] if isinstance(controls, list) else []


async def dial_once(target: ViaCoreTarget) -> ViaCoreResult:
    """One softphone's test call (``--answer-as``: the number is the account qsipctl rings as)."""
    return await _Probe(target).run()


async def run_via_core_async(
    targets: Sequence[ViaCoreTarget], concurrency: int = 20
) -> list[ViaCoreResult]:
    """Test every target, ``concurrency`` at a time; results in the targets' order."""
    gate = asyncio.Semaphore(concurrency)

    async def one(target: ViaCoreTarget) -> ViaCoreResult:
        async with gate:
            return await _Probe(target).run()

    return list(await asyncio.gather(*(one(t) for t in targets)))


def run_via_core(targets: Sequence[ViaCoreTarget], concurrency: int = 20) -> list[ViaCoreResult]:
    """Blocking entry point; Ctrl-C cancels the probes, whose cleanup still runs."""
    return asyncio.run(run_via_core_async(targets, concurrency))
