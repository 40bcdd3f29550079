"""From measurements to findings: plain words, the consequence for a Q-SYS core, one fix.

Pure functions over the data :mod:`qsipctl.nat.checks` gathered, so every
sentence is unit-testable and the words live in one place (docs/nat.md's
troubleshooting table mirrors them).
"""

from __future__ import annotations

from collections.abc import Sequence

from qsipctl.nat.checks import EchoResult, PortState
from qsipctl.nat.report import Finding
from qsipctl.stun.behavior import Behavior
from qsipctl.stun.client import BindingAnswer

MAPPING_WORDS = {
    "endpoint-independent": (
        "ok",
        "endpoint-independent mapping: the router keeps one public port per local port, "
        "whoever we talk to, so the address STUN reports is the one the PBX will see",
        "nothing to change; enable STUN on the core if the PBX does not fix NAT itself",
    ),
    "address-dependent": (
        "problem",
        "address-dependent mapping: the public port changes with the server's address, so "
        "the address STUN reports is not the one the PBX will see and STUN cannot fix the SDP",
        "make the PBX use symmetric RTP (latching, e.g. Asterisk rtp_symmetric/direct_media=no)"
        " or put an SBC/media relay in the path; or set the router to endpoint-independent "
        "mapping",
    ),
    "address-and-port-dependent": (
        "problem",
        "address-and-port-dependent mapping (symmetric NAT): the public port STUN reports is "
        "not the one the PBX will see, so STUN cannot fix the SDP",
        "the PBX must use symmetric RTP (latching) or an SBC/media relay must be in the path; "
        "better: configure the router for endpoint-independent mapping (no random ports)",
    ),
}

FILTERING_WORDS = {
    "endpoint-independent": (
        "ok",
        "endpoint-independent filtering: once the core has sent from a port, anyone may "
        "send to it; media from a PBX media server on another address gets in",
        "nothing to change",
    ),
    "address-dependent": (
        "warning",
        "address-dependent filtering: only hosts the core has sent to may send to it; media "
        "from a media server other than the one the core sends to is dropped",
        "make sure the PBX sends RTP from the address the core sends to (symmetric RTP), or "
        "open the RTP range inbound for the PBX's media addresses",
    ),
    "address-and-port-dependent": (
        "warning",
        "address-and-port-dependent filtering: only the exact address and port the core sent "
        "to may answer; RTP from any other port of the PBX is dropped",
        "the PBX must send RTP from the port it receives on (symmetric RTP), or forward/open "
        "the core's RTP range inbound from the PBX's media addresses",
    ),
}


def stun_missing() -> Finding:
    return Finding(
        "stun.server",
        "warning",
        "no STUN server configured: the core writes its private address into SIP Contact "
        "and SDP; behind NAT the PBX must repair both itself or inbound calls and audio fail",
        {"stun_server": "none"},
        "configure a STUN server reachable from the cores (Core Manager > Softphones > STUN) "
        "or confirm the PBX does NAT traversal (rport, symmetric RTP)",
    )


def stun_unreachable(b: Behavior, server: str) -> Finding:
    first = b.answers[0][1] if b.answers else None
    why = first.error if first and first.error else "no answer"
    return Finding(
        "stun.reachable",
        "problem",
        f"the STUN server {server} did not answer ({why}): the core cannot learn its public "
        "address",
        {"stun_server": server, "local": str(b.local) if b.local else "-"},
        "check the server address and that UDP to it (usually 3478) is allowed outbound",
    )


def stream(a: BindingAnswer, transport: str, server: str) -> Finding:
    """STUN over TCP/TLS: only the public address of that connection (RFC 5780 is UDP-only)."""
    name = transport.upper()
    ev = {"stun_server": f"{server} ({name})", "local": str(a.local)}
    if a.mapped is None:
        return Finding(
            "stun.reachable",
            "problem",
            f"the STUN server {server} did not answer over {name} ({a.error or 'no answer'})",
            ev,
            f"check the server's {name} port and that {name} to it is allowed outbound",
        )
    ev["public (STUN)"] = str(a.mapped)
    if a.mapped == a.local:
        text, sev = f"no NAT on this {name} path", "ok"
    elif a.mapped.port == a.local.port:
        text, sev = f"NAT, ports preserved ({name})", "info"
    else:
        text, sev = f"NAT with port translation (PAT) on {name}", "info"
    return Finding(
        "stun.nat",
        sev,  # type: ignore[arg-type]
        f"{text}; NAT behaviour tests (RFC 5780) need UDP and were not run",
        ev,
        "run 'qsipctl probe stun' over UDP (the core's STUN is UDP) for mapping and filtering",
    )


def public_address(b: Behavior, got_sip_port: bool, sip_port: int | None) -> Finding:
    assert b.local is not None and b.public is not None
    ev = {"local": str(b.local), "public (STUN)": str(b.public)}
    if sip_port and not got_sip_port:
        ev["note"] = f"port {sip_port} busy here, tested from {b.local.port}"
    if not b.nat:
        return Finding(
            "stun.nat",
            "ok",
            "no NAT: the server sees this machine's own address and port",
            ev,
            "leave STUN off on the core; nothing rewrites addresses on this path",
        )
    if b.port_preserved:
        return Finding(
            "stun.nat",
            "info",
            "NAT, ports preserved: the router changes the address but keeps the port",
            ev,
            "enable STUN on the core (or let the PBX fix Contact/SDP from received/rport)",
        )
    return Finding(
        "stun.nat",
        "warning",
        "NAT with port translation (PAT): the router changes address and port; the port in "
        "the core's SDP is not the one the PBX sees unless STUN is on",
        ev,
        "enable STUN on the core, or have the PBX use rport and symmetric RTP",
    )


def _answers(b: Behavior, prefix: str) -> dict[str, object]:
    return {
        name: str(a.mapped) if a.mapped else "no answer"
        for name, a in b.answers
        if name.startswith(prefix)
    }


def mapping(b: Behavior) -> Finding | None:
    ev = _answers(b, "mapping")
    if b.mapping == "no-nat":
        return None
    if not b.rfc5780:
        return Finding(
            "stun.mapping",
            "info",
            "the STUN server gives no OTHER-ADDRESS (RFC 5780), so NAT mapping and filtering "
            "could not be tested",
            ev,
            "point --stun at a server with two addresses (coturn with two -L) to test them",
        )
    if b.mapping == "unknown":
        return None
    sev, text, fix = MAPPING_WORDS[b.mapping]
    return Finding("stun.mapping", sev, text, ev, fix)  # type: ignore[arg-type]


def filtering(b: Behavior) -> Finding | None:
    if b.filtering == "unknown":
        return None
    ev = _answers(b, "filtering")
    sev, text, fix = FILTERING_WORDS[b.filtering]
    return Finding("stun.filtering", sev, text, ev, fix)  # type: ignore[arg-type]


def rtp_preservation(answers: Sequence[BindingAnswer]) -> Finding | None:
    got = [a for a in answers if a.mapped is not None]
    if not got:
        return None
    pairs = [f"{a.local.port}->{a.mapped.port}" for a in got if a.mapped]
    kept = all(a.mapped is not None and a.mapped.port == a.local.port for a in got)
    ev = {"ports (local->public)": pairs, "public ip": got[0].mapped.ip if got[0].mapped else "-"}
    if kept:
        return Finding(
            "stun.rtp-ports",
            "ok",
            "RTP ports keep their number through this path",
            ev,
            "nothing to change",
        )
    return Finding(
        "stun.rtp-ports",
        "warning",
        "RTP ports are translated: the port the core puts in SDP differs from the one the PBX "
        "sees unless STUN runs from the RTP port too",
        ev,
        "enable STUN on the core or make the PBX use symmetric RTP (latching)",
    )


def registrar_view(
    target: str,
    local: str | None,
    seen_as: str | None,
    public_ip: str | None,
    public_source: str = "STUN",
) -> Finding:
    ev = {"registrar": target, "sent from": local or "-", "Via received/rport": seen_as or "-"}
    if public_ip:
        ev[f"public ({public_source})"] = public_ip
    seen_ip = (seen_as or "").rsplit(":", 1)[0].strip("[]")
    local_ip = (local or "").rsplit(":", 1)[0].strip("[]")
    if public_ip and public_ip != local_ip and seen_ip == local_ip:
        return Finding(
            "alg.registrar",
            "problem",
            "a SIP ALG on the router rewrote the registrar's answer: Via received names our "
            f"private address although {public_source} shows a public one",
            ev,
            "turn off SIP ALG / SIP helper / SIP fixup on the router or firewall",
        )
    if public_ip and seen_ip and seen_ip != public_ip and seen_ip != local_ip:
        return Finding(
            "alg.registrar",
            "warning",
            f"the registrar saw another address than {public_source} did: more than one NAT or "
            "exit on "
            "the path (load balancer, different route to the PBX)",
            ev,
            "use a STUN server next to the PBX, or let the PBX fix NAT from received/rport",
        )
    return Finding(
        "alg.registrar",
        "ok" if seen_as else "info",
        "the registrar saw us as Via received/rport says" if seen_as else "no registrar answer",
        ev,
        "nothing to change" if seen_as else "see 'qsipctl diagnose --register' for why",
    )


def echo(res: EchoResult) -> Finding:
    ev: dict[str, object] = {"sent from": f"{res.local[0]}:{res.local[1]}"}
    if res.seen_from:
        ev["seen as"] = f"{res.seen_from[0]}:{res.seen_from[1]}"
    if res.received is None:
        return Finding(
            "alg.echo",
            "warning",
            "the responder's SIP echo did not come back: SIP to port 5060 may be blocked or "
            "swallowed by a SIP ALG",
            ev,
            "check that UDP 5060 outbound is allowed, and turn off SIP ALG on the router",
        )
    if res.received == res.sent:
        return Finding(
            "alg.echo",
            "ok",
            "SIP arrived byte for byte as sent: no SIP ALG rewrites on this path",
            ev,
            "nothing to change",
        )
    changed = _changed_parts(res.sent, res.received)
    ev["rewritten"] = changed["lines"]
    what = ", ".join(changed["parts"]) or "the message"
    return Finding(
        "alg.echo",
        "problem",
        f"a SIP ALG on the router rewrote the {what}: turn it off",
        ev,
        "disable SIP ALG / SIP helper / SIP fixup on the router or firewall (and let STUN "
        "or the PBX handle NAT)",
    )


def _changed_parts(sent: bytes, got: bytes) -> dict[str, list[str]]:
    a = sent.decode("latin-1").split("\r\n")
    b = got.decode("latin-1").split("\r\n")
    parts: list[str] = []
    lines: list[str] = []
    for x, y in zip(a, b, strict=False):
        if x == y:
            continue
        lines.append(f"{x!r} -> {y!r}")
        name = x.split(":", 1)[0].lower() if ":" in x and x[1:2] != "=" else x[:2]
        label = {"via": "Via", "contact": "Contact", "from": "From", "call-id": "Call-ID",
                 "content-length": "Content-Length"}.get(name)  # fmt: skip
        if label is None and x[1:2] == "=":
            label = "SDP address" if x[:2] in ("c=", "o=") else "SDP"
        if label is None:
            label = "request line" if x.startswith("INVITE") else "message"
        if label not in parts:
            parts.append(label)
    if len(a) != len(b):
        lines.append(f"{len(a)} lines sent, {len(b)} received")
    return {"parts": parts, "lines": lines}


def port_ranges(states: Sequence[PortState], lo: int, hi: int, sampled: int) -> list[Finding]:
    tested = [s for s in states if s.outbound is not None]
    if not tested:
        return []
    out = [
        _direction(
            "ports.outbound",
            "outbound",
            {s.port: bool(s.outbound) for s in tested},
            lo,
            hi,
            sampled,
            "the firewall blocks part of the RTP range outbound: calls on those ports have "
            "no audio towards the PBX",
            "allow UDP from the cores' RTP range outbound",
        )
    ]
    reachable_out = [s for s in tested if s.outbound]
    if reachable_out:
        out.append(
            _direction(
                "ports.inbound",
                "inbound (from a port we had not sent to)",
                {s.port: bool(s.inbound) for s in reachable_out},
                lo,
                hi,
                sampled,
                "inbound RTP is blocked on part of the range: calls whose ports fall there "
                "have one-way audio",
                "open the whole RTP range inbound from the PBX's media addresses (or fix the "
                "firewall rule's range to match the core's)",
            )
        )
        out.append(
            _direction(
                "ports.replies",
                "replies (from the address we sent to)",
                {s.port: bool(s.inbound_reply) for s in reachable_out},
                lo,
                hi,
                sampled,
                "even replies to the core's own RTP are blocked on part of the range: one-way "
                "audio on those ports",
                "allow return traffic (stateful) for the core's RTP range",
            )
        )
    return out


def _direction(
    check: str,
    label: str,
    result: dict[int, bool],
    lo: int,
    hi: int,
    sampled: int,
    partial_text: str,
    fix: str,
) -> Finding:
    open_ = [p for p, ok in result.items() if ok]
    shut = [p for p, ok in result.items() if not ok]
    text = describe_ranges(result)
    ev = {
        "range": f"{lo}-{hi}",
        "ports tested": f"{len(result)} ({sampled} evenly spaced, then bisected at each change)",
        "open (tested)": len(open_),
        "blocked (tested)": len(shut),
    }
    if not shut:
        return Finding(check, "ok", f"{label}: {text}", ev, "nothing to change")
    if not open_:
        sev = "warning" if check != "ports.outbound" else "problem"
        fix_all = (
            fix
            if check == "ports.outbound"
            else "nothing if the PBX sends RTP from the port it receives on (symmetric RTP); "
            "otherwise open/forward the RTP range inbound from the PBX's media addresses"
        )
        return Finding(check, sev, f"{label}: {text}", ev, fix_all)  # type: ignore[arg-type]
    return Finding(check, "problem", f"{label}: {text}; {partial_text}", ev, fix)


def describe_ranges(result: dict[int, bool]) -> str:
    """``16384-16999 open, 17000-32768 blocked`` (runs of tested ports with one state)."""
    runs: list[tuple[int, int, bool]] = []
    for p in sorted(result):
        ok = result[p]
        if runs and runs[-1][2] == ok:
            runs[-1] = (runs[-1][0], p, ok)
        else:
            runs.append((p, p, ok))
    words = []
    for a, b, ok in runs:
        span = f"{a}-{b}" if a != b else str(a)
        words.append(f"{span} {'open' if ok else 'blocked'}")
    return ", ".join(words)


def tcp(
    responder: str, problem: str | None, sip_port: int | None = None, inbound: bool | None = None
) -> Finding:
    """TCP out to the responder; TCP in to our SIP port (a PBX opening a connection)."""
    ev: dict[str, object] = {"responder": responder, "outbound": problem or "ok"}
    if sip_port and inbound is not None:
        ev[f"inbound to {sip_port}/tcp"] = "open" if inbound else "blocked"
    if problem is not None:
        return Finding(
            "ports.tcp",
            "warning",
            f"TCP to the responder failed ({problem})",
            ev,
            "allow TCP outbound to the PBX's SIP port if the softphones use TCP or TLS",
        )
    if inbound is False:
        return Finding(
            "ports.tcp",
            "info",
            f"TCP out works; a connection opened from outside to SIP port {sip_port}/tcp is "
            "blocked: over TCP/TLS the PBX must reuse the core's own connection (RFC 5626 "
            "outbound, or connection reuse), as most do",
            ev,
            "nothing, if the PBX reuses the registration's connection; otherwise forward "
            f"{sip_port}/tcp to the core",
        )
    return Finding(
        "ports.tcp",
        "ok",
        "TCP to the responder works"
        + (f" and a connection from outside reaches {sip_port}/tcp" if inbound else ""),
        ev,
        "nothing to change",
    )


def binding_timeout(
    results: dict[float, bool], registration: int | None, keepalive: int | None
) -> Finding:
    kept = sorted(p for p, ok in results.items() if ok)
    lost = sorted(p for p, ok in results.items() if not ok)
    ev: dict[str, object] = {
        "pauses kept (s)": [f"{p:g}" for p in kept] or "none",
        "pauses lost (s)": [f"{p:g}" for p in lost] or "none",
    }
    if registration:
        ev["registration timeout (s)"] = registration
    if keepalive:
        ev["keep-alive interval (s)"] = keepalive
    if not lost:
        longest = kept[-1] if kept else 0
        return Finding(
            "nat.binding-timeout",
            "ok",
            f"the router kept an idle UDP mapping for at least {longest:g} s (longest tested)",
            ev,
            "nothing to change",
        )
    upper = lost[0]
    lower = max((p for p in kept if p < upper), default=0.0)
    span = f"between {lower:g} and {upper:g} s" if lower else f"in under {upper:g} s"
    refresh = min((x for x in (registration, keepalive) if x), default=None)
    if refresh is not None and refresh >= lower:
        return Finding(
            "nat.binding-timeout",
            "problem",
            f"the router forgets idle UDP mappings {span}; the core refreshes only every "
            f"{refresh} s: inbound calls will fail once the mapping is gone",
            ev,
            f"set a registration timeout (or keep-alive) shorter than {max(int(lower) // 2, 1)} "
            "s, or raise the router's UDP timeout",
        )
    return Finding(
        "nat.binding-timeout",
        "info" if refresh is not None else "warning",
        f"the router forgets idle UDP mappings {span}",
        ev,
        f"keep the core's registration/keep-alive interval under {max(int(lower) // 2, 1)} s",
    )
