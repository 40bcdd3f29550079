"""The shipped example site provisioned to local directories (what ``qsipctl demo`` does)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qsipctl.rollout.connectors.local import local_copy
from qsipctl.rollout.engine import Engine, RolloutOptions
from qsipctl.rollout.results import Status
from qsipctl.site.load import load_site
from qsipctl.site.render import render_core

pytestmark = pytest.mark.integration

EXAMPLE = (
    Path(__file__).resolve().parents[2] / "qsipctl" / "data" / "inventory" / "example-site.yml"
)


def test_example_site_to_local_directories_then_all_ok(tmp_path: Path) -> None:
    site = load_site(EXAMPLE)
    cores = [local_copy(core, tmp_path) for core in site.cores]
    rendered = [render_core(core) for core in cores]
    first = Engine(RolloutOptions()).run(str(EXAMPLE), rendered)
    assert {r.status for r in first.results} == {Status.CHANGED}, first.results
    assert len(first.results) == len(site.cores) >= 2
    for core, item in zip(cores, rendered, strict=True):
        target = tmp_path / core.name / core.connection.config_path.lstrip("/")
        assert target.read_bytes() == item.document
        assert json.loads(target.read_text())["core"]["name"] == core.name
    second = Engine(RolloutOptions()).run(str(EXAMPLE), rendered)
    assert {r.status for r in second.results} == {Status.OK}
    assert second.exit_code == 0
