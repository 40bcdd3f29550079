"""``diagnose --via-core``: the options, the targets from the inventory, the output.

``diagnose`` (qsipctl.cli.diag_cmds) adds :func:`via_core_options` and hands
over to :func:`run_via_core_command` when ``--via-core`` is given; the QRC
client and the call logic live in :mod:`qsipctl.qrc` and load only then.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import click

from qsipctl.errors import EXIT_FAILED, UsageError

if TYPE_CHECKING:
    from qsipctl.qrc.viacore import ViaCoreResult, ViaCoreTarget
    from qsipctl.site.model import Core

F = TypeVar("F", bound=Callable[..., Any])
DTMF_DIGITS = "0123456789*#"


def _check_dtmf(ctx: click.Context, param: click.Parameter, value: str | None) -> str:
    text = (value or "").strip()
    bad = sorted({c for c in text if c not in DTMF_DIGITS})
    if bad:
        raise click.BadParameter(f"{''.join(bad)!r} is not a keypad digit (0-9, *, #)")
    return text


def via_core_options(func: F) -> F:
    """The options of ``diagnose --via-core`` (all ignored without it)."""
    options = [
        click.option(
            "--ring-timeout",
            type=click.FloatRange(1, 600),
            default=30.0,
            show_default=True,
            help="--call/--via-core: seconds to wait for an answer before hanging up.",
        ),
        click.option(
            "--duration",
            type=click.FloatRange(0, 3600),
            default=3.0,
            show_default=True,
            help="--call/--via-core: seconds to hold a connected call.",
        ),
        click.option(
            "--dtmf",
            metavar="DIGITS",
            default="",
            callback=_check_dtmf,
            help="--call/--via-core: DTMF digits to send once connected (0-9 * #).",
        ),
        click.option(
            "--to",
            "to_number",
            metavar="NUMBER",
            default=None,
            help="--call/--via-core: number to dial (default: each softphone's test_number).",
        ),
        click.option(
            "--via-core",
            is_flag=True,
            help="Make each core's own softphone place a test call over QRC (port 1710).",
        ),
        click.option(
            "--answer-as",
            metavar="ACCOUNT",
            default=None,
            help="--via-core: qsipctl rings as ACCOUNT (a softphone NAME or CORE/NAME of the"
            " site, or sip:USER@PBX) and the core calls it; its INVITE is checked against the"
            " site's settings (docs/via-core.md).",
        ),
        click.option(
            "--answer-password-env",
            metavar="VAR",
            default=None,
            help="--answer-as sip:USER@PBX: the account's password, from VAR.",
        ),
    ]
    for option in options:
        func = option(func)
    return func


def via_core_targets(
    cores: Sequence[Core],
    to_number: str | None,
    dtmf: str,
    duration: float,
    ring_timeout: float,
    timeout: float,
) -> list[ViaCoreTarget]:
    """One target per selected softphone; a softphone without a number is a usage error."""
    from qsipctl.qrc.viacore import ViaCoreTarget

    targets: list[ViaCoreTarget] = []
    for core in cores:
        for phone in core.softphones:
            number = to_number or phone.expectations.test_number
            if not number:
                where = f" ({phone.source})" if phone.source else ""
                raise UsageError(
                    f"no number to dial for softphone {phone.name!r} of {core.name}{where}: "
                    "set test_number in its profile or entry, or pass --to"
                )
            targets.append(
                ViaCoreTarget(
                    core=core.name,
                    softphone=phone.name,
                    code_name=phone.code_name or phone.name,
                    host=core.qrc.host or core.address,
                    port=core.qrc.port,
                    user=core.qrc.user,
                    password=core.qrc.password,
                    number=str(number),
                    dtmf=dtmf,
                    duration=duration,
                    ring_timeout=ring_timeout,
                    timeout=timeout,
                )
            )
    return targets


def run_via_core_command(
    site_path: str,
    limit: str | None,
    profile_dirs: Sequence[str],
    concurrency: int,
    timeout: float,
    fmt: str,
    *,
    to_number: str | None,
    dtmf: str,
    duration: float,
    ring_timeout: float,
    also: bool = False,
    junit: str | None = None,
    answer_as: str | None = None,
    answer_password_env: str | None = None,
) -> None:
    """Load the site, test every selected softphone through its core, render, exit.

    ``also``: --register/--options were given too; they run from this
    machine and report differently, so the two are separate runs for now.
    """
    from qsipctl.cli.common import load_selected
    from qsipctl.qrc.viacore import run_via_core

    if also:
        raise UsageError("--via-core runs on its own: run --register/--options separately")
    _, cores = load_selected(site_path, limit, profile_dirs)
    if answer_password_env and not answer_as:
        raise UsageError("--answer-password-env applies with --answer-as")
    if answer_as and to_number:
        raise UsageError("--to does not apply with --answer-as: the core dials that account")
    if answer_as:
        to_number = "-"  # replaced by the --answer-as account's number when dialling
    targets = via_core_targets(cores, to_number, dtmf, duration, ring_timeout, timeout)
    if not targets:
        raise UsageError("no softphones selected (check --limit)")
    if answer_as:
        from qsipctl.cli.inbound_cmd import run_answer_as

        run_answer_as(site_path, profile_dirs, cores, targets, answer_as, answer_password_env,
                      timeout, fmt, junit)  # fmt: skip
        return
    results = run_via_core(targets, concurrency)
    if fmt == "json":
        from qsipctl.report.output import echo_json

        failed = sum(1 for r in results if not r.ok)
        total = len(results)
        echo_json({"results": results, "summary": {"total": total, "ok": total - failed,
                                                   "failed": failed}})  # fmt: skip
    else:
        click.echo(render_via_core(results))
    if junit:
        from qsipctl.report.diagnose_junit import via_core_cases, write_diagnose_junit

        write_diagnose_junit(junit, via_core_cases(results))
    if not all(r.ok for r in results):
        raise SystemExit(EXIT_FAILED)


def render_via_core(results: Sequence[ViaCoreResult]) -> str:
    """A table (one row per softphone), then each call's timeline and what QRC cannot tell."""
    from qsipctl.report.output import table

    rows = [
        (
            r.core,
            r.softphone,
            r.number or "",
            r.verdict,
            "" if r.setup_ms is None else f"{r.setup_ms:.0f} ms",
            r.message,
        )
        for r in results
    ]
    out = [table(rows, ["core", "softphone", "dialled", "verdict", "answered in", "details"])]
    for r in results:
        if r.transitions:
            steps = "  ".join(f"+{t.at_ms:.0f}ms {t.control}={t.value}" for t in r.transitions)
            out.append(f"{r.core} / {r.softphone}: {steps}")
    if results:
        out.append(f"not knowable over QRC: {results[0].not_knowable[0]}")
    return "\n".join(out)
