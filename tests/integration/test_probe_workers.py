"""``diagnose --workers``: probes spread over forked processes, against a real Kamailio.

What must hold with workers exactly as without: every probe reports once,
in the site's order; ``--bind`` leaves no binding; Ctrl-C (SIGINT to the
whole process group, as a terminal sends it) or SIGTERM still removes every
temporary binding and reports it.  And what only workers can break: a
worker killed mid-run is one readable error, and a parent killed outright
(SIGKILL: no handler runs) still leaves no binding behind, because each
worker stops itself when its control pipe closes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.fixtures.common import cli_command, run_cli, wait_until
from tests.fixtures.kamailio import Kamailio

pytestmark = pytest.mark.integration

NORMAL = [str(3000 + i) for i in range(24)]
SILENT = ["3900", "3901", "3902", "3903"]  # the binding REGISTER is saved, never answered
PASSWORDS = {u: f"pw-{u}" for u in NORMAL + SILENT}
ENV = {f"PW_{u}": pw for u, pw in PASSWORDS.items()}


@pytest.fixture(scope="module")
def pbx(kamailio_factory: Callable[..., Kamailio]) -> Kamailio:
    return kamailio_factory(accounts=PASSWORDS, silent_users=tuple(SILENT))


def _site(path: Path, k: Kamailio, users: list[str]) -> Path:
    lines = ["all:", "  vars:", "    qsys_model: Core 110f", "  hosts:"]
    for c in range(0, len(users), 4):
        lines += [f"    core-{c // 4:02d}:", "      ansible_host: 127.0.0.1", "      softphones:"]
        for u in users[c : c + 4]:
            lines += [
                f"        - name: Phone {u}",
                "          profile: generic",
                f"          registrar: 127.0.0.1:{k.udp_port}",
                f'          username: "{u}"',
                f"          password: env:PW_{u}",
            ]
    path.write_text("\n".join(lines) + "\n")
    return path


def _diagnose(site: Path, *args: str) -> list[str]:
    return [*cli_command(), "diagnose", str(site), "--register", "--bind", "--format", "json",
            *args]  # fmt: skip


@pytest.mark.parametrize("workers", ["2", "3"])
def test_workers_report_every_probe_in_site_order_and_leave_no_binding(
    pbx: Kamailio, tmp_path: Path, workers: str
) -> None:
    pbx.clear()
    site = _site(tmp_path / "site.yml", pbx, NORMAL)
    one = run_cli(*_diagnose(site, "--workers", "1")[1:], env=ENV)
    many = run_cli(*_diagnose(site, "--workers", workers, "--concurrency", "7")[1:], env=ENV)
    assert one.returncode == 0 and many.returncode == 0, one.stderr + many.stderr
    results = json.loads(many.stdout)["results"]
    in_one = json.loads(one.stdout)["results"]
    assert [r["target"] for r in results] == [r["target"] for r in in_one]
    assert [r["target"] for r in results] == [f"sip:{u}@127.0.0.1" for u in NORMAL]
    assert all(r["verdict"] == "ok" and r["unregistered"] is True for r in results)
    assert len({r["local"] for r in results}) == len(NORMAL)  # a socket each, in any worker
    assert pbx.registered_users() == set()


def _start(site: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        _diagnose(site, "--workers", "2", "--concurrency", "8", "--timeout", "30"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, **ENV, "NO_COLOR": "1"},
        start_new_session=True,  # its own process group: a terminal's Ctrl-C reaches all of it
        # a shell that ran the suite in the background ignores SIGINT; give it a terminal's default
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip


def _group(pgid: int) -> list[int]:
    """The live (not zombie) processes of a process group: the CLI and its workers."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                found.append(int(entry))
    return found


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def _stop_group(proc: subprocess.Popen[str]) -> None:
    """Whatever the test left running of the group it started, by its process-group id."""
    if _group(proc.pid):
        os.killpg(proc.pid, signal.SIGKILL)
    if proc.poll() is None:
        proc.wait()


@contextmanager
def _bound_run(pbx: Kamailio, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], list[int]]]:
    """A two-worker --bind run once both silent accounts are bound: (the CLI, its workers).

    The silent accounts come first and third, so round-robin gives each worker one.
    """
    pbx.clear()
    users = [SILENT[0], NORMAL[0], SILENT[1], *NORMAL[1:6]]
    proc = _start(_site(tmp_path / "site.yml", pbx, users))
    try:
        wait_until(lambda: pbx.registered_users() >= set(SILENT[:2]), timeout=20, interval=0.05)
        yield proc, _children(proc.pid)
    finally:
        _stop_group(proc)


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_interrupted_workers_remove_every_binding_and_report_it(
    pbx: Kamailio, tmp_path: Path, how: str
) -> None:
    with _bound_run(pbx, tmp_path) as (proc, workers):
        assert len(workers) == 2
        if how == "ctrl-c":
            os.killpg(proc.pid, signal.SIGINT)
        else:
            os.kill(proc.pid, signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, out + err
    assert "Traceback" not in err
    doc = json.loads(out)
    assert doc["interrupted"] is True
    # the normal probes have usually finished by then, but a busy machine may be slower:
    # those still running were cancelled and undid their binding like the silent ones
    finished = doc["results"]
    assert {r["target"] for r in finished} <= {f"sip:{u}@127.0.0.1" for u in NORMAL[:6]}
    assert all(r["verdict"] == "ok" for r in finished)
    assert f"interrupted: {len(finished)} of 8 probe(s) finished" in err
    removed = {c["target"]: c["state"] for c in doc["cleanups"]}
    assert {f"sip:{u}@127.0.0.1" for u in SILENT[:2]} <= set(removed)
    assert set(removed.values()) == {"removed"}
    assert pbx.registered_users() == set()


def test_a_killed_parent_leaves_no_binding(pbx: Kamailio, tmp_path: Path) -> None:
    """SIGKILL runs no handler: the workers see their control pipe close and clean up alone."""
    with _bound_run(pbx, tmp_path) as (proc, workers):
        assert len(workers) == 2
        proc.kill()
        proc.wait()
        # well before the silent probes' own 30 s timeout would end them
        wait_until(lambda: not _group(proc.pid), timeout=10, interval=0.05)
        assert pbx.registered_users() == set()


def test_killed_workers_are_one_readable_error(pbx: Kamailio, tmp_path: Path) -> None:
    with _bound_run(pbx, tmp_path) as (proc, workers):
        for pid in workers:
            os.kill(pid, signal.SIGKILL)
        out, err = proc.communicate(timeout=30)
    assert "Traceback" not in err
    assert proc.returncode == 3, out + err
    [line] = err.splitlines()
    assert any(f"probe worker {pid} failed: ended with signal SIGKILL" in line for pid in workers)
    assert "probes have no result" in line
    assert "may remain on the PBX until they expire" in line
    assert pbx.registered_users() >= set(SILENT[:2])  # as it says: nobody could remove them
    pbx.clear()
