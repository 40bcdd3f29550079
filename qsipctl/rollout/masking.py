"""Keep secret values out of every line qsipctl prints or stores.

Known secret values (the ones revealed for this core) are replaced wherever
they occur.  Text read back from a core may hold *older* secrets we no longer
know, so values of keys that look like credentials are masked by shape too.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from qsipctl.site.secrets import MASK

_WORDS = r"pass|pwd|secret|token|credential|psk|api[_-]?key|private[_-]?key"
# Linear on any input: a key starts only at the start of a word, the look-ahead finds
# the credential word and the possessive *+ never backtracks (a 20 kB token in an old
# file took 20 s to scan before).
_KEY_WORD = rf"(?<![\w.-])(?=[\w.-]*?(?:{_WORDS}))[\w.-]*+"
_SECRET_KEY = rf"[\"']?{_KEY_WORD}[\"']?"
# key = "value", key: 'value' (JSON, YAML, INI), then unquoted values, then XML elements
_QUOTED_VALUE = re.compile(rf"({_SECRET_KEY}\s*[:=]\s*)(\"|')(?:(?!\2)[^\\]|\\.)*\2", re.IGNORECASE)
_PLAIN_VALUE = re.compile(rf"^(\s*{_SECRET_KEY}\s*[:=]\s*)(?![\"'\s])(.+)$", re.IGNORECASE | re.M)
_XML_VALUE = re.compile(rf"(<({_KEY_WORD})>)[^<]*(</\2>)", re.IGNORECASE)


def mask_text(text: str, secrets: Iterable[str] = ()) -> str:
    """Replace known secret values and credential-shaped values with the mask."""
    for value in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(value, MASK)
    text = _QUOTED_VALUE.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}{m.group(2)}", text)
    text = _PLAIN_VALUE.sub(lambda m: f"{m.group(1)}{MASK}", text)
    return _XML_VALUE.sub(lambda m: f"{m.group(1)}{MASK}{m.group(3)}", text)


def mask_bytes(data: bytes, secrets: Iterable[str] = ()) -> str:
    return mask_text(data.decode("utf-8", errors="replace"), secrets)


def one_line(text: str, limit: int = 200) -> str:
    """The last meaningful line of command output, shortened for a reason column."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    line = lines[-1] if lines else ""
    return line if len(line) <= limit else line[: limit - 3] + "..."
