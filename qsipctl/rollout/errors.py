"""Errors of the rollout layer.

A :class:`ConnectorError` says whether the core could not be *reached*
(connection refused, host key refused, authentication failed, connection
lost) or was reached and an operation *failed* there (permission denied,
read-only filesystem).  The engine maps that onto Ansible's words
``unreachable`` and ``failed``.
"""

from __future__ import annotations

from qsipctl.errors import EXIT_FAILED, EXIT_INVALID, QsipctlError


class RolloutError(QsipctlError):
    """Base of the rollout layer's expected failures."""

    exit_code = EXIT_FAILED


class ConnectorError(RolloutError):
    """A transport operation against one core failed."""

    def __init__(self, message: str, *, unreachable: bool = False) -> None:
        super().__init__(message)
        self.unreachable = unreachable


class HostKeyError(ConnectorError):
    """The core's host key is unknown or differs from known_hosts."""

    def __init__(self, message: str) -> None:
        super().__init__(message, unreachable=True)


class StateDbError(RolloutError):
    """The history database cannot be opened or is not ours (checked before any core)."""

    exit_code = EXIT_INVALID
