#!/usr/bin/env python3
"""qsipctl's REGISTER probe vs sipsak, against the same Kamailio on loopback.

1. One REGISTER-with-digest-auth by the CLI, process start to exit, vs
   ``sipsak -U`` doing the same (median of --runs each, interleaved so load
   on the machine hits both alike).  qsipctl is run as by default (a binding
   query: REGISTER, 401, REGISTER, 200, the exchange sipsak makes) and, for
   information, with --bind (query, binding, unregistration: two more round
   trips).
2. --accounts accounts (default 1000) registered and unregistered with
   ``qsipctl diagnose --register --bind --concurrency 100`` over a generated site,
   vs a shell-style loop of sipsak runs (register, then unregister with
   Expires 0) one account after another.

qsipctl and the ``python -c 'import asyncio, click'`` floor run from a clean
venv (default ``~/.cache/qsipctl-bench/probe-venv``) that this script creates
and into which it installs the current checkout with a regular, non-editable
``pip install`` (what the README tells users), so neither pays for
whatever ``.pth`` files the developer's own Python loads at start-up.

Prints the wall times and the ratios.  Goals (issue 4): (1) <= 4x sipsak,
(2) under 5 s.  Goal (1) is retired (issue 7); ``register_vs_sipp.py``
is the throughput benchmark now, and imports its helpers from here.
Needs kamailio, sipsak and openssl (Debian packages); run as root or any
user that may bind loopback ports:

    python3 benchmarks/register_vs_sipsak.py [--runs 20] [--accounts 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.fixtures.kamailio import Kamailio, make_ca, start_kamailio  # noqa: E402

SIPSAK = shutil.which("sipsak") or "/usr/bin/sipsak"
DEFAULT_VENV = Path("~/.cache/qsipctl-bench/probe-venv").expanduser()
# set by prepare_venv(): the measured interpreter and console script
PYTHON = sys.executable
QSIPCTL = "qsipctl"


def _users(n: int) -> list[str]:
    """Five-digit users: sipsak 0.9.8 mangles very short user names ("1" -> "1@")."""
    return [str(10001 + i) for i in range(n)]


CPU: dict[str, list[float]] = {}  # CPU seconds (user+sys) per command kind


def _child_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def timed(cmd: list[str], env: dict[str, str] | None = None, kind: str = "") -> float:
    """Wall time of one run; its CPU time is kept in CPU[kind] (steadier on a busy box)."""
    cpu0, start = _child_cpu(), time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, env=env, check=False)
    elapsed = time.perf_counter() - start
    CPU.setdefault(kind, []).append(_child_cpu() - cpu0)
    if res.returncode != 0:
        raise SystemExit(
            f"failed ({res.returncode}): {' '.join(cmd)}\n{res.stdout!r}{res.stderr!r}"
        )
    return elapsed


def bench_env(**extra: str) -> dict[str, str]:
    """The environment of a normal install: bytecode caches allowed (pip writes them).

    Sandboxes often set PYTHONDONTWRITEBYTECODE, which would make every run
    recompile every qsipctl module from source and measure that instead.
    """
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return {**env, "NO_COLOR": "1", **extra}


def prepare_venv(venv: Path) -> None:
    """A clean venv with the current checkout installed as a user would install it.

    Non-editable and without the developer's site-packages: an editable
    install's import hook or another package's ``.pth`` would otherwise be
    measured on every start-up.  The venv is kept between runs (dependencies
    install once); qsipctl itself is reinstalled from a copy of the working
    tree every time, so uncommitted changes are what is measured and the
    checkout gets no build/ or egg-info litter.  pip byte-compiles, as for users.
    """
    global PYTHON, QSIPCTL
    py = venv / "bin" / "python"
    env = bench_env()
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    with tempfile.TemporaryDirectory(prefix="qsipctl-src-") as tmp:
        src = Path(tmp) / "src"
        skip = shutil.ignore_patterns("__pycache__", "*.pyc")
        shutil.copytree(REPO / "qsipctl", src / "qsipctl", ignore=skip)
        for name in ("pyproject.toml", "README.md"):
            shutil.copy2(REPO / name, src / name)
        pip = [str(py), "-m", "pip", "install", "-qq", "--disable-pip-version-check"]
        subprocess.run([*pip, str(src)], check=True, env=env)  # dependencies, once
        subprocess.run([*pip, "--no-deps", "--force-reinstall", str(src)], check=True, env=env)
    PYTHON, QSIPCTL = str(py), str(venv / "bin" / "qsipctl")
    where = subprocess.run(
        [PYTHON, "-c", "import qsipctl; print(qsipctl.__file__)"],
        capture_output=True, text=True, check=True, env=env,
    ).stdout.strip()  # fmt: skip
    print(f"measuring {QSIPCTL}: regular (non-editable) install of this checkout in a clean venv")
    print(f"  (qsipctl imported from {where})")


def single_probe(k: Kamailio, runs: int) -> None:
    env = bench_env(BENCH_PW="pw-10001")
    uri = f"sip:10001@127.0.0.1:{k.udp_port}"
    # the default probe (a Contact-less REGISTER) makes sipsak's exchange: REGISTER, 401,
    # REGISTER, 200; --bind adds our binding and its removal
    q_keep = [QSIPCTL, "probe", "register", uri, "--password-env", "BENCH_PW"]
    q_full = [QSIPCTL, "probe", "register", uri, "--password-env", "BENCH_PW", "--bind"]
    s_cmd = [SIPSAK, "-U", "-s", uri, "-a", "pw-10001", "-x", "3600"]
    py = [PYTHON, "-c", "import asyncio, click"]
    times: dict[str, list[float]] = {"sipsak": [], "keep": [], "full": [], "python": []}
    for cmd in (s_cmd, q_keep, q_full, py):  # warm caches (pyc, page cache)
        k.clear()  # sipsak's binding would make --bind refuse (another device bound)
        timed(cmd, env)
    CPU.clear()
    for _ in range(runs):
        # Every REGISTER meets an account without bindings, as a first registration
        # does: kept registrations would otherwise pile up, and the 200 OK lists them all.
        k.clear()
        times["sipsak"].append(timed(s_cmd, env, "sipsak"))
        k.clear()
        times["keep"].append(timed(q_keep, env, "keep"))
        k.clear()
        times["full"].append(timed(q_full, env, "full"))
        times["python"].append(timed(py, env, "python"))
    k.clear()
    med = {name: statistics.median(values) * 1000 for name, values in times.items()}
    cpu = {name: statistics.median(values) * 1000 for name, values in CPU.items()}
    print(f"== one REGISTER with digest auth, median of {runs} runs (process start to exit;")
    print("   bindings cleared before each, outside the timing)")
    print(f"sipsak -U                                  {med['sipsak']:8.1f} ms")
    print(f"python3 -c 'import asyncio, click'         {med['python']:8.1f} ms"
          f"   ({med['python'] / med['sipsak']:.2f}x sipsak: the floor)")  # fmt: skip
    print(f"qsipctl probe register (binding query)     {med['keep']:8.1f} ms"
          f"   ratio {med['keep'] / med['sipsak']:.2f}x sipsak (goal <= 4x),"
          f" {med['keep'] / med['python']:.2f}x the floor")  # fmt: skip
    print(f"qsipctl probe register --bind (+ unbind)   {med['full']:8.1f} ms"
          f"   ratio {med['full'] / med['sipsak']:.2f}x sipsak,"
          f" {med['full'] / med['python']:.2f}x the floor")  # fmt: skip
    print(f"(4x sipsak is {4 * med['sipsak'] / med['python']:.2f}x the floor on this machine now;"
          " the ratio to the floor is the steadier number on a busy machine)")  # fmt: skip
    print(f"CPU time (user+sys), median: sipsak {cpu['sipsak']:.1f} ms, python floor "
          f"{cpu['python']:.1f} ms, qsipctl query {cpu['keep']:.1f} ms "
          f"(ratio {cpu['keep'] / max(cpu['sipsak'], 0.1):.1f}x sipsak; "
          f"{cpu['keep'] - cpu['python']:.1f} ms above the floor)")  # fmt: skip


def write_site(path: Path, k: Kamailio, accounts: int, per_core: int = 4) -> None:
    lines = ["all:", "  vars:", "    qsys_model: Core 110f", "  hosts:"]
    for c in range(0, accounts, per_core):
        lines += [f"    core-{c // per_core:04d}:", "      ansible_host: 127.0.0.1",
                  "      softphones:"]  # fmt: skip
        for i in range(c, min(c + per_core, accounts)):
            lines += [
                f"        - name: Phone {i}",
                "          profile: generic",
                f"          registrar: 127.0.0.1:{k.udp_port}",
                f'          username: "{10001 + i}"',
                f"          password: env:BENCH_PW_{10001 + i}",
            ]
    path.write_text("\n".join(lines) + "\n")


def many_accounts(k: Kamailio, accounts: int, workdir: Path, sipsak_sample: int) -> None:
    site = workdir / "bench-site.yml"
    write_site(site, k, accounts)
    env = bench_env(**{f"BENCH_PW_{u}": f"pw-{u}" for u in _users(accounts)})
    cmd = [QSIPCTL, "diagnose", str(site), "--register", "--bind", "--concurrency", "100",
           "--format", "json"]  # fmt: skip
    k.clear()
    q = timed(cmd, env)
    left = k.registered_users()
    print(f"\n== {accounts} accounts registered and unregistered, concurrency 100")
    print(f"qsipctl diagnose --register --bind         {q:8.2f} s   (goal < 5 s);"
          f" bindings left on the server: {len(left)}")  # fmt: skip
    load, probe, _ = split_phases(site, env, accounts)
    print(f"  of which: loading the {accounts}-phone site {load:5.2f} s, probing {probe:5.2f} s"
          " (measured in-process)")  # fmt: skip
    start = time.perf_counter()
    for u in _users(sipsak_sample):
        uri = f"sip:{u}@127.0.0.1:{k.udp_port}"
        timed([SIPSAK, "-U", "-s", uri, "-a", f"pw-{u}", "-x", "3600"], env)
        timed([SIPSAK, "-U", "-s", uri, "-a", f"pw-{u}", "-x", "0", "-C", "empty"], env)
    per = (time.perf_counter() - start) / sipsak_sample
    loop = per * accounts
    note = "" if sipsak_sample == accounts else f" (extrapolated from {sipsak_sample})"
    print(f"sipsak loop (register + unregister each)   {loop:8.2f} s{note}")
    print(f"speed-up vs the sipsak loop                {loop / q:8.1f}x")


def split_phases(
    site: Path, env: dict[str, str], accounts: int, workers: int | None = 1
) -> tuple[float, float, int]:
    """Where diagnose's time goes: loading the site vs probing in ``workers`` (None: auto)."""
    code = f"""
import time, json
t0 = time.perf_counter()
from qsipctl.cli.common import load_selected, long_lived, short_lived
from qsipctl.cli.diag_cmds import _site_jobs
from qsipctl.probes.register_flow import BIND
from qsipctl.probes.parallel import auto_workers
from qsipctl.probes.runner import run_probes
with long_lived():  # as diagnose loads them
    _, cores = load_selected({str(site)!r}, None, ())
    jobs = [(name, t.replace(evidence=False))  # as the CLI runs them without --pcap/--ladder
            for name, t in _site_jobs(cores, True, False, 5.0, None, None)]
t1 = time.perf_counter()
with short_lived():  # as diagnose runs them
    workers = {workers} or auto_workers(len(jobs), 100)
    outs = run_probes(jobs, 100, policy=BIND, workers=workers)
t2 = time.perf_counter()
assert sum(o.result.ok for o in outs) == {accounts}
print(json.dumps([t1 - t0, t2 - t1, workers]))
"""
    res = subprocess.run([PYTHON, "-c", code], env=env, capture_output=True, text=True)
    if res.returncode != 0:
        raise SystemExit(res.stderr)
    load, probe, workers = json.loads(res.stdout)
    return float(load), float(probe), int(workers)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--accounts", type=int, default=1000)
    ap.add_argument("--sipsak-sample", type=int, default=0, help="0: loop over all accounts")
    ap.add_argument("--only", choices=["single", "many"], help="run one of the two parts")
    ap.add_argument(
        "--venv", type=Path, default=DEFAULT_VENV, help="clean venv to install qsipctl into"
    )
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="qsipctl-bench-") as tmp:
        work = Path(tmp)
        os.chdir(work)  # so ``python -c`` cannot import qsipctl from a checkout in the cwd
        prepare_venv(args.venv.expanduser().resolve())
        accounts = {u: f"pw-{u}" for u in _users(args.accounts)}
        k = start_kamailio(work / "kamailio", make_ca(work / "ca"), accounts=accounts)
        try:
            print(f"kamailio {k.host}:{k.udp_port} (udp), {len(accounts)} accounts, MD5 digest")
            if args.only != "many":
                single_probe(k, args.runs)
            if args.only != "single":
                many_accounts(k, args.accounts, work, args.sipsak_sample or args.accounts)
        finally:
            k.stop()


if __name__ == "__main__":
    main()
