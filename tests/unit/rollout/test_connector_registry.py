"""Another transport is one new module: the engine runs it unchanged."""

from __future__ import annotations

import hashlib
import sys
import types
from pathlib import Path
from typing import ClassVar

from qsipctl.rollout import connectors
from qsipctl.rollout.connectors.local import LocalConnector
from qsipctl.rollout.engine import Engine, RolloutOptions
from qsipctl.rollout.results import Status
from qsipctl.site.model import Connection
from tests.fixtures.sshd import make_core, make_rendered


class BundleConnector(LocalConnector):
    """A stand-in 'new transport': files land in a bundle directory, commands are refused."""

    calls: ClassVar[list[str]] = []

    def put_file(self, path: str, data: bytes, mode: int = 0o600) -> None:
        self.calls.append(f"put {path}")
        super().put_file(path, data, mode)

    def run(self, command: str, timeout: float) -> connectors.CommandResult:
        return connectors.CommandResult(1, "", "this transport cannot run commands")


def test_new_transport_needs_only_a_module_and_a_registry_line(tmp_path: Path, monkeypatch) -> None:
    module = types.ModuleType("qsipctl_test_bundle")
    module.BundleConnector = BundleConnector  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "qsipctl_test_bundle", module)
    monkeypatch.setitem(connectors.REGISTRY, "bundle", "qsipctl_test_bundle:BundleConnector")

    conn = Connection(connector="bundle", host="-", local_dir=str(tmp_path))  # type: ignore[arg-type]
    item = make_rendered(make_core("c1", conn))
    result = Engine(RolloutOptions()).run("site", [item]).results[0]
    assert result.status is Status.CHANGED
    written = tmp_path / conn.config_path.lstrip("/")
    assert hashlib.sha256(written.read_bytes()).hexdigest() == item.sha256
    assert BundleConnector.calls == [f"put {conn.config_path}"]

    failing = Connection(
        connector="bundle",
        host="-",
        local_dir=str(tmp_path),
        apply_command="reload",  # type: ignore[arg-type]
    )
    newer = make_rendered(make_core("c1", failing), version=2)
    result = Engine(RolloutOptions()).run("site", [newer]).results[0]
    assert result.status is Status.FAILED and result.rolled_back
    assert "this transport cannot run commands" in result.reason
    assert written.read_bytes() == item.document


def test_unknown_connector_is_a_failure_not_a_crash() -> None:
    conn = Connection(connector="carrier-pigeon", host="-")  # type: ignore[arg-type]
    result = Engine(RolloutOptions()).run("site", [make_rendered(make_core("c", conn))])
    assert result.results[0].status is Status.FAILED
    assert "unknown connector 'carrier-pigeon'" in result.results[0].reason
