"""How many worker processes a run gets (the processes themselves: test_probe_workers.py)."""

from __future__ import annotations

import os

import pytest

from qsipctl.probes import parallel
from qsipctl.probes.parallel import MIN_JOBS_PER_WORKER, auto_workers


@pytest.fixture
def four_cpus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})


@pytest.mark.usefixtures("four_cpus")
@pytest.mark.parametrize(
    ("jobs", "concurrency", "expected"),
    [
        (1, 20, 1),  # one probe: no fork
        (MIN_JOBS_PER_WORKER - 1, 20, 1),  # a small site: a second process does not pay
        (2 * MIN_JOBS_PER_WORKER, 20, 2),
        (100 * MIN_JOBS_PER_WORKER, 20, 4),  # never more than the CPUs we may run on
        (100 * MIN_JOBS_PER_WORKER, 3, 3),  # nor more than probes in flight
        (100 * MIN_JOBS_PER_WORKER, 1, 1),
    ],
)
def test_auto_workers(jobs: int, concurrency: int, expected: int) -> None:
    assert auto_workers(jobs, concurrency) == expected


def test_one_cpu_means_one_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parallel.os, "sched_getaffinity", lambda pid: {0})
    assert auto_workers(100 * MIN_JOBS_PER_WORKER, 100) == 1
