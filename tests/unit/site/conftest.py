"""Helpers to write a site (and profiles) into tmp_path and check it."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from qsipctl.site.load import check_site


class SiteFiles:
    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "secrets").mkdir()
        (root / "secrets" / "pw.txt").write_text("s3cret-from-file\n")

    def profile(self, name: str, text: str) -> Path:
        d = self.root / "profiles"
        d.mkdir(exist_ok=True)
        path = d / f"{name}.yml"
        path.write_text(textwrap.dedent(text))
        return path

    def site(self, text: str, name: str = "site.yml") -> Path:
        path = self.root / name
        path.write_text(textwrap.dedent(text))
        return path

    def check(self, text: str, **kw):
        return check_site(self.site(text), **kw)

    def errors(self, text: str, **kw) -> list[str]:
        _, diags = self.check(text, **kw)
        return [d.format() for d in diags if d.severity == "error"]

    def warnings(self, text: str, **kw) -> list[str]:
        _, diags = self.check(text, **kw)
        return [d.format() for d in diags if d.severity == "warning"]


@pytest.fixture
def files(tmp_path: Path) -> SiteFiles:
    return SiteFiles(tmp_path)


ONE_CORE = """\
all:
  vars:
    qsys_model: Core 110f
  hosts:
    core1:
      ansible_host: 192.0.2.10
      softphones:
        - name: Phone
          profile: generic
          registrar: 192.0.2.5:5060
          username: "100"
          password: file:secrets/pw.txt
"""
