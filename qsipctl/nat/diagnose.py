"""One NAT/firewall diagnosis: run the checks a plan asks for, turn results into findings."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from qsipctl.nat import checks, verdicts
from qsipctl.nat.report import Finding, NatReport
from qsipctl.stun.client import DEFAULT_SCHEDULE
from qsipctl.stun.transport import Addr, source_ip_towards

# QSC's published port list ("Network Interfaces, Services & Protocols",
# https://help.qsys.com/Content/Networking/Interfaces_Services.htm), row
# "VoIP (SIP and RTP)": UDP/TCP 5060, TCP 5061 (TLS), UDP 10,000-30,000
# (dynamic range).  qsipctl.site.model.RTP_PORT_MIN/MAX say 16384-32768: see
# docs/nat.md; --rtp-range tests any other range.
QSYS_RTP_RANGE = (10000, 30000)


@dataclass(frozen=True, slots=True)
class NatPlan:
    """What to test; every server is given explicitly (never a public default)."""

    stun: Addr | None = None
    bind_ip: str = "0.0.0.0"
    sip_port: int | None = 5060
    rtp_range: tuple[int, int] = QSYS_RTP_RANGE
    responder: Addr | None = None
    secret: bytes | None = field(default=None, repr=False)
    responder_sip_port: int = 5060
    rtp_ports: bool = False
    max_samples: int = 64
    hold_max: float = 120.0  # 0: no binding-timeout measurement
    registration_timeout: int | None = None
    keepalive_interval: int | None = None
    registrars: tuple[Any, ...] = ()  # ProbeTargets, REGISTERed to compare Via received
    schedule: tuple[float, ...] = DEFAULT_SCHEDULE
    stun_expected: bool = True  # False: say what having no STUN server means
    stun_transport: str = "udp"  # "tcp"/"tls": public address of a stream, no RFC 5780
    stun_ca_file: str | None = None


def _first_target(plan: NatPlan) -> Addr | None:
    if plan.stun:
        return plan.stun
    if plan.responder:
        return plan.responder
    for t in plan.registrars:
        host = getattr(t, "host", None)
        if host:
            return (str(host), int(getattr(t, "port", None) or 5060))
    return None


async def run(plan: NatPlan) -> NatReport:
    """Every check the plan asks for; findings in the order an engineer reads them."""
    target = _first_target(plan)
    if target is not None and ":" in target[0] and plan.bind_ip == "0.0.0.0":
        plan = replace(plan, bind_ip="::")  # an IPv6 server: test from the IPv6 side
    local_ip = plan.bind_ip
    if plan.bind_ip in ("0.0.0.0", "::") and target is not None:
        local_ip = source_ip_towards(*target)
    report = NatReport(local_ip)
    public_ip = await _stun(plan, local_ip, report)
    source = "STUN"
    if public_ip is None and plan.responder and plan.secret:
        public_ip = await _seen_by_responder(plan)  # without STUN, the responder tells
        source = "the responder"
    await _registrars(plan, public_ip, source, report)
    if plan.responder and plan.secret:
        await _responder(plan, local_ip, report)
    return report


async def _stun(plan: NatPlan, local_ip: str, report: NatReport) -> str | None:
    if plan.stun is None:
        if plan.stun_expected:
            report.add(verdicts.stun_missing())
        return None
    server = f"{plan.stun[0]}:{plan.stun[1]}"
    if plan.stun_transport != "udp":
        return await _stun_stream(plan, local_ip, report, server)
    behavior, got = await checks.discover(
        plan.stun, plan.bind_ip, local_ip, plan.sip_port, plan.schedule
    )
    if not behavior.reachable:
        report.add(verdicts.stun_unreachable(behavior, server))
        return None
    report.add(verdicts.public_address(behavior, got, plan.sip_port))
    for f in (verdicts.mapping(behavior), verdicts.filtering(behavior)):
        if f is not None:
            report.add(f)
    lo, hi = plan.rtp_range
    rtp = await checks.public_from_ports(
        plan.stun, plan.bind_ip, local_ip, _rtp_stun_ports(lo, hi), plan.schedule
    )
    f = verdicts.rtp_preservation(rtp)
    if f is not None:
        report.add(f)
    return behavior.public.ip if behavior.public else None


async def _stun_stream(plan: NatPlan, local_ip: str, report: NatReport, server: str) -> str | None:
    import ssl

    from qsipctl.stun.client import binding_stream

    assert plan.stun is not None
    ctx = None
    if plan.stun_transport == "tls":
        ctx = ssl.create_default_context(cafile=plan.stun_ca_file)
    answer = await binding_stream(plan.stun, ssl_context=ctx, local_ip=local_ip)
    report.add(verdicts.stream(answer, plan.stun_transport, server))
    return answer.mapped.ip if answer.mapped else None


async def _seen_by_responder(plan: NatPlan) -> str | None:
    """Our public IP as the responder saw it (None when it does not answer)."""
    from qsipctl.responder.client import ResponderError, request

    assert plan.responder is not None and plan.secret is not None
    async with checks.open_port(plan.bind_ip, 0) as udp:
        try:
            seen = (await request(udp, plan.responder, plan.secret, "hello")).get("seen")
        except ResponderError:
            return None
    return str(seen[0]) if isinstance(seen, list) and seen else None


def _rtp_stun_ports(lo: int, hi: int) -> list[int]:
    mid = (lo + hi) // 2
    return sorted({lo, mid - mid % 2, hi - hi % 2})


async def _registrars(plan: NatPlan, public_ip: str | None, source: str, report: NatReport) -> None:
    if not plan.registrars:
        return
    from qsipctl.probes.register import probe_register

    for target in plan.registrars:
        outcome = await probe_register(target)
        r = outcome.result
        report.add(verdicts.registrar_view(r.target, r.local, r.seen_as, public_ip, source))


async def _responder(plan: NatPlan, local_ip: str, report: NatReport) -> None:
    from qsipctl.responder.client import ResponderError

    assert plan.responder is not None and plan.secret is not None
    lo = plan.rtp_range[0]
    try:
        # ports before the SIP echo: a SIP ALG opens pinholes for the SDP's media
        # port, which would make that port look open inbound
        port_findings = await _ports(plan) if plan.rtp_ports else []
        res = await checks.sip_echo(
            plan.responder,
            plan.secret,
            plan.responder_sip_port,
            plan.bind_ip,
            local_ip,
            plan.sip_port,
            lo,
        )
        report.add(verdicts.echo(res))
        for f in port_findings:
            report.add(f)
        if plan.rtp_ports:
            problem = await checks.tcp_hello(plan.responder, plan.secret)
            inbound = None
            if plan.sip_port:
                inbound = await checks.tcp_inbound(
                    plan.responder, plan.secret, plan.bind_ip, plan.sip_port
                )
            report.add(
                verdicts.tcp(
                    f"{plan.responder[0]}:{plan.responder[1]}", problem, plan.sip_port, inbound
                )
            )
        if plan.hold_max > 0:
            pauses = checks.hold_pauses(plan.hold_max)
            got = await checks.binding_timeout(plan.responder, plan.secret, plan.bind_ip, pauses)
            report.add(
                verdicts.binding_timeout(got, plan.registration_timeout, plan.keepalive_interval)
            )
    except ResponderError as exc:
        report.add(
            Finding(
                "responder",
                "problem",
                str(exc),
                {"responder": f"{plan.responder[0]}:{plan.responder[1]}"},
                "check the responder runs there, its port is reachable and the secret matches",
            )
        )


async def _ports(plan: NatPlan) -> Sequence[Finding]:
    assert plan.responder is not None and plan.secret is not None
    lo, hi = plan.rtp_range
    samples = checks.sample_ports(lo, hi, plan.max_samples)
    ports = sorted(set(samples) | ({plan.sip_port} if plan.sip_port else set()))
    states = {
        s.port: s for s in await checks.test_ports(plan.responder, plan.secret, plan.bind_ip, ports)
    }
    sip_state = states.pop(plan.sip_port, None) if plan.sip_port else None
    await checks.refine(plan.responder, plan.secret, plan.bind_ip, states)
    findings = list(verdicts.port_ranges(list(states.values()), lo, hi, len(samples)))
    if sip_state is not None and sip_state.outbound is not None:
        findings.append(_sip_port(sip_state))
    return findings


def _sip_port(s: checks.PortState) -> Finding:
    ev = {
        "port": s.port,
        "outbound": s.outbound,
        "public port": s.public_port or "-",
        "inbound (unsolicited)": s.inbound,
        "replies": s.inbound_reply,
    }
    if s.outbound and s.inbound_reply:
        sev, text = "ok", f"SIP port {s.port}/udp: out and replies in work"
        fix = (
            "nothing to change"
            if s.inbound
            else (
                "inbound calls rely on the registration's mapping: keep registering/keep-alives "
                "more often than the router's UDP timeout"
            )
        )
    else:
        sev, text = "problem", f"SIP port {s.port}/udp blocked ({'in' if s.outbound else 'out'})"
        fix = f"allow UDP {s.port} out and its replies in"
    return Finding("ports.sip", sev, text, ev, fix)  # type: ignore[arg-type]
