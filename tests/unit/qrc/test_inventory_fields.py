"""The inventory fields --via-core reads: qsys_qrc_* per core, code_name and test_number."""

from __future__ import annotations

from pathlib import Path

import pytest

from qsipctl.errors import InvalidInput
from qsipctl.site.load import load_site

SITE = """\
all:
  hosts:
    core1:
      ansible_host: 198.18.0.10
      qsys_model: Core 110f
{extra}
      softphones:
        - name: Lobby
          profile: generic
          username: "1001"
          password: file:pw.txt
          registrar: 198.18.0.5:5060
{phone}
"""


def load(tmp_path: Path, extra: str = "", phone: str = "") -> object:
    (tmp_path / "pw.txt").write_text("pw\n")
    path = tmp_path / "site.yml"
    path.write_text(SITE.format(extra=extra, phone=phone))
    return load_site(str(path), ())


def test_defaults_reach_qrc_on_the_cores_address_port_1710_without_logon(tmp_path: Path) -> None:
    site = load(tmp_path)
    core = site.cores[0]  # type: ignore[attr-defined]
    assert core.qrc.host is None and core.qrc.port == 1710 and core.qrc.user is None
    assert core.softphones[0].code_name is None  # falls back to the softphone's name
    assert core.softphones[0].expectations.test_number is None


def test_qrc_access_code_name_and_test_number(tmp_path: Path) -> None:
    extra = ("      qsys_qrc_host: 198.18.0.11\n      qsys_qrc_port: 1711\n"
             "      qsys_qrc_user: qsipctl\n      qsys_qrc_password: file:pw.txt")  # fmt: skip
    phone = '          code_name: Softphone-Lobby\n          test_number: "*43"'
    site = load(tmp_path, extra, phone)
    core = site.cores[0]  # type: ignore[attr-defined]
    assert (core.qrc.host, core.qrc.port, core.qrc.user) == ("198.18.0.11", 1711, "qsipctl")
    assert core.qrc.password.reveal() == "pw" and str(core.qrc.password) == "********"
    assert core.softphones[0].code_name == "Softphone-Lobby"
    assert core.softphones[0].expectations.test_number == "*43"


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        ("      qsys_qrc_port: 70000", "qsys_qrc_port"),
        ("      qsys_qrc_pasword: env:X", "did you mean 'qsys_qrc_password'"),
        ("      qsys_qrc_password: file:missing.txt", "missing.txt"),
    ],
)
def test_bad_qrc_settings_point_at_file_and_line(tmp_path: Path, extra: str, needle: str) -> None:
    with pytest.raises(InvalidInput) as info:
        load(tmp_path, extra)
    line = info.value.lines()[0]
    assert needle in line and "site.yml:6" in line
