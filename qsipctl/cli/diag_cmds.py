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
    _binding_options,
    _evidence_options,
    _network_options,
    _run_and_report,
    probe,
    register_policy,
)
from qsipctl.errors import UsageError

if TYPE_CHECKING:
    from qsipctl.probes.target import ProbeTarget

__all__ = ["diagnose", "probe"]


@click.command()
@site_argument
@click.option("--register", "do_register", is_flag=True, help="REGISTER every softphone.")
@click.option("--options", "do_options", is_flag=True, help="OPTIONS ping every registrar.")
@limit_option
@profiles_dir_option
@click.option(
    "--concurrency",
    type=click.IntRange(1, 1000),
    default=20,
    show_default=True,
    help="Probes in flight at once.",
)
@_binding_options
@_network_options
@_evidence_options
@format_option
def diagnose(
    site_path: str,
    do_register: bool,
    do_options: bool,
    limit: str | None,
    profile_dirs: tuple[str, ...],
    concurrency: int,
    bind: bool,
    force: bool,
    keep_registered: bool,
    timeout: float,
    local_address: str | None,
    dns_server: str | None,
    pcap: str | None,
    ladder: bool,
    fmt: str,
) -> None:
    """Probe the PBX accounts of SITE.yml's softphones from this machine.

    --register checks each softphone's credentials with a REGISTER that
    changes nothing and reports whether the core is registered now (--bind
    adds a temporary binding and removes it); softphones with register: false
    get an OPTIONS to their proxy instead.  --options pings each registrar.
    Exit 0 when every probe passed, 1 when any failed, 2 for bad input.
    """
    if not (do_register or do_options):
        raise UsageError("choose at least one probe: --register and/or --options")
    policy = register_policy(bind, force, keep_registered)
    from qsipctl.cli.common import load_selected

    _, cores = load_selected(site_path, limit, profile_dirs)
    jobs = _site_jobs(cores, do_register, do_options, timeout, local_address, dns_server)
    if not jobs:
        raise UsageError("no softphones selected (check --limit)")
    _run_and_report(jobs, concurrency, policy, pcap, ladder, fmt)


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


def _note_not_registering(core: str, phone: str) -> None:
    click.echo(
        f"qsipctl: note: {core}/{phone}: register: false (IP-authenticated), not registered;"
        " checked with OPTIONS to its proxy instead",
        err=True,
    )
