"""Errors the user is meant to read.

Every layer raises a subclass of :class:`QsipctlError` for *expected* failures
(bad input, an unreachable core, a hostile SIP message).  The CLI turns each
into one readable line and the exit code the subclass names; anything else is
a bug and only shows a traceback with ``--debug``.

Exit codes (documented in docs/cli.md): 0 all good, 1 some host or probe
failed, 2 usage error or invalid input, 3 internal error (a bug),
130 interrupted.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INVALID = 2
EXIT_INTERNAL = 3
EXIT_INTERRUPTED = 130


@dataclass(frozen=True, slots=True)
class Location:
    """Where a value came from, so a message can point the user at it."""

    file: str
    line: int | None = None  # 1-based
    col: int | None = None  # 1-based

    def __str__(self) -> str:
        parts = [self.file]
        if self.line is not None:
            parts.append(str(self.line))
            if self.col is not None:
                parts.append(str(self.col))
        return ":".join(parts)


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One problem found in the user's files: ``file:line:col: key.path: message``."""

    message: str
    location: Location | None = None
    keypath: str | None = None
    severity: Literal["error", "warning"] = "error"

    def format(self) -> str:
        head = [str(self.location)] if self.location else []
        if self.keypath:
            head.append(self.keypath)
        prefix = ": ".join(head)
        tag = "warning: " if self.severity == "warning" else ""
        return f"{prefix}: {tag}{self.message}" if prefix else f"{tag}{self.message}"

    def as_dict(self) -> dict[str, object]:
        loc = self.location
        return {
            "severity": self.severity,
            "file": loc.file if loc else None,
            "line": loc.line if loc else None,
            "col": loc.col if loc else None,
            "key": self.keypath,
            "message": self.message,
        }


class QsipctlError(Exception):
    """Base of all expected failures; ``str()`` is the line the user sees."""

    exit_code: int = EXIT_FAILED


class UsageError(QsipctlError):
    """The command line itself is wrong."""

    exit_code = EXIT_INVALID


class InvalidInput(QsipctlError):
    """One or more problems in the user's files; all are reported at once."""

    exit_code = EXIT_INVALID

    def __init__(self, diagnostics: Iterable[Diagnostic]) -> None:
        self.diagnostics = [d for d in diagnostics if d.severity == "error"]
        if not self.diagnostics:
            raise ValueError("InvalidInput needs at least one error diagnostic")
        super().__init__(self.diagnostics[0].format())

    def lines(self) -> list[str]:
        return [d.format() for d in self.diagnostics]

    @classmethod
    def single(
        cls, message: str, location: Location | None = None, keypath: str | None = None
    ) -> InvalidInput:
        return cls([Diagnostic(message, location, keypath)])
