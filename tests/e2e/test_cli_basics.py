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


def test_python_dash_m_exits_like_the_console_script() -> None:
    """``python -m qsipctl`` is the tests' fallback and a user's: an invalid site must exit 2.

    ``validate`` ends through ``ctx.exit``, which click turns into main()'s return value.
    """
    import subprocess
    import sys
    from pathlib import Path

    broken = Path(__file__).resolve().parents[2] / "qsipctl/data/inventory/broken-site.yml"
    res = subprocess.run(
        [sys.executable, "-m", "qsipctl", "validate", str(broken)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert res.returncode == 2, res.stderr
    assert run_cli("validate", str(broken)).returncode == 2
