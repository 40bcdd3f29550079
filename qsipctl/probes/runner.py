"""Running many probes at once, with a cap on how many talk to the PBX together.

One event loop for all of them: a site with 200 softphones is probed in about
the time of the slowest few, while ``concurrency`` keeps a small PBX from
seeing a flood.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from qsipctl.probes.register import ProbeOutcome
from qsipctl.probes.target import ProbeTarget


async def _run_one(
    kind: str, target: ProbeTarget, sem: asyncio.Semaphore, keep_registered: bool
) -> ProbeOutcome:
    async with sem:
        if kind == "register":
            from qsipctl.probes.register import probe_register

            return await probe_register(target, keep_registered)
        from qsipctl.probes.options import probe_options

        return await probe_options(target)


async def run_probes_async(
    jobs: Sequence[tuple[str, ProbeTarget]], concurrency: int = 20, keep_registered: bool = False
) -> list[ProbeOutcome]:
    sem = asyncio.Semaphore(max(1, concurrency))
    return list(
        await asyncio.gather(*(_run_one(kind, t, sem, keep_registered) for kind, t in jobs))
    )


def run_probes(
    jobs: Sequence[tuple[str, ProbeTarget]], concurrency: int = 20, keep_registered: bool = False
) -> list[ProbeOutcome]:
    """Run ``(kind, target)`` jobs ("register" or "options"); results in job order."""
    return asyncio.run(run_probes_async(jobs, concurrency, keep_registered))
