"""provision/history/drift rendering on plain data: the text people read, byte for byte."""

from __future__ import annotations

from typing import Any

from qsipctl.report.rollout import (
    WIDTH,
    fit_table,
    nothing_to_retry,
    paint,
    render_drift,
    render_history,
    render_history_runs,
    render_run,
    stream_line,
)
from qsipctl.rollout.drift import DriftResult
from qsipctl.rollout.results import CoreResult, RunResult, Status
from qsipctl.rollout.statedb import HistoryRow, RunSummary

LONG = "/srv/qsipctl/lab/a-directory-with-a-long-name/core7/softphone.json"  # 67 characters
RED, GREEN, YELLOW = "\x1b[31m", "\x1b[32m", "\x1b[33m"
RESET = "\x1b[0m"


def core(name: str, status: Status, reason: str = "", diff: str | None = None) -> CoreResult:
    return CoreResult(
        core=name, host=f"local:{name}", status=status, reason=reason, fingerprint="f", diff=diff
    )


def run(*results: CoreResult, check: bool = False, **fields: Any) -> RunResult:
    return RunResult(site="lab", check=check, started="t0", run_id=4, results=[*results], **fields)


def visible(text: str) -> str:
    return text.replace(RED, "").replace(GREEN, "").replace(YELLOW, "").replace(RESET, "")


# -- streamed lines ---------------------------------------------------------------
def test_stream_line_counter_status_core_reason() -> None:
    line = stream_line(core("a", Status.CHANGED, "created x"), 2, 10)
    assert line == "[2/10] changed: [a] created x"


def test_stream_line_shortens_paths_and_clips_after_the_counter() -> None:
    line = stream_line(core("a", Status.FAILED, f"cannot write {LONG}; " + "x" * 200), 1, 3)
    assert line.startswith("[1/3] failed: [a] cannot write .../core7/softphone.json; xxx")
    assert line.endswith("...") and len(line) == WIDTH


def test_stream_line_wide_keeps_everything() -> None:
    reason = f"cannot write {LONG}; " + "x" * 200
    line = stream_line(core("a", Status.FAILED, reason), 1, 3, wide=True)
    assert line == f"[1/3] failed: [a] {reason}"


def test_stream_line_colours_only_the_status_word() -> None:
    line = stream_line(core("ok-room", Status.OK, "up to date: ok"), 1, 1, color=True)
    assert line == f"[1/1] {GREEN}ok{RESET}: [ok-room] up to date: ok"


# -- colour ------------------------------------------------------------------------
def test_paint_by_first_word_and_never_without_color() -> None:
    assert paint("failed (check)", True) == f"{RED}failed (check){RESET}"
    assert paint("failed", False) == "failed"
    assert paint("weird", True) == "weird"
    assert paint("", True) == ""


# -- the run ----------------------------------------------------------------------
def test_run_table_recap_and_problems_in_full() -> None:
    text = render_run(
        run(
            core("a", Status.CHANGED, "created f"),
            core("b", Status.UNREACHABLE, f"no route to {LONG}"),
        )
    )
    assert text == (
        "core    status       host     reason\n"
        "------  -----------  -------  ------------------------------------\n"
        "a       changed      local:a  created f\n"
        "b       unreachable  local:b  no route to .../core7/softphone.json\n"
        "\n"
        "RECAP run 4: ok=0  changed=1  unreachable=1  failed=0  skipped=0\n"
        "failed or unreachable (1):\n"
        "  b (unreachable): no route to .../core7/softphone.json"
    )


def test_run_wide_keeps_paths_and_streamed_starts_with_a_blank_line() -> None:
    text = render_run(run(core("b", Status.FAILED, f"no {LONG}")), wide=True, streamed=True)
    assert text.startswith("\ncore")
    assert text.endswith(f"  b (failed): no {LONG}")
    assert text.count(LONG) == 2  # in the table and in the list of problems


def test_run_diffs_first_check_mode_and_why_it_stopped() -> None:
    r = run(
        core("a", Status.CHANGED, "would create f", diff="--- old\n+++ new\n+x\n"),
        core("b", Status.SKIPPED, "not started"),
        check=True,
        stopped="batch 1: 100% failed > 0%",
        interrupted=True,
    )
    lines = render_run(r, show_diff=True).split("\n")
    assert lines[:4] == ["--- diff for a ---", "--- old", "+++ new", "+x"]
    assert lines[4].startswith("core    status ")
    assert "RECAP run 4 (check mode: nothing written): ok=0  changed=1" in lines[-3]
    assert lines[-2:] == [
        "stopped: batch 1: 100% failed > 0%",
        "interrupted: cores not yet started were skipped",
    ]
    assert "--- diff" not in render_run(r)  # only with --diff


def test_run_abandoned_is_said_instead_of_interrupted() -> None:
    text = render_run(run(interrupted=True, abandoned=True))
    assert text == (
        "no cores selected\n\n"
        "RECAP run 4: ok=0  changed=0  unreachable=0  failed=0  skipped=0\n"
        "abandoned: cores in flight were given up (see their reasons)"
    )


def test_run_colours_the_status_column_and_the_problem_list() -> None:
    text = render_run(run(core("a", Status.FAILED, "boom")), color=True)
    assert f"a       {RED}failed{RESET}    local:a  boom" in text
    assert f"  a ({RED}failed{RESET}): boom" in text


def test_nothing_to_retry_names_the_site() -> None:
    assert (
        nothing_to_retry("lab")
        == "nothing to retry: no selected core failed in its latest run of lab"
    )


# -- fitting ------------------------------------------------------------------------
def test_coloured_tables_fit_by_their_visible_width() -> None:
    rows = [["c" * 60, "unreachable", "local:" + "d" * 60, "r" * 300]]
    text = fit_table(rows, ["core", "status", "host", "reason"], False, 1, color=True)
    assert f"{RED}unreachable{RESET}" in text
    assert max(len(visible(line)) for line in text.splitlines()) <= WIDTH


# -- history ------------------------------------------------------------------------
def history_row(
    run_id: int, core_name: str, status: str, check: bool, complete: bool
) -> HistoryRow:
    return HistoryRow(
        run_id=run_id,
        site="lab",
        check=check,
        core=core_name,
        host="h",
        status=status,
        reason="why",
        fingerprint="f",
        previous_fingerprint=None,
        started="2026-12-06T16:00:00Z",
        duration_ms=5,
        complete=complete,
    )


def test_history_marks_incomplete_runs_and_check_mode() -> None:
    rows = [history_row(9, "a", "pending", False, False), history_row(8, "b", "ok", True, True)]
    assert render_history(rows, "/state.db") == (
        "run             started               core    status      reason\n"
        "--------------  --------------------  ------  ----------  --------\n"
        "9 (incomplete)  2026-12-06T16:00:00Z  a       pending     why\n"
        "8               2026-12-06T16:00:00Z  b       ok (check)  why"
    )


def test_history_empty_says_which_database() -> None:
    assert render_history([], "/x/state.db") == "no runs recorded in /x/state.db"
    assert render_history_runs([], "/x/state.db") == "no runs recorded in /x/state.db"


def test_history_runs_lists_only_non_zero_counts_in_a_fixed_order() -> None:
    summary = RunSummary(
        run_id=3,
        site="lab",
        site_path="/lab.yml",
        check=True,
        started="s",
        finished=None,
        state="interrupted",
        stopped="signal",
        counts={"skipped": 2, "ok": 1, "failed": 0},
    )
    assert render_history_runs([summary], "/db") == (
        "run    started    site         state        results         note\n"
        "-----  ---------  -----------  -----------  --------------  ------\n"
        "3      s          lab (check)  interrupted  ok=1 skipped=2  signal"
    )


# -- drift --------------------------------------------------------------------------
def drift_result(name: str, state: str, rendered: str | None) -> DriftResult:
    return DriftResult(
        core=name,
        host="h",
        state=state,
        reason="live matches" if state == "in-sync" else "live differs",
        pushed_fingerprint="p",
        live_fingerprint="p",
        rendered_fingerprint=rendered,
        pushed_run=1,
    )


def test_drift_says_when_the_site_changed_since_the_push() -> None:
    results = [drift_result("a", "in-sync", "p"), drift_result("b", "drifted", "new")]
    assert render_drift(results) == (
        "core    state    host    reason\n"
        "------  -------  ------  ------------------------------------------------\n"
        "a       in-sync  h       live matches\n"
        "b       drifted  h       live differs; site changed since (run provision)"
    )
    assert render_drift([]) == "no cores"
