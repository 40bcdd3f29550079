"""provision, history, drift: the commands that touch cores (docs/provisioning.md).

These only parse options, handle signals and print; the provisioning flow is
:mod:`qsipctl.rollout.provision`, the text printed is :mod:`qsipctl.report.rollout`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import click

from qsipctl.cli.common import (
    format_option,
    limit_option,
    load_selected,
    profiles_dir_option,
    site_argument,
)
from qsipctl.errors import InvalidInput
from qsipctl.report.output import echo_json, use_color
from qsipctl.report.rollout import (
    WIDTH,
    nothing_to_retry,
    render_drift,
    render_history,
    render_history_runs,
    render_run,
    stream_line,
)

if TYPE_CHECKING:
    from qsipctl.rollout.provision import Provision
    from qsipctl.rollout.results import CoreResult, RunResult
    from qsipctl.site.model import Core
    from qsipctl.site.render import RenderedConfig


def render_all(cores: Sequence[Core]) -> list[RenderedConfig]:
    """Kept for ``qsipctl demo``: see :func:`qsipctl.rollout.provision.render_all`."""
    from qsipctl.rollout.provision import render_all as render

    return render(cores)


# -- options shared by the three commands -------------------------------------
def state_db_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--state-db",
        metavar="PATH",
        default=None,
        type=click.Path(dir_okay=False, path_type=str),
        help="History database (default: $XDG_STATE_HOME/qsipctl/state.db).",
    )(func)


def site_id_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--site-id",
        metavar="NAME",
        default=None,
        help="The site's name in the history (default: the site file's name without .yml).",
    )(func)


def wide_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--wide", is_flag=True, help=f"Do not shorten paths and reasons to {WIDTH} columns."
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


def _say(text: str, err: bool = False) -> None:
    """Print, surviving a closed terminal (SIGHUP) or a closed pipe."""
    with contextlib.suppress(OSError, ValueError):
        click.echo(text, err=err)


# -- provision ----------------------------------------------------------------
class Streamer:
    """One line per core the moment it finishes, as Ansible streams (CI logs)."""

    def __init__(self, total: int, wide: bool) -> None:
        self.total = total
        self.done = 0
        self.wide = wide

    def __call__(self, result: CoreResult) -> None:
        self.done += 1
        _say(stream_line(result, self.done, self.total, wide=self.wide, color=use_color()))


@contextlib.contextmanager
def interrupts(run: Provision) -> Iterator[None]:
    """Ctrl-C, SIGTERM (a cancelled CI job) and SIGHUP (the terminal closed): the
    first stops new cores and waits for those in flight; the second abandons them."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        if not run.stop.is_set():
            run.stop.set()
            n = run.in_flight()
            if n:
                cores = "core" if n == 1 else "cores"
                _say(f"waiting for {n} {cores} in flight; Ctrl-C again to abandon them", err=True)
        elif not run.abandon.is_set():
            run.abandon.set()
            _say(f"abandoning {run.in_flight()} in flight", err=True)

    watched = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {signum: signal.signal(signum, handler) for signum in watched}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


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
    help="Only cores whose latest run of this site failed, was unreachable, skipped"
    " or never finished (a killed run).",
)
@click.option(
    "--break-stale-locks",
    is_flag=True,
    help="Remove core locks left by a killed run of this machine (its process is gone).",
)
@click.option(
    "--break-lock",
    "break_lock",
    multiple=True,
    metavar="TOKEN",
    help="Remove core locks held by the run with this token (it is dead; repeatable).",
)
@click.option(
    "--junit",
    "junit",
    metavar="FILE",
    type=click.Path(dir_okay=False, path_type=str),
    default=None,
    help="Also write a JUnit XML report (one test case per core).",
)
@site_id_option
@state_db_option
@wide_option
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
    break_stale_locks: bool,
    break_lock: tuple[str, ...],
    junit: str | None,
    site_id: str | None,
    state_db: str | None,
    wide: bool,
    fmt: str,
) -> None:
    """Push each core's softphone configuration, safely and in parallel.

    Per core: ok (already up to date, nothing written), changed (written,
    verified, applied), failed (rolled back where anything was written) or
    unreachable.  Exit 0 when every core is ok/changed, 1 when any failed,
    was unreachable or was skipped by a stop, 2 on invalid input, 130 when
    interrupted (Ctrl-C, SIGTERM, SIGHUP) before every core finished.
    """
    from qsipctl.rollout.corelock import LockPolicy
    from qsipctl.rollout.engine import RolloutOptions, parse_serial
    from qsipctl.rollout.identity import site_identity
    from qsipctl.rollout.provision import Provision, ProvisionRequest

    if serial is not None:
        parse_serial(serial)  # a usage error before the site is even read
    key = site_identity(site_path, site_id)
    _, cores = load_selected(site_path, limit, profile_dirs)
    options = RolloutOptions(
        forks=forks,
        serial=serial,
        max_fail_percent=max_fail_percent,
        check=check,
        diff=diff,
        accept_new_host_keys=accept_new_host_keys,
        timeout=timeout,
    )
    request = ProvisionRequest(
        site_path=site_path,
        site_id=key,
        cores=cores,
        options=options,
        retry_failed=retry_failed,
        limit=limit,
        state_db=state_db,
        locks=LockPolicy(break_stale_locks, frozenset(break_lock)),
    )
    streamer = Streamer(len(cores), wide) if fmt == "table" else None
    run = Provision(
        request,
        on_result=streamer,
        on_warning=lambda text: _say(f"qsipctl: warning: {text}", err=True),
    )
    if streamer is not None:
        streamer.total = len(run.selection()) if retry_failed else len(cores)
    with interrupts(run):
        result = run.run()
    if result is None:
        _nothing_to_retry(site_path, key, fmt, junit)
        return
    if junit:
        _write_junit(junit, result)
    if fmt == "json":
        with contextlib.suppress(OSError, ValueError):  # the terminal may be gone (SIGHUP)
            echo_json(result.as_json())
    else:
        print_run(result, diff, wide=wide, streamed=True)
    if result.abandoned:  # worker threads may still be blocked on a core: do not wait
        with contextlib.suppress(OSError, ValueError):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(result.exit_code)
    ctx.exit(result.exit_code)


def _nothing_to_retry(site_path: str, key: str, fmt: str, junit: str | None) -> None:
    """Not recorded as a run, so the failures stay retryable if the selection changes."""
    from qsipctl.rollout.engine import iso, utc_now
    from qsipctl.rollout.results import RunResult

    now = iso(utc_now())
    run = RunResult(site=key, check=False, started=now, finished=now, site_path=site_path)
    if junit:
        _write_junit(junit, run)
    if fmt == "json":
        echo_json(run.as_json())
    else:
        click.echo(nothing_to_retry(key))


def _write_junit(path: str, run: RunResult) -> None:
    from qsipctl.errors import UsageError
    from qsipctl.report.junit import JUnitCase, write_junit

    outcome = {"ok": "ok", "changed": "ok", "skipped": "skipped"}
    cases = [
        JUnitCase(
            name=r.core,
            classname=f"qsipctl.provision.{run.site}",
            outcome=outcome.get(r.status.value, "failed"),  # type: ignore[arg-type]
            message=f"{r.status.value}: {r.reason}",
            duration=r.duration_ms / 1000,
            kind=r.status.value,
        )
        for r in run.results
    ]
    try:
        write_junit(path, f"qsipctl provision {run.site}", cases, run.started)
    except OSError as exc:
        raise UsageError(f"--junit {path}: {exc.strerror or exc}") from None


def print_run(
    run: RunResult, show_diff: bool = False, *, wide: bool = False, streamed: bool = False
) -> None:
    """Print a run for people (also used by ``qsipctl demo``):
    :func:`qsipctl.report.rollout.render_run`."""
    _say(render_run(run, show_diff, wide=wide, streamed=streamed, color=use_color()))


# -- history --------------------------------------------------------------------
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
@click.option("--runs", "per_run", is_flag=True, help="One summary line per run.")
@site_id_option
@state_db_option
@wide_option
@format_option
def history(
    site_path: str | None,
    limit: str | None,
    profile_dirs: tuple[str, ...],
    last: int,
    per_run: bool,
    site_id: str | None,
    state_db: str | None,
    wide: bool,
    fmt: str,
) -> None:
    """List past provisioning runs, newest first (one row per core, or --runs).

    With SITE.yml (or --site-id) only that site's runs are shown and --limit
    takes the usual patterns; without it --limit matches core names (globs,
    a:b, !a).  A run that never finished (killed) is marked incomplete.
    """
    from qsipctl.rollout.identity import site_identity
    from qsipctl.rollout.statedb import StateDb

    db = StateDb(state_db)
    key = None
    if site_path is not None or site_id is not None:
        key = site_identity(site_path or "", site_id)
    if per_run:
        _history_runs(db, key, last, wide, fmt)
        return
    rows = db.history(key, last)
    keep = _history_filter(site_path, limit, profile_dirs)
    rows = [row for row in rows if keep(row.core)]
    if fmt == "json":
        echo_json({"schema": "qsipctl.history/2", "state_db": str(db.path), "entries": rows})
        return
    click.echo(render_history(rows, str(db.path), wide=wide, color=use_color()))


def _history_runs(db: Any, key: str | None, last: int, wide: bool, fmt: str) -> None:
    runs = db.runs(key, last)
    if fmt == "json":
        echo_json({"schema": "qsipctl.history-runs/1", "state_db": str(db.path), "runs": runs})
        return
    click.echo(render_history_runs(runs, str(db.path), wide=wide, color=use_color()))


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


# -- drift ----------------------------------------------------------------------
@click.command()
@site_argument
@limit_option
@profiles_dir_option
@forks_option
@connection_options
@site_id_option
@state_db_option
@wide_option
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
    site_id: str | None,
    state_db: str | None,
    wide: bool,
    fmt: str,
) -> None:
    """Report cores whose live config no longer matches what was pushed.

    States: in-sync, drifted, missing, never-pushed, unfinished (a killed
    run's document), unreachable.  Exit 1 unless every core is in-sync.
    """
    from qsipctl.rollout.connectors import ConnectorContext
    from qsipctl.rollout.drift import PROBLEM_STATES, SCHEMA, check_drift
    from qsipctl.rollout.identity import site_identity
    from qsipctl.rollout.statedb import StateDb
    from qsipctl.site.render import render_core

    key = site_identity(site_path, site_id)
    _, cores = load_selected(site_path, limit, profile_dirs, check_secrets=False)
    db = StateDb(state_db)
    pushed = db.last_pushed(key, [c.name for c in cores])
    fingerprint = db.fingerprinter(create=False)
    rendered: dict[str, str | None] = {}
    for core in cores:
        try:
            rendered[core.name] = fingerprint(render_core(core).document)
        except InvalidInput:
            rendered[core.name] = None
    context = ConnectorContext(accept_new_host_keys=accept_new_host_keys, timeout=timeout)
    results = check_drift(cores, pushed, rendered, fingerprint, forks=forks, context=context)
    if fmt == "json":
        echo_json({"schema": SCHEMA, "site": key, "results": [r.as_json() for r in results]})
    else:
        click.echo(render_drift(results, wide=wide, color=use_color()))
    if any(r.state in PROBLEM_STATES for r in results):
        ctx.exit(1)
