"""Keep secret values out of every line qsipctl prints or stores.

Known secret values (the ones revealed for this core) are replaced wherever
they occur.  Text read back from a core may hold *older* secrets we no longer
know, so values of keys that look like credentials are masked by shape too.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from qsipctl.site.secrets import MASK

_SECRET_KEY = r"[\"']?[\w.-]*(?:password|passwd|secret|token|passphrase)[\w.-]*[\"']?"
_JSON_VALUE = re.compile(rf"({_SECRET_KEY}\s*:\s*)\"(?:[^\"\\]|\\.)*\"", re.IGNORECASE)
_PLAIN_VALUE = re.compile(rf"^(\s*{_SECRET_KEY}\s*[:=]\s*)(?![\"\s])(.+)$", re.IGNORECASE | re.M)


def mask_text(text: str, secrets: Iterable[str] = ()) -> str:
    """Replace known secret values and credential-shaped values with the mask."""
    for value in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(value, MASK)
    text = _JSON_VALUE.sub(lambda m: f'{m.group(1)}"{MASK}"', text)
    return _PLAIN_VALUE.sub(lambda m: f"{m.group(1)}{MASK}", text)


def mask_bytes(data: bytes, secrets: Iterable[str] = ()) -> str:
    return mask_text(data.decode("utf-8", errors="replace"), secrets)


def one_line(text: str, limit: int = 200) -> str:
    """The last meaningful line of command output, shortened for a reason column."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    line = lines[-1] if lines else ""
    return line if len(line) <= limit else line[: limit - 3] + "..."
