"""Connectors: how the engine reaches a core.

The engine only ever asks a connector to read a file, put a file (durably and
atomically), list a directory, remove a file and run a command.  Everything
transport-specific (SSH, a local directory, one day Core Manager's HTTPS API)
lives in one module per transport, registered in :data:`REGISTRY` by the name
used in inventories (``qsipctl_connector``).  Adding a transport means adding a
module and one line here; the engine and the safe-write protocol do not change.
"""

from __future__ import annotations

import importlib
import re
import secrets
import threading
from dataclasses import dataclass, field
from typing import Any, Protocol

from qsipctl.rollout.errors import ConnectorError
from qsipctl.site.model import Connection

# connector name -> "module:factory"; factories take (connection, context)
REGISTRY: dict[str, str] = {
    "ssh": "qsipctl.rollout.connectors.ssh:SshConnector",
    "local": "qsipctl.rollout.connectors.local:LocalConnector",
}


def temp_path(path: str) -> str:
    """Where a connector stages ``path`` before the atomic rename (same directory)."""
    directory, _, name = path.rpartition("/")
    return f"{directory}/.{name}.qsipctl-{secrets.token_hex(4)}.tmp"


def is_stale_temp(entry: str, name: str) -> bool:
    """Is directory ``entry`` a temp file qsipctl may have left beside ``name``?

    Every name qsipctl stages through :func:`temp_path` is covered: the file
    itself, its backups and its pending marker (``.<name>.qsipctl-pending``,
    whose own temp file starts with two dots).  Only called while the core lock
    is held, so no other qsipctl run is writing one of them."""
    backup = r"(?:\.\d{8}T\d{6}\.\d{6}Z\.bak)?"
    file = rf"\.{re.escape(name)}{backup}\.qsipctl-[0-9a-f]{{8}}\.tmp"
    marker = rf"\.\.{re.escape(name)}\.qsipctl-pending\.qsipctl-[0-9a-f]{{8}}\.tmp"
    return re.fullmatch(f"{file}|{marker}", entry) is not None


@dataclass(frozen=True)
class CommandResult:
    exit_status: int
    stdout: str
    stderr: str


class Connector(Protocol):
    """One open session with one core."""

    def read_file(self, path: str) -> bytes | None:
        """The file's bytes, or None when it does not exist."""
        ...

    def put_file(self, path: str, data: bytes, mode: int = 0o600) -> None:
        """Replace ``path`` atomically and durably: readers see old or new, never part.

        The result has exactly ``mode``; the temp file is created with it (never
        wider first), so a password is never readable by others, not even briefly."""
        ...

    def create_exclusive(self, path: str, data: bytes, mode: int = 0o600) -> bool:
        """Create ``path`` only if it does not exist (O_EXCL); False when it exists."""
        ...

    def list_dir(self, path: str) -> list[str]: ...

    def remove_file(self, path: str) -> None: ...

    def run(self, command: str, timeout: float) -> CommandResult: ...

    def native_path(self, path: str) -> str:
        """``path`` as a command run on the core sees it (for ``{path}`` in apply_command)."""
        ...

    def close(self) -> None: ...


@dataclass
class ConnectorContext:
    """What connectors of one run share: host-key policy, caches, a lock."""

    accept_new_host_keys: bool = False
    timeout: float | None = None  # overrides Connection.timeout when set
    cache: dict[str, Any] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def timeout_for(self, connection: Connection) -> float:
        return self.timeout if self.timeout is not None else connection.timeout


def open_connector(name: str, connection: Connection, context: ConnectorContext) -> Connector:
    """Open a session with one core using the connector its inventory names."""
    target = REGISTRY.get(connection.connector)
    if target is None:
        raise ConnectorError(f"{name}: unknown connector {connection.connector!r}")
    module_name, _, attr = target.partition(":")
    factory = getattr(importlib.import_module(module_name), attr)
    connector: Connector = factory(connection, context)
    return connector
