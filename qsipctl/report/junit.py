"""JUnit XML for CI servers: one test case per core, probe or check.

Jenkins, GitLab, GitHub Actions test reporters and Azure DevOps all read the
same small subset of the (never formally published) JUnit format: a
``<testsuites>`` root holding one ``<testsuite>`` with ``tests``, ``failures``,
``errors``, ``skipped`` and ``time`` counts, and ``<testcase name classname
time>`` elements that may hold one ``<failure message type>``, ``<error>`` or
``<skipped message>`` child and a ``<system-out>``.  This writer emits exactly
that subset, from generic cases, so provisioning and diagnostics share it.

The file is written atomically (temp file and rename): a CI job killed while
it is written leaves the previous report or none, never half an XML file.
"""

from __future__ import annotations

import os
import re
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Outcome = Literal["ok", "failed", "error", "skipped"]
OUTCOMES: tuple[Outcome, ...] = ("ok", "failed", "error", "skipped")
# XML 1.0 cannot carry most control characters, even escaped
_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


@dataclass(frozen=True, slots=True)
class JUnitCase:
    """One result a CI server should show as a test."""

    name: str  # e.g. the core or probe target
    classname: str  # groups cases in CI views, e.g. "qsipctl.provision.hq"
    outcome: Outcome
    message: str = ""  # one line: why it failed / was skipped, or what it did
    duration: float = 0.0  # seconds
    kind: str = ""  # the failure type CI shows (e.g. "unreachable")
    output: str = ""  # longer text for <system-out> (already free of secrets)


def _clean(text: str) -> str:
    return _INVALID_XML.sub("\N{REPLACEMENT CHARACTER}", text)


def junit_xml(suite: str, cases: Sequence[JUnitCase], timestamp: str = "") -> bytes:
    """The report as bytes (UTF-8, with an XML declaration)."""
    counts = {outcome: sum(1 for c in cases if c.outcome == outcome) for outcome in OUTCOMES}
    total_time = f"{sum(c.duration for c in cases):.3f}"
    attrs = {
        "name": _clean(suite),
        "tests": str(len(cases)),
        "failures": str(counts["failed"]),
        "errors": str(counts["error"]),
        "skipped": str(counts["skipped"]),
        "time": total_time,
    }
    root = ET.Element("testsuites", attrs)
    suite_el = ET.SubElement(root, "testsuite", attrs)
    if timestamp:
        suite_el.set("timestamp", timestamp)
    for case in cases:
        el = ET.SubElement(
            suite_el,
            "testcase",
            {
                "name": _clean(case.name),
                "classname": _clean(case.classname),
                "time": f"{case.duration:.3f}",
            },
        )
        message = _clean(case.message)
        if case.outcome in ("failed", "error"):
            tag = "failure" if case.outcome == "failed" else "error"
            child = ET.SubElement(el, tag, {"message": message, "type": _clean(case.kind or tag)})
            child.text = message
        elif case.outcome == "skipped":
            ET.SubElement(el, "skipped", {"message": message})
        output = case.output or (message if case.outcome == "ok" else "")
        if output:
            ET.SubElement(el, "system-out").text = _clean(output)
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


def write_junit(
    path: str | Path, suite: str, cases: Sequence[JUnitCase], timestamp: str = ""
) -> None:
    """Write the report to ``path`` atomically (OSError on failure)."""
    target = Path(path)
    data = junit_xml(suite, cases, timestamp)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent or ".")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # a report is for the CI server to read
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
