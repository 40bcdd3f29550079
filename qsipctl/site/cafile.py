"""``tls.ca_file``: resolved beside the file that names it, and checked at load.

The probes open the CA bundle on the machine running qsipctl, so a relative
path must mean the same thing whatever the working directory is (like
``file:`` secrets), and a missing or empty bundle must surface in
``validate`` rather than as a handshake failure during a rollout.
"""

from __future__ import annotations

from pathlib import Path

from qsipctl.errors import Location

MAX_CA_BYTES = 16 * 1024 * 1024  # far above any real bundle; stops /dev/zero-like files
PEM_MARKER = b"-----BEGIN CERTIFICATE-----"


def resolve_beside(written: str, location: Location | None, fallback: Path) -> str:
    """Absolute path of ``written``, relative to the directory of the defining file."""
    try:
        path = Path(written).expanduser()
    except RuntimeError:  # no home directory to expand ~ against
        path = Path(written)
    if path.is_absolute():
        return str(path)
    base = Path(location.file).resolve().parent if location and location.file else fallback
    return str(base / path)


def ca_file_problem(path: str) -> str | None:
    """Why ``path`` cannot serve as a CA bundle, or None when it holds a PEM certificate."""
    target = Path(path)
    try:
        if not target.exists():
            return f"CA file {path} does not exist"
        if not target.is_file():
            return f"CA file {path} is not a regular file"
        if target.stat().st_size > MAX_CA_BYTES:
            return f"CA file {path} is larger than {MAX_CA_BYTES // 2**20} MiB"
        data = target.read_bytes()
    except OSError as exc:
        return f"cannot read CA file {path}: {exc.strerror or exc}"
    if PEM_MARKER not in data:
        return f"CA file {path} holds no PEM certificate ({PEM_MARKER.decode()} ...)"
    return _openssl_problem(path)


def _openssl_problem(path: str) -> str | None:
    """The same loader the TLS transport uses, so 'valid' means 'usable'."""
    import ssl

    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cafile=path)
    except (OSError, ssl.SSLError) as exc:
        return f"CA file {path} holds no usable PEM certificate ({exc.__class__.__name__}: {exc})"
    return None
