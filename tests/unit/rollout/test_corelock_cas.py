"""Core locks and compare-and-swap rollback, through the local connector (a real
directory), plus the engine's idea of an interrupted run."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

from qsipctl.rollout.connectors import CommandResult, ConnectorContext
from qsipctl.rollout.connectors.local import LocalConnector
from qsipctl.rollout.corelock import LockOwner, LockPolicy, lock_path, this_owner
from qsipctl.rollout.engine import Engine, RolloutOptions
from qsipctl.rollout.results import Status
from qsipctl.rollout.safewrite import SafeWrite, WriteSpec
from qsipctl.site.model import Connection
from tests.fixtures.sshd import make_core, make_rendered

PATH = "/etc/qsys/softphone.json"


def connector(root: Path) -> LocalConnector:
    return LocalConnector(
        Connection(connector="local", host="x", local_dir=str(root)), ConnectorContext()
    )


def write(conn: LocalConnector, doc: bytes, **kw: object) -> SafeWrite:
    return SafeWrite(conn, WriteSpec(PATH, doc, doc.decode(), **kw))  # type: ignore[arg-type]


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_rollback_only_over_what_this_run_wrote(tmp_path: Path) -> None:
    """Another writer replaces the file while our apply runs: our rollback must not
    write our stale snapshot over it."""

    class Racing(LocalConnector):
        def run(self, command: str, timeout: float) -> CommandResult:
            (tmp_path / PATH.lstrip("/")).write_bytes(b"the other run's verified doc\n")
            return CommandResult(3, "", "agent says no")

    conn = Racing(
        Connection(connector="local", host="x", local_dir=str(tmp_path)), ConnectorContext()
    )
    (tmp_path / "etc/qsys").mkdir(parents=True)
    (tmp_path / PATH.lstrip("/")).write_bytes(b"before\n")
    out = write(conn, b"ours\n", apply_command="reload").run()
    assert out.status is Status.FAILED and not out.rolled_back
    assert "NOT rolled back" in out.reason and "another writer" in out.reason
    assert (tmp_path / PATH.lstrip("/")).read_bytes() == b"the other run's verified doc\n"


def test_a_held_lock_names_its_holder_and_nothing_is_written(tmp_path: Path) -> None:
    conn = connector(tmp_path)
    other = LockOwner("feedbeef0001", 7, "ops", "elsewhere", 4242, "2026-01-01T00:00:00.000Z")
    assert conn.create_exclusive(lock_path(PATH), other.encode())
    out = write(conn, b"doc\n").run()
    assert out.status is Status.FAILED
    assert out.reason == (
        "locked by run 7 (token feedbeef0001) of ops@elsewhere, pid 4242,"
        " since 2026-01-01T00:00:00.000Z (if that run is dead: --break-lock feedbeef0001)"
    )
    assert not (tmp_path / PATH.lstrip("/")).exists()
    stale_flag = SafeWrite(conn, WriteSpec(PATH, b"doc\n", "doc\n"), locks=LockPolicy(True))
    assert stale_flag.run().status is Status.FAILED  # another machine: never "stale"
    named = SafeWrite(
        conn,
        WriteSpec(PATH, b"doc\n", "doc\n"),
        locks=LockPolicy(False, frozenset({"feedbeef0001"})),
    ).run()
    assert named.status is Status.CHANGED and "broke the lock of run 7" in named.reason
    assert conn.read_file(lock_path(PATH)) is None  # released after the push


def test_a_lock_of_a_dead_local_process_is_stale_and_broken_only_with_the_flag(
    tmp_path: Path,
) -> None:
    conn = connector(tmp_path)
    dead = this_owner("0123456789ab", 3, "t")
    dead = LockOwner(dead.token, 3, dead.user, dead.machine, dead_pid(), "t")
    conn.create_exclusive(lock_path(PATH), dead.encode())
    held = write(conn, b"doc\n").run()
    assert held.status is Status.FAILED
    assert "(stale: that process is gone; --break-stale-locks removes it)" in held.reason
    broken = SafeWrite(conn, WriteSpec(PATH, b"doc\n", "doc\n"), locks=LockPolicy(True)).run()
    assert broken.status is Status.CHANGED


def test_check_mode_and_up_to_date_cores_take_no_lock(tmp_path: Path) -> None:
    conn = connector(tmp_path)
    assert write(conn, b"doc\n").run().status is Status.CHANGED
    other = LockOwner("feedbeef0002", 9, "ops", "elsewhere", 1, "t")
    conn.create_exclusive(lock_path(PATH), other.encode())
    assert write(conn, b"doc\n").run().status is Status.OK  # reads only
    check = SafeWrite(conn, WriteSpec(PATH, b"new\n", "new\n"), check=True).run()
    assert check.status is Status.CHANGED


def test_an_interrupt_after_every_core_finished_is_a_finished_run(tmp_path: Path) -> None:
    stop = threading.Event()
    items = [
        make_rendered(
            make_core(n, Connection(connector="local", host="-", local_dir=str(tmp_path / n)))
        )
        for n in ("a", "b")
    ]
    seen: list[str] = []

    def on_result(result: object) -> None:
        seen.append("x")
        if len(seen) == len(items):
            stop.set()  # Ctrl-C right after the last core's result

    run = Engine(RolloutOptions(forks=1), on_result=on_result, stop=stop).run("s", items)
    assert stop.is_set() and not run.interrupted and run.exit_code == 0
    stop2 = threading.Event()
    more = [
        *items,
        make_rendered(
            make_core("c", Connection(connector="local", host="-", local_dir=str(tmp_path / "c")))
        ),
    ]
    run2 = Engine(RolloutOptions(forks=1), on_result=lambda r: stop2.set(), stop=stop2).run(
        "s", more
    )
    assert run2.interrupted and run2.exit_code == 130
    assert [r.status for r in run2.results][1:] == [Status.SKIPPED, Status.SKIPPED]
