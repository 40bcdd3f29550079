"""What a rollout produced, as data (rendering lives in :mod:`qsipctl.report.rollout`).

The JSON form (:meth:`RunResult.as_json`) is a stable, documented schema
(docs/provisioning.md, ``qsipctl.provision/2``): fields are only ever added.
Version 2 replaced version 1's ``sha256``/``previous_sha256`` (a plain
SHA-256 of a document is an offline password oracle) by keyed
``fingerprint``/``previous_fingerprint`` (:mod:`qsipctl.rollout.fingerprint`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from qsipctl.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK

SCHEMA = "qsipctl.provision/2"


class Status(enum.StrEnum):
    OK = "ok"
    CHANGED = "changed"
    FAILED = "failed"
    UNREACHABLE = "unreachable"
    SKIPPED = "skipped"
    PENDING = "pending"  # only in the state db: planned, no result yet (a killed run)


PROBLEMS = (Status.FAILED, Status.UNREACHABLE)
RECAP_ORDER = (Status.OK, Status.CHANGED, Status.UNREACHABLE, Status.FAILED, Status.SKIPPED)


@dataclass(frozen=True, slots=True)
class CoreResult:
    core: str
    host: str
    status: Status
    reason: str  # one line, secrets masked
    fingerprint: str  # keyed fingerprint of the rendered document
    previous_fingerprint: str | None = None  # of what the core held before (None: no file)
    backup: str | None = None
    rolled_back: bool = False
    diff: str | None = None  # unified diff, secrets masked (with --diff)
    batch: int = 1
    started: str = ""
    duration_ms: int = 0

    def as_json(self) -> dict[str, Any]:
        return {
            "core": self.core,
            "host": self.host,
            "status": self.status.value,
            "changed": self.status is Status.CHANGED,
            "reason": self.reason,
            "fingerprint": self.fingerprint,
            "previous_fingerprint": self.previous_fingerprint,
            "backup": self.backup,
            "rolled_back": self.rolled_back,
            "diff": self.diff,
            "batch": self.batch,
            "started": self.started,
            "duration_ms": self.duration_ms,
        }


@dataclass
class RunResult:
    site: str  # the site's identity (qsipctl.rollout.identity), not its path
    check: bool
    started: str
    finished: str = ""
    run_id: int | None = None
    interrupted: bool = False  # a signal stopped cores from starting (or abandoned them)
    abandoned: bool = False  # a second interrupt gave up on cores in flight
    stopped: str | None = None  # why later batches were not started
    results: list[CoreResult] = field(default_factory=list)
    site_path: str = ""

    def recap(self) -> dict[str, int]:
        counts = {status.value: 0 for status in RECAP_ORDER}
        for result in self.results:
            counts[result.status.value] += 1
        return counts

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return EXIT_INTERRUPTED
        if self.stopped or any(r.status in PROBLEMS for r in self.results):
            return EXIT_FAILED
        return EXIT_OK

    def as_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "run_id": self.run_id,
            "site": self.site,
            "site_path": self.site_path,
            "check": self.check,
            "started": self.started,
            "finished": self.finished,
            "interrupted": self.interrupted,
            "abandoned": self.abandoned,
            "stopped": self.stopped,
            "exit_code": self.exit_code,
            "recap": self.recap(),
            "results": [r.as_json() for r in self.results],
        }
