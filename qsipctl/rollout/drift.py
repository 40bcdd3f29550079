"""Drift: does each core still hold what qsipctl last put there?

The state db remembers the (keyed) fingerprint of what a core held after its
last successful (non-check) provisioning; drift reads the live file through
the same connector and compares.  It also says whether the *site* changed
since that push (the rendered document differs), which is pending work, not
drift.  A core holding the document of a later, unfinished attempt (a killed
run, a connection lost after the write) is ``unfinished``, not ``drifted``:
qsipctl wrote it.  A core never pushed is not a pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from qsipctl.errors import QsipctlError
from qsipctl.rollout.connectors import ConnectorContext, open_connector
from qsipctl.rollout.engine import core_secrets, describe_host
from qsipctl.rollout.fingerprint import Fingerprinter
from qsipctl.rollout.masking import mask_remote
from qsipctl.rollout.statedb import Pushed
from qsipctl.site.model import Core

SCHEMA = "qsipctl.drift/2"
PROBLEM_STATES = ("drifted", "missing", "unreachable", "never-pushed", "unfinished")


@dataclass(frozen=True, slots=True)
class DriftResult:
    core: str
    host: str
    state: str  # in-sync | drifted | missing | never-pushed | unfinished | unreachable
    reason: str
    pushed_fingerprint: str | None
    live_fingerprint: str | None
    rendered_fingerprint: str | None
    pushed_run: int | None

    @property
    def site_changed(self) -> bool | None:
        if self.rendered_fingerprint is None or self.pushed_fingerprint is None:
            return None
        return self.rendered_fingerprint != self.pushed_fingerprint

    def as_json(self) -> dict[str, Any]:
        return {
            "core": self.core,
            "host": self.host,
            "state": self.state,
            "reason": self.reason,
            "pushed_fingerprint": self.pushed_fingerprint,
            "pushed_run": self.pushed_run,
            "live_fingerprint": self.live_fingerprint,
            "rendered_fingerprint": self.rendered_fingerprint,
            "site_changed": self.site_changed,
        }


def check_drift(
    cores: Sequence[Core],
    pushed: dict[str, Pushed],
    rendered: dict[str, str | None],
    fingerprint: Fingerprinter,
    *,
    forks: int = 10,
    context: ConnectorContext | None = None,
) -> list[DriftResult]:
    ctx = context or ConnectorContext()
    with ThreadPoolExecutor(max_workers=max(1, forks)) as pool:
        futures = [
            pool.submit(
                _one,
                core,
                pushed.get(core.name, Pushed(None, None)),
                rendered.get(core.name),
                fingerprint,
                ctx,
            )
            for core in cores
        ]
        return [f.result() for f in futures]


def _one(
    core: Core,
    pushed: Pushed,
    rendered: str | None,
    fingerprint: Fingerprinter,
    ctx: ConnectorContext,
) -> DriftResult:
    def result(state: str, reason: str, live: str | None = None) -> DriftResult:
        reason = mask_remote(reason, core_secrets(core))
        return DriftResult(
            core.name,
            describe_host(core),
            state,
            reason,
            pushed.fingerprint,
            live,
            rendered,
            pushed.run_id,
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
    live = None if data is None else fingerprint(data)
    if live is not None and live == pushed.fingerprint:
        return result("in-sync", f"matches run {pushed.run_id}", live)
    for attempt, run_id in reversed(pushed.attempts):
        if live == attempt:
            why = (
                f"holds the document run {run_id} wrote but did not finish"
                " (killed or cut off before verify/apply): run provision --retry-failed"
            )
            return result("unfinished", why, live)
    if pushed.fingerprint is None:
        return result("never-pushed", "no successful provisioning recorded", live)
    if live is None:
        return result("missing", f"{path} is gone")
    return result("drifted", f"{path} changed since run {pushed.run_id}", live)
