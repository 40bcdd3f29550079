"""The safe-write protocol, run against one core through any connector.

1. read the current file; equal to the rendered document -> ``ok``, nothing
   written (and ``apply_command`` not run);
2. in check mode stop here -> ``changed`` (would change);
3. keep a timestamped backup of the previous file (``<path>.<UTC stamp>.bak``);
4. put the new file (the connector writes a temp file, fsyncs it and renames
   it atomically into place);
5. read it back and compare the SHA-256;
6. run ``apply_command`` if any (``{path}`` is replaced by the file's path);
7. prune backups beyond ``backup_keep`` (also after a rollback).

With an ``apply_command``, a marker file beside the config stands from just
before step 4 until the apply succeeded or was rolled back, so a push cut off
in between is applied by the next run instead of being called ``ok``.

A failure after step 4 restores the previous bytes (or removes the file when
there was none), reads them back to verify, and says so in the reason.
``apply_command`` is not re-run after a rollback.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import re
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from qsipctl.rollout.connectors import Connector, is_stale_temp
from qsipctl.rollout.errors import ConnectorError
from qsipctl.rollout.masking import mask_bytes, mask_text, one_line
from qsipctl.rollout.results import Status

_STAMP = re.compile(r"^\d{8}T\d{6}\.\d{6}Z$")


@dataclass(frozen=True)
class Outcome:
    status: Status
    reason: str
    previous_sha256: str | None = None
    backup: str | None = None
    rolled_back: bool = False
    diff: str | None = None


@dataclass(frozen=True)
class WriteSpec:
    """What to put where on one core, and how carefully."""

    path: str
    document: bytes
    masked: str  # the document with secrets masked, for diffs
    sha256: str
    secrets: Sequence[str] = ()  # revealed values to scrub from reasons and diffs
    apply_command: str | None = None
    backup_keep: int = 5
    timeout: float = 30.0


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def backup_name(path: str, now: datetime) -> str:
    return f"{path}.{now.astimezone(UTC).strftime('%Y%m%dT%H%M%S.%fZ')}.bak"


def unified_diff(path: str, old: bytes | None, new_masked: str, secrets: Sequence[str]) -> str:
    old_text = "" if old is None else mask_bytes(old, secrets)
    lines = difflib.unified_diff(
        old_text.splitlines(keepends=True),
        new_masked.splitlines(keepends=True),
        fromfile=f"{path} (on core)" if old is not None else "/dev/null",
        tofile=f"{path} (rendered)",
    )
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


class SafeWrite:
    def __init__(
        self,
        connector: Connector,
        spec: WriteSpec,
        *,
        check: bool = False,
        want_diff: bool = False,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.conn = connector
        self.spec = spec
        self.check = check
        self.want_diff = want_diff
        self.clock = clock

    def run(self) -> Outcome:
        spec = self.spec
        current = self.conn.read_file(spec.path)
        previous = None if current is None else sha256(current)
        diff = (
            unified_diff(spec.path, current, spec.masked, spec.secrets) if self.want_diff else None
        )
        if current is not None and previous == spec.sha256:
            if spec.apply_command and self.conn.read_file(self._pending) is not None:
                return self._finish_interrupted(previous)
            return Outcome(Status.OK, "config up to date", previous, diff=None)
        what = "create" if current is None else "replace"
        if self.check:
            return Outcome(
                Status.CHANGED, f"would {what} {spec.path} (check mode)", previous, diff=diff
            )
        backup = None
        try:
            backup = self._backup(current)
            if spec.apply_command:  # until it succeeds: see _finish_interrupted
                self.conn.put_file(self._pending, spec.sha256.encode())
            self.conn.put_file(spec.path, spec.document)
        except ConnectorError as exc:
            return Outcome(self._status(exc), self._mask(str(exc)), previous, backup, diff=diff)
        failure = self._after_write(current)
        if failure is not None:
            status, reason, rolled_back = failure
            if rolled_back:  # each failed push made a backup too: keep N all the same
                self._clear_pending()
                reason += self._prune()
            return Outcome(status, reason, previous, backup, rolled_back, diff)
        self._clear_pending()
        note = self._prune()
        verb = "created" if current is None else "replaced"
        reason = f"{verb} {spec.path}" + (f", backup {backup}" if backup else "") + note
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

    def _finish_interrupted(self, previous: str | None) -> Outcome:
        path = self.spec.path
        if self.check:
            why = f"would run apply_command: an earlier push of {path} was interrupted"
            return Outcome(Status.CHANGED, why + " (check mode)", previous)
        problem = self._apply()
        if problem is not None:
            reason = (
                f"{problem}; {path} is from an earlier interrupted push, not rolled back"
                " (its backups are beside it)"
            )
            return Outcome(Status.FAILED, self._mask(reason), previous)
        self._clear_pending()
        reason = f"ran apply_command: an earlier push of {path} was interrupted before it"
        return Outcome(Status.CHANGED, reason, previous)

    def _backup(self, current: bytes | None) -> str | None:
        if current is None or self.spec.backup_keep <= 0:
            return None
        name = backup_name(self.spec.path, self.clock())
        self.conn.put_file(name, current)
        return name

    def _after_write(self, current: bytes | None) -> tuple[Status, str, bool] | None:
        """Verify and apply; on failure roll back and return (status, reason, rolled_back)."""
        spec = self.spec
        problem: str | None
        try:
            back = self.conn.read_file(spec.path)
            if back is None or sha256(back) != spec.sha256:
                problem = "read-back checksum mismatch after write"
            else:
                problem = self._apply()
        except ConnectorError as exc:
            if exc.unreachable:
                reason = (
                    f"{exc}; after writing, rollback not possible (core may hold the new config)"
                )
                return Status.UNREACHABLE, self._mask(reason), False
            problem = str(exc)
        if problem is None:
            return None
        rolled_back, note = self._rollback(current)
        return Status.FAILED, self._mask(f"{problem}; {note}"), rolled_back

    def _apply(self) -> str | None:
        command = self.spec.apply_command
        if not command:
            return None
        command = command.replace("{path}", shlex.quote(self.conn.native_path(self.spec.path)))
        result = self.conn.run(command, self.spec.timeout)
        if result.exit_status == 0:
            return None
        detail = one_line(result.stderr) or one_line(result.stdout)
        how = (
            f"exited {result.exit_status}"
            if result.exit_status >= 0
            else "ended without an exit status (killed by a signal?)"
        )
        return f"apply_command {how}" + (f": {detail}" if detail else "")

    def _rollback(self, current: bytes | None) -> tuple[bool, str]:
        try:
            if current is None:
                self.conn.remove_file(self.spec.path)
                return True, "rolled back: removed the new file (there was none before)"
            self.conn.put_file(self.spec.path, current)
            back = self.conn.read_file(self.spec.path)
        except ConnectorError as exc:
            return False, f"ROLLBACK FAILED: {exc}"
        if back != current:
            return False, "ROLLBACK FAILED: restored file does not match the previous config"
        return True, "rolled back to the previous config (verified byte for byte)"

    def _prune(self) -> str:
        """Drop backups beyond ``backup_keep`` and temp files of interrupted uploads."""
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
            for old in [*(backups[:-keep] if keep > 0 else []), *stale]:
                self.conn.remove_file(f"{directory}/{old}")
        except ConnectorError as exc:
            return f" (could not prune old backups: {exc})"
        return ""

    def _status(self, exc: ConnectorError) -> Status:
        return Status.UNREACHABLE if exc.unreachable else Status.FAILED

    def _mask(self, text: str) -> str:
        return mask_text(text, self.spec.secrets)
