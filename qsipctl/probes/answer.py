"""Ring as the softphone account and take one call (issue 9 point 6, issue 13 point 4).

The inbound early-offer check needs the PBX to send *us* the INVITE it would
send the core, so we must be bound to the softphone's account.  That binding
follows the register probe's rules (:mod:`qsipctl.probes.register_flow`):

* first a REGISTER without Contact lists the account's bindings and changes
  nothing;
* when another device (a live core) is bound, we refuse unless ``force``:
  on a PBX that keeps one contact per account our binding would take the
  core's calls away until it registers again;
* then we bind with our own Contact, wait for the INVITE (the engineer dials
  the number, a second account calls through :func:`qsipctl.probes.call.place_call`,
  or a core dials over QRC), analyse and answer it
  (:func:`qsipctl.probes.inbound.answer_one_call`), and unregister on every
  path out: an error, the ring timeout, Ctrl-C, SIGTERM.  Whatever may remain
  is reported with its expiry.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from dataclasses import asdict, dataclass, field, is_dataclass
from typing import Any

from qsipctl.addr import is_private, same_ip, split_host_port
from qsipctl.probes.base import Conversation, ProbeOutcome, probe_servers
from qsipctl.probes.inbound import InboundReport, answer_one_call
from qsipctl.probes.register import ConversationSender, describe_answer
from qsipctl.probes.register_flow import LEDGER, RegisterFlow, RegisterPolicy
from qsipctl.probes.result import ProbeResult
from qsipctl.probes.target import ProbeTarget
from qsipctl.sdp import OfferSettings
from qsipctl.sip.message import Response
from qsipctl.site.model import CORE_RTP_RANGE

# While bound, something has to make the PBX call us: an outgoing test call, a
# QRC dial on the core, or nothing (the engineer dials).  It gets the number.
Trigger = Callable[[str], Coroutine[Any, Any, Any]]


@dataclass(frozen=True, slots=True)
class InboundOptions:
    """How to take the call: the core's settings, how long to wait and to talk."""

    settings: OfferSettings = field(default_factory=OfferSettings)
    ring_timeout: float = 60.0  # how long we wait for the INVITE once bound
    duration: float = 5.0
    port_range: tuple[int, int] = CORE_RTP_RANGE
    force: bool = False  # bind even when another device (the core) is bound
    capture_limit: int = 0  # RTP/RTCP packets of the answered call kept for --pcap


@dataclass(slots=True)
class InboundRun:
    """Everything one inbound check produced: the answer side and what the trigger returned."""

    report: InboundReport = field(default_factory=InboundReport)
    triggered: Any = None  # the trigger's result (a (ProbeOutcome, CallReport) for --from-account)
    trigger_error: str | None = None


async def receive_call(
    target: ProbeTarget, options: InboundOptions, trigger: Trigger | None = None
) -> tuple[ProbeOutcome, InboundRun]:
    """Bind as ``target``'s account (binding-safe), take one call, unbind; never raises for
    network failures.  Cancellation raises after our binding is removed."""
    run = InboundRun()

    async def attempt(conv: Conversation, result: ProbeResult) -> None:
        await _attempt(conv, result, options, trigger, run)

    accept = ("INVITE", "ACK", "BYE", "CANCEL", "UPDATE", "OPTIONS")
    outcome = await probe_servers("inbound", target, attempt, accept=accept)
    return outcome, run


async def _attempt(conv: Conversation, result: ProbeResult, opts: InboundOptions,
                   trigger: Trigger | None, run: InboundRun) -> None:  # fmt: skip
    def describe(resp: Response) -> None:
        describe_answer(result, resp, conv.local)

    sender = ConversationSender(conv)
    policy = RegisterPolicy(bind=True, keep=True, force=opts.force)
    ledger = LEDGER.get()
    token = LEDGER.set([]) if ledger is None else None
    try:
        mine = LEDGER.get()
        assert mine is not None
        flow = RegisterFlow(sender, result, policy, conv.target.expires, describe)
        await flow.run()  # query; refuse when bound elsewhere; bind (kept until we unbind)
        result.mode = "bind"
        entry = next((e for e in reversed(mine) if e.contact == sender.our_contact.strip("<>")
                      and e.state == "kept"), None)  # fmt: skip
        if entry is None:  # refused, or the PBX would not bind us: nothing to undo
            _explain_not_bound(result)
            return
        entry.state = "pending"  # from here the binding is ours to remove
        try:
            await _take_call(conv, result, opts, trigger, run)
        finally:
            # RegisterFlow's own unbind: Expires: 0, finishing even when Ctrl-C arrives
            # meanwhile, and reporting what may remain
            await flow.unbind(sender.our_contact, entry)
    finally:
        if token is not None:
            LEDGER.reset(token)


def _explain_not_bound(result: ProbeResult) -> None:
    if result.verdict == "in-use":
        result.message += (
            ". The inbound check rings as this account: taking its binding would send"
            " the core's calls to this machine instead"
        )


async def _take_call(conv: Conversation, result: ProbeResult, opts: InboundOptions,
                     trigger: Trigger | None, run: InboundRun) -> None:  # fmt: skip
    answer = asyncio.create_task(
        answer_one_call(
            conv.driver,
            opts.settings,
            conv.local[0],
            wait=opts.ring_timeout,
            duration=opts.duration,
            port_range=opts.port_range,
            capture_limit=opts.capture_limit,
        )
    )
    caller: asyncio.Task[Any] | None = None
    try:
        if trigger is not None:
            caller = asyncio.create_task(trigger(conv.target.user or ""))
        run.report = await answer
        if caller is not None:
            try:
                run.triggered = await asyncio.wait_for(caller, opts.duration + 15.0)
            except TimeoutError:
                run.trigger_error = "the calling side did not finish"
            except Exception as exc:  # the caller's failure is reported, not raised
                run.trigger_error = f"the calling side failed: {exc}"
    finally:
        for task in (answer, caller):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
    _verdict(result, run.report)


def _verdict(result: ProbeResult, report: InboundReport) -> None:
    """The probe's verdict is the INVITE's: early offer answered, delayed offer, no codec."""
    a = report.analysis
    if a is None:
        result.fail("no-call", "; ".join(report.problems) or "no INVITE arrived")
        return
    if not a.early_offer:
        result.fail("delayed-offer", "")
        result.message = a.verdict + " (docs/call.md names the setting per PBX)"
        return
    if report.status_sent == 488 or not a.common:
        result.fail("no-common-codec", a.verdict)
        return
    heard = report.media.audio.describe() if report.media else "no media"
    problems = f"; {'; '.join(report.problems)}" if report.problems else ""
    result.succeed(f"{a.verdict}; answered with {report.codec}; heard {heard}{problems}")
    if "telephone-event" in a.verdict:
        result.warnings.append(a.verdict)


@dataclass(frozen=True, slots=True)
class Check:
    """One comparison of the INVITE's offer with what provision pushes to the core."""

    item: str
    expected: str
    seen: str
    ok: bool

    def as_dict(self) -> dict[str, Any]:
        return {"item": self.item, "expected": self.expected, "seen": self.seen, "ok": self.ok}


def compare_offer(report: InboundReport, settings: OfferSettings, stun: bool) -> list[Check]:
    """What the INVITE's SDP shows against the site's settings for the core (issue 13 point 4).

    ``stun``: the site gives the core a STUN server, so its SDP should carry a
    public (mapped) address; without it a private address is what the core
    knows, and a PBX outside its network needs a NAT-aware trunk.
    """
    a = report.analysis
    if a is None:
        return []
    checks = [Check("early offer", "SDP in the INVITE", "yes" if a.early_offer else "no SDP",
                    a.early_offer)]  # fmt: skip
    if not a.early_offer:
        return checks
    want = tuple(c.upper() for c in settings.codecs)
    seen = tuple(c.upper() for c in a.codecs)
    checks.append(Check("codecs and order", ", ".join(want), ", ".join(seen) or "-", seen == want))
    if settings.dtmf_mode == "rfc2833":
        pt = a.telephone_event_pt
        checks.append(Check("telephone-event payload type", str(settings.dtmf_payload_type),
                            str(pt) if pt is not None else "not offered",
                            pt == settings.dtmf_payload_type))  # fmt: skip
    else:
        checks.append(Check("telephone-event", "not offered (SIP INFO DTMF)",
                            "offered" if a.telephone_event else "not offered",
                            not a.telephone_event))  # fmt: skip
    checks.append(Check("SRTP", "RTP/SAVP" if settings.srtp else "RTP/AVP",
                        "RTP/SAVP" if a.srtp else "RTP/AVP", a.srtp == settings.srtp))  # fmt: skip
    checks.append(_address_check(report, stun))
    return checks


def _address_check(report: InboundReport, stun: bool) -> Check:
    """Is the SDP address the one the PBX sees?  Judged by evidence first: where the
    core's RTP really came from.  A different source means a NAT rewrote the packets
    but not the SDP, whatever the address looks like (address ranges alone cannot
    tell a LAN from the internet: the lab's LAN is 198.18.x)."""
    addr = report.connection or "-"
    source = report.media.remote_actual if report.media else None
    source_ip = split_host_port(source)[0] if source else None
    if source_ip and report.connection and not same_ip(source_ip, report.connection):
        kind, reachable = f"behind a NAT: its RTP came from {source_ip}", False
    elif report.connection and is_private(report.connection):
        kind, reachable = "private", False
    else:
        kind, reachable = "public", True
    if stun:
        return Check("SDP address", "public (STUN-mapped)", f"{addr} ({kind})", reachable)
    return Check("SDP address", "the core's own (no STUN)", f"{addr} ({kind})", True)


def render_inbound(run: InboundRun, checks: list[Check] | None = None) -> str:
    """The INVITE's findings and the call's figures as a two-column table."""
    from tabulate import tabulate

    r = run.report
    a = r.analysis
    rows: list[tuple[str, str]] = [("caller", r.caller or "-")]
    if a is not None:
        rows += [
            ("SDP in the INVITE", "yes (early offer)" if a.early_offer else "no (delayed offer)"),
            ("codecs offered", ", ".join(a.codecs) or "-"),
            ("in common with the core", ", ".join(a.common) or "none"),
            (
                "telephone-event",
                f"offered (payload type {a.telephone_event_pt})"
                if a.telephone_event
                else "not offered",
            ),
            ("SDP address", r.connection or "-"),
        ]
    rows += [("we answered", str(r.status_sent or "-")), ("codec", r.codec or "-")]
    m = r.media
    if m is not None:
        rx = m.received
        rows += [
            ("RTP sent", f"{m.sent_packets} packets to {m.remote_actual or m.remote_sdp}"),
            ("RTP received", f"{rx.packets} packets, {rx.lost} lost, jitter {rx.jitter_ms:.1f} ms"),
            ("audio heard", m.audio.describe()),
        ]
        rows += [("media", v) for v in m.verdicts]
    rows.append(("hung up by", r.hung_up_by or "-"))
    rows += [("problem", p) for p in r.problems]
    if run.trigger_error:
        rows.append(("calling side", run.trigger_error))
    verdict = getattr(run.triggered, "verdict", None)
    if isinstance(verdict, str):  # --answer-as: what the core said about its call
        rows.append(("core's call", f"{verdict}: {getattr(run.triggered, 'message', '')}"))
    for c in checks or []:
        mark = "ok" if c.ok else "DIFFERS"
        rows.append((f"vs site: {c.item}", f"{mark}: expected {c.expected}, INVITE has {c.seen}"))
    return tabulate(rows, tablefmt="plain")


def inbound_dict(run: InboundRun, checks: list[Check] | None = None) -> dict[str, Any]:
    """The JSON form of one inbound check (the caller's call report included when there is one)."""
    out: dict[str, Any] = {"inbound": run.report.as_dict(), "trigger_error": run.trigger_error}
    triggered = run.triggered
    if isinstance(triggered, tuple) and len(triggered) == 2 and hasattr(triggered[1], "as_dict"):
        out["caller"] = {"result": asdict(triggered[0].result), "call": triggered[1].as_dict()}
    elif is_dataclass(triggered) and not isinstance(triggered, type):
        out["core_call"] = asdict(triggered)  # --answer-as: the core's own call over QRC
    if checks is not None:
        out["checks"] = [c.as_dict() for c in checks]
    return out
