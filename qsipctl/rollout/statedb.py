"""Rollout history in an embedded SQLite database.

Default location follows the XDG base-directory spec:
``$XDG_STATE_HOME/qsipctl/state.db`` (``~/.local/state/qsipctl/state.db``).
Only what is safe to keep is stored: core names, hosts, keyed fingerprints
(never a plain hash of a document: :mod:`qsipctl.rollout.fingerprint`),
statuses and one-line reasons that were already masked.  The file is kept
0600 all the same.

A run is written *before* any core is touched (every selected core as
``pending``) and each core's row is updated the moment its result exists, so
a run killed by SIGKILL leaves an honest trace: the run has no ``finished``
time (``history`` calls it incomplete), ``--retry-failed`` takes its
``pending`` cores, and ``drift`` knows which document it was writing.

Runs are keyed on the site's identity (:mod:`qsipctl.rollout.identity`), not
its path, so history survives moving the checkout.  Databases of schema 1
(keyed on paths, plain SHA-256) are migrated on first write.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from qsipctl.errors import EXIT_FAILED
from qsipctl.rollout.errors import RolloutError, StateDbError
from qsipctl.rollout.fingerprint import Fingerprinter, key_path, load_key
from qsipctl.rollout.identity import identity_of_path
from qsipctl.rollout.masking import mask_shapes
from qsipctl.rollout.results import CoreResult, RunResult

SCHEMA_VERSION = 2
PENDING = "pending"
PENDING_REASON = "not finished: the run ended before this core's result (killed?)"
RETRY_STATUSES = ("failed", "unreachable", "skipped", PENDING)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    command TEXT NOT NULL,
    site TEXT NOT NULL,
    site_path TEXT NOT NULL,
    started TEXT NOT NULL,
    finished TEXT,
    check_mode INTEGER NOT NULL,
    interrupted INTEGER NOT NULL,
    abandoned INTEGER NOT NULL,
    stopped TEXT,
    options TEXT NOT NULL,
    token TEXT,
    machine TEXT,
    pid INTEGER
);
CREATE TABLE IF NOT EXISTS results (
    run_id INTEGER NOT NULL REFERENCES runs(id),
    core TEXT NOT NULL,
    host TEXT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    previous_fingerprint TEXT,
    backup TEXT,
    rolled_back INTEGER NOT NULL,
    batch INTEGER NOT NULL,
    started TEXT NOT NULL,
    duration_ms INTEGER NOT NULL,
    PRIMARY KEY (run_id, core)
);
CREATE INDEX IF NOT EXISTS results_core ON results(core, run_id);
CREATE INDEX IF NOT EXISTS runs_site ON runs(site, id);
"""
_RESULT_COLUMNS = (
    "run_id, core, host, status, reason, fingerprint, previous_fingerprint, backup,"
    " rolled_back, batch, started, duration_ms"
)


def default_path() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path("~/.local/state").expanduser())
    return Path(base) / "qsipctl" / "state.db"


@dataclass(frozen=True, slots=True)
class HistoryRow:
    run_id: int
    site: str
    check: bool
    core: str
    host: str
    status: str
    reason: str
    fingerprint: str
    previous_fingerprint: str | None
    started: str
    duration_ms: int
    complete: bool  # False: the run never finished (killed) or is still running


@dataclass(frozen=True, slots=True)
class RunSummary:
    run_id: int
    site: str
    site_path: str
    check: bool
    started: str
    finished: str | None
    state: str  # finished | interrupted | abandoned | incomplete | running
    stopped: str | None
    counts: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Pushed:
    """What drift compares a core's live file with."""

    fingerprint: str | None  # left by the latest successful push (None: never)
    run_id: int | None
    # later attempts that may have left their document (killed, connection lost)
    attempts: tuple[tuple[str, int], ...] = ()


class RunLockHeld(RolloutError):
    """Another provision run on this machine uses the same state database."""

    exit_code = EXIT_FAILED


class StateDb:
    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path).expanduser() if path else default_path()

    # -- opening, permissions, migration -------------------------------------
    @contextmanager
    def _connect(self, write: bool = False) -> Iterator[sqlite3.Connection]:
        try:
            if write or not self.path.exists():
                self._make_private()
            db = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
        except (OSError, sqlite3.Error) as exc:
            raise StateDbError(f"cannot open state db {self.path}: {exc}") from None
        try:
            db.execute("PRAGMA secure_delete = ON")
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version not in (0, 1, SCHEMA_VERSION):
                raise StateDbError(f"{self.path}: unknown state db version {version}")
            if version == 1:
                self._migrate_v1(db)
            elif version == 0 or write:  # readers of a current db write nothing
                with db:
                    db.executescript(_SCHEMA)
                    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            yield db
        except sqlite3.DatabaseError as exc:
            raise StateDbError(f"state db {self.path}: {exc}") from None
        finally:
            db.close()

    def _make_private(self) -> None:
        """Create the database 0600 (never 0644 first), or narrow an existing one."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if os.fstat(fd).st_mode & 0o077:
                os.fchmod(fd, 0o600)
        finally:
            os.close(fd)

    def fingerprinter(self, create: bool = True) -> Fingerprinter:
        """The key that fingerprints go with (beside the database).  Without one and
        not allowed to create it (read-only), an ephemeral key: nothing recorded
        could be compared anyway, since every record was made with a key."""
        found = load_key(key_path(self.path), create=create)
        return found if found is not None else Fingerprinter.ephemeral()

    def _migrate_v1(self, db: sqlite3.Connection) -> None:
        """Schema 1 keyed runs on the site file's path and stored plain SHA-256s
        (an offline password oracle) and reasons masked only at line start."""
        try:
            self._make_private()
        except OSError as exc:
            raise StateDbError(
                f"state db {self.path} is from an older qsipctl and must be migrated,"
                f" but cannot be written: {exc.strerror}"
            ) from None
        fingerprint = self.fingerprinter(create=True)
        runs = db.execute(
            "SELECT id, command, site, started, finished, check_mode, interrupted, stopped,"
            " options FROM runs"
        ).fetchall()
        results = db.execute(
            f"SELECT {_RESULT_COLUMNS.replace('fingerprint', 'sha256')} FROM results"
        ).fetchall()
        with db:
            db.execute("DROP TABLE results")
            db.execute("DROP TABLE runs")
            db.executescript(_SCHEMA)
            db.executemany(
                "INSERT INTO runs (id, command, site, site_path, started, finished, check_mode,"
                " interrupted, abandoned, stopped, options) VALUES (?,?,?,?,?,?,?,?,0,?,?)",
                [
                    (rid, cmd, identity_of_path(site), site, st, fin or None, chk, intr, stop, opt)
                    for rid, cmd, site, st, fin, chk, intr, stop, opt in runs
                ],
            )
            db.executemany(
                f"INSERT INTO results ({_RESULT_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                [_migrated_result(row, fingerprint) for row in results],
            )
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        db.execute("VACUUM")  # the old hashes must not linger in free pages

    def check(self) -> None:
        """Open (creating or migrating if needed) now, so a bad --state-db fails
        before any core is touched."""
        with self._connect(write=True):
            pass

    # -- the local lock: one provision run per state database ------------------
    @contextmanager
    def run_lock(self) -> Iterator[None]:
        """Held for a whole provision run; released by the kernel if we are killed."""
        path = self.path.with_name(self.path.name + ".lock")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fh: IO[str] = os.fdopen(os.open(path, os.O_RDWR | os.O_CREAT, 0o600), "r+")
        except OSError as exc:
            raise StateDbError(f"cannot open {path}: {exc.strerror}") from None
        with fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = fh.read().strip() or "another process"
                raise RunLockHeld(
                    f"state db {self.path} is in use by {holder}; nothing was touched"
                    " (wait for that run, or give this one its own --state-db)"
                ) from None
            fh.seek(0)
            fh.truncate()
            fh.write(f"qsipctl provision pid {os.getpid()} on {socket.gethostname()}\n")
            fh.flush()
            yield

    # -- writing a run as it happens ------------------------------------------
    def begin(
        self,
        run: RunResult,
        planned: Sequence[CoreResult],
        options: dict[str, object],
        *,
        token: str = "",
        command: str = "provision",
    ) -> RunLog:
        """Record the run and every planned core as ``pending``; sets ``run.run_id``."""
        log = RunLog(self)
        with log.lock, log.db:
            cursor = log.db.execute(
                "INSERT INTO runs (command, site, site_path, started, finished, check_mode,"
                " interrupted, abandoned, stopped, options, token, machine, pid)"
                " VALUES (?, ?, ?, ?, NULL, ?, 0, 0, NULL, ?, ?, ?, ?)",
                (
                    command,
                    run.site,
                    run.site_path,
                    run.started,
                    int(run.check),
                    json.dumps(options, sort_keys=True),
                    token,
                    socket.gethostname(),
                    os.getpid(),
                ),
            )
            log.run_id = int(cursor.lastrowid or 0)
            log.db.executemany(
                f"INSERT INTO results ({_RESULT_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                [_result_row(log.run_id, r) for r in planned],
            )
        run.run_id = log.run_id
        return log

    def record(self, run: RunResult, options: dict[str, object], command: str = "provision") -> int:
        """Store a finished run in one go (``qsipctl demo``); returns its id."""
        log = self.begin(run, run.results, options, command=command)
        try:
            log.finish(run)
        finally:
            log.close()
        return log.run_id

    # -- reading ---------------------------------------------------------------
    def history(self, site: str | None = None, last: int | None = None) -> list[HistoryRow]:
        """Results, newest run first (``last``: only that many runs)."""
        query = (
            "SELECT r.run_id, u.site, u.check_mode, r.core, r.host, r.status, r.reason,"
            " r.fingerprint, r.previous_fingerprint, r.started, r.duration_ms,"
            " u.finished IS NOT NULL"
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

    def runs(self, site: str | None = None, last: int = 10) -> list[RunSummary]:
        """One line per run, newest first, with its result counts."""
        query = (
            "SELECT id, site, site_path, check_mode, started, finished, interrupted,"
            " abandoned, stopped, machine, pid FROM runs"
        )
        args: list[object] = []
        if site is not None:
            query += " WHERE site = ?"
            args.append(site)
        query += " ORDER BY id DESC LIMIT ?"
        args.append(last)
        with self._connect() as db:
            runs = db.execute(query, args).fetchall()
            counts: dict[int, dict[str, int]] = {}
            for run_id, status, n in db.execute(
                "SELECT run_id, status, COUNT(*) FROM results GROUP BY run_id, status"
            ):
                counts.setdefault(int(run_id), {})[str(status)] = int(n)
        return [
            RunSummary(
                run_id=int(rid),
                site=str(site_),
                site_path=str(path),
                check=bool(chk),
                started=str(started),
                finished=None if finished is None else str(finished),
                state=_run_state(finished, flags[0], flags[1], machine, pid),
                stopped=None if stopped is None else str(stopped),
                counts=counts.get(int(rid), {}),
            )
            for (rid, site_, path, chk, started, finished, *flags, stopped, machine, pid) in runs
        ]

    def last_run_statuses(self, site: str) -> dict[str, str] | None:
        """Core -> status of its latest real (non-check) provisioning of ``site``.

        Per core, not per run: a ``--limit`` run of other cores in between must not
        make an earlier failure forgotten.  A core a killed run never finished is
        ``pending``."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT r.core, r.status FROM results r JOIN runs u ON u.id = r.run_id"
                " WHERE u.site = ? AND u.check_mode = 0 AND u.command = 'provision'"
                " ORDER BY r.run_id",
                (site,),
            ).fetchall()
        return dict(rows) if rows else None

    def last_pushed(self, site: str, cores: Sequence[str]) -> dict[str, Pushed]:
        """Per core: the fingerprint its latest successful push left, and the
        documents of later attempts that may have been written (a killed run's
        ``pending`` core, a connection lost after the write)."""
        if not cores:
            return {}
        placeholders = ",".join("?" * len(cores))
        with self._connect() as db:
            rows = db.execute(
                "SELECT r.core, r.status, r.fingerprint, r.run_id, r.rolled_back"
                " FROM results r JOIN runs u ON u.id = r.run_id"
                " WHERE u.site = ? AND u.check_mode = 0 AND u.command = 'provision'"
                f" AND r.core IN ({placeholders}) ORDER BY r.run_id",
                (site, *cores),
            ).fetchall()
        pushed: dict[str, Pushed] = {}
        for core, status, fingerprint, run_id, rolled_back in rows:
            before = pushed.get(core, Pushed(None, None))
            if status in ("ok", "changed"):
                pushed[core] = Pushed(str(fingerprint), int(run_id))
            elif status in (PENDING, "unreachable", "failed") and not rolled_back:
                attempt = (str(fingerprint), int(run_id))
                pushed[core] = Pushed(
                    before.fingerprint, before.run_id, (*before.attempts, attempt)
                )
        return pushed


class RunLog:
    """One run's open connection: results are written as they arrive (any thread)."""

    def __init__(self, db: StateDb) -> None:
        self.state = db
        self.run_id = 0
        self.lock = threading.Lock()
        with db._connect(write=True):
            pass  # create / migrate / check version first
        try:
            self.db = sqlite3.connect(db.path, timeout=30, check_same_thread=False)
            self.db.execute("PRAGMA secure_delete = ON")
        except sqlite3.Error as exc:
            raise StateDbError(f"cannot open state db {db.path}: {exc}") from None

    def result(self, r: CoreResult) -> None:
        """Replace the core's ``pending`` row by its result (committed at once)."""
        try:
            with self.lock, self.db:
                self.db.execute(
                    "UPDATE results SET host=?, status=?, reason=?, fingerprint=?,"
                    " previous_fingerprint=?, backup=?, rolled_back=?, batch=?, started=?,"
                    " duration_ms=? WHERE run_id=? AND core=?",
                    (*_result_row(self.run_id, r)[2:], self.run_id, r.core),
                )
        except sqlite3.Error as exc:
            raise StateDbError(f"state db {self.state.path}: {exc}") from None

    def finish(self, run: RunResult) -> None:
        for r in run.results:
            self.result(r)
        try:
            with self.lock, self.db:
                self.db.execute(
                    "UPDATE runs SET finished=?, interrupted=?, abandoned=?, stopped=? WHERE id=?",
                    (
                        run.finished,
                        int(run.interrupted),
                        int(run.abandoned),
                        run.stopped,
                        self.run_id,
                    ),
                )
        except sqlite3.Error as exc:
            raise StateDbError(f"state db {self.state.path}: {exc}") from None

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self.db.close()


def _result_row(run_id: int, r: CoreResult) -> tuple[object, ...]:
    return (
        run_id,
        r.core,
        r.host,
        r.status.value,
        r.reason,
        r.fingerprint,
        r.previous_fingerprint,
        r.backup,
        int(r.rolled_back),
        r.batch,
        r.started,
        r.duration_ms,
    )


def _migrated_result(row: tuple[object, ...], fingerprint: Fingerprinter) -> tuple[object, ...]:
    run_id, core, host, status, reason, sha, prev, backup, rolled, batch, started, ms = row

    def keyed(value: object) -> str | None:
        if value is None:
            return None
        text = str(value)
        try:
            return fingerprint.of_digest(bytes.fromhex(text))
        except ValueError:
            return fingerprint(text.encode())

    return (
        run_id,
        core,
        host,
        status,
        mask_shapes(str(reason)),
        keyed(sha),
        keyed(prev),
        backup,
        rolled,
        batch,
        started,
        ms,
    )


def _history_row(row: tuple[object, ...]) -> HistoryRow:
    run_id, site, check, core, host, status, reason, fp, prev, started, ms, complete = row
    return HistoryRow(
        int(str(run_id)),
        str(site),
        bool(check),
        str(core),
        str(host),
        str(status),
        str(reason),
        str(fp),
        None if prev is None else str(prev),
        str(started),
        int(str(ms)),
        bool(complete),
    )


def _run_state(
    finished: object, interrupted: object, abandoned: object, machine: object, pid: object
) -> str:
    if finished is None:
        alive = False
        if machine == socket.gethostname() and isinstance(pid, int):
            try:
                os.kill(pid, 0)
                alive = True
            except ProcessLookupError:
                alive = False
            except PermissionError:
                alive = True
        return "running" if alive else "incomplete"
    if abandoned:
        return "abandoned"
    return "interrupted" if interrupted else "finished"
