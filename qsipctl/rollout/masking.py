"""Keep secret values out of every line qsipctl prints or stores.

Secrets are masked *by field*, never by searching for their text: replacing
every occurrence of a password's text garbles host names when the password is
short, and when it equals another field (an extension number) the "change"
that masking makes in a diff gives the password away.  So:

* documents are masked by field: the value after a credential-named key
  (JSON, YAML, INI, XML), wherever it stands; JSON documents are also parsed
  so that a secret that changed can be named without showing it;
* what the remote side says (``apply_command`` output) is masked by shape
  anywhere in a line before it is shown or stored, because it may quote an
  *old* password qsipctl never knew.  A current password is also replaced
  there when it stands as a token of its own (between blanks, quotes, ``=``
  or ``:``), never inside a longer word such as a host name.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from qsipctl.site.secrets import MASK

_WORDS = r"pass|pwd|secret|token|credential|psk|api[_-]?key|private[_-]?key"
# Linear on any input: a key starts only at the start of a word, the look-ahead finds
# the credential word and the possessive *+ never backtracks (a 20 kB token in an old
# file took 20 s to scan before).
_KEY_WORD = rf"(?<![\w.-])(?=[\w.-]*?(?:{_WORDS}))[\w.-]*+"
_SECRET_KEY = rf"[\"']?{_KEY_WORD}[\"']?"
# key = "value", key: 'value' (JSON, YAML, INI), then unquoted values, then XML elements.
# Unquoted values are masked to the end of the line, wherever the key stands in it
# ("apply_command exited 4: old password=hunter2 rejected").
_QUOTED_VALUE = re.compile(rf"({_SECRET_KEY}\s*[:=]\s*)(\"|')(?:(?!\2)[^\\]|\\.)*\2", re.IGNORECASE)
_PLAIN_VALUE = re.compile(rf"({_SECRET_KEY}[ \t]*[:=][ \t]*)(?![\"'\s])[^\n]+", re.IGNORECASE)
_XML_VALUE = re.compile(rf"(<({_KEY_WORD})>)[^<]*(</\2>)", re.IGNORECASE)
_SECRET_FIELD = re.compile(rf"(?:{_WORDS})", re.IGNORECASE)
_TOKEN_BEFORE = r"(?<![^\s\"'=:(\[<>])"
_TOKEN_AFTER = r"(?![^\s\"',;:)\]<>])"


def mask_shapes(text: str) -> str:
    """Mask values of credential-looking keys anywhere in ``text`` (values we may not know)."""
    text = _QUOTED_VALUE.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}{m.group(2)}", text)
    text = _PLAIN_VALUE.sub(lambda m: f"{m.group(1)}{MASK}", text)
    return _XML_VALUE.sub(lambda m: f"{m.group(1)}{MASK}{m.group(3)}", text)


def mask_remote(text: str, secrets: Iterable[str] = ()) -> str:
    """Mask what a core (or any foreign text) says before it is shown or stored."""
    text = mask_shapes(text)
    for value in sorted({s for s in secrets if s.strip()}, key=len, reverse=True):
        text = re.sub(f"{_TOKEN_BEFORE}{re.escape(value)}{_TOKEN_AFTER}", MASK, text)
    return text


def one_line(text: str, limit: int = 200) -> str:
    """The last meaningful line of command output, shortened for a reason column."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    line = lines[-1] if lines else ""
    return line if len(line) <= limit else line[: limit - 3] + "..."


@dataclass(frozen=True, slots=True)
class MaskedDocument:
    """A document with its secret fields masked, and those fields' values by path."""

    text: str
    secrets: dict[str, str] = field(default_factory=dict)
    parsed: bool = False  # False: not JSON, masked by shape only


def mask_document(data: bytes) -> MaskedDocument:
    """Mask the secret *fields* of a document, in place (its layout is kept, so a
    diff shows only real changes), and note their values (JSON) to tell which
    secrets changed."""
    text = data.decode("utf-8", errors="replace")
    try:
        obj = json.loads(text)
    except ValueError:
        return MaskedDocument(mask_shapes(text))
    found: dict[str, str] = {}
    _mask_tree(obj, "", found)
    return MaskedDocument(mask_shapes(text), found, parsed=True)


def _mask_tree(obj: Any, path: str, found: dict[str, str]) -> Any:
    if isinstance(obj, dict):
        out: dict[str, Any] = {}
        for key, value in obj.items():
            where = f"{path}.{key}" if path else str(key)
            if _SECRET_FIELD.search(str(key)) and isinstance(value, str | int | float):
                found[where] = str(value)
                out[key] = MASK
            else:
                out[key] = _mask_tree(value, where, found)
        return out
    if isinstance(obj, list):
        return [_mask_tree(item, f"{path}[{n}]", found) for n, item in enumerate(obj)]
    return obj


def document_diff(path: str, old: bytes | None, new: bytes, new_masked: str) -> str:
    """A unified diff between the file on the core and the rendered document, secret
    fields masked, plus one ``<field>: ******** (changed)`` line per secret that
    changed (a password-only change is otherwise an empty diff)."""
    before = mask_document(old) if old is not None else MaskedDocument("")
    after = mask_document(new)
    lines = difflib.unified_diff(
        before.text.splitlines(keepends=True),
        new_masked.splitlines(keepends=True),
        fromfile=f"{path} (on core)" if old is not None else "/dev/null",
        tofile=f"{path} (rendered)",
    )
    text = "".join(line if line.endswith("\n") else line + "\n" for line in lines)
    changed = list(_changed_secrets(before, after))
    if old is not None and not text and not changed and old != new:
        text = f"{path}: formatting differs (same content)\n"
    return text + "".join(f"{where}: {MASK} (changed)\n" for where in changed)


def _changed_secrets(before: MaskedDocument, after: MaskedDocument) -> Iterator[str]:
    if not before.parsed:
        return
    for where, value in after.secrets.items():
        if where in before.secrets and before.secrets[where] != value:
            yield where
