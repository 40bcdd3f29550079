"""Secrets that cannot leak by accident.

A password in an inventory is a *reference* (``env:NAME``, ``file:PATH``) or,
discouraged, a literal.  :class:`Secret` keeps the reference and resolves the
value only when something actually needs it (a REGISTER, the document pushed
to a core).  ``str()``/``repr()``/``format()`` are always masked, so a secret
that slips into a log line, a diff or JSON shows ``********``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from qsipctl.errors import InvalidInput, Location

MASK = "********"


def _expand(text: str) -> Path:
    """``~`` expansion that cannot raise (an unknown ``~user`` stays as written)."""
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


@dataclass(frozen=True, eq=False)
class Secret:
    """A secret value, or a reference to one, that never prints itself."""

    reference: str  # "env:NAME", "file:PATH" or "literal"
    _literal: str | None = field(default=None, repr=False)
    location: Location | None = field(default=None, repr=False)
    keypath: str | None = field(default=None, repr=False)

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
        if kind == "env":
            value = os.environ.get(name)
            if value is None:
                raise self._error(f"environment variable {name} is not set")
            return value
        try:
            return Path(name).read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            raise self._error(f"cannot read secret file {name}: {exc.strerror}") from None
        except (ValueError, UnicodeDecodeError) as exc:
            raise self._error(f"cannot read secret file {name}: {exc}") from None

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
