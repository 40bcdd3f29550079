"""The NAT and via-core results map to JUnit cases: a problem fails, a note passes."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from qsipctl.nat.report import Finding, NatReport
from qsipctl.qrc.viacore import ViaCoreResult
from qsipctl.report.diagnose_junit import nat_cases, via_core_cases
from qsipctl.report.junit import junit_xml


def test_nat_problems_fail_and_notes_pass() -> None:
    report = NatReport(
        "198.18.0.2",
        [
            Finding("alg.echo", "problem", "a SIP ALG rewrote the Contact", {}, "turn it off"),
            Finding("stun.nat", "info", "NAT, ports preserved", {}, "nothing to do"),
        ],
    )
    suite = ET.fromstring(junit_xml("d", nat_cases(report))).find("testsuite")
    assert suite is not None and suite.get("failures") == "1"
    alg, nat = list(suite.iter("testcase"))
    assert alg.get("name") == "alg.echo" and alg.find("failure") is not None
    assert nat.find("failure") is None


def test_via_core_verdicts_are_the_failure_type() -> None:
    busy = ViaCoreResult("core-a", "Lobby", "Softphone-Lobby", "198.18.0.5:1710", False,
                         "busy", "the far end is busy", elapsed_ms=1200.0)  # fmt: skip
    (case,) = via_core_cases([busy])
    assert (case.name, case.outcome, case.kind, case.duration) == (
        "core-a/Lobby",
        "failed",
        "busy",
        1.2,
    )
