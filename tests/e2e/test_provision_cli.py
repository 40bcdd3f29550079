"""``qsipctl provision`` / ``history`` / ``drift`` end to end, against real sshd cores."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fixtures.common import free_port, run_cli, wait_until
from tests.fixtures.sshd import SshdCore, SshLab

pytestmark = pytest.mark.e2e

SIP_PASSWORDS = ["Sip-Pw-one-31f7", "Sip-Pw-two-8c2a", "Sip-Pw-three-44d0", "Sip-Pw-four-9e1b"]
CONN_PASSWORD = "Conn-Pw-5b6e"


def write_site(
    tmp_path: Path,
    lab: SshLab,
    cores: list[SshdCore],
    extra: dict[str, dict[str, str]] | None = None,
    dead: tuple[str, int] | None = None,
) -> Path:
    """A site whose hosts are the given sshd cores (plus an optional dead one)."""
    secrets = tmp_path / "secrets"
    secrets.mkdir(exist_ok=True)
    lines = [
        "all:",
        "  vars:",
        "    ansible_user: root",
        f"    ansible_ssh_private_key_file: {lab.client_key_path}",
        f"    qsipctl_known_hosts: {lab.known_hosts}",
        "    ansible_password: env:QSIPCTL_TEST_CONN_PW",
        "    qsipctl_timeout: 5",
        "    qsys_model: Core 110f",
        "  hosts:",
    ]
    hosts = [(c.name, c.port, c.config_path) for c in cores]
    if dead:
        hosts.append((dead[0], dead[1], "/nonexistent/softphone.json"))
    for n, (name, port, path) in enumerate(hosts):
        (secrets / f"{name}.txt").write_text(SIP_PASSWORDS[n % len(SIP_PASSWORDS)] + "\n")
        lines += [
            f"    {name}:",
            "      ansible_host: 127.0.0.1",
            f"      ansible_port: {port}",
            f"      qsipctl_config_path: {path}",
        ]
        for key, value in (extra or {}).get(name, {}).items():
            lines.append(f"      {key}: {json.dumps(value)}")
        lines += [
            "      softphones:",
            f"        - name: Phone {n}",
            "          profile: freepbx",
            "          registrar: 127.0.0.1:5060",
            f'          username: "{2000 + n}"',
            f"          password: file:secrets/{name}.txt",
        ]
    site = tmp_path / "site.yml"
    site.write_text("\n".join(lines) + "\n")
    return site


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        "QSIPCTL_TEST_CONN_PW": CONN_PASSWORD,
        "XDG_STATE_HOME": str(tmp_path / "state"),
    }


def provision(site: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli("provision", str(site), *args, env=env)


def as_json(proc: subprocess.CompletedProcess[str]) -> dict:
    assert proc.stdout, proc.stderr
    return json.loads(proc.stdout)


def assert_no_secrets(*texts: str) -> None:
    for text in texts:
        for secret in [*SIP_PASSWORDS, CONN_PASSWORD]:
            assert secret not in text


def test_first_push_changed_then_ok_json_and_table(ssh_lab: SshLab, tmp_path, env) -> None:
    cores = ssh_lab.start_many(3)
    site = write_site(tmp_path, ssh_lab, cores)

    first = provision(site, env, "--format", "json")
    assert first.returncode == 0, first.stderr
    data = as_json(first)
    assert data["schema"] == "qsipctl.provision/2"
    assert data["recap"] == {"ok": 0, "changed": 3, "unreachable": 0, "failed": 0, "skipped": 0}
    assert [r["status"] for r in data["results"]] == ["changed"] * 3
    for core in cores:
        doc = Path(core.config_path).read_bytes()
        assert b"qsipctl.softphone-config" in doc
    assert SIP_PASSWORDS[0].encode() in Path(cores[0].config_path).read_bytes()

    second = provision(site, env)
    assert second.returncode == 0, second.stderr
    assert "RECAP run 2: ok=3  changed=0  unreachable=0  failed=0  skipped=0" in second.stdout
    assert second.stdout.count("config up to date") == 6  # streamed, then the table
    assert "\x1b[" not in second.stdout + second.stderr  # not a TTY: no progress, no colour
    retry = provision(site, env, "--retry-failed")
    assert retry.returncode == 0 and "nothing to retry" in retry.stdout
    assert_no_secrets(first.stdout, first.stderr, second.stdout, second.stderr)


def test_check_and_diff_mask_secrets(ssh_lab: SshLab, tmp_path, env) -> None:
    cores = ssh_lab.start_many(2)
    site = write_site(tmp_path, ssh_lab, cores)
    proc = provision(site, env, "--check", "--diff")
    assert proc.returncode == 0, proc.stderr
    assert "--- diff for core000 ---" in proc.stdout
    assert '"password": "********"' in proc.stdout
    assert "check mode: nothing written" in proc.stdout
    assert not any(Path(c.config_path).exists() for c in cores)
    data = as_json(provision(site, env, "--check", "--diff", "--format", "json"))
    assert data["check"] is True and all(r["diff"] for r in data["results"])
    assert_no_secrets(proc.stdout, proc.stderr, json.dumps(data))


def test_unreachable_core_exit_1_and_retry_failed_touches_only_it(
    ssh_lab: SshLab, tmp_path, env
) -> None:
    cores = ssh_lab.start_many(3)
    dead_port = free_port()
    site = write_site(tmp_path, ssh_lab, cores, dead=("dead", dead_port))
    first = provision(site, env, "--format", "json")
    assert first.returncode == 1
    statuses = {r["core"]: r["status"] for r in as_json(first)["results"]}
    assert statuses == {
        "core000": "changed",
        "core001": "changed",
        "core002": "changed",
        "dead": "unreachable",
    }

    # make core001 drift so we can see --retry-failed leaves it alone
    Path(cores[1].config_path).write_text("hand edited\n")
    retry = provision(site, env, "--retry-failed", "--format", "json")
    assert retry.returncode == 1
    assert [r["core"] for r in as_json(retry)["results"]] == ["dead"]
    assert Path(cores[1].config_path).read_text() == "hand edited\n"

    hist = run_cli("history", str(site), "--format", "json", env=env)
    assert hist.returncode == 0, hist.stderr
    entries = json.loads(hist.stdout)["entries"]
    assert [(e["run_id"], e["core"], e["status"]) for e in entries][:1] == [
        (2, "dead", "unreachable")
    ]
    assert len(entries) == 5

    table = run_cli("history", "--limit", "core00*:!core002", env=env)
    assert table.returncode == 0
    assert "core000" in table.stdout and "core001" in table.stdout
    assert "core002" not in table.stdout and "dead" not in table.stdout

    drift = run_cli("drift", str(site), "--limit", "core*", "--format", "json", env=env)
    assert drift.returncode == 1, drift.stderr
    states = {r["core"]: r["state"] for r in json.loads(drift.stdout)["results"]}
    assert states == {"core000": "in-sync", "core001": "drifted", "core002": "in-sync"}

    db = Path(env["XDG_STATE_HOME"]) / "qsipctl" / "state.db"
    assert db.exists()
    assert_no_secrets(db.read_bytes().decode("latin-1"), first.stdout, retry.stdout, hist.stdout)


def test_serial_max_fail_percent_stops_later_batches(ssh_lab: SshLab, tmp_path, env) -> None:
    cores = ssh_lab.start_many(4)
    extra = {"core001": {"qsipctl_apply_command": "exit 4"}}
    site = write_site(tmp_path, ssh_lab, cores, extra=extra)
    proc = provision(site, env, "--serial", "50%", "--max-fail-percent", "10")
    assert proc.returncode == 1
    assert "stopped: batch 1: 1 of 2 cores failed (50%)" in proc.stdout
    assert "apply_command exited 4" in proc.stdout and "rolled back" in proc.stdout
    assert not Path(cores[2].config_path).exists() and not Path(cores[3].config_path).exists()
    assert "skipped=2" in proc.stdout


def test_wrong_host_key_and_accept_new(ssh_lab: SshLab, tmp_path, env) -> None:
    core = ssh_lab.start("newhost", record_known_host=False)
    site = write_site(tmp_path, ssh_lab, [core])
    refused = provision(site, env)
    assert refused.returncode == 1
    assert "host key for 127.0.0.1:" in refused.stdout and "SHA256:" in refused.stdout
    accepted = provision(site, env, "--accept-new-host-keys")
    assert accepted.returncode == 0, accepted.stdout
    assert core.known_hosts_line() in ssh_lab.known_hosts.read_text()


def test_bad_input_exit_2_nothing_touched(ssh_lab: SshLab, tmp_path, env) -> None:
    core = ssh_lab.start("bad")
    site = write_site(tmp_path, ssh_lab, [core])
    (tmp_path / "secrets" / "bad.txt").unlink()
    proc = provision(site, env)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "bad.txt" in proc.stderr
    assert not Path(core.config_path).exists()
    usage = provision(site, env, "--serial", "0")
    assert usage.returncode == 2 and "--serial" in usage.stderr
    (tmp_path / "secrets" / "bad.txt").write_text("restored\n")
    nodb = provision(site, env, "--state-db", str(tmp_path / "secrets" / "bad.txt" / "x.db"))
    assert nodb.returncode == 2 and "cannot open state db" in nodb.stderr
    assert not Path(core.config_path).exists()
    retry = provision(site, env, "--retry-failed")
    assert retry.returncode == 2 and "no earlier run" in retry.stderr


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_finishes_in_flight_and_records(ssh_lab: SshLab, tmp_path, env, signum) -> None:
    cores = ssh_lab.start_many(4)
    marker = tmp_path / "started"
    extra = {"core000": {"qsipctl_apply_command": f"touch {marker}; sleep 1"}}
    site = write_site(tmp_path, ssh_lab, cores, extra=extra)
    exe = Path(sys.executable).with_name("qsipctl")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "qsipctl"]
    proc = subprocess.Popen(
        [*cmd, "provision", str(site), "--forks", "1", "--format", "json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **env},
    )
    wait_until(marker.exists, timeout=30)
    proc.send_signal(signum)  # SIGTERM: a cancelled CI job, a systemd stop
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    data = json.loads(out)
    assert data["interrupted"] is True
    assert [r["status"] for r in data["results"]] == ["changed", "skipped", "skipped", "skipped"]
    assert Path(cores[0].config_path).exists() and not Path(cores[1].config_path).exists()
    hist = json.loads(run_cli("history", "--format", "json", env=env).stdout)
    assert len(hist["entries"]) == 4
    time.sleep(0)


def write_local_site(tmp_path: Path, names: list[str], apply: str | None = None) -> Path:
    lines = [
        "all:",
        "  vars:",
        "    qsipctl_connector: local",
        "    qsys_model: Core 110f",
        "  hosts:",
    ]
    (tmp_path / "secrets").mkdir(exist_ok=True)
    for n, name in enumerate(names):
        (tmp_path / "secrets" / f"{name}.txt").write_text(SIP_PASSWORDS[n] + "\n")
        lines += [
            f"    {name}:",
            f"      qsipctl_local_dir: {tmp_path / 'cores' / name}",
            *([f"      qsipctl_apply_command: {json.dumps(apply)}"] if apply else []),
            "      softphones:",
            "        - name: Phone",
            "          profile: freepbx",
            "          registrar: 127.0.0.1:5060",
            f'          username: "{2100 + n}"',
            f"          password: file:secrets/{name}.txt",
        ]
    site = tmp_path / "local-site.yml"
    site.write_text("\n".join(lines) + "\n")
    return site


def test_local_connector_changed_then_ok_and_drift(tmp_path, env) -> None:
    site = write_local_site(tmp_path, ["room-a", "room-b"])
    first = provision(site, env)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "changed=2" in first.stdout
    doc = tmp_path / "cores" / "room-a" / "var/lib/qsipctl/softphone.json"
    assert SIP_PASSWORDS[0] in doc.read_text()
    second = provision(site, env)
    assert second.returncode == 0 and "ok=2  changed=0" in second.stdout
    drift = run_cli("drift", str(site), env=env)
    assert drift.returncode == 0, drift.stdout + drift.stderr
    assert drift.stdout.count("in-sync") == 2
    doc.write_text("{}\n")
    drift = run_cli("drift", str(site), "--format", "json", env=env)
    assert drift.returncode == 1
    assert [r["state"] for r in json.loads(drift.stdout)["results"]] == ["drifted", "in-sync"]
    assert_no_secrets(first.stdout, second.stdout, drift.stdout)


def test_secrets_absent_from_every_output_and_the_state_db(tmp_path, env) -> None:
    # the apply_command prints the whole document (passwords included) and fails
    site = write_local_site(tmp_path, ["leaky"], apply="cat {path}; cat {path} >&2; exit 9")
    outputs = []
    for args in (
        ["provision", str(site), "--check", "--diff"],
        ["provision", str(site), "--check", "--diff", "--format", "json"],
        ["provision", str(site), "--diff"],
        ["provision", str(site), "--diff", "--format", "json"],
        ["history"],
        ["history", "--format", "json"],
        ["drift", str(site)],
        ["drift", str(site), "--format", "json"],
    ):
        proc = run_cli(*args, env=env)
        assert "Traceback" not in proc.stderr
        outputs += [proc.stdout, proc.stderr]
    assert "apply_command exited 9" in outputs[4]
    assert "rolled back" in outputs[4]
    db = Path(env["XDG_STATE_HOME"]) / "qsipctl" / "state.db"
    assert_no_secrets(*outputs, db.read_bytes().decode("latin-1"))


def test_lines_stream_on_a_tty_too_without_escape_codes_under_no_color(tmp_path, env) -> None:
    import pty

    site = write_local_site(tmp_path, ["p1", "p2"])
    exe = Path(sys.executable).with_name("qsipctl")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "qsipctl"]
    leader, follower = pty.openpty()
    proc = subprocess.run(
        [*cmd, "provision", str(site)],
        stdout=follower,
        stderr=subprocess.PIPE,
        env={**os.environ, **env, "NO_COLOR": "1"},
        check=False,
        timeout=60,
    )
    os.close(follower)
    out = os.read(leader, 65536).decode()
    os.close(leader)
    assert proc.returncode == 0
    assert "changed: [p1]" in out and "changed: [p2]" in out and "RECAP" in out
    assert "\x1b[" not in out


def test_history_with_a_site_takes_site_patterns(tmp_path, env) -> None:
    site = write_local_site(tmp_path, ["room-a", "room-b", "room-c"])
    assert provision(site, env).returncode == 0
    proc = run_cli("history", str(site), "--limit", "all:!room-b", "--format", "json", env=env)
    assert proc.returncode == 0, proc.stderr
    assert [e["core"] for e in json.loads(proc.stdout)["entries"]] == ["room-a", "room-c"]
    typo = run_cli("history", str(site), "--limit", "rom-a", env=env)
    assert typo.returncode == 2 and "Traceback" not in typo.stderr
    other = run_cli("history", str(tmp_path / "elsewhere.yml"), env=env)
    assert other.returncode == 0 and "no runs recorded" in other.stdout


def test_silent_server_one_line_no_paramiko_traceback(ssh_lab: SshLab, tmp_path, env) -> None:
    """A port that accepts TCP but never speaks SSH: one reason line, nothing on stderr."""
    import socket

    core = ssh_lab.start("alive")
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(5)
        site = write_site(tmp_path, ssh_lab, [core], dead=("mute", listener.getsockname()[1]))
        proc = provision(site, env, "--timeout", "1", "--format", "json")
    assert proc.returncode == 1
    assert proc.stderr == ""  # paramiko's own logging must not reach the terminal
    mute = as_json(proc)["results"][1]
    assert mute["status"] == "unreachable"
    assert "within 1s" in mute["reason"] or "banner" in mute["reason"], mute["reason"]


def test_two_cores_writing_one_file_refused_before_anything(ssh_lab: SshLab, tmp_path, env) -> None:
    """Same address and config path twice would flap forever (each run "changed")."""
    core = ssh_lab.start("shared")
    twin = SshdCore("twin", core.port, core.root, core.host_key, core.proc, core.workdir)
    site = write_site(tmp_path, ssh_lab, [core, twin])
    proc = provision(site, env)
    assert proc.returncode == 2, proc.stdout
    assert "shared and twin both write 127.0.0.1:" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not Path(core.config_path).exists()
    assert provision(site, env, "--limit", "twin").returncode == 0


def test_retry_failed_remembers_each_cores_latest_result(tmp_path, env) -> None:
    """A --limit run of other cores in between must not make a failure forgotten."""
    apply = 'case "$QSIPCTL_ROOT" in *room-b) test -e fixed || exit 3;; esac'
    site = write_local_site(tmp_path, ["room-a", "room-b", "room-c"], apply=apply)
    first = provision(site, env, "--format", "json")
    assert first.returncode == 1
    assert [r["status"] for r in as_json(first)["results"]] == ["changed", "failed", "changed"]
    assert provision(site, env, "--limit", "room-a").returncode == 0
    (tmp_path / "cores" / "room-b" / "fixed").write_text("")
    retry = provision(site, env, "--retry-failed", "--format", "json")
    assert retry.returncode == 0, retry.stdout + retry.stderr
    assert [(r["core"], r["status"]) for r in as_json(retry)["results"]] == [("room-b", "changed")]
    again = provision(site, env, "--retry-failed")
    assert again.returncode == 0 and "nothing to retry" in again.stdout
    empty = as_json(provision(site, env, "--retry-failed", "--format", "json"))
    assert empty["results"] == [] and empty["exit_code"] == 0
    assert empty["started"].endswith("Z") and empty["finished"].endswith("Z")  # ISO-8601


@pytest.mark.root  # a read-only bind mount in a private mount namespace
def test_history_and_drift_read_a_read_only_state_db(tmp_path, env) -> None:
    """Auditing from read-only media (or another user's db) must work; provision must
    refuse before touching a core."""
    site = write_local_site(tmp_path, ["room-a"])
    assert provision(site, env).returncode == 0
    dbdir = Path(env["XDG_STATE_HOME"]) / "qsipctl"
    exe = Path(sys.executable).with_name("qsipctl")
    qsipctl = str(exe) if exe.exists() else f"{sys.executable} -m qsipctl"
    script = (
        f'mount --bind -o ro "{dbdir}" "{dbdir}" || exit 99; '
        f'{qsipctl} history --format json; echo "rc=$?"; '
        f'{qsipctl} drift "{site}"; echo "rc=$?"; '
        f'{qsipctl} provision "{site}"; echo "rc=$?"'
    )
    proc = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c", script],
        capture_output=True,
        text=True,
        env={**os.environ, **env, "NO_COLOR": "1"},
        timeout=120,
        check=False,
    )
    codes = [line for line in proc.stdout.splitlines() if line.startswith("rc=")]
    assert codes == ["rc=0", "rc=0", "rc=2"], proc.stdout + proc.stderr
    assert '"core": "room-a"' in proc.stdout and "in-sync" in proc.stdout
    assert "cannot open state db" in proc.stderr and "Read-only" in proc.stderr
    assert "Traceback" not in proc.stderr
