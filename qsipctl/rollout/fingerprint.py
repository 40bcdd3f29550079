"""Keyed fingerprints of documents: compare them without publishing an oracle.

A rendered document is public except for its passwords (``qsipctl render``
prints it with them masked), so its plain SHA-256 lets anyone who sees the
hash try every short password offline: a 6-digit SIP password falls in under a
second.  qsipctl therefore never shows or stores a plain hash of a document.
It shows ``HMAC-SHA256(key, SHA-256(document))`` instead, with a random key
kept beside the state database (mode 0600).  Without the key the fingerprint
says nothing; with it, two fingerprints still compare equal exactly when the
documents do, which is all history, drift and the JSON output need.

Hashing the SHA-256 digest (rather than the document) lets a state database
written by an older qsipctl, which stored plain digests, be migrated exactly.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from qsipctl.rollout.errors import StateDbError

KEY_BYTES = 32
PREFIX = "k1:"  # so a fingerprint is never mistaken for a plain SHA-256
KEY_NAME = "fingerprint.key"


@dataclass(frozen=True, slots=True)
class Fingerprinter:
    """Turns documents (or their SHA-256 digests) into keyed fingerprints."""

    key: bytes

    def of_digest(self, digest: bytes) -> str:
        return PREFIX + hmac.new(self.key, digest, hashlib.sha256).hexdigest()[:40]

    def __call__(self, data: bytes) -> str:
        return self.of_digest(hashlib.sha256(data).digest())

    @classmethod
    def ephemeral(cls) -> Fingerprinter:
        """A key that lives only in this process (nothing it makes is kept)."""
        return cls(secrets.token_bytes(KEY_BYTES))


def key_path(state_db: Path) -> Path:
    return state_db.parent / KEY_NAME


def load_key(path: Path, create: bool = True) -> Fingerprinter | None:
    """The key at ``path``, created 0600 when missing (``create``); None when it is
    missing and may not be created (a read-only state directory)."""
    try:
        data = _read_private(path)
    except FileNotFoundError:
        if not create:
            return None
        data = _create(path)
    except OSError as exc:
        raise StateDbError(f"cannot read fingerprint key {path}: {exc.strerror}") from None
    if len(data) != KEY_BYTES:
        raise StateDbError(f"{path}: not a qsipctl fingerprint key ({len(data)} bytes)")
    return Fingerprinter(data)


def _read_private(path: Path) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        mode = stat.S_IMODE(os.fstat(fd).st_mode)
        if mode & 0o077:  # someone widened it: narrow again (we are its owner)
            try:
                os.fchmod(fd, 0o600)
            except OSError as exc:
                raise StateDbError(
                    f"fingerprint key {path} is mode {mode:04o} and cannot be made 0600:"
                    f" {exc.strerror}"
                ) from None
        return os.read(fd, KEY_BYTES + 1)
    finally:
        os.close(fd)


def _create(path: Path) -> bytes:
    """Write the key to a temp file, then link it into place: another run starting
    at the same moment sees no key or the whole key, and both end up using one."""
    data = secrets.token_bytes(KEY_BYTES)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)
        except FileExistsError:  # another run was first: use its key
            return _read_private(path)
    except OSError as exc:
        raise StateDbError(f"cannot create fingerprint key {path}: {exc.strerror}") from None
    finally:
        tmp.unlink(missing_ok=True)
    return data
