"""``qsipctl demo``: the README's first command, end to end through the console script."""

from __future__ import annotations

import json
from pathlib import Path

from tests.fixtures.common import run_cli


def test_demo_runs_every_stage(tmp_path: Path) -> None:
    workdir = tmp_path / "demo"
    res = run_cli("demo", "--workdir", str(workdir), "--format", "json")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["ok"] is True and out["problems"] == []
    assert out["cores"] >= 10
    first, second = out["provision_runs"]
    assert {r["status"] for r in first["results"]} == {"changed"}
    assert {r["status"] for r in second["results"]} == {"ok"}
    good, bad = out["register_probes"]
    # the default register probe changes nothing: credentials checked, bindings listed
    assert good["ok"] and good["mode"] == "query" and good["bindings"] == []
    assert bad["verdict"] == "wrong-password"
    # what was pushed is on the stand-in cores, passwords included (they are the config)...
    pushed = sorted((workdir / "cores").glob("*/var/lib/qsipctl/softphone.json"))
    assert len(pushed) == out["cores"]
    # ...but never in what the demo prints
    secrets_dir = Path(out["site"]).parent / "secrets"
    for secret in secrets_dir.glob("*.txt"):
        value = secret.read_text().strip()
        assert value not in res.stdout and value not in res.stderr


def test_demo_table_output_and_rerun(tmp_path: Path) -> None:
    workdir = tmp_path / "demo"
    for _ in range(2):  # a second demo in the same workdir starts afresh
        res = run_cli("demo", "--workdir", str(workdir))
        assert res.returncode == 0, res.stderr
        assert "changed=" in res.stdout and "demo ok" in res.stdout
        assert "wrong password" in res.stdout


def test_demo_refuses_a_foreign_directory(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("keep me")
    res = run_cli("demo", "--workdir", str(tmp_path))
    assert res.returncode == 2
    assert "not made by qsipctl demo" in res.stderr
    assert "Traceback" not in res.stderr
    assert (tmp_path / "precious.txt").read_text() == "keep me"
