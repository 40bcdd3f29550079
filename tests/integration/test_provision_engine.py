"""The rollout engine against real OpenSSH daemons standing in for cores."""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
import time
from dataclasses import replace
from pathlib import Path

import paramiko
import pytest

from qsipctl.rollout.corelock import NO_BREAKING, LockPolicy, this_owner
from qsipctl.rollout.engine import Engine, RolloutOptions
from qsipctl.rollout.fingerprint import Fingerprinter
from qsipctl.rollout.results import Status
from qsipctl.site.model import Connection
from tests.fixtures.common import free_port, wait_until
from tests.fixtures.sshd import (
    SIP_PASSWORD,
    SshLab,
    _ed25519_openssh,
    make_core,
    make_rendered,
    ssh_connection,
)

pytestmark = pytest.mark.integration


FP = Fingerprinter.ephemeral()


def run(items, locks: LockPolicy = NO_BREAKING, owner=None, **options):
    engine = Engine(RolloutOptions(**options), fingerprint=FP, locks=locks, owner=owner)
    return engine.run("site", items)


def by_core(result):
    return {r.core: r for r in result.results}


def test_first_push_changed_second_ok_then_backup(ssh_lab: SshLab) -> None:
    cores = ssh_lab.start_many(3)
    items = [make_rendered(make_core(c.name, ssh_connection(ssh_lab, c))) for c in cores]

    first = run(items)
    assert [r.status for r in first.results] == [Status.CHANGED] * 3, first.results
    for core, item in zip(cores, items, strict=True):
        assert Path(core.config_path).read_bytes() == item.document
        assert Path(core.config_path).stat().st_mode & 0o777 == 0o600
        assert not [p for p in core.root.iterdir() if p.name != "softphone.json"]
    assert first.exit_code == 0

    second = run(items)
    assert [r.status for r in second.results] == [Status.OK] * 3
    assert all(r.backup is None for r in second.results)
    assert [p.name for p in cores[0].root.iterdir()] == ["softphone.json"]

    newer = [make_rendered(item.core, version=2) for item in items]
    third = run(newer)
    assert [r.status for r in third.results] == [Status.CHANGED] * 3
    for core, old, new, res in zip(cores, items, newer, third.results, strict=True):
        assert Path(core.config_path).read_bytes() == new.document
        assert res.backup and Path(res.backup).read_bytes() == old.document
        assert res.previous_fingerprint == FP(old.document)
        assert res.backup in res.reason


def test_backups_pruned_to_keep(ssh_lab: SshLab) -> None:
    core = ssh_lab.start("keep")
    conn = ssh_connection(ssh_lab, core, backup_keep=2)
    base = make_core("keep", conn)
    for version in range(1, 6):
        assert run([make_rendered(base, version)]).results[0].status is Status.CHANGED
    backups = sorted(p for p in core.root.iterdir() if p.name.endswith(".bak"))
    assert len(backups) == 2
    assert [b'"version": 3' in p.read_bytes() for p in backups] == [True, False]
    assert b'"version": 4' in backups[1].read_bytes()


def test_check_and_diff_change_nothing_and_mask_secrets(ssh_lab: SshLab) -> None:
    core = ssh_lab.start("chk")
    item = make_rendered(make_core("chk", ssh_connection(ssh_lab, core)))
    result = run([item], check=True, diff=True).results[0]
    assert result.status is Status.CHANGED
    assert "check mode" in result.reason
    assert not Path(core.config_path).exists()
    assert result.diff and '+  "password": "********"' in result.diff
    assert SIP_PASSWORD not in result.diff

    run([item])
    newer = make_rendered(item.core, version=7)
    result = run([newer], check=True, diff=True).results[0]
    assert result.status is Status.CHANGED
    assert Path(core.config_path).read_bytes() == item.document
    assert '-  "version": 1,' in result.diff and '+  "version": 7,' in result.diff
    assert SIP_PASSWORD not in result.diff

    same = run([item], check=True, diff=True).results[0]
    assert same.status is Status.OK and not same.diff


def test_unknown_host_key_refused_then_accept_new_records_it(ssh_lab: SshLab) -> None:
    core = ssh_lab.start("newkey", record_known_host=False)
    item = make_rendered(make_core("newkey", ssh_connection(ssh_lab, core)))
    refused = run([item]).results[0]
    assert refused.status is Status.UNREACHABLE
    fp = "SHA256:" + __import__("base64").b64encode(
        hashlib.sha256(core.host_key.asbytes()).digest()
    ).decode().rstrip("=")
    assert "unknown" in refused.reason and fp in refused.reason
    assert f"127.0.0.1:{core.port}" in refused.reason
    assert not Path(core.config_path).exists()

    accepted = run([item], accept_new_host_keys=True).results[0]
    assert accepted.status is Status.CHANGED
    assert core.known_hosts_line() in ssh_lab.known_hosts.read_text()
    assert run([item]).results[0].status is Status.OK  # now strict check passes


def test_changed_host_key_refused_even_with_accept_new(ssh_lab: SshLab, tmp_path: Path) -> None:
    core = ssh_lab.start("changed", record_known_host=False)
    impostor = _ed25519_openssh(tmp_path / "other_key")
    ssh_lab.known_hosts.write_text(
        f"[127.0.0.1]:{core.port} {impostor.get_name()} {impostor.get_base64()}\n"
    )
    item = make_rendered(make_core("changed", ssh_connection(ssh_lab, core)))
    for accept in (False, True):
        result = run([item], accept_new_host_keys=accept).results[0]
        assert result.status is Status.UNREACHABLE
        assert "CHANGED" in result.reason and f"127.0.0.1:{core.port}" in result.reason
    assert not Path(core.config_path).exists()
    assert ssh_lab.known_hosts.read_text().count("\n") == 1


def test_unreachable_core_and_others_unaffected(ssh_lab: SshLab) -> None:
    core = ssh_lab.start("alive")
    dead_port = free_port()
    dead = replace(ssh_connection(ssh_lab, core), port=dead_port, config_path="/nonexistent/x")
    items = [
        make_rendered(make_core("alive", ssh_connection(ssh_lab, core))),
        make_rendered(make_core("dead", dead)),
    ]
    result = run(items)
    got = by_core(result)
    assert got["alive"].status is Status.CHANGED
    assert got["dead"].status is Status.UNREACHABLE
    assert f"127.0.0.1:{dead_port}" in got["dead"].reason
    assert "refused" in got["dead"].reason.lower()
    assert result.exit_code == 1
    assert result.recap() == {"ok": 0, "changed": 1, "unreachable": 1, "failed": 0, "skipped": 0}


def test_auth_failure_with_wrong_key_and_wrong_password(ssh_lab: SshLab, tmp_path: Path) -> None:
    core = ssh_lab.start("auth", password_auth=True)
    _ed25519_openssh(tmp_path / "stranger")
    wrong_password = "conn-Pass-77aa"
    conn = ssh_connection(
        ssh_lab,
        core,
        key_file=str(tmp_path / "stranger"),
        password=__import__("qsipctl.site.secrets", fromlist=["Secret"]).Secret.parse(
            wrong_password
        ),
    )
    result = run([make_rendered(make_core("auth", conn))]).results[0]
    assert result.status is Status.UNREACHABLE
    assert "authentication failed for root@127.0.0.1" in result.reason
    assert "password (literal (masked))" in result.reason
    assert wrong_password not in repr(result)
    assert not Path(core.config_path).exists()


@pytest.mark.root  # a read-only bind mount in a private mount namespace
def test_read_only_target_directory_fails_and_leaves_file(ssh_lab: SshLab) -> None:
    core = ssh_lab.start("ro", read_only=True)
    item = make_rendered(make_core("ro", ssh_connection(ssh_lab, core)))
    result = run([item]).results[0]
    assert result.status is Status.FAILED
    assert "cannot lock the core: cannot create" in result.reason
    assert "read-only or full filesystem?" in result.reason
    assert str(core.root) in result.reason
    assert list(core.root.iterdir()) == []


def test_failing_apply_command_rolls_back_byte_for_byte(ssh_lab: SshLab) -> None:
    core = ssh_lab.start("apply")
    previous = b"\x00\xff legacy config\r\nwithout final newline \xe9"
    Path(core.config_path).write_bytes(previous)
    conn = ssh_connection(
        ssh_lab,
        core,
        apply_command="echo checking {path}; echo 'agent rejected config' >&2; exit 3",
    )
    item = make_rendered(make_core("apply", conn))
    result = run([item]).results[0]
    assert result.status is Status.FAILED
    assert "apply_command exited 3: agent rejected config" in result.reason
    assert "rolled back" in result.reason and result.rolled_back
    assert Path(core.config_path).read_bytes() == previous
    assert result.backup and Path(result.backup).read_bytes() == previous
    assert sorted(p.name for p in core.root.iterdir() if ".tmp" in p.name) == []


def test_failing_apply_command_with_no_previous_file_removes_it(ssh_lab: SshLab) -> None:
    core = ssh_lab.start("apply0")
    conn = ssh_connection(ssh_lab, core, apply_command="false")
    result = run([make_rendered(make_core("apply0", conn))]).results[0]
    assert result.status is Status.FAILED and result.rolled_back
    assert "apply_command exited 1" in result.reason
    assert not Path(core.config_path).exists()


def test_apply_command_gets_the_path(ssh_lab: SshLab) -> None:
    core = ssh_lab.start("applyok")
    conn = ssh_connection(ssh_lab, core, apply_command="cp {path} {path}.applied")
    item = make_rendered(make_core("applyok", conn))
    assert run([item]).results[0].status is Status.CHANGED
    assert Path(core.config_path + ".applied").read_bytes() == item.document
    assert run([item]).results[0].status is Status.OK


def test_daemon_killed_mid_rollout(ssh_lab: SshLab, tmp_path: Path) -> None:
    cores = ssh_lab.start_many(4)
    victim = cores[1]
    marker = tmp_path / "apply-started"
    items = []
    for core in cores:
        extra = {}
        if core is victim:
            extra["apply_command"] = f"touch {marker}; sleep 30"
        items.append(make_rendered(make_core(core.name, ssh_connection(ssh_lab, core, **extra))))
    previous = b"previous config\n"
    Path(victim.config_path).write_bytes(previous)

    def killer() -> None:
        wait_until(marker.exists, timeout=20)
        victim.kill()

    thread = threading.Thread(target=killer)
    thread.start()
    result = run(items, forks=4)
    thread.join()
    got = by_core(result)
    assert got[victim.name].status is Status.UNREACHABLE
    assert "rollback not possible" in got[victim.name].reason
    assert Path(victim.config_path).read_bytes() in (previous, items[1].document)
    assert not [p for p in victim.root.iterdir() if ".tmp" in p.name]
    for core, item in zip(cores, items, strict=True):
        if core is not victim:
            assert got[core.name].status is Status.CHANGED
            assert Path(core.config_path).read_bytes() == item.document


def test_serial_with_max_fail_percent_stops_later_batches(ssh_lab: SshLab) -> None:
    cores = ssh_lab.start_many(6)
    items = [make_rendered(make_core(c.name, ssh_connection(ssh_lab, c))) for c in cores]
    cores[1].kill()
    result = run(items, serial="2", max_fail_percent=25, forks=5)
    statuses = [r.status for r in result.results]
    assert statuses[:2] == [Status.CHANGED, Status.UNREACHABLE]
    assert statuses[2:] == [Status.SKIPPED] * 4
    assert result.stopped and "batch 1" in result.stopped
    assert [r.batch for r in result.results] == [1, 1, 2, 2, 3, 3]
    for core in cores[2:]:
        assert not Path(core.config_path).exists()
    assert result.exit_code == 1

    tolerant = run(items, serial="2", max_fail_percent=50, forks=5)
    assert [r.status for r in tolerant.results][2:] == [Status.CHANGED] * 4
    assert tolerant.stopped is None


def test_stop_flag_starts_no_new_core(ssh_lab: SshLab) -> None:
    cores = ssh_lab.start_many(4)
    items = [make_rendered(make_core(c.name, ssh_connection(ssh_lab, c))) for c in cores]
    stop = threading.Event()
    engine = Engine(RolloutOptions(forks=1), on_result=lambda r: stop.set(), stop=stop)
    result = engine.run("site.yml", items)
    assert result.interrupted and result.exit_code == 130
    assert [r.status for r in result.results] == [Status.CHANGED] + [Status.SKIPPED] * 3
    assert [Path(c.config_path).exists() for c in cores] == [True, False, False, False]


def test_jump_host(ssh_lab: SshLab) -> None:
    jump, target = ssh_lab.start("jump"), ssh_lab.start("target")
    conn = ssh_connection(ssh_lab, target, jump_host=f"root@127.0.0.1:{jump.port}")
    item = make_rendered(make_core("target", conn))
    assert run([item]).results[0].status is Status.CHANGED
    assert Path(target.config_path).read_bytes() == item.document


def test_per_core_timeout_on_silent_server(ssh_lab: SshLab) -> None:
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(5)  # accepts TCP but never speaks SSH
    try:
        conn = Connection(
            connector="ssh",
            host="127.0.0.1",
            port=listener.getsockname()[1],
            timeout=0.5,
            known_hosts=str(ssh_lab.known_hosts),
        )
        t0 = time.monotonic()
        result = run([make_rendered(make_core("silent", conn))]).results[0]
        assert time.monotonic() - t0 < 10
        assert result.status is Status.UNREACHABLE, result.reason
        assert "handshake" in result.reason
    finally:
        listener.close()


def test_paramiko_sees_same_fingerprint_format(ssh_lab: SshLab) -> None:
    core = ssh_lab.start("fp", record_known_host=False)
    key = paramiko.Ed25519Key.from_private_key_file(str(core.workdir / "host_ed25519"))
    assert key.asbytes() == core.host_key.asbytes()


def test_ssh_agent_authentication(ssh_lab: SshLab, ssh_agent: str) -> None:
    core = ssh_lab.start("agent")
    conn = ssh_connection(ssh_lab, core, key_file=None)
    item = make_rendered(make_core("agent", conn))
    assert run([item]).results[0].status is Status.CHANGED
    assert Path(core.config_path).read_bytes() == item.document


@pytest.mark.root  # creates (and removes) a throw-away local account
def test_password_authentication_from_a_secret_reference(
    ssh_lab: SshLab, password_user, monkeypatch
) -> None:
    from qsipctl.site.secrets import Secret

    user, password, home = password_user
    core = ssh_lab.start("pwcore", password_auth=True)
    monkeypatch.setenv("CORE_PW", password)
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    monkeypatch.setenv("HOME", str(home))  # no default keys to fall back on
    conn = ssh_connection(
        ssh_lab,
        core,
        user=user,
        key_file=None,
        password=Secret.parse("env:CORE_PW"),
        config_path=str(home / "softphone.json"),
    )
    item = make_rendered(make_core("pwcore", conn))
    result = run([item]).results[0]
    assert result.status is Status.CHANGED, result.reason
    assert (home / "softphone.json").read_bytes() == item.document

    monkeypatch.setenv("CORE_PW", "wrong-" + password)
    denied = run([make_rendered(item.core, version=2)]).results[0]
    assert denied.status is Status.UNREACHABLE
    assert f"authentication failed for {user}@127.0.0.1" in denied.reason
    assert "password (env:CORE_PW)" in denied.reason
    assert password not in repr(result) + repr(denied)


def test_daemon_killed_during_upload_leaves_old_file_whole(ssh_lab: SshLab) -> None:
    """Kill the core while the new document is still being uploaded (a temp file exists)."""
    victim, bystander = ssh_lab.start_many(2)
    previous = b"previous config, intact\n"
    Path(victim.config_path).write_bytes(previous)
    base = make_rendered(make_core(victim.name, ssh_connection(ssh_lab, victim)))
    big = base.document + b" " * (12 * 1024 * 1024)  # big enough to catch mid-upload
    item = type(base)(base.core, big, base.masked, hashlib.sha256(big).hexdigest())
    other = make_rendered(make_core(bystander.name, ssh_connection(ssh_lab, bystander)))
    seen: list[str] = []

    def killer() -> None:
        def staging() -> bool:
            names = [p.name for p in victim.root.iterdir()]
            seen.extend(n for n in names if n.endswith(".tmp"))
            return bool(seen)

        wait_until(staging, timeout=20, interval=0.001)
        victim.kill()

    thread = threading.Thread(target=killer)
    thread.start()
    result = run([item, other], forks=2, owner=this_owner("upload", 1, "t"))
    thread.join()
    got = by_core(result)
    assert seen, "the upload was never observed"
    assert got[victim.name].status is Status.UNREACHABLE
    assert Path(victim.config_path).read_bytes() in (previous, big)  # never a torn file
    assert got[bystander.name].status is Status.CHANGED

    ssh_lab.restart(victim)  # the next push cleans the interrupted upload's temp file
    again = run([item], LockPolicy(break_tokens=frozenset({"upload"}))).results[0]
    assert again.status is Status.CHANGED, again.reason
    assert Path(victim.config_path).read_bytes() == big
    assert not [p for p in victim.root.iterdir() if p.name.endswith(".tmp")]


def test_ipv6_loopback_core(ssh_lab: SshLab) -> None:
    core = ssh_lab.start("v6", host="::1")
    assert f"[::1]:{core.port} ssh-ed25519" in ssh_lab.known_hosts.read_text()
    item = make_rendered(make_core("v6", ssh_connection(ssh_lab, core)))
    result = run([item]).results[0]
    assert result.status is Status.CHANGED, result.reason
    assert result.host == f"[::1]:{core.port}"
    assert Path(core.config_path).read_bytes() == item.document


@pytest.mark.root  # a tiny tmpfs in a private mount namespace
def test_full_disk_fails_before_the_rename_and_leaves_nothing(ssh_lab: SshLab) -> None:
    """SFTP write errors (ENOSPC) must stop the push before the rename: no torn config
    ever in place, no empty backup left behind."""
    core = ssh_lab.start("full", tmpfs_kb=12)
    here = core.inside(core.root)
    previous = b"previous config\n"
    (here / "softphone.json").write_bytes(previous)
    (here / "filler").write_bytes(b"\0" * 8192)  # the tmpfs has no page left
    item = make_rendered(make_core("full", ssh_connection(ssh_lab, core)))
    result = run([item]).results[0]
    assert result.status is Status.FAILED
    assert "read-back" not in result.reason, result.reason  # caught before the rename
    assert "read-only or full filesystem?" in result.reason
    assert sorted(p.name for p in here.iterdir()) == ["filler", "softphone.json"]
    assert (here / "softphone.json").read_bytes() == previous

    (here / "filler").write_bytes(b"\0" * 4096)  # room for the backup, not for both
    result = run([item]).results[0]
    assert result.status is Status.FAILED and "read-back" not in result.reason
    assert (here / "softphone.json").read_bytes() == previous
    for extra in here.iterdir():
        if extra.name not in ("filler", "softphone.json"):
            assert extra.name.endswith(".bak") and extra.read_bytes() == previous


def test_symlinked_config_path_is_followed_not_replaced(ssh_lab: SshLab) -> None:
    """The agent reads the link's target: replacing the link by a file would leave the
    agent on the old config while qsipctl reports success."""
    core = ssh_lab.start("link")
    real = core.root / "agent" / "current.json"
    real.parent.mkdir()
    real.write_bytes(b"old\n")
    Path(core.config_path).symlink_to("agent/current.json")
    item = make_rendered(make_core("link", ssh_connection(ssh_lab, core)))
    result = run([item]).results[0]
    assert result.status is Status.CHANGED, result.reason
    assert Path(core.config_path).is_symlink()
    assert real.read_bytes() == item.document
    assert result.backup and Path(result.backup).read_bytes() == b"old\n"
    assert not [p for p in real.parent.iterdir() if p.name != "current.json"]
    assert run([item]).results[0].status is Status.OK

    failing = ssh_connection(ssh_lab, core, apply_command="exit 2")
    bad = run([make_rendered(make_core("link", failing), version=2)]).results[0]
    assert bad.status is Status.FAILED and bad.rolled_back
    assert Path(core.config_path).is_symlink() and real.read_bytes() == item.document


def test_apply_command_past_the_timeout_rolls_back(ssh_lab: SshLab) -> None:
    core = ssh_lab.start("slow")
    previous = b"previous\n"
    Path(core.config_path).write_bytes(previous)
    conn = ssh_connection(ssh_lab, core, apply_command="sleep 5", timeout=1.0)
    t0 = time.monotonic()
    result = run([make_rendered(make_core("slow", conn))]).results[0]
    assert time.monotonic() - t0 < 4.5  # did not wait for the command
    assert result.status is Status.FAILED and result.rolled_back
    assert "timed out after 1s" in result.reason
    assert "may still be running on the core" in result.reason  # SSH cannot stop it
    assert Path(core.config_path).read_bytes() == previous


def test_a_world_readable_config_is_rotated_to_0600(ssh_lab: SshLab) -> None:
    """Pushing a password into a 0644 file must not leave it world-readable; the
    backup (old passwords) and a rollback get 0600 too."""
    core = ssh_lab.start("mode")
    Path(core.config_path).write_bytes(b"old\n")
    Path(core.config_path).chmod(0o644)
    item = make_rendered(make_core("mode", ssh_connection(ssh_lab, core)))
    result = run([item]).results[0]
    assert result.status is Status.CHANGED
    assert Path(core.config_path).stat().st_mode & 0o7777 == 0o600
    assert Path(result.backup).stat().st_mode & 0o7777 == 0o600
    Path(core.config_path).chmod(0o644)
    failing = ssh_connection(ssh_lab, core, apply_command="false")
    assert run([make_rendered(make_core("mode", failing), 2)]).results[0].rolled_back
    assert Path(core.config_path).stat().st_mode & 0o7777 == 0o600
    assert Path(core.config_path).read_bytes() == item.document


def test_temp_file_is_created_with_its_final_mode(ssh_lab: SshLab, tmp_path: Path) -> None:
    """No window in which the temp file holding the password is 0644: an inotify-free
    way to see it is to make the upload stall (a big document) and stat the temp."""
    core = ssh_lab.start("tmpmode")
    base = make_rendered(make_core("tmpmode", ssh_connection(ssh_lab, core)))
    big = base.document + b" " * (4 * 1024 * 1024)
    item = type(base)(base.core, big, base.masked, hashlib.sha256(big).hexdigest())
    seen: set[int] = set()
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            for p in core.root.glob(".softphone.json.qsipctl-*.tmp"):
                with contextlib.suppress(FileNotFoundError):
                    seen.add(p.stat().st_mode & 0o7777)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        result = run([item], timeout=60).results[0]
    finally:
        done.set()
        watcher.join()
    assert result.status is Status.CHANGED, result.reason
    assert seen and seen <= {0o600}, seen


def test_push_cut_off_during_apply_is_applied_by_the_next_run(ssh_lab: SshLab, tmp_path) -> None:
    """The connection dies while apply_command runs: the file is new but was never
    applied.  The next run must not call that core "ok" and skip the apply."""
    core = ssh_lab.start("cut")
    Path(core.config_path).write_bytes(b"previous\n")
    started, applied = tmp_path / "started", tmp_path / "applied"
    slow = ssh_connection(ssh_lab, core, apply_command=f"touch {started}; sleep 30")
    item = make_rendered(make_core("cut", slow))

    def killer() -> None:
        wait_until(started.exists, timeout=20)
        core.kill()

    thread = threading.Thread(target=killer)
    thread.start()
    owner = this_owner("cutcut", 1, "2026-01-01T00:00:00.000Z")
    assert run([item], owner=owner).results[0].status is Status.UNREACHABLE
    thread.join()
    assert Path(core.config_path).read_bytes() == item.document  # written, not applied

    ssh_lab.restart(core)
    good = ssh_connection(ssh_lab, core, apply_command=f"touch {applied}")
    held = run([make_rendered(make_core("cut", good))]).results[0]
    assert held.status is Status.FAILED and "locked by run 1 (token cutcut)" in held.reason
    assert f"pid {os.getpid()}" in held.reason  # alive: not stale, not broken by default
    again = run([make_rendered(make_core("cut", good))], LockPolicy(False, frozenset({"cutcut"})))
    again = again.results[0]
    assert again.status is Status.CHANGED, again.reason
    assert "broke the lock of run 1 (token cutcut)" in again.reason
    assert applied.exists() and "interrupted" in again.reason
    assert not [p for p in core.root.iterdir() if p.name.startswith(".")]
    assert run([make_rendered(make_core("cut", good))]).results[0].status is Status.OK
