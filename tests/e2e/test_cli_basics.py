"""The console script starts, reports its version and lists its commands."""

from qsipctl import __version__
from tests.fixtures.common import run_cli


def test_version() -> None:
    res = run_cli("--version")
    assert res.returncode == 0
    assert __version__ in res.stdout


def test_help_lists_commands() -> None:
    res = run_cli("--help")
    assert res.returncode == 0
    for name in ("validate", "render", "provision", "diagnose"):
        assert name in res.stdout


def test_unknown_command_is_usage_error() -> None:
    res = run_cli("frobnicate")
    assert res.returncode == 2
    assert "Traceback" not in res.stderr


def test_usage_errors_are_one_line() -> None:
    for args in (["frobnicate"], ["validate"], ["provision", "--forks", "x", "site.yml"]):
        res = run_cli(*args)
        assert res.returncode == 2
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("qsipctl: error: "), res.stderr
        assert "--help" in lines[0]
