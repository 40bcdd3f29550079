"""The safe-write protocol through the local connector (a real directory)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from qsipctl.rollout.connectors import ConnectorContext
from qsipctl.rollout.connectors.local import LocalConnector
from qsipctl.rollout.results import Status
from qsipctl.rollout.safewrite import SafeWrite, WriteSpec
from qsipctl.site.model import Connection

PATH = "/etc/qsys/softphone.json"


def spec(doc: bytes, **kw) -> WriteSpec:
    masked = doc.decode(errors="replace").replace("pw-1", "********")
    return WriteSpec(PATH, doc, masked, ["pw-1"], **kw)


def connector(root: Path) -> LocalConnector:
    return LocalConnector(
        Connection(connector="local", host="x", local_dir=str(root)), ConnectorContext()
    )


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


def test_create_then_ok_then_replace_with_backup(tmp_path: Path) -> None:
    conn, clock = connector(tmp_path), Clock()
    first = SafeWrite(conn, spec(b"v1 pw-1\n"), clock=clock).run()
    assert first.status is Status.CHANGED and first.backup is None
    target = tmp_path / "etc/qsys/softphone.json"
    assert target.read_bytes() == b"v1 pw-1\n"
    assert target.stat().st_mode & 0o777 == 0o600
    again = SafeWrite(conn, spec(b"v1 pw-1\n"), clock=clock).run()
    assert again.status is Status.OK
    third = SafeWrite(conn, spec(b"v2 pw-1\n"), clock=clock).run()
    assert third.status is Status.CHANGED
    assert third.backup == PATH + ".20260101T000001.000000Z.bak"
    assert (tmp_path / third.backup.lstrip("/")).read_bytes() == b"v1 pw-1\n"


def test_check_mode_writes_nothing_and_diff_is_masked(tmp_path: Path) -> None:
    out = SafeWrite(connector(tmp_path), spec(b"v1 pw-1\n"), check=True, want_diff=True).run()
    assert out.status is Status.CHANGED and "check mode" in out.reason
    assert not (tmp_path / "etc").exists()
    assert out.diff is not None and "+v1 ********" in out.diff and "pw-1" not in out.diff
    assert not list(tmp_path.rglob("*qsipctl-lock"))  # check mode takes no lock


def test_prune_keeps_n(tmp_path: Path) -> None:
    conn, clock = connector(tmp_path), Clock()
    for n in range(6):
        SafeWrite(conn, spec(f"v{n}\n".encode(), backup_keep=2), clock=clock).run()
    (tmp_path / "etc/qsys/softphone.json.notes.bak").write_text("not ours")
    SafeWrite(conn, spec(b"v9\n", backup_keep=2), clock=clock).run()
    names = sorted(p.name for p in (tmp_path / "etc/qsys").iterdir())
    assert names == [
        "softphone.json",
        "softphone.json.20260101T000005.000000Z.bak",
        "softphone.json.20260101T000006.000000Z.bak",
        "softphone.json.notes.bak",
    ]


def test_failing_apply_rolls_back_and_masks_output(tmp_path: Path) -> None:
    conn = connector(tmp_path)
    SafeWrite(conn, spec(b"old\x00\xff")).run()
    bad = spec(b"new pw-1\n", apply_command="cat {path} >&2; exit 5")
    out = SafeWrite(conn, bad).run()
    assert out.status is Status.FAILED and out.rolled_back
    assert "apply_command exited 5: new ********" in out.reason
    assert (tmp_path / "etc/qsys/softphone.json").read_bytes() == b"old\x00\xff"


def test_apply_command_sees_the_real_path(tmp_path: Path) -> None:
    out = SafeWrite(connector(tmp_path), spec(b"x\n", apply_command="test -f {path}")).run()
    assert out.status is Status.CHANGED, out.reason


def test_stale_temp_names() -> None:
    from qsipctl.rollout.connectors import is_stale_temp, temp_path

    name = "softphone.json"
    assert is_stale_temp(temp_path(f"/d/{name}").rsplit("/", 1)[1], name)
    backup_tmp = temp_path(f"/d/{name}.20260101T000001.000000Z.bak").rsplit("/", 1)[1]
    assert is_stale_temp(backup_tmp, name)
    for other in (name, f".{name}.qsipctl-xyz.tmp", ".other.json.qsipctl-0123abcd.tmp"):
        assert not is_stale_temp(other, name)


def test_local_put_follows_a_symlink(tmp_path: Path) -> None:
    conn = connector(tmp_path)
    real = tmp_path / "etc/agent/current.json"
    real.parent.mkdir(parents=True)
    real.write_bytes(b"old\n")
    (tmp_path / "etc/qsys").mkdir()
    (tmp_path / "etc/qsys/softphone.json").symlink_to("../agent/current.json")
    out = SafeWrite(conn, spec(b"new\n")).run()
    assert out.status is Status.CHANGED, out.reason
    assert (tmp_path / "etc/qsys/softphone.json").is_symlink()
    assert real.read_bytes() == b"new\n"


def test_local_put_survives_short_writes(tmp_path: Path, monkeypatch) -> None:
    """os.write may write part of the buffer (a nearly full disk): keep writing."""
    import os

    real_write = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: real_write(fd, bytes(data[:3])))
    connector(tmp_path).put_file(PATH, b"0123456789" * 5)
    assert (tmp_path / "etc/qsys/softphone.json").read_bytes() == b"0123456789" * 5


def test_failed_pushes_do_not_pile_up_backups(tmp_path: Path) -> None:
    conn, clock = connector(tmp_path), Clock()
    SafeWrite(conn, spec(b"good\n", backup_keep=2), clock=clock).run()
    for n in range(5):
        bad = spec(f"bad {n}\n".encode(), backup_keep=2, apply_command="exit 1")
        assert SafeWrite(conn, bad, clock=clock).run().status is Status.FAILED
    names = sorted(p.name for p in (tmp_path / "etc/qsys").iterdir())
    assert len(names) == 3 and names[0] == "softphone.json", names
    assert (tmp_path / "etc/qsys/softphone.json").read_bytes() == b"good\n"


def test_local_replace_enforces_the_mode(tmp_path: Path) -> None:
    """A world-readable config does not stay world-readable once a password is in it."""
    conn = connector(tmp_path)
    SafeWrite(conn, spec(b"v1\n")).run()
    target = tmp_path / "etc/qsys/softphone.json"
    target.chmod(0o644)
    out = SafeWrite(conn, spec(b"v2 pw-1\n"), clock=Clock()).run()
    assert out.status is Status.CHANGED
    assert target.stat().st_mode & 0o7777 == 0o600
    assert (tmp_path / out.backup.lstrip("/")).stat().st_mode & 0o7777 == 0o600
    SafeWrite(conn, spec(b"v3\n", mode=0o640)).run()
    assert target.stat().st_mode & 0o7777 == 0o640


def test_local_apply_past_the_timeout_leaves_no_process(tmp_path: Path) -> None:
    import os
    import time

    import pytest

    from qsipctl.rollout.errors import ConnectorError

    def in_session(sid: int) -> list[int]:
        found = []
        for entry in os.listdir("/proc"):
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if entry.isdigit() and int(fields[3]) == sid and fields[0] != "Z":
                found.append(int(entry))
        return found

    with pytest.raises(ConnectorError, match="timed out"):
        connector(tmp_path).run("echo $$ > sid; sleep 30 | cat", 0.5)
    sid = int((tmp_path / "sid").read_text())
    deadline = time.monotonic() + 5
    while in_session(sid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert in_session(sid) == []
