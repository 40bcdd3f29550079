"""``diagnose --junit FILE``: every probe, call, via-core call and NAT check as a JUnit case.

A rollout pipeline that runs ``qsipctl diagnose`` after ``provision`` wants its
CI server to show which softphone failed and why, next to its other tests.
Each kind of result becomes cases here (duck-typed on the fields the result
classes share, so this module imports no probe code); the writer itself is
:mod:`qsipctl.report.junit`, the one ``provision --junit`` uses.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from qsipctl.errors import UsageError
from qsipctl.report.junit import JUnitCase, write_junit


def probe_cases(results: Iterable[Any]) -> list[JUnitCase]:
    """register / options / call results (``ProbeResult``): one case per softphone or server."""
    cases = []
    for r in results:
        who = f"{r.core}/{r.softphone}" if r.core else r.target
        cases.append(
            JUnitCase(
                name=who,
                classname=f"qsipctl.diagnose.{r.probe}",
                outcome="ok" if r.ok else "failed",
                message=r.message,
                duration=(r.elapsed_ms or 0.0) / 1000.0,
                kind=str(r.verdict),
                output="\n".join(r.warnings),
            )
        )
    return cases


def via_core_cases(results: Iterable[Any]) -> list[JUnitCase]:
    """``--via-core`` results: one case per core softphone."""
    return [
        JUnitCase(
            name=f"{r.core}/{r.softphone}",
            classname="qsipctl.diagnose.via-core",
            outcome="ok" if r.ok else "failed",
            message=r.message,
            duration=(r.elapsed_ms or 0.0) / 1000.0,
            kind=r.verdict,
        )
        for r in results
    ]


def nat_cases(report: Any) -> list[JUnitCase]:
    """``--nat`` findings: a problem fails its case, a warning or note passes with its words."""
    return [
        JUnitCase(
            name=f.check,
            classname="qsipctl.diagnose.nat",
            outcome="failed" if f.severity == "problem" else "ok",
            message=f.summary,
            kind=str(f.severity),
            output=f.recommendation,
        )
        for f in report.findings
    ]


def write_diagnose_junit(path: str | None, cases: list[JUnitCase]) -> None:
    """Write the report when ``--junit`` was given (atomically, like provision's)."""
    if not path:
        return
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    try:
        write_junit(path, "qsipctl diagnose", cases, stamp)
    except OSError as exc:
        raise UsageError(f"--junit {path}: cannot write the report: {exc.strerror}") from None
