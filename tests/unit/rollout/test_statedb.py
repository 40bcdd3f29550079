from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from qsipctl.rollout.errors import StateDbError
from qsipctl.rollout.results import CoreResult, RunResult, Status
from qsipctl.rollout.statedb import StateDb, default_path


def run(site: str, check: bool, **statuses: Status) -> RunResult:
    results = [
        CoreResult(core=c, host="h", status=s, reason=f"{c} {s}", sha256=f"sha-{c}")
        for c, s in statuses.items()
    ]
    return RunResult(site=site, check=check, started="t0", finished="t1", results=results)


def test_default_path_follows_xdg(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert default_path() == tmp_path / "qsipctl" / "state.db"
    monkeypatch.delenv("XDG_STATE_HOME")
    assert default_path() == Path("~/.local/state/qsipctl/state.db").expanduser()


def test_record_history_retry_and_pushed(tmp_path: Path) -> None:
    db = StateDb(tmp_path / "sub" / "state.db")
    first = run("s", False, a=Status.CHANGED, b=Status.FAILED, c=Status.SKIPPED)
    assert db.record(first, {"forks": 10}) == 1 and first.run_id == 1
    db.record(run("s", True, a=Status.FAILED), {})  # check runs do not count
    db.record(run("other", False, a=Status.FAILED), {})
    assert db.last_run_statuses("s") == {"a": "changed", "b": "failed", "c": "skipped"}
    assert db.last_run_statuses("nope") is None
    assert db.last_pushed("s", ["a", "b"]) == {"a": ("sha-a", 1)}
    rows = db.history("s")
    assert [(r.run_id, r.core, r.check) for r in rows] == [
        (2, "a", True),
        (1, "a", False),
        (1, "b", False),
        (1, "c", False),
    ]
    assert [r.run_id for r in db.history(None, last=1)] == [3]


def test_foreign_database_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with sqlite3.connect(path) as con:
        con.execute("PRAGMA user_version = 99")
    with pytest.raises(StateDbError, match="unknown state db version 99"):
        StateDb(path).history()
    (tmp_path / "junk.db").write_bytes(b"not a database at all" * 100)
    with pytest.raises(StateDbError):
        StateDb(tmp_path / "junk.db").history()
