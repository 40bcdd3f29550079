"""A lock per core, on the core itself, so two runs never write one core at once.

Two operators (or CI and a person) pushing at the same time used to
interleave: one run verified and applied its document, then the other run's
rollback wrote its stale snapshot over it.  Locks on the operators' machines
cannot see each other, so the lock lives beside the config file on the core:
``.<name>.qsipctl-lock``, created with O_EXCL (atomic on any POSIX
filesystem, over SFTP too) and holding who took it: run id and token, user,
machine, process id and time.  The loser of a race is told all of that.

A run killed by SIGKILL leaves its lock behind.  It is recognised as *stale*
when it was taken on this machine by a process that no longer exists; such a
lock is broken only when asked (``--break-stale-locks``); a lock from another
machine is broken only by naming its run token (``--break-lock TOKEN``).
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import socket
from dataclasses import asdict, dataclass

from qsipctl.rollout.connectors import Connector
from qsipctl.rollout.errors import ConnectorError


@dataclass(frozen=True, slots=True)
class LockOwner:
    """Who holds (or wants) a core: enough to recognise a dead holder."""

    token: str  # random, unique per run: what --break-lock names
    run_id: int | None  # the holder's state-db run id (meaningful on its machine)
    user: str
    machine: str
    pid: int
    since: str  # UTC ISO-8601

    def describe(self) -> str:
        run = f"run {self.run_id} " if self.run_id is not None else "run "
        return (
            f"{run}(token {self.token}) of {self.user}@{self.machine}, pid {self.pid},"
            f" since {self.since}"
        )

    def encode(self) -> bytes:
        return (json.dumps(asdict(self), sort_keys=True) + "\n").encode()

    @classmethod
    def decode(cls, data: bytes) -> LockOwner | None:
        try:
            raw = json.loads(data.decode("utf-8"))
            return cls(
                token=str(raw["token"]),
                run_id=None if raw.get("run_id") is None else int(raw["run_id"]),
                user=str(raw["user"]),
                machine=str(raw["machine"]),
                pid=int(raw["pid"]),
                since=str(raw["since"]),
            )
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            return None


def this_owner(token: str, run_id: int | None, since: str) -> LockOwner:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return LockOwner(token, run_id, user, socket.gethostname(), os.getpid(), since)


def lock_path(config_path: str) -> str:
    directory, _, name = config_path.rpartition("/")
    return f"{directory}/.{name}.qsipctl-lock"


def is_stale(owner: LockOwner) -> bool:
    """Taken on this machine by a process that is gone (a killed run)."""
    if owner.machine != socket.gethostname():
        return False
    try:
        os.kill(owner.pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # exists, someone else's
    return False


class LockHeld(ConnectorError):
    """Another run holds the core (the core is reachable: a failure, not unreachable)."""


@dataclass(frozen=True, slots=True)
class LockPolicy:
    break_stale: bool = False
    break_tokens: frozenset[str] = frozenset()


NO_BREAKING = LockPolicy()


class CoreLock:
    """Take and release one core's lock through an open connector."""

    def __init__(
        self, conn: Connector, config_path: str, owner: LockOwner, policy: LockPolicy
    ) -> None:
        self.conn = conn
        self.path = lock_path(config_path)
        self.owner = owner
        self.policy = policy
        self.note = ""  # said in the core's reason (a lock that was broken)

    def acquire(self) -> None:
        """Take the lock or raise :class:`LockHeld` naming its holder."""
        for _ in range(3):
            try:
                created = self.conn.create_exclusive(self.path, self.owner.encode())
            except ConnectorError as exc:
                raise ConnectorError(
                    f"cannot lock the core: {exc}", unreachable=exc.unreachable
                ) from None
            if created:
                return
            data = self.conn.read_file(self.path)
            if data is None:  # released between our two calls: try again
                continue
            holder = LockOwner.decode(data)
            if holder is not None and holder.token == self.owner.token:
                return  # ours (a second core on one file is refused earlier)
            if not self._may_break(holder):
                raise LockHeld(self._held_message(holder))
            self.conn.remove_file(self.path)
            self.note = f"; broke the lock of {holder.describe() if holder else 'unknown owner'}"
        raise LockHeld(f"{self.path}: lock keeps changing hands; try again")

    def _may_break(self, holder: LockOwner | None) -> bool:
        if holder is None:  # empty or torn: a run killed while it took the lock
            return self.policy.break_stale
        if holder.token in self.policy.break_tokens:
            return True
        return self.policy.break_stale and is_stale(holder)

    def _held_message(self, holder: LockOwner | None) -> str:
        if holder is None:
            return (
                f"locked: {self.path} is empty or unreadable (a run killed while taking it?);"
                " --break-stale-locks removes it"
            )
        text = f"locked by {holder.describe()}"
        if is_stale(holder):
            return text + " (stale: that process is gone; --break-stale-locks removes it)"
        if holder.machine != socket.gethostname():
            return text + f" (if that run is dead: --break-lock {holder.token})"
        return text

    def release(self) -> str:
        """Remove the lock if it is still ours; a note for the reason if it was not."""
        with contextlib.suppress(ConnectorError):
            data = self.conn.read_file(self.path)
            holder = None if data is None else LockOwner.decode(data)
            if holder is not None and holder.token == self.owner.token:
                self.conn.remove_file(self.path)
                return ""
            if holder is not None:
                return f"; our lock was broken by {holder.describe()}"
        return ""
