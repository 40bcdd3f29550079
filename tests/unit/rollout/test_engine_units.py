from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qsipctl.errors import UsageError
from qsipctl.rollout.engine import batch_sizes, parse_serial
from qsipctl.rollout.results import CoreResult, RunResult, Status


def test_parse_serial() -> None:
    assert parse_serial("5") == (5, False)
    assert parse_serial("25%") == (25, True)
    for bad in ("0", "-1", "x", "101%", "%", "", "2.5"):
        with pytest.raises(UsageError):
            parse_serial(bad)


def test_batch_sizes_like_ansible() -> None:
    assert batch_sizes(10, None) == [10]
    assert batch_sizes(10, "3") == [3, 3, 3, 1]
    assert batch_sizes(10, "25%") == [2, 2, 2, 2, 2]
    assert batch_sizes(3, "10%") == [1, 1, 1]
    assert batch_sizes(0, "2") == []


@given(st.integers(1, 500), st.integers(1, 100), st.booleans())
def test_batches_cover_every_core_once(total: int, value: int, percent: bool) -> None:
    sizes = batch_sizes(total, f"{value}%" if percent else str(value))
    assert sum(sizes) == total and all(s >= 1 for s in sizes)


def result(status: Status) -> CoreResult:
    return CoreResult(core="c", host="h", status=status, reason="r", fingerprint="k1:00")


def test_exit_codes_and_recap() -> None:
    run = RunResult(site="s", check=False, started="t")
    run.results = [result(Status.OK), result(Status.CHANGED)]
    assert run.exit_code == 0
    assert run.recap() == {"ok": 1, "changed": 1, "unreachable": 0, "failed": 0, "skipped": 0}
    run.results.append(result(Status.UNREACHABLE))
    assert run.exit_code == 1
    run.interrupted = True
    assert run.exit_code == 130


def test_json_schema_fields_are_stable() -> None:
    run = RunResult(site="s", check=True, started="t", results=[result(Status.CHANGED)])
    data = run.as_json()
    assert data["schema"] == "qsipctl.provision/2"
    assert set(data) == {
        "schema",
        "run_id",
        "site",
        "site_path",
        "check",
        "started",
        "finished",
        "interrupted",
        "abandoned",
        "stopped",
        "exit_code",
        "recap",
        "results",
    }
    assert set(data["results"][0]) == {
        "core",
        "host",
        "status",
        "changed",
        "reason",
        "fingerprint",
        "previous_fingerprint",
        "backup",
        "rolled_back",
        "diff",
        "batch",
        "started",
        "duration_ms",
    }
    assert data["results"][0]["changed"] is True


@given(st.text(max_size=20))
def test_parse_serial_raises_only_usage_errors(text: str) -> None:
    try:
        value, _ = parse_serial(text)
    except UsageError:
        return
    assert value >= 1


@given(st.text(max_size=40))
def test_parse_jump_raises_only_connector_errors(text: str) -> None:
    from qsipctl.rollout.connectors.ssh import parse_jump
    from qsipctl.rollout.errors import ConnectorError

    try:
        user, host, port = parse_jump(text, "me")
    except ConnectorError:
        return
    assert host and user and 0 < port < 65536


def test_parse_jump_forms() -> None:
    from qsipctl.rollout.connectors.ssh import parse_jump

    assert parse_jump("bastion", "me") == ("me", "bastion", 22)
    assert parse_jump("ops@198.18.0.1:2222", "me") == ("ops", "198.18.0.1", 2222)
    assert parse_jump("ops@[2001:db8::1]:2200", "me") == ("ops", "2001:db8::1", 2200)
