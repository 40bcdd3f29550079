"""The safe-write protocol, run against one core through any connector.

1. read the current file; equal to the rendered document -> ``ok``, nothing
   written (and ``apply_command`` not run), no lock taken;
2. in check mode stop here -> ``changed`` (would change);
3. take the core's lock (:mod:`qsipctl.rollout.corelock`) and read the file
   again under it;
4. keep a timestamped backup of the previous file (``<path>.<UTC stamp>.bak``);
5. put the new file (the connector writes a temp file created with the final
   mode, fsyncs it and renames it atomically into place);
6. read it back and compare;
7. run ``apply_command`` if any (``{path}`` is replaced by the file's path);
8. on every path that took the lock: prune backups beyond ``backup_keep`` and
   temp files of interrupted writes, then release the lock.

With an ``apply_command``, a marker file beside the config stands from just
before step 5 until the apply succeeded or was rolled back, so a push cut off
in between is applied by the next run instead of being called ``ok``.

A failure after step 5 restores the previous bytes (or removes the file when
there was none) *only if the file still holds what this run wrote*
(compare-and-swap: a rollback must never overwrite another writer's verified
push), reads them back to verify, and says so in the reason.
``apply_command`` is not re-run after a rollback.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from qsipctl.rollout.connectors import Connector, is_stale_temp
from qsipctl.rollout.corelock import (
    NO_BREAKING,
    CoreLock,
    LockHeld,
    LockOwner,
    LockPolicy,
    this_owner,
)
from qsipctl.rollout.errors import ConnectorError
from qsipctl.rollout.masking import document_diff, mask_remote, one_line
from qsipctl.rollout.results import Status

_STAMP = re.compile(r"^\d{8}T\d{6}\.\d{6}Z$")


@dataclass(frozen=True, slots=True)
class Outcome:
    status: Status
    reason: str
    previous_digest: bytes | None = None  # SHA-256 of what the core held (None: no file)
    backup: str | None = None
    rolled_back: bool = False
    diff: str | None = None


@dataclass(frozen=True, slots=True)
class WriteSpec:
    """What to put where on one core, and how carefully."""

    path: str
    document: bytes
    masked: str  # the document with secret fields masked, for diffs
    secrets: Sequence[str] = ()  # revealed values to scrub from what the core says
    apply_command: str | None = None
    backup_keep: int = 5
    timeout: float = 30.0
    mode: int = 0o600  # of the config and its backups, enforced on every write

    @property
    def digest(self) -> bytes:
        return hashlib.sha256(self.document).digest()


def digest(data: bytes | None) -> bytes | None:
    return None if data is None else hashlib.sha256(data).digest()


def backup_name(path: str, now: datetime) -> str:
    return f"{path}.{now.astimezone(UTC).strftime('%Y%m%dT%H%M%S.%fZ')}.bak"


class SafeWrite:
    def __init__(
        self,
        connector: Connector,
        spec: WriteSpec,
        *,
        check: bool = False,
        want_diff: bool = False,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        owner: LockOwner | None = None,
        locks: LockPolicy = NO_BREAKING,
    ) -> None:
        self.conn = connector
        self.spec = spec
        self.check = check
        self.want_diff = want_diff
        self.clock = clock
        self.owner = owner or this_owner(os.urandom(6).hex(), None, iso_now(_utc_now))
        self.locks = locks

    def run(self) -> Outcome:
        spec = self.spec
        current = self.conn.read_file(spec.path)
        if current == spec.document and not self._marker_present():
            return Outcome(Status.OK, "config up to date", digest(current))
        if self.check:
            return self._would(current)
        lock = CoreLock(self.conn, spec.path, self.owner, self.locks)
        try:
            lock.acquire()
        except LockHeld as exc:
            return Outcome(Status.FAILED, str(exc), digest(current))
        try:
            outcome = self._locked()
        except BaseException:  # a bug: do not leave the core locked
            with contextlib.suppress(Exception):
                lock.release()
            raise
        if outcome.status is Status.UNREACHABLE:  # each call would wait for the timeout
            return outcome
        note = self._prune() + lock.release() + lock.note
        return replace(outcome, reason=outcome.reason + note) if note else outcome

    def _marker_present(self) -> bool:
        return bool(self.spec.apply_command) and self.conn.read_file(self._pending) is not None

    def _would(self, current: bytes | None) -> Outcome:
        spec = self.spec
        previous = digest(current)
        if current == spec.document:
            why = f"would run apply_command: an earlier push of {spec.path} was interrupted"
            return Outcome(Status.CHANGED, why + " (check mode)", previous)
        what = "create" if current is None else "replace"
        return Outcome(
            Status.CHANGED,
            f"would {what} {spec.path} (check mode)",
            previous,
            diff=self._diff(current),
        )

    def _diff(self, current: bytes | None) -> str | None:
        if not self.want_diff:
            return None
        return document_diff(self.spec.path, current, self.spec.document, self.spec.masked)

    def _locked(self) -> Outcome:
        """Steps 4-7, holding the core's lock; the file is read again under it."""
        spec = self.spec
        current = self.conn.read_file(spec.path)
        previous = digest(current)
        if current == spec.document:
            if self._marker_present():
                return self._finish_interrupted(previous)
            return Outcome(Status.OK, "config up to date", previous)
        diff = self._diff(current)
        backup = None
        try:
            backup = self._backup(current)
            if spec.apply_command:  # until it succeeds: see _finish_interrupted
                self.conn.put_file(self._pending, spec.digest.hex().encode(), 0o600)
            self.conn.put_file(spec.path, spec.document, spec.mode)
        except ConnectorError as exc:
            return Outcome(self._status(exc), str(exc), previous, backup, diff=diff)
        failure = self._after_write(current)
        if failure is not None:
            status, reason, rolled_back = failure
            if rolled_back:
                self._clear_pending()
            return Outcome(status, reason, previous, backup, rolled_back, diff)
        self._clear_pending()
        verb = "created" if current is None else "replaced"
        reason = f"{verb} {spec.path}" + (f", backup {backup}" if backup else "")
        return Outcome(Status.CHANGED, reason, previous, backup, diff=diff)

    @property
    def _pending(self) -> str:
        """A marker beside the file while a written document awaits its apply_command.

        If the connection dies after the rename, the core holds the new file but it
        was never applied; the next run would find the file up to date and call the
        core ``ok``.  The marker makes that run apply it instead."""
        directory, _, name = self.spec.path.rpartition("/")
        return f"{directory}/.{name}.qsipctl-pending"

    def _clear_pending(self) -> None:
        if self.spec.apply_command:  # if this fails, the next run applies once more
            with contextlib.suppress(ConnectorError):
                self.conn.remove_file(self._pending)

    def _finish_interrupted(self, previous: bytes | None) -> Outcome:
        path = self.spec.path
        problem = self._apply()
        if problem is not None:
            reason = (
                f"{problem}; {path} is from an earlier interrupted push, not rolled back"
                " (its backups are beside it)"
            )
            return Outcome(Status.FAILED, reason, previous)
        self._clear_pending()
        reason = f"ran apply_command: an earlier push of {path} was interrupted before it"
        return Outcome(Status.CHANGED, reason, previous)

    def _backup(self, current: bytes | None) -> str | None:
        if current is None or self.spec.backup_keep <= 0:
            return None
        name = backup_name(self.spec.path, self.clock())
        self.conn.put_file(name, current, self.spec.mode)
        return name

    def _after_write(self, current: bytes | None) -> tuple[Status, str, bool] | None:
        """Verify and apply; on failure roll back and return (status, reason, rolled_back)."""
        spec = self.spec
        problem: str | None
        try:
            back = self.conn.read_file(spec.path)
            mismatch = back != spec.document
            problem = "read-back mismatch after write" if mismatch else self._apply()
        except ConnectorError as exc:
            if exc.unreachable:
                reason = (
                    f"{exc}; after writing, rollback not possible (core may hold the new config)"
                )
                return Status.UNREACHABLE, reason, False
            problem = str(exc)
        if problem is None:
            return None
        rolled_back, note = self._rollback(current)
        return Status.FAILED, f"{problem}; {note}", rolled_back

    def _apply(self) -> str | None:
        command = self.spec.apply_command
        if not command:
            return None
        command = command.replace("{path}", shlex.quote(self.conn.native_path(self.spec.path)))
        result = self.conn.run(command, self.spec.timeout)
        if result.exit_status == 0:
            return None
        # masked before a line is chosen: the core may quote old passwords anywhere
        detail = one_line(mask_remote(result.stderr, self.spec.secrets)) or one_line(
            mask_remote(result.stdout, self.spec.secrets)
        )
        how = (
            f"exited {result.exit_status}"
            if result.exit_status >= 0
            else "ended without an exit status (killed by a signal?)"
        )
        return f"apply_command {how}" + (f": {detail}" if detail else "")

    def _rollback(self, current: bytes | None) -> tuple[bool, str]:
        """Put ``current`` back, but only over the document this run wrote."""
        path = self.spec.path
        try:
            now = self.conn.read_file(path)
            if now != self.spec.document:
                return False, (
                    f"NOT rolled back: {path} no longer holds what this run wrote"
                    " (another writer changed it; left as it is)"
                )
            if current is None:
                self.conn.remove_file(path)
                return True, "rolled back: removed the new file (there was none before)"
            self.conn.put_file(path, current, self.spec.mode)
            back = self.conn.read_file(path)
        except ConnectorError as exc:
            return False, f"ROLLBACK FAILED: {exc}"
        if back != current:
            return False, "ROLLBACK FAILED: restored file does not match the previous config"
        return True, "rolled back to the previous config (verified byte for byte)"

    def _prune(self) -> str:
        """Drop backups beyond ``backup_keep`` and temp files of interrupted writes.

        Runs on every path that took the lock (a failed push made a backup too),
        and only under the lock, so no other run's temp file is in flight."""
        keep = self.spec.backup_keep
        directory, _, name = self.spec.path.rpartition("/")
        try:
            entries = self.conn.list_dir(directory or "/")
            backups = sorted(
                entry
                for entry in entries
                if entry.startswith(name + ".")
                and entry.endswith(".bak")
                and _STAMP.match(entry[len(name) + 1 : -4])
            )
            stale = [entry for entry in entries if is_stale_temp(entry, name)]
            for old in [*(backups[:-keep] if keep > 0 else backups), *stale]:
                self.conn.remove_file(f"{directory}/{old}")
        except ConnectorError as exc:
            return f" (could not prune old backups: {exc})"
        return ""

    def _status(self, exc: ConnectorError) -> Status:
        return Status.UNREACHABLE if exc.unreachable else Status.FAILED


def iso_now(clock: Callable[[], datetime]) -> str:
    return clock().astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _utc_now() -> datetime:
    return datetime.now(UTC)
