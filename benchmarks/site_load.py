"""Time loading a large site inventory against PyYAML reading the same file.

The peer is ``yaml.safe_load``: the least any loader of the file pays.
qsipctl does more (positions for every value, validation, precedence,
profiles), so the ratio says what that costs and catches a loader that grows
faster than the file (a quadratic step shows as a ratio that climbs with N).

    python3 benchmarks/site_load.py                # 2 000, 10 000, 30 000 cores
    python3 benchmarks/site_load.py --cores 5000
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import yaml

from qsipctl.site.load import check_site


def flat_site(cores: int) -> str:
    """Cores straight under ``all: hosts:`` (no child groups), in ranges of 10 000."""
    lines = ["all:", "  vars: {qsys_model: Core Nano}", "  hosts:"]
    for block in range(0, cores, 10_000):
        last = min(cores, block + 10_000)
        lines.append(f"    c{block // 10_000}-[1:{last - block}]:")
    return "\n".join(lines) + "\n"


def grouped_site(cores: int) -> str:
    """Cores in groups of 200, two softphones each, registrar from a group."""
    lines = [
        "all:",
        "  vars:",
        "    qsys_model: Core 110f",
        "    softphone_defaults: {profile: generic, registrar: 192.0.2.1, password: env:PW}",
        "  children:",
    ]
    for g in range(max(1, cores // 200)):
        lines += [
            f"    g{g}:",
            "      hosts:",
            f"        c{g}-[1:200]:",
            '          softphones: [{username: "1"}, {username: "2"}]',
        ]
    return "\n".join(lines) + "\n"


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def measure(kind: str, text: str, cores: int, tmp: Path) -> None:
    path = tmp / f"{kind}-{cores}.yml"
    path.write_text(text)
    peer = timed(lambda: yaml.safe_load(text))
    ours = timed(lambda: check_site(path, check_secrets=False))
    print(
        f"  {kind:8} {cores:6} cores  qsipctl {ours:7.2f} s  yaml.safe_load {peer:6.3f} s"
        f"  ratio {ours / peer:7.1f}x  per core {ours / cores * 1e6:6.0f} us"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cores", type=int, action="append")
    args = parser.parse_args()
    sizes = args.cores or [2_000, 10_000, 30_000]
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            measure("flat", flat_site(n), n, Path(tmp))
            measure("grouped", grouped_site(n), n, Path(tmp))


if __name__ == "__main__":
    main()
