"""One ``provision`` run, start to end, without any user interface.

The CLI parses options, installs signal handlers and prints; everything else
happens here, in this order, so bad input stops the run before any core is
touched and a killed run still leaves an honest record:

1. pick the cores (``--retry-failed``: those whose latest result is failed,
   unreachable, skipped or pending, i.e. never finished by a killed run);
2. render every core (an unresolvable secret is bad input: nothing touched);
3. open the state db (creating or migrating it, 0600) and take its local
   lock, so two runs on one machine never interleave one history;
4. record the run and every core as ``pending``;
5. push (:class:`~qsipctl.rollout.engine.Engine`), each core's result
   recorded the moment it exists;
6. record the run as finished.
"""

from __future__ import annotations

import contextlib
import secrets
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from qsipctl.errors import Diagnostic, InvalidInput, UsageError
from qsipctl.rollout.corelock import LockPolicy, this_owner
from qsipctl.rollout.engine import (
    Engine,
    RolloutOptions,
    batch_sizes,
    check_distinct_targets,
    describe_host,
    iso,
    utc_now,
)
from qsipctl.rollout.errors import StateDbError
from qsipctl.rollout.results import CoreResult, RunResult, Status
from qsipctl.rollout.statedb import PENDING_REASON, RETRY_STATUSES, StateDb
from qsipctl.site.model import Core
from qsipctl.site.render import RenderedConfig, render_core


@dataclass(frozen=True, slots=True)
class ProvisionRequest:
    """Everything a run needs, as the user asked for it."""

    site_path: str
    site_id: str
    cores: Sequence[Core]
    options: RolloutOptions = field(default_factory=RolloutOptions)
    retry_failed: bool = False
    limit: str | None = None
    state_db: str | None = None
    locks: LockPolicy = field(default_factory=LockPolicy)


def render_all(cores: Sequence[Core]) -> list[RenderedConfig]:
    """Render every core first, so bad input stops the run before any core is touched."""
    rendered: list[RenderedConfig] = []
    problems: list[Diagnostic] = []
    for core in cores:
        try:
            rendered.append(render_core(core))
        except InvalidInput as exc:
            problems.extend(exc.diagnostics)
    if problems:
        raise InvalidInput(problems)
    return rendered


class Provision:
    """A run the CLI can watch (``in_flight``) and stop (``stop``, ``abandon``)."""

    def __init__(
        self,
        request: ProvisionRequest,
        *,
        on_result: Callable[[CoreResult], None] | None = None,
        on_warning: Callable[[str], None] | None = None,
    ) -> None:
        if request.options.serial is not None:
            batch_sizes(1, request.options.serial)  # validate before touching anything
        self.request = request
        self.db = StateDb(request.state_db)
        self.stop = threading.Event()
        self.abandon = threading.Event()
        self.on_result = on_result
        self.on_warning = on_warning or (lambda text: None)
        self.engine: Engine | None = None
        self._warned = False

    def in_flight(self) -> int:
        return self.engine.in_flight() if self.engine is not None else 0

    def selection(self) -> list[Core]:
        """The cores this run works on; empty: nothing to retry."""
        cores = list(self.request.cores)
        if not self.request.retry_failed:
            return cores
        statuses = self.db.last_run_statuses(self.request.site_id)
        if statuses is None:
            raise UsageError(
                f"--retry-failed: no earlier run of site {self.request.site_id!r} in {self.db.path}"
            )
        return [c for c in cores if statuses.get(c.name) in RETRY_STATUSES]

    def run(self) -> RunResult | None:
        """Do the run; None when ``--retry-failed`` found nothing to retry."""
        cores = self.selection()
        if not cores:
            return None
        rendered = render_all(cores)
        check_distinct_targets(cores)
        self.db.check()
        fingerprint = self.db.fingerprinter()
        with self._local_lock():
            req = self.request
            started = iso(utc_now())
            run = RunResult(
                site=req.site_id,
                check=req.options.check,
                started=started,
                site_path=str(Path(req.site_path).resolve()),
            )
            planned = [
                CoreResult(
                    core=item.core.name,
                    host=describe_host(item.core),
                    status=Status.PENDING,
                    reason=PENDING_REASON,
                    fingerprint=fingerprint(item.document),
                    started=started,
                )
                for item in rendered
            ]
            token = secrets.token_hex(6)
            options = {"limit": req.limit, "retry_failed": req.retry_failed, **asdict(req.options)}
            log = self.db.begin(run, planned, options, token=token)
            try:
                self.engine = Engine(
                    req.options,
                    on_result=lambda result: self._recorded(log.result, result),
                    stop=self.stop,
                    abandon=self.abandon,
                    fingerprint=fingerprint,
                    owner=this_owner(token, log.run_id, started),
                    locks=req.locks,
                )
                done = self.engine.run(req.site_id, rendered)
                done.run_id = log.run_id
                done.site_path = run.site_path
                try:
                    log.finish(done)
                except StateDbError as exc:
                    self.on_warning(f"run not recorded as finished: {exc}")
            finally:
                log.close()
        return done

    def _recorded(self, record: Callable[[CoreResult], None], result: CoreResult) -> None:
        """Record first, then tell the caller: a line printed is a line kept."""
        try:
            record(result)
        except StateDbError as exc:
            if not self._warned:
                self._warned = True
                self.on_warning(f"result not recorded: {exc}")
        if self.on_result is not None:
            self.on_result(result)

    @contextlib.contextmanager
    def _local_lock(self) -> Iterator[None]:
        if self.request.options.check:  # a check run writes nothing on any core
            yield
            return
        with self.db.run_lock():
            yield
