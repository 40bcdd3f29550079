"""Running many probes at once, with a cap on how many talk to the PBX together.

One event loop for all of them: a site with 200 softphones is probed in about
the time of the slowest few, while ``concurrency`` keeps a small PBX from
seeing a flood.  Probes are looked up by name in the registry of
:mod:`qsipctl.probes.base`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from qsipctl.probes.base import ProbeOutcome, get_probe
from qsipctl.probes.register_flow import LEDGER, Cleanup, RegisterPolicy
from qsipctl.probes.target import ProbeTarget

# called as each probe finishes, with its position in the jobs
Progress = Callable[[int, ProbeOutcome], None]


class ProbesInterrupted(Exception):
    """Ctrl-C or SIGTERM: every probe has undone what it bound; here is what is known."""

    def __init__(self, finished: list[ProbeOutcome], cleanups: list[Cleanup]) -> None:
        super().__init__("interrupted")
        self.finished, self.cleanups = finished, cleanups


async def _run_one(
    index: int,
    kind: str,
    target: ProbeTarget,
    sem: asyncio.Semaphore,
    policy: RegisterPolicy,
    on_done: Progress | None,
) -> ProbeOutcome:
    async with sem:
        run = get_probe(kind)
        # the register probe takes the whole policy; other probes the old keep flag
        outcome = await run(target, policy if kind == "register" else policy.keep)
    if on_done is not None:
        on_done(index, outcome)
    return outcome


async def run_probes_async(
    jobs: Sequence[tuple[str, ProbeTarget]],
    concurrency: int = 20,
    keep_registered: bool = False,
    on_done: Progress | None = None,
    policy: RegisterPolicy | None = None,
    workers: int = 1,
) -> list[ProbeOutcome]:
    """The probes' outcomes in job order; :class:`ProbesInterrupted` when cancelled.

    Cancelled (Ctrl-C, or SIGTERM as the CLI maps it), every probe first
    removes what it bound; the exception carries what had finished.
    ``workers`` > 1 spreads the jobs over that many forked processes
    (:mod:`qsipctl.probes.parallel`), ``concurrency`` shared between them.
    """
    if policy is None:
        policy = RegisterPolicy.from_flags(keep=keep_registered)
    if workers > 1 and len(jobs) > 1:
        from qsipctl.probes.parallel import run_in_workers

        workers = min(workers, len(jobs), concurrency)
        return await run_in_workers(jobs, concurrency, policy, workers, on_done)
    sem = asyncio.Semaphore(max(1, concurrency))
    ledger: list[Cleanup] = []
    LEDGER.set(ledger)  # the tasks below copy this context: they share the list
    tasks = [
        asyncio.ensure_future(_run_one(i, kind, target, sem, policy, on_done))
        for i, (kind, target) in enumerate(jobs)
    ]
    try:
        return list(await asyncio.gather(*tasks))
    except asyncio.CancelledError:
        await asyncio.gather(*tasks, return_exceptions=True)  # let every cleanup finish
        done = [t.result() for t in tasks if t.done() and not t.cancelled() and not t.exception()]
        raise ProbesInterrupted(done, ledger) from None


def run_probes(
    jobs: Sequence[tuple[str, ProbeTarget]],
    concurrency: int = 20,
    keep_registered: bool = False,
    on_done: Progress | None = None,
    policy: RegisterPolicy | None = None,
    workers: int = 1,
) -> list[ProbeOutcome]:
    """Run ``(kind, target)`` jobs (any registered probe name); results in job order.

    ``on_done`` is called as each probe finishes (the CLI's progress line).
    ``policy`` says what the register probes may change (default: nothing;
    ``keep_registered`` alone means bind and keep).
    """
    return asyncio.run(
        run_probes_async(jobs, concurrency, keep_registered, on_done, policy, workers)
    )
