"""``diagnose --junit``: a CI server sees one test case per probe, with the verdict."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.e2e.test_diag_cli import ENV, _site
from tests.fixtures.common import run_cli
from tests.fixtures.kamailio import Kamailio

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


def test_register_results_become_junit_cases(kamailio: Kamailio, tmp_path: Path) -> None:
    site = _site(tmp_path, kamailio)
    report = tmp_path / "reports" / "diagnose.xml"
    report.parent.mkdir()
    env = {**ENV, "PWBAD": "bad-pw-Zq7"}  # "wrong" is also an ordinary word
    res = run_cli("diagnose", str(site), "--register", "--junit", str(report), env=env)
    assert res.returncode == 1, res.stderr  # Phone 2's password is wrong
    suite = ET.parse(report).getroot().find("testsuite")
    assert suite is not None
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert set(cases) == {"core-a/Phone 1", "core-a/Phone 2", "core-b/Phone 3"}
    assert suite.get("tests") == "3" and suite.get("failures") == "1"
    failure = cases["core-a/Phone 2"].find("failure")
    assert failure is not None and failure.get("type") == "wrong-password"
    assert "wrong password" in (failure.get("message") or "")
    assert cases["core-a/Phone 1"].find("failure") is None
    assert all(c.get("classname") == "qsipctl.diagnose.register" for c in cases.values())
    text = report.read_text()
    assert not any(secret in text for secret in env.values())


def test_an_unwritable_report_is_one_line_and_exit_2(kamailio: Kamailio, tmp_path: Path) -> None:
    site = _site(tmp_path, kamailio)
    res = run_cli(
        "diagnose", str(site), "--options", "--junit", str(tmp_path / "missing" / "r.xml"),
        env=ENV,
    )  # fmt: skip
    assert res.returncode == 2, res.stderr
    assert res.stderr.strip().startswith("qsipctl: error: --junit")
    assert len(res.stderr.strip().splitlines()) == 1
