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
    profiles_dir_option,
    site_argument,
)
from qsipctl.cli.probe_cmd import (
    _evidence_options,
    _network_options,
    _run_and_report,
    probe,
)
from qsipctl.errors import UsageError

if TYPE_CHECKING:
    from qsipctl.probes.target import ProbeTarget

__all__ = ["diagnose", "probe"]


@click.command()
@site_argument
@click.option("--register", "do_register", is_flag=True, help="REGISTER every softphone.")
@click.option("--options", "do_options", is_flag=True, help="OPTIONS ping every registrar.")
@click.option(
    "--call",
    "do_call",
    is_flag=True,
    help="Place a test call from every softphone (with its own settings) to --to.",
)
@click.option("--to", "call_to", metavar="NUMBER", help="The number --call dials.")
@click.option(
    "--duration",
    type=click.FloatRange(0.5, 3600),
    default=5.0,
    show_default=True,
    help="--call: seconds of audio once answered.",
)
@click.option("--dtmf", default="", metavar="DIGITS", help="--call: digits to send (RFC 4733).")
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
    "--keep-registered", is_flag=True, help="Leave the registrations in place (no Expires: 0)."
)
@_network_options
@_evidence_options
@format_option
def diagnose(
    site_path: str,
    do_register: bool,
    do_options: bool,
    do_call: bool,
    call_to: str | None,
    duration: float,
    dtmf: str,
    limit: str | None,
    profile_dirs: tuple[str, ...],
    concurrency: int,
    keep_registered: bool,
    timeout: float,
    local_address: str | None,
    dns_server: str | None,
    pcap: str | None,
    ladder: bool,
    fmt: str,
) -> None:
    """Probe the PBX accounts of SITE.yml's softphones from this machine.

    --register sends each softphone's REGISTER (with its credentials, over
    its profile's transport) and unregisters again; --options pings each
    registrar; --call --to NUMBER places a test call from each softphone with
    its own codec/DTMF settings (one call at a time).  Exit 0 when every probe
    passed, 1 when any failed, 2 for bad input.
    """
    if do_call:
        _check_call_options(do_register, do_options, call_to, dtmf)
    elif not (do_register or do_options):
        raise UsageError("choose at least one probe: --register, --options or --call")
    from qsipctl.cli.common import load_selected

    _, cores = load_selected(site_path, limit, profile_dirs)
    if do_call:
        calls = _call_jobs(cores, call_to or "", duration, dtmf.upper(), timeout, local_address,
                           dns_server, bool(pcap))  # fmt: skip
        if not calls:
            raise UsageError("no softphones selected (check --limit)")
        from qsipctl.cli.probe_cmd import run_calls

        run_calls(calls, pcap, ladder, fmt)
        return
    jobs = _site_jobs(cores, do_register, do_options, timeout, local_address, dns_server)
    if not jobs:
        raise UsageError("no softphones selected (check --limit)")
    _run_and_report(jobs, concurrency, keep_registered, pcap, ladder, fmt)


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
            if do_register:
                jobs.append(("register", t))
    return jobs


def _check_call_options(
    do_register: bool, do_options: bool, call_to: str | None, dtmf: str
) -> None:
    if do_register or do_options:
        raise UsageError("--call runs on its own (not with --register/--options)")
    if not call_to:
        raise UsageError("--call needs --to NUMBER (the number to dial)")
    if any(c not in "0123456789*#ABCDabcd" for c in dtmf):
        raise UsageError(f"--dtmf {dtmf!r}: digits are 0-9, *, #, A-D")


def _call_jobs(
    cores: Sequence[Any],
    number: str,
    duration: float,
    dtmf: str,
    timeout: float,
    local_address: str | None,
    dns_server: str | None,
    capture: bool,
) -> list[tuple[ProbeTarget, Any]]:
    """One call per softphone: its account, its core's codec/DTMF/SRTP settings, its RTP range."""
    from qsipctl.probes.call import CallOptions
    from qsipctl.probes.target import softphone_target
    from qsipctl.sdp import OfferSettings

    jobs: list[tuple[ProbeTarget, Any]] = []
    for core in cores:
        settings = OfferSettings.from_core(core.settings)
        for phone in core.softphones:
            t = softphone_target(
                core, phone, timeout=timeout, local_address=local_address, nameserver=dns_server
            )
            options = CallOptions(number=number, settings=settings, duration=duration, dtmf=dtmf,
                                  port_range=phone.expectations.rtp_port_range,
                                  capture_limit=100_000 if capture else 0)  # fmt: skip
            jobs.append((t, options))
    return jobs
