"""The ``local`` connector: a directory stands in for a core.

Used by the embedded demo and to produce config bundles.  The core's
``config_path`` is placed below ``local_dir`` as if that directory were the
core's root filesystem; ``apply_command`` runs with ``/bin/sh`` in it.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
from dataclasses import replace
from pathlib import Path

from qsipctl.rollout.connectors import CommandResult, ConnectorContext, temp_path
from qsipctl.rollout.errors import ConnectorError
from qsipctl.site.model import Connection, Core


class LocalConnector:
    def __init__(self, connection: Connection, context: ConnectorContext) -> None:
        if not connection.local_dir:
            raise ConnectorError("connector 'local' needs qsipctl_local_dir", unreachable=True)
        self.root = Path(connection.local_dir).expanduser().resolve()
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConnectorError(
                f"cannot create {self.root}: {exc.strerror}", unreachable=True
            ) from None
        self.timeout = context.timeout_for(connection)

    def _real(self, path: str) -> Path:
        return self.root / path.lstrip("/")

    def native_path(self, path: str) -> str:
        return str(self._real(path))

    def read_file(self, path: str) -> bytes | None:
        try:
            return self._real(path).read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise ConnectorError(f"cannot read {path}: {exc.strerror}") from None

    def put_file(self, path: str, data: bytes, mode: int = 0o600) -> None:
        real = self._real(path)
        if real.is_symlink():  # replace the file it points to, not the link
            real = Path(os.path.realpath(real))
        tmp = Path(temp_path(str(real)))
        try:
            real.parent.mkdir(parents=True, exist_ok=True)
            _write_new(tmp, data, mode)
            os.replace(tmp, real)
            _fsync_dir(real.parent)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise ConnectorError(f"cannot write {path}: {exc.strerror}") from None

    def create_exclusive(self, path: str, data: bytes, mode: int = 0o600) -> bool:
        real = self._real(path)
        try:
            real.parent.mkdir(parents=True, exist_ok=True)
            _write_new(real, data, mode)
        except FileExistsError:
            return False
        except OSError as exc:
            raise ConnectorError(f"cannot create {path}: {exc.strerror}") from None
        return True

    def list_dir(self, path: str) -> list[str]:
        try:
            return sorted(os.listdir(self._real(path)))
        except OSError as exc:
            raise ConnectorError(f"cannot list {path}: {exc.strerror}") from None

    def remove_file(self, path: str) -> None:
        try:
            self._real(path).unlink(missing_ok=True)
        except OSError as exc:
            raise ConnectorError(f"cannot remove {path}: {exc.strerror}") from None

    def run(self, command: str, timeout: float) -> CommandResult:
        proc = subprocess.Popen(
            ["/bin/sh", "-c", command],
            cwd=self.root,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, "QSIPCTL_ROOT": str(self.root)},
            start_new_session=True,  # a Ctrl-C at the terminal must not kill it mid-apply
        )
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            # the whole session: killing only the shell would leave its children running
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise ConnectorError(
                f"command timed out after {timeout:g}s (stopped): {shlex.quote(command)}"
            ) from None
        return CommandResult(
            proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")
        )

    def close(self) -> None:
        return None


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Create ``path`` (it must not exist) with ``mode`` from the first instant."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.fchmod(fd, mode)  # exactly the mode asked for, not narrowed by the umask
        view = memoryview(data)
        while view:  # os.write may write less than asked (a nearly full disk)
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        path.unlink(missing_ok=True)
        raise
    os.close(fd)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def local_copy(core: Core, root: str | Path, keep_apply_command: bool = False) -> Core:
    """The same core reached through the directory ``root/<core name>`` instead.

    For the embedded demo and for producing config bundles from a real site:
    the core's ``config_path`` is kept (below that directory); its
    ``apply_command`` is dropped unless asked for, since it was written for
    the site's agent, not for this machine.
    """
    connection = replace(
        core.connection,
        connector="local",
        local_dir=str(Path(root) / core.name),
        apply_command=core.connection.apply_command if keep_apply_command else None,
    )
    return replace(core, connection=connection)
