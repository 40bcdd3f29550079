"""Benchmark: ``qsipctl provision`` vs ``ansible-playbook`` pushing the same file.

Sets up N real OpenSSH daemons on loopback (one per core, as the tests do),
renders one softphone document per core with qsipctl, then times:

1. ``qsipctl provision`` first push (a lock per core, backup, read-back
   verification, history recorded as each core finishes)
2. ``qsipctl provision`` no-change re-run
3. the cores are wiped
4. ``ansible-playbook`` with the ``copy`` module (backup=yes, mode 0600) first push
5. ``ansible-playbook`` no-change re-run

Both run with the same forks; gather_facts is off and Ansible's SSH
pipelining is on (a common tuning, in Ansible's favour).  ansible-core is
installed into its own venv (default ~/.cache/qsipctl-bench/ansible), never
as a qsipctl dependency.  Needs root (sshd).  Traffic stays on 127.0.0.1.

    python3 benchmarks/provision_vs_ansible.py [--cores 100] [--forks 10]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.fixtures.sshd import SshLab, _ed25519_openssh  # noqa: E402

ANSIBLE_SPEC = "ansible-core>=2.17,<2.18"


def ensure_ansible(venv: Path) -> Path:
    """ansible-playbook from a private venv, installed with pip on first use."""
    playbook = venv / "bin" / "ansible-playbook"
    if not playbook.exists():
        print(f"installing {ANSIBLE_SPEC} into {venv} ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = [str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check"]
        subprocess.run([*pip, ANSIBLE_SPEC], check=True)
    return playbook


def qsipctl_exe() -> list[str]:
    exe = Path(sys.executable).with_name("qsipctl")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "qsipctl"]


def make_lab(base: Path, count: int) -> SshLab:
    base.mkdir(parents=True)
    key_path = base / "client_ed25519"
    key = _ed25519_openssh(key_path)
    (base / "authorized_keys").write_text(f"{key.get_name()} {key.get_base64()}\n")
    (base / "known_hosts").write_text("")
    lab = SshLab(base, key_path, key, base / "known_hosts")
    lab.start_many(count)
    return lab


def write_site(work: Path, lab: SshLab) -> Path:
    secrets = work / "secrets"
    secrets.mkdir()
    lines = [
        "all:",
        "  vars:",
        "    ansible_user: root",
        f"    ansible_ssh_private_key_file: {lab.client_key_path}",
        f"    qsipctl_known_hosts: {lab.known_hosts}",
        "    qsys_model: Core 110f",
        "  hosts:",
    ]
    for n, core in enumerate(lab.cores):
        (secrets / f"{core.name}.txt").write_text(f"bench-secret-{n}\n")
        lines += [
            f"    {core.name}:",
            "      ansible_host: 127.0.0.1",
            f"      ansible_port: {core.port}",
            f"      qsipctl_config_path: {core.config_path}",
            "      softphones:",
            f"        - name: Phone {n}",
            "          profile: freepbx",
            "          registrar: 127.0.0.1:5060",
            f'          username: "{3000 + n}"',
            f"          password: file:secrets/{core.name}.txt",
        ]
    site = work / "site.yml"
    site.write_text("\n".join(lines) + "\n")
    return site


def write_ansible(work: Path, site: Path, lab: SshLab) -> tuple[Path, Path]:
    """An inventory, the rendered documents as files, a copy playbook, ansible.cfg."""
    from qsipctl.site.load import load_site
    from qsipctl.site.render import render_core

    files = work / "files"
    files.mkdir()
    inventory = ["[cores]"]
    for core in load_site(site).cores:
        (files / f"{core.name}.json").write_bytes(render_core(core).document)
        conn = core.connection
        inventory.append(
            f"{core.name} ansible_host=127.0.0.1 ansible_port={conn.port} "
            f"config_path={conn.config_path}"
        )
    inventory += [
        "[cores:vars]",
        "ansible_user=root",
        f"ansible_ssh_private_key_file={lab.client_key_path}",
        "ansible_python_interpreter=/usr/bin/python3",
        f"ansible_ssh_common_args='-o UserKnownHostsFile={lab.known_hosts} "
        "-o StrictHostKeyChecking=yes'",
    ]
    (work / "hosts.ini").write_text("\n".join(inventory) + "\n")
    (work / "push.yml").write_text(
        "- hosts: cores\n"
        "  gather_facts: false\n"
        "  tasks:\n"
        "    - name: push softphone config\n"
        "      copy:\n"
        f"        src: {files}/{{{{ inventory_hostname }}}}.json\n"
        "        dest: '{{ config_path }}'\n"
        "        mode: '0600'\n"
        "        backup: true\n"
    )
    cfg = work / "ansible.cfg"
    cfg.write_text(
        "[defaults]\nhost_key_checking = True\nretry_files_enabled = False\n"
        f"local_tmp = {work / 'ansible-local'}\n"
        "[ssh_connection]\npipelining = True\n"
        f"control_path_dir = {work / 'cp'}\n"
    )
    return work / "push.yml", cfg


def timed(cmd: list[str], env: dict[str, str], cwd: Path) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"{cmd[0]} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr}")
    return elapsed, proc.stdout


def check_qsipctl(out: str, expect: str, count: int) -> None:
    recap = json.loads(out)["recap"]
    if recap[expect] != count:
        sys.exit(f"qsipctl: expected {count} {expect}, got {recap}")


def check_ansible(out: str, expect: str, count: int) -> None:
    recap_lines = [line for line in out.splitlines() if " : ok=" in line]
    hits = sum(f"{expect}=1" in line and "failed=0" in line for line in recap_lines)
    if len(recap_lines) != count or hits != count:
        sys.exit(f"ansible: expected {count} hosts with {expect}=1:\n{out[-2000:]}")


def wipe(lab: SshLab) -> None:
    for core in lab.cores:
        for entry in core.root.iterdir():
            entry.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cores", type=int, default=100)
    parser.add_argument("--forks", type=int, default=10)
    default_venv = Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")).expanduser()
    parser.add_argument("--ansible-venv", type=Path, default=default_venv / "qsipctl-bench/ansible")
    parser.add_argument("--skip-ansible", action="store_true", help="time qsipctl only")
    args = parser.parse_args()

    playbook_exe = None if args.skip_ansible else ensure_ansible(args.ansible_venv)
    work = Path(tempfile.mkdtemp(prefix="qsipctl-bench-"))
    lab = make_lab(work / "lab", args.cores)
    try:
        site = write_site(work, lab)
        env = {**os.environ, "XDG_STATE_HOME": str(work / "state"), "NO_COLOR": "1"}
        env.pop("SSH_AUTH_SOCK", None)
        q = [*qsipctl_exe(), "provision", str(site), "--forks", str(args.forks), "--format", "json"]
        times: dict[str, float] = {}
        times["qsipctl first push"], out = timed(q, env, work)
        check_qsipctl(out, "changed", args.cores)
        times["qsipctl re-run"], out = timed(q, env, work)
        check_qsipctl(out, "ok", args.cores)
        if playbook_exe is not None:
            playbook, cfg = write_ansible(work, site, lab)
            wipe(lab)
            a_env = {**env, "ANSIBLE_CONFIG": str(cfg), "ANSIBLE_NOCOLOR": "1"}
            a = [str(playbook_exe), "-i", str(work / "hosts.ini"), "-f", str(args.forks)]
            a.append(str(playbook))
            times["ansible first push"], out = timed(a, a_env, work)
            check_ansible(out, "changed", args.cores)
            times["ansible re-run"], out = timed(a, a_env, work)
            check_ansible(out, "ok", args.cores)
        report(times, args.cores, args.forks)
    finally:
        lab.stop_all()
        shutil.rmtree(work, ignore_errors=True)


def report(times: dict[str, float], cores: int, forks: int) -> None:
    print(f"\n{cores} sshd cores on loopback, forks {forks}")
    for name, seconds in times.items():
        print(f"  {name:<20} {seconds:8.2f} s")
    if "ansible first push" in times:
        first = times["ansible first push"] / times["qsipctl first push"]
        rerun = times["ansible re-run"] / times["qsipctl re-run"]
        print(f"  ratio first push     {first:8.1f}x  (goal >= 25x)")
        print(f"  ratio re-run         {rerun:8.1f}x  (goal >= 25x)")


if __name__ == "__main__":
    main()
