"""Secret references resolve to one line of text, or fail without showing it."""

from __future__ import annotations

import pytest

from qsipctl.errors import InvalidInput
from qsipctl.site.secrets import Secret


def test_endless_secret_file_is_refused_not_read_forever():
    secret = Secret.parse("file:/dev/zero")
    problem = secret.check()
    assert problem is not None and "/dev/zero" in problem and "larger than" in problem


def test_secret_file_of_several_lines_is_refused_without_its_content(tmp_path):
    path = tmp_path / "pw.txt"
    path.write_text("hunter2\nsecond-line\n")
    secret = Secret.parse(f"file:{path}")
    problem = secret.check()
    assert problem is not None and "control character" in problem
    assert "hunter2" not in problem and "second-line" not in problem
    with pytest.raises(InvalidInput):
        secret.reveal()


def test_env_secret_with_a_line_break_is_refused(monkeypatch):
    monkeypatch.setenv("QSIP_T_PW", "abc\r\ndef")
    problem = Secret.parse("env:QSIP_T_PW").check()
    assert problem is not None and "QSIP_T_PW" in problem and "abc" not in problem


def test_one_line_file_with_trailing_newline_is_fine(tmp_path):
    path = tmp_path / "pw.txt"
    path.write_text("s3cret\r\n")
    assert Secret.parse(f"file:{path}").reveal() == "s3cret"
