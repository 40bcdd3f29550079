"""Probes spread over worker processes, for sites of many hundreds of phones.

Why processes: with a few dozen probes in flight a run is CPU-bound in
Python (parsing, digest, the event loop), and one interpreter uses one core.
On a 1,000-phone site two workers take the probing from ~1.2 s to ~0.7 s
(``benchmarks/register_vs_sipp.py``).

Why fork: the site is loaded and its jobs built once, in the parent; forked
workers share them copy-on-write and start in a millisecond, where a freshly
spawned interpreter would import and load everything again.  The fork
happens inside the running event loop, so each worker first forgets the
parent's loop and signal wakeup fd, as CPython 3.12's asyncio does by itself
after a fork.

How: jobs are dealt round-robin, so the slow ones (a dead PBX serving one
group of cores) spread over the workers, and ``--concurrency`` is shared
out between them, so the PBX never sees more at once than the user asked
for.  Each worker runs the ordinary in-process runner and streams an
``(index, outcome)`` frame to the parent as each probe finishes (the
progress line and the report stay in the parent, in job order).

Stopping: the parent stops a worker by closing the worker's control pipe;
the worker then cancels its probes, which undo their bindings as they
always do, and reports what became of each.  Workers ignore SIGINT and
SIGTERM: Ctrl-C reaches the whole process group, and only the parent, which
knows the whole run, decides.  If the parent dies, every control pipe
closes with it, so no worker goes on unsupervised.
"""

from __future__ import annotations

import asyncio
import os
import pickle
import signal
import traceback
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

from qsipctl.errors import EXIT_INTERNAL, QsipctlError
from qsipctl.probes.base import ProbeOutcome
from qsipctl.probes.register_flow import Cleanup, RegisterPolicy
from qsipctl.probes.runner import ProbesInterrupted, Progress, run_probes_async
from qsipctl.probes.target import ProbeTarget

# Below this many probes per worker a run is over in a few hundred ms and a
# second process does not pay for itself.
MIN_JOBS_PER_WORKER = 100
_HEAD = 4  # a frame: 4-octet big-endian length, then a pickled (kind, payload)

Jobs = Sequence[tuple[str, ProbeTarget]]


class WorkerError(QsipctlError):
    """A worker process failed or was killed: a bug, or the machine ran out of something."""

    exit_code = EXIT_INTERNAL


def auto_workers(jobs: int, concurrency: int) -> int:
    """One worker per usable CPU, but only as many as have ``MIN_JOBS_PER_WORKER`` probes."""
    if not hasattr(os, "fork"):
        return 1
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(cpus or 1, jobs // MIN_JOBS_PER_WORKER, concurrency))


@dataclass(slots=True)
class _Worker:
    """The parent's handle on one worker: its pid, its pipes, and how it ended."""

    pid: int
    indexes: list[int]  # the jobs it runs, as positions in the whole run
    control: int  # write end of the control pipe: closing it stops the worker
    results: int  # read end of the results pipe
    ended: bool = False  # it sent "end": every probe it ran has reported
    error: str = ""
    reported: int = 0  # probes whose outcome arrived

    def stop(self) -> None:
        if self.control >= 0:
            os.close(self.control)
            self.control = -1


async def run_in_workers(
    jobs: Jobs,
    concurrency: int,
    policy: RegisterPolicy,
    workers: int,
    on_done: Progress | None = None,
) -> list[ProbeOutcome]:
    """The outcomes in job order, as :func:`run_probes_async` gives them in one process.

    Cancelled, every worker is stopped and waited for (its probes undo what
    they bound) and :class:`ProbesInterrupted` carries what had finished and
    every worker's cleanups.
    """
    outcomes: dict[int, ProbeOutcome] = {}
    cleanups: list[Cleanup] = []
    procs: list[_Worker] = []
    collected = False  # every worker's results pipe reached its end: they are exiting
    try:
        for n in range(workers):
            share = concurrency // workers + (n < concurrency % workers)
            procs.append(_fork(jobs, list(range(n, len(jobs), workers)), share, policy, procs))
        tasks = [asyncio.ensure_future(_collect(w, outcomes, cleanups, on_done)) for w in procs]
        finished = await _wait_all(tasks, procs)
        collected = True
    finally:
        for w in procs:
            w.stop()
            _reap(w, block=collected)
    for task in tasks:
        task.result()  # a frame that could not be read: a bug, raised as such
    for w in procs:
        _check(w, policy)  # a dead worker's bindings matter more than the rest of the report
    if not finished:
        raise ProbesInterrupted([outcomes[i] for i in sorted(outcomes)], cleanups)
    return [outcomes[i] for i in range(len(jobs))]


async def _wait_all(tasks: Sequence[asyncio.Future[None]], procs: Sequence[_Worker]) -> bool:
    """True when every worker ran all its probes; False when we were cancelled.

    Cancelled, the workers are stopped and still waited for: their probes
    undo what they bound and report it, and a second SIGTERM does not cut
    that short (``asyncio.wait``, unlike ``gather``, leaves the tasks alone
    when the waiter is cancelled).
    """
    try:
        await asyncio.wait(tasks)
        return True
    except asyncio.CancelledError:
        pass
    for w in procs:
        w.stop()
    while True:
        try:
            await asyncio.wait(tasks)
            return False
        except asyncio.CancelledError:
            continue


def _fork(
    jobs: Jobs, indexes: list[int], concurrency: int, policy: RegisterPolicy, others: list[_Worker]
) -> _Worker:
    control_r, control_w = os.pipe()
    results_r, results_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the worker: it never returns from here
        for fd in [control_w, results_r, *(fd for w in others for fd in (w.control, w.results))]:
            if fd >= 0:
                os.close(fd)  # a sibling's control pipe must close when the parent dies
        share = [jobs[i] for i in indexes]
        _worker_main(_work(share, concurrency, policy, control_r, results_w), results_w)
    os.close(control_r)
    os.close(results_w)
    return _Worker(pid, indexes, control_w, results_r)


async def _collect(
    worker: _Worker,
    outcomes: dict[int, ProbeOutcome],
    cleanups: list[Cleanup],
    on_done: Progress | None,
) -> None:
    """Read one worker's frames until it closes its end."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    pipe = os.fdopen(worker.results, "rb", buffering=0)
    transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), pipe)
    worker.results = -1  # the transport owns it now
    try:
        while True:
            try:
                head = await reader.readexactly(_HEAD)
            except asyncio.IncompleteReadError:
                return
            kind, payload = pickle.loads(await reader.readexactly(int.from_bytes(head, "big")))
            _take(worker, kind, payload, outcomes, cleanups, on_done)
    finally:
        transport.close()


def _take(
    worker: _Worker,
    kind: str,
    payload: Any,
    outcomes: dict[int, ProbeOutcome],
    cleanups: list[Cleanup],
    on_done: Progress | None,
) -> None:
    if kind == "done":
        local, outcome = payload
        index = worker.indexes[local]
        outcomes[index] = outcome
        worker.reported += 1
        if on_done is not None:
            on_done(index, outcome)
    elif kind == "cleanups":
        cleanups.extend(payload)
    elif kind == "error":
        worker.error = payload
    elif kind == "end":
        worker.ended = True


def _reap(worker: _Worker, block: bool) -> None:
    """Collect the worker's exit status.

    ``block`` once its pipe has closed (it is exiting); after an error of
    our own a worker may still be unbinding: it is left to finish on its own.
    """
    try:
        pid, status = os.waitpid(worker.pid, 0 if block else os.WNOHANG)
    except ChildProcessError:
        return
    if pid and not worker.ended and not worker.error:
        worker.error = f"ended with {_status_words(status)} before reporting every probe"


def _status_words(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"signal {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exit code {os.waitstatus_to_exitcode(status)}"


def _check(worker: _Worker, policy: RegisterPolicy) -> None:
    if not worker.error:
        return
    missing = len(worker.indexes) - worker.reported
    leftovers = (
        "; temporary bindings it made may remain on the PBX until they expire"
        if policy.bind and not policy.keep
        else ""
    )
    raise WorkerError(
        f"probe worker {worker.pid} failed: {worker.error};"
        f" {missing} of its {len(worker.indexes)} probes have no result{leftovers}"
    )


# --- the worker side ---------------------------------------------------------


def _worker_main(work: Coroutine[Any, Any, None], results: int) -> None:
    """Run ``work`` (:func:`_work`) and exit; ``os._exit`` so nothing of the parent runs twice.

    (No atexit handlers, no flushing of output the parent buffered, no
    finalizers of the parent's objects.)
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides (see the module doc)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.set_wakeup_fd(-1)  # the parent's loop's, as asyncio 3.12 resets after fork
    asyncio.events._set_running_loop(None)
    code = 0
    try:
        asyncio.run(work)
    except BaseException as exc:  # a bug: the parent reports it in one line
        last = traceback.format_exception_only(exc)[-1].strip()
        _send(results, "error", last)
        code = EXIT_INTERNAL
    os._exit(code)


async def _work(
    jobs: list[tuple[str, ProbeTarget]],
    concurrency: int,
    policy: RegisterPolicy,
    control: int,
    results: int,
) -> None:
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None

    def stop() -> None:  # the parent closed the control pipe (or died)
        loop.remove_reader(control)
        task.cancel()

    loop.add_reader(control, stop)
    try:
        await run_probes_async(
            jobs, concurrency, on_done=lambda i, o: _send(results, "done", (i, o)), policy=policy
        )
    except ProbesInterrupted as exc:  # its finished probes have already been sent
        _send(results, "cleanups", exc.cleanups)
    _send(results, "end", None)


def _send(fd: int, kind: str, payload: Any) -> None:
    """One frame, written whole (a blocking pipe); a parent that is gone is not an error."""
    body = pickle.dumps((kind, payload), protocol=pickle.HIGHEST_PROTOCOL)
    data = memoryview(len(body).to_bytes(_HEAD, "big") + body)
    try:
        while data:
            data = data[os.write(fd, data) :]
    except BrokenPipeError:
        pass  # the parent died: the probes still undo their bindings, nobody hears of it
