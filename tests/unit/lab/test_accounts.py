"""Lab accounts from options and YAML: bad input is one located line."""

from __future__ import annotations

import pytest

from qsipctl.errors import InvalidInput, UsageError
from qsipctl.lab.accounts import accounts_from_file, accounts_from_specs


def test_specs_with_literal_and_env(monkeypatch):
    monkeypatch.setenv("LAB_PW", "from-env")
    accounts = accounts_from_specs(["1001:pw", "1002:env:LAB_PW"])
    assert [(a.username, a.password) for a in accounts] == [("1001", "pw"), ("1002", "from-env")]


def test_bad_spec_does_not_echo_password():
    with pytest.raises(UsageError) as err:
        accounts_from_specs(["1001"])
    assert "USER:PASSWORD" in str(err.value)
    with pytest.raises(UsageError) as err:
        accounts_from_specs([":secret"])
    assert "secret" not in str(err.value)


def test_yaml_file(tmp_path):
    f = tmp_path / "acc.yml"
    f.write_text("accounts:\n  1001: pw1\n  '1002': 4321\n")
    accounts = accounts_from_file(f)
    assert [(a.username, a.password) for a in accounts] == [("1001", "pw1"), ("1002", "4321")]


def test_yaml_errors_are_located(tmp_path):
    f = tmp_path / "acc.yml"
    f.write_text("accounts:\n  1001: pw1\n  1002: [x]\n  1003: env:NOPE_NOT_SET_X\n")
    with pytest.raises(InvalidInput) as err:
        accounts_from_file(f)
    lines = err.value.lines()
    assert len(lines) == 2
    assert lines[0].startswith(f"{f}:3:") and "accounts.1002" in lines[0]
    assert "NOPE_NOT_SET_X" in lines[1]


def test_yaml_wrong_shape(tmp_path):
    f = tmp_path / "acc.yml"
    f.write_text("- 1001\n")
    with pytest.raises(InvalidInput):
        accounts_from_file(f)
