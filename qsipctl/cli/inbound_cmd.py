"""The inbound check's command side: ``probe call --inbound`` and ``diagnose --call --inbound``.

Both build :class:`InboundJob` s and hand them to :func:`run_inbound`, which
runs them one at a time (each binds an account and takes a real call),
turns SIGTERM into the same cancellation as Ctrl-C (so every binding is
removed and every call hung up) and reports as table or JSON.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import click

from qsipctl.errors import EXIT_FAILED, EXIT_INTERRUPTED

if TYPE_CHECKING:
    from qsipctl.probes.answer import InboundOptions, Trigger
    from qsipctl.probes.call import CallOptions
    from qsipctl.probes.target import ProbeTarget
    from qsipctl.sdp import OfferSettings


@dataclass(frozen=True, slots=True)
class InboundJob:
    """One account to ring as, and what makes the PBX call it."""

    target: ProbeTarget
    options: InboundOptions
    caller: tuple[ProbeTarget, CallOptions] | None = None  # None: the engineer dials
    trigger: Trigger | None = None  # overrides caller (e.g. a QRC dial on the core)
    compare: tuple[OfferSettings, bool] | None = None  # site settings, STUN on: --answer-as


def caller_trigger(caller: ProbeTarget, call: CallOptions) -> Trigger:
    """Our own call probe as the calling side: it dials the bound account's number."""

    async def dial(number: str) -> Any:
        from qsipctl.probes.call import place_call

        return await place_call(caller, replace(call, number=number))

    return dial


def engineer_trigger(target: ProbeTarget, wait: float) -> Trigger:
    """Nobody calls for us: tell the engineer to dial now (stderr, so JSON stays clean)."""

    async def notice(number: str) -> None:
        click.echo(
            f"qsipctl: bound as {target.aor}: call {number} now (waiting up to {wait:.0f} s)",
            err=True,
        )

    return notice


def run_inbound(
    jobs: list[InboundJob],
    fmt: str,
    pcap: str | None = None,
    ladder: bool = False,
    junit: str | None = None,
) -> None:
    """Run the checks one after the other; exit 1 when any failed, 130 when interrupted.

    ``pcap`` keeps the SIP exchanges (registration, the INVITE and its answer) and the
    answered call's RTP/RTCP both ways (up to ``media.capture.CAPTURE_LIMIT`` packets)."""
    import asyncio

    from qsipctl.cli.common import run_cancellable
    from qsipctl.probes.answer import InboundRun, receive_call
    from qsipctl.probes.base import ProbeOutcome
    from qsipctl.probes.register_flow import LEDGER, Cleanup

    if pcap:
        from qsipctl.cli.probe_cmd import _check_writable
        from qsipctl.media.capture import CAPTURE_LIMIT

        _check_writable(pcap)  # refuse before binding anything
        jobs = [replace(j, options=replace(j.options, capture_limit=CAPTURE_LIMIT)) for j in jobs]
    ledger: list[Cleanup] = []

    async def all_checks() -> list[tuple[ProbeOutcome, InboundRun]]:
        LEDGER.set(ledger)
        done = []
        for job in jobs:
            trigger = job.trigger
            if trigger is None and job.caller is not None:
                trigger = caller_trigger(*job.caller)
            if trigger is None:
                trigger = engineer_trigger(job.target, job.options.ring_timeout)
            done.append(await receive_call(job.target, job.options, trigger))
        return done

    try:
        done = run_cancellable(all_checks)
    except (KeyboardInterrupt, asyncio.CancelledError):
        for cleanup in ledger:
            click.echo(f"qsipctl: interrupted: {cleanup.describe()}", err=True)
        raise SystemExit(EXIT_INTERRUPTED) from None
    if pcap:
        from qsipctl.media.capture import write_media_pcap

        write_media_pcap(pcap, [c for _, run in done for c in run.report.captured],
                         [t for outcome, _ in done for t in outcome.traces])  # fmt: skip
    if ladder:
        from qsipctl.report.probes import render_ladders

        click.echo(render_ladders([o for o, _ in done]), nl=False, err=fmt == "json")
    _report(jobs, done, fmt, junit)


def _report(jobs: list[InboundJob], done: list[Any], fmt: str, junit: str | None) -> None:
    from qsipctl.probes.answer import compare_offer, inbound_dict, render_inbound
    from qsipctl.report.probes import json_document, render_probe_table

    outcomes = [outcome for outcome, _ in done]
    checks = [
        compare_offer(run.report, *job.compare) if job.compare else None
        for job, (_, run) in zip(jobs, done, strict=True)
    ]
    for warning in sorted({w for o in outcomes for w in o.result.warnings}):
        click.echo(f"qsipctl: warning: {warning}", err=True)
    if fmt == "json":
        from qsipctl.report.output import echo_json

        doc = json_document(outcomes)
        doc["inbound"] = [inbound_dict(run, c) for (_, run), c in zip(done, checks, strict=True)]
        echo_json(doc)
    else:
        click.echo(render_probe_table(outcomes))
        for (outcome, run), c in zip(done, checks, strict=True):
            who = outcome.result.softphone or outcome.result.target
            click.echo(f"\ninbound call to {who}:")
            click.echo(render_inbound(run, c))
    if junit:
        from qsipctl.report.diagnose_junit import probe_cases, write_diagnose_junit

        write_diagnose_junit(junit, probe_cases(o.result for o in outcomes))
    failed = any(not o.result.ok for o in outcomes)
    failed = failed or any(c and not all(x.ok for x in c) for c in checks)
    if failed:
        raise SystemExit(EXIT_FAILED)


def binding_lifetime(options: InboundOptions) -> int:
    """Ask for a short binding: if removing it fails, it lapses soon on its own."""
    return max(120, int(options.ring_timeout + options.duration) + 60)


def probe_call_inbound(target: ProbeTarget, opts: dict[str, Any], inbound: dict[str, Any]) -> None:
    """``probe call --inbound TARGET``: ring as TARGET, with the --codecs/--dtmf-* settings."""
    from qsipctl.errors import UsageError
    from qsipctl.probes.answer import InboundOptions
    from qsipctl.probes.call import CallOptions
    from qsipctl.sdp import OfferSettings

    if opts["dtmf"] or opts["echo"] or opts["from_user"]:
        raise UsageError("--from-user, --dtmf and --echo are for outgoing calls, not --inbound")
    settings = OfferSettings(codecs=opts["codecs"], dtmf_mode=opts["dtmf_mode"],
                             dtmf_payload_type=opts["dtmf_payload_type"])  # fmt: skip
    options = InboundOptions(settings=settings, ring_timeout=opts["ring_timeout"],
                             duration=opts["duration"], port_range=opts["rtp_ports"],
                             force=inbound["force"])  # fmt: skip
    target = target.replace(expires=binding_lifetime(options))
    caller = None
    if inbound["from_account"]:
        who = adhoc_caller(target, inbound["from_account"], inbound["from_password"])
        # the caller offers the same codecs; it talks a little longer than we hold the call
        call = CallOptions(settings=settings, duration=options.duration + 2.0,
                           ring_timeout=min(options.ring_timeout, 30.0),
                           port_range=opts["rtp_ports"])  # fmt: skip
        caller = (who, call)
    run_inbound([InboundJob(target, options, caller)], opts["fmt"], opts["pcap"], opts["ladder"])


def adhoc_caller(target: ProbeTarget, account: str, password: Any) -> ProbeTarget:
    """``USER`` (at the target's PBX, same transport) or ``sip:USER@HOST[:PORT]``."""
    from qsipctl.errors import UsageError
    from qsipctl.probes.target import parse_target_uri

    if "@" not in account and ":" not in account:
        return target.replace(user=account, auth_user=account, password=password,
                              softphone=None, core=None)  # fmt: skip
    scheme, user, host, port, transport = parse_target_uri(account)
    if not user:
        raise UsageError(f"--from-account {account!r} has no user part (e.g. sip:1002@{host})")
    return target.replace(user=user, auth_user=user, password=password, scheme=scheme,
                          domain=host, host=host, port=port,
                          transport=transport or target.transport,
                          softphone=None, core=None, registrar_uri=None)  # fmt: skip


def diagnose_inbound(
    site_path: str,
    limit: str | None,
    profile_dirs: tuple[str, ...],
    from_account: str | None,
    force: bool,
    call: dict[str, Any],
    timeout: float,
    local_address: str | None,
    dns_server: str | None,
    pcap: str | None,
    ladder: bool,
    fmt: str,
    junit: str | None = None,
) -> None:
    """``diagnose SITE --call --inbound``: each selected softphone, with its core's settings."""
    from qsipctl.cli.common import load_selected
    from qsipctl.errors import UsageError
    from qsipctl.probes.answer import InboundOptions
    from qsipctl.probes.call import CallOptions
    from qsipctl.probes.target import softphone_target
    from qsipctl.sdp import OfferSettings
    from qsipctl.site.model import RTP_PORT_MAX, RTP_PORT_MIN

    if call["to_number"] or call["dtmf"]:
        raise UsageError("--to and --dtmf are for outgoing calls, not --call --inbound")
    _, cores = load_selected(site_path, limit, profile_dirs)
    net: dict[str, Any] = {
        "timeout": timeout,
        "local_address": local_address,
        "nameserver": dns_server,
    }
    caller = (
        _site_caller(site_path, profile_dirs, cores, from_account, net) if from_account else None
    )
    ports = (RTP_PORT_MIN, RTP_PORT_MAX)
    jobs: list[InboundJob] = []
    for core in cores:
        settings = OfferSettings.from_core(core.settings)
        for phone in core.softphones:
            if not phone.register:
                raise UsageError(
                    f"{core.name}/{phone.name}: register: false (IP-authenticated): the PBX"
                    " sends its calls to the core's address, there is no account to ring as"
                )
            if caller is not None and caller[1] == (core.name, phone.name):
                continue  # the calling softphone is not checked in the same run
            target = softphone_target(core, phone, **net)
            options = InboundOptions(settings=settings, ring_timeout=call["ring_timeout"],
                                     duration=call["duration"], port_range=ports,
                                     force=force)  # fmt: skip
            target = target.replace(expires=binding_lifetime(options))
            calling = None
            if caller is not None:
                who, from_core = caller[0], caller[2]
                call_opts = CallOptions(settings=OfferSettings.from_core(from_core.settings),
                                        duration=options.duration + 2.0,
                                        ring_timeout=min(options.ring_timeout, 30.0),
                                        port_range=ports)  # fmt: skip
                calling = (who, call_opts)
            jobs.append(InboundJob(target, options, calling))
    if not jobs:
        raise UsageError("no softphones selected to ring as (check --limit, --from-account)")
    run_inbound(jobs, fmt, pcap, ladder, junit)


def _site_caller(site_path: str, profile_dirs: tuple[str, ...], cores: list[Any], name: str,
                 net: dict[str, Any]) -> tuple[ProbeTarget, tuple[str, str], Any]:  # fmt: skip
    """The softphone ``NAME`` or ``CORE/NAME`` of the site (outside --limit too)."""
    from qsipctl.cli.common import load_selected
    from qsipctl.errors import UsageError
    from qsipctl.probes.target import softphone_target

    core_name, _, phone_name = name.rpartition("/")

    def find(pool: list[Any]) -> list[tuple[Any, Any]]:
        return [(c, p) for c in pool for p in c.softphones
                if p.name == phone_name and core_name in ("", c.name)]  # fmt: skip

    found = find(cores)
    if not found:
        _, everything = load_selected(site_path, None, profile_dirs)
        found = find(everything)
    if not found:
        raise UsageError(f"--from-account {name!r}: no softphone of that name in the site")
    if len(found) > 1:
        names = ", ".join(f"{c.name}/{p.name}" for c, p in found)
        raise UsageError(f"--from-account {name!r} is ambiguous ({names}): give CORE/NAME")
    core, phone = found[0]
    return softphone_target(core, phone, **net), (core.name, phone.name), core


def run_answer_as(
    site_path: str,
    profile_dirs: Sequence[str],
    cores: list[Any],
    targets: list[Any],
    account: str,
    password_env: str | None,
    timeout: float,
    fmt: str,
    junit: str | None = None,
) -> None:
    """``diagnose --via-core --answer-as ACCOUNT``: bind as ACCOUNT, each core dials it over QRC,
    its INVITE is compared with what provision pushes to that core (issue 13 point 4)."""
    from qsipctl.probes.answer import InboundOptions
    from qsipctl.qrc.viacore import dial_once
    from qsipctl.sdp import OfferSettings
    from qsipctl.site.model import RTP_PORT_MAX, RTP_PORT_MIN

    answer = _answer_account(site_path, profile_dirs, cores, account, password_env, timeout)
    by_name = {core.name: core for core in cores}
    jobs: list[InboundJob] = []
    for t in targets:
        core = by_name[t.core]
        settings = OfferSettings.from_core(core.settings)
        options = InboundOptions(settings=settings, ring_timeout=t.ring_timeout + 5.0,
                                 duration=t.duration + 5.0,
                                 port_range=(RTP_PORT_MIN, RTP_PORT_MAX))  # fmt: skip
        target = answer.replace(core=t.core, softphone=t.softphone,
                                expires=binding_lifetime(options))  # fmt: skip
        jobs.append(InboundJob(target, options, trigger=_qrc_dial(dial_once, t),
                               compare=(settings, bool(core.settings.stun_enabled))))  # fmt: skip
    run_inbound(jobs, fmt, junit=junit)


def _qrc_dial(dial_once: Callable[[Any], Coroutine[Any, Any, Any]], target: Any) -> Trigger:
    async def dial(number: str) -> Any:
        return await dial_once(replace(target, number=number))

    return dial


def _answer_account(site_path: str, profile_dirs: Sequence[str], cores: list[Any], account: str,
                    password_env: str | None, timeout: float) -> ProbeTarget:  # fmt: skip
    """A softphone of the site, or ``sip:USER@PBX`` with --answer-password-env."""
    from qsipctl.errors import UsageError

    if "@" not in account:
        if password_env:
            raise UsageError("--answer-password-env is for --answer-as sip:USER@PBX")
        net: dict[str, Any] = {"timeout": timeout, "local_address": None, "nameserver": None}
        return _site_caller(site_path, tuple(profile_dirs), cores, account, net)[0]
    from qsipctl.probes.target import adhoc_target
    from qsipctl.site.secrets import Secret

    if not password_env:
        raise UsageError(f"--answer-as {account}: give its password with --answer-password-env")
    secret = Secret.parse(f"env:{password_env}")
    problem = secret.check()
    if problem:
        raise UsageError(problem)
    return adhoc_target(account, transport=None, password=secret, timeout=timeout)
