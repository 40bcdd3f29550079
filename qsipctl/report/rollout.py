"""Rollout results for people: provision's streamed lines, run table and recap,
``history`` (per core and ``--runs``) and ``drift`` tables.

Here rather than in ``cli/``: ``provision`` and ``demo`` print the same runs, and
the rules that fit a table into :data:`WIDTH` columns are one piece of text
handling that a unit test can hold on plain data.  Every function takes results
and returns a string; printing (and surviving a closed terminal) is the CLI's
job, and so is deciding whether to colour (``color``: a terminal without
``NO_COLOR``, :func:`qsipctl.report.output.use_color`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from qsipctl.report.output import table

if TYPE_CHECKING:
    from qsipctl.rollout.drift import DriftResult
    from qsipctl.rollout.results import CoreResult, RunResult
    from qsipctl.rollout.statedb import HistoryRow, RunSummary

WIDTH = 100  # tables and streamed lines fit this many columns unless --wide

# ANSI SGR foreground codes, the bytes click.style(fg=...) writes (with a reset).
_GREEN, _YELLOW, _RED, _CYAN = 32, 33, 31, 36
COLORS = {
    "ok": _GREEN,
    "in-sync": _GREEN,
    "finished": _GREEN,
    "changed": _YELLOW,
    "never-pushed": _RED,
    "unfinished": _RED,
    "failed": _RED,
    "unreachable": _RED,
    "drifted": _RED,
    "missing": _RED,
    "incomplete": _RED,
    "abandoned": _RED,
    "skipped": _CYAN,
    "pending": _CYAN,
    "interrupted": _CYAN,
    "running": _CYAN,
}
_PATH = re.compile(r"(?<![\w.~])/[^\s,;()'\"]+")
_RUN_COUNTS = ("ok", "changed", "failed", "unreachable", "skipped", "pending")


# -- fitting text into 100 columns ----------------------------------------------
def shorten_paths(text: str, limit: int = 40) -> str:
    """``/very/long/dir/core/softphone.json`` -> ``.../core/softphone.json``."""

    def short(match: re.Match[str]) -> str:
        path = match.group(0)
        if len(path) <= limit:
            return path
        tail = path.rstrip("/").rsplit("/", 2)[-2:]
        return ".../" + "/".join(tail)

    return _PATH.sub(short, text)


def clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 3, 1)] + "..."


def clip_left(text: str, width: int) -> str:
    """Keep the end, where a path or address tells cores apart."""
    return text if len(text) <= width else "..." + text[-max(width - 3, 1) :]


def paint(status: str, color: bool) -> str:
    """The status word in its colour (by its first word), or as is."""
    code = COLORS.get(status.split()[0] if status else status)
    return f"\x1b[{code}m{status}\x1b[0m" if code and color else status


def fit_table(
    rows: list[list[str]],
    headers: Sequence[str],
    wide: bool,
    paint_column: int = -1,
    *,
    color: bool = False,
) -> str:
    """A table no wider than :data:`WIDTH`: long paths shortened, then the last column
    (the reason) narrowed to no less than 30, then the widest other columns clipped
    from the left.  ``paint_column`` is coloured after fitting (tabulate does not
    count the colour codes)."""
    if not wide and rows:
        rows = [[shorten_paths(cell) for cell in row] for row in rows]
        widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]
        gaps = 2 * (len(headers) - 1)
        excess = sum(widths) + gaps - WIDTH
        if excess > 0:
            widths[-1] = max(widths[-1] - excess, min(widths[-1], 30), len(headers[-1]))
            excess = sum(widths) + gaps - WIDTH
        while excess > 0:
            widest = max(range(len(widths) - 1), key=lambda i: widths[i])
            floor = max(len(headers[widest]), 12)
            if widths[widest] <= floor:
                break
            widths[widest] = max(widths[widest] - excess, floor)
            excess = sum(widths) + gaps - WIDTH
        rows = [
            [clip_left(cell, widths[i]) for i, cell in enumerate(row[:-1])]
            + [clip(row[-1], widths[-1])]
            for row in rows
        ]
    if paint_column >= 0:
        p = paint_column
        rows = [[*row[:p], paint(row[p], color), *row[p + 1 :]] for row in rows]
    return table(rows, headers)


# -- provision ------------------------------------------------------------------
def stream_line(
    result: CoreResult, done: int, total: int, *, wide: bool = False, color: bool = False
) -> str:
    """``[3/40] changed: [core] reason``: one line per core as it finishes, as
    Ansible streams (CI logs); the counter is never clipped, the line after it is."""
    status = result.status.value
    reason = result.reason if wide else shorten_paths(result.reason)
    line = f"{status}: [{result.core}] {reason}"
    counter = f"[{done}/{total}] "
    if not wide:
        line = clip(line, WIDTH - len(counter))
    return counter + line.replace(status, paint(status, color), 1)


def render_run(
    run: RunResult,
    show_diff: bool = False,
    *,
    wide: bool = False,
    streamed: bool = False,
    color: bool = False,
) -> str:
    """A run for people: diffs, the table, the recap, then every core that failed
    or was unreachable with its whole reason (the table may have clipped it).
    ``streamed``: the per-core lines came first, so a blank line separates them."""
    lines: list[str] = []
    if show_diff:
        for r in run.results:
            if r.diff:
                lines += [f"--- diff for {r.core} ---", r.diff.rstrip("\n")]
    rows = [[r.core, r.status.value, r.host, r.reason] for r in run.results]
    if streamed and rows:
        lines.append("")
    headers = ["core", "status", "host", "reason"]
    lines.append(fit_table(rows, headers, wide, 1, color=color) if rows else "no cores selected")
    counts = "  ".join(f"{k}={v}" for k, v in run.recap().items())
    mode = " (check mode: nothing written)" if run.check else ""
    lines += ["", f"RECAP run {run.run_id}{mode}: {counts}"]
    lines += _problems(run, wide, color)
    if run.stopped:
        lines.append(f"stopped: {run.stopped}")
    if run.abandoned:
        lines.append("abandoned: cores in flight were given up (see their reasons)")
    elif run.interrupted:
        lines.append("interrupted: cores not yet started were skipped")
    return "\n".join(lines)


def _problems(run: RunResult, wide: bool, color: bool) -> list[str]:
    problems = [r for r in run.results if r.status.value in ("failed", "unreachable")]
    if not problems:
        return []
    lines = [f"failed or unreachable ({len(problems)}):"]
    for r in problems:
        reason = r.reason if wide else shorten_paths(r.reason)
        lines.append(f"  {r.core} ({paint(r.status.value, color)}): {reason}")
    return lines


def nothing_to_retry(site: str) -> str:
    """``--retry-failed`` when no selected core failed in its site's latest run."""
    return f"nothing to retry: no selected core failed in its latest run of {site}"


# -- history ----------------------------------------------------------------------
def render_history(
    rows: Sequence[HistoryRow], state_db: str, *, wide: bool = False, color: bool = False
) -> str:
    """One row per core per run, newest first; a run that never finished is marked."""
    if not rows:
        return f"no runs recorded in {state_db}"
    out = [
        [
            str(row.run_id) + ("" if row.complete else " (incomplete)"),
            row.started,
            row.core,
            row.status + (" (check)" if row.check else ""),
            row.reason,
        ]
        for row in rows
    ]
    headers = ["run", "started", "core", "status", "reason"]
    return fit_table(out, headers, wide, 3, color=color)


def render_history_runs(
    runs: Sequence[RunSummary], state_db: str, *, wide: bool = False, color: bool = False
) -> str:
    """``history --runs``: one line per run with its non-zero counts."""
    if not runs:
        return f"no runs recorded in {state_db}"
    rows = [
        [
            str(r.run_id),
            r.started,
            r.site + (" (check)" if r.check else ""),
            r.state,
            " ".join(f"{n}={r.counts[n]}" for n in _RUN_COUNTS if r.counts.get(n)),
            r.stopped or "",
        ]
        for r in runs
    ]
    headers = ["run", "started", "site", "state", "results", "note"]
    return fit_table(rows, headers, wide, 3, color=color)


# -- drift ------------------------------------------------------------------------
def render_drift(results: Sequence[DriftResult], *, wide: bool = False, color: bool = False) -> str:
    """One row per core; a site changed since the push is pending work, said so."""
    if not results:
        return "no cores"
    rows = [
        [
            r.core,
            r.state,
            r.host,
            r.reason + ("; site changed since (run provision)" if r.site_changed else ""),
        ]
        for r in results
    ]
    return fit_table(rows, ["core", "state", "host", "reason"], wide, 1, color=color)
