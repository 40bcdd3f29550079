"""NAT and firewall diagnosis commands: ``probe stun``, ``probe nat``, ``diagnose --nat``.

Only click loads at import; asyncio, the STUN stack and the site loader load
when a command runs.  ``probe_cmd`` and ``diag_cmds`` (owned elsewhere) only
register these commands and dispatch here.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from qsipctl.cli.common import format_option
from qsipctl.errors import EXIT_FAILED, UsageError

if TYPE_CHECKING:
    from qsipctl.nat.diagnose import NatPlan
    from qsipctl.nat.report import NatReport

F = TypeVar("F", bound=Callable[..., Any])


def parse_addr(text: str, default_port: int, what: str) -> tuple[str, int]:
    """``HOST[:PORT]`` as (ip, port); a name is resolved here, once (bad input: exit 2)."""
    import socket

    from qsipctl.addr import AddressError, is_ip, split_host_port

    try:
        host, port = split_host_port(text)
    except AddressError as exc:
        raise UsageError(f"{what}: {exc}") from None
    if not host:
        raise UsageError(f"{what}: {text!r} has no host")
    if not is_ip(host):
        try:
            host = str(socket.getaddrinfo(host, None, type=socket.SOCK_DGRAM)[0][4][0])
        except OSError as exc:
            raise UsageError(f"{what}: cannot resolve {host!r}: {exc}") from None
    return host, port or default_port


def read_secret(var: str | None) -> bytes | None:
    if var is None:
        return None
    value = os.environ.get(var)
    if not value:
        raise UsageError(f"--secret-env: environment variable {var} is not set or empty")
    if len(value.encode()) < 16:
        raise UsageError(f"--secret-env: the secret in {var} must be at least 16 bytes")
    return value.encode()


def parse_range(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    lo, sep, hi = text.partition("-")
    if not sep or not lo.isdigit() or not hi.isdigit() or not 1 <= int(lo) <= int(hi) <= 65535:
        raise UsageError(f"--rtp-range: {text!r} is not LOW-HIGH (ports 1-65535)")
    return int(lo), int(hi)


def responder_options(func: F) -> F:
    func = click.option(
        "--hold-max",
        type=click.FloatRange(0, 3600),
        default=120.0,
        show_default=True,
        metavar="SECONDS",
        help="Longest idle pause for the NAT UDP binding-timeout test (0: skip it).",
    )(func)
    func = click.option(
        "--rtp-range",
        metavar="LOW-HIGH",
        help="RTP ports to test (default: QSC's published Q-SYS range 10000-30000).",
    )(func)
    func = click.option(
        "--rtp-ports", is_flag=True, help="Test the RTP range and SIP port in and out."
    )(func)
    func = click.option(
        "--responder-sip-port",
        type=click.IntRange(1, 65535),
        default=5060,
        show_default=True,
        help="The responder's SIP echo port (ALG detection).",
    )(func)
    func = click.option(
        "--secret-env",
        metavar="VAR",
        help="Environment variable holding the responder's shared secret.",
    )(func)
    return click.option(
        "--responder", metavar="HOST:PORT", help="A 'qsipctl responder' beyond the firewall."
    )(func)


def _common(func: F) -> F:
    func = click.option(
        "--local-address", metavar="IP", default="0.0.0.0", help="Send from this local address."
    )(func)
    return click.option(
        "--sip-port",
        type=click.IntRange(0, 65535),
        default=5060,
        show_default=True,
        help="Local port to run STUN/SIP tests from (the core's SIP port; 0: any).",
    )(func)


def stun_command() -> click.Command:
    @click.command("stun")
    @click.argument("server", metavar="HOST[:PORT]")
    @click.option(
        "--transport",
        type=click.Choice(["udp", "tcp", "tls"]),
        default="udp",
        show_default=True,
        help="STUN over UDP (full RFC 5780 tests), or TCP/TLS (public address only).",
    )
    @click.option(
        "--ca-file",
        type=click.Path(exists=True, dir_okay=False, path_type=str),
        help="CA bundle for --transport tls (default: system store).",
    )
    @_common
    @format_option
    def probe_stun(
        server: str,
        transport: str,
        ca_file: str | None,
        sip_port: int,
        local_address: str,
        fmt: str,
    ) -> None:
        """Public address and NAT behaviour (RFC 5780) as STUN server HOST sees this machine."""
        from qsipctl.nat.diagnose import NatPlan

        default_port = 5349 if transport == "tls" else 3478
        plan = NatPlan(
            stun=parse_addr(server, default_port, "SERVER"),
            bind_ip=local_address,
            sip_port=sip_port or None,
            hold_max=0,
            stun_transport=transport,
            stun_ca_file=ca_file,
        )
        execute(plan, fmt)

    return probe_stun


def nat_command() -> click.Command:
    @click.command("nat")
    @click.option("--stun", "stun", metavar="HOST[:PORT]", help="STUN server (port 3478).")
    @responder_options
    @_common
    @format_option
    def probe_nat(**opts: Any) -> None:
        """STUN, SIP ALG, port reachability and NAT timeout tests without an inventory."""
        from qsipctl.nat.diagnose import NatPlan

        if not opts["stun"] and not opts["responder"]:
            raise UsageError("give --stun HOST[:PORT] and/or --responder HOST:PORT")
        plan = NatPlan(
            stun=parse_addr(opts["stun"], 3478, "--stun") if opts["stun"] else None,
            stun_expected=False,
            bind_ip=opts["local_address"],
            sip_port=opts["sip_port"] or None,
            **_responder_plan(opts, None),
        )
        execute(plan, opts["fmt"])

    return probe_nat


def _responder_plan(opts: dict[str, Any], site_range: tuple[int, int] | None) -> dict[str, Any]:
    responder = opts.get("responder")
    secret = read_secret(opts.get("secret_env"))
    if responder and secret is None:
        raise UsageError("--responder needs --secret-env VAR (the responder's shared secret)")
    if opts.get("rtp_ports") and not responder:
        raise UsageError("--rtp-ports needs --responder HOST:PORT")
    plan: dict[str, Any] = {
        "responder": parse_addr(responder, 7077, "--responder") if responder else None,
        "secret": secret,
        "responder_sip_port": opts.get("responder_sip_port", 5060),
        "rtp_ports": bool(opts.get("rtp_ports")),
        "hold_max": opts.get("hold_max", 120.0),
    }
    rng = parse_range(opts.get("rtp_range")) or site_range
    if rng is not None:
        plan["rtp_range"] = rng
    return plan


def execute(plan: NatPlan, fmt: str, junit: str | None = None) -> None:
    """Run the plan, render, exit 1 when a finding is a problem."""
    import asyncio

    from qsipctl.nat.diagnose import run

    report = asyncio.run(run(plan))
    render(report, fmt)
    if junit:
        from qsipctl.report.diagnose_junit import nat_cases, write_diagnose_junit

        write_diagnose_junit(junit, nat_cases(report))
    if not report.ok:
        raise SystemExit(EXIT_FAILED)


def render(report: NatReport, fmt: str) -> None:
    if fmt == "json":
        from qsipctl.report.output import echo_json

        echo_json(report.as_json())
    else:
        from qsipctl.nat.report import render_table

        click.echo(render_table(report))


def diagnose_nat(
    site_path: str,
    limit: str | None,
    profile_dirs: tuple[str, ...],
    opts: dict[str, Any],
    fmt: str,
    junit: str | None = None,
) -> None:
    """``diagnose SITE.yml --nat``: one diagnosis per distinct STUN server/registrar set."""
    from qsipctl.cli.common import load_selected
    from qsipctl.nat.diagnose import NatPlan
    from qsipctl.probes.target import softphone_target

    _, cores = load_selected(site_path, limit, profile_dirs)
    if not cores:
        raise UsageError("no cores selected (check --limit)")
    core = cores[0]
    phones = [(c, p) for c in cores for p in c.softphones]
    stun = core.settings.stun_server
    registrars = []
    seen: set[tuple[str, object]] = set()
    for c, p in phones:
        key = (p.proxy.host, p.proxy.port)
        if p.register and key not in seen and p.transport == "udp":
            seen.add(key)
            # without the password: the 401 challenge carries Via received/rport too,
            # and nothing is bound, so the core's own registration is never displaced
            t = softphone_target(c, p, timeout=opts.get("timeout", 5.0))
            registrars.append(t.replace(password=None))
    # the core's RTP range: QSC's published one (nat.diagnose.QSYS_RTP_RANGE) unless
    # --rtp-range; the profile's expectations.rtp_port_range is the PBX's, not the core's
    refresh = min((p.registration_timeout for _, p in phones), default=None)
    keepalive = phones[0][1].expectations.keepalive_interval if phones else None
    plan = NatPlan(
        stun=parse_addr(str(stun), 3478, "stun.server") if stun else None,
        bind_ip=opts.get("local_address") or "0.0.0.0",
        sip_port=core.settings.sip_port,
        registrars=tuple(registrars),
        registration_timeout=refresh,
        keepalive_interval=keepalive,
        **_responder_plan(opts, None),
    )
    execute(plan, fmt, junit)
