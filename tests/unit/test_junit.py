"""The JUnit XML writer CI servers read (provision and diagnose share it)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from qsipctl.report.junit import JUnitCase, junit_xml, write_junit


def test_counts_outcomes_and_escapes(tmp_path: Path) -> None:
    cases = [
        JUnitCase("core-a", "qsipctl.provision.hq", "ok", "changed: created <x> & y", 0.25),
        JUnitCase(
            "core-b", "qsipctl.provision.hq", "failed", "unreachable: refused", 1.5, "unreachable"
        ),
        JUnitCase("core-c", "qsipctl.provision.hq", "skipped", "not started: interrupted"),
        JUnitCase("probe\x00x", "qsipctl.diagnose", "error", "internal error"),
    ]
    path = tmp_path / "junit.xml"
    write_junit(path, "qsipctl provision hq", cases, "2026-01-01T00:00:00Z")
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites"
    suite = root.find("testsuite")
    assert suite is not None
    assert {k: suite.get(k) for k in ("tests", "failures", "errors", "skipped", "time")} == {
        "tests": "4",
        "failures": "1",
        "errors": "1",
        "skipped": "1",
        "time": "1.750",
    }
    a, b, c, d = suite.iter("testcase")
    assert (
        a.find("system-out") is not None and a.find("system-out").text == "changed: created <x> & y"
    )  # type: ignore[union-attr]
    failure = b.find("failure")
    assert failure is not None and failure.get("type") == "unreachable"
    assert failure.get("message") == "unreachable: refused" and b.get("time") == "1.500"
    assert c.find("skipped") is not None and d.find("error") is not None
    assert d.get("name") == "probe\ufffdx"  # XML 1.0 cannot carry NUL
    assert not [p for p in tmp_path.iterdir() if p.name != "junit.xml"]  # no temp left


def test_empty_suite_is_valid() -> None:
    root = ET.fromstring(junit_xml("nothing", []))
    assert root.find("testsuite").get("tests") == "0"  # type: ignore[union-attr]
