"""provision, history, drift: the commands that touch cores (docs/provisioning.md)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from qsipctl.cli.common import (
    format_option,
    limit_option,
    load_selected,
    profiles_dir_option,
    site_argument,
)
from qsipctl.errors import Diagnostic, InvalidInput, UsageError
from qsipctl.report.output import echo_json, table, use_color

if TYPE_CHECKING:
    from qsipctl.rollout.results import CoreResult, RunResult
    from qsipctl.site.model import Core
    from qsipctl.site.render import RenderedConfig

RETRY_STATUSES = ("failed", "unreachable", "skipped")
_COLORS = {
    "ok": "green",
    "in-sync": "green",
    "changed": "yellow",
    "never-pushed": "yellow",
    "failed": "red",
    "unreachable": "red",
    "drifted": "red",
    "missing": "red",
    "skipped": "cyan",
}


def state_db_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--state-db",
        metavar="PATH",
        default=None,
        type=click.Path(dir_okay=False, path_type=str),
        help="History database (default: $XDG_STATE_HOME/qsipctl/state.db).",
    )(func)


def forks_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--forks",
        "-f",
        type=click.IntRange(min=1, max=1000),
        default=10,
        show_default=True,
        help="Cores worked on in parallel.",
    )(func)


def connection_options(func: Callable[..., Any]) -> Callable[..., Any]:
    func = click.option(
        "--timeout",
        type=click.FloatRange(min=0.1),
        default=None,
        metavar="SECONDS",
        help="Per-core network timeout (overrides qsipctl_timeout).",
    )(func)
    return click.option(
        "--accept-new-host-keys",
        is_flag=True,
        help="Record unknown host keys in known_hosts (a changed key is always refused).",
    )(func)


def site_key(site_path: str) -> str:
    """How the state db names a site: its absolute path."""
    return str(Path(site_path).resolve())


def render_all(cores: Sequence[Core]) -> list[RenderedConfig]:
    """Render every core first, so bad input stops the run before any core is touched."""
    from qsipctl.site.render import render_core

    rendered: list[RenderedConfig] = []
    problems: list[Diagnostic] = []
    for core in cores:
        try:
            rendered.append(render_core(core))
        except InvalidInput as exc:
            problems.extend(exc.diagnostics)
    if problems:
        raise InvalidInput(problems)
    return rendered


def _paint(status: str) -> str:
    color = _COLORS.get(status)
    return click.style(status, fg=color) if color and use_color() else status


class Progress:
    """A progress bar on stderr, only when stderr is a terminal (never in pipes or logs)."""

    WIDTH = 24

    def __init__(self, total: int, enabled: bool) -> None:
        self.total = total
        self.done = 0
        self.enabled = enabled and sys.stderr.isatty()

    def __call__(self, result: CoreResult) -> None:
        self.done += 1
        if self.enabled:
            filled = self.WIDTH * self.done // max(self.total, 1)
            bar = "#" * filled + "-" * (self.WIDTH - filled)
            line = f"[{bar}] {self.done}/{self.total} {result.core}: {result.status.value}"
            click.echo(f"\r\x1b[2K{line}", nl=False, err=True)

    def clear(self) -> None:
        if self.enabled and self.done:
            click.echo("\r\x1b[2K", nl=False, err=True)


@click.command()
@site_argument
@limit_option
@profiles_dir_option
@click.option("--check", is_flag=True, help="Change nothing; report what would change.")
@click.option("--diff", is_flag=True, help="Show a unified diff per core (secrets masked).")
@forks_option
@click.option("--serial", metavar="N|N%", default=None, help="Roll out in batches of N cores.")
@click.option(
    "--max-fail-percent",
    type=click.FloatRange(0, 100),
    default=None,
    metavar="P",
    help="Stop before the next batch when more than P% of a batch failed.",
)
@connection_options
@click.option(
    "--retry-failed",
    is_flag=True,
    help="Only cores whose latest run of this site failed, was unreachable or skipped.",
)
@state_db_option
@format_option
@click.pass_context
def provision(
    ctx: click.Context,
    site_path: str,
    limit: str | None,
    profile_dirs: tuple[str, ...],
    check: bool,
    diff: bool,
    forks: int,
    serial: str | None,
    max_fail_percent: float | None,
    timeout: float | None,
    accept_new_host_keys: bool,
    retry_failed: bool,
    state_db: str | None,
    fmt: str,
) -> None:
    """Push each core's softphone configuration, safely and in parallel.

    Per core: ok (already up to date, nothing written), changed (written,
    verified, applied), failed (rolled back where anything was written) or
    unreachable.  Exit 0 when every core is ok/changed, 1 when any failed,
    was unreachable or was skipped by a stop, 2 on invalid input, 130 on
    Ctrl-C.
    """
    from qsipctl.rollout.engine import Engine, RolloutOptions, batch_sizes
    from qsipctl.rollout.errors import StateDbError
    from qsipctl.rollout.statedb import StateDb

    if serial is not None:
        batch_sizes(1, serial)  # validate before touching anything
    _, cores = load_selected(site_path, limit, profile_dirs)
    key = site_key(site_path)
    db = StateDb(state_db)
    if retry_failed:
        cores = _retry_selection(db, key, site_path, cores)
        if not cores:
            _nothing_to_retry(site_path, fmt)
            return
    rendered = render_all(cores)
    db.check()
    options = RolloutOptions(
        forks=forks,
        serial=serial,
        max_fail_percent=max_fail_percent,
        check=check,
        diff=diff,
        accept_new_host_keys=accept_new_host_keys,
        timeout=timeout,
    )
    progress = Progress(len(rendered), enabled=fmt == "table")
    engine = Engine(options, on_result=progress)
    try:
        run = engine.run(key, rendered)
    finally:
        progress.clear()
    recorded = {"limit": limit, "retry_failed": retry_failed, **vars(options)}
    try:
        db.record(run, recorded)
    except StateDbError as exc:  # the cores are done: still show what happened
        click.echo(f"qsipctl: warning: run not recorded: {exc}", err=True)
    if fmt == "json":
        echo_json(run.as_json())
    else:
        print_run(run, diff)
    ctx.exit(run.exit_code)


def _retry_selection(db: Any, key: str, site_path: str, cores: list[Core]) -> list[Core]:
    statuses = db.last_run_statuses(key)
    if statuses is None:
        raise UsageError(f"--retry-failed: no earlier run of {site_path} in {db.path}")
    return [c for c in cores if statuses.get(c.name) in RETRY_STATUSES]


def _nothing_to_retry(site_path: str, fmt: str) -> None:
    """Not recorded as a run, so the failures stay retryable if the selection changes."""
    if fmt == "json":
        from qsipctl.rollout.engine import iso, utc_now
        from qsipctl.rollout.results import RunResult

        now = iso(utc_now())
        run = RunResult(site=site_key(site_path), check=False, started=now, finished=now)
        echo_json(run.as_json())
    else:
        click.echo(f"nothing to retry: no selected core failed in its latest run of {site_path}")


def print_run(run: RunResult, show_diff: bool = False) -> None:
    """The human rendering of a run (also used by ``qsipctl demo``)."""
    if show_diff:
        for r in run.results:
            if r.diff:
                click.echo(f"--- diff for {r.core} ---")
                click.echo(r.diff, nl=False)
    rows = [(r.core, _paint(r.status.value), r.host, r.reason) for r in run.results]
    if rows:
        click.echo(table(rows, ["core", "status", "host", "reason"]))
    else:
        click.echo("no cores selected")
    recap = run.recap()
    mode = " (check mode: nothing written)" if run.check else ""
    click.echo("")
    click.echo(f"RECAP run {run.run_id}{mode}: " + "  ".join(f"{k}={v}" for k, v in recap.items()))
    if run.stopped:
        click.echo(f"stopped: {run.stopped}")
    if run.interrupted:
        click.echo("interrupted: cores not yet started were skipped")


@click.command()
@click.argument("site_path", metavar="[SITE.yml]", required=False, type=click.Path(dir_okay=False))
@limit_option
@profiles_dir_option
@click.option(
    "--last",
    type=click.IntRange(min=1),
    default=10,
    show_default=True,
    help="Show this many most recent runs.",
)
@state_db_option
@format_option
def history(
    site_path: str | None,
    limit: str | None,
    profile_dirs: tuple[str, ...],
    last: int,
    state_db: str | None,
    fmt: str,
) -> None:
    """List past provisioning runs, newest first (one row per core).

    With SITE.yml only that site's runs are shown and --limit takes the
    usual patterns; without it --limit matches core names (globs, a:b, !a).
    """
    from qsipctl.rollout.statedb import StateDb

    db = StateDb(state_db)
    rows = db.history(site_key(site_path) if site_path else None, last)
    keep = _history_filter(site_path, limit, profile_dirs)
    rows = [row for row in rows if keep(row.core)]
    if fmt == "json":
        echo_json({"schema": "qsipctl.history/1", "state_db": str(db.path), "entries": rows})
        return
    if not rows:
        click.echo(f"no runs recorded in {db.path}")
        return
    out = [
        (
            row.run_id,
            row.started,
            row.core,
            _paint(row.status) + (" (check)" if row.check else ""),
            row.sha256[:12],
            row.reason,
        )
        for row in rows
    ]
    click.echo(table(out, ["run", "started", "core", "status", "sha256", "reason"]))


def _history_filter(
    site_path: str | None, limit: str | None, profile_dirs: Sequence[str]
) -> Callable[[str], bool]:
    if limit is None:
        return lambda name: True
    if site_path is not None:
        _, cores = load_selected(site_path, limit, profile_dirs, check_secrets=False)
        names = {c.name for c in cores}
        return lambda name: name in names
    from fnmatch import fnmatchcase

    from qsipctl.site.patterns import split_pattern

    terms = split_pattern(limit)

    def keep(name: str) -> bool:
        included = any(fnmatchcase(name, t) for t in terms if t[:1] not in "!&")
        if not any(t[:1] not in "!&" for t in terms):
            included = True
        excluded = any(fnmatchcase(name, t[1:]) for t in terms if t.startswith("!"))
        required = all(fnmatchcase(name, t[1:]) for t in terms if t.startswith("&"))
        return included and required and not excluded

    return keep


@click.command()
@site_argument
@limit_option
@profiles_dir_option
@forks_option
@connection_options
@state_db_option
@format_option
@click.pass_context
def drift(
    ctx: click.Context,
    site_path: str,
    limit: str | None,
    profile_dirs: tuple[str, ...],
    forks: int,
    timeout: float | None,
    accept_new_host_keys: bool,
    state_db: str | None,
    fmt: str,
) -> None:
    """Report cores whose live config no longer matches what was pushed.

    States: in-sync, drifted, missing, never-pushed, unreachable.  Exit 1
    when any core is drifted, missing or unreachable.
    """
    from qsipctl.rollout.connectors import ConnectorContext
    from qsipctl.rollout.drift import PROBLEM_STATES, SCHEMA, check_drift
    from qsipctl.rollout.statedb import StateDb
    from qsipctl.site.render import render_core

    _, cores = load_selected(site_path, limit, profile_dirs, check_secrets=False)
    key = site_key(site_path)
    db = StateDb(state_db)
    pushed = db.last_pushed(key, [c.name for c in cores])
    rendered: dict[str, str | None] = {}
    for core in cores:
        try:
            rendered[core.name] = render_core(core).sha256
        except InvalidInput:
            rendered[core.name] = None
    context = ConnectorContext(accept_new_host_keys=accept_new_host_keys, timeout=timeout)
    results = check_drift(cores, pushed, rendered, forks=forks, context=context)
    if fmt == "json":
        echo_json({"schema": SCHEMA, "site": key, "results": [r.as_json() for r in results]})
    else:
        rows = [
            (
                r.core,
                _paint(r.state),
                r.host,
                r.reason + ("; site changed since (run provision)" if r.site_changed else ""),
            )
            for r in results
        ]
        click.echo(table(rows, ["core", "state", "host", "reason"]) if rows else "no cores")
    if any(r.state in PROBLEM_STATES for r in results):
        ctx.exit(1)
