"""diagnose: SIP probes for a site's softphones.

Only click and the option helpers are imported at module level; the SIP
stack, asyncio and ssl load when a probe runs.  The ad-hoc ``probe`` command,
the options both share live in :mod:`qsipctl.cli.probe_cmd` (re-exported
here); rendering lives in :mod:`qsipctl.report.probes`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click

from qsipctl.cli.common import (
    format_option,
    limit_option,
    load_selected,
    long_lived,
    profiles_dir_option,
    site_argument,
)
from qsipctl.cli.nat_cmd import responder_options
from qsipctl.cli.probe_cmd import (
    _binding_options,
    _evidence_options,
    _network_options,
    _run_and_report,
    probe,
    register_policy,
)
from qsipctl.cli.viacore_cmd import run_via_core_command, via_core_options
from qsipctl.errors import UsageError

if TYPE_CHECKING:
    from qsipctl.probes.target import ProbeTarget

__all__ = ["diagnose", "probe"]

# the options of --via-core (the rest of ``**probe_opts`` belong to --nat)
VIA_CORE_KEYS = (
    "to_number",
    "dtmf",
    "duration",
    "ring_timeout",
    "answer_as",
    "answer_password_env",
)


@click.command()
@site_argument
@click.option("--register", "do_register", is_flag=True, help="REGISTER every softphone.")
@click.option("--options", "do_options", is_flag=True, help="OPTIONS ping every registrar.")
@click.option("--nat", "do_nat", is_flag=True, help="NAT/firewall/SIP ALG tests (docs/nat.md).")
@responder_options
@click.option(
    "--call",
    "do_call",
    is_flag=True,
    help="Place a test call from every softphone (with its own settings) to --to.",
)
@click.option(
    "--inbound",
    is_flag=True,
    help="With --call: ring as each softphone's account instead (binding-safe) and check the"
    " INVITE the PBX sends (early offer, codecs, telephone-event); docs/call.md.",
)
@click.option(
    "--from-account",
    metavar="SOFTPHONE",
    help="With --call --inbound: this softphone of the site (NAME or CORE/NAME) places the"
    " call with qsipctl's call probe; without it, you dial the number yourself.",
)
@limit_option
@profiles_dir_option
@click.option(
    "--concurrency",
    type=click.IntRange(1, 1000),
    default=20,
    show_default=True,
    help="Probes in flight at once.",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=None,
    help="Processes to spread --register/--options probes over; --concurrency is shared"
    " between them.  [default: one per CPU, at most one per 100 probes]",
)
@_binding_options
@_network_options
@_evidence_options
@via_core_options
@click.option(
    "--junit",
    "junit",
    metavar="FILE",
    type=click.Path(dir_okay=False, path_type=str),
    default=None,
    help="Also write a JUnit XML report (one test case per probe, call or NAT check).",
)
@format_option
def diagnose(
    site_path: str,
    do_register: bool,
    do_options: bool,
    do_call: bool,
    limit: str | None,
    profile_dirs: tuple[str, ...],
    concurrency: int,
    workers: int | None,
    bind: bool,
    force: bool,
    keep_registered: bool,
    timeout: float,
    local_address: str | None,
    dns_server: str | None,
    pcap: str | None,
    ladder: bool,
    fmt: str,
    via_core: bool,
    junit: str | None,
    inbound: bool = False,
    from_account: str | None = None,
    do_nat: bool = False,
    **probe_opts: Any,
) -> None:
    """Probe the PBX accounts of SITE.yml's softphones from this machine.

    --register checks each softphone's credentials with a REGISTER that
    changes nothing and reports whether the core is registered now (--bind
    adds a temporary binding and removes it); softphones with register: false
    get an OPTIONS to their proxy instead.  --options pings each registrar.
    --call places a test call from each softphone with its own codec/DTMF
    settings to --to (or its test_number), one call at a time; with --inbound
    it rings as each softphone's account instead and checks the INVITE the
    PBX sends (--from-account SOFTPHONE places that call).  --nat tests
    the NAT and firewall between this machine and the site's STUN server,
    registrars and (with --responder) a responder.  --via-core makes each
    core's own softphone place a test call over QRC (docs/via-core.md).
    Exit 0 when every probe passed, 1 when any failed, 2 for bad input.
    """
    via_core_opts = {k: probe_opts.pop(k) for k in VIA_CORE_KEYS}
    if (via_core_opts["answer_as"] or via_core_opts["answer_password_env"]) and not via_core:
        raise UsageError("--answer-as and --answer-password-env apply with --via-core")
    if via_core:
        run_via_core_command(site_path, limit, profile_dirs, concurrency, timeout, fmt,
                             also=do_register or do_options or do_nat or do_call,
                             junit=junit, **via_core_opts)  # fmt: skip
        return
    if do_nat:  # NAT diagnosis: qsipctl.cli.nat_cmd
        from qsipctl.cli.nat_cmd import diagnose_nat

        probe_opts.update(timeout=timeout, local_address=local_address)
        return diagnose_nat(site_path, limit, profile_dirs, probe_opts, fmt, junit)
    if (inbound or from_account) and not do_call:
        raise UsageError("--inbound and --from-account apply with --call")
    if from_account and not inbound:
        raise UsageError("--from-account applies with --call --inbound")
    if do_call and (do_register or do_options):
        raise UsageError("--call runs on its own (not with --register/--options)")
    if do_call and inbound:
        if bind or keep_registered:
            raise UsageError("--call --inbound binds by itself: drop --bind/--keep-registered")
        from qsipctl.cli.inbound_cmd import diagnose_inbound

        return diagnose_inbound(site_path, limit, profile_dirs, from_account, force,
                                via_core_opts, timeout, local_address, dns_server,
                                pcap, ladder, fmt, junit)  # fmt: skip
    if not (do_call or do_register or do_options):
        raise UsageError(
            "choose at least one probe: --register, --options, --call, --nat or --via-core"
        )
    with long_lived():  # the probe stack's modules, the site and its jobs
        policy = register_policy(bind, force, keep_registered)
        _, cores = load_selected(site_path, limit, profile_dirs)
        jobs = [] if do_call else _site_jobs(cores, do_register, do_options, timeout,
                                             local_address, dns_server)  # fmt: skip
    if do_call:
        calls = _call_jobs(cores, via_core_opts, timeout, local_address, dns_server, bool(pcap))
        if not calls:
            raise UsageError("no softphones selected (check --limit)")
        from qsipctl.cli.probe_cmd import run_calls

        run_calls(calls, pcap, ladder, fmt, junit)
        return
    if not jobs:
        raise UsageError("no softphones selected (check --limit)")
    _run_and_report(jobs, concurrency, policy, pcap, ladder, fmt, junit, workers)


def _site_jobs(
    cores: Sequence[Any],
    do_register: bool,
    do_options: bool,
    timeout: float,
    local_address: str | None,
    dns_server: str | None,
) -> list[tuple[str, ProbeTarget]]:
    from qsipctl.probes.target import softphone_target

    jobs: list[tuple[str, ProbeTarget]] = []
    seen: set[tuple[object, ...]] = set()
    for core in cores:
        for phone in core.softphones:
            t = softphone_target(
                core, phone, timeout=timeout, local_address=local_address, nameserver=dns_server
            )
            if do_options:
                key = (t.transport, t.host, t.port, t.domain)
                if key not in seen:
                    seen.add(key)
                    jobs.append(("options", t.replace(user=None, core=None, softphone=None)))
            if do_register and not phone.register:
                # IP-authenticated (a trunk, the Teams SBC): there is nothing to register;
                # check that its proxy answers instead, as the core's calls will need it
                _note_not_registering(core.name, phone.name)
                jobs.append(("options", t.replace(user=None)))
            elif do_register:
                jobs.append(("register", t))
    return jobs


def _call_jobs(
    cores: Sequence[Any],
    call: dict[str, Any],
    timeout: float,
    local_address: str | None,
    dns_server: str | None,
    capture: bool,
) -> list[tuple[ProbeTarget, Any]]:
    """One call per softphone: its account, its core's codec/DTMF/SRTP settings, the core's
    own RTP range (fixed on the device), to --to or else the softphone's test_number."""
    from qsipctl.probes.call import CallOptions
    from qsipctl.probes.target import softphone_target
    from qsipctl.sdp import OfferSettings
    from qsipctl.site.model import RTP_PORT_MAX, RTP_PORT_MIN

    jobs: list[tuple[ProbeTarget, Any]] = []
    for core in cores:
        settings = OfferSettings.from_core(core.settings)
        stun = core.settings.stun_server if core.settings.stun_enabled else None
        for phone in core.softphones:
            number = call["to_number"] or phone.expectations.test_number
            if not number:
                raise UsageError(
                    f"{core.name}/{phone.name}: no number to call: give --to NUMBER"
                    " or set the softphone's test_number"
                )
            t = softphone_target(
                core, phone, timeout=timeout, local_address=local_address, nameserver=dns_server
            )
            options = CallOptions(number=number, settings=settings, duration=call["duration"],
                                  dtmf=call["dtmf"], ring_timeout=call["ring_timeout"],
                                  port_range=(RTP_PORT_MIN, RTP_PORT_MAX),
                                  stun_server=(stun.host, stun.port or 3478) if stun else None,
                                  capture_limit=100_000 if capture else 0)  # fmt: skip
            jobs.append((t, options))
    return jobs


def _note_not_registering(core: str, phone: str) -> None:
    click.echo(
        f"qsipctl: note: {core}/{phone}: register: false (IP-authenticated), not registered;"
        " checked with OPTIONS to its proxy instead",
        err=True,
    )
