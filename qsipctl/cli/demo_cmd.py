"""``qsipctl demo``: the whole job on a built-in example, with nothing to set up.

A new user without cores or a PBX at hand sees every stage on real code
paths: the shipped two-site example is validated and rendered, provisioned
to *local* stand-in cores (directories) twice — ``changed``, then ``ok`` —
and two accounts are checked against the embedded lab registrar on
loopback (the register probe's binding query), one with a wrong password so
the failure verdict shows.  The demo
checks its own expectations and exits 1 if any stage did not behave.
"""

from __future__ import annotations

import asyncio
import shutil
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from qsipctl.cli.common import format_option
from qsipctl.errors import EXIT_FAILED, UsageError
from qsipctl.report.output import echo_json

if TYPE_CHECKING:
    from qsipctl.probes.base import ProbeOutcome
    from qsipctl.rollout.results import RunResult
    from qsipctl.site.model import Site

MARKER = ".qsipctl-demo"
EXAMPLE = "data/inventory/example-site.yml"
WRONG_PASSWORD = "not-the-password"


@dataclass
class DemoReport:
    """What each stage produced, and whether it was what the demo expects."""

    site: str
    workdir: str
    cores: int = 0
    softphones: int = 0
    warnings: list[str] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)
    probes: list[Any] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


@click.command()
@click.option(
    "--workdir",
    default="qsipctl-demo",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the stand-in cores and the history database go (emptied first).",
)
@format_option
def demo(workdir: Path, fmt: str) -> None:
    """Validate, render, provision (twice) and diagnose the built-in example.

    Example: qsipctl demo --workdir /tmp/qsipctl-demo
    """
    say = _Say(fmt == "table")
    site_path = Path(str(resources.files("qsipctl").joinpath(EXAMPLE)))
    report = DemoReport(site=str(site_path), workdir=str(workdir.resolve()))
    _prepare_workdir(workdir)
    site = _validate(site_path, report, say)
    _render(site, say)
    _provision(site, workdir, report, say)
    _diagnose(report, say)
    if fmt == "json":
        echo_json({**_as_dict(report), "ok": report.ok})
    else:
        _conclude(report)
    if not report.ok:
        raise SystemExit(EXIT_FAILED)


class _Say:
    """Human narration; silent in JSON mode so stdout stays one document."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def title(self, text: str) -> None:
        if self.enabled:
            click.echo("")
            click.echo(click.style(f"== {text}", bold=True) if _color() else f"== {text}")

    def __call__(self, text: str = "") -> None:
        if self.enabled:
            click.echo(text)


def _color() -> bool:
    from qsipctl.report.output import use_color

    return use_color()


def _prepare_workdir(workdir: Path) -> None:
    """Empty a previous demo's directory; refuse to touch anything else."""
    if workdir.exists():
        if not workdir.is_dir():
            raise UsageError(f"--workdir {workdir}: exists and is not a directory")
        if any(workdir.iterdir()) and not (workdir / MARKER).exists():
            raise UsageError(
                f"--workdir {workdir}: not empty and not made by qsipctl demo; "
                "choose another directory"
            )
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    (workdir / MARKER).write_text("made by qsipctl demo; safe to delete\n", encoding="utf-8")


def _validate(site_path: Path, report: DemoReport, say: _Say) -> Site:
    from qsipctl.errors import InvalidInput
    from qsipctl.site.load import check_site

    say.title(f"qsipctl validate {site_path}")
    site, diagnostics = check_site(site_path)
    report.warnings = [d.format() for d in diagnostics if d.severity == "warning"]
    for line in report.warnings:
        say(f"warning: {line}")
    errors = [d for d in diagnostics if d.severity == "error"]
    if site is None or errors:
        raise InvalidInput(errors)
    report.cores = len(site.cores)
    report.softphones = sum(len(c.softphones) for c in site.cores)
    say(f"valid: {report.cores} cores, {report.softphones} softphones, {len(site.groups)} groups")
    return site


def _render(site: Site, say: _Say) -> None:
    if not say.enabled:
        return
    from qsipctl.cli.site_cmds import print_sheets
    from qsipctl.site.render import render_core

    core = max(site.cores, key=lambda c: len(c.softphones))
    say.title(f"qsipctl render {site.path} --sheet --limit {core.name}")
    print_sheets([render_core(core)], show_secrets=False, fmt="table")


def _provision(site: Site, workdir: Path, report: DemoReport, say: _Say) -> None:
    from qsipctl.cli.rollout_cmds import print_run, render_all
    from qsipctl.rollout.connectors.local import local_copy
    from qsipctl.rollout.engine import Engine, RolloutOptions
    from qsipctl.rollout.statedb import StateDb

    rendered = render_all([local_copy(c, workdir / "cores") for c in site.cores])
    db = StateDb(workdir / "state.db")
    for attempt, expected in ((1, "changed"), (2, "ok")):
        say.title(
            f"provision to local stand-in cores (run {attempt}: every core should be {expected})"
        )
        run = Engine(RolloutOptions(), fingerprint=db.fingerprinter()).run(report.site, rendered)
        db.record(run, {"demo": True})
        if say.enabled:
            print_run(run, show_diff=False)
        report.runs.append(run.as_json())
        _expect_all(run, expected, report)
    say(f"\nstand-in cores: {workdir / 'cores'}  history: {workdir / 'state.db'}")


def _expect_all(run: RunResult, expected: str, report: DemoReport) -> None:
    wrong = [f"{r.core}={r.status.value}" for r in run.results if r.status.value != expected]
    if wrong:
        report.problems.append(
            f"provision: expected every core {expected}, got " + ", ".join(wrong)
        )


def _diagnose(report: DemoReport, say: _Say) -> None:
    from qsipctl.report.probes import render_probe_table

    say.title("qsipctl probe register: two lab accounts, one with a wrong password")
    outcomes = asyncio.run(_register_against_lab())
    report.probes = [o.result for o in outcomes]
    if say.enabled:
        click.echo(render_probe_table(outcomes))
    good, bad = (o.result for o in outcomes)
    if not good.ok:
        report.problems.append(f"register 1001: expected ok, got {good.message}")
    if bad.ok or bad.verdict != "wrong-password":
        report.problems.append(f"register 1002: expected wrong-password, got {bad.verdict}")


async def _register_against_lab() -> list[ProbeOutcome]:
    from qsipctl.lab.registrar import DEMO_ACCOUNTS
    from qsipctl.lab.server import LabRegistrar
    from qsipctl.probes.runner import run_probes_async
    from qsipctl.probes.target import adhoc_target
    from qsipctl.site.secrets import Secret

    right, wrong = DEMO_ACCOUNTS[0], DEMO_ACCOUNTS[1]
    async with LabRegistrar() as lab:
        jobs = [
            ("register", _target(adhoc_target, Secret.parse(right.password), right.username, lab)),
            ("register", _target(adhoc_target, Secret.parse(WRONG_PASSWORD), wrong.username, lab)),
        ]
        return await run_probes_async(jobs, concurrency=2)


def _target(make: Any, password: Any, user: str, lab: Any) -> Any:
    return make(
        f"sip:{user}@127.0.0.1:{lab.udp_port}", transport="udp", password=password, timeout=3.0
    )


def _as_dict(report: DemoReport) -> dict[str, Any]:
    return {
        "site": report.site,
        "workdir": report.workdir,
        "cores": report.cores,
        "softphones": report.softphones,
        "warnings": report.warnings,
        "provision_runs": report.runs,
        "register_probes": report.probes,
        "problems": report.problems,
    }


def _conclude(report: DemoReport) -> None:
    click.echo("")
    if report.ok:
        click.echo(
            "demo ok: the example site validated, provisioned (changed, then ok), and the lab "
            "accepted one account and showed one wrong-password verdict."
        )
        click.echo("Next: qsipctl validate YOUR-SITE.yml  (see docs/README.md)")
        return
    for problem in report.problems:
        click.echo(f"demo problem: {problem}", err=True)
