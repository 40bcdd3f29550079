"""Which site a run belongs to, independent of where its file lies.

History and drift used to key on the site file's absolute path: after a move,
or in a CI runner's fresh checkout, ``drift`` found no push at all and
``--retry-failed`` no earlier run.  A site is identified by its name instead:
``--site-id NAME`` when given, else the file's name without its extension
(``inventory/hq.yml`` -> ``hq``).  Cores are then matched by their names.
"""

from __future__ import annotations

import re
from pathlib import Path

from qsipctl.errors import UsageError

_VALID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def identity_of_path(site_path: str) -> str:
    """The default identity: the file's stem (also used to migrate path-keyed history)."""
    return Path(site_path).stem or str(site_path)


def site_identity(site_path: str, site_id: str | None = None) -> str:
    if site_id is None:
        return identity_of_path(site_path)
    if not _VALID.fullmatch(site_id):
        raise UsageError(
            f"--site-id: {site_id!r} is not a name (letters, digits, '.', '_', '-'; up to 128)"
        )
    return site_id
