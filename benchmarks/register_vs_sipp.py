#!/usr/bin/env python3
"""qsipctl's register probe over a 1,000-phone site vs SIPp, against the same Kamailio.

The peer is SIPp (Debian ``sip-tester``), the standard SIP load tool, running
the same exchange per account: REGISTER / 401 / REGISTER with auth / 200,
then the unregistration (Expires: 0) with the same two steps, accounts from
an injection file, 100 calls at once (``-l 100``).  qsipctl runs
``diagnose --register --bind --concurrency 100`` (the binding query, then
our binding and its removal: four REGISTERs per account, as SIPp sends) on
a generated site of the same
accounts, *including* loading that site, as a user runs it (worker
processes: one per CPU) and, for the record, with ``--workers 1``.  A third contender,
``register_floor.py``, does the same exchange in the least Python can (see
its docstring): how much of qsipctl's time any CPython program would spend.
The contenders alternate ``--runs`` times so load on the shared machine hits
them alike; after every run the
registrar must hold 0 bindings.

qsipctl runs from a clean venv with a regular install of this checkout (see
``register_vs_sipsak.prepare_venv``).  Goal (issue 7): qsipctl's median wall
time within 2x SIPp's (stretch 1.5x).  Needs kamailio, sip-tester, openssl:

    python3 benchmarks/register_vs_sipp.py [--runs 5] [--accounts 1000]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import benchmarks.register_vs_sipsak as common  # noqa: E402
from tests.fixtures.common import free_port  # noqa: E402
from tests.fixtures.kamailio import Kamailio, make_ca, start_kamailio  # noqa: E402

SIPP = shutil.which("sipp") or "/usr/bin/sipp"


def _register(cseq: int, expires: int, auth: bool) -> str:
    credentials = "[field1]\n" if auth else ""
    return f"""  <send retrans="500">
    <![CDATA[
REGISTER sip:[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:[field0]@[remote_ip]>;tag=[pid]SIPpTag[call_number]
To: <sip:[field0]@[remote_ip]>
Call-ID: [call_id]
CSeq: {cseq} REGISTER
Contact: <sip:[field0]@[local_ip]:[local_port]>
Max-Forwards: 70
Expires: {expires}
{credentials}Content-Length: 0

    ]]>
  </send>
"""


SCENARIO = (
    '<?xml version="1.0" encoding="ISO-8859-1" ?>\n<scenario name="register and unregister">\n'
    + _register(1, 3600, False)
    + '  <recv response="401" auth="true"/>\n'
    + _register(2, 3600, True)
    + '  <recv response="200"/>\n'
    + _register(3, 0, False)
    + '  <recv response="401" auth="true"/>\n'
    + _register(4, 0, True)
    + '  <recv response="200"/>\n</scenario>\n'
)


def sipp_command(k: Kamailio, work: Path, accounts: int) -> list[str]:
    (work / "register.xml").write_text(SCENARIO)
    users = common._users(accounts)
    lines = ["SEQUENTIAL"] + [f"{u};[authentication username={u} password=pw-{u}];" for u in users]
    (work / "accounts.csv").write_text("\n".join(lines) + "\n")
    return [
        SIPP, f"127.0.0.1:{k.udp_port}", "-sf", str(work / "register.xml"),
        "-inf", str(work / "accounts.csv"), "-m", str(accounts), "-l", "100",
        "-r", "100000", "-i", "127.0.0.1", "-p", str(free_port(__import__("socket").SOCK_DGRAM)),
        "-nostdin", "-timeout", "60s",
    ]  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--accounts", type=int, default=1000)
    ap.add_argument("--venv", type=Path, default=common.DEFAULT_VENV)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="qsipctl-bench-") as tmp:
        work = Path(tmp)
        os.chdir(work)  # so ``python -c`` cannot import qsipctl from a checkout in the cwd
        common.prepare_venv(args.venv.expanduser().resolve())
        users = common._users(args.accounts)
        k = start_kamailio(
            work / "kamailio", make_ca(work / "ca"), accounts={u: f"pw-{u}" for u in users}
        )
        try:
            run(k, work, args.accounts, args.runs)
        finally:
            k.stop()


def run(k: Kamailio, work: Path, accounts: int, runs: int) -> None:
    site = work / "bench-site.yml"
    common.write_site(site, k, accounts)
    env = common.bench_env(**{f"BENCH_PW_{u}": f"pw-{u}" for u in common._users(accounts)})
    qsipctl = [common.QSIPCTL, "diagnose", str(site), "--register", "--bind",
               "--concurrency", "100", "--format", "json"]  # fmt: skip
    one_process = [*qsipctl, "--workers", "1"]
    sipp = sipp_command(k, work, accounts)
    floor = [common.PYTHON, str(REPO / "benchmarks" / "register_floor.py"), str(site), k.host,
             str(k.udp_port)]  # fmt: skip
    print(f"kamailio {k.host}:{k.udp_port} (udp), {accounts} accounts, MD5 digest, 100 at once")
    times: dict[str, list[float]] = {"sipp": [], "qsipctl": [], "one": [], "floor": []}
    contenders = (("sipp", sipp), ("qsipctl", qsipctl), ("one", one_process), ("floor", floor))
    for _, cmd in contenders:  # warm up (page cache, pyc)
        common.timed(cmd, env)
        k.clear()
    common.CPU.clear()
    for _ in range(runs):
        for name, cmd in contenders:
            k.clear()
            times[name].append(common.timed(cmd, env, name))
            left = k.registered_users()
            if left:
                raise SystemExit(f"{name} left {len(left)} bindings on the server")
    med = {name: statistics.median(values) for name, values in times.items()}
    cpu = {name: statistics.median(values) for name, values in common.CPU.items()}
    ratio = med["qsipctl"] / med["sipp"]
    print(f"== median of {runs} alternating runs; 0 bindings left after every run")
    print(f"sipp (register/401/register/200 x2)          {med['sipp']:6.2f} s wall,"
          f" {cpu['sipp']:5.2f} s CPU")  # fmt: skip
    print(f"qsipctl diagnose --register --bind (+ site)  {med['qsipctl']:6.2f} s wall,"
          f" {cpu['qsipctl']:5.2f} s CPU")  # fmt: skip
    print(f"ratio qsipctl / sipp: {ratio:.2f}x wall (goal <= 2x, stretch 1.5x),"
          f" {cpu['qsipctl'] / max(cpu['sipp'], 0.01):.1f}x CPU")  # fmt: skip
    print(f"  the same in one process (--workers 1)     {med['one']:6.2f} s wall,"
          f" {cpu['one']:5.2f} s CPU = {med['one'] / med['sipp']:.2f}x sipp")  # fmt: skip
    print(f"python floor (register_floor.py)             {med['floor']:6.2f} s wall,"
          f" {cpu['floor']:5.2f} s CPU = {med['floor'] / med['sipp']:.2f}x sipp")  # fmt: skip
    load, probe, workers = common.split_phases(site, env, accounts, None)
    _, probe_one, _ = common.split_phases(site, env, accounts, 1)
    print(f"  qsipctl in-process: loading the site {load:5.2f} s, probing {probe:5.2f} s"
          f" in {workers} worker(s), {probe_one:5.2f} s in one process")  # fmt: skip


if __name__ == "__main__":
    main()
