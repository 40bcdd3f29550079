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
from qsipctl.probes.target import ProbeTarget

Progress = Callable[[ProbeOutcome], None]


async def _run_one(
    kind: str,
    target: ProbeTarget,
    sem: asyncio.Semaphore,
    keep_registered: bool,
    on_done: Progress | None,
) -> ProbeOutcome:
    async with sem:
        outcome = await get_probe(kind)(target, keep_registered)
    if on_done is not None:
        on_done(outcome)
    return outcome


async def run_probes_async(
    jobs: Sequence[tuple[str, ProbeTarget]],
    concurrency: int = 20,
    keep_registered: bool = False,
    on_done: Progress | None = None,
) -> list[ProbeOutcome]:
    sem = asyncio.Semaphore(max(1, concurrency))
    runs = (_run_one(kind, t, sem, keep_registered, on_done) for kind, t in jobs)
    return list(await asyncio.gather(*runs))


def run_probes(
    jobs: Sequence[tuple[str, ProbeTarget]],
    concurrency: int = 20,
    keep_registered: bool = False,
    on_done: Progress | None = None,
) -> list[ProbeOutcome]:
    """Run ``(kind, target)`` jobs (any registered probe name); results in job order.

    ``on_done`` is called as each probe finishes (the CLI's progress line).
    """
    return asyncio.run(run_probes_async(jobs, concurrency, keep_registered, on_done))
