"""The corpus manifest (manifest.tsv) as rows; see README.md in this folder."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

CORPUS = Path(__file__).resolve().parent
MESSAGES = CORPUS / "messages"


@dataclass(frozen=True, slots=True)
class Entry:
    file: str
    origin: str  # capture | text | derived
    source: str
    family: str
    parse: str  # accept | reject
    register_verdict: (
        str  # the register probe's verdict when replayed, "-" if not a REGISTER answer
    )
    replay_transports: tuple[str, ...]

    def data(self) -> bytes:
        return (MESSAGES / self.file).read_bytes()


def entries() -> list[Entry]:
    with (CORPUS / "manifest.tsv").open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    return [
        Entry(
            file=r["file"],
            origin=r["origin"],
            source=r["source"],
            family=r["family"],
            parse=r["parse"],
            register_verdict=r["register_verdict"],
            replay_transports=tuple(t for t in r["replay_transports"].split(",") if t != "-"),
        )
        for r in rows
    ]
