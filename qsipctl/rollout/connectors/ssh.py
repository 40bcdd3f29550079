"""The ``ssh`` connector (paramiko).

One SSH connection per core carries everything: an SFTP channel for files
and, when there is an ``apply_command``, one exec channel.  Nothing is
spawned locally, so a hundred cores cost a hundred handshakes and a few
loopback-fast round trips each.

Latency detail that matters at scale: OpenSSH disables Nagle only for
interactive sessions.  After authentication it sends two small packets back
to back (a ``hostkeys-00@openssh.com`` notice, then our channel confirmation);
the second waits for the client's ACK of the first, which Linux delays by
up to 40 ms.  We set TCP_NODELAY and re-arm TCP_QUICKACK after every read.
"""

from __future__ import annotations

import contextlib
import errno
import getpass
import logging
import os
import posixpath
import shlex
import socket
import stat
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import paramiko
from paramiko.sftp import (
    CMD_EXTENDED,
    CMD_HANDLE,
    CMD_OPEN,
    SFTP_FLAG_CREATE,
    SFTP_FLAG_EXCL,
    SFTP_FLAG_TRUNC,
    SFTP_FLAG_WRITE,
)
from paramiko.sftp_attr import SFTPAttributes

from qsipctl.errors import QsipctlError
from qsipctl.rollout.connectors import CommandResult, ConnectorContext, temp_path
from qsipctl.rollout.errors import ConnectorError, HostKeyError
from qsipctl.rollout.hostkeys import hostport, known_hosts_for
from qsipctl.site.model import Connection

T = TypeVar("T")
MAX_READ = 16 * 1024 * 1024
MAX_OUTPUT = 64 * 1024
_DEFAULT_KEYS = ("id_ed25519", "id_ecdsa", "id_rsa")

# paramiko logs failures (with tracebacks) from its own thread; Python's last-resort
# handler would print them on stderr.  Every failure reaches the user as one reason.
logging.getLogger("paramiko").addHandler(logging.NullHandler())


class _QuickAckSocket(socket.socket):
    """A TCP socket that acknowledges at once instead of delaying ACKs."""

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        data = super().recv(bufsize, flags)
        with contextlib.suppress(OSError):
            self.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        return data


def parse_jump(spec: str, default_user: str) -> tuple[str, str, int]:
    """``[user@]host[:port]`` (IPv6 in brackets) -> (user, host, port)."""
    user, _, hostport = spec.rpartition("@")
    if hostport.startswith("["):
        host, _, rest = hostport[1:].partition("]")
        port = rest.lstrip(":") or "22"
    else:
        host, _, port = hostport.partition(":")
        port = port or "22"
    if not host or not (port.isascii() and port.isdigit() and 0 < int(port) < 65536):
        raise ConnectorError(f"bad jump host {spec!r} (want user@host:port)", unreachable=True)
    return user or default_user, host, int(port)


class SshConnector:
    def __init__(self, connection: Connection, context: ConnectorContext) -> None:
        self.conn = connection
        self.ctx = context
        self.timeout = context.timeout_for(connection)
        self.user = connection.user or getpass.getuser()
        self.where = hostport(connection.host, connection.port)
        self._transports: list[paramiko.Transport] = []
        try:
            sock = self._open_socket()
            self.transport = self._handshake(sock, connection.host, connection.port, self.user)
            self.sftp = self._lost_guard("open SFTP", self._open_sftp)
        except BaseException:
            self.close()
            raise

    # -- connection set-up -------------------------------------------------
    def _open_socket(self) -> Any:
        if self.conn.jump_host:
            user, host, port = parse_jump(self.conn.jump_host, self.user)
            jump = self._handshake(self._tcp(host, port), host, port, user)
            try:
                return jump.open_channel(
                    "direct-tcpip",
                    (self.conn.host, self.conn.port),
                    ("127.0.0.1", 0),
                    timeout=self.timeout,
                )
            except (paramiko.SSHException, OSError) as exc:
                raise ConnectorError(
                    f"jump host {hostport(host, port)} cannot reach {self.where}: {exc}",
                    unreachable=True,
                ) from None
        return self._tcp(self.conn.host, self.conn.port)

    def _tcp(self, host: str, port: int) -> socket.socket:
        try:
            plain = socket.create_connection((host, port), timeout=self.timeout)
        except TimeoutError:
            raise ConnectorError(
                f"cannot connect to {hostport(host, port)}: timed out after {self.timeout:g}s",
                unreachable=True,
            ) from None
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise ConnectorError(
                f"cannot connect to {hostport(host, port)}: {reason}", unreachable=True
            ) from None
        plain.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock = _QuickAckSocket(fileno=plain.detach())
        sock.settimeout(self.timeout)
        return sock

    def _handshake(self, sock: Any, host: str, port: int, user: str) -> paramiko.Transport:
        with self.ctx.lock:
            store = known_hosts_for(
                self.conn.known_hosts, self.ctx.accept_new_host_keys, self.ctx.cache
            )
        transport = paramiko.Transport(sock)
        self._transports.append(transport)
        transport.banner_timeout = self.timeout
        transport.handshake_timeout = self.timeout
        transport.auth_timeout = self.timeout
        wanted = store.preferred_algorithms(host, port)
        options = transport.get_security_options()
        usable = tuple(a for a in options.key_types if a in wanted)
        if usable:
            options.key_types = usable
        try:
            transport.start_client(timeout=self.timeout)
            if transport.is_active() and not transport.initial_kex_done:
                raise TimeoutError(f"no SSH answer within {self.timeout:g}s")
            server_key = transport.get_remote_server_key()
        except (paramiko.SSHException, EOFError, OSError) as exc:
            detail = transport.get_exception() or exc
            why = str(detail) or type(detail).__name__
            raise ConnectorError(
                f"SSH handshake with {hostport(host, port)} failed: {why}",
                unreachable=True,
            ) from None
        store.verify(host, port, server_key)
        self._authenticate(transport, host, port, user)
        return transport

    def _authenticate(self, transport: paramiko.Transport, host: str, port: int, user: str) -> None:
        tried: list[str] = []
        for label, key in self._keys():
            try:
                transport.auth_publickey(user, key)
                return
            except paramiko.AuthenticationException:
                tried.append(label)
            except (paramiko.SSHException, EOFError, OSError) as exc:
                raise ConnectorError(
                    f"{hostport(host, port)}: connection lost during auth: {exc}", unreachable=True
                ) from None
        if self.conn.password is not None:
            try:
                transport.auth_password(user, self.conn.password.reveal())
                return
            except paramiko.AuthenticationException:
                tried.append(f"password ({self.conn.password.describe()})")
            except (paramiko.SSHException, EOFError, OSError) as exc:
                raise ConnectorError(
                    f"{hostport(host, port)}: connection lost during auth: {exc}", unreachable=True
                ) from None
        methods = ", ".join(tried) or "nothing (no key, agent key or password)"
        raise ConnectorError(
            f"authentication failed for {user}@{hostport(host, port)} (tried {methods})",
            unreachable=True,
        )

    def _keys(self) -> list[tuple[str, paramiko.PKey]]:
        if self.conn.key_file:
            return [(f"key {self.conn.key_file}", self._load_key(self.conn.key_file))]
        keys: list[tuple[str, paramiko.PKey]] = []
        if os.environ.get("SSH_AUTH_SOCK"):
            keys.extend(("ssh-agent key", k) for k in self._agent_keys())
        for name in _DEFAULT_KEYS:
            path = Path("~/.ssh").expanduser() / name
            if path.exists():
                try:
                    keys.append((f"key {path}", self._load_key(str(path))))
                except ConnectorError:
                    continue
        return keys

    def _load_key(self, path: str) -> paramiko.PKey:
        cache_key = f"key:{path}"
        with self.ctx.lock:
            key = self.ctx.cache.get(cache_key)
            if isinstance(key, paramiko.PKey):
                return key
            try:
                key = paramiko.PKey.from_path(Path(path).expanduser())
            except paramiko.PasswordRequiredException:
                raise ConnectorError(
                    f"private key {path} is encrypted: load it into ssh-agent instead",
                    unreachable=True,
                ) from None
            except (OSError, paramiko.SSHException, ValueError) as exc:
                raise ConnectorError(
                    f"cannot load private key {path}: {exc}", unreachable=True
                ) from None
            self.ctx.cache[cache_key] = key
            return key

    def _agent_keys(self) -> list[paramiko.PKey]:
        with self.ctx.lock:
            keys = self.ctx.cache.get("agent")
            if keys is None:
                try:
                    keys = list(paramiko.Agent().get_keys())
                except paramiko.SSHException:
                    keys = []
                self.ctx.cache["agent"] = keys
        return list(keys)

    def _open_sftp(self) -> paramiko.SFTPClient:
        channel = self.transport.open_session(timeout=self.timeout)
        channel.settimeout(self.timeout)
        channel.invoke_subsystem("sftp")
        return paramiko.SFTPClient(channel)

    # -- error mapping -----------------------------------------------------
    def _lost_guard(self, what: str, fn: Callable[[], T]) -> T:
        """Run ``fn``; a dropped or silent connection becomes ``unreachable``."""
        try:
            return fn()
        except QsipctlError:
            raise
        except TimeoutError:
            raise ConnectorError(
                f"{what}: no answer from {self.where} within {self.timeout:g}s", unreachable=True
            ) from None
        except (paramiko.SSHException, EOFError, ConnectionError) as exc:
            raise ConnectorError(
                f"{what}: connection to {self.where} lost ({exc or type(exc).__name__})",
                unreachable=True,
            ) from None
        except OSError as exc:
            if not self.transport.is_active():
                raise ConnectorError(
                    f"{what}: connection to {self.where} lost", unreachable=True
                ) from None
            raise ConnectorError(f"{what}: {_sftp_reason(exc)}") from None

    # -- the Connector interface ------------------------------------------
    def native_path(self, path: str) -> str:
        return path

    def read_file(self, path: str) -> bytes | None:
        def read() -> bytes | None:
            try:
                fh = self.sftp.open(path, "rb")
            except FileNotFoundError:
                return None
            except OSError as exc:
                if exc.errno == errno.ENOENT:
                    return None
                raise
            with fh:
                data = fh.read(MAX_READ + 1)
            if len(data) > MAX_READ:
                raise ConnectorError(f"cannot read {path}: larger than {MAX_READ} bytes")
            return bytes(data)

        return self._lost_guard(f"cannot read {path}", read)

    def put_file(self, path: str, data: bytes, mode: int = 0o600) -> None:
        def put() -> None:
            target = self._follow_links(path)
            directory = target.rpartition("/")[0]
            tmp = temp_path(target)
            try:
                fh = self._create(tmp, mode, exclusive=True)
            except OSError as exc:
                reason = _sftp_reason(exc)
                raise ConnectorError(
                    f"cannot create a temporary file in {directory}/: {reason}"
                ) from None
            try:
                self._fill(fh, data, mode)
                self.sftp.posix_rename(tmp, target)
            except BaseException:
                self._discard(tmp)
                raise

        self._lost_guard(f"cannot write {path}", put)

    def create_exclusive(self, path: str, data: bytes, mode: int = 0o600) -> bool:
        def create() -> bool:
            try:
                fh = self._create(path, mode, exclusive=True)
            except OSError as exc:
                if self._exists(path):  # SFTP v3 says only "Failure" for EEXIST
                    return False
                raise ConnectorError(f"cannot create {path}: {_sftp_reason(exc)}") from None
            try:
                self._fill(fh, data, mode)
            except BaseException:
                self._discard(path)
                raise
            return True

        return self._lost_guard(f"cannot create {path}", create)

    def _create(self, path: str, mode: int, exclusive: bool) -> paramiko.SFTPFile:
        """Open a new file for writing with ``mode`` in the SFTP OPEN request itself.

        paramiko's ``open()`` sends no attributes, so the server creates the file
        0666 & ~umask and a later chmod narrows it: a window in which a password
        is readable by others.  OpenSSH passes these permissions to open(2)."""
        flags = SFTP_FLAG_WRITE | SFTP_FLAG_CREATE | SFTP_FLAG_TRUNC
        if exclusive:
            flags |= SFTP_FLAG_EXCL
        attrs = SFTPAttributes()
        attrs.st_mode = mode
        kind, msg = self.sftp._request(CMD_OPEN, path, flags, attrs)  # type: ignore[attr-defined]
        if kind != CMD_HANDLE:
            raise paramiko.SFTPError("expected a file handle")
        return paramiko.SFTPFile(self.sftp, msg.get_binary(), "wb")

    def _fill(self, fh: paramiko.SFTPFile, data: bytes, mode: int) -> None:
        with fh:
            fh.chmod(mode)  # exactly this mode: the server's umask may have narrowed it
            # Not pipelined: paramiko drops the status of pipelined writes, so a full
            # disk would go unnoticed and a short file be renamed into place.
            # Unpipelined, each write's status is checked.
            fh.write(data)
            fh.flush()
            self._fsync(fh)

    def _exists(self, path: str) -> bool:
        try:
            self.sftp.lstat(path)
        except OSError:
            return False
        return True

    def _follow_links(self, path: str) -> str:
        """Where a symlink at ``path`` points: the rename must replace the file the
        agent reads, not the link."""
        for _ in range(8):
            try:
                st_mode = self.sftp.lstat(path).st_mode or 0
            except FileNotFoundError:
                return path
            if not stat.S_ISLNK(st_mode):
                return path
            link = self.sftp.readlink(path) or ""
            path = posixpath.normpath(posixpath.join(posixpath.dirname(path), link))
        raise ConnectorError(f"too many levels of symbolic links at {path}")

    def _fsync(self, fh: paramiko.SFTPFile) -> None:
        """Flush to disk on the core (OpenSSH's fsync@openssh.com extension)."""
        self.sftp._request(CMD_EXTENDED, "fsync@openssh.com", fh.handle)  # type: ignore[attr-defined]

    def _discard(self, tmp: str) -> None:
        try:
            if self.transport.is_active():
                self.sftp.remove(tmp)
        except (OSError, paramiko.SSHException, EOFError):
            pass

    def list_dir(self, path: str) -> list[str]:
        return sorted(self._lost_guard(f"cannot list {path}", lambda: self.sftp.listdir(path)))

    def remove_file(self, path: str) -> None:
        def remove() -> None:
            with contextlib.suppress(FileNotFoundError):
                self.sftp.remove(path)

        self._lost_guard(f"cannot remove {path}", remove)

    def run(self, command: str, timeout: float) -> CommandResult:
        return self._lost_guard(
            f"cannot run {shlex.quote(command)}", lambda: self._run(command, timeout)
        )

    def _run(self, command: str, timeout: float) -> CommandResult:
        deadline = time.monotonic() + timeout
        channel = self.transport.open_session(timeout=timeout)
        try:
            channel.settimeout(timeout)
            channel.exec_command(command)
            out = _drain(channel.recv, deadline)
            err = _drain(channel.recv_stderr, deadline)
            if not channel.status_event.wait(max(0.0, deadline - time.monotonic())):
                raise TimeoutError
            status = channel.exit_status
            if status == -1 and not self.transport.is_active():
                raise paramiko.SSHException("dropped while the command ran")
        except TimeoutError:
            raise ConnectorError(
                f"command timed out after {timeout:g}s (it may still be running on the core:"
                f" SSH gives no portable way to stop it): {command}"
            ) from None
        finally:
            channel.close()
        return CommandResult(status, out.decode(errors="replace"), err.decode(errors="replace"))

    def close(self) -> None:
        for transport in reversed(self._transports):
            with contextlib.suppress(Exception):
                transport.close()
        self._transports.clear()


def _sftp_reason(exc: OSError) -> str:
    """SFTP v3 reports EROFS, ENOSPC and friends as a bare "Failure": add a hint."""
    reason = exc.strerror or str(exc)
    if reason == "Failure":
        return "Failure (the server gives no detail: read-only or full filesystem?)"
    return reason


def _drain(recv: Callable[[int], bytes], deadline: float) -> bytes:
    buf = bytearray()
    while True:
        if time.monotonic() > deadline:
            raise TimeoutError
        chunk = recv(32768)
        if not chunk:
            return bytes(buf)
        if len(buf) < MAX_OUTPUT:
            buf += chunk[: MAX_OUTPUT - len(buf)]


__all__ = ["HostKeyError", "SshConnector", "parse_jump"]
