from __future__ import annotations

import hashlib
import sqlite3
import stat
import subprocess
from pathlib import Path

import pytest

from qsipctl.rollout.errors import StateDbError
from qsipctl.rollout.results import CoreResult, RunResult, Status
from qsipctl.rollout.statedb import StateDb, default_path


def run(site: str, check: bool, **statuses: Status) -> RunResult:
    results = [
        CoreResult(core=c, host="h", status=s, reason=f"{c} {s}", fingerprint=f"k1:{c}")
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
    pushed = db.last_pushed("s", ["a", "b"])
    assert (pushed["a"].fingerprint, pushed["a"].run_id) == ("k1:a", 1)
    assert pushed["b"].fingerprint is None and pushed["b"].attempts == (("k1:b", 1),)
    rows = db.history("s")
    assert [(r.run_id, r.core, r.check, r.complete) for r in rows] == [
        (2, "a", True, True),
        (1, "a", False, True),
        (1, "b", False, True),
        (1, "c", False, True),
    ]
    assert [r.run_id for r in db.history(None, last=1)] == [3]
    assert stat.S_IMODE(db.path.stat().st_mode) == 0o600


def test_a_run_is_recorded_before_its_cores_and_stays_incomplete_if_killed(
    tmp_path: Path,
) -> None:
    db = StateDb(tmp_path / "state.db")
    planned = run("s", False, a=Status.PENDING, b=Status.PENDING)
    planned.finished = ""
    log = db.begin(planned, planned.results, {})
    log.result(CoreResult(core="a", host="h", status=Status.CHANGED, reason="x", fingerprint="f"))
    log.close()  # and nothing more: the process died here
    assert db.last_run_statuses("s") == {"a": "changed", "b": "pending"}
    (summary,) = db.runs("s")
    assert summary.state == "running"  # this process, which recorded it, still lives
    gone = subprocess.Popen(["true"])
    gone.wait()
    with sqlite3.connect(db.path) as con:
        con.execute("UPDATE runs SET pid = ?", (gone.pid,))
    (summary,) = db.runs("s")
    assert summary.state == "incomplete" and summary.counts == {"changed": 1, "pending": 1}
    assert {r.core: r.complete for r in db.history("s")} == {"a": False, "b": False}


def test_foreign_database_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with sqlite3.connect(path) as con:
        con.execute("PRAGMA user_version = 99")
    with pytest.raises(StateDbError, match="unknown state db version 99"):
        StateDb(path).history()
    (tmp_path / "junk.db").write_bytes(b"not a database at all" * 100)
    with pytest.raises(StateDbError):
        StateDb(tmp_path / "junk.db").history()


V1_SCHEMA = """
CREATE TABLE runs (id INTEGER PRIMARY KEY AUTOINCREMENT, command TEXT NOT NULL,
    site TEXT NOT NULL, started TEXT NOT NULL, finished TEXT NOT NULL,
    check_mode INTEGER NOT NULL, interrupted INTEGER NOT NULL, stopped TEXT,
    options TEXT NOT NULL);
CREATE TABLE results (run_id INTEGER NOT NULL REFERENCES runs(id), core TEXT NOT NULL,
    host TEXT NOT NULL, status TEXT NOT NULL, reason TEXT NOT NULL, sha256 TEXT NOT NULL,
    previous_sha256 TEXT, backup TEXT, rolled_back INTEGER NOT NULL, batch INTEGER NOT NULL,
    started TEXT NOT NULL, duration_ms INTEGER NOT NULL, PRIMARY KEY (run_id, core));
PRAGMA user_version = 1;
"""


def test_a_schema_1_database_is_migrated(tmp_path: Path) -> None:
    """Path keys become site names, plain SHA-256s keyed fingerprints, old leaks masked,
    and no old hash survives anywhere in the file."""
    path = tmp_path / "state.db"
    sha = hashlib.sha256(b"a document").hexdigest()
    with sqlite3.connect(path) as con:
        con.executescript(V1_SCHEMA)
        con.execute(
            "INSERT INTO runs VALUES (1, 'provision', '/old/checkout/hq.yml', 't0', 't1', 0, 0,"
            " NULL, '{}')"
        )
        con.execute(
            "INSERT INTO results VALUES (1, 'a', 'h', 'failed',"
            " 'apply_command exited 4: old password=hunter2', ?, NULL, NULL, 0, 1, 't0', 5)",
            (sha,),
        )
    path.chmod(0o644)
    db = StateDb(path)
    db.check()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    (row,) = db.history("hq")
    assert row.fingerprint == db.fingerprinter()(b"a document")
    assert "hunter2" not in row.reason
    raw = path.read_bytes()
    assert sha.encode() not in raw and b"hunter2" not in raw
    assert db.last_run_statuses("hq") == {"a": "failed"}
