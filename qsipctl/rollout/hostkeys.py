"""Host-key verification against OpenSSH ``known_hosts`` files.

Strict by default, like ``StrictHostKeyChecking=yes``: an unknown key is
refused, and so is a changed one, each with the host and the SHA256
fingerprint OpenSSH would show.  ``accept_new`` behaves like
``StrictHostKeyChecking=accept-new``: unknown hosts are recorded (appended, so
comments and hashed entries stay as they are); a *changed* key is still
refused.  One store per file is shared by all threads of a run.
"""

from __future__ import annotations

import base64
import hashlib
import os
import threading
from pathlib import Path

import paramiko

from qsipctl.rollout.errors import HostKeyError

# paramiko names a server may offer for a key type stored in known_hosts
_ALGORITHMS_FOR_TYPE = {
    "ssh-rsa": ("rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"),
}


def fingerprint(key: paramiko.PKey) -> str:
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def hostport(host: str, port: int) -> str:
    """``host:port`` for messages, with IPv6 literals in brackets so the port is clear."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def host_entry(host: str, port: int) -> str:
    """The name OpenSSH writes in known_hosts: ``host`` or ``[host]:port``."""
    return host if port == 22 else f"[{host}]:{port}"


class KnownHosts:
    def __init__(self, path: Path, accept_new: bool = False) -> None:
        self.path = path
        self.accept_new = accept_new
        self._lock = threading.Lock()
        self._keys = paramiko.HostKeys()
        if path.exists():
            try:
                self._keys.load(str(path))
            except (OSError, paramiko.SSHException) as exc:
                raise HostKeyError(f"cannot read known_hosts {path}: {exc}") from None

    def preferred_algorithms(self, host: str, port: int) -> tuple[str, ...]:
        """Key algorithms to ask for, so the server shows the key type we know."""
        with self._lock:
            known = self._keys.lookup(host_entry(host, port))
        if not known:
            return ()
        algos: list[str] = []
        for key_type in known:
            algos.extend(_ALGORITHMS_FOR_TYPE.get(key_type, (key_type,)))
        return tuple(algos)

    def verify(self, host: str, port: int, key: paramiko.PKey) -> None:
        entry = host_entry(host, port)
        where = hostport(host, port)
        with self._lock:
            known = self._keys.lookup(entry)
            if known:
                stored = known.get(key.get_name())
                if stored is not None and stored.asbytes() == key.asbytes():
                    return
                raise HostKeyError(
                    f"host key for {where} CHANGED: server offers {key.get_name()} "
                    f"{fingerprint(key)}, {self.path} has another key; refusing "
                    "(remove the old entry with ssh-keygen -R if the change is expected)"
                )
            if not self.accept_new:
                raise HostKeyError(
                    f"host key for {where} is unknown ({key.get_name()} {fingerprint(key)}) "
                    f"and not in {self.path}; refusing (use --accept-new-host-keys to record it)"
                )
            self._record(entry, key)

    def _record(self, entry: str, key: paramiko.PKey) -> None:
        self._keys.add(entry, key.get_name(), key)
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            needs_newline = self.path.exists() and not self.path.read_bytes().endswith(b"\n")
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            with os.fdopen(fd, "a") as fh:
                if needs_newline and self.path.stat().st_size:
                    fh.write("\n")
                fh.write(f"{entry} {key.get_name()} {key.get_base64()}\n")
        except OSError as exc:
            raise HostKeyError(f"cannot record host key in {self.path}: {exc.strerror}") from None


def known_hosts_for(path: str | None, accept_new: bool, cache: dict[str, object]) -> KnownHosts:
    """The shared store for ``path`` (default ~/.ssh/known_hosts); caller holds the lock."""
    real = Path(path or "~/.ssh/known_hosts").expanduser()
    cache_key = f"known_hosts:{real}"
    store = cache.get(cache_key)
    if not isinstance(store, KnownHosts):
        store = KnownHosts(real, accept_new)
        cache[cache_key] = store
    return store
