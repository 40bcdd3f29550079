"""probe: one SIP probe for one account or server, without an inventory.

Its own module, apart from ``diagnose``, which shares the option helpers and
:func:`_run_and_report`.  The SIP stack loads when the probe runs; rendering
lives in :mod:`qsipctl.report.probes`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from qsipctl.cli.common import format_option
from qsipctl.errors import EXIT_FAILED, UsageError

if TYPE_CHECKING:
    from qsipctl.probes.register_flow import RegisterPolicy
    from qsipctl.probes.runner import ProbesInterrupted
    from qsipctl.probes.target import ProbeTarget

F = TypeVar("F", bound=Callable[..., Any])


def _evidence_options(func: F) -> F:
    func = click.option("--ladder", is_flag=True, help="Print a ladder diagram of each exchange.")(
        func
    )
    return click.option(
        "--pcap",
        "pcap",
        metavar="FILE",
        type=click.Path(dir_okay=False, writable=True, path_type=str),
        help="Write every SIP message sent and received to FILE (pcapng).",
    )(func)


def _check_dns_server(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """A bad name server is bad input (exit 2) before anything is sent."""
    if value is not None:
        from qsipctl.net.resolve import split_nameserver

        try:
            split_nameserver(value)
        except ValueError as exc:
            raise UsageError(f"--dns-server: {exc}") from None
    return value


def _check_local_address(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> str | None:
    """An IP literal only: a name would be resolved, and a typo crashed getaddrinfo."""
    if value is not None:
        from qsipctl.addr import is_ip

        if not is_ip(value.strip("[]")):
            raise UsageError(f"--local-address: {value!r} is not an IP address")
        return value.strip("[]")
    return value


def _network_options(func: F) -> F:
    func = click.option(
        "--dns-server",
        metavar="IP[:PORT]",
        callback=_check_dns_server,
        help="Name server for RFC 3263 lookups (default: the system's).",
    )(func)
    func = click.option(
        "--local-address",
        metavar="IP",
        callback=_check_local_address,
        help="Send from this local address.",
    )(func)
    return click.option(
        "--timeout",
        type=click.FloatRange(0.1, 300),
        default=5.0,
        show_default=True,
        help="Seconds to wait for each answer.",
    )(func)


def _binding_options(func: F) -> F:
    """--bind / --force / --keep-registered: what the register probe may change."""
    func = click.option(
        "--keep-registered",
        is_flag=True,
        help="Add our binding and leave it in place (implies --bind).",
    )(func)
    func = click.option(
        "--force",
        is_flag=True,
        help="With --bind: bind even when another device (the core) is bound to the account.",
    )(func)
    return click.option(
        "--bind",
        is_flag=True,
        help="Also add a temporary binding and remove it (default: change nothing, "
        "only list the bindings); refused when another device is bound, unless --force.",
    )(func)


def register_policy(bind: bool, force: bool, keep_registered: bool) -> RegisterPolicy:
    """The policy from the flags; --force alone is a usage error, not silently ignored."""
    from qsipctl.probes.register_flow import RegisterPolicy

    if force and not (bind or keep_registered):
        raise UsageError("--force only applies with --bind or --keep-registered")
    return RegisterPolicy.from_flags(bind=bind, keep=keep_registered, force=force)


def _password_option(func: F) -> F:
    func = click.option(
        "--password-file",
        metavar="FILE",
        type=click.Path(exists=True, dir_okay=False, path_type=str),
        help="Read the password from FILE.",
    )(func)
    return click.option(
        "--password-env",
        metavar="VAR",
        help="Take the password from environment variable VAR (never from the command line).",
    )(func)


def _tls_options(func: F) -> F:
    func = click.option(
        "--tls-name", metavar="NAME", help="Expect this name in the server certificate."
    )(func)
    func = click.option(
        "--no-verify", is_flag=True, help="Do not verify the TLS certificate (warned about)."
    )(func)
    func = click.option(
        "--ca-file",
        metavar="FILE",
        type=click.Path(exists=True, dir_okay=False, path_type=str),
        help="CA bundle to verify the TLS server with (default: system store).",
    )(func)
    return click.option(
        "--transport",
        type=click.Choice(["udp", "tcp", "tls"]),
        default=None,
        help="Transport (default: tls for sips:, else RFC 3263 / udp).",
    )(func)


class _LazyProbes(click.Group):
    """Builds a probe's command, with its dozen options, only when it is asked for.

    ``probe register`` is start-up-bound: building ``options`` too cost it
    time for nothing.  ``--help`` builds both, to list them.
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_PROBES)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        build = _PROBES.get(cmd_name)
        if build is None:
            return None
        if cmd_name not in self.commands:
            self.add_command(build(), cmd_name)
        return self.commands[cmd_name]


@click.group(cls=_LazyProbes)
def probe() -> None:
    """Run one SIP probe without an inventory (TARGET like sip:1001@10.0.0.5:5060)."""


def _register_command() -> click.Command:
    @click.command("register")
    @click.argument("target_uri", metavar="TARGET")
    @_tls_options
    @_password_option
    @click.option("--auth-user", metavar="USER", help="Digest user name if not the TARGET user.")
    @click.option("--domain", metavar="DOMAIN", help="SIP domain/realm if not TARGET's host.")
    @click.option(
        "--expires",
        type=click.IntRange(0, 86400 * 7),
        default=3600,
        show_default=True,
        help="Registration lifetime to ask for, seconds.",
    )
    @_binding_options
    @_network_options
    @_evidence_options
    @format_option
    def probe_register(target_uri: str, **opts: Any) -> None:
        """REGISTER TARGET with digest auth: credentials accepted?, bindings now.

        By default the REGISTER carries no Contact and changes nothing;
        --bind adds a temporary binding and removes it.
        """
        policy = register_policy(opts["bind"], opts["force"], opts["keep_registered"])
        password = _password(opts.pop("password_env"), opts.pop("password_file"))
        target = _adhoc(target_uri, opts, password=password, need_user=True)
        _run_and_report(
            [("register", target)],
            1,
            policy,
            opts["pcap"],
            opts["ladder"],
            opts["fmt"],
        )

    return probe_register


def _options_command() -> click.Command:
    @click.command("options")
    @click.argument("target_uri", metavar="TARGET")
    @_tls_options
    @click.option("--domain", metavar="DOMAIN", help="SIP domain if not TARGET's host.")
    @_network_options
    @_evidence_options
    @format_option
    def probe_options(target_uri: str, **opts: Any) -> None:
        """Send OPTIONS to TARGET: reachable?, latency, Allow and Supported."""
        target = _adhoc(target_uri, opts, password=None, need_user=False)
        _run_and_report([("options", target)], 1, None, opts["pcap"], opts["ladder"], opts["fmt"])

    return probe_options


def _nat_cmd(name: str) -> Callable[[], click.Command]:
    """``probe stun`` / ``probe nat`` live in qsipctl.cli.nat_cmd (NAT diagnosis)."""

    def build() -> click.Command:
        from qsipctl.cli import nat_cmd

        return nat_cmd.stun_command() if name == "stun" else nat_cmd.nat_command()

    return build


def _codec_list(ctx: click.Context, param: click.Parameter, value: str) -> tuple[str, ...]:
    codecs = tuple(c.strip().upper() for c in value.split(",") if c.strip())
    bad = [c for c in codecs if c not in ("PCMU", "PCMA", "G722")]
    if bad or not codecs:
        raise UsageError(f"--codecs: {', '.join(bad) or 'empty'}: use PCMU, PCMA, G722 in order")
    return codecs


def _port_range(ctx: click.Context, param: click.Parameter, value: str) -> tuple[int, int]:
    lo, sep, hi = value.partition("-")
    if not (sep and lo.isdigit() and hi.isdigit() and 1024 <= int(lo) < int(hi) <= 65535):
        raise UsageError(f"--rtp-ports {value!r}: give LOW-HIGH, e.g. 16384-32768")
    return int(lo), int(hi)


def _stun_server(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> tuple[str, int] | None:
    """``--stun HOST[:PORT]`` (3478 by default); only a server the user names is asked."""
    if not value:
        return None
    from qsipctl.addr import AddressError, split_host_port

    try:
        host, port = split_host_port(value)
    except AddressError as exc:
        raise UsageError(f"--stun: {exc}") from None
    if not host:
        raise UsageError(f"--stun {value!r}: give HOST[:PORT], e.g. stun.example.net:3478")
    return host, port or 3478


def _dtmf_digits(ctx: click.Context, param: click.Parameter, value: str) -> str:
    if any(c not in "0123456789*#ABCDabcd" for c in value):
        raise UsageError(f"--dtmf {value!r}: digits are 0-9, *, #, A-D")
    return value.upper()


def _call_command() -> click.Command:
    from qsipctl.site.model import CORE_RTP_RANGE

    @click.command("call")
    @click.argument("target_uri", metavar="TARGET")
    @click.option(
        "--from-user",
        "from_user",
        metavar="USER",
        help="The account that calls (From, digest user unless --auth-user); required"
        " unless --inbound.",
    )
    @click.option(
        "--inbound",
        is_flag=True,
        help="Ring as TARGET's account instead (binding-safe REGISTER) and check the INVITE"
        " the PBX sends: early offer, codecs, telephone-event; answer, audio, hang up.",
    )
    @click.option(
        "--from-account",
        metavar="ACCOUNT",
        help="With --inbound: this account (USER at TARGET's PBX, or sip:USER@HOST) calls"
        " TARGET with qsipctl's call probe; without it, you dial TARGET's number yourself.",
    )
    @click.option(
        "--from-password-env", metavar="VAR", help="Password of --from-account, from VAR."
    )
    @click.option(
        "--from-password-file",
        metavar="FILE",
        type=click.Path(exists=True, dir_okay=False, path_type=str),
        help="Password of --from-account, from FILE.",
    )
    @click.option(
        "--force",
        is_flag=True,
        help="With --inbound: bind even when another device (the core) is bound to TARGET.",
    )
    @_tls_options
    @_password_option
    @click.option("--auth-user", metavar="USER", help="Digest user name if not --from-user.")
    @click.option("--domain", metavar="DOMAIN", help="SIP domain/realm if not TARGET's host.")
    @click.option(
        "--codecs",
        default="PCMU,PCMA,G722",
        show_default=True,
        callback=_codec_list,
        help="Codecs to offer, in order (as the core's softphone settings).",
    )
    @click.option(
        "--dtmf-mode",
        type=click.Choice(["rfc2833", "sip-info"]),
        default="rfc2833",
        show_default=True,
        help="How the core sends DTMF (telephone-event offered).",
    )
    @click.option(
        "--dtmf-payload-type",
        type=click.IntRange(96, 127),
        default=101,
        show_default=True,
        help="telephone-event payload type to offer.",
    )
    @click.option(
        "--dtmf",
        default="",
        callback=_dtmf_digits,
        metavar="DIGITS",
        help="Send these digits once the call is up (RFC 4733, or SIP INFO with "
        "--dtmf-mode sip-info).",
    )
    @click.option(
        "--srtp",
        is_flag=True,
        help="Offer SRTP (RTP/SAVP, SDES keys) as a core with SRTP enabled; use with TLS.",
    )
    @click.option(
        "--stun",
        "stun",
        metavar="HOST[:PORT]",
        callback=_stun_server,
        help="STUN server (the core's): put our mapped public address in the offer's c=.",
    )
    @click.option(
        "--duration",
        type=click.FloatRange(0.5, 3600),
        default=5.0,
        show_default=True,
        help="Seconds of audio once answered.",
    )
    @click.option(
        "--ring-timeout",
        type=click.FloatRange(1, 600),
        default=30.0,
        show_default=True,
        help="Seconds to ring before CANCEL.",
    )
    @click.option(
        "--rtp-ports",
        default="{}-{}".format(*CORE_RTP_RANGE),
        show_default=True,
        callback=_port_range,
        help="Local RTP port range (the core's).",
    )
    @click.option(
        "--echo",
        is_flag=True,
        help="TARGET is an echo service: measure the audio round trip (marker tone).",
    )
    @_network_options
    @_evidence_options
    @format_option
    def probe_call(target_uri: str, **opts: Any) -> None:
        """Call TARGET (sip:NUMBER@PBX) with a test tone; report SIP, codec, audio, MOS.

        With --inbound, ring as TARGET's account instead and check the INVITE the PBX
        sends it (early offer, codecs, telephone-event), then answer and hang up.
        """
        password = _password(opts.pop("password_env"), opts.pop("password_file"))
        callee = _adhoc(target_uri, opts, password=password, need_user=True)
        inbound = _inbound_opts(opts)
        if inbound["inbound"]:
            from qsipctl.cli.inbound_cmd import probe_call_inbound

            probe_call_inbound(callee, opts, inbound)
            return
        if not opts["from_user"]:
            raise UsageError("give --from-user USER (the account that calls), or --inbound")
        _run_call(callee, opts)

    return probe_call


def _inbound_opts(opts: dict[str, Any]) -> dict[str, Any]:
    """Take the --inbound options out of ``opts``; they only apply with --inbound."""
    keys = ("inbound", "from_account", "from_password_env", "from_password_file", "force")
    inbound = {k: opts.pop(k) for k in keys}
    if not inbound["inbound"] and any(inbound[k] for k in keys[1:]):
        raise UsageError("--from-account, --from-password-* and --force apply with --inbound")
    if inbound["inbound"]:
        inbound["from_password"] = _password(inbound.pop("from_password_env"),
                                             inbound.pop("from_password_file"))  # fmt: skip
    return inbound


def _run_call(callee: ProbeTarget, opts: dict[str, Any]) -> None:
    from qsipctl.probes.call import CallOptions
    from qsipctl.sdp import OfferSettings

    caller = callee.replace(user=opts["from_user"],
                            auth_user=opts.get("auth_user") or opts["from_user"])  # fmt: skip
    settings = OfferSettings(codecs=opts["codecs"], dtmf_mode=opts["dtmf_mode"],
                             dtmf_payload_type=opts["dtmf_payload_type"],
                             srtp=opts["srtp"])  # fmt: skip
    call = CallOptions(number=callee.user or "", settings=settings, duration=opts["duration"],
                       ring_timeout=opts["ring_timeout"], dtmf=opts["dtmf"],
                       port_range=opts["rtp_ports"], echo=opts["echo"], stun_server=opts["stun"],
                       capture_limit=100_000 if opts["pcap"] else 0)  # fmt: skip
    run_calls([(caller, call)], opts["pcap"], opts["ladder"], opts["fmt"])


def run_calls(calls: list[tuple[ProbeTarget, Any]], pcap: str | None, ladder: bool, fmt: str,
              junit: str | None = None) -> None:  # fmt: skip
    """Place the calls one after the other (each a real call: never several on one
    account at once), then report them all; exit 1 when any failed."""
    import asyncio

    from qsipctl.cli.common import run_cancellable
    from qsipctl.probes.call import place_call

    if pcap:
        _check_writable(pcap)

    async def all_calls() -> list[Any]:
        # each call's finally hangs up (BYE or CANCEL) and closes its media port
        return [await place_call(caller, options) for caller, options in calls]

    try:
        done = run_cancellable(all_calls)
    except asyncio.CancelledError:
        raise KeyboardInterrupt from None  # the CLI's "interrupted" (exit 130)
    outcomes = [outcome for outcome, _ in done]
    for warning in sorted({w for o in outcomes for w in o.result.warnings}):
        click.echo(f"qsipctl: warning: {warning}", err=True)
    if pcap:
        from qsipctl.media.capture import write_media_pcap

        write_media_pcap(pcap, [c for _, r in done for c in r.captured],
                         [t for o in outcomes for t in o.traces])  # fmt: skip
    from qsipctl.report.probes import json_document, render_ladders, render_probe_table

    if fmt == "json":
        from qsipctl.report.output import echo_json

        doc = json_document(outcomes)
        doc["calls"] = [r.as_dict() for _, r in done]
        echo_json(doc)
    else:
        click.echo(render_probe_table(outcomes))
        for outcome, report in done:
            who = outcome.result.softphone or outcome.result.target
            click.echo(f"\ncall from {who}:")
            click.echo(report.render())
    if ladder:
        click.echo(render_ladders(outcomes), nl=False, err=fmt == "json")
    _write_junit(junit, outcomes)
    if not all(o.result.ok for o in outcomes):
        raise SystemExit(EXIT_FAILED)


_PROBES: dict[str, Callable[[], click.Command]] = {
    "call": _call_command,
    "nat": _nat_cmd("nat"),
    "options": _options_command,
    "register": _register_command,
    "stun": _nat_cmd("stun"),
}


def _password(env: str | None, path: str | None) -> Any:
    from qsipctl.site.secrets import Secret

    if env and path:
        raise UsageError("give --password-env or --password-file, not both")
    if env:
        secret = Secret.parse(f"env:{env}")
    elif path:
        secret = Secret.parse(f"file:{path}")
    else:
        return None
    problem = secret.check()
    if problem:
        raise UsageError(problem)
    return secret


def _adhoc(target_uri: str, opts: dict[str, Any], password: Any, need_user: bool) -> ProbeTarget:
    from qsipctl.net.transport import TlsSettings
    from qsipctl.probes.target import adhoc_target

    tls = TlsSettings(opts["ca_file"], not opts["no_verify"], opts["tls_name"])
    if tls.ca_file and tls.verify:
        _check_ca_file(tls)
    return adhoc_target(
        target_uri,
        transport=opts["transport"],
        password=password,
        auth_user=opts.get("auth_user"),
        domain=opts.get("domain"),
        tls=tls,
        expires=opts.get("expires", 3600),
        timeout=opts["timeout"],
        local_address=opts["local_address"],
        nameserver=opts["dns_server"],
        need_user=need_user,
    )


def _check_ca_file(tls: Any) -> None:
    """An unusable --ca-file is bad input (exit 2), like a missing one, not a probe failure."""
    from qsipctl.net.errors import NetError
    from qsipctl.net.transport import make_ssl_context

    try:
        make_ssl_context(tls)
    except NetError as exc:
        raise UsageError(f"--ca-file: {exc}") from None


def _write_junit(path: str | None, outcomes: list[Any]) -> None:
    if path:
        from qsipctl.report.diagnose_junit import probe_cases, write_diagnose_junit

        write_diagnose_junit(path, probe_cases(o.result for o in outcomes))


def _run_and_report(
    jobs: list[tuple[str, ProbeTarget]],
    concurrency: int,
    policy: RegisterPolicy | None,
    pcap: str | None,
    ladder: bool,
    fmt: str,
    junit: str | None = None,
    workers: int | None = 1,
) -> None:
    """Run the probes (``workers`` None: as many processes as pay), print, exit 1 on a failure."""
    from qsipctl.cli.common import run_cancellable, short_lived
    from qsipctl.probes.runner import ProbesInterrupted, run_probes_async

    if workers is None:
        from qsipctl.probes.parallel import auto_workers

        workers = auto_workers(len(jobs), concurrency)
    elif workers > 1 and not hasattr(os, "fork"):
        raise UsageError("--workers: this platform cannot fork(); use --workers 1")
    if pcap:
        _check_writable(pcap)
    if not (pcap or ladder):  # nobody will read the wire trace: do not keep it
        jobs = [(name, target.replace(evidence=False)) for name, target in jobs]
    try:
        with short_lived():
            outcomes = run_cancellable(
                lambda: run_probes_async(
                    jobs, concurrency, False, _progress(len(jobs)), policy, workers
                )
            )
    except ProbesInterrupted as exc:
        _report_interrupted(exc, len(jobs), fmt)
    for warning in sorted({w for o in outcomes for w in o.result.warnings}):
        click.echo(f"qsipctl: warning: {warning}", err=True)
    if pcap:
        from qsipctl.net.pcap import write_pcap

        write_pcap(pcap, [t for o in outcomes for t in o.traces])
    from qsipctl.report.probes import json_document, render_ladders, render_probe_table

    if fmt == "json":
        from qsipctl.report.output import echo_json

        echo_json(json_document(outcomes))
    else:
        click.echo(render_probe_table(outcomes))
    if ladder:
        click.echo(render_ladders(outcomes), nl=False, err=fmt == "json")
    _write_junit(junit, outcomes)
    if not all(o.result.ok for o in outcomes):
        raise SystemExit(EXIT_FAILED)


def _report_interrupted(exc: ProbesInterrupted, total: int, fmt: str) -> None:
    """Ctrl-C/SIGTERM: what finished, and what became of every temporary binding; exit 130."""
    from qsipctl.errors import EXIT_INTERRUPTED
    from qsipctl.report.probes import render_probe_table

    if fmt == "json":  # scripts still get a document: what finished, what was undone
        from qsipctl.report.output import echo_json
        from qsipctl.report.probes import json_document

        cleanups = [
            {"target": c.target, "contact": c.contact, "state": c.state, "expires": c.expires}
            for c in exc.cleanups
        ]
        echo_json({**json_document(exc.finished), "interrupted": True, "cleanups": cleanups})
    elif exc.finished:
        click.echo(render_probe_table(exc.finished))
    click.echo(f"qsipctl: interrupted: {len(exc.finished)} of {total} probe(s) finished", err=True)
    for cleanup in exc.cleanups:
        click.echo(f"qsipctl: interrupted: {cleanup.describe()}", err=True)
    raise SystemExit(EXIT_INTERRUPTED)


def _progress(total: int) -> Callable[[int, Any], None] | None:
    """A one-line counter on stderr, only on a terminal and only for several probes."""
    import sys

    if total < 2 or not sys.stderr.isatty():
        return None
    state = {"done": 0, "failed": 0}

    def update(index: int, outcome: Any) -> None:
        state["done"] += 1
        state["failed"] += 0 if outcome.result.ok else 1
        end = "\n" if state["done"] == total else ""
        sys.stderr.write(f"\r{state['done']}/{total} probes, {state['failed']} failed{end}")
        sys.stderr.flush()

    return update


def _check_writable(path: str) -> None:
    """Refuse before probing, not after: nothing is sent when the evidence cannot be kept."""
    import os
    from pathlib import Path

    parent = Path(path).resolve().parent
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        raise UsageError(f"--pcap {path}: directory {parent} does not exist or is not writable")
