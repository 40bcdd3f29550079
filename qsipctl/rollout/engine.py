"""The rollout engine: forks, serial batches, max-fail, stop/abandon, one result per core.

Cores run in a thread pool (paramiko is thread-friendly and a core spends its
time waiting on the network).  Batches (``--serial``) run one after another;
a batch whose failures exceed ``--max-fail-percent`` stops the rollout before
the next one.  The engine handles no signals (the CLI does): the caller sets
``stop`` and no new core starts, cores in flight finish (or roll back), the
rest are ``skipped``; it sets ``abandon`` and the engine stops waiting for the
cores in flight, reports them and returns at once.  Each result is handed to
``on_result`` the moment it exists, so it can be streamed and recorded.
"""

from __future__ import annotations

import math
import os
import posixpath
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from qsipctl.addr import host_port
from qsipctl.errors import QsipctlError, UsageError
from qsipctl.rollout.connectors import ConnectorContext, open_connector
from qsipctl.rollout.corelock import NO_BREAKING, LockOwner, LockPolicy, this_owner
from qsipctl.rollout.errors import ConnectorError
from qsipctl.rollout.fingerprint import Fingerprinter
from qsipctl.rollout.masking import mask_remote
from qsipctl.rollout.results import PROBLEMS, CoreResult, RunResult, Status
from qsipctl.rollout.safewrite import Outcome, SafeWrite, WriteSpec
from qsipctl.site.model import Core

Clock = Callable[[], datetime]


class Rendered(Protocol):
    """What the engine needs of a rendered config (qsipctl.site.render.RenderedConfig)."""

    @property
    def core(self) -> Core: ...
    @property
    def document(self) -> bytes: ...
    @property
    def masked(self) -> str: ...


@dataclass(frozen=True, slots=True)
class RolloutOptions:
    forks: int = 10
    serial: str | None = None  # "N" or "N%"
    max_fail_percent: float | None = None
    check: bool = False
    diff: bool = False
    accept_new_host_keys: bool = False
    timeout: float | None = None  # overrides every core's qsipctl_timeout


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_serial(text: str) -> tuple[int, bool]:
    """``"5"`` -> (5, False); ``"25%"`` -> (25, True).  Anything else is a usage error."""
    percent = text.endswith("%")
    digits = text[:-1] if percent else text
    if (
        not digits.isascii()
        or not digits.isdigit()
        or int(digits) < 1
        or (percent and int(digits) > 100)
    ):
        raise UsageError(f"--serial: expected a positive number or 1%..100%, got {text!r}")
    return int(digits), percent


def batch_sizes(total: int, serial: str | None) -> list[int]:
    """Ansible's serial: a percentage of the selected cores, rounded down, at least 1."""
    if total == 0:
        return []
    if serial is None:
        return [total]
    value, percent = parse_serial(serial)
    size = max(1, math.floor(total * value / 100)) if percent else value
    sizes = [size] * (total // size)
    if total % size:
        sizes.append(total % size)
    return sizes


def core_secrets(core: Core) -> list[str]:
    """Every secret value that may appear in this core's document or errors."""
    values: list[str] = []
    candidates = [sp.password for sp in core.softphones]
    if core.connection.password is not None:
        candidates.append(core.connection.password)
    for secret in candidates:
        if secret.check() is None:
            values.append(secret.reveal())
    return values


def describe_host(core: Core) -> str:
    conn = core.connection
    if conn.connector == "local":
        return f"local:{conn.local_dir}"
    return host_port(conn.host, conn.port)


def target_key(core: Core) -> tuple[str, ...]:
    """Which file on which machine a core's document lands in (names are not resolved)."""
    conn = core.connection
    path = posixpath.normpath(conn.config_path)
    if conn.connector == "local":
        return ("local", os.path.realpath(os.path.expanduser(conn.local_dir or "")), path)
    where = (conn.host.lower(), str(conn.port), conn.jump_host or "")
    return (conn.connector, *where, path)


def check_distinct_targets(cores: Sequence[Core]) -> None:
    """Two cores writing one file would race and overwrite each other on every run
    (each "changed", never converging): refuse before anything is touched."""
    seen: dict[tuple[str, ...], str] = {}
    clashes: list[str] = []
    for core in cores:
        first = seen.setdefault(target_key(core), core.name)
        if first != core.name:
            where = f"{describe_host(core)}:{core.connection.config_path}"
            clashes.append(f"{first} and {core.name} both write {where}")
    if clashes:
        raise UsageError(
            "; ".join(clashes) + " (give each core its own qsipctl_config_path or address)"
        )


class Engine:
    def __init__(
        self,
        options: RolloutOptions,
        *,
        clock: Clock = utc_now,
        on_result: Callable[[CoreResult], None] | None = None,
        stop: threading.Event | None = None,
        abandon: threading.Event | None = None,
        fingerprint: Fingerprinter | None = None,
        owner: LockOwner | None = None,
        locks: LockPolicy = NO_BREAKING,
    ) -> None:
        if options.forks < 1:
            raise UsageError("--forks must be at least 1")
        if options.max_fail_percent is not None and not 0 <= options.max_fail_percent <= 100:
            raise UsageError("--max-fail-percent must be between 0 and 100")
        self.options = options
        self.clock = clock
        self.on_result = on_result
        self.stop = stop or threading.Event()
        self.abandon = abandon or threading.Event()
        self.fingerprint = fingerprint or Fingerprinter.ephemeral()
        self.owner = owner or this_owner(secrets.token_hex(6), None, iso(clock()))
        self.locks = locks
        self._report_lock = threading.Lock()
        self._in_flight: dict[str, Rendered] = {}
        self._reported: set[str] = set()
        self.context = ConnectorContext(
            accept_new_host_keys=options.accept_new_host_keys, timeout=options.timeout
        )

    def in_flight(self) -> int:
        """Cores started and not finished (what a first Ctrl-C waits for)."""
        with self._report_lock:
            return len(self._in_flight)

    def run(self, site: str, items: Sequence[Rendered]) -> RunResult:
        """Provision ``items``; see the module docstring for ``stop`` and ``abandon``."""
        check_distinct_targets([item.core for item in items])
        run = RunResult(site=site, check=self.options.check, started=iso(self.clock()))
        order = {item.core.name: n for n, item in enumerate(items)}
        pool = ThreadPoolExecutor(max_workers=self.options.forks)
        try:
            self._batches(pool, run, items)
        finally:
            # after an abandon, threads still talking to cores are left behind
            pool.shutdown(wait=not self.abandon.is_set(), cancel_futures=True)
        run.abandoned = self.abandon.is_set() and any(
            r.reason.startswith(ABANDONED) for r in run.results
        )
        run.interrupted = run.abandoned or any(
            r.reason == f"not started: {INTERRUPTED}" for r in run.results
        )
        run.results.sort(key=lambda r: order[r.core])
        run.finished = iso(self.clock())
        return run

    def _batches(self, pool: ThreadPoolExecutor, run: RunResult, items: Sequence[Rendered]) -> None:
        sizes = batch_sizes(len(items), self.options.serial)
        start = 0
        for number, size in enumerate(sizes, 1):
            batch = items[start : start + size]
            start += size
            if self.stop.is_set() or run.stopped:
                why = INTERRUPTED if self.stop.is_set() else "rollout stopped"
                run.results.extend(self._skipped(i, number, why) for i in batch)
                continue
            results = self._run_batch(pool, batch, number)
            run.results.extend(results)
            if self.abandon.is_set():
                done = {r.core for r in run.results}
                rest = [i for i in items if i.core.name not in done]
                run.results.extend(self._skipped(i, number, INTERRUPTED) for i in rest)
                return
            if start < len(items):
                run.stopped = self._stop_reason(number, results)

    def _run_batch(
        self, pool: ThreadPoolExecutor, batch: Sequence[Rendered], number: int
    ) -> list[CoreResult]:
        futures = {pool.submit(self._one_guarded, item, number): item for item in batch}
        pending: set[Future[CoreResult]] = set(futures)
        results: list[CoreResult] = []
        while pending:
            done, pending = wait(pending, timeout=0.1, return_when=FIRST_COMPLETED)
            results.extend(future.result() for future in done)
            if self.abandon.is_set():
                results.extend(self._abandoned(futures[f], number) for f in pending)
                return results
        return results

    def _abandoned(self, item: Rendered, number: int) -> CoreResult:
        """A core whose worker we stop waiting for.  Whatever it was doing, its file
        is whole (old or new: writes are atomic renames); a written-but-unapplied
        document carries the pending marker, so the next run applies it."""
        with self._report_lock:
            started = self._in_flight.pop(item.core.name, None) is not None
        if not started:
            return self._skipped(item, number, INTERRUPTED)
        reason = (
            f"{ABANDONED} in flight (second interrupt): the file is whole, old or new;"
            " run provision --retry-failed (a lock left behind is stale:"
            " --break-stale-locks)"
        )
        return self._report(
            CoreResult(
                core=item.core.name,
                host=describe_host(item.core),
                status=Status.FAILED,
                reason=reason,
                fingerprint=self.fingerprint(item.document),
                batch=number,
                started=iso(self.clock()),
            )
        )

    def _stop_reason(self, number: int, results: list[CoreResult]) -> str | None:
        failed = sum(1 for r in results if r.status in PROBLEMS)
        if not results or not failed:
            return None
        percent = 100.0 * failed / len(results)
        limit = self.options.max_fail_percent
        if limit is not None and percent > limit:
            return (
                f"batch {number}: {failed} of {len(results)} cores failed ({percent:.0f}%), "
                f"more than --max-fail-percent {limit:g}; later batches not started"
            )
        if limit is None and failed == len(results):
            return f"batch {number}: every core failed; later batches not started"
        return None

    def _skipped(self, item: Rendered, number: int, why: str) -> CoreResult:
        result = CoreResult(
            core=item.core.name,
            host=describe_host(item.core),
            status=Status.SKIPPED,
            reason=f"not started: {why}",
            fingerprint=self.fingerprint(item.document),
            batch=number,
            started=iso(self.clock()),
        )
        return self._report(result)

    def _one_guarded(self, item: Rendered, number: int) -> CoreResult:
        if self.stop.is_set():
            return self._skipped(item, number, INTERRUPTED)
        with self._report_lock:
            self._in_flight[item.core.name] = item
        started = self.clock()
        t0 = time.monotonic()
        secrets_ = core_secrets(item.core)
        try:
            outcome = self._one(item, secrets_)
        except Exception as exc:  # a bug must not take the other cores down
            reason = mask_remote(f"internal error: {type(exc).__name__}: {exc}", secrets_)
            outcome = Outcome(Status.FAILED, reason)
        previous = outcome.previous_digest
        return self._report(
            CoreResult(
                core=item.core.name,
                host=describe_host(item.core),
                status=outcome.status,
                reason=" ".join(outcome.reason.split()),  # one line, whatever the server said
                fingerprint=self.fingerprint(item.document),
                previous_fingerprint=None
                if previous is None
                else self.fingerprint.of_digest(previous),
                backup=outcome.backup,
                rolled_back=outcome.rolled_back,
                diff=outcome.diff,
                batch=number,
                started=iso(started),
                duration_ms=round((time.monotonic() - t0) * 1000),
            )
        )

    def _report(self, result: CoreResult) -> CoreResult:
        """Tell the caller at once, from the worker thread, so a stop takes effect before
        the worker picks its next core.  Exactly once per core: a worker finishing
        after its core was abandoned is not reported again."""
        with self._report_lock:
            if result.core in self._reported:
                return result
            self._reported.add(result.core)
            self._in_flight.pop(result.core, None)
            if self.on_result is not None:
                self.on_result(result)
        return result

    def _one(self, item: Rendered, secrets_: list[str]) -> Outcome:
        conn = item.core.connection
        spec = WriteSpec(
            path=conn.config_path,
            document=item.document,
            masked=item.masked,
            secrets=secrets_,
            apply_command=conn.apply_command,
            backup_keep=conn.backup_keep,
            timeout=self.context.timeout_for(conn),
            mode=config_mode(item.core),
        )
        try:
            connector = open_connector(item.core.name, conn, self.context)
        except QsipctlError as exc:
            unreachable = isinstance(exc, ConnectorError) and exc.unreachable
            status = Status.UNREACHABLE if unreachable else Status.FAILED
            return Outcome(status, mask_remote(str(exc), secrets_))
        try:
            writer = SafeWrite(
                connector,
                spec,
                check=self.options.check,
                want_diff=self.options.diff,
                clock=self.clock,
                owner=self.owner,
                locks=self.locks,
            )
            return writer.run()
        except ConnectorError as exc:
            status = Status.UNREACHABLE if exc.unreachable else Status.FAILED
            return Outcome(status, mask_remote(str(exc), secrets_))
        except QsipctlError as exc:
            return Outcome(Status.FAILED, mask_remote(str(exc), secrets_))
        finally:
            connector.close()


INTERRUPTED = "interrupted"
ABANDONED = "abandoned"
DEFAULT_MODE = 0o600


def config_mode(core: Core) -> int:
    """The mode every write of a core's config gets: 0600 (it holds passwords), or what
    the site says once the inventory has a setting for it (``config_mode``)."""
    mode = getattr(core.connection, "config_mode", None)
    return mode if isinstance(mode, int) else DEFAULT_MODE
