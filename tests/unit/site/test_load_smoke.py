"""The shipped minimal example loads, selects and renders."""

import json
from pathlib import Path

from qsipctl.site.load import load_site
from qsipctl.site.patterns import select
from qsipctl.site.render import render_core

REPO = Path(__file__).resolve().parents[3]
MINIMAL = REPO / "inventory" / "minimal.yml"


def test_minimal_site_renders_with_secret_revealed_only_in_document():
    site = load_site(MINIMAL)
    [core] = select(site, "lobby-core")
    rendered = render_core(core)
    doc = json.loads(rendered.document)
    assert doc["softphones"][0]["password"] == "example-only-password"
    assert "example-only-password" not in rendered.masked
    assert json.loads(rendered.masked)["softphones"][0]["password"] == "********"
    assert rendered.document.endswith(b"}\n")
