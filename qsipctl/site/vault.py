"""Ansible Vault (format 1.1 and 1.2, AES256) decryption with the ``cryptography`` library.

An existing Ansible inventory keeps its passwords in vault-encrypted vars
files or ``!vault`` values; refusing them would make users decrypt secrets
to disk.  The envelope is ``$ANSIBLE_VAULT;1.1;AES256`` (1.2 adds
``;VAULT_ID``) followed by hex lines.  The body is hex of
``hex(salt) \\n hex(hmac) \\n hex(ciphertext)``; PBKDF2-HMAC-SHA256 with
10000 iterations derives 80 bytes from the password and salt: AES-256 key,
HMAC-SHA256 key and the CTR counter block.  The HMAC over the ciphertext is
checked (constant time) before anything is decrypted.  No crypto is written
here: every primitive is ``cryptography``'s.
"""

from __future__ import annotations

import binascii
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

HEADER = "$ANSIBLE_VAULT"
DEFAULT_ID = "default"
ENV_PASSWORD_FILE = "ANSIBLE_VAULT_PASSWORD_FILE"
ENV_IDENTITY_LIST = "ANSIBLE_VAULT_IDENTITY_LIST"


class VaultError(ValueError):
    """A vault value that cannot be decrypted; ``str()`` is the one-line reason."""


class VaultPasswordError(VaultError):
    """No password given, or none of them opens the value (the data itself is fine)."""


class VaultStr(str):
    """Plain text that came out of a vault: a secret, but not one written in the clear."""

    __slots__ = ()


class VaultLocked(str):
    """A vault value left encrypted because no password was given (``--no-secrets``)."""

    __slots__ = ()


class UnsafeStr(str):
    """An ``!unsafe`` value: plain text that is never templated."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class VaultSecret:
    """One vault password with its vault id (``label@file``), as ansible's ``--vault-id``."""

    label: str
    password: bytes
    source: str  # the file it was read from, for messages

    def __repr__(self) -> str:
        return f"VaultSecret(label={self.label!r}, source={self.source!r})"


@dataclass(frozen=True, slots=True)
class VaultKeys:
    """Every vault password given on the command line or in the environment."""

    secrets: tuple[VaultSecret, ...] = ()
    lenient: bool = False  # keep undecryptable values as VaultLocked (validate --no-secrets)

    def decrypt(self, envelope: str) -> VaultStr:
        """Decrypt one envelope; raise :class:`VaultError` with a readable reason."""
        version, vault_id, body = parse_envelope(envelope)
        if not self.secrets:
            raise VaultPasswordError(
                "this value is vault-encrypted but no vault password was given "
                "(--vault-password-file FILE, --vault-id [LABEL@]FILE or "
                f"{ENV_PASSWORD_FILE})"
            )
        salt, mac, ciphertext = _split_body(body)
        # As ansible: the secret whose label matches the envelope's id is tried first.
        ordered = sorted(self.secrets, key=lambda s: s.label != vault_id)
        for secret in ordered:
            plain = _try_decrypt(secret.password, salt, mac, ciphertext)
            if plain is not None:
                try:
                    return VaultStr(plain.decode("utf-8"))
                except UnicodeDecodeError:
                    raise VaultError("the decrypted vault value is not UTF-8 text") from None
        tried = ", ".join(f"{s.label}@{s.source}" for s in self.secrets)
        which = f" (vault id {vault_id!r})" if version == "1.2" else ""
        raise VaultPasswordError(
            f"wrong vault password: none of {tried} decrypts this value{which}"
        )


def is_vault(text: str) -> bool:
    return text.lstrip().startswith(HEADER + ";")


def parse_envelope(envelope: str) -> tuple[str, str, bytes]:
    """Header fields and the hex body of ``$ANSIBLE_VAULT;1.x;AES256[;id]``."""
    lines = envelope.strip().splitlines()
    if not lines:
        raise VaultError("empty vault value")
    header = [part.strip() for part in lines[0].split(";")]
    if len(header) < 3 or header[0] != HEADER:
        raise VaultError("not a vault value: expected a '$ANSIBLE_VAULT;1.1;AES256' header")
    version, cipher = header[1], header[2]
    if version not in ("1.1", "1.2"):
        raise VaultError(f"unsupported vault format {version}: qsipctl reads 1.1 and 1.2")
    if cipher != "AES256":
        raise VaultError(f"unsupported vault cipher {cipher!r}: only AES256 exists")
    vault_id = header[3] if len(header) > 3 and header[3] else DEFAULT_ID
    body = "".join(line.strip() for line in lines[1:]).encode("ascii", "replace")
    return version, vault_id, body


def _split_body(body: bytes) -> tuple[bytes, bytes, bytes]:
    try:
        salt_hex, mac_hex, cipher_hex = binascii.unhexlify(body).split(b"\n", 2)
        return (
            binascii.unhexlify(salt_hex),
            binascii.unhexlify(mac_hex),
            binascii.unhexlify(cipher_hex),
        )
    except (binascii.Error, ValueError):
        raise VaultError("damaged vault value: the body is not the expected hex data") from None


def _try_decrypt(password: bytes, salt: bytes, mac: bytes, ciphertext: bytes) -> bytes | None:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes, hmac, padding
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

    derived = PBKDF2HMAC(hashes.SHA256(), length=80, salt=salt, iterations=10000).derive(password)
    aes_key, mac_key, counter = derived[:32], derived[32:64], derived[64:]
    check = hmac.HMAC(mac_key, hashes.SHA256())
    check.update(ciphertext)
    try:
        check.verify(mac)
    except InvalidSignature:
        return None
    decryptor = Cipher(algorithms.AES(aes_key), modes.CTR(counter)).decryptor()
    padded = decryptor.update(ciphertext) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    try:
        return unpadder.update(padded) + unpadder.finalize()
    except ValueError:
        return None


def load_keys(
    password_files: Sequence[str] = (), vault_ids: Sequence[str] = (), *, environ: bool = True
) -> VaultKeys:
    """Read ``--vault-password-file`` / ``--vault-id`` (and ansible's environment variables).

    Raises :class:`VaultError` for a file that cannot be read.  Executable
    password scripts are refused (qsipctl never runs them).
    """
    specs = [f"{DEFAULT_ID}@{p}" for p in password_files] + list(vault_ids)
    if environ:
        env_file = os.environ.get(ENV_PASSWORD_FILE)
        if env_file:
            specs.append(f"{DEFAULT_ID}@{env_file}")
        env_ids = os.environ.get(ENV_IDENTITY_LIST)
        if env_ids:
            specs.extend(s.strip() for s in env_ids.split(",") if s.strip())
    secrets = []
    for spec in specs:
        label, _, path = spec.rpartition("@")
        secrets.append(_read_secret(label or DEFAULT_ID, path))
    return VaultKeys(tuple(secrets))


def _read_secret(label: str, path: str) -> VaultSecret:
    if path == "prompt":
        import getpass
        import sys

        if not sys.stdin.isatty():  # a script or CI job: never wait for, or echo, a password
            raise VaultError(
                f"--vault-id {label}@prompt needs a terminal; give a password file instead"
            )
        try:
            text = getpass.getpass(f"Vault password ({label}): ")
        except (EOFError, OSError):
            raise VaultError("cannot prompt for a vault password here") from None
        return VaultSecret(label, text.encode(), "prompt")
    file = Path(path).expanduser()
    try:
        if file.is_file() and file.stat().st_mode & 0o111:
            raise VaultError(
                f"vault password file {path} is executable: qsipctl does not run password "
                "scripts; give a file holding the password"
            )
        data = file.read_bytes()
    except OSError as exc:
        raise VaultError(f"cannot read vault password file {path}: {exc.strerror}") from None
    password = data.strip()
    if not password:
        raise VaultError(f"vault password file {path} is empty")
    return VaultSecret(label, password, path)
