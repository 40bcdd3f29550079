"""From inventory to via-core targets, and the table a person reads."""

from __future__ import annotations

from pathlib import Path

import pytest

from qsipctl.cli.viacore_cmd import render_via_core, via_core_targets
from qsipctl.errors import UsageError
from qsipctl.qrc.viacore import Transition, ViaCoreResult
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
          password: pw-literal
          registrar: 198.18.0.5:5060
{phone}
"""


def cores(tmp_path: Path, extra: str = "", phone: str = "") -> list:  # type: ignore[type-arg]
    path = tmp_path / "site.yml"
    path.write_text(SITE.format(extra=extra, phone=phone))
    return list(load_site(str(path), ()).cores)


def test_defaults_core_address_and_name_as_code_name(tmp_path: Path) -> None:
    [t] = via_core_targets(cores(tmp_path, phone='          test_number: "2002"'), None, "", 3,
                           30, 5)  # fmt: skip
    assert (t.host, t.port, t.code_name, t.number, t.user) == (
        "198.18.0.10", 1710, "Lobby", "2002", None,
    )  # fmt: skip


def test_qrc_host_code_name_and_to_win(tmp_path: Path) -> None:
    extra = "      qsys_qrc_host: 198.18.0.11\n      qsys_qrc_user: qsipctl"
    phone = '          code_name: SP-1\n          test_number: "2002"'
    [t] = via_core_targets(cores(tmp_path, extra, phone), "4486", "12#", 1, 10, 2)
    assert (t.host, t.code_name, t.number, t.dtmf, t.user) == (
        "198.18.0.11", "SP-1", "4486", "12#", "qsipctl",
    )  # fmt: skip


def test_no_number_is_a_usage_error_naming_the_softphone(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"'Lobby' of core1.*test_number"):
        via_core_targets(cores(tmp_path), None, "", 3, 30, 5)


def test_table_shows_verdict_timeline_and_what_qrc_cannot_tell() -> None:
    r = ViaCoreResult(core="core1", softphone="Lobby", code_name="SP", qrc="198.18.0.10:1710",
                      ok=False, verdict="busy", message="the far end is busy: ...", number="2002",
                      transitions=(Transition(120.0, "status", "Busy"),))  # fmt: skip
    text = render_via_core([r])
    assert "busy" in text and "+120ms status=Busy" in text
    assert "not knowable over QRC: registration state" in text
