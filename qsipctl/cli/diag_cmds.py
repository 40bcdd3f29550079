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
from qsipctl.cli.nat_cmd import responder_options
from qsipctl.cli.probe_cmd import (
    _evidence_options,
    _network_options,
    _run_and_report,
    probe,
)
from qsipctl.cli.viacore_cmd import run_via_core_command, via_core_options
from qsipctl.errors import UsageError

if TYPE_CHECKING:
    from qsipctl.probes.target import ProbeTarget

__all__ = ["diagnose", "probe"]

# the options of --via-core (the rest of ``**probe_opts`` belong to --nat)
VIA_CORE_KEYS = ("to_number", "dtmf", "duration", "ring_timeout")


@click.command()
@site_argument
@click.option("--register", "do_register", is_flag=True, help="REGISTER every softphone.")
@click.option("--options", "do_options", is_flag=True, help="OPTIONS ping every registrar.")
@click.option("--nat", "do_nat", is_flag=True, help="NAT/firewall/SIP ALG tests (docs/nat.md).")
@responder_options
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
@via_core_options
@format_option
def diagnose(
    site_path: str,
    do_register: bool,
    do_options: bool,
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
    via_core: bool,
    do_nat: bool = False,
    **probe_opts: Any,
) -> None:
    """Probe the PBX accounts of SITE.yml's softphones from this machine.

    --nat tests the NAT and firewall between this machine and the site's
    STUN server, registrars and (with --responder) a responder.
    --register sends each softphone's REGISTER (with its credentials, over
    its profile's transport) and unregisters again; --options pings each
    registrar; --via-core makes each core's own softphone place a test call
    over QRC (docs/via-core.md).  Exit 0 when every probe passed, 1 when any
    failed, 2 for bad input.
    """
    via_core_opts = {k: probe_opts.pop(k) for k in VIA_CORE_KEYS}
    if via_core:
        run_via_core_command(site_path, limit, profile_dirs, concurrency, timeout, fmt,
                             also=do_register or do_options or do_nat,
                             **via_core_opts)  # fmt: skip
        return
    if do_nat:  # NAT diagnosis: qsipctl.cli.nat_cmd
        from qsipctl.cli.nat_cmd import diagnose_nat

        probe_opts.update(timeout=timeout, local_address=local_address)
        return diagnose_nat(site_path, limit, profile_dirs, probe_opts, fmt)
    if not (do_register or do_options):
        raise UsageError("choose at least one probe: --register, --options and/or --nat")
    from qsipctl.cli.common import load_selected

    _, cores = load_selected(site_path, limit, profile_dirs)
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
