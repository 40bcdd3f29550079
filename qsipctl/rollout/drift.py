"""Drift: does each core still hold what qsipctl last put there?

The state db remembers the SHA-256 a core held after its last successful
(non-check) provisioning; drift reads the live file through the same
connector and compares.  It also says whether the *site* changed since that
push (the rendered document differs), which is pending work, not drift.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from qsipctl.errors import QsipctlError
from qsipctl.rollout.connectors import ConnectorContext, open_connector
from qsipctl.rollout.engine import core_secrets, describe_host
from qsipctl.rollout.masking import mask_text
from qsipctl.site.model import Core

SCHEMA = "qsipctl.drift/1"
PROBLEM_STATES = ("drifted", "missing", "unreachable")


@dataclass(frozen=True)
class DriftResult:
    core: str
    host: str
    state: str  # in-sync | drifted | missing | never-pushed | unreachable
    reason: str
    pushed_sha256: str | None
    live_sha256: str | None
    rendered_sha256: str | None
    pushed_run: int | None

    @property
    def site_changed(self) -> bool | None:
        if self.rendered_sha256 is None or self.pushed_sha256 is None:
            return None
        return self.rendered_sha256 != self.pushed_sha256

    def as_json(self) -> dict[str, Any]:
        return {
            "core": self.core,
            "host": self.host,
            "state": self.state,
            "reason": self.reason,
            "pushed_sha256": self.pushed_sha256,
            "pushed_run": self.pushed_run,
            "live_sha256": self.live_sha256,
            "rendered_sha256": self.rendered_sha256,
            "site_changed": self.site_changed,
        }


def check_drift(
    cores: Sequence[Core],
    pushed: dict[str, tuple[str, int]],
    rendered: dict[str, str | None],
    *,
    forks: int = 10,
    context: ConnectorContext | None = None,
) -> list[DriftResult]:
    ctx = context or ConnectorContext()
    with ThreadPoolExecutor(max_workers=max(1, forks)) as pool:
        futures = [
            pool.submit(_one, core, pushed.get(core.name), rendered.get(core.name), ctx)
            for core in cores
        ]
        return [f.result() for f in futures]


def _one(
    core: Core, pushed: tuple[str, int] | None, rendered: str | None, ctx: ConnectorContext
) -> DriftResult:
    sha, run_id = pushed if pushed else (None, None)

    def result(state: str, reason: str, live: str | None = None) -> DriftResult:
        reason = mask_text(reason, core_secrets(core))
        return DriftResult(
            core.name, describe_host(core), state, reason, sha, live, rendered, run_id
        )

    path = core.connection.config_path
    try:
        connector = open_connector(core.name, core.connection, ctx)
        try:
            data = connector.read_file(path)
        finally:
            connector.close()
    except QsipctlError as exc:
        return result("unreachable", str(exc))
    live = None if data is None else hashlib.sha256(data).hexdigest()
    if sha is None:
        return result("never-pushed", "no successful provisioning recorded", live)
    if live is None:
        return result("missing", f"{path} is gone")
    if live != sha:
        return result("drifted", f"{path} changed since run {run_id}", live)
    return result("in-sync", f"matches run {run_id}", live)
