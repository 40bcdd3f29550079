"""The inbound early-offer check (issue 9 point 6): inspect an INVITE the PBX sends us.

The Q-SYS Softphone only takes calls whose INVITE carries SDP (early offer).
:func:`answer_one_call` waits on a driver for one INVITE, reports what it
offered (:func:`qsipctl.sdp.analyse_offer`: early or delayed offer, codecs,
any in common with the core's list, telephone-event), answers it like the
core would (180, then 200 with our SDP: the answer for an early offer, our
offer for a delayed one, whose answer then comes in the ACK), exchanges
audio, and hangs up (or takes the caller's BYE).  A call we cannot take
(no codec in common) gets 488 with the reason.

Ringing *as the softphone account* (a binding-safe REGISTER of that
account, refused when it is bound elsewhere, always unregistered) is
:mod:`qsipctl.probes.answer`, which calls this function once bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from dataclasses import dataclass, field, replace
from typing import Any

from qsipctl.addr import host_port
from qsipctl.media.result import MediaResult
from qsipctl.media.session import Captured, MediaConfig, MediaSession
from qsipctl.net.driver import SipDriver
from qsipctl.net.errors import NetError
from qsipctl.sdp import (
    CODECS,
    NoCommonCodec,
    OfferAnalysis,
    OfferSettings,
    SdpError,
    analyse_offer,
    answer_offer,
    build_offer,
    negotiate,
    parse,
)
from qsipctl.sip.dialog import Dialog
from qsipctl.sip.endpoint import Peer, RequestReceived
from qsipctl.sip.errors import SipError
from qsipctl.sip.message import Request
from qsipctl.sip.uri import parse_uri
from qsipctl.site.model import CORE_RTP_RANGE


@dataclass(slots=True)
class InboundReport:
    analysis: OfferAnalysis | None = None
    caller: str | None = None  # the INVITE's From
    connection: str | None = None  # the offer's audio connection address (c=)
    offered_pts: tuple[int, ...] = ()  # the offer's audio payload types, in order
    status_sent: int | None = None
    codec: str | None = None
    hung_up_by: str | None = None
    media: MediaResult | None = None
    problems: list[str] = field(default_factory=list)
    # the RTP/RTCP of the answered call for --pcap, taken when ``media`` was: the same packets
    captured: list[Captured] = field(default_factory=list, repr=False)

    def as_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        out = {k: v for k, v in asdict(self).items() if k not in ("media", "captured")}
        out["media"] = self.media.as_dict() if self.media else None
        return out


async def answer_one_call(
    driver: SipDriver,
    settings: OfferSettings,
    local_ip: str,
    *,
    wait: float = 30.0,
    duration: float = 5.0,
    port_range: tuple[int, int] = CORE_RTP_RANGE,
    capture_limit: int = 0,
) -> InboundReport:
    """Take the next INVITE on ``driver`` (its endpoint must accept INVITE).

    ``capture_limit``: keep up to that many RTP/RTCP packets of the call (both ways)
    in ``report.captured`` for ``--pcap``."""
    report = InboundReport()
    invite, tx, source = await _next_invite(driver, wait)
    if invite is None or tx is None or source is None:
        report.problems.append(f"no INVITE arrived within {wait:.0f} s")
        return report
    report.caller = invite.headers.get("From")
    report.analysis = analyse_offer(invite.body or None, invite.headers.get("Content-Type"),
                                    settings.codecs, settings.dtmf_mode)  # fmt: skip
    _describe_offer(report, invite.body if report.analysis.early_offer else None)
    driver.respond(tx, driver.endpoint.response_for(tx, 180, "Ringing"))
    cfg = MediaConfig(codec=CODECS[settings.codecs[0].upper()], local_host=local_ip,
                      port_range=port_range, rtcp_interval=1.0,
                      capture_limit=capture_limit)  # fmt: skip
    async with MediaSession(cfg) as media:
        try:
            await _answer(driver, invite, tx, source, settings, local_ip, media, report,
                          duration)  # fmt: skip
        finally:
            if not report.captured:  # an early way out: whatever the socket saw
                report.captured = list(media.captured)
    return report


async def _answer(driver: SipDriver, invite: Request, tx: Any, source: Peer,
                  settings: OfferSettings, local_ip: str, media: MediaSession,
                  report: InboundReport, duration: float) -> None:  # fmt: skip
    """200 with our SDP (or 488), the audio, and the hang-up, on ``media``'s socket."""
    assert report.analysis is not None
    agreed = None
    if report.analysis.early_offer:
        try:
            agreed = answer_offer(settings, parse(invite.body), "the caller")
        except (NoCommonCodec, SdpError) as exc:
            resp = driver.endpoint.response_for(tx, 488, "Not Acceptable Here")
            resp.headers.add("Warning", f'304 qsipctl "{str(exc)[:120]}"')
            driver.respond(tx, resp)
            report.status_sent = 488
            report.problems.append(str(exc))
            return
        ours = OfferSettings(codecs=(agreed.codec.name,), dtmf_mode=settings.dtmf_mode
                             if agreed.telephone_event_pt is not None else "sip-info",
                             dtmf_payload_type=agreed.telephone_event_pt or 101)  # fmt: skip
        sdp = build_offer(ours, local_ip, media.local[1], _sid())
    else:
        sdp = build_offer(settings, local_ip, media.local[1], _sid())
    ok = driver.endpoint.response_for(tx, 200, "OK")
    ok.headers.add("Contact", f"<sip:qsipctl@{host_port(*driver.local_for(source))}>")
    ok.headers.add("Content-Type", "application/sdp")
    ok.body = sdp.serialize()
    via = f"SIP/2.0/{source.transport.upper()} {host_port(*driver.local_for(source))};rport"
    dialog = Dialog.as_uas(invite, ok, via=via)  # our BYE needs our Via
    driver.endpoint.dialogs.add(dialog.key)
    driver.respond(tx, ok)
    report.status_sent = 200
    try:
        if agreed is None:  # delayed offer: the answer comes in the ACK
            ack = await _ack(driver, dialog, wait=10.0)
            if ack is None or not ack.body:
                report.problems.append("no SDP answer in the ACK to our offer")
                return
            agreed = negotiate(sdp, parse(ack.body), "the caller")
        report.codec = agreed.codec.name
        media.reconfigure(replace(media.cfg, codec=agreed.codec,
                                  send_payload_type=agreed.remote_payload_type,
                                  telephone_event_pt=agreed.telephone_event_pt))  # fmt: skip
        media.set_remote((agreed.remote_address, agreed.remote_port))
        media.start()
        if await _until_bye(driver, dialog, duration):
            report.hung_up_by = "caller"
        report.media = media.result()
        # the capture as of the figures: the pcap's stream counts are the JSON's
        report.captured = list(media.captured)
    except (NoCommonCodec, SdpError) as exc:
        report.problems.append(str(exc))
    finally:
        if dialog.state != "terminated":
            report.hung_up_by = report.hung_up_by or "us"
            bye = dialog.create_request("BYE")
            dialog.state = "terminated"
            with contextlib.suppress(NetError, SipError):
                await driver.request(bye, _next_hop(dialog, source), 5.0)


def _describe_offer(report: InboundReport, body: bytes | None) -> None:
    """Where the caller's RTP would come from (c=) and its payload types, for the report."""
    if not body:
        return
    with contextlib.suppress(SdpError):
        sdp = parse(body)
        audio = sdp.audio()
        if audio is not None:
            report.connection = sdp.media_address(audio)
            report.offered_pts = tuple(int(f) for f in audio.formats if str(f).isdigit())


def _next_hop(dialog: Dialog, fallback: Peer) -> Peer:
    """Where our BYE goes (RFC 3261 12.2.1.1): the route set, else the caller's Contact;
    a proxy that did not Record-Route is not in the dialog.  Over TCP/TLS we keep to the
    connection the INVITE came on."""
    if fallback.transport != "udp":
        return fallback
    try:
        uri = parse_uri(dialog.next_hop().strip("<>"))
    except SipError:
        return fallback
    port = uri.port or (5061 if fallback.transport == "tls" else 5060)
    return Peer(fallback.transport, uri.host.strip("[]"), port)


def _sid() -> int:
    return int.from_bytes(os.urandom(4), "big")


def _answered_options(driver: SipDriver, ev: object) -> bool:
    """An OPTIONS gets 200 and our Allow list, in or out of the call.

    While we stand in for the softphone the PBX may ping the binding (Asterisk's
    qualify, a session audit in the call): an unanswered ping marks the contact
    unreachable and the test call never comes; a 405 ends some PBXs' calls.
    """
    if not (isinstance(ev, RequestReceived) and ev.request.method == "OPTIONS" and ev.tx):
        return False
    ok = driver.endpoint.response_for(ev.tx, 200, "OK")
    ok.headers.add("Allow", driver.endpoint.allow)
    driver.respond(ev.tx, ok)
    return True


async def _next_invite(driver: SipDriver, wait: float) -> tuple[Request | None, Any, Peer | None]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while (left := deadline - loop.time()) > 0:
        try:
            ev = await asyncio.wait_for(driver.incoming.get(), left)
        except TimeoutError:
            break
        if _answered_options(driver, ev):
            continue
        if isinstance(ev, RequestReceived) and ev.request.method == "INVITE" and ev.tx:
            return ev.request, ev.tx, ev.source
    return None, None, None


async def _ack(driver: SipDriver, dialog: Dialog, wait: float) -> Request | None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while (left := deadline - loop.time()) > 0:
        try:
            ev = await asyncio.wait_for(driver.incoming.get(), left)
        except TimeoutError:
            return None
        if _answered_options(driver, ev):
            continue
        if isinstance(ev, RequestReceived) and ev.request.method == "ACK":
            return ev.request
    return None


async def _until_bye(driver: SipDriver, dialog: Dialog, seconds: float) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while (left := deadline - loop.time()) > 0:
        try:
            ev = await asyncio.wait_for(driver.incoming.get(), left)
        except TimeoutError:
            return False
        if not isinstance(ev, RequestReceived) or ev.tx is None:
            continue
        if ev.dialog is None and _answered_options(driver, ev):
            continue  # a ping of the binding, not of the call
        refuse = dialog.receive_request(ev.request)
        if refuse is None and _answered_options(driver, ev):
            continue  # the PBX's audit of the call
        driver.respond(ev.tx, driver.endpoint.response_for(ev.tx, refuse or 200, "OK"))
        if ev.request.method == "BYE" and refuse is None:
            return True
    return False
