"""Which probes ``diagnose`` plans for the shipped example site (no network involved)."""

from __future__ import annotations

from pathlib import Path

import pytest

import qsipctl
from qsipctl.cli.common import load_selected
from qsipctl.cli.diag_cmds import _site_jobs

EXAMPLE = Path(qsipctl.__file__).parent / "data" / "inventory" / "example-site.yml"


def test_ip_authenticated_teams_rooms_get_options_not_register(
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, cores = load_selected(str(EXAMPLE), None, ())
    jobs = _site_jobs(cores, True, False, 5.0, None, None)
    rooms = [(kind, t) for kind, t in jobs if (t.core or "").startswith("room-")]
    assert len(rooms) == 4 and {kind for kind, _ in rooms} == {"options"}
    assert all(t.softphone == "Teams Room Line" and t.user is None for _, t in rooms)
    registering = [t for kind, t in jobs if kind == "register"]
    assert registering and not any((t.core or "").startswith("room-") for t in registering)
    notes = capsys.readouterr().err.splitlines()
    assert len(notes) == 4 and all("register: false (IP-authenticated)" in n for n in notes)
