"""The ``call`` probe: a real test call with the softphone's own settings (issue 9).

Assembles the SIP endpoint/dialog layer (``net.driver``, ``sip.dialog``,
``sip.digest``) with the media half (``sdp``, ``media``): INVITE with our SDP
offer, digest auth on 401/407, 1xx noted (183 with SDP = early media), CANCEL
after the ring timeout, 200 -> ACK along the dialog's route, audio both
ways for ``duration`` with RFC 4733 DTMF, a far-end BYE answered, BYE at the
end.  Every path hangs up: an established call gets its BYE and a ringing one
its CANCEL in ``finally``, also on errors and cancellation; the media socket
is closed by its context manager.

Not wired to the CLI yet (docs/call.md); :func:`place_call` is the library entry.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from qsipctl.addr import bracket, host_port, same_ip
from qsipctl.media.result import MediaResult
from qsipctl.media.session import Captured, MediaConfig, MediaSession
from qsipctl.net.errors import NetError, NoAnswer
from qsipctl.probes.base import Conversation, ProbeOutcome, elapsed_ms, probe_servers
from qsipctl.probes.result import ProbeResult, status_line, verdict_for_status
from qsipctl.probes.target import ProbeTarget
from qsipctl.sdp import (
    CODECS,
    Codec,
    CryptoAttribute,
    Negotiated,
    NoCommonCodec,
    OfferSettings,
    SdpError,
    SessionDescription,
    build_offer,
    explain_status,
    negotiate,
    new_crypto,
    parse,
    read_offer,
    with_direction,
)
from qsipctl.sip.dialog import ClientInvite, Dialog
from qsipctl.sip.digest import AuthResult, ClientAuth, DigestCredentials
from qsipctl.sip.endpoint import Peer, RequestReceived, ResponseReceived
from qsipctl.sip.errors import SipError
from qsipctl.sip.message import Request, Response
from qsipctl.sip.session_timer import MAX_GLARE_RETRIES, SessionRefresher
from qsipctl.sip.uri import parse_uri
from qsipctl.site.model import CORE_RTP_RANGE
from qsipctl.stun.client import binding
from qsipctl.stun.message import TransportAddress
from qsipctl.stun.transport import DatagramPort, UdpPort

# Plain words for the final answers a caller meets (RFC 3261 21).
CALL_STATUS = {
    404: "no such number (404): the PBX knows no user or route for it",
    403: "not allowed to call it (403): the account may not call this number",
    480: "unavailable (480): the callee is not registered or does not answer",
    486: "busy (486): the callee is on another call",
    487: "cancelled (487)",
    600: "busy everywhere (600)",
    603: "declined (603): the callee refused the call",
}
MAX_AUTH_ROUNDS = 3


@dataclass(frozen=True, slots=True)
class CallOptions:
    """How to call: the core's settings, where media lives, how long to talk."""

    number: str = ""  # who to call: the user part at the target's domain
    settings: OfferSettings = field(default_factory=OfferSettings)
    duration: float = 5.0
    ring_timeout: float = 30.0
    dtmf: str = ""
    port_range: tuple[int, int] = CORE_RTP_RANGE
    media_address: str | None = None  # the address for the SDP's c=, when known already
    # the site's STUN server (host, port) when its settings enable STUN: its mapped address
    # goes into c=; never a default server (the caller passes the configured one or None)
    stun_server: tuple[str, int] | None = None
    tone_hz: int = 440
    capture_limit: int = 0  # RTP/RTCP packets kept for --pcap
    echo: bool = False  # the destination echoes audio back: measure the round trip
    # RFC 4028: refresh this many seconds into the call when we are the refresher
    # (None: half the interval the PBX set, as §10 recommends; tests make it short)
    refresh_after: float | None = None
    dtmf_info_ms: int = 160  # SIP INFO DTMF: Duration= of each digit, and the gap after it
    # RFC 3261 §14.1: a refresh answered 491 is sent again after a random wait, this often
    glare_retries: int = MAX_GLARE_RETRIES


@dataclass(slots=True)
class CallReport:
    """What the call did, beside the ProbeResult's verdict; JSON via :meth:`as_dict`."""

    ringing_ms: float | None = None
    answered_ms: float | None = None
    early_media: bool = False
    provisional: list[int] = field(default_factory=list)
    challenged: list[int] = field(default_factory=list)  # 401/407 answered with credentials
    codec: str | None = None
    offered: tuple[str, ...] = ()
    answered: tuple[str, ...] = ()
    hung_up_by: str | None = None  # "us" | "far end"
    transport: str | None = None  # the SIP transport the call ran on
    stun_mapped: str | None = None  # our SIP socket as the site's STUN server saw it (ip:port)
    stun_rtp_mapped: str | None = None  # our RTP socket as the STUN server saw it (ip:port)
    # why the RTP mapping was not (or not simply) offered: no answer from the RTP port, or
    # its IP differs from the SIP socket's (an address-dependent NAT pool)
    stun_rtp_problem: str | None = None
    offered_address: str | None = None  # the c= address of our offer
    offered_port: int | None = None  # the m= port of our offer (the RTP port's mapping with STUN)
    srtp: bool = False  # the media was SRTP (both sides agreed on an SDES key)
    session_expires: int | None = None  # RFC 4028 interval the PBX set in its 200, seconds
    refresher: str | None = None  # "uac" (us) or "uas"
    refreshes: list[int] = field(default_factory=list)  # status of each session refresh we sent
    refresh_method: str | None = None  # UPDATE when the far end allows it, else INVITE
    refresh_glare: int = 0  # 491 Request Pending answers to our refreshes (glare)
    refresh_glare_waits: list[float] = field(default_factory=list)  # s before each retry
    refresh_verdict: str | None = None  # set when we gave up after repeated 491s
    glare_refused: int = 0  # far-end re-INVITE/UPDATE offers we answered 491 (crossed ours)
    reoffers: list[str] = field(default_factory=list)  # far-end re-offers: "sendonly->recvonly"
    dtmf_info: list[tuple[str, int]] = field(default_factory=list)  # (digit, status) per INFO
    far_requests: list[str] = field(default_factory=list)  # in-dialog requests from the far end
    dtmf_info_received: str = ""  # digits the far end sent by SIP INFO (at most 64 kept)
    cancelled: bool = False
    media: MediaResult | None = None
    captured: list[Captured] = field(default_factory=list, repr=False)  # for --pcap only

    def as_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if k not in ("media", "captured")}
        out["media"] = self.media.as_dict() if self.media else None
        return out

    def render(self) -> str:
        """The call's figures as a two-column table (the verdict line is the probe table's)."""
        from tabulate import tabulate

        offered = self.offered_address or "-"
        if self.offered_address and self.offered_port:
            offered = host_port(self.offered_address, self.offered_port)
        rows: list[tuple[str, str]] = [
            ("provisional", ", ".join(map(str, self.provisional)) or "-"),
            ("ringing after", _ms(self.ringing_ms)),
            ("answered after", _ms(self.answered_ms)),
            ("early media", "yes (183 with SDP)" if self.early_media else "no"),
            ("transport", f"{self.transport or '-'}, media {'SRTP' if self.srtp else 'RTP'}"),
            ("offered address", offered),
            *self._stun_rows(),
            ("codec", f"{self.codec or '-'} (offered {', '.join(self.offered)}; "
                      f"answered {', '.join(self.answered) or '-'})"),
        ]  # fmt: skip
        m = self.media
        if m is not None:
            rx = m.received
            rows += [
                ("RTP sent", f"{m.sent_packets} packets to {m.remote_actual or m.remote_sdp}"),
                ("RTP received", f"{rx.packets} packets, {rx.lost} lost ({rx.loss_percent:.1f} %), "
                                 f"{rx.duplicates} dup, {rx.reordered} reordered, "
                                 f"jitter {rx.jitter_ms:.1f} ms"),
                ("RTCP", f"{m.rtcp_sent} sent, {m.rtcp_received} received, RTT {_ms(m.rtt_ms)}"),
                ("audio heard", m.audio.describe()),
                ("round trip", _ms(m.round_trip_ms)),
                ("MOS (E-model)", f"{m.mos} (R {m.r_factor})" if m.mos is not None else "-"),
                ("DTMF sent", m.dtmf_sent or _info_digits(self.dtmf_info) or "-"),
                ("DTMF received", m.dtmf_received + self.dtmf_info_received or "-"),
                ("hung up by", self.hung_up_by or "-"),
                ("session timer", f"{self.session_expires} s, refresher {self.refresher or '-'}"
                                  if self.session_expires else "none"),
                ("refreshes sent", ", ".join(map(str, self.refreshes)) or "-"),
            ]  # fmt: skip
            if self.refresh_glare:
                waits = ", ".join(f"{w:.2f} s" for w in self.refresh_glare_waits) or "-"
                rows.append(("refresh glare", f"{self.refresh_glare} x 491 Request Pending "
                                              f"(retried after {waits})"))  # fmt: skip
            if self.glare_refused:
                rows.append(("far-end glare", f"{self.glare_refused} re-offer(s) answered 491 "
                                              "(they crossed our refresh)"))  # fmt: skip
            rows += [("far-end hold", h.describe()) for h in m.held]
            held = {h.describe() for h in m.held}
            rows += [("verdict", v) for v in m.verdicts if v not in held]
        return tabulate(rows, tablefmt="plain")

    def _stun_rows(self) -> list[tuple[str, str]]:
        """The two STUN mappings (SIP socket, RTP socket), when STUN was asked."""
        if not (self.stun_mapped or self.stun_rtp_mapped or self.stun_rtp_problem):
            return []
        rows = [("STUN mapping", f"SIP socket {self.stun_mapped or 'no answer'}, "
                                 f"RTP socket {self.stun_rtp_mapped or 'no answer'}")]  # fmt: skip
        if self.stun_rtp_problem:
            rows.append(("STUN problem", self.stun_rtp_problem))
        return rows


def _info_digits(sent: list[tuple[str, int]]) -> str:
    return "".join(d for d, status in sent if 200 <= status < 300)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} ms"


async def place_call(target: ProbeTarget, options: CallOptions) -> tuple[ProbeOutcome, CallReport]:
    """Call ``options.number`` at ``target``'s domain as ``target``'s account (From, digest);
    never raises for network failures (the verdict says what happened)."""
    report = CallReport()

    async def attempt(conv: Conversation, result: ProbeResult) -> None:
        await _call(conv, result, options, report)

    outcome = await probe_servers(
        "call", target, attempt, accept=("BYE", "INVITE", "UPDATE", "INFO", "OPTIONS")
    )
    return outcome, report


def _peer_for(uri: str, fallback: Peer) -> Peer:
    """Where a dialog's next hop lives (host:port of its URI; the proxy when unparsable)."""
    try:
        u = parse_uri(uri.strip("<>"))
    except Exception:  # an odd Contact must not turn a working call into a crash
        return fallback
    port = u.port or (5061 if fallback.transport == "tls" else 5060)
    return Peer(fallback.transport, u.host.strip("[]"), port)


async def _call(conv: Conversation, result: ProbeResult, opts: CallOptions, report: CallReport
                ) -> None:  # fmt: skip
    target, driver = conv.target, conv.driver
    uri = f"{target.scheme}:{opts.number}@{bracket(target.domain)}"
    local_ip = conv.local[0]
    crypto = new_crypto() if opts.settings.srtp else None
    report.transport = conv.peer.transport
    if crypto is not None and conv.peer.transport != "tls":
        result.warnings.append(
            f"SRTP over {conv.peer.transport.upper()}: the SDES keys (a=crypto) travel in "
            "clear text in the SDP, so anyone who sees the SIP can decrypt the audio; use TLS"
        )
    cfg = MediaConfig(codec=_first_codec(opts.settings), local_host=local_ip,
                      port_range=opts.port_range, tone_hz=opts.tone_hz, rtcp_interval=1.0,
                      capture_limit=opts.capture_limit)  # fmt: skip
    async with MediaSession(cfg) as probe_media:
        address, port = await _offer_address(conv, opts, result, report, probe_media)
        report.offered_address, report.offered_port = address, port
        offer = build_offer(opts.settings, address, port,
                            int.from_bytes(os.urandom(4), "big"), crypto)  # fmt: skip
        report.offered = tuple(opts.settings.codecs)
        auth = _auth(target)
        started = time.perf_counter()
        dialog: Dialog | None = None
        established: dict[str, Dialog] = {}  # every 2xx we ACKed (forks too): each gets a BYE
        invite_tx = None
        try:
            for _round in range(MAX_AUTH_ROUNDS + 1):
                invite = _invite(conv, uri, offer.serialize())
                if auth is not None:
                    auth.authorize(invite)
                client = ClientInvite(invite)
                acks: dict[str, Request] = {}

                def on_response(ev: ResponseReceived, client: ClientInvite = client,
                                acks: dict[str, Request] = acks) -> None:  # fmt: skip
                    _provisional(ev.response, report, started)
                    found, ack = client.on_response(ev.response)
                    if ack is not None and found is not None:
                        driver.send_stateless(ack, _peer_for(found.next_hop(), conv.peer))
                        acks[found.remote_tag] = ack
                        established[found.remote_tag] = found

                invite_tx = driver.start(invite, conv.peer, on_response=on_response)
                try:
                    answer = await driver.final(invite_tx, opts.ring_timeout)
                except NoAnswer:
                    driver.cancel(invite_tx)
                    report.cancelled = True
                    invite_tx = None
                    result.fail("timeout", f"no answer within {opts.ring_timeout:.0f} s: "
                                "the call was cancelled (CANCEL sent)")  # fmt: skip
                    return
                invite_tx = None
                resp = answer.response
                result.status, result.reason = resp.status, resp.reason
                if resp.status in (401, 407) and auth is not None:
                    decision = auth.on_challenge(resp)
                    report.challenged.append(resp.status)
                    if decision.result is AuthResult.RETRY:
                        continue
                    result.fail(
                        "wrong-password"
                        if decision.result is AuthResult.REJECTED
                        else "auth-unsupported",
                        status_line(resp.status, resp.reason),
                    )
                    return  # fmt: skip
                break
            result.elapsed_ms = elapsed_ms(started)
            if resp.status >= 300:
                result.fail(verdict_for_status(resp.status), _refusal(resp, report.offered))
                return
            found, ack = client.on_response(resp)
            if found is None:
                result.fail("rejected", "200 OK without a To tag: no dialog")
                return
            dialog = found
            if ack is not None and dialog.remote_tag not in acks:
                driver.send_stateless(ack, _peer_for(dialog.next_hop(), conv.peer))
            for tag, other in established.items():  # a second fork answered too: not ours
                if tag != dialog.remote_tag and other.state != "terminated":
                    await _bye(conv, other, CallReport())
            report.answered_ms = round(1000 * (time.perf_counter() - started), 1)
            _session_timer(resp, report)
            try:
                agreed = negotiate(offer, parse(resp.body), "the far end")
            except NoCommonCodec as exc:
                result.fail("rejected", str(exc))
                return
            except SdpError as exc:
                result.fail("rejected", f"the answer's SDP is unusable: {exc}")
                return
            report.codec, report.answered = agreed.codec.name, agreed.answered
            report.srtp = crypto is not None and agreed.srtp_crypto is not None
            media = probe_media
            media.reconfigure(_with_agreed(media.cfg, agreed, crypto))
            media.set_remote((agreed.remote_address, agreed.remote_port),
                             (agreed.remote_address, agreed.remote_rtcp_port))  # fmt: skip
            media.start()
            info_dtmf = opts.dtmf if opts.settings.dtmf_mode == "sip-info" else ""
            if opts.dtmf and not info_dtmf and agreed.telephone_event_pt is not None:
                await asyncio.sleep(0.5)
                media.send_dtmf(opts.dtmf)
            elif opts.dtmf and not info_dtmf:
                result.warnings.append(
                    "DTMF not sent: no telephone-event in both offer and answer (RFC 2833 mode); "
                    "a PBX that wants SIP INFO needs the site's DTMF mode sip-info"
                )
            if opts.echo:
                await asyncio.sleep(0.3)
                if await media.measure_round_trip() is None:
                    result.warnings.append(
                        "--echo: our marker tone did not come back within 3 s (no echo service "
                        "there, or it does not return our audio)"
                    )
            call = InCall(conv, dialog, offer, opts, report, _info_type(resp),
                          _allows_update(resp), media=media)  # fmt: skip
            far_bye = await call.run(opts.duration, info_dtmf)
            if info_dtmf and _info_digits(report.dtmf_info) != info_dtmf:
                result.warnings.append(
                    f"SIP INFO DTMF: not every digit was accepted ({_info_statuses(report)})"
                )
            if report.refresh_verdict:
                result.warnings.append(report.refresh_verdict)
            elif any(not 200 <= st < 300 and st != 491 for st in report.refreshes):
                result.warnings.append(
                    f"a session refresh was refused ({', '.join(map(str, report.refreshes))}): "
                    "the PBX may cut the call when the session timer expires"
                )
            report.media = media.result()
            if far_bye:
                report.hung_up_by = "far end"
            result.succeed(_summary(report))
        finally:
            report.captured = probe_media.captured
            if invite_tx is not None:  # interrupted while ringing: CANCEL (§9.1)
                with contextlib.suppress(NetError, SipError, KeyError):
                    driver.cancel(invite_tx)
            if dialog is not None:
                established.setdefault(dialog.remote_tag, dialog)
            for open_dialog in established.values():
                if open_dialog.state != "terminated":
                    await _bye(conv, open_dialog, report)


async def _offer_address(conv: Conversation, opts: CallOptions, result: ProbeResult,
                         report: CallReport, media: MediaSession) -> tuple[str, int]:  # fmt: skip
    """The offer's c= address and m= port: the RTP socket's STUN mapping when the site
    enables STUN and the server answers the RTP port, else the local address and port.

    Two Binding requests go to the site's server at once: one from the SIP socket
    (as the core asks, reported as ``stun_mapped``) and one from the media socket
    itself (RFC 7983 demultiplexing on it), because behind a NAT the RTP port's
    public mapping is its own: another port, possibly another address of a pool.
    """
    local = (conv.local[0], media.local[1])
    if opts.media_address:
        return opts.media_address, local[1]
    if opts.stun_server is None:
        return local
    host, port = opts.stun_server
    server = host_port(host, port)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    except OSError as exc:
        result.warnings.append(f"STUN server {server}: {exc}; the offer carries {local[0]}")
        report.stun_rtp_problem = f"STUN server {server} not found: {exc}"
        return local
    addr = (str(infos[0][4][0]), port)
    sip, rtp = await asyncio.gather(
        _sip_binding(conv, addr, result, server), binding(media.stun, addr, local_ip=local[0])
    )
    if sip is not None:
        report.stun_mapped = host_port(sip.ip, sip.port)
    if rtp.mapped is None:
        report.stun_rtp_problem = (
            f"STUN from the RTP port {host_port(*local)} got no mapping from {server} "
            f"({rtp.error or 'no response'}): the offer carries the local address "
            f"{host_port(*local)}, as a core whose STUN query fails would; behind a NAT "
            "the far end's audio reaches us only if it sends to where our RTP comes from"
        )
        result.warnings.append(report.stun_rtp_problem)
        return local
    mapped = rtp.mapped
    report.stun_rtp_mapped = host_port(mapped.ip, mapped.port)
    if sip is not None and not same_ip(sip.ip, mapped.ip):
        report.stun_rtp_problem = (
            f"address-dependent NAT pool: the RTP port is mapped to {mapped.ip}, the SIP "
            f"port to {sip.ip}; the offer carries the RTP mapping, but a PBX or firewall that "
            "expects media from the signalling address may drop it"
        )
        result.warnings.append(report.stun_rtp_problem)
    return mapped.ip, mapped.port


async def _sip_binding(conv: Conversation, server: tuple[str, int], result: ProbeResult,
                       name: str) -> TransportAddress | None:  # fmt: skip
    """The SIP socket's mapping (its STUN share over UDP; over TCP/TLS a UDP socket of
    our own on the same address), or None with a warning."""
    local_ip = conv.local[0]
    own: UdpPort | None = None
    try:
        udp = conv.driver.udp
        if udp is not None:
            sock: DatagramPort = udp.stun
        else:
            own = sock = await UdpPort.open(local_ip, 0)
        answer = await binding(sock, server, local_ip=local_ip)
    except OSError as exc:
        result.warnings.append(f"STUN server {name} from the SIP socket: {exc}")
        return None
    finally:
        if own is not None:
            await own.aclose()
    if answer.mapped is None:
        result.warnings.append(
            f"STUN server {name} did not answer the SIP socket "
            f"({answer.error or 'no response'}): the core's own query would fail the same way"
        )
    return answer.mapped


def _with_agreed(cfg: MediaConfig, agreed: Negotiated, crypto: CryptoAttribute | None
                 ) -> MediaConfig:  # fmt: skip
    return replace(
        cfg,
        codec=agreed.codec,
        send_payload_type=agreed.remote_payload_type,
        telephone_event_pt=agreed.telephone_event_pt,
        rtcp_mux=agreed.rtcp_mux,
        srtp_local_key=crypto.key_salt if crypto and agreed.srtp_crypto else None,
        srtp_remote_key=agreed.srtp_crypto.key_salt if crypto and agreed.srtp_crypto else None,
    )


def _first_codec(settings: OfferSettings) -> Codec:
    return CODECS[settings.codecs[0].upper()]


def _auth(target: ProbeTarget) -> ClientAuth | None:
    if target.password is None:
        return None
    user = target.auth_user or ""
    return ClientAuth(DigestCredentials(user, target.password.reveal()))


def _invite(conv: Conversation, uri: str, body: bytes) -> Request:
    contact = f"<{conv.target.scheme}:qsipctl@{host_port(*conv.local)}>"
    req = conv.build("INVITE", uri, uri, [
        ("Contact", contact),
        ("Allow", conv.driver.endpoint.allow),
        ("Supported", "timer"),
        ("Content-Type", "application/sdp"),
    ])  # fmt: skip
    req.body = body
    return req


def _provisional(resp: Response, report: CallReport, started: float) -> None:
    if resp.status >= 200:
        return
    report.provisional.append(resp.status)
    if resp.status in (180, 183) and report.ringing_ms is None:
        report.ringing_ms = round(1000 * (time.perf_counter() - started), 1)
    if resp.status == 183 and resp.body:
        report.early_media = True


def _session_timer(resp: Response, report: CallReport) -> None:
    """RFC 4028: the interval and refresher the PBX chose (§7.2); we refresh when it is us."""
    value = resp.headers.get("Session-Expires") or resp.headers.get("x")  # x: compact form
    if not value:
        return
    head, _, params = value.partition(";")
    if not head.strip().isdigit():
        return
    report.session_expires = int(head.strip())
    for param in params.split(";"):
        name, _, val = param.strip().partition("=")
        if name.lower() == "refresher":
            report.refresher = val.strip().lower() or None
    if report.refresher is None:  # a 2xx must name it (§9); when not, we asked: we refresh
        report.refresher = "uac"


def _refusal(resp: Response, offered: tuple[str, ...]) -> str:
    if resp.status in (488, 606):
        return explain_status(resp.status, offered, resp.headers.get("Warning"))
    words = CALL_STATUS.get(resp.status)
    line = status_line(resp.status, resp.reason)
    return f"{words} — {line}" if words else line


def _info_type(resp: Response) -> str:
    """``application/dtmf`` only where the far end asks for it (Accept lists it, not relay)."""
    accept = {v.split(";")[0].strip().lower() for v in resp.headers.get_all("Accept")}
    if "application/dtmf" in accept and "application/dtmf-relay" not in accept:
        return "application/dtmf"
    return "application/dtmf-relay"


def _allows_update(resp: Response) -> bool:
    """The far end lists UPDATE in its Allow (RFC 3311): refresh with it."""
    return any(v.strip().upper() == "UPDATE" for v in resp.headers.get_all("Allow"))


def _info_statuses(report: CallReport) -> str:
    return ", ".join(f"{d}: {st}" for d, st in report.dtmf_info) or "none sent"


def info_body(digit: str, content_type: str, duration_ms: int) -> bytes:
    """The INFO body for one digit: ``Signal=``/``Duration=`` (dtmf-relay) or the digit alone."""
    if content_type == "application/dtmf":
        return digit.encode()
    return f"Signal={digit}\r\nDuration={duration_ms}\r\n".encode()


def info_digit(content_type: str | None, body: bytes) -> str:
    """The digit a received SIP INFO carries ("" when it is no DTMF or not a valid digit)."""
    kind = (content_type or "").split(";")[0].strip().lower()
    text = body[:1024].decode("ascii", "replace")
    if kind == "application/dtmf-relay":
        for line in text.splitlines():
            name, _, value = line.partition("=")
            if name.strip().lower() == "signal":
                text = value
                break
        else:
            return ""
    elif kind != "application/dtmf":
        return ""
    digit = text.strip().upper()
    return digit if len(digit) == 1 and digit in "0123456789*#ABCD" else ""


class InCall:
    """The confirmed call: answer the far end's requests, send ours (SIP INFO DTMF, session
    refreshes) in the same dialog until the duration ends or the far end hangs up."""

    def __init__(self, conv: Conversation, dialog: Dialog, offer: SessionDescription,
                 opts: CallOptions, report: CallReport, info_type: str, update: bool = False,
                 media: MediaSession | None = None, owner: bool = True) -> None:  # fmt: skip
        self.conv, self.dialog, self.opts, self.report = conv, dialog, opts, report
        self.sdp = offer
        self.info_type = info_type
        self.refresh_method = "UPDATE" if update else "INVITE"  # UPDATE: no ACK
        self.media = media
        self.owner = owner  # we generated the Call-ID (placed the call): RFC 3261 §14.1 waits

    @property
    def peer(self) -> Peer:
        return _peer_for(self.dialog.next_hop(), self.conv.peer)

    async def run(self, seconds: float, info_dtmf: str) -> bool:
        """True when the far end hung up."""
        tasks = []
        if info_dtmf:
            tasks.append(asyncio.create_task(self._send_info(info_dtmf)))
        if self.report.session_expires and self.report.refresher == "uac":
            tasks.append(asyncio.create_task(self._refresh_loop(self.report.session_expires)))
        try:
            return await self._answer(seconds)
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, NetError, SipError):
                    await task

    async def _answer(self, seconds: float) -> bool:
        """Answer requests in the dialog: BYE, INFO, and re-offers (see :meth:`_reoffer`);
        a re-INVITE or UPDATE crossing our pending refresh gets 491 (RFC 3261 §14.2)."""
        driver = self.conv.driver
        driver.endpoint.dialogs.add(self.dialog.key)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while (left := deadline - loop.time()) > 0:
            try:
                ev = await asyncio.wait_for(driver.incoming.get(), left)
            except TimeoutError:
                break
            if not isinstance(ev, RequestReceived):
                continue
            req = ev.request
            if ev.tx is None:  # the ACK of a re-INVITE we answered: that INVITE is over
                self.dialog.receive_request(req)
                continue
            if len(self.report.far_requests) < 64:  # a flood of requests stays bounded
                self.report.far_requests.append(req.method)
            if req.method == "INFO" and len(self.report.dtmf_info_received) < 64:
                self.report.dtmf_info_received += info_digit(
                    req.headers.get("Content-Type"), req.body
                )
            refuse = self.dialog.receive_request(req)
            if refuse == 491:
                self.report.glare_refused += 1
            status, reason, body = refuse or 200, REASONS.get(refuse or 200, "Error"), b""
            if refuse is None and req.method in ("INVITE", "UPDATE"):
                status, reason, body = self._reoffer(req)
            answer = driver.endpoint.response_for(ev.tx, status, reason)
            if status == 200 and req.method == "OPTIONS":  # a PBX's in-dialog keepalive
                answer.headers.add("Allow", driver.endpoint.allow)
            if body:
                answer.headers.add("Content-Type", "application/sdp")
                answer.body = body
            driver.respond(ev.tx, answer)
            self.dialog.answered(req, status)
            if req.method == "BYE" and refuse is None:
                return True
        return False

    def _reoffer(self, req: Request) -> tuple[int, str, bytes]:
        """A far-end re-INVITE/UPDATE: hold and resume (RFC 3264 §8.4, RFC 6337).

        The answer mirrors the offer's direction (sendonly -> recvonly,
        inactive -> inactive, sendrecv -> sendrecv; ``c=0.0.0.0`` as sendonly)
        in our SDP, its o= version one up when that changes it; the media
        session pauses or resumes our RTP to match before the answer leaves.
        An unreadable offer gets 488 and the session goes on as it was (§14.2);
        an INVITE without SDP gets our current SDP as the offer in the 200.
        """
        if not req.body:
            return 200, "OK", self.sdp.serialize() if req.method == "INVITE" else b""
        try:
            offer = parse(req.body)
        except SdpError:
            return 488, "Not Acceptable Here", b""
        audio = offer.audio()
        if audio is None or audio.port == 0:
            return 488, "Not Acceptable Here", b""
        direction = read_offer(offer)
        self.sdp = with_direction(self.sdp, direction.answer)
        if len(self.report.reoffers) < 64:
            self.report.reoffers.append(f"{direction.describe()} -> a={direction.answer}")
        if self.media is not None:
            label = "" if direction.answer == "sendrecv" else direction.describe()
            self.media.set_direction(direction.answer, label, direction.send_rtcp)
        return 200, "OK", self.sdp.serialize()

    async def _send_info(self, digits: str) -> None:
        """SIP INFO DTMF (one INFO per digit, each awaited: the far end plays them in order)."""
        await asyncio.sleep(0.5)
        for digit in digits:
            info = self.dialog.create_request(
                "INFO", [("Content-Type", self.info_type)],
                info_body(digit, self.info_type, self.opts.dtmf_info_ms),
            )  # fmt: skip
            try:
                answer = await self.conv.driver.request(info, self.peer, 5.0)
                status = answer.response.status
            except NetError:
                status = 408
            self.report.dtmf_info.append((digit, status))
            await asyncio.sleep(self.opts.dtmf_info_ms / 1000)

    async def _refresh_loop(self, interval: int) -> None:
        """RFC 4028 §10: refresh at half the interval (or ``refresh_after``) with an UPDATE
        when the far end allows it, else a re-INVITE; after a 491 again at the RFC 3261
        §14.1 wait, a bounded number of times (the schedule is :class:`SessionRefresher`)."""
        loop = asyncio.get_running_loop()
        timer = SessionRefresher(interval, self.owner, self.opts.refresh_after,
                                 self.opts.glare_retries)  # fmt: skip
        timer.start(loop.time())
        while (due := timer.next_timer()) is not None:
            await asyncio.sleep(max(0.0, due - loop.time()))
            busy = self.refresh_method == "INVITE" and self.dialog.invite_in_progress
            if not timer.poll(loop.time(), busy):
                continue
            status, interval = await self._refresh(interval)
            self.report.refreshes.append(status)
            self.report.refresh_method = self.refresh_method
            wait = timer.on_answer(status, loop.time(), interval)
            if status == 491:
                self.report.refresh_glare += 1
            if wait is not None:
                self.report.refresh_glare_waits.append(wait)
        self.report.refresh_verdict = timer.gave_up

    async def _refresh(self, interval: int) -> tuple[int, int]:
        """One refresh: our SDP with its version one up (RFC 3264 §8), kept only when the
        far end accepts it (a retry after 491 offers the same version again)."""
        sdp = replace(self.sdp, session_version=self.sdp.session_version + 1)
        contact = f"<{self.conv.target.scheme}:qsipctl@{host_port(*self.conv.local)}>"
        request = self.dialog.create_request(self.refresh_method, [
            ("Contact", contact),
            ("Allow", self.conv.driver.endpoint.allow),
            ("Supported", "timer"),
            ("Session-Expires", f"{interval};refresher=uac"),
            ("Content-Type", "application/sdp"),
        ], sdp.serialize())  # fmt: skip
        driver = self.conv.driver
        acks: list[Request] = []

        def ack_each_2xx(ev: ResponseReceived) -> None:
            """Every 2xx to our re-INVITE, repeats too (our ACK was lost), gets the ACK."""
            if request.method == "INVITE" and 200 <= ev.response.status < 300:
                if not acks:
                    self.dialog.update(ev.response)  # a target refresh (§12.2.1.2) first
                    acks.append(self.dialog.ack(request))
                driver.send_stateless(acks[0], self.peer)

        try:
            tx = driver.start(request, self.peer, on_response=ack_each_2xx)
            answer = await driver.final(tx, 10.0)
        except NetError:
            return 408, interval
        finally:
            self.dialog.request_done(request)
        resp = answer.response
        if 200 <= resp.status < 300:
            self.sdp = sdp
            self.dialog.update(resp)
            value = resp.headers.get("Session-Expires") or resp.headers.get("x") or ""
            head = value.partition(";")[0].strip()
            if head.isdigit() and int(head) > 0:
                interval = int(head)
                self.report.session_expires = interval
        return resp.status, interval


REASONS = {200: "OK", 488: "Not Acceptable Here", 491: "Request Pending",
           500: "Server Internal Error"}  # fmt: skip


async def _bye(conv: Conversation, dialog: Dialog, report: CallReport) -> None:
    bye = dialog.create_request("BYE")
    dialog.state = "terminated"
    report.hung_up_by = report.hung_up_by or "us"
    with contextlib.suppress(NetError):
        await conv.driver.request(bye, _peer_for(dialog.next_hop(), conv.peer), 5.0)


def _summary(report: CallReport) -> str:
    media = report.media
    heard = media.audio.describe() if media else "no media"
    mos = f", MOS {media.mos}" if media and media.mos is not None else ""
    held = ""
    if media and len(media.held) == 1:
        h = media.held[0]
        until = f"t={h.end_s:.1f} s" if h.end_s is not None else "the end"
        held = f"; held by the far end from t={h.start_s:.1f} s to {until}"
    elif media and media.held:
        held = f"; held by the far end {len(media.held)} times"
    return f"answered; {report.codec}; heard {heard}{mos}{held}"
