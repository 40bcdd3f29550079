"""Secrets that cannot leak by accident.

A password in an inventory is a *reference* (``env:NAME``, ``file:PATH``) or,
discouraged, a literal.  :class:`Secret` keeps the reference and resolves the
value only when something actually needs it (a REGISTER, the document pushed
to a core).  ``str()``/``repr()``/``format()`` are always masked, so a secret
that slips into a log line, a diff or JSON shows ``********``.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING

from qsipctl.errors import InvalidInput, Location

if TYPE_CHECKING:
    from pathlib import Path

MASK = "********"
# Unicode general category Cc, which the stability policy fixes at these 65 code points
CONTROL_CHAR = re.compile("[\x00-\x1f\x7f-\x9f]")
MAX_SECRET_BYTES = 4096


def _expand(text: str) -> Path:
    """``~`` expansion that cannot raise (an unknown ``~user`` stays as written)."""
    from pathlib import Path  # only file: references pay for pathlib

    try:
        return Path(text).expanduser()
    except RuntimeError:
        return Path(text)


SECRET_WORDS = ("pass", "pwd", "secret", "token", "key", "credential", "psk")


def secret_like(name: str) -> bool:
    """Whether a variable's name says it holds a secret (api_key, become_pass, ...).

    Someone else's Ansible variables pass through qsipctl; any that look like
    secrets are masked wherever qsipctl would otherwise echo a value.
    """
    lowered = name.lower()
    return any(word in lowered for word in SECRET_WORDS)


class Secret:
    """A secret value, or a reference to one, that never prints itself.

    Immutable.  A plain class rather than a dataclass: ``qsipctl probe``'s
    start-up pays for every dataclass on its path, and a dataclass would also
    hand its literal to anything that serializes dataclasses field by field
    (``report.output.to_jsonable``), where this class renders masked.
    """

    __slots__ = ("_literal", "keypath", "location", "reference")
    reference: str  # "env:NAME", "file:PATH", "vault" (decrypted or not) or "literal"
    _literal: str | None
    location: Location | None
    keypath: str | None

    def __init__(
        self,
        reference: str,
        _literal: str | None = None,
        location: Location | None = None,
        keypath: str | None = None,
    ) -> None:
        object.__setattr__(self, "reference", reference)
        object.__setattr__(self, "_literal", _literal)
        object.__setattr__(self, "location", location)
        object.__setattr__(self, "keypath", keypath)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"Secret is immutable (cannot set {name!r})")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"Secret is immutable (cannot delete {name!r})")

    def __reduce__(self) -> tuple[object, ...]:
        return Secret, (self.reference, self._literal, self.location, self.keypath)

    @classmethod
    def parse(
        cls,
        text: str,
        location: Location | None = None,
        keypath: str | None = None,
        base_dir: Path | None = None,
    ) -> Secret:
        """Interpret an inventory value: ``env:NAME``, ``file:PATH`` or a literal."""
        if text.startswith("env:") and text[4:]:
            return cls(f"env:{text[4:]}", None, location, keypath)
        if text.startswith("file:") and text[5:]:
            path = _expand(text[5:])
            if not path.is_absolute() and base_dir is not None:
                path = base_dir / path
            return cls(f"file:{path}", None, location, keypath)
        return cls("literal", text, location, keypath)

    @property
    def is_literal(self) -> bool:
        return self.reference == "literal"

    def reveal(self) -> str:
        """Resolve the value.  Call only where the value is really sent or written."""
        if self._literal is not None:
            return self._literal
        kind, _, name = self.reference.partition(":")
        if kind == "vault":
            raise self._error("the value is vault-encrypted and no vault password was given")
        if kind == "env":
            value = os.environ.get(name)
            if value is None:
                raise self._error(f"environment variable {name} is not set")
            if not value:
                raise self._error(f"environment variable {name} is empty")
            return self._one_line(value, f"environment variable {name}")
        value = self._one_line(self._read_file(name), f"secret file {name}")
        if not value:
            raise self._error(f"secret file {name} is empty")
        return value

    def _read_file(self, name: str) -> str:
        # Bounded read: `file:/dev/zero` or a log file must fail, not eat memory.
        try:
            with open(name, "rb") as handle:
                raw = handle.read(MAX_SECRET_BYTES + 1)
        except (OSError, ValueError) as exc:
            why = getattr(exc, "strerror", None) or str(exc)
            raise self._error(f"cannot read secret file {name}: {why}") from None
        if len(raw) > MAX_SECRET_BYTES:
            raise self._error(
                f"secret file {name} is larger than {MAX_SECRET_BYTES} bytes; "
                "it must hold the password alone"
            )
        try:
            return raw.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError as exc:
            raise self._error(f"secret file {name} is not UTF-8 (byte {exc.start})") from None

    def _one_line(self, value: str, what: str) -> str:
        """A password goes into one field: a line break means the wrong file or variable."""
        if CONTROL_CHAR.search(value):
            raise self._error(f"{what} contains a line break or other control character")
        return value

    def check(self) -> str | None:
        """Return why the secret cannot be resolved, or None when it can."""
        try:
            self.reveal()
        except InvalidInput as exc:
            return exc.diagnostics[0].message
        return None

    def describe(self) -> str:
        """What may be shown: the reference, never the value."""
        return "literal (masked)" if self.is_literal else self.reference

    def _error(self, message: str) -> InvalidInput:
        return InvalidInput.single(message, self.location, self.keypath)

    def __str__(self) -> str:
        return MASK

    def __repr__(self) -> str:
        return f"Secret({self.describe()!r})"

    def __format__(self, spec: str) -> str:
        return MASK

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return (self.reference, self._literal) == (other.reference, other._literal)

    def __hash__(self) -> int:
        return hash((self.reference, self._literal))
