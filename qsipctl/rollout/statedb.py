"""Rollout history in an embedded SQLite database.

Default location follows the XDG base-directory spec:
``$XDG_STATE_HOME/qsipctl/state.db`` (``~/.local/state/qsipctl/state.db``).
Only what is safe to keep is stored: core names, hosts, hashes, statuses and
one-line reasons that were already masked.  Documents and secrets never are.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from qsipctl.rollout.errors import StateDbError
from qsipctl.rollout.results import RunResult

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    command TEXT NOT NULL,
    site TEXT NOT NULL,
    started TEXT NOT NULL,
    finished TEXT NOT NULL,
    check_mode INTEGER NOT NULL,
    interrupted INTEGER NOT NULL,
    stopped TEXT,
    options TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS results (
    run_id INTEGER NOT NULL REFERENCES runs(id),
    core TEXT NOT NULL,
    host TEXT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    previous_sha256 TEXT,
    backup TEXT,
    rolled_back INTEGER NOT NULL,
    batch INTEGER NOT NULL,
    started TEXT NOT NULL,
    duration_ms INTEGER NOT NULL,
    PRIMARY KEY (run_id, core)
);
CREATE INDEX IF NOT EXISTS results_core ON results(core, run_id);
"""


def default_path() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path("~/.local/state").expanduser())
    return Path(base) / "qsipctl" / "state.db"


@dataclass(frozen=True)
class HistoryRow:
    run_id: int
    site: str
    check: bool
    core: str
    host: str
    status: str
    reason: str
    sha256: str
    previous_sha256: str | None
    started: str
    duration_ms: int


def _history_row(row: tuple[object, ...]) -> HistoryRow:
    run_id, site, check, core, host, status, reason, sha, prev, started, ms = row
    return HistoryRow(
        int(str(run_id)),
        str(site),
        bool(check),
        str(core),
        str(host),
        str(status),
        str(reason),
        str(sha),
        None if prev is None else str(prev),
        str(started),
        int(str(ms)),
    )


class StateDb:
    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path).expanduser() if path else default_path()

    @contextmanager
    def _connect(self, write: bool = False) -> Iterator[sqlite3.Connection]:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            db = sqlite3.connect(self.path, timeout=10)
        except (OSError, sqlite3.Error) as exc:
            raise StateDbError(f"cannot open state db {self.path}: {exc}") from None
        try:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version not in (0, SCHEMA_VERSION):
                raise StateDbError(f"{self.path}: unknown state db version {version}")
            if version == 0 or write:  # readers of a current db write nothing (read-only media)
                with db:
                    db.executescript(_SCHEMA)
                    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            yield db
        except sqlite3.DatabaseError as exc:
            raise StateDbError(f"state db {self.path}: {exc}") from None
        finally:
            db.close()

    def check(self) -> None:
        """Open (creating if needed) now, so a bad --state-db fails before any core is touched."""
        with self._connect(write=True):
            pass

    def record(self, run: RunResult, options: dict[str, object], command: str = "provision") -> int:
        """Store one run and its per-core results; sets and returns ``run.run_id``."""
        with self._connect(write=True) as db, db:
            cursor = db.execute(
                "INSERT INTO runs (command, site, started, finished, check_mode, interrupted,"
                " stopped, options) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    command,
                    run.site,
                    run.started,
                    run.finished,
                    int(run.check),
                    int(run.interrupted),
                    run.stopped,
                    json.dumps(options, sort_keys=True),
                ),
            )
            run_id = int(cursor.lastrowid or 0)
            db.executemany(
                "INSERT INTO results VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        run_id,
                        r.core,
                        r.host,
                        r.status.value,
                        r.reason,
                        r.sha256,
                        r.previous_sha256,
                        r.backup,
                        int(r.rolled_back),
                        r.batch,
                        r.started,
                        r.duration_ms,
                    )
                    for r in run.results
                ],
            )
        run.run_id = run_id
        return run_id

    def history(self, site: str | None = None, last: int | None = None) -> list[HistoryRow]:
        """Results, newest run first (``last``: only that many runs)."""
        query = (
            "SELECT r.run_id, u.site, u.check_mode, r.core, r.host, r.status, r.reason,"
            " r.sha256, r.previous_sha256, r.started, r.duration_ms"
            " FROM results r JOIN runs u ON u.id = r.run_id"
        )
        args: list[object] = []
        if site is not None:
            query += " WHERE u.site = ?"
            args.append(site)
        query += " ORDER BY r.run_id DESC, r.core"
        with self._connect() as db:
            rows = [_history_row(row) for row in db.execute(query, args)]
        if last is not None:
            keep = sorted({row.run_id for row in rows}, reverse=True)[:last]
            rows = [row for row in rows if row.run_id in keep]
        return rows

    def last_run_statuses(self, site: str) -> dict[str, str] | None:
        """Core -> status of its latest real (non-check) provisioning of ``site``.

        Per core, not per run: a ``--limit`` run of other cores in between must not
        make an earlier failure forgotten."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT r.core, r.status FROM results r JOIN runs u ON u.id = r.run_id"
                " WHERE u.site = ? AND u.check_mode = 0 AND u.command = 'provision'"
                " ORDER BY r.run_id",
                (site,),
            ).fetchall()
        return dict(rows) if rows else None

    def last_pushed(self, site: str, cores: Sequence[str]) -> dict[str, tuple[str, int]]:
        """Core -> (sha256 the core held after our last successful write or check, run id)."""
        placeholders = ",".join("?" * len(cores))
        if not cores:
            return {}
        with self._connect() as db:
            rows = db.execute(
                "SELECT r.core, r.sha256, r.run_id FROM results r JOIN runs u ON u.id = r.run_id"
                f" WHERE u.site = ? AND u.check_mode = 0 AND r.status IN ('ok', 'changed')"
                f" AND r.core IN ({placeholders}) ORDER BY r.run_id",
                (site, *cores),
            ).fetchall()
        return {core: (sha, run_id) for core, sha, run_id in rows}
