"""Provisioning that stays right with two operators, a killed CI job and a nosy log
reader (issue 12), end to end: real ``qsipctl provision`` processes against real
sshd cores."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from qsipctl.site.load import load_site
from qsipctl.site.render import build_document
from tests.fixtures.common import cli_command, run_cli, wait_until
from tests.fixtures.sshd import SshdCore, SshLab

pytestmark = pytest.mark.e2e


def write_site(
    where: Path,
    lab: SshLab,
    cores: list[SshdCore],
    *,
    password: str = "Sip-Pw-{n}-4f1c",
    name: str = "site.yml",
    apply: dict[str, str] | None = None,
    hosts: list[tuple[str, int]] | None = None,
    username: str = "{ext}",
    timeout: int = 5,
) -> Path:
    """A site whose hosts are ``cores`` (plus ``hosts``: name, port of other listeners)."""
    where.mkdir(parents=True, exist_ok=True)
    secrets = where / "secrets"
    secrets.mkdir(exist_ok=True)
    lines = [
        "all:",
        "  vars:",
        "    ansible_user: root",
        f"    ansible_ssh_private_key_file: {lab.client_key_path}",
        f"    qsipctl_known_hosts: {lab.known_hosts}",
        f"    qsipctl_timeout: {timeout}",
        "    qsys_model: Core 110f",
        "  hosts:",
    ]
    targets = [(c.name, c.port, c.config_path) for c in cores]
    targets += [(n, p, f"/nonexistent/{n}.json") for n, p in hosts or []]
    for n, (host, port, path) in enumerate(targets):
        ext = str(2000 + n)
        (secrets / f"{host}.txt").write_text(password.format(n=n, ext=ext) + "\n")
        lines += [
            f"    {host}:",
            "      ansible_host: 127.0.0.1",
            f"      ansible_port: {port}",
            f"      qsipctl_config_path: {path}",
        ]
        if apply and host in apply:
            lines.append(f"      qsipctl_apply_command: {json.dumps(apply[host])}")
        lines += [
            "      softphones:",
            f"        - name: Phone {n}",
            "          profile: freepbx",
            "          registrar: 127.0.0.1:5060",
            f'          username: "{username.format(n=n, ext=ext)}"',
            f"          password: file:secrets/{host}.txt",
        ]
    site = where / name
    site.write_text("\n".join(lines) + "\n")
    return site


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"XDG_STATE_HOME": str(tmp_path / "state"), "NO_COLOR": "1"}


def start(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*cli_command(), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **env},
    )


def as_json(proc: subprocess.CompletedProcess[str]) -> dict:
    assert proc.stdout, proc.stderr
    return json.loads(proc.stdout)


def rendered(site: Path, core: str) -> bytes:
    return _dump(build_document(load_site(str(site)).core(core), [_password(site, core)]))


def _password(site: Path, core: str) -> str:
    return (site.parent / "secrets" / f"{core}.txt").read_text().strip()


def _dump(doc: dict) -> bytes:
    return (json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


# -- 1. two runs at once -------------------------------------------------------------
def test_two_operators_at_once_never_revert_a_verified_push(
    ssh_lab: SshLab, tmp_path: Path, env: dict[str, str]
) -> None:
    """Operator A's agent rejects its document (A rolls back); operator B pushes at the
    same moment from another machine (another state db).  Every core must end with one
    complete document, and each run's history must agree with the cores: where B says
    ``changed`` the core holds B's document, never A's rollback snapshot."""
    cores = ssh_lab.start_many(6)
    original = {c.name: f"original {c.name}\n".encode() for c in cores}
    for core in cores:
        Path(core.config_path).write_bytes(original[core.name])
    started = tmp_path / "a-started"
    slow_reject = {
        c.name: f"touch {started}; sleep 2; echo agent says no >&2; exit 3" for c in cores
    }
    slow_accept = {c.name: "sleep 0.3" for c in cores}
    site_a = write_site(tmp_path / "a", ssh_lab, cores, password="A-{n}", apply=slow_reject)
    site_b = write_site(tmp_path / "b", ssh_lab, cores, password="B-{n}", apply=slow_accept)
    env_b = {**env, "XDG_STATE_HOME": str(tmp_path / "state-b")}
    proc_a = start("provision", str(site_a), "--forks", "3", "--format", "json", env=env)
    wait_until(started.exists, timeout=30)  # A holds its first cores now
    proc_b = start("provision", str(site_b), "--forks", "6", "--format", "json", env=env_b)
    out_a, _ = proc_a.communicate(timeout=120)
    out_b, _ = proc_b.communicate(timeout=120)
    run_a, run_b = json.loads(out_a), json.loads(out_b)
    res_a = {r["core"]: r for r in run_a["results"]}
    res_b = {r["core"]: r for r in run_b["results"]}
    lost = 0
    for core in cores:
        now = Path(core.config_path).read_bytes()
        b = res_b[core.name]
        assert res_a[core.name]["status"] == "failed"  # A's agent always refuses
        if b["status"] == "changed":
            assert now == rendered(site_b, core.name), (core.name, res_a[core.name])
        else:
            lost += 1
            assert b["status"] == "failed" and "locked by run" in b["reason"], b
            assert "of root@" in b["reason"] and "pid" in b["reason"]
            assert now == original[core.name]  # A rolled back, verified
    raced = lost + sum("locked by" in r["reason"] for r in res_a.values())
    assert raced, "the two runs never met on a core: the test proved nothing"
    drift_b = run_cli("drift", str(site_b), "--format", "json", env=env_b)
    for r in as_json(drift_b)["results"]:
        want = "in-sync" if res_b[r["core"]]["status"] == "changed" else "never-pushed"
        assert r["state"] == want, r
    for core in cores:  # no lock, temp file or marker left behind
        assert sorted(p.name for p in core.root.iterdir() if p.name.startswith(".")) == []


def test_a_second_run_on_the_same_state_db_is_refused_before_touching_anything(
    ssh_lab: SshLab, tmp_path: Path, env: dict[str, str]
) -> None:
    cores = ssh_lab.start_many(2)
    started, hold = tmp_path / "started", tmp_path / "hold"
    hold.touch()
    apply = {"core000": f"touch {started}; while [ -e {hold} ]; do sleep 0.05; done"}
    site = write_site(tmp_path, ssh_lab, cores, apply=apply)
    first = start("provision", str(site), "--forks", "1", env=env)
    try:
        wait_until(started.exists, timeout=30)
        second = run_cli("provision", str(site), env=env)
        assert second.returncode == 1, second.stderr
        assert "is in use by qsipctl provision pid" in second.stderr
        assert "nothing was touched" in second.stderr and "Traceback" not in second.stderr
    finally:
        hold.unlink()
        first.communicate(timeout=60)
    assert first.returncode == 0
    history = as_json(run_cli("history", "--runs", "--format", "json", env=env))
    assert [r["state"] for r in history["runs"]] == ["finished"]


# -- 2. killed runs ------------------------------------------------------------------
def _held_site(tmp_path: Path, lab: SshLab, cores: list[SshdCore]) -> tuple[Path, Path, Path]:
    started, hold = tmp_path / "started", tmp_path / "hold"
    hold.touch()
    apply = {"core000": f"touch {started}; while [ -e {hold} ]; do sleep 0.05; done"}
    return write_site(tmp_path, lab, cores, apply=apply), started, hold


def test_sigkilled_run_is_incomplete_and_retry_and_drift_know_what_it_did(
    ssh_lab: SshLab, tmp_path: Path, env: dict[str, str]
) -> None:
    cores = ssh_lab.start_many(4)
    site, started, hold = _held_site(tmp_path, ssh_lab, cores)
    proc = start("provision", str(site), "--forks", "1", env=env)
    wait_until(started.exists, timeout=30)
    proc.kill()  # SIGKILL: OOM killer, a CI hard timeout
    proc.communicate(timeout=30)
    hold.unlink()
    written = rendered(site, "core000")
    assert Path(cores[0].config_path).read_bytes() == written  # written, never applied

    runs = as_json(run_cli("history", "--runs", "--format", "json", env=env))["runs"]
    assert [(r["state"], r["counts"]) for r in runs] == [("incomplete", {"pending": 4})]
    table = run_cli("history", env=env).stdout
    assert "1 (incomplete)" in table and table.count("pending") == 4

    drift = run_cli("drift", str(site), "--format", "json", env=env)
    assert drift.returncode == 1
    states = [r["state"] for r in as_json(drift)["results"]]
    assert states == ["unfinished", "never-pushed", "never-pushed", "never-pushed"]

    retry = run_cli("provision", str(site), "--retry-failed", "--format", "json", env=env)
    assert retry.returncode == 1
    first = {r["core"]: r for r in as_json(retry)["results"]}
    assert set(first) == {c.name for c in cores}  # every core the killed run did not finish
    assert "stale: that process is gone; --break-stale-locks" in first["core000"]["reason"]
    assert [first[c.name]["status"] for c in cores[1:]] == ["changed"] * 3

    again = run_cli(
        "provision", str(site), "--retry-failed", "--break-stale-locks", "--format", "json", env=env
    )
    assert again.returncode == 0, again.stdout + again.stderr
    (done,) = as_json(again)["results"]
    assert "ran apply_command: an earlier push" in done["reason"]
    assert "broke the lock of run 1" in done["reason"]
    final = run_cli("drift", str(site), env=env)
    assert final.returncode == 0 and final.stdout.count("in-sync") == 4, final.stdout


def test_sighup_is_handled_like_sigterm(
    ssh_lab: SshLab, tmp_path: Path, env: dict[str, str]
) -> None:
    """The terminal closed: cores in flight finish, the rest are skipped, all recorded."""
    cores = ssh_lab.start_many(3)
    site, started, hold = _held_site(tmp_path, ssh_lab, cores)
    proc = start("provision", str(site), "--forks", "1", "--format", "json", env=env)
    wait_until(started.exists, timeout=30)
    proc.send_signal(signal.SIGHUP)
    assert proc.stderr is not None
    said = proc.stderr.readline()  # handled while core000's apply is still held
    assert "waiting for 1 core in flight; Ctrl-C again to abandon them" in said
    hold.unlink()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    data = json.loads(out)
    assert [r["status"] for r in data["results"]] == ["changed", "skipped", "skipped"]
    runs = as_json(run_cli("history", "--runs", "--format", "json", env=env))["runs"]
    assert runs[0]["state"] == "interrupted"
    retry = run_cli("provision", str(site), "--retry-failed", "--format", "json", env=env)
    assert [r["core"] for r in as_json(retry)["results"]] == ["core001", "core002"]
    assert run_cli("drift", str(site), env=env).returncode == 0


def test_second_ctrl_c_abandons_cores_in_flight(
    ssh_lab: SshLab, tmp_path: Path, env: dict[str, str]
) -> None:
    cores = ssh_lab.start_many(2)
    site, started, hold = _held_site(tmp_path, ssh_lab, cores)
    proc = start("provision", str(site), "--forks", "1", "--format", "json", env=env)
    try:
        wait_until(started.exists, timeout=30)
        proc.send_signal(signal.SIGINT)
        assert proc.stderr is not None
        said = proc.stderr.readline()  # the first interrupt was handled
        assert "waiting for 1 core in flight; Ctrl-C again to abandon them" in said
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)  # does not wait for the held apply
    finally:
        hold.unlink(missing_ok=True)
    assert proc.returncode == 130, err
    data = json.loads(out)
    assert data["abandoned"] is True and data["interrupted"] is True
    assert data["results"][0]["status"] == "failed"
    assert data["results"][0]["reason"].startswith("abandoned in flight")
    assert data["results"][1]["status"] == "skipped"
    runs = as_json(run_cli("history", "--runs", "--format", "json", env=env))["runs"]
    assert runs[0]["state"] == "abandoned"


# -- 3. permissions ------------------------------------------------------------------
def test_a_0644_config_and_state_db_end_0600(
    ssh_lab: SshLab, tmp_path: Path, env: dict[str, str]
) -> None:
    core = ssh_lab.start("perm")
    Path(core.config_path).write_text("{}\n")
    Path(core.config_path).chmod(0o644)
    site = write_site(tmp_path, ssh_lab, [core])
    proc = run_cli("provision", str(site), env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert Path(core.config_path).stat().st_mode & 0o7777 == 0o600
    state = Path(env["XDG_STATE_HOME"]) / "qsipctl"
    assert (state / "state.db").stat().st_mode & 0o7777 == 0o600
    assert (state / "fingerprint.key").stat().st_mode & 0o7777 == 0o600
    (state / "state.db").chmod(0o644)
    assert run_cli("provision", str(site), env=env).returncode == 0
    assert (state / "state.db").stat().st_mode & 0o7777 == 0o600


# -- 4. housekeeping -----------------------------------------------------------------
def test_failed_attempts_prune_backups_and_stray_temp_files_go(
    ssh_lab: SshLab, tmp_path: Path, env: dict[str, str]
) -> None:
    core = ssh_lab.start("tidy")
    root = core.root
    Path(core.config_path).write_text("{}\n")
    stray = [
        ".softphone.json.qsipctl-0badf00d.tmp",  # an interrupted upload
        "..softphone.json.qsipctl-pending.qsipctl-deadbeef.tmp",  # an interrupted marker
    ]
    for name in stray:
        (root / name).write_text("x")
    for n in range(8):
        site = write_site(
            tmp_path / f"s{n}", ssh_lab, [core], password=f"pw-{n}-{{n}}", apply={"tidy": "false"}
        )
        assert run_cli("provision", str(site), env=env).returncode == 1
    backups = [p for p in root.iterdir() if p.name.endswith(".bak")]
    assert len(backups) == 5  # qsipctl_backup_keep's default, after 8 failures
    assert not [p for p in root.iterdir() if p.name.endswith(".tmp")]
    assert sorted(p.name for p in root.iterdir() if p.name.startswith(".")) == []


# -- 5-7. secrets --------------------------------------------------------------------
def _brute_force(site: Path, core: str, haystack: str) -> str | None:
    """What an attacker with the rendered (masked) document and the logs would do:
    try every 4-digit password and look for the document's SHA-256 in the text."""
    model = load_site(str(site)).core(core)
    hexes = set(re.findall(r"[0-9a-f]{16,}", haystack))
    for n in range(10_000):
        guess = f"{n:04d}"
        digest = hashlib.sha256(_dump(build_document(model, [guess]))).hexdigest()
        if digest in hexes or any(digest.startswith(h) for h in hexes if len(h) >= 12):
            return guess
    return None


def test_short_numeric_password_cannot_be_recovered_from_json_or_the_state_db(
    ssh_lab: SshLab, tmp_path: Path, env: dict[str, str]
) -> None:
    core = ssh_lab.start("pin")
    site = write_site(tmp_path, ssh_lab, [core], password="4711")
    outputs = []
    for args in (
        ["provision", str(site), "--format", "json"],
        ["provision", str(site), "--format", "json"],
        ["drift", str(site), "--format", "json"],
        ["history", "--format", "json"],
        ["history"],
    ):
        proc = run_cli(*args, env=env)
        assert proc.returncode == 0, proc.stderr
        outputs.append(proc.stdout)
    db = (Path(env["XDG_STATE_HOME"]) / "qsipctl" / "state.db").read_bytes()
    dump = "\n".join(sqlite3.connect(tmp_path / "state" / "qsipctl" / "state.db").iterdump())
    haystack = "\n".join([*outputs, db.decode("latin-1"), dump])
    # the attack works where a plain hash is shown (positive control) ...
    on_core = hashlib.sha256(Path(core.config_path).read_bytes()).hexdigest()
    assert _brute_force(site, "pin", on_core) == "4711"
    # ... and finds nothing in what qsipctl prints and stores
    assert _brute_force(site, "pin", haystack) is None


def test_old_passwords_in_agent_output_and_password_equal_to_extension(
    ssh_lab: SshLab, tmp_path: Path, env: dict[str, str]
) -> None:
    core = ssh_lab.start("leak")
    old = "Old-Pw-7c1d"
    site = write_site(tmp_path / "one", ssh_lab, [core], password="first-pass")
    assert run_cli("provision", str(site), env=env).returncode == 0
    complain = f"echo 'agent[12]: old password={old} still active' >&2; exit 4"
    # the new password equals the extension (username): masking its text would
    # show a fake username change in --diff and give the password away
    bad = write_site(tmp_path / "two", ssh_lab, [core], password="{ext}", apply={"leak": complain})
    diff = run_cli("provision", str(bad), "--check", "--diff", env=env)
    assert "username" not in diff.stdout, diff.stdout
    assert "softphones[0].password: ******** (changed)" in diff.stdout
    proc = run_cli("provision", str(bad), "--format", "json", env=env)
    assert proc.returncode == 1
    reason = as_json(proc)["results"][0]["reason"]
    assert reason.startswith("apply_command exited 4: agent[12]: old password=********")
    assert "127.0.0.1" in as_json(proc)["results"][0]["host"]  # nothing garbled
    table = run_cli("provision", str(bad), env=env).stdout
    db = (Path(env["XDG_STATE_HOME"]) / "qsipctl" / "state.db").read_bytes()
    for text in (proc.stdout, table, run_cli("history", env=env).stdout, db.decode("latin-1")):
        assert old not in text and "first-pass" not in text


# -- 8-9. what an operator sees ------------------------------------------------------
@pytest.fixture
def blackhole() -> Iterator[int]:
    """A TCP port that accepts connections (kernel backlog) and never says a word."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    try:
        yield int(sock.getsockname()[1])
    finally:
        sock.close()


def test_piped_run_streams_a_core_line_before_a_blackholed_core_times_out(
    ssh_lab: SshLab, tmp_path: Path, env: dict[str, str], blackhole: int
) -> None:
    core = ssh_lab.start("quick")
    site = write_site(tmp_path, ssh_lab, [core], hosts=[("silent", blackhole)], timeout=4)
    junit = tmp_path / "report.xml"
    proc = start("provision", str(site), "--forks", "2", "--junit", str(junit), env=env)
    assert proc.stdout is not None
    first = proc.stdout.readline()
    assert "changed: [quick]" in first, first
    assert proc.poll() is None  # the silent core has not timed out yet, the line is out
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert "unreachable: [silent]" in out and "silent (unreachable):" in out
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None and suite.get("tests") == "2"
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert cases["quick"].find("failure") is None
    assert cases["silent"].find("failure") is not None


def test_recap_names_failures_tables_fit_and_junit_has_one_case_per_core(
    ssh_lab: SshLab, tmp_path: Path, env: dict[str, str]
) -> None:
    deep = tmp_path / ("a-rather-long-directory-name-" * 3) / "x"
    cores = ssh_lab.start_many(2)
    refused = cores[1].port
    cores[1].kill()
    site = write_site(deep, ssh_lab, [cores[0]], hosts=[("gone", refused)])
    junit = tmp_path / "junit.xml"
    proc = run_cli("provision", str(site), "--junit", str(junit), env=env)
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    assert max(len(line) for line in lines if not line.startswith("  ")) <= 100, proc.stdout
    recap = proc.stdout[proc.stdout.index("RECAP") :]
    assert "failed or unreachable (1):" in recap
    assert "gone (unreachable): cannot connect to 127.0.0.1" in recap
    assert "created .../core/softphone.json" in proc.stdout  # shortened to fit
    assert run_cli("provision", str(site), env=env).returncode == 1
    assert str(cores[0].config_path) in run_cli("history", "--wide", env=env).stdout
    assert str(cores[0].config_path) not in run_cli("history", env=env).stdout
    root = ET.parse(junit).getroot()
    suite = root.find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("2", "1", "0")
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    failure = cases["gone"].find("failure")
    assert failure is not None and failure.get("type") == "unreachable"
    assert cases[cores[0].name].get("classname") == "qsipctl.provision.site"
    runs = run_cli("history", "--runs", env=env)
    assert runs.returncode == 0
    assert re.search(r"^2 +\S+ +site +finished +ok=1 unreachable=1 *$", runs.stdout, re.M), (
        runs.stdout
    )


# -- 10. moving the checkout ---------------------------------------------------------
def test_history_and_drift_survive_moving_the_checkout(
    ssh_lab: SshLab, tmp_path: Path, env: dict[str, str]
) -> None:
    cores = ssh_lab.start_many(2)
    site = write_site(tmp_path / "checkout-1", ssh_lab, cores)
    never = run_cli("drift", str(site), env=env)
    assert never.returncode == 1 and never.stdout.count("never-pushed") == 2  # not a pass
    apply = {"core001": "exit 1"}
    site = write_site(tmp_path / "checkout-1", ssh_lab, cores, apply=apply)
    assert run_cli("provision", str(site), env=env).returncode == 1
    moved = tmp_path / "ci-runner" / "fresh-checkout"
    shutil.copytree(tmp_path / "checkout-1", moved)
    shutil.rmtree(tmp_path / "checkout-1")
    site = moved / "site.yml"
    drift = run_cli("drift", str(site), "--format", "json", env=env)
    assert [r["state"] for r in as_json(drift)["results"]] == ["in-sync", "never-pushed"]
    fixed = write_site(moved, ssh_lab, cores)
    retry = run_cli("provision", str(fixed), "--retry-failed", "--format", "json", env=env)
    assert retry.returncode == 0, retry.stderr
    assert [r["core"] for r in as_json(retry)["results"]] == ["core001"]
    assert run_cli("drift", str(fixed), env=env).returncode == 0
